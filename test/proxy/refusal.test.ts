// Errors no stage expected (a bug in a stage, a library throwing) still fail closed: a generic body with
// the request id, the cause only in the log, and nothing forwarded.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { loadConfig } from '../../proxy/config.ts'
import { createLogger } from '../../proxy/logging.ts'
import { createGateway } from '../../proxy/server.ts'
import { startUpstream } from '../helpers/upstream.ts'

t.test('a stage that throws: 500 (or its own 4xx), generic body, reason in the log', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const logs: Record<string, unknown>[] = []
  const logger = createLogger('info', { write: (line: string) => logs.push(JSON.parse(line)) })
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    UPSTREAM_URL: upstream.url,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  const { app } = await createGateway(config, { logger, verifier: undefined })
  // A later stage with a bug, as someone extending the gateway might add one.
  app.addHook('onRequest', async (request) => {
    if (request.url === '/bug') throw new Error('internal detail at 10.0.0.7')
    if (request.url === '/odd') throw Object.assign(new Error('odd'), { statusCode: 499, code: 'X_ODD' })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  // Plain HTTP is forwarded by the hook before this one; WebSocket upgrades go on through every hook.
  const upgrade = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = new WebSocket(`${base.replace('http', 'ws')}${path}`)
      socket.once('unexpected-response', (_request, response) => {
        let body = ''
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body }))
      })
      socket.once('open', () => reject(new Error('upgraded')))
    })
  const bug = await upgrade('/bug')
  t.equal(bug.status, 500)
  t.match(JSON.parse(bug.body), { error: 'Internal Server Error', requestId: /^[0-9a-f-]{36}$/ })
  t.notMatch(bug.body, /10\.0\.0\.7|internal detail/)
  t.ok(logs.some((entry) => entry.reason === 'internal_error:500'))

  const odd = await upgrade('/odd')
  t.equal(odd.status, 499)
  t.match(JSON.parse(odd.body), { error: 'Error' })
  t.ok(logs.some((entry) => entry.reason === 'request_invalid:X_ODD'))
  t.equal(upstream.seen.length, 0, 'nothing forwarded')
})

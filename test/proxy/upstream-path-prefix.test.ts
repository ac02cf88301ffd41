import t from 'tap'
import WebSocket from 'ws'
import { rawRequest, startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

t.test('UPSTREAM_URL with a path maps /x to /base/x, for HTTP and WebSocket', async (t) => {
  const upstream = await startUpstream()
  const gateway = await startGateway({
    UPSTREAM_URL: `${upstream.url}/base/`,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  for (const path of ['/x', '/api/v1/ping?a=1&b=%2F', '/']) {
    t.match(
      await rawRequest(gateway.port, `GET ${path} HTTP/1.1\nHost: a\nConnection: close\n\n`),
      /^HTTP\/1.1 200/,
    )
  }
  t.same(
    upstream.seen.map((seen) => seen.url),
    ['/base/x', '/base/api/v1/ping?a=1&b=%2F', '/base/'],
  )

  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/ws?room=2`)
    socket.once('message', (data) => {
      socket.close()
      resolve(JSON.parse(String(data)))
    })
    socket.once('error', reject)
  })
  t.equal(first.url, '/base/ws?room=2')
})

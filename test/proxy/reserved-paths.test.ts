import t, { type Test } from 'tap'
import { freePort } from '../../dev/free-port.ts'
import { rawRequest, startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

async function setup(t: Test, env: Record<string, string>) {
  const upstream = await startUpstream()
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, IAP_DISABLED: 'true', ...env })
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  return { upstream, gateway }
}
const send = (port: number, method: string, path: string) =>
  rawRequest(port, `${method} ${path} HTTP/1.1\nHost: a\nConnection: close\n\n`)
const status = (response: string) => Number(response.slice(9, 12))

t.test(
  'healthz and readyz answer GET and HEAD even to a refused network, and are never proxied',
  async (t) => {
    const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '10.0.0.0/8' })
    t.equal(status(await send(gateway.port, 'GET', '/_gateway/healthz')), 200)
    t.equal(status(await send(gateway.port, 'HEAD', '/_gateway/healthz')), 200)
    t.equal(
      status(await send(gateway.port, 'GET', '/_gateway/healthz?probe=1')),
      200,
      'the query is not the path',
    )
    const ready = await fetch(`${gateway.url}/_gateway/readyz`)
    t.equal(ready.status, 200)
    t.same(await ready.json(), { status: 'ready', reasons: [], iap: 'disabled' })
    t.equal(upstream.seen.length, 0)
  },
)

t.test('anything else under /_gateway/ is 404', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '127.0.0.1' })
  for (const [method, path] of [
    ['GET', '/_gateway/'],
    ['GET', '/_gateway/healthz/'],
    ['GET', '/_gateway/healthz/../x'],
    ['GET', '/_gateway/health%7A'],
    ['POST', '/_gateway/healthz'],
    ['DELETE', '/_gateway/readyz'],
    ['GET', '/_gateway/metrics'],
  ] as const) {
    t.equal(status(await send(gateway.port, method, path)), 404, `${method} ${path}`)
  }
  t.equal(upstream.seen.length, 0)
})

t.test('variants outside /_gateway/ are ordinary requests: refused from a refused network', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '10.0.0.0/8' })
  for (const path of [
    '//_gateway/healthz',
    '/%5Fgateway/healthz',
    '/_GATEWAY/healthz',
    '/x/../_gateway/healthz',
  ]) {
    t.equal(status(await send(gateway.port, 'GET', path)), 403, path)
  }
  t.equal(upstream.seen.length, 0)
})

t.test(
  'variants outside /_gateway/ are ordinary requests: proxied (after every stage) when allowed',
  async (t) => {
    const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '127.0.0.1' })
    for (const path of ['/%5Fgateway/healthz', '/_GATEWAY/healthz']) {
      t.equal(status(await send(gateway.port, 'GET', path)), 200, path)
    }
    // The proxy refuses a leading '//' (it could name another host) and dot segments outright.
    t.equal(status(await send(gateway.port, 'GET', '//_gateway/healthz')), 400)
    t.equal(status(await send(gateway.port, 'GET', '/x/../_gateway/healthz')), 400)
    t.same(
      upstream.seen.map((seen) => seen.url),
      ['/%5Fgateway/healthz', '/_GATEWAY/healthz'],
    )
  },
)

t.test('readyz is 503 with reasons while the upstream is down', async (t) => {
  const port = await freePort()
  const gateway = await startGateway({
    UPSTREAM_URL: `http://127.0.0.1:${port}`,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(() => gateway.close())
  const response = await fetch(`${gateway.url}/_gateway/readyz`)
  t.equal(response.status, 503)
  t.same(await response.json(), { status: 'not ready', reasons: ['upstream not reachable'], iap: 'disabled' })
  t.equal((await fetch(`${gateway.url}/_gateway/healthz`)).status, 200, 'liveness is unaffected')
})

t.test('readyz is 503 once shutdown began', async (t) => {
  const { gateway } = await setup(t, { ALLOWED_CIDRS: '127.0.0.1' })
  gateway.health.beginShutdown()
  const response = await fetch(`${gateway.url}/_gateway/readyz`)
  t.equal(response.status, 503)
  t.match(await response.json(), { reasons: ['shutting down'] })
})

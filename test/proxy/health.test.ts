import { createServer } from 'node:net'
import t from 'tap'
import { Health } from '../../proxy/health.ts'

t.test('readiness probes the upstream with a TCP connect, IPv6 literals included', async (t) => {
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '::1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const health = new Health({
    upstreamOrigin: `http://[::1]:${port}`,
    iapDisabled: false,
    keysReady: () => true,
  })
  t.same(await health.readiness(), { ready: true, reasons: [], iap: 'verifying' })
})

t.test('every reason is listed: keys, upstream, shutdown', async (t) => {
  // Port 443 on loopback: nothing listens there on a test machine.
  const health = new Health({
    upstreamOrigin: 'https://127.0.0.1',
    iapDisabled: false,
    keysReady: () => false,
  })
  health.beginShutdown()
  t.same(await health.readiness(), {
    ready: false,
    reasons: ['shutting down', 'IAP keys not loaded', 'upstream not reachable'],
    iap: 'verifying',
  })
})

t.test('with IAP disabled, keys do not count and readiness says so', async (t) => {
  const health = new Health({ upstreamOrigin: 'http://127.0.0.1', iapDisabled: true, keysReady: () => false })
  const readiness = await health.readiness()
  t.equal(readiness.iap, 'disabled')
  t.notOk(readiness.reasons.includes('IAP keys not loaded'))
})

import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { httpHead, openRaw, startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

async function setup(t: Test, allowed: string) {
  const upstream = await startUpstream()
  const gateway = await startGateway({
    UPSTREAM_URL: upstream.url,
    ALLOWED_CIDRS: allowed,
    IAP_DISABLED: 'true',
  })
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  return { upstream, gateway }
}

/** Opens a WebSocket and resolves with the first message, or rejects with the refused status. */
function open(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ socket: WebSocket; first: Record<string, unknown> }>((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    socket.once('message', (data) => resolve({ socket, first: JSON.parse(String(data)) }))
    socket.once('unexpected-response', (_req, res) => reject(new Error(`refused ${res.statusCode}`)))
    socket.once('error', reject)
  })
}

t.test('a WebSocket from an allowed network passes the stages and echoes through', async (t) => {
  const { gateway, upstream } = await setup(t, '127.0.0.1')
  const { socket, first } = await open(`ws://127.0.0.1:${gateway.port}/ws/chat?room=1`, {
    'x-forwarded-for': '10.0.0.1',
    'x-forwarded-email': 'spoofed@example.com',
    x_goog_authenticated_user_email: 'spoofed',
    cookie: 'session=abc',
    'x-custom': 'kept',
  })
  t.teardown(() => socket.close())
  t.equal(first.url, '/ws/chat?room=1')
  const handshake = upstream.wsHandshakes[0] ?? {}
  t.equal(handshake['x-forwarded-for'], '127.0.0.1', 'the same forwarding headers as plain HTTP')
  t.equal(handshake['x-forwarded-email'], undefined)
  t.equal(handshake.x_goog_authenticated_user_email, undefined)
  t.equal(handshake.cookie, 'session=abc')
  t.equal(handshake['x-custom'], 'kept', 'ordinary headers are forwarded, not only cookie')
  const echoed = new Promise((resolve) => socket.once('message', (data) => resolve(String(data))))
  socket.send('ping through the gateway')
  t.equal(await echoed, 'ping through the gateway')
  t.match(
    gateway.logs.find((entry) => entry.message === 'websocket proxied'),
    { httpRequest: { requestUrl: '/ws/chat', status: 101, remoteIp: '127.0.0.1' } },
    'the upgrade is logged once, without its query',
  )
})

t.test('a WebSocket from a refused network is answered 403 before any upstream connection', async (t) => {
  const { gateway, upstream } = await setup(t, '10.0.0.0/8')
  await t.rejects(open(`ws://127.0.0.1:${gateway.port}/ws`), { message: 'refused 403' })
  t.equal(upstream.wsHandshakes.length, 0)
  t.ok(gateway.logs.some((entry) => entry.reason === 'network_not_allowed'))
})

t.test('hop-by-hop headers a client names in Connection are not forwarded on the upgrade', async (t) => {
  const { gateway, upstream } = await setup(t, '127.0.0.1')
  // The ws client writes its own Connection header, so the handshake is written by hand.
  const client = openRaw(t, gateway.port)
  client.write(
    httpHead([
      'GET /ws HTTP/1.1',
      'Host: a',
      'Connection: Upgrade, X-Secret-Hop',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'X-Secret-Hop: should not pass',
      'X-Kept: yes',
    ]),
  )
  t.match(await client.waitFor(/^HTTP\/1.1 \d{3}/), /^HTTP\/1.1 101/)
  // The proxy answers 101 first and then dials the upstream: wait for that handshake.
  while (upstream.wsHandshakes.length === 0) await sleep(10)
  t.equal(upstream.wsHandshakes[0]?.['x-kept'], 'yes')
  t.equal(upstream.wsHandshakes[0]?.['x-secret-hop'], undefined)
})

// A request line may carry an absolute URI (`GET http://host/x HTTP/1.1`, RFC 9112 3.2.2), which clients
// send to forward proxies. Passed on as it is, the app would see a target naming a host of the client's
// choosing, and `http://h//evil.example/x` would slip past the "no leading //" rule, which only looked at
// targets starting with `/`. The gateway reduces an absolute target to origin form before routing and
// every path rule, and refuses one whose authority is not the Host header (RFC 9112 3.2 requires a client
// to send them identical) or that is not http(s).
import t, { type Test } from 'tap'
import { gatewayInFront, httpHead, openRaw, rawRequest } from '../helpers/gateway.ts'
import { until } from '../helpers/iap.ts'

async function setup(t: Test) {
  const { upstream, gateway } = await gatewayInFront(t, {}, '/base')
  const send = (target: string, host = 'app.example') =>
    rawRequest(gateway.port, `GET ${target} HTTP/1.1\nHost: ${host}\nConnection: close\n\n`)
  return { upstream, gateway, send }
}

t.test('an absolute target reaches the app in origin form', async (t) => {
  const { upstream, gateway, send } = await setup(t)
  const cases: [string, string][] = [
    ['http://app.example/x?q=1', '/base/x?q=1'],
    ['HTTPS://APP.example/a/b', '/base/a/b'],
    ['http://app.example', '/base/'],
    ['http://app.example?x=1', '/base/?x=1'],
  ]
  for (const [target, seen] of cases) {
    t.match(await send(target), /^HTTP\/1.1 200/, target)
    t.equal(upstream.seen.at(-1)?.url, seen, `${target} -> ${seen}`)
  }
  t.equal(upstream.seen.length, cases.length)
  const logged = gateway.logs.find((entry) => entry.message === 'request proxied')
  t.equal(
    (logged?.httpRequest as { requestUrl?: string } | undefined)?.requestUrl,
    '/x',
    'the log names the origin-form path, without its query',
  )
})

t.test('an absolute target whose path starts with // is refused like any other', async (t) => {
  const { upstream, gateway, send } = await setup(t)
  t.match(await send('http://app.example//evil.example/x'), /^HTTP\/1.1 400/)
  t.equal(upstream.seen.length, 0)
  t.ok(gateway.logs.some((entry) => entry.reason === 'request_invalid:path'))
})

t.test('an absolute target naming another host, userinfo or another scheme is refused', async (t) => {
  const { upstream, gateway, send } = await setup(t)
  for (const target of [
    'http://other-host/x',
    'http://app.example:80/x',
    'http://user@app.example/x',
    'ftp://app.example/x',
  ]) {
    t.match(await send(target), /^HTTP\/1.1 400/, target)
  }
  t.equal(upstream.seen.length, 0)
  t.same(
    gateway.logs.filter((entry) => entry.reason !== undefined).map((entry) => entry.reason),
    [
      'request_invalid:target_authority',
      'request_invalid:target_authority',
      'request_invalid:target_authority',
      'request_invalid:target_form',
    ],
  )
})

t.test('a refused target is logged without its userinfo, query or fragment', async (t) => {
  const { gateway, send } = await setup(t)
  for (const target of [
    'http://user:s3cretpw@app.example/x?token=t#frag',
    'http://other-host/y#frag=secret',
    'ftp://user:s3cretpw@app.example/x',
  ]) {
    t.match(await send(target), /^HTTP\/1.1 400/, target)
  }
  const logged = gateway.logs
    .filter((entry) => entry.reason !== undefined)
    .map((entry) => (entry.httpRequest as { requestUrl: string }).requestUrl)
  t.same(logged, ['http://app.example/x', 'http://other-host/y', '(not shown)'])
  t.notMatch(gateway.rawLog.join(''), /s3cretpw|token|frag/)
})

t.test('a reserved path in absolute form is the gateway’s, never proxied', async (t) => {
  const { upstream, send } = await setup(t)
  t.match(await send('http://app.example/_gateway/healthz'), /^HTTP\/1.1 200[\s\S]*\r\n\r\nok\n$/)
  t.equal(upstream.seen.length, 0)
})

t.test('a WebSocket upgrade with an absolute target reaches the app in origin form', async (t) => {
  const { upstream, gateway } = await setup(t)
  // No WebSocket client writes an absolute target: the handshake is written by hand.
  const client = openRaw(t, gateway.port)
  client.write(
    httpHead([
      'GET http://app.example/ws?room=1 HTTP/1.1',
      'Host: app.example',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ]),
  )
  t.match(await client.waitFor(/^HTTP\/1.1 \d{3}/), /^HTTP\/1.1 101/)
  await until(() => upstream.wsUrls.length > 0, 'the upstream handshake')
  t.same(upstream.wsUrls, ['/base/ws?room=1'])
})

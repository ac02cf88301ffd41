// Requests that ask to switch protocols to something other than WebSocket (`Upgrade: h2c`, the classic
// h2c smuggling probe, or any other token) went down the WebSocket path: refused (GET 400, POST 404)
// yet logged as "websocket proxied 101". A server may ignore an upgrade it does not offer (RFC 9110
// 7.8): such a request is now forwarded as the plain HTTP/1.1 request it also is, without the upgrade
// headers, and logged as what it was. `OPTIONS *` (asterisk form, RFC 9112 3.2.4), which no HTTP client
// library here can send on, is refused with 501 instead of a 502 that blamed the app.
// Node's parser reads nothing more of a connection after a request that asked to upgrade, even when the
// upgrade is declined: a request pipelined behind it in the same packet was never answered and the
// connection idled. The answer to such a request now closes the connection, so the client knows to
// send the rest again on a new one.
import t, { type Test } from 'tap'
import { closedWithin, gatewayInFront, openRaw, rawRequest } from '../helpers/gateway.ts'

const setup = (t: Test) => gatewayInFront(t)

const h2cLines = [
  'Connection: Upgrade, HTTP2-Settings, close',
  'Upgrade: h2c',
  'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
]

t.test(
  'GET with Upgrade: h2c is answered by the app over HTTP/1.1, without the upgrade headers',
  async (t) => {
    const { gateway, upstream } = await setup(t)
    const response = await rawRequest(
      gateway.port,
      ['GET /api/v1/ping HTTP/1.1', 'Host: a', ...h2cLines, '', ''].join('\n'),
    )
    t.match(response, /^HTTP\/1.1 200 OK\r\n/)
    t.notMatch(response, /101 Switching/)
    const seen = upstream.seen[0]
    t.equal(seen?.url, '/api/v1/ping')
    t.equal(seen?.headers.upgrade, undefined)
    t.equal(seen?.headers['http2-settings'], undefined)
    t.notMatch(String(seen?.headers.connection), /upgrade/i)
    const messages = gateway.logs.map((entry) => entry.message)
    t.notOk(messages.includes('websocket proxied'), 'not logged as a WebSocket')
    t.match(
      gateway.logs.find((entry) => entry.message === 'request proxied'),
      { httpRequest: { requestMethod: 'GET', status: 200 } },
    )
  },
)

t.test(
  'a request pipelined behind an ignored upgrade is not left hanging: the connection closes',
  async (t) => {
    const { gateway, upstream } = await setup(t)
    for (const [name, first] of [
      ['answered by the app', 'GET /h2c HTTP/1.1'],
      ['refused (path)', 'GET /a/../b HTTP/1.1'],
      ['a reserved path', 'GET /_gateway/healthz HTTP/1.1'],
    ] as const) {
      const client = openRaw(t, gateway.port)
      // both requests in one write, as a client that pipelines sends them
      client.write(
        [
          first,
          'Host: a',
          'Connection: Upgrade, HTTP2-Settings',
          'Upgrade: h2c',
          'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
          '',
        ]
          .concat(['', 'GET /after HTTP/1.1', 'Host: a', '', ''])
          .join('\r\n'),
      )
      const closedAfterMs = await closedWithin(client, 5000)
      t.ok(closedAfterMs < 5000, `${name}: closed after ${closedAfterMs} ms, not left idle`)
      t.match(client.received(), /^HTTP\/1.1 \d{3} [\s\S]*\r\nconnection: close\r\n/i, `${name}: says so`)
    }
    t.same(
      upstream.seen.map((seen) => seen.url),
      ['/h2c'],
      'the pipelined request was not answered from a stale parser state',
    )
  },
)

t.test('POST with Upgrade: h2c and a body: the app gets the body', async (t) => {
  const { gateway, upstream } = await setup(t)
  const response = await rawRequest(
    gateway.port,
    [
      'POST /api/v1/prediction/abc HTTP/1.1',
      'Host: a',
      ...h2cLines,
      'Content-Length: 11',
      '',
      'hello world',
    ].join('\n'),
  )
  t.match(response, /^HTTP\/1.1 200 OK\r\n/)
  t.equal(upstream.seen[0]?.method, 'POST')
  t.equal(upstream.seen[0]?.bodyBytes, 11)
})

t.test(
  'any other protocol token, or a WebSocket upgrade that is not a GET, is a plain request',
  async (t) => {
    const { gateway, upstream } = await setup(t)
    for (const [method, token] of [
      ['GET', 'foo/1.0'],
      ['POST', 'websocket'],
    ]) {
      const response = await rawRequest(
        gateway.port,
        [
          `${method} /x HTTP/1.1`,
          'Host: a',
          'Connection: Upgrade, close',
          `Upgrade: ${token}`,
          'Content-Length: 0',
          '',
          '',
        ].join('\n'),
      )
      t.match(response, /^HTTP\/1.1 200 OK\r\n/, `${method} Upgrade: ${token}`)
    }
    t.equal(upstream.seen.length, 2)
    t.ok(upstream.seen.every((seen) => seen.headers.upgrade === undefined))
  },
)

t.test('a WebSocket handshake ws refuses is logged as refused, not as proxied', async (t) => {
  const { gateway, upstream } = await setup(t)
  const response = await rawRequest(
    gateway.port,
    [
      'GET /ws HTTP/1.1',
      'Host: a',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 99',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      '',
      '',
    ].join('\n'),
  )
  t.match(response, /^HTTP\/1.1 400 /)
  t.equal(upstream.wsHandshakes.length, 0)
  t.notOk(gateway.logs.some((entry) => entry.message === 'websocket proxied'))
  t.match(
    gateway.logs.find((entry) => entry.reason === 'websocket_handshake_invalid'),
    { message: 'request refused', httpRequest: { requestUrl: '/ws', status: 400 } },
  )
})

t.test('OPTIONS * is refused with 501, before any stage, without blaming the app', async (t) => {
  const { gateway, upstream } = await setup(t)
  const response = await rawRequest(gateway.port, 'OPTIONS * HTTP/1.1\nHost: a\nConnection: close\n\n')
  t.match(response, /^HTTP\/1.1 501 Not Implemented\r\n/)
  t.match(response, /"error":"Not Implemented"/)
  t.equal(upstream.seen.length, 0)
  t.match(
    gateway.logs.find((entry) => entry.reason !== undefined),
    {
      reason: 'request_unsupported:asterisk_form',
      httpRequest: { requestMethod: 'OPTIONS', requestUrl: '*', status: 501 },
    },
  )
  // The asterisk is a target for OPTIONS only (RFC 9112 3.2.4): with any other method it is malformed.
  t.match(await rawRequest(gateway.port, 'GET * HTTP/1.1\nHost: a\nConnection: close\n\n'), /^HTTP\/1.1 400 /)
})

// An app keeps only so many header lines (Node's maxHeadersCount silently drops the rest; Apache, Tomcat
// and gunicorn stop at 100) and so many bytes. With the gateway's verified headers appended after up to a
// thousand client lines, such an app dropped exactly the identity and kept everything the client wrote.
// The gateway's headers now go first, and a request whose header block as sent upstream would pass
// UPSTREAM_MAX_HEADER_COUNT or UPSTREAM_MAX_HEADER_BYTES is refused with 431 instead of being cut by the app.
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { rawRequest, verifyingGatewayInFront } from './helpers/gateway.ts'

/** The gateway's own header names, as the upstream should see them before any of the client's. */
const GATEWAY_HEADERS = [
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'host',
  'x-forwarded-email',
  'x-forwarded-user',
  'x-goog-authenticated-user-email',
  'x-goog-authenticated-user-id',
  'x-goog-iap-jwt-assertion',
]

const setup = (t: Test, env: Record<string, string> = {}, upstreamKeepsLines?: number) =>
  verifyingGatewayInFront(t, env, upstreamKeepsLines)

const clientLines = (count: number, prefix = 'x-client') =>
  Array.from({ length: count }, (_, i) => `${prefix}-${i}: value-${i}`)

const request = (assertion: string, lines: string[], target = '/x') =>
  [`GET ${target} HTTP/1.1`, 'Host: app.example', ...lines, `X-Goog-IAP-JWT-Assertion: ${assertion}`]
    .concat('Connection: close', '', '')
    .join('\n')

t.test('an app that keeps only its first 20 header lines still gets the verified identity', async (t) => {
  const { upstream, gateway } = await setup(t, {}, 20)
  const response = await rawRequest(gateway.port, request(gateway.assertion(), clientLines(60)))
  t.match(response, /^HTTP\/1.1 200/)
  const seen = upstream.seen[0]
  t.equal(seen?.headers['x-forwarded-email'], 'alice@example.com')
  t.equal(seen?.headers['x-forwarded-for'], '127.0.0.1')
  t.ok(seen?.headers['x-goog-iap-jwt-assertion'], 'the assertion too')
  const names = (seen?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase())
  const firstClientLine = names.findIndex((name) => name.startsWith('x-client-'))
  t.ok(firstClientLine > 0)
  for (const name of GATEWAY_HEADERS) {
    t.ok(names.indexOf(name) < firstClientLine, `${name} comes before the client's lines`)
  }
})

t.test('client header names that JavaScript would order first are not passed on', async (t) => {
  // Integer-like property names precede all others in a JavaScript object, whatever the insertion order.
  const { upstream, gateway } = await setup(t, {}, 20)
  const numeric = Array.from({ length: 30 }, (_, i) => `${i}: x`)
  const response = await rawRequest(gateway.port, request(gateway.assertion(), numeric))
  t.match(response, /^HTTP\/1.1 200/)
  t.equal(upstream.seen[0]?.headers['x-forwarded-email'], 'alice@example.com')
  t.equal(upstream.seen[0]?.headers['0'], undefined)
})

t.test('more header lines than UPSTREAM_MAX_HEADER_COUNT: 431, nothing forwarded', async (t) => {
  const { upstream, gateway } = await setup(t, { UPSTREAM_MAX_HEADER_COUNT: '30' })
  const assertion = gateway.assertion()
  // 9 gateway headers, and the client's Connection is not passed on: 21 client lines fit, 22 do not.
  t.match(await rawRequest(gateway.port, request(assertion, clientLines(21))), /^HTTP\/1.1 200/)
  const refused = await rawRequest(gateway.port, request(assertion, clientLines(22)))
  t.match(refused, /^HTTP\/1.1 431 Request Header Fields Too Large/)
  t.match(refused, /"error":"Request Header Fields Too Large"/)
  t.equal(upstream.seen.length, 1)
  t.ok(gateway.logs.some((entry) => entry.reason === 'upstream_headers_too_large:count'))
})

t.test('a header block over UPSTREAM_MAX_HEADER_BYTES: 431, nothing forwarded', async (t) => {
  const { upstream, gateway } = await setup(t, { UPSTREAM_MAX_HEADER_BYTES: '4096' })
  const refused = await rawRequest(gateway.port, request(gateway.assertion(), [`x-big: ${'a'.repeat(3500)}`]))
  t.match(refused, /^HTTP\/1.1 431/)
  t.equal(upstream.seen.length, 0)
  t.ok(gateway.logs.some((entry) => entry.reason === 'upstream_headers_too_large:bytes'))
  // The target counts too: a long query is part of what the app has to hold.
  t.match(
    await rawRequest(gateway.port, request(gateway.assertion(), [], `/x?q=${'b'.repeat(3500)}`)),
    /^HTTP\/1.1 431/,
  )
  t.match(await rawRequest(gateway.port, request(gateway.assertion(), ['x-small: a'])), /^HTTP\/1.1 200/)
})

t.test(
  'a WebSocket upgrade over the limit is refused with 431 before the switch',
  { timeout: 15_000 },
  async (t) => {
    const { upstream, gateway } = await setup(t, { UPSTREAM_MAX_HEADER_COUNT: '20' })
    const socket = connect(gateway.port, '127.0.0.1')
    t.teardown(() => socket.destroy())
    let answer = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
    const ended = new Promise((resolve) => socket.once('close', resolve))
    socket.write(
      [
        'GET /ws HTTP/1.1',
        'Host: app.example',
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        `X-Goog-IAP-JWT-Assertion: ${gateway.assertion()}`,
        ...clientLines(30),
        '',
        '',
      ].join('\r\n'),
    )
    await ended
    t.match(answer, /^HTTP\/1.1 431/)
    t.equal(upstream.wsHandshakes.length, 0)
  },
)

t.test('repeated lines Node keeps apart count one each', async (t) => {
  // Node gives a request's repeated Set-Cookie lines as an array (IncomingMessage headers); each is
  // written upstream as a line of its own.
  const { upstream, gateway } = await setup(t, { UPSTREAM_MAX_HEADER_COUNT: '10' })
  const assertion = gateway.assertion()
  t.match(await rawRequest(gateway.port, request(assertion, ['Set-Cookie: a=1'])), /^HTTP\/1.1 200/)
  t.match(
    await rawRequest(gateway.port, request(assertion, ['Set-Cookie: a=1', 'Set-Cookie: b=2'])),
    /^HTTP\/1.1 431/,
  )
  t.equal(upstream.seen.length, 1)
})

// An app keeps only so many header lines (Node's maxHeadersCount silently drops the rest; Apache, Tomcat
// and gunicorn stop at 100) and so many bytes. With the gateway's verified headers appended after up to a
// thousand client lines, such an app dropped exactly the identity and kept everything the client wrote.
// The gateway's headers now go first, and a request whose header block as sent upstream would pass
// UPSTREAM_MAX_HEADER_COUNT or UPSTREAM_MAX_HEADER_BYTES is refused with 431 instead of being cut by the app.
// "As sent" includes the lines the HTTP client writes itself: undici's `connection` and, for a body the
// client sent chunked, `transfer-encoding`; ws's handshake lines on an upgrade. Left out of the count,
// an app whose limit was exactly the configured one received one to six lines more than it holds.
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { httpHead, openRaw, rawRequest, verifyingGatewayInFront } from '../helpers/gateway.ts'
import { until } from '../helpers/iap.ts'

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
  // 9 gateway headers and undici's `connection` (the client's is not passed on): 20 client lines fit.
  t.match(await rawRequest(gateway.port, request(assertion, clientLines(20))), /^HTTP\/1.1 200/)
  const refused = await rawRequest(gateway.port, request(assertion, clientLines(21)))
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
  const { upstream, gateway } = await setup(t, { UPSTREAM_MAX_HEADER_COUNT: '11' })
  const assertion = gateway.assertion()
  t.match(await rawRequest(gateway.port, request(assertion, ['Set-Cookie: a=1'])), /^HTTP\/1.1 200/)
  t.match(
    await rawRequest(gateway.port, request(assertion, ['Set-Cookie: a=1', 'Set-Cookie: b=2'])),
    /^HTTP\/1.1 431/,
  )
  t.equal(upstream.seen.length, 1)
})

/** Lines and bytes (the target plus every name and value, as the limits count them) the app received. */
const received = (url: string, rawHeaders: string[]) => ({
  lines: rawHeaders.length / 2,
  bytes: url.length + rawHeaders.reduce((sum, text) => sum + text.length, 0),
})

/**
 * The largest n in [0, high) for which `send(n)` is admitted (binary search: admission only shrinks as n
 * grows), and what the app received of that request.
 */
async function largestAdmitted(
  send: (n: number) => Promise<{ status: number; received: () => { lines: number; bytes: number } }>,
  high: number,
) {
  let low = 0
  let best: { n: number; lines: number; bytes: number } | undefined
  while (low < high) {
    const n = Math.floor((low + high) / 2)
    const answer = await send(n)
    if (answer.status === 431) {
      high = n
      continue
    }
    if (answer.status !== 200 && answer.status !== 101) throw new Error(`status ${answer.status} at ${n}`)
    best = { n, ...answer.received() }
    low = n + 1
  }
  return best
}

async function limitsSetup(t: Test, env: Record<string, string>) {
  const { upstream, gateway } = await setup(t, env)
  const assertion = gateway.assertion()
  /**
   * A plain request with `lines`. A chunked body's last chunk comes a moment after the rest, so it is
   * still arriving when undici writes the head (a body already in, undici sends with its length).
   */
  const plain =
    (body: 'none' | 'length' | 'chunked', lines: string[], host = true) =>
    async () => {
      const client = openRaw(t, gateway.port)
      const framing = { none: [], length: ['Content-Length: 2'], chunked: ['Transfer-Encoding: chunked'] }[
        body
      ]
      const head = [
        // HTTP/1.0 may leave Host out (Node requires it of 1.1)
        `${body === 'none' ? 'GET' : 'POST'} /x HTTP/1.${host ? 1 : 0}`,
        ...(host ? ['Host: app.example'] : []),
        ...lines,
        ...framing,
        `X-Goog-IAP-JWT-Assertion: ${assertion}`,
        'Connection: close',
      ]
      client.write(httpHead(head) + { none: '', length: 'ab', chunked: '2\r\nab\r\n' }[body])
      if (body === 'chunked') {
        await sleep(20)
        client.write('0\r\n\r\n')
      }
      await client.closed
      const seen = upstream.seen.at(-1)
      return {
        status: Number(client.received().slice(9, 12)),
        received: () => received(seen?.url ?? '', seen?.rawHeaders ?? []),
      }
    }
  /** A WebSocket handshake with `lines`, optionally offering a subprotocol. */
  const upgrade =
    (subprotocol: string | undefined, lines: string[], host = true) =>
    async () => {
      const before = upstream.wsRawHeaders.length
      const client = openRaw(t, gateway.port)
      client.write(
        [
          `GET /ws HTTP/1.${host ? 1 : 0}`,
          ...(host ? ['Host: app.example'] : []),
          'Connection: Upgrade',
          'Upgrade: websocket',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          ...(subprotocol === undefined ? [] : [`Sec-WebSocket-Protocol: ${subprotocol}`]),
          `X-Goog-IAP-JWT-Assertion: ${assertion}`,
          ...lines,
          '',
          '',
        ].join('\r\n'),
      )
      const status = Number((await client.waitFor(/^HTTP\/1.1 \d{3}/)).slice(9, 12))
      if (status === 101) await until(() => upstream.wsRawHeaders.length > before, 'the upstream handshake')
      client.socket.destroy()
      return {
        status,
        received: () => received(upstream.wsUrls.at(-1) ?? '', upstream.wsRawHeaders.at(-1) ?? []),
      }
    }
  return { plain, upgrade }
}

t.test(
  'the app never gets more lines than UPSTREAM_MAX_HEADER_COUNT: the client library’s own lines count',
  async (t) => {
    const { plain, upgrade } = await limitsSetup(t, { UPSTREAM_MAX_HEADER_COUNT: '30' })
    const kinds = {
      'GET, no body': (n: number) => plain('none', clientLines(n))(),
      'POST with Content-Length': (n: number) => plain('length', clientLines(n))(),
      'POST sent chunked (undici sends it chunked too)': (n: number) => plain('chunked', clientLines(n))(),
      'WebSocket upgrade': (n: number) => upgrade(undefined, clientLines(n))(),
      'WebSocket upgrade offering a subprotocol': (n: number) => upgrade('chat', clientLines(n))(),
      'GET without Host (undici writes the upstream’s)': (n: number) =>
        plain('none', clientLines(n), false)(),
      'WebSocket upgrade without Host (Node writes the upstream’s)': (n: number) =>
        upgrade(undefined, clientLines(n), false)(),
    }
    for (const [kind, send] of Object.entries(kinds)) {
      const last = await largestAdmitted(send, 30)
      t.equal(last?.lines, 30, `${kind}: the largest block admitted is exactly the limit at the app`)
    }
  },
)

t.test(
  'the app never gets more bytes than UPSTREAM_MAX_HEADER_BYTES: the client library’s own lines count',
  async (t) => {
    const { plain, upgrade } = await limitsSetup(t, { UPSTREAM_MAX_HEADER_BYTES: '2048' })
    const pad = (n: number) => [`x-pad: ${'p'.repeat(n)}`]
    for (const [kind, send] of Object.entries({
      'POST with Content-Length': (n: number) => plain('length', pad(n))(),
      'WebSocket upgrade offering a subprotocol': (n: number) => upgrade('chat', pad(n))(),
    })) {
      const last = await largestAdmitted(send, 2048)
      t.equal(last?.bytes, 2048, `${kind}: the largest block admitted is exactly the limit at the app`)
    }
    // undici sends a body still arriving chunked, and one already in with its length (the shorter
    // line, for any body it can hold): counted as chunked, never more than the limit.
    const chunked = await largestAdmitted((n) => plain('chunked', pad(n))(), 2048)
    t.ok(
      chunked !== undefined && chunked.bytes <= 2048 && chunked.bytes > 2048 - 24,
      `a chunked POST: at most the limit at the app (${chunked?.bytes})`,
    )
  },
)

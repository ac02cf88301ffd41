// A refused request's body was read to its end: after the 401 or 403 Node kept the connection and
// drained the body to reuse it, so a client trickling a byte a second held a connection (and a socket,
// and a parser) as long as it liked. A refusal now says `Connection: close` and the server closes, so
// nothing more of the body is read. Admitted uploads keep reading, with their own idle limit:
// CLIENT_BODY_TIMEOUT_MS between two reads, after which the client gets 408 and the upstream request
// is cancelled. The same holds where no stage runs: the reserved paths (answered 200 without a check, to
// anyone) and a target Fastify's router refuses itself (a malformed percent-escape, `/%zz`), which both
// kept the connection and read the body; Fastify's own 400 also echoed the path and logged nothing.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import {
  closedWithin,
  httpHead,
  openRaw,
  type VerifyingGateway,
  verifyingGatewayInFront,
} from '../helpers/gateway.ts'

const setup = (t: Test, env: Record<string, string> = {}) => verifyingGatewayInFront(t, env)

/** The head of an upload the gateway admits (a valid assertion), its body to follow. */
const admittedUpload = (gateway: VerifyingGateway, target: string, length: number, close = false) =>
  httpHead([
    `POST ${target} HTTP/1.1`,
    'Host: app.example',
    `X-Goog-IAP-JWT-Assertion: ${gateway.assertion()}`,
    `Content-Length: ${length}`,
    ...(close ? ['Connection: close'] : []),
  ])

/**
 * An admitted upload to `target` under CLIENT_BODY_TIMEOUT_MS=`clientBodyTimeoutMs` that sends 10 of
 * its 1000 bytes and then nothing; resolves once the server closed it, with the time that took
 * (Infinity when it had not after 5 s).
 */
async function stalledUpload(t: Test, clientBodyTimeoutMs: number, target: string) {
  const { gateway, upstream } = await setup(t, { CLIENT_BODY_TIMEOUT_MS: String(clientBodyTimeoutMs) })
  const client = openRaw(t, gateway.port)
  client.write(admittedUpload(gateway, target, 1000))
  client.write('x'.repeat(10)) // then nothing
  return { gateway, upstream, client, closedAfterMs: await closedWithin(client, 5000) }
}

/** Writes a byte every `gapMs` until the socket closes; resolves with how many it got out. */
function trickle(client: ReturnType<typeof openRaw>, gapMs: number, limit = 10_000): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0
    const timer = setInterval(() => {
      if (client.socket.destroyed || client.socket.writableEnded || sent >= limit) {
        clearInterval(timer)
        resolve(sent)
        return
      }
      client.socket.write('x')
      sent += 1
    }, gapMs)
    void client.closed.then(() => {
      clearInterval(timer)
      resolve(sent)
    })
  })
}

/** Trickles a body until the server closes: it must, soon, after answering `status` with Connection: close. */
async function answeredUnread(t: Test, client: ReturnType<typeof openRaw>, status: number) {
  void trickle(client, 100)
  const closedAfterMs = await closedWithin(client, 5000)
  t.ok(closedAfterMs < 5000, `the server closed the connection (after ${closedAfterMs} ms)`)
  t.match(client.received(), new RegExp(`^HTTP/1.1 ${status} `))
  t.match(client.received(), /\r\nConnection: close\r\n/i)
}

for (const [name, env, lines, status] of [
  ['401, no assertion', {}, [], 401],
  ['403, network not allowed', { ALLOWED_CIDRS: '10.0.0.0/8' }, [], 403],
  ['400, a path that is refused', {}, ['X-Goog-IAP-JWT-Assertion: ASSERTION'], 400],
] as const) {
  t.test(`a refused request's trickled body is not read: ${name}`, async (t) => {
    const { gateway, upstream } = await setup(t, env)
    const client = openRaw(t, gateway.port)
    const target = status === 400 ? '/a/../b' : '/api/v1/document-store/upsert'
    client.write(
      httpHead([
        `POST ${target} HTTP/1.1`,
        'Host: app.example',
        'Content-Length: 1000000',
        ...lines.map((line) => line.replace('ASSERTION', gateway.assertion())),
      ]),
    )
    await answeredUnread(t, client, status)
    t.equal(upstream.seen.length, 0)
  })
}

for (const [name, target, status] of [
  ['healthz, answered to anyone', '/_gateway/healthz', 200],
  ['readyz, answered to anyone', '/_gateway/readyz', 200],
  ['a malformed percent-escape, refused by the router', '/%zz', 400],
] as const) {
  t.test(`a trickled body is not read where no stage runs: ${name}`, async (t) => {
    // from a network the allowlist refuses, without an assertion: these are answered before both
    const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '10.0.0.0/8' })
    const client = openRaw(t, gateway.port)
    const method = status === 200 ? 'GET' : 'PUT'
    client.write(
      httpHead([`${method} ${target} HTTP/1.1`, 'Host: app.example', 'Content-Length: 1000000000']),
    )
    await answeredUnread(t, client, status)
    t.equal(upstream.seen.length, 0)
  })
}

t.test('a target the router refuses gets the generic refusal and a log line', async (t) => {
  const { gateway } = await setup(t)
  const client = openRaw(t, gateway.port)
  client.write(httpHead(['GET /%zz/secret-path?token=abc HTTP/1.1', 'Host: app.example']))
  const answer = await client.waitFor(/\}$/)
  t.match(answer, /^HTTP\/1.1 400 Bad Request\r\n/)
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))
  t.match(body, { error: 'Bad Request', requestId: /^[0-9a-f-]{36}$/ })
  t.same(Object.keys(body), ['error', 'requestId'], 'no code, no message, no path echoed')
  t.notMatch(answer, /FST_ERR|secret-path/)
  t.notMatch(answer, /Connection: close/i, 'without a body the connection stays open')
  t.match(
    gateway.logs.find((entry) => entry.reason !== undefined),
    {
      message: 'request refused',
      reason: 'request_invalid:FST_ERR_BAD_URL',
      requestId: body.requestId,
      httpRequest: { requestMethod: 'GET', requestUrl: '/%zz/secret-path', status: 400 },
    },
  )
})

t.test('a refused chunked body is not read either', async (t) => {
  const { gateway } = await setup(t)
  const client = openRaw(t, gateway.port)
  client.write(httpHead(['POST /x HTTP/1.1', 'Host: app.example', 'Transfer-Encoding: chunked']))
  client.write('ffff\r\n')
  await answeredUnread(t, client, 401)
})

t.test('an Expect the gateway does not know: 417, and the connection closes', async (t) => {
  const { gateway } = await setup(t)
  const client = openRaw(t, gateway.port)
  client.write(
    httpHead(['POST /x HTTP/1.1', 'Host: app.example', 'Content-Length: 1000000', 'Expect: magic']),
  )
  await answeredUnread(t, client, 417)
})

t.test('a refused request without a body keeps its connection for the next one', async (t) => {
  const { gateway } = await setup(t)
  const client = openRaw(t, gateway.port)
  client.write(httpHead(['GET /x HTTP/1.1', 'Host: app.example']))
  await client.waitFor(/^HTTP\/1.1 401 [\s\S]*\}$/)
  client.write(httpHead(['GET /_gateway/healthz HTTP/1.1', 'Host: app.example']))
  await client.waitFor(/HTTP\/1.1 200 [\s\S]*ok\n$/)
  t.notMatch(client.received(), /Connection: close/i)
})

t.test(
  'a stalled admitted upload gets 408 after CLIENT_BODY_TIMEOUT_MS, and the upstream request ends',
  async (t) => {
    const { gateway, upstream, client, closedAfterMs } = await stalledUpload(
      t,
      500,
      '/api/v1/document-store/upsert',
    )
    t.ok(closedAfterMs >= 500 && closedAfterMs < 5000, `closed after ${closedAfterMs} ms`)
    t.match(client.received(), /^HTTP\/1.1 408 Request Timeout\r\n/)
    t.match(client.received(), /\r\nConnection: close\r\n/i)
    t.match(
      gateway.logs.find((entry) => entry.reason === 'client_body_timeout'),
      { httpRequest: { status: 408 } },
    )
    await sleep(100)
    t.equal(upstream.seen.length, 0, 'the upstream never got a whole request')
  },
)

t.test('a slow but steady admitted upload is not cut: the limit is between reads', async (t) => {
  const { gateway, upstream } = await setup(t, { CLIENT_BODY_TIMEOUT_MS: '500' })
  const client = openRaw(t, gateway.port)
  client.write(admittedUpload(gateway, '/api/v1/document-store/upsert', 15, true))
  t.equal(await trickle(client, 150, 15), 15) // 2.25 s in all, far over the idle limit
  await client.waitFor(/^HTTP\/1.1 200 /)
  await client.closed
  t.equal(upstream.seen[0]?.bodyBytes, 15)
})

t.test('an upload the app is slow to take is not cut: only the client’s silence counts', async (t) => {
  const { gateway, upstream } = await setup(t, { CLIENT_BODY_TIMEOUT_MS: '1000' })
  const body = Buffer.alloc(32 * 1024 * 1024, 1) // more than the sockets between can buffer
  const client = openRaw(t, gateway.port)
  // the upstream reads nothing for 4 s, four times the limit
  client.write(admittedUpload(gateway, '/slow?ms=4000', body.length, true))
  client.write(body)
  await client.waitFor(/^HTTP\/1.1 200 /, 30_000)
  await client.closed
  t.equal(upstream.seen[0]?.bodyBytes, body.length)
})

t.test('an app that answers before the body is in: a stall after that answer still ends', async (t) => {
  // the upstream answers 302 at once, reading nothing
  const { client, closedAfterMs } = await stalledUpload(t, 300, '/redirect')
  t.ok(closedAfterMs < 5000, `closed after ${closedAfterMs} ms`)
  t.match(client.received(), /^HTTP\/1.1 302 Found\r\n/)
  t.notMatch(client.received(), /408/, 'no second answer after the first')
})

t.test('a body that stalls while the app streams its answer: the connection is cut', async (t) => {
  // the upstream answers at once, an event a second, and reads nothing
  const { client, closedAfterMs } = await stalledUpload(t, 300, '/sse?events=5&gapMs=1000')
  t.ok(closedAfterMs < 2500, `closed after ${closedAfterMs} ms, before the stream would have ended`)
  t.match(client.received(), /^HTTP\/1.1 200 OK\r\n[\s\S]*\r\nconnection: close\r\n/i)
  t.notMatch(client.received(), /event 4/)
})

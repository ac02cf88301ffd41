// A second round of attacks found credentials and query strings in the gateway's own log lines once the
// level was turned up: at debug the WebSocket path logged `url: ws://...?token=...` (@fastify/http-proxy),
// at trace a malformed request's line carried the raw packet, query string, Authorization, Cookie and
// Proxy-Authorization included (Fastify's client-error log). A review then found a password in a refused
// absolute target (`http://user:pw@h/x`) logged at WARN, the default level, and fragments (`/x#...`)
// logged as they came. This runs a real gateway process at every LOG_LEVEL, sends it every kind of
// request with planted canary values, and greps what it wrote.
import { connect } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { freePort } from '../../dev/free-port.ts'
import { LOG_LEVELS } from '../../proxy/config.ts'
import { type GatewayProcess, gatewayInFront, openRaw, rawRequest, spawnGateway } from '../helpers/gateway.ts'
import { createSigningKey, signAssertion, startKeyServer, TEST_AUDIENCE } from '../helpers/iap.ts'
import { startUpstream } from '../helpers/upstream.ts'

/** Every value here must never appear in a log line, at any level. */
const CANARY = {
  query: 'canary-query-5f1e',
  authorization: 'canary-authorization-9b2c',
  proxyAuthorization: 'canary-proxy-authorization-77d0',
  cookie: 'canary-cookie-a41f',
  badAssertion: 'canary-assertion-0c3e',
  wsQuery: 'canary-ws-token-e6b8',
  userinfo: 'canary-userinfo-password-3d9a',
  fragment: 'canary-fragment-b7c1',
}

const credentialLines = (assertion: string) => [
  `Authorization: Bearer ${CANARY.authorization}`,
  `Proxy-Authorization: Bearer ${CANARY.proxyAuthorization}`,
  `Cookie: session=${CANARY.cookie}`,
  `X-Goog-IAP-JWT-Assertion: ${assertion}`,
]

const request = (firstLine: string, lines: string[], extra: string[] = []) =>
  [firstLine, 'Host: app.example', ...lines, ...extra, 'Connection: close', '', ''].join('\n')

/** Every path a request can take through the gateway, each carrying the canaries. */
async function sendEverything(gateway: GatewayProcess, assertion: string): Promise<void> {
  const valid = credentialLines(assertion)
  const forged = credentialLines(CANARY.badAssertion)
  const q = `?token=${CANARY.query}`
  await rawRequest(gateway.port, request(`GET /api/v1/chatflows${q} HTTP/1.1`, valid)) // proxied
  await rawRequest(gateway.port, request(`GET /api/v1/chatflows${q} HTTP/1.1`, forged)) // 401
  await rawRequest(gateway.port, request(`GET /a/../b${q} HTTP/1.1`, valid)) // 400 after admission
  await rawRequest(gateway.port, request(`GET http://other.example/x${q} HTTP/1.1`, valid)) // 400 target
  const userinfo = `http://user:${CANARY.userinfo}@app.example/x`
  await rawRequest(gateway.port, request(`GET ${userinfo} HTTP/1.1`, valid)) // 400 target
  await rawRequest(gateway.port, request(`GET ${userinfo}#${CANARY.fragment} HTTP/1.1`, valid))
  await rawRequest(gateway.port, request(`GET user:${CANARY.userinfo}@app.example HTTP/1.1`, valid))
  const fragment = `#token=${CANARY.fragment}`
  await rawRequest(gateway.port, request(`GET /api/v1/chatflows${fragment} HTTP/1.1`, valid)) // proxied
  await rawRequest(gateway.port, request(`GET /x${fragment}${q} HTTP/1.1`, forged)) // 401
  await rawRequest(gateway.port, request(`GET /_gateway/nope${q} HTTP/1.1`, valid)) // 404 reserved
  await rawRequest(gateway.port, request(`GET /_gateway/readyz${q} HTTP/1.1`, valid))
  await rawRequest(gateway.port, request(`GET /slow?ms=2000&token=${CANARY.query} HTTP/1.1`, valid)) // 504
  await rawRequest(
    gateway.port,
    request(`POST /x${q} HTTP/1.1`, valid, ['Expect: magic', 'Content-Length: 1']),
  ) // 417
  await rawRequest(gateway.port, request(`GET /%zz${q} HTTP/1.1`, valid)) // Fastify's bad URL
  // Malformed requests: Node's parser refuses them, and Fastify logs the client error.
  await rawRequest(gateway.port, request(`GET /x${q} HTTP/1.1`, valid, ['Bad Header: x']))
  await rawRequest(
    gateway.port,
    request(`GET /x${q} HTTP/1.1`, valid, ['Content-Length: 1', 'Content-Length: 2']),
  )
  await rawRequest(gateway.port, request(`GET /x${q} HTTP/1.1`, valid, [`X-Huge: ${'h'.repeat(20_000)}`]))
  // A WebSocket that is admitted, one that is refused, and an upgrade that is not a WebSocket.
  await new Promise<void>((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/ws?token=${CANARY.wsQuery}`, {
      headers: {
        authorization: `Bearer ${CANARY.authorization}`,
        'proxy-authorization': `Bearer ${CANARY.proxyAuthorization}`,
        cookie: `session=${CANARY.cookie}`,
        'x-goog-iap-jwt-assertion': assertion,
      },
    })
    socket.once('message', () => {
      socket.close()
      resolve()
    })
    socket.once('error', reject)
  })
  await new Promise<void>((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/ws?token=${CANARY.wsQuery}`, {
      headers: { cookie: `session=${CANARY.cookie}`, 'x-goog-iap-jwt-assertion': CANARY.badAssertion },
    })
    socket.once('unexpected-response', () => resolve())
    socket.once('error', () => resolve())
  })
  await rawRequest(
    gateway.port,
    request(`GET /x${q} HTTP/1.1`, valid, [
      'Connection: Upgrade, HTTP2-Settings, close',
      'Upgrade: h2c',
      'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
    ]).replace('Connection: close\n', ''),
  ).catch(() => undefined)
  // A client that leaves mid-request.
  await new Promise<void>((resolve) => {
    const socket = connect(gateway.port, '127.0.0.1', () => {
      socket.write(
        request(`POST /x${q} HTTP/1.1`, valid, ['Content-Length: 100']).replace('\n\n', '\r\n\r\n'),
      )
      setTimeout(() => {
        socket.destroy()
        resolve()
      }, 100)
    })
  })
}

/**
 * A log line with every serialised Buffer (`{"type":"Buffer","data":[71,69,84,...]}`, how pino writes
 * one) decoded and appended: bytes that spell a credential leak it as surely as the text would.
 */
function readable(line: string): string {
  const decoded: string[] = []
  JSON.parse(line, (_key, value) => {
    if (value?.type === 'Buffer' && Array.isArray(value.data))
      decoded.push(Buffer.from(value.data).toString('latin1'))
    return value
  })
  return [line, ...decoded].join(' ')
}

t.test('no credential and no query string in any log line, at any LOG_LEVEL', async (t) => {
  const key = createSigningKey()
  const keyServer = await startKeyServer({ keys: [key] })
  const upstream = await startUpstream()
  t.teardown(async () => {
    await upstream.close()
    await keyServer.close()
  })
  for (const level of LOG_LEVELS) {
    const gateway = await spawnGateway({
      UPSTREAM_URL: upstream.url,
      ALLOWED_CIDRS: '127.0.0.1',
      IAP_AUDIENCE: TEST_AUDIENCE,
      IAP_KEYS_URL: keyServer.url,
      UPSTREAM_TIMEOUT_MS: '200',
      LOG_LEVEL: level,
      // Above info the process never logs that it listens: it is told where instead.
      PORT: String(await freePort()),
    })
    const assertion = signAssertion(key)
    // Keys load in the background: wait until a request is admitted. Without that, nothing below would
    // be proxied, and the log of the admitted path would never have been looked at.
    let admitted = false
    for (let tries = 0; tries < 100 && !admitted; tries++) {
      const answer = await rawRequest(
        gateway.port,
        request('GET /ready HTTP/1.1', [`X-Goog-IAP-JWT-Assertion: ${assertion}`]),
      )
      admitted = answer.startsWith('HTTP/1.1 200')
      if (!admitted) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.ok(admitted, `LOG_LEVEL=${level}: the gateway admits signed requests`)
    const seenBefore = upstream.seen.length
    await sendEverything(gateway, assertion)
    t.ok(
      upstream.seen.some((seen, i) => i >= seenBefore && seen.url.includes(CANARY.query)),
      `LOG_LEVEL=${level}: the canaries' admitted requests reached the app`,
    )
    t.ok(
      upstream.seen.some((seen, i) => i >= seenBefore && seen.url.includes(CANARY.fragment)),
      `LOG_LEVEL=${level}: a fragment is passed on as sent (it is the app's, like the query)`,
    )
    await gateway.stop()
    const written = gateway.stdout.map(readable).join('\n') + gateway.stderr.join('')
    for (const [name, value] of Object.entries({ ...CANARY, assertion })) {
      t.notOk(written.includes(value), `LOG_LEVEL=${level}: no ${name} in the log`)
    }
    if (level === 'trace') {
      t.ok(gateway.stdout.length > 20, 'trace wrote plenty, and none of it leaked')
    }
  }
})

t.test('a malformed request: a short refusal, and a log line with the parser’s code only', async (t) => {
  const { gateway } = await gatewayInFront(t, { LOG_LEVEL: 'trace' })
  const badToken = await rawRequest(
    gateway.port,
    request(`GET /x?token=${CANARY.query} HTTP/1.1`, [], ['Bad Header: x']),
  )
  t.match(
    badToken,
    /^HTTP\/1.1 400 Bad Request\r\n[\s\S]*connection: close\r\n\r\n\{"error":"Bad Request"\}$/,
  )
  const huge = await rawRequest(gateway.port, request('GET /x HTTP/1.1', [`X-Huge: ${'h'.repeat(20_000)}`]))
  t.match(huge, /^HTTP\/1.1 431 Request Header Fields Too Large\r\n/)
  t.match(
    gateway.logs.filter((entry) => entry.message === 'malformed request refused'),
    [
      { severity: 'DEBUG', reason: 'client_error:HPE_INVALID_HEADER_TOKEN', status: 400 },
      { severity: 'DEBUG', reason: 'client_error:HPE_HEADER_OVERFLOW', status: 431 },
    ],
  )
  t.notMatch(gateway.rawLog.join(''), /rawPacket|canary/)
})

t.test('a malformed request behind an answer already under way only closes the connection', async (t) => {
  const { gateway } = await gatewayInFront(t)
  const client = openRaw(t, gateway.port)
  client.write('GET /sse?events=5&gapMs=200 HTTP/1.1\r\nHost: a\r\n\r\n')
  await client.waitFor(/data: event 0/)
  client.write('GARBAGE\r\n\r\n') // parsed while the stream is still being written
  await client.closed
  t.match(client.received(), /^HTTP\/1.1 200 OK/)
  t.notMatch(client.received(), /HTTP\/1.1 400/, 'nothing written into the middle of the stream')
})

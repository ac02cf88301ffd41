import { verify } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import WebSocket from 'ws'
import { createIapEmulator, JWK_KEYS_PATH, KEYS_PATH } from '../../dev/iap-emulator.ts'
import { createSigningKey } from '../../dev/iap-signer.ts'
import { type Echo, type EchoUpstream, jwtParts, startEchoUpstream } from './echo-upstream.ts'

const audience = '/projects/123456789012/global/backendServices/987654321'
const identity = { email: 'dev@example.com', sub: 'accounts.google.com:1234' }

type Reply = { status: number; headers: http.IncomingHttpHeaders; body: string }

/** node:http with a raw header array, so the tests can send exact spellings and repeats. */
function send(
  url: string,
  options: { method?: string; headers?: string[]; body?: Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.headers ?? {} },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

async function startChain(t: { teardown(fn: () => unknown): void }, target?: URL, host = '127.0.0.1') {
  const upstream: EchoUpstream | undefined = target ? undefined : await startEchoUpstream()
  const key = createSigningKey()
  const emulator = createIapEmulator({
    target: target ?? new URL(upstream?.url as string),
    key,
    identity,
    audience,
    tokenLifetimeSeconds: 600,
    keysMaxAgeSeconds: 300,
  })
  const address = await emulator.listen(0, host)
  t.teardown(async () => {
    await emulator.close()
    await upstream?.close()
  })
  const h = address.address.includes(':') ? `[${address.address}]` : address.address
  return { upstream, emulator, key, url: `http://${h}:${address.port}` }
}

function headerValues(echo: Pick<Echo, 'rawHeaders'>, name: string): string[] {
  const values: string[] = []
  for (let i = 0; i < echo.rawHeaders.length; i += 2) {
    if ((echo.rawHeaders[i] as string).toLowerCase() === name) values.push(echo.rawHeaders[i + 1] as string)
  }
  return values
}

function googleSpellings(echo: Pick<Echo, 'rawHeaders'>): string[] {
  return echo.rawHeaders.filter((_, i) => i % 2 === 0 && /^x[-_]goog[-_]/i.test(echo.rawHeaders[i] as string))
}

t.test(
  'client-sent Google headers are dropped in every spelling and a signed assertion is added',
  async (t) => {
    const { url, emulator } = await startChain(t)
    const forged = 'eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImV2aWxAZXZpbC50ZXN0In0.'
    const reply = await send(`${url}/some/path?q=1`, {
      method: 'POST',
      headers: [
        ['Host', 'app.example.test'],
        ['x-goog-iap-jwt-assertion', forged],
        ['X_Goog_Iap_Jwt_Assertion', forged],
        ['X-GOOG-AUTHENTICATED-USER-EMAIL', 'accounts.google.com:evil@evil.test'],
        ['x_goog_authenticated_user_id', 'accounts.google.com:666'],
        ['X-Goog-Anything-Else', 'x'],
        ['X-Forwarded-For', '6.6.6.6'],
        ['X-Forwarded-Proto', 'http'],
        ['Proxy-Authorization', 'Bearer not-for-the-app'],
        // the hop-by-hop trick: a listed header is dropped here, and the emulator adds no such list
        ['Connection', 'keep-alive, x-forwarded-user'],
        ['X-Forwarded-User', 'evil'],
        ['X-Forwarded-Email', 'evil@evil.test'],
        ['Content-Type', 'application/octet-stream'],
      ].flat(),
      body: Buffer.alloc(1024 * 1024, 1),
    })
    t.equal(reply.status, 200)
    t.same(reply.headers['set-cookie'], ['a=1', 'b=2'], 'repeated response headers survive')
    const echo = JSON.parse(reply.body) as Echo
    t.equal(echo.method, 'POST')
    t.equal(echo.url, '/some/path?q=1')
    t.equal(echo.bodyBytes, 1024 * 1024)
    t.same(headerValues(echo, 'host'), ['app.example.test'], 'the Host the client asked for travels on')
    t.same(
      headerValues(echo, 'x-forwarded-for'),
      ['6.6.6.6,127.0.0.1,127.0.0.1'],
      'client then balancer appended',
    )
    t.same(
      headerValues(echo, 'x-forwarded-proto'),
      ['https'],
      "the balancer's https replaces the client's: Flowise's image gives Secure cookies to https only",
    )
    t.same(headerValues(echo, 'proxy-authorization'), [])
    t.same(headerValues(echo, 'x-forwarded-user'), [], 'named in Connection, so hop-by-hop')
    t.same(
      headerValues(echo, 'x-forwarded-email'),
      ['evil@evil.test'],
      'left for the gateway to strip, as IAP does',
    )
    t.same(googleSpellings(echo), [
      'X-Goog-IAP-JWT-Assertion',
      'X-Goog-Authenticated-User-Email',
      'X-Goog-Authenticated-User-Id',
    ])
    t.same(headerValues(echo, 'x-goog-authenticated-user-email'), ['accounts.google.com:dev@example.com'])
    t.same(headerValues(echo, 'x-goog-authenticated-user-id'), ['accounts.google.com:1234'])

    const [token] = headerValues(echo, 'x-goog-iap-jwt-assertion') as [string]
    t.equal(token, emulator.currentAssertion().token)
    const keys = await send(`${url}${KEYS_PATH}`)
    const { header, payload } = jwtParts(token)
    const pem = (JSON.parse(keys.body) as Record<string, string>)[header.kid as string] as string
    const [h, p, s] = token.split('.') as [string, string, string]
    const signed = Buffer.from(`${h}.${p}`)
    t.ok(verify('sha256', signed, { key: pem, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')))
    t.match(payload, { email: 'dev@example.com', aud: audience, iss: 'https://cloud.google.com/iap' })
  },
)

t.test('the key set is served like gstatic’s, in both forms, with a max-age', async (t) => {
  const { url, key } = await startChain(t)
  const pem = await send(`${url}${KEYS_PATH}?cache-buster=1`)
  t.equal(pem.status, 200)
  t.equal(pem.headers['cache-control'], 'public, max-age=300')
  t.equal(pem.headers['content-type'], 'application/json; charset=utf-8')
  t.same(Object.keys(JSON.parse(pem.body)), [key.kid])
  const jwk = await send(`${url}${JWK_KEYS_PATH}`)
  t.match(JSON.parse(jwk.body), { keys: [{ kid: key.kid, kty: 'EC', crv: 'P-256' }] })
  const head = await send(`${url}${KEYS_PATH}`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal(Number(head.headers['content-length']), Buffer.byteLength(pem.body))
  const post = await send(`${url}${KEYS_PATH}`, { method: 'POST' })
  t.equal(post.status, 405)
  t.equal(post.headers.allow, 'GET, HEAD')
})

t.test(
  'server-sent events reach the client one by one, and a client that leaves ends the stream',
  async (t) => {
    const { url, upstream } = await startChain(t)
    const controller = new AbortController()
    const streamAtUpstream = (upstream as EchoUpstream).nextSse()
    const res = await fetch(`${url}/sse`, { signal: controller.signal })
    t.equal(res.headers.get('content-type'), 'text/event-stream')
    const stream = await streamAtUpstream
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    stream.send('one')
    t.equal(
      new TextDecoder().decode((await reader.read()).value),
      'data: one\n\n',
      'not held back in a buffer',
    )
    stream.send('two')
    t.equal(new TextDecoder().decode((await reader.read()).value), 'data: two\n\n')
    controller.abort()
    await reader.read().catch(() => undefined)
    const closedInTime = await Promise.race([stream.closed.then(() => true), sleep(5000).then(() => false)])
    t.ok(closedInTime, 'the upstream saw its response closed once the client left')
  },
)

t.test('WebSocket upgrades carry the same headers and relay frames both ways', async (t) => {
  const { url } = await startChain(t)
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket?x=1`, {
    headers: { 'x-goog-iap-jwt-assertion': 'forged', X_Goog_Authenticated_User_Email: 'evil' },
  })
  const [first] = (await once(ws, 'message')) as [Buffer]
  const echo = JSON.parse(first.toString()) as Echo
  t.equal(echo.url, '/socket?x=1')
  t.same(googleSpellings(echo), [
    'X-Goog-IAP-JWT-Assertion',
    'X-Goog-Authenticated-User-Email',
    'X-Goog-Authenticated-User-Id',
  ])
  t.not(headerValues(echo, 'x-goog-iap-jwt-assertion')[0], 'forged')
  t.same(headerValues(echo, 'x-forwarded-for'), ['127.0.0.1,127.0.0.1'])
  ws.send('ping')
  const [pong] = (await once(ws, 'message')) as [Buffer]
  t.equal(pong.toString(), 'ping')
  ws.close()
  await once(ws, 'close')
})

t.test('a frame sent together with the upgrade request is not lost', async (t) => {
  const { url } = await startChain(t)
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1')
  await once(socket, 'connect')
  t.teardown(() => socket.destroy())
  const mask = Buffer.from([1, 2, 3, 4])
  const payload = Buffer.from('early')
  const frame = Buffer.concat([
    Buffer.from([0x81, 0x80 | payload.length]),
    mask,
    payload.map((byte, i) => byte ^ (mask[i % 4] as number)),
  ])
  const handshake = [
    'GET /socket HTTP/1.1',
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    '',
    '',
  ].join('\r\n')
  socket.write(Buffer.concat([Buffer.from(handshake), frame]))
  let received = ''
  for await (const chunk of socket) {
    received += chunk.toString('latin1')
    if (received.includes('early')) break
  }
  t.match(received, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  t.ok(received.includes('\x81\x05early'), 'the frame came back, unmasked, from the echo upstream')
})

t.test('an upgrade the gateway refuses is relayed as its answer', async (t) => {
  const refusing = http.createServer((_req, res) => {
    res.writeHead(401, { 'content-type': 'text/plain' }).end('no assertion, no socket')
  })
  refusing.listen(0, '127.0.0.1')
  await once(refusing, 'listening')
  t.teardown(() => refusing.close())
  const { url } = await startChain(t, new URL(`http://127.0.0.1:${(refusing.address() as AddressInfo).port}`))
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket`)
  ws.on('error', () => undefined)
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage]
  t.equal(res.statusCode, 401)
  let body = ''
  for await (const chunk of res) body += chunk
  t.equal(body, 'no assertion, no socket')
})

t.test('a gateway that does not answer is a 502 for requests and upgrades', async (t) => {
  const closed = http.createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const { port } = closed.address() as AddressInfo
  await new Promise((resolve) => closed.close(resolve))
  const { url } = await startChain(t, new URL(`http://127.0.0.1:${port}`))
  const reply = await send(`${url}/`)
  t.equal(reply.status, 502)
  t.equal(reply.body, `IAP emulator: the gateway at http://127.0.0.1:${port} did not answer\n`)
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket`)
  ws.on('error', () => undefined)
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage]
  t.equal(res.statusCode, 502)
  res.resume()
})

t.test('an upstream that dies mid-answer cuts the client off instead of ending cleanly', async (t) => {
  // a closed connection (FIN) and a reset one (RST) surface as different events in node:http
  for (const how of ['destroy', 'resetAndDestroy'] as const) {
    const dying = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('partial', () => setTimeout(() => res.socket?.[how](), 20))
    })
    dying.listen(0, '127.0.0.1')
    await once(dying, 'listening')
    t.teardown(() => dying.close())
    const { url } = await startChain(t, new URL(`http://127.0.0.1:${(dying.address() as AddressInfo).port}`))
    await t.rejects(send(`${url}/`), { code: 'ECONNRESET' }, how)
  }
})

t.test('IPv6 and IPv4-mapped client addresses are reported as the balancer would', async (t) => {
  const v6 = await startChain(t, undefined, '::1')
  const echo6 = JSON.parse((await send(`${v6.url}/`)).body) as Echo
  t.same(headerValues(echo6, 'x-forwarded-for'), ['::1,::1'])

  const mapped = await startChain(t, undefined, '::ffff:127.0.0.1')
  const port = new URL(mapped.url.replace('[::ffff:127.0.0.1]', '127.0.0.1')).port
  const echoMapped = JSON.parse((await send(`http://127.0.0.1:${port}/`)).body) as Echo
  t.same(headerValues(echoMapped, 'x-forwarded-for'), ['127.0.0.1,127.0.0.1'])
})

t.test('close() ends open WebSocket tunnels too', async (t) => {
  const { url, emulator } = await startChain(t)
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket`)
  await once(ws, 'message')
  const closed = once(ws, 'close')
  await emulator.close()
  await closed
  t.equal(ws.readyState, WebSocket.CLOSED, 'the tunnel closed with the emulator')
})

t.test('until the gateway has a port the emulator answers 503, then it forwards', async (t) => {
  const upstream = await startEchoUpstream()
  const emulator = createIapEmulator({
    key: createSigningKey(),
    identity,
    audience,
    tokenLifetimeSeconds: 600,
    keysMaxAgeSeconds: 300,
  })
  const { port } = await emulator.listen(0, '127.0.0.1')
  t.teardown(async () => {
    await emulator.close()
    await upstream.close()
  })
  const early = await send(`http://127.0.0.1:${port}/`)
  t.equal(early.status, 503)
  t.equal(early.headers['retry-after'], '1')
  t.equal(early.body, 'IAP emulator: the gateway is still starting\n')
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket`)
  ws.on('error', () => undefined)
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage]
  t.equal(res.statusCode, 503)
  res.resume()
  t.equal((await send(`http://127.0.0.1:${port}${KEYS_PATH}`)).status, 200, 'keys are served meanwhile')

  emulator.setTarget(new URL(upstream.url))
  t.equal((await send(`http://127.0.0.1:${port}/`)).status, 200)
})

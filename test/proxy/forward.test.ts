// proxy/forward.ts: what an admitted request becomes on its way to the upstream and back (headers,
// paths, methods, bodies), which targets it refuses, and that a client leaving stops the upstream too.
// Upstream failures have their own file (upstream-failures.test.ts).
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { gatewayInFront, gatewayInFrontOfRaw, rawRequest } from '../helpers/gateway.ts'

const setup = gatewayInFront

t.test(
  'the upstream gets one X-Forwarded-For address, the scheme and the Host the client used',
  async (t) => {
    const { gateway, upstream } = await setup(t)
    await fetch(`${gateway.url}/x`, {
      headers: {
        'x-forwarded-for': '1.2.3.4, 5.6.7.8',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil',
      },
    })
    const seen = upstream.seen[0]?.headers
    t.equal(seen?.['x-forwarded-for'], '127.0.0.1')
    t.equal(seen?.['x-forwarded-proto'], 'http', 'hops = 0: the client cannot claim https')
    t.equal(seen?.['x-forwarded-host'], `127.0.0.1:${gateway.port}`)
    t.equal(seen?.host, `127.0.0.1:${gateway.port}`, 'a plain-HTTP sidecar sees the Host the user typed')
  },
)

t.test('behind trusted proxies the forwarded scheme is kept', async (t) => {
  const { gateway, upstream } = await setup(t, { TRUST_PROXY_HOPS: '1' })
  await fetch(`${gateway.url}/x`, {
    headers: { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'https' },
  })
  await fetch(`${gateway.url}/x`, {
    headers: { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'gopher' },
  })
  t.equal(upstream.seen[0]?.headers['x-forwarded-proto'], 'https')
  t.equal(upstream.seen[1]?.headers['x-forwarded-proto'], 'http')
})

t.test('identity and Google credential headers are dropped in every spelling', async (t) => {
  const { gateway, upstream } = await setup(t)
  const names = [
    'X-Forwarded-Email',
    'x_forwarded_email',
    'X_FORWARDED_USER',
    'X-Forwarded-User',
    'X-Goog-Authenticated-User-Email',
    'x_goog_authenticated_user_id',
    'X-Goog-Iap-Jwt-Assertion',
    'x_goog_iap_jwt_assertion',
    'X-Serverless-Authorization',
    'x_serverless_authorization',
    'Forwarded',
    'X-Real-IP',
  ]
  const lines = names.map((name) => `${name}: spoofed`).join('\n')
  const response = await rawRequest(gateway.port, `GET /x HTTP/1.1\nHost: a\n${lines}\nConnection: close\n\n`)
  t.match(response, /^HTTP\/1.1 200/)
  const raw = upstream.seen[0]?.rawHeaders ?? []
  t.notOk(raw.includes('spoofed'), 'no spoofed value reached the upstream')
  t.notOk(upstream.seen[0]?.headers['x-forwarded-email'], 'IAP disabled: no identity set')
})

t.test('paths and query strings reach the upstream byte for byte', async (t) => {
  const { gateway, upstream } = await setup(t)
  const paths = ['/a/b?x=1&x=2&y=%20+&flag&e=%E2%9C%93', '/api/v1/prediction/abc?q=a%2Fb', '/', '/x?']
  for (const path of paths) {
    const response = await rawRequest(gateway.port, `GET ${path} HTTP/1.1\nHost: a\nConnection: close\n\n`)
    t.match(response, /^HTTP\/1.1 200/, path)
  }
  t.same(
    upstream.seen.map((seen) => seen.url),
    paths,
  )
})

t.test('every method is proxied', async (t) => {
  const { gateway, upstream } = await setup(t)
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const response = await fetch(`${gateway.url}/m`, { method })
    t.equal(response.status, 200, method)
  }
  t.same(
    upstream.seen.map((seen) => seen.method),
    ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
  )
})

t.test(
  'bodies are passed on as they are: chunked, no Content-Type, or one only the app understands',
  async (t) => {
    const { gateway, upstream } = await setup(t)
    const bare = await rawRequest(
      gateway.port,
      'POST /upload HTTP/1.1\nHost: a\nContent-Length: 5\nConnection: close\n\nhello',
    )
    t.match(bare, /^HTTP\/1.1 200/)
    t.equal(upstream.seen[0]?.bodyBytes, 5)
    // The gateway parses no body (nginx does not either): the app answers for its own media types.
    const odd = await rawRequest(
      gateway.port,
      'POST /upload HTTP/1.1\nHost: a\nContent-Type: ;;\nContent-Length: 5\nConnection: close\n\nhello',
    )
    t.match(odd, /^HTTP\/1.1 200/)
    t.same([upstream.seen[1]?.headers['content-type'], upstream.seen[1]?.bodyBytes], [';;', 5])
    const chunked = await rawRequest(
      gateway.port,
      'POST /upload HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\nConnection: close\n\n5\nhello\n0\n\n',
    )
    t.match(chunked, /^HTTP\/1.1 200/, 'no Content-Length: streamed on')
    t.equal(upstream.seen[2]?.bodyBytes, 5)
  },
)

t.test('upstream redirects pass through unchanged', async (t) => {
  const { gateway } = await setup(t)
  const response = await fetch(`${gateway.url}/redirect`, { redirect: 'manual' })
  t.equal(response.status, 302)
  t.equal(response.headers.get('location'), '/landing')
})

t.test('targets that could leave the path are refused with 400, never normalised', async (t) => {
  const { gateway, upstream } = await setup(t)
  for (const target of [
    '/a/../../etc',
    '/a/%2e%2e/etc',
    '/a/%2E%2E',
    '/a\\..\\b',
    '/a/%5c..%5cb',
    '/%zz',
    '//other/x',
  ]) {
    const response = await rawRequest(gateway.port, `GET ${target} HTTP/1.1\nHost: a\nConnection: close\n\n`)
    t.match(response, /^HTTP\/1.1 400/, target)
  }
  t.match(
    await rawRequest(gateway.port, 'GET /search?q=../x&p=%2e%2e HTTP/1.1\nHost: a\nConnection: close\n\n'),
    /^HTTP\/1.1 200/,
    'the query is the app’s business',
  )
  t.same(
    upstream.seen.map((seen) => seen.url),
    ['/search?q=../x&p=%2e%2e'],
  )
})

t.test('an HTTP/1.0 request without Connection is forwarded', async (t) => {
  const { gateway, upstream } = await setup(t)
  t.match(await rawRequest(gateway.port, 'GET /old HTTP/1.0\nHost: a\n\n'), /^HTTP\/1.1 200/)
  t.equal(upstream.seen[0]?.url, '/old')
})

t.test('a client that leaves mid-stream: the upstream request is aborted too', async (t) => {
  const { upstream, gateway } = await gatewayInFrontOfRaw(t, (socket) =>
    socket.write(
      'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata:1\r\n',
    ),
  )
  const abort = new AbortController()
  const response = await fetch(`${gateway.url}/sse`, { signal: abort.signal })
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  await reader.read()
  abort.abort()
  const closed = await new Promise<boolean>((resolve) => {
    const socket = upstream.sockets[0] as Socket
    if (socket.destroyed) resolve(true)
    socket.once('close', () => resolve(true))
  })
  t.ok(closed, 'the upstream connection was closed, not left streaming to nobody')
  await sleep(50)
  t.same(
    gateway.logs.filter((line) => line.reason),
    [],
    'a client leaving is not an upstream failure',
  )
})

t.test('a client that leaves before the upstream answers: the upstream request is aborted', async (t) => {
  // An LLM may think for minutes before its first byte; nobody is waiting for it any more.
  const { upstream, gateway } = await gatewayInFrontOfRaw(t, () => {}) // reads the request, never answers
  const abort = new AbortController()
  const pending = fetch(`${gateway.url}/slow`, { signal: abort.signal })
  for (let i = 0; i < 500 && upstream.sockets.length === 0; i++) await sleep(10)
  await sleep(20) // the request has reached the upstream
  abort.abort()
  await t.rejects(pending)
  const socket = upstream.sockets[0] as Socket
  for (let i = 0; i < 500 && !socket.destroyed; i++) await sleep(10)
  t.ok(socket.destroyed, 'the upstream connection was closed')
  await sleep(50)
  t.same(
    gateway.logs.filter((line) => line.reason),
    [],
    'a client leaving is not an upstream failure',
  )
})

t.test('an upstream answer without Connection still loses its hop-by-hop headers', async (t) => {
  // HTTP/1.1 lets a server leave Connection out.
  const { gateway } = await gatewayInFrontOfRaw(t, (socket) =>
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=600\r\nX-App: kept\r\n\r\nok'),
  )
  const response = await fetch(`${gateway.url}/x`)
  t.equal(await response.text(), 'ok')
  t.equal(response.headers.get('x-app'), 'kept')
  t.notMatch(
    response.headers.get('keep-alive') ?? '',
    /600/,
    "the upstream's keep-alive is not announced as ours",
  )
})

t.test("headers named by an upstream's repeated Connection lines do not reach the client", async (t) => {
  // undici hands repeated lines over as an array; each line's names are hop-by-hop all the same.
  const { gateway } = await gatewayInFrontOfRaw(t, (socket) =>
    socket.end(
      'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: X-Upstream-Internal\r\n' +
        'X-Upstream-Internal: for the next hop only\r\nX-App: kept\r\nContent-Length: 2\r\n\r\nok',
    ),
  )
  const response = await fetch(`${gateway.url}/x`)
  t.equal(await response.text(), 'ok')
  t.equal(response.headers.get('x-app'), 'kept')
  t.equal(response.headers.get('x-upstream-internal'), null)
})

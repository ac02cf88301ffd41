// What the forwarder does when a side goes away mid-request, and which request targets it refuses.
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { rawRequest, startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'

/** An upstream that answers every request with `script(socket)`, keeping the sockets it saw. */
async function rawUpstream(t: Test, script: (socket: Socket) => void) {
  const sockets: Socket[] = []
  const server = createNetServer((socket) => {
    sockets.push(socket)
    socket.once('data', () => script(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sockets }
}

async function gatewayFor(t: Test, upstreamUrl: string) {
  const gateway = await startGateway({
    UPSTREAM_URL: upstreamUrl,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(() => gateway.close())
  return gateway
}

t.test('an upstream that dies after its headers: the client connection is cut, not ended', async (t) => {
  const upstream = await rawUpstream(t, (socket) =>
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', () => socket.destroy()),
  )
  const gateway = await gatewayFor(t, upstream.url)
  const response = await fetch(`${gateway.url}/download`)
  t.equal(response.status, 200)
  await t.rejects(response.text(), 'a truncated body never reads as complete')
  for (let i = 0; i < 500 && !gateway.logs.some((line) => line.reason); i++) await sleep(10)
  t.match(
    gateway.logs.find((line) => line.reason),
    {
      reason: /^upstream_error:/,
      message: 'upstream failed after the response began',
    },
  )
})

t.test('a client that leaves mid-stream: the upstream request is aborted too', async (t) => {
  const upstream = await rawUpstream(t, (socket) =>
    socket.write(
      'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata:1\r\n',
    ),
  )
  const gateway = await gatewayFor(t, upstream.url)
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
  const upstream = await rawUpstream(t, () => {}) // reads the request, never answers
  const gateway = await gatewayFor(t, upstream.url)
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

t.test('a chunked upload (no Content-Length) is streamed on', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gateway = await gatewayFor(t, upstream.url)
  const response = await rawRequest(
    gateway.port,
    'POST /upload HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\nConnection: close\n\n5\nhello\n0\n\n',
  )
  t.match(response, /^HTTP\/1.1 200/)
  t.equal(upstream.seen[0]?.bodyBytes, 5)
})

t.test('an HTTP/1.0 request without Connection is forwarded', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gateway = await gatewayFor(t, upstream.url)
  t.match(await rawRequest(gateway.port, 'GET /old HTTP/1.0\nHost: a\n\n'), /^HTTP\/1.1 200/)
  t.equal(upstream.seen[0]?.url, '/old')
})

t.test('targets that could leave the path are refused with 400, never normalised', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gateway = await gatewayFor(t, upstream.url)
  for (const target of ['/a/%2e%2e/etc', '/a/%2E%2E', '/a\\..\\b', '/a/%5c..%5cb', '/%zz', '//other/x']) {
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

// An upload was cut with 408 although its client had sent everything: the idle-body limit judged the
// client when the socket timer came due, and under load that can be before Node has read what the client
// sent. Node runs due timers before it polls for I/O in each turn of its event loop (nodejs.org, "The
// Node.js Event Loop": timers, then poll), so a process that was busy for longer than
// CLIENT_BODY_TIMEOUT_MS found the limit passed with the client's bytes still unread in the kernel. The
// app's backpressure made it likely: while the app reads nothing, the gateway reads nothing from the
// client and the socket timer runs on; when the app takes the body again, what is left of the limit may
// be a few milliseconds (test/proxy/trickling-body-after-refusal.test.ts failed so under load). The
// verdict now waits until Node has polled the client's socket once more.
//
// The gateway, the app and the client run in this one process, so blocking its thread is the gateway
// being busy (as on a loaded machine), at a moment the test picks rather than by luck.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import {
  closedWithin,
  httpHead,
  openRaw,
  startVerifyingGateway,
  type VerifyingGateway,
} from '../helpers/gateway.ts'
import { until } from '../helpers/iap.ts'

const LIMIT_MS = 300

/** This process (gateway, app and client alike) does nothing for `ms`, as when the machine is loaded. */
const busyFor = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/**
 * An app that takes the body only once `release()` is called (at once when `held` is false), then
 * answers 200 with the number of bytes it got. `received(n)` resolves once it has taken n bytes.
 */
async function startApp(t: Test, held: boolean) {
  let release = () => {}
  const released = held ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve()
  let taken = 0
  const waiting = new Set<() => void>()
  const take = async (req: IncomingMessage, res: ServerResponse) => {
    await released
    for await (const chunk of req) {
      taken += (chunk as Buffer).length
      for (const check of waiting) check()
    }
    res.end(String(taken))
  }
  // The gateway cancelling the request (a 408) aborts it; the client's side of the test reports that.
  const server = createServer((req, res) => void take(req, res).catch(() => res.destroy()))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((done) => server.close(done))
  })
  const received = (bytes: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (taken < bytes) return
        waiting.delete(check)
        resolve()
      }
      waiting.add(check)
      check()
    })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, release, received }
}

async function gatewayInFrontOf(t: Test, appUrl: string): Promise<VerifyingGateway> {
  const gateway = await startVerifyingGateway({
    UPSTREAM_URL: appUrl,
    ALLOWED_CIDRS: '127.0.0.1',
    CLIENT_BODY_TIMEOUT_MS: String(LIMIT_MS),
  })
  t.teardown(() => gateway.close())
  return gateway
}

const uploadHead = (gateway: VerifyingGateway, length: number) =>
  httpHead([
    'POST /api/v1/document-store/upsert HTTP/1.1',
    'Host: app.example',
    `X-Goog-IAP-JWT-Assertion: ${gateway.assertion()}`,
    `Content-Length: ${length}`,
    'Connection: close',
  ])

t.test(
  'a gateway busy for longer than the limit does not blame a client whose bytes it has not read',
  async (t) => {
    const app = await startApp(t, false)
    const gateway = await gatewayInFrontOf(t, app.url)
    const chunk = Buffer.alloc(16 * 1024, 1)
    const client = openRaw(t, gateway.port)
    client.write(uploadHead(gateway, 3 * chunk.length))
    client.write(chunk)
    await app.received(chunk.length) // the gateway forwarded all it had and waits for more
    client.write(chunk) // in the gateway's kernel buffer at once (loopback)...
    busyFor(3 * LIMIT_MS) // ...and the gateway gets no CPU before the limit has passed
    client.write(chunk)
    t.ok((await closedWithin(client, 10_000)) < 10_000, 'the exchange ended')
    t.match(client.received(), /^HTTP\/1.1 200 /)
    t.match(client.received(), new RegExp(`\\r\\n\\r\\n${3 * chunk.length}$`), 'the app got the whole body')
  },
)

t.test(
  'an upload the app kept waiting is not cut when the gateway is busy as the app takes it again',
  async (t) => {
    const app = await startApp(t, true)
    const gateway = await gatewayInFrontOf(t, app.url)
    let appTakes = false
    let busyAtResume = false
    // When the app takes the body again, the gateway starts reading from the client again (Node resumes
    // the request's socket): the moment the flaky test's 408 came from, made certain here.
    gateway.app.server.once('request', (req: IncomingMessage) => {
      req.socket.on('resume', () => {
        if (!appTakes || busyAtResume) return
        busyAtResume = true
        busyFor(3 * LIMIT_MS)
      })
    })
    const body = Buffer.alloc(32 * 1024 * 1024, 1) // more than the sockets between can buffer
    const client = openRaw(t, gateway.port)
    client.write(uploadHead(gateway, body.length))
    client.write(body)
    await app.received(0)
    await new Promise((resolve) => setTimeout(resolve, 4 * LIMIT_MS)) // the app reads nothing
    appTakes = true
    app.release()
    t.ok((await closedWithin(client, 30_000)) < 30_000, 'the exchange ended')
    t.ok(busyAtResume, 'the gateway was busy when it began to read from the client again')
    t.match(client.received(), /^HTTP\/1.1 200 /)
    t.match(client.received(), new RegExp(`\\r\\n\\r\\n${body.length}$`), 'the app got the whole body')
  },
)

t.test(
  'a body that is all in while the app has not taken its end: the connection is not reset',
  async (t) => {
    const app = await startApp(t, true)
    const gateway = await gatewayInFrontOf(t, app.url)
    let request: IncomingMessage | undefined
    gateway.app.server.once('request', (req: IncomingMessage) => (request = req))
    const client = openRaw(t, gateway.port)
    const head = httpHead([
      'POST /api/v1/document-store/upsert HTTP/1.1',
      'Host: app.example',
      `X-Goog-IAP-JWT-Assertion: ${gateway.assertion()}`,
      'Transfer-Encoding: chunked',
      'Connection: close',
    ])
    client.write(head)
    const chunk = `4000\r\n${'x'.repeat(0x4000)}\r\n`
    let sent = head.length
    let bodyBytes = 0
    // Chunk by chunk, each read before the next, until the app's side is full and the gateway holds the
    // last one (undici paused the body): the end of the body then arrives while the app takes nothing.
    for (;;) {
      client.write(chunk)
      sent += chunk.length
      bodyBytes += 0x4000
      await until(() => request !== undefined && request.socket.bytesRead >= sent, 'the chunk read')
      const held = request as IncomingMessage
      if (held.isPaused() && held.readableLength > 0) break
    }
    client.write('0\r\n\r\n')
    await until(() => request?.complete === true, 'the body complete')
    await new Promise((resolve) => setTimeout(resolve, 3 * LIMIT_MS)) // the app still takes nothing
    app.release()
    t.ok((await closedWithin(client, 10_000)) < 10_000, 'the exchange ended')
    t.match(client.received(), /^HTTP\/1.1 200 /)
    t.match(client.received(), new RegExp(`\\r\\n\\r\\n${bodyBytes}$`), 'the app got the whole body')
  },
)

// The upstream every target fronts: a minimal Node HTTP server, run as its own process so its work is
// not counted against any proxy. `/` answers a small JSON body; `/sse` streams two events; `/ws` echoes.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'

const BODY = Buffer.from(JSON.stringify({ ok: true, message: 'hello from the upstream', n: 42 }))
/** Between the first and the last event, so a proxy that buffers to the end shows up as late. */
const SSE_HOLD_MS = 10

const server = createServer((request, response) => {
  if (request.url === '/sse') {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    response.write('data: first\n\n')
    setTimeout(() => response.end('data: last\n\n'), SSE_HOLD_MS)
    return
  }
  // Drain any body so keep-alive connections stay usable.
  request.resume()
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length })
  response.end(BODY)
})
server.keepAliveTimeout = 65_000

const sockets = new WebSocketServer({ server, path: '/ws' })
sockets.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
})
process.on('SIGTERM', () => process.exit(0))

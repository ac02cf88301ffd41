// A real upstream for the dev-chain tests: it answers every request with what it received (method,
// url, raw headers, body size), streams server-sent events on /sse until told to stop, and answers
// WebSocket upgrades by sending the upgrade request's headers as the first message, then echoing.
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'

export type Echo = {
  method: string
  url: string
  rawHeaders: string[]
  headers: Record<string, string | string[] | undefined>
  bodyBytes: number
  remoteAddress: string
}

export type SseStream = { send(data: string): void; end(): void; closed: Promise<void> }

export type EchoUpstream = {
  url: string
  port: number
  /** the /sse streams so far, and the next one's controls */
  sseStreams: SseStream[]
  nextSse(): Promise<SseStream>
  close(): Promise<void>
}

export async function startEchoUpstream(host = '127.0.0.1'): Promise<EchoUpstream> {
  const sseStreams: EchoUpstream['sseStreams'] = []
  const sseWaiters: Array<(s: SseStream) => void> = []

  const server = http.createServer((req, res) => {
    if (req.url === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.flushHeaders()
      const stream = {
        send: (data: string) => res.write(`data: ${data}\n\n`),
        end: () => res.end(),
        closed: once(res, 'close').then(() => undefined),
      }
      sseStreams.push(stream)
      sseWaiters.shift()?.(stream)
      return
    }
    let bodyBytes = 0
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length
    })
    req.on('end', () => {
      const echo: Echo = {
        method: req.method as string,
        url: req.url as string,
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        bodyBytes,
        remoteAddress: req.socket.remoteAddress as string,
      }
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] })
      res.end(JSON.stringify(echo))
    })
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({ url: req.url, rawHeaders: req.rawHeaders, headers: req.headers }))
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  })

  server.listen(0, host)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    sseStreams,
    nextSse: () => new Promise((resolve) => sseWaiters.push(resolve)),
    close: async () => {
      for (const client of wss.clients) client.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Decodes a JWT's payload without verifying it (the tests verify separately where it matters). */
export function jwtParts(token: string): {
  header: Record<string, unknown>
  payload: Record<string, unknown>
} {
  const [header, payload] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(header as string, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload as string, 'base64url').toString()),
  }
}

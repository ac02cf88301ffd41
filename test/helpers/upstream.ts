import { createHash } from 'node:crypto'
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocketServer } from 'ws'

/** What the upstream saw of one request; tests assert on it. */
export interface SeenRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  bodyBytes: number
  bodySha256: string
}

export interface Upstream {
  readonly url: string
  readonly port: number
  readonly seen: SeenRequest[]
  /** Headers of every WebSocket handshake the upstream accepted. */
  readonly wsHandshakes: IncomingHttpHeaders[]
  /** The request target of every WebSocket handshake the upstream accepted, in the same order. */
  readonly wsUrls: string[]
  /** Every line of those handshakes as received (name, value, name, value...), in the same order. */
  readonly wsRawHeaders: string[][]
  close(): Promise<void>
}

/**
 * A real HTTP + WebSocket upstream, standing in for Flowise:
 * - any path: JSON echo of method, url, headers and a hash of the body (streamed, any size);
 * - `/sse?events=N&gapMs=M`: text/event-stream, one event every M ms;
 * - `/slow?ms=M`: answers after M ms;
 * - `/redirect`: 302 to `/landing` on the same host;
 * - WebSocket on any path: echoes every message, and sends the handshake headers first.
 */
export async function startUpstream(
  host = '127.0.0.1',
  /**
   * Models an app that keeps only its first N header lines and silently drops the rest, as Node's http
   * server did with `server.maxHeadersCount` until v22.23.2 / v24.18.1 (lib/_http_common.js
   * parserOnHeaders: "Once we exceeded headers limit - stop collecting them"); nodejs/node@821688aaa0
   * (CVE-2026-58044) made that a 431, see oven-sh/bun#42532. The echo and `seen` show the kept lines.
   */
  keepHeaderLines?: number,
): Promise<Upstream> {
  const seen: SeenRequest[] = []
  const wsHandshakes: IncomingHttpHeaders[] = []
  const wsUrls: string[] = []
  const wsRawHeaders: string[][] = []
  const server: Server = createServer((req, res) => {
    // A client that gives up (a gateway timeout, say) aborts the request; that is not a test failure.
    answer(req, res).catch(() => res.destroy())
  })
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://upstream')
    if (url.pathname.endsWith('/sse')) {
      const events = Number(url.searchParams.get('events') ?? 3)
      const gapMs = Number(url.searchParams.get('gapMs') ?? 200)
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      for (let i = 0; i < events && !res.destroyed; i++) {
        res.write(`data: event ${i}\n\n`)
        if (i < events - 1) await sleep(gapMs)
      }
      res.end()
      return
    }
    if (url.pathname.endsWith('/slow')) {
      await sleep(Number(url.searchParams.get('ms') ?? 1000))
    }
    if (url.pathname.endsWith('/redirect')) {
      res.writeHead(302, { location: '/landing' }).end()
      return
    }
    const hash = createHash('sha256')
    let bodyBytes = 0
    for await (const chunk of req) {
      hash.update(chunk as Buffer)
      bodyBytes += (chunk as Buffer).length
    }
    const rawHeaders =
      keepHeaderLines === undefined ? req.rawHeaders : req.rawHeaders.slice(0, 2 * keepHeaderLines)
    const entry: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: keepHeaderLines === undefined ? req.headers : headersOf(rawHeaders),
      rawHeaders,
      bodyBytes,
      bodySha256: hash.digest('hex'),
    }
    seen.push(entry)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(entry))
  }
  const wss = new WebSocketServer({ server })
  wss.on('connection', (socket, req) => {
    wsHandshakes.push(req.headers)
    wsUrls.push(req.url ?? '')
    wsRawHeaders.push(req.rawHeaders)
    socket.send(JSON.stringify({ handshake: req.headers, url: req.url }))
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as AddressInfo
  const hostPart = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${hostPart}:${port}`,
    port,
    seen,
    wsHandshakes,
    wsUrls,
    wsRawHeaders,
    close: async () => {
      for (const client of wss.clients) client.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Header lines as Node's `req.headers` shows them: names in lower case, repeated values joined. */
function headersOf(rawHeaders: string[]): IncomingHttpHeaders {
  const headers: Record<string, string> = {}
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase()
    const value = rawHeaders[i + 1] as string
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value
  }
  return headers
}

/**
 * An upstream below HTTP: answers every request with `script(socket)` once its first bytes arrive,
 * for exact bytes Node's http server would rewrite (Connection, Keep-Alive), garbage, hang-ups and
 * answers cut short. Keeps the sockets it saw.
 */
export interface RawUpstream {
  readonly url: string
  readonly sockets: Socket[]
  close(): Promise<void>
}

export async function startRawUpstream(script: (socket: Socket) => void): Promise<RawUpstream> {
  const sockets: Socket[] = []
  const server = createNetServer((socket) => {
    sockets.push(socket)
    socket.once('data', () => script(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

// A development stand-in for IAP and Google's load balancer in front of the gateway. It signs every
// request in as one configured identity, so it is only ever a convenience on a developer's machine and
// never a security boundary. What it copies from the real thing, because the gateway depends on it:
// - client-sent x-goog-* headers are dropped in every spelling (`_` for `-`, any case);
// - a fresh ES256 assertion goes out as x-goog-iap-jwt-assertion, plus IAP's unsigned identity headers;
// - X-Forwarded-For gets `<client>,<lb-address>` appended, so the gateway runs with TRUST_PROXY_HOPS=2
//   exactly as it does behind the real balancer, and X-Forwarded-Proto says https, as it does;
// - the public keys are served as a kid -> PEM map with Cache-Control, like gstatic's key URL.
// Plain node:http piping keeps bodies, SSE and WebSocket frames streaming without buffering.
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { connectionTokens, isHopByHop } from '../proxy/headers.ts'
import {
  createAssertionSigner,
  type Identity,
  publicJwkSet,
  publicKeySet,
  type SignedAssertion,
  type SigningKey,
} from './iap-signer.ts'

export const KEYS_PATH = '/_iap_emulator/verify/public_key'
export const JWK_KEYS_PATH = '/_iap_emulator/verify/public_key-jwk'

export type IapEmulatorOptions = Readonly<{
  /** the gateway, e.g. http://127.0.0.1:8081; may be set later, once the gateway has its port */
  target?: URL | undefined
  key: SigningKey
  identity: Identity
  audience: string
  tokenLifetimeSeconds: number
  keysMaxAgeSeconds: number
  now?: () => number
}>

export type IapEmulator = Readonly<{
  server: http.Server
  listen(port: number, host: string): Promise<AddressInfo>
  close(): Promise<void>
  currentAssertion(): SignedAssertion
  setTarget(target: URL): void
}>

/**
 * IAP consumes the Proxy-Authorization its programmatic callers may send
 * (https://cloud.google.com/iap/docs/authentication-howto); it never reaches the backend.
 */
const CONSUMED_BY_IAP = 'proxy-authorization'

function isGoogleHeader(name: string): boolean {
  return name.toLowerCase().replaceAll('_', '-').startsWith('x-goog-')
}

function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/**
 * rawHeaders pairs minus hop-by-hop ones (the gateway's own filter, proxy/headers.ts, so the two hops
 * agree), keeping each name's spelling and repeated headers.
 */
function endToEndHeaders(rawHeaders: string[], drop: (name: string) => boolean = () => false): string[] {
  const connection: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'connection') connection.push(rawHeaders[i + 1] as string)
  }
  const listed = connectionTokens(connection)
  const kept: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    const lower = name.toLowerCase()
    if (isHopByHop(lower) || listed.has(lower) || lower === CONSUMED_BY_IAP || drop(name)) continue
    kept.push(name, rawHeaders[i + 1] as string)
  }
  return kept
}

export function createIapEmulator(options: IapEmulatorOptions): IapEmulator {
  const { key, identity } = options
  let target = options.target
  const signer = createAssertionSigner({
    key,
    identity,
    audience: options.audience,
    lifetimeSeconds: options.tokenLifetimeSeconds,
    now: options.now,
  })
  const agent = new http.Agent({ keepAlive: true })
  const keySet = JSON.stringify(publicKeySet(key))
  const jwkSet = JSON.stringify(publicJwkSet(key))
  // upgraded connections leave the server's books, so close() has to find them here
  const tunnels = new Set<Duplex>()

  /** What IAP and the balancer send on: the client's end-to-end headers, minus theirs, plus ours. */
  function upstreamHeaders(req: IncomingMessage): string[] {
    const headers = endToEndHeaders(req.rawHeaders, (name) => {
      const lower = name.toLowerCase()
      return isGoogleHeader(name) || lower === 'x-forwarded-for' || lower === 'x-forwarded-proto'
    })
    const clientSent = req.headersDistinct['x-forwarded-for'] ?? []
    const client = unmapIpv4(req.socket.remoteAddress as string)
    const balancer = unmapIpv4(req.socket.localAddress as string)
    const forwardedFor = [...clientSent, client, balancer].join(',')
    // https, as behind Google's HTTPS balancer, which ends TLS and says so, though this hop is plain
    // HTTP: Flowise's image (NODE_ENV=production) issues its session cookie only to a request that
    // arrived over https (Express's req.secure, through trust proxy); told http, every sign-in
    // through the images ended in "401 Invalid or Missing token". Browsers keep Secure cookies from
    // http://localhost and http://127.0.0.1 (potentially trustworthy origins), so the chain works.
    headers.push('X-Forwarded-For', forwardedFor, 'X-Forwarded-Proto', 'https')
    headers.push('X-Goog-IAP-JWT-Assertion', signer.current().token)
    headers.push('X-Goog-Authenticated-User-Email', `accounts.google.com:${identity.email}`)
    headers.push('X-Goog-Authenticated-User-Id', identity.sub)
    return headers
  }

  function upstreamRequest(req: IncomingMessage, headers: string[], target: URL): http.ClientRequest {
    return http.request({
      agent,
      protocol: target.protocol,
      hostname: target.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
      // the Host the client asked for travels on, as it does through the balancer
      setHost: false,
    })
  }

  function serveKeys(req: IncomingMessage, res: ServerResponse, body: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': `public, max-age=${options.keysMaxAgeSeconds}`,
      'content-length': Buffer.byteLength(body),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url as string).split('?')[0]
    if (path === KEYS_PATH || path === JWK_KEYS_PATH) {
      serveKeys(req, res, path === KEYS_PATH ? keySet : jwkSet)
      return
    }

    if (target === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' })
      res.end('IAP emulator: the gateway is still starting\n')
      return
    }
    const gateway = target
    const upstream = upstreamRequest(req, upstreamHeaders(req), gateway)
    upstream.on('response', (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode as number, endToEndHeaders(upstreamRes.rawHeaders))
      // an event stream must reach the client event by event, not when a buffer fills
      res.flushHeaders()
      upstreamRes.pipe(res)
      upstreamRes.on('error', () => res.destroy())
    })
    upstream.on('error', () => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`IAP emulator: the gateway at ${gateway.origin} did not answer\n`)
    })
    // the client went away before the answer was complete: stop the upstream exchange too
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (target === undefined) {
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      )
      return
    }
    const headers = upstreamHeaders(req)
    // the two hop-by-hop headers an upgrade needs, re-added after the client's were dropped
    headers.push('Connection', 'Upgrade', 'Upgrade', req.headers.upgrade as string)
    const upstream = upstreamRequest(req, headers, target)
    socket.on('error', () => upstream.destroy())
    upstream.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
      socket.write(statusBlock(upstreamRes, upstreamRes.rawHeaders))
      tunnels.add(socket)
      upstreamSocket.on('error', () => socket.destroy())
      socket.on('close', () => {
        tunnels.delete(socket)
        upstreamSocket.destroy()
      })
      upstreamSocket.on('close', () => socket.destroy())
      // bytes that arrived with the handshake already belong to the tunnel, in either direction
      socket.write(upstreamHead)
      if (head.length > 0) socket.unshift(head)
      upstreamSocket.pipe(socket).pipe(upstreamSocket)
    })
    // the gateway refused the upgrade (401, 403, ...): relay its answer and close
    upstream.on('response', (upstreamRes) => {
      socket.write(
        statusBlock(upstreamRes, endToEndHeaders(upstreamRes.rawHeaders).concat('Connection', 'close')),
      )
      upstreamRes.pipe(socket)
    })
    upstream.on('error', () => {
      socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    })
    upstream.end()
  }

  // no overall request deadline: a large upload through the chain may take minutes; the gateway and
  // the upstream keep their own limits
  const server = http.createServer({ requestTimeout: 0 }, onRequest)
  server.on('upgrade', onUpgrade)

  return Object.freeze({
    server,
    currentAssertion: () => signer.current(),
    setTarget(gateway: URL) {
      target = gateway
    },
    listen(port: number, host: string) {
      return new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve(server.address() as AddressInfo)
        })
      })
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        for (const socket of tunnels) socket.destroy()
        agent.destroy()
      })
    },
  })
}

function statusBlock(res: IncomingMessage, rawHeaders: string[]): string {
  let block = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n`
  for (let i = 0; i < rawHeaders.length; i += 2) block += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`
  return `${block}\r\n`
}

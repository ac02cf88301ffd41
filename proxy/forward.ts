import { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Pool } from 'undici'
import type { GatewayConfig } from './config.ts'
import { DENIALS, type Denial, type RefusalReason } from './errors.ts'
import { headerExcess, plainFraming, webSocketFraming } from './header-limits.ts'
import { downstreamHeaders, upstreamHeaders, upstreamWebSocketHeaders } from './headers.ts'
import { deny, mustClose, refuse } from './refusal.ts'
import { tookUpgradePath } from './upgrade.ts'

/** Connection setup to a sidecar on loopback takes microseconds; a dead one should fail fast. */
const CONNECT_TIMEOUT_MS = 10_000

/** No answer in time: connecting, waiting for headers, or between body chunks (undici's codes). */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** How undici reports that the client's side ended first (the abort signal gives UND_ERR_ABORTED). */
const CLIENT_LEFT = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_ABORTED'])

/** Set on a raw request whose client waits for `100 Continue` before it sends the body (server.ts). */
export const EXPECTS_CONTINUE = Symbol('expectsContinue')

declare module 'node:http' {
  interface IncomingMessage {
    [EXPECTS_CONTINUE]?: true
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** An admitted WebSocket upgrade's headers for the upstream, built and measured by the hook. */
    upstreamHeaders: OutgoingHttpHeaders | null
  }
}

export interface Forwarder {
  /**
   * onRequest hook after the pipeline: streams an admitted plain-HTTP request to the upstream; for an
   * admitted WebSocket upgrade, prepares its upstream headers and leaves the rest to the proxy's route.
   */
  readonly hook: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  readonly close: () => Promise<void>
}

/**
 * Plain HTTP goes straight from the pipeline to an undici Pool (`Pool.stream` writes the upstream's
 * answer into the client's response as it arrives). @fastify/reply-from did the same with a request
 * object, a body stream and `reply.send(stream)` in between, which cost half the throughput
 * (docs/performance.md). WebSocket upgrades are left to @fastify/http-proxy.
 */
export function createForwarder(config: GatewayConfig): Forwarder {
  const { origin, basePath, hostHeader, headerLimits } = config.upstream
  const { clientBodyTimeoutMs } = config
  const upstreamHost = new URL(origin).host
  const pool = new Pool(origin, {
    connections: 128,
    pipelining: 1,
    connectTimeout: Math.min(CONNECT_TIMEOUT_MS, config.upstreamTimeoutMs),
    headersTimeout: config.upstreamTimeoutMs,
    bodyTimeout: config.upstreamTimeoutMs,
    // Certificate checks stay on for HTTPS upstreams; SNI follows the Host header sent.
    connect: { rejectUnauthorized: true },
  })

  async function hook(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const facts = request.gateway
    /* c8 ignore next -- defensive: the pipeline admitted or answered every request that gets here */
    if (facts === null) return
    if (!isPlainPath(request.url)) {
      deny(request, reply, DENIALS.badRequest, 'request_invalid:path')
      return
    }
    const upgrade = tookUpgradePath(request.raw)
    const headers = (upgrade ? upstreamWebSocketHeaders : upstreamHeaders)(request.headers, facts, hostHeader)
    const path = basePath + request.url
    const hasBody =
      request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined
    // The lines the HTTP client writes itself (undici for plain HTTP, ws for upgrades) count too.
    const framing = upgrade
      ? webSocketFraming(request.headers, headers, upstreamHost)
      : plainFraming(headers, hasBody, upstreamHost)
    const excess = headerExcess(path, headers, framing, headerLimits)
    if (excess !== undefined) {
      deny(request, reply, DENIALS.headersTooLarge, `upstream_headers_too_large:${excess}`)
      return
    }
    if (upgrade) {
      // @fastify/http-proxy's route switches protocols and sends these (server.ts).
      request.upstreamHeaders = headers
      return
    }
    reply.hijack()
    const res = reply.raw
    // The client left while the pipeline awaited (a key refresh, an ID token): its 'close' has passed,
    // so nothing below would stop the upstream working for nobody. Nothing to forward.
    if (request.raw.socket.destroyed) return
    // The client went away before the answer was complete: stop the upstream request too. undici takes
    // any EventEmitter as the signal; a plain one costs a fraction of an AbortController.
    const cancel = new EventEmitter()
    res.once('close', () => {
      if (!res.writableFinished) cancel.emit('abort')
    })
    if (hasBody) limitBodyIdle(request, res, cancel, clientBodyTimeoutMs)
    // Admitted: now the client may send its body (the upstream never sees the Expect, headers.ts).
    if (request.raw[EXPECTS_CONTINUE] === true) res.writeContinue()
    try {
      await pool.stream(
        {
          path,
          method: request.method,
          headers: headers as Record<string, string>,
          body: hasBody ? request.raw : null,
          signal: cancel,
        },
        ({ statusCode, headers }) => {
          const answer = downstreamHeaders(headers as IncomingHttpHeaders)
          // The app answered before the body was in: what is left of it is nobody's, so close after
          // the answer rather than read it (as after a refusal); so too after an ignored upgrade.
          if (mustClose(request.raw)) answer.connection = 'close'
          res.writeHead(statusCode, answer)
          return res
        },
      )
    } catch (error) {
      failed(request, res, error as Error & { code?: string })
    }
  }

  return { hook, close: () => pool.close() }
}

/**
 * A target that stays a path on the upstream: no `//` (it could name another host), no backslash, no
 * `..` segment in any encoding (the upstream might resolve it onto a path the client was not given).
 * Such requests are refused, never normalised. Only the path is checked; the query is the app's.
 */
function isPlainPath(target: string): boolean {
  const queryAt = target.indexOf('?')
  const path = queryAt === -1 ? target : target.slice(0, queryAt)
  if (path.startsWith('//') || path.includes('\\')) return false
  try {
    const decoded = decodeURIComponent(path)
    return !decoded.includes('\\') && !decoded.split('/').includes('..')
    /* c8 ignore next 3 -- Fastify's router answers a malformed escape with 400 before any hook runs */
  } catch {
    return false
  }
}

/**
 * The upstream failed. Before any header went out the client gets 502 or 504 and a request id (the cause,
 * which may name internal addresses, goes to the log only); after, the connection is cut, so a partial
 * answer never looks complete.
 */
function failed(request: FastifyRequest, res: ServerResponse, thrown: Error & { code?: string }): void {
  // When the upstream broke mid-answer, undici destroyed the response with the real error, and the
  // promise reports only that the response closed early, as it also does when the client left first.
  const error = (res.errored as (Error & { code?: string }) | null) ?? thrown
  if (CLIENT_LEFT.has(error.code as string)) return // nobody to answer
  // undici's errors carry a code, except a few (a malformed answer is an HTTPParserError): then the name.
  const cause = error.code ?? error.name
  if (res.headersSent) {
    // No 'finish' follows, so the access log's onResponse never runs: say it here.
    const reason: RefusalReason = `upstream_error:${cause}`
    request.log.warn({ reason }, 'upstream failed after the response began')
    res.destroy()
    return
  }
  const timedOut = TIMEOUTS.has(error.code as string)
  const denial: Denial = timedOut ? DENIALS.gatewayTimeout : DENIALS.badGateway
  refuse(request, res, denial, timedOut ? 'upstream_timeout' : `upstream_error:${cause}`)
}

/**
 * An admitted body that stops arriving: CLIENT_BODY_TIMEOUT_MS without a read (nginx's
 * client_body_timeout) ends the exchange with 408 and cancels the upstream request, so a stalled upload
 * holds neither connection. Time the upstream makes the body wait (its backpressure pauses the client's
 * socket) does not count, nor time the gateway is too busy to read: the client is blamed only when Node
 * has nothing unread from it. Once the body is in, the limit is lifted (the upstream may think for minutes).
 */
function limitBodyIdle(request: FastifyRequest, res: ServerResponse, cancel: EventEmitter, ms: number) {
  const raw = request.raw
  if (raw.complete) return
  raw.setTimeout(ms, () => {
    if (waitsForUpstream(raw)) return void raw.setTimeout(ms)
    // Node runs due timers before it polls for I/O (nodejs.org, "The Node.js Event Loop"), so in a
    // process busier than the limit (or just as the upstream takes the body again, with the socket timer
    // run down while it did not) this fires with the client's bytes unread in the kernel. Blame the
    // client only if one more poll, which runs before setImmediate's callbacks, reads nothing from it.
    // A client the upstream holds back always has bytes there: its window is full, so Node reads them.
    const readBefore = raw.socket.bytesRead
    setImmediate(() => {
      if (raw.complete || raw.destroyed) return
      if (raw.socket.bytesRead !== readBefore || waitsForUpstream(raw)) return void raw.setTimeout(ms)
      // The answer is under way: cut it; its 'close' cancels the upstream request as when a client leaves
      // (aborting first would have undici's stream handler call back twice).
      if (res.headersSent) return void res.destroy()
      // Answered first: cancelling makes undici destroy the body stream, and with it the socket.
      refuse(request, res, DENIALS.requestTimeout, 'client_body_timeout')
      cancel.emit('abort')
    })
  })
  raw.once('end', () => raw.socket.setTimeout(0))
  // A body all in but not yet taken ('end' waits for undici) gets no request 'timeout' from Node, which
  // destroys a timed-out socket nobody handles (http docs, response.setTimeout): lift the limit here.
  res.on('timeout', () => {
    if (raw.complete) raw.socket.setTimeout(0)
  })
}

/**
 * Paused by undici (its socket to the upstream is full: undici resumes the body on that socket's
 * 'drain'), or holding bytes it has not taken yet: the upstream is slow to take the body, not the client
 * to send it.
 */
function waitsForUpstream(raw: FastifyRequest['raw']): boolean {
  return raw.isPaused() || raw.readableLength > 0
}

import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from './config.ts'
import { traceFields } from './logging.ts'
import { shownTarget, TARGET_PROBLEM } from './request-target.ts'

/**
 * One line per request in Cloud Logging's `httpRequest` shape. Refusals are always logged with their
 * reason; admitted requests when ACCESS_LOG is on. The query string and any fragment are left out:
 * they can hold tokens. Fastify's onResponse hook calls it, and so does server.ts for the requests
 * Fastify refuses before any hook (a malformed percent-escape).
 */
export function logResponse(config: GatewayConfig) {
  return async function accessLog(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const reason = request.denialReason
    if (reason === null && (!config.accessLog || request.gateway === null)) return
    const entry = accessEntry(config, request, reply.statusCode, reply.elapsedTime)
    if (reason === null) return void request.log.info(entry, 'request proxied')
    const refused = request.refusedEmail === null ? { reason } : { reason, email: request.refusedEmail }
    request.log.warn(
      { ...entry, ...refused },
      reason.startsWith('upstream_') ? 'upstream failed' : 'request refused',
    )
  }
}

/**
 * An admitted WebSocket upgrade is handed to the proxy and never "responds" in Fastify's sense, so
 * onResponse does not see it. Its line is written when ws is about to answer 101 (its `verifyClient`
 * runs once it has validated the handshake) or, when ws refused the handshake instead (400: its own
 * checks of the key, version and extensions), once the connection closed without getting that far.
 */
export function upgradeLog(config: GatewayConfig) {
  const pending = new WeakMap<IncomingMessage, { request: FastifyRequest; reply: FastifyReply }>()
  return {
    /** onRequest hook after the forwarder, which sets `upstreamHeaders` on the upgrades it admitted. */
    async hook(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      /* c8 ignore next -- defensive: only upgrades the forwarder admitted get past it to this hook */
      if (request.upstreamHeaders === null) return
      const raw = request.raw
      pending.set(raw, { request, reply })
      raw.socket.once('close', () => {
        // Switched (verifyClient took it), or refused by a later stage and logged as such already.
        if (!pending.delete(raw) || request.denialReason !== null) return
        request.denialReason = 'websocket_handshake_invalid'
        const entry = accessEntry(config, request, 400, reply.elapsedTime)
        request.log.warn({ ...entry, reason: request.denialReason }, 'request refused')
      })
    },
    /** ws's `verifyClient`, passed through @fastify/http-proxy's wsServerOptions: admits, and logs. */
    verifyClient(info: { req: IncomingMessage }): boolean {
      const admitted = pending.get(info.req)
      /* c8 ignore next -- defensive: the forwarder hook registered every upgrade that reaches ws */
      if (admitted === undefined) return false
      pending.delete(info.req)
      const { request, reply } = admitted
      if (config.accessLog) {
        request.log.info(accessEntry(config, request, 101, reply.elapsedTime), 'websocket proxied')
      }
      return true
    },
  }
}

function accessEntry(config: GatewayConfig, request: FastifyRequest, status: number, elapsedMs: number) {
  // The target as forwarded, undecoded (origin form); a refused target as far as it is safe to show.
  const problem = request.raw[TARGET_PROBLEM]
  const url = problem === undefined ? request.url : shownTarget(request.originalUrl, problem)
  return {
    ...traceFields(
      config.googleCloudProject,
      request.headers['x-cloud-trace-context'] as string | undefined,
      request.headers.traceparent as string | undefined,
    ),
    httpRequest: {
      requestMethod: request.method,
      requestUrl: withoutQuery(url),
      status,
      latency: `${(elapsedMs / 1000).toFixed(6)}s`,
      remoteIp: request.clientAddress ?? request.raw.socket.remoteAddress,
      userAgent: request.headers['user-agent'],
    },
  }
}

/** The target up to its query or fragment, whichever comes first. */
function withoutQuery(url: string): string {
  const queryAt = url.indexOf('?')
  const fragmentAt = url.indexOf('#')
  if (fragmentAt === -1) return queryAt === -1 ? url : url.slice(0, queryAt)
  return url.slice(0, queryAt === -1 ? fragmentAt : Math.min(queryAt, fragmentAt))
}

import type { FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from './config.ts'
import { traceFields } from './logging.ts'
import { TARGET_PROBLEM } from './request-target.ts'

/**
 * One line per request in Cloud Logging's `httpRequest` shape. Refusals are always logged with their
 * reason; admitted requests when ACCESS_LOG is on. The query string is left out: it can hold tokens.
 */
export function logResponse(config: GatewayConfig) {
  return async function accessLog(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const reason = request.denialReason
    if (reason === null && (!config.accessLog || request.gateway === null)) return
    const entry = accessEntry(config, request, reply.statusCode, reply.elapsedTime)
    if (reason === null) request.log.info(entry, 'request proxied')
    else
      request.log.warn(
        { ...entry, reason },
        reason.startsWith('upstream_') ? 'upstream failed' : 'request refused',
      )
  }
}

/**
 * An admitted WebSocket upgrade is handed to the proxy and never "responds" in Fastify's sense, so
 * onResponse does not see it: it is logged here, once the pipeline (the hook before this one) let it in.
 */
export function logAdmittedUpgrade(config: GatewayConfig) {
  return async function upgradeLog(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.gateway === null || request.headers.upgrade === undefined) return
    request.log.info(accessEntry(config, request, 101, reply.elapsedTime), 'websocket proxied')
  }
}

function accessEntry(config: GatewayConfig, request: FastifyRequest, status: number, elapsedMs: number) {
  // The target as forwarded, undecoded (origin form); a refused target as the client wrote it.
  const url = request.raw[TARGET_PROBLEM] === undefined ? request.url : request.originalUrl
  const queryAt = url.indexOf('?')
  return {
    ...traceFields(
      config.googleCloudProject,
      request.headers['x-cloud-trace-context'] as string | undefined,
      request.headers.traceparent as string | undefined,
    ),
    httpRequest: {
      requestMethod: request.method,
      requestUrl: queryAt === -1 ? url : url.slice(0, queryAt),
      status,
      latency: `${(elapsedMs / 1000).toFixed(6)}s`,
      remoteIp: request.clientAddress ?? request.raw.socket.remoteAddress,
      userAgent: request.headers['user-agent'],
    },
  }
}

import { randomUUID } from 'node:crypto'
import { type IncomingHttpHeaders, STATUS_CODES } from 'node:http'
import httpProxy from '@fastify/http-proxy'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify'
import type { ClientOptions } from 'ws'
import { logAdmittedUpgrade, logResponse } from './access-log.ts'
import type { GatewayConfig } from './config.ts'
import { DENIALS } from './errors.ts'
import { Health } from './health.ts'
import { downstreamHeaders, upstreamHeaders, upstreamWebSocketHeaders } from './identity.ts'
import type { Logger } from './logging.ts'
import { type AssertionVerifier, createPipeline, deny } from './pipeline.ts'
import { createIdTokenSource } from './upstream-id-token.ts'

export interface GatewayDependencies {
  readonly logger: Logger
  /** Absent only when IAP_DISABLED=true. */
  readonly verifier: AssertionVerifier | undefined
}

export interface Gateway {
  readonly app: FastifyInstance
  readonly health: Health
}

/** Connection setup to a sidecar on loopback takes microseconds; a dead one should fail fast. */
const CONNECT_TIMEOUT_MS = 10_000

/** The Fastify instance: reserved routes and the pipeline as the first hook, then the proxy. */
export async function createGateway(config: GatewayConfig, deps: GatewayDependencies): Promise<Gateway> {
  const { logger, verifier } = deps
  if (!config.iap.disabled && verifier === undefined) {
    throw new Error('IAP verification is on but no verifier was given') // programming error, never config
  }
  const health = new Health({
    upstreamOrigin: config.upstream.origin,
    iapDisabled: config.iap.disabled,
    // Asked only while IAP is on, and then a verifier exists (checked above).
    keysReady: () => (verifier as AssertionVerifier).keysReady,
  })

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One access-log line of our own per request instead of Fastify's two; ids logged as requestId.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => randomUUID(),
    // Never take a request id from the client: it is echoed in bodies and logs.
    requestIdHeader: false,
    trustProxy: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  })
  app.decorateRequest('gateway', null)
  app.decorateRequest('denialReason', null)
  app.decorateRequest('clientAddress', null)
  const { idTokenAudience } = config.upstream
  const stages = {
    health,
    verifier: config.iap.disabled ? undefined : verifier,
    idTokens: idTokenAudience === undefined ? undefined : createIdTokenSource(idTokenAudience, logger),
  }
  app.addHook('onRequest', createPipeline(config, stages))
  if (config.accessLog) app.addHook('onRequest', logAdmittedUpgrade(config))
  app.addHook('onResponse', logResponse(config))
  // Fastify's own errors (a malformed Content-Type, say) get the same generic body as any refusal.
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status =
      error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500
        ? error.statusCode
        : 500
    deny(
      request,
      reply,
      { status, message: STATUS_CODES[status] ?? 'Error' },
      `${status >= 500 ? 'internal_error' : 'request_invalid'}:${error.code ?? status}`,
    )
  })

  const { hostHeader } = config.upstream
  await app.register(httpProxy, {
    upstream: config.upstream.origin,
    rewritePrefix: config.upstream.basePath,
    websocket: true,
    disableRequestLogging: true,
    undici: {
      connections: 128,
      pipelining: 1,
      connectTimeout: Math.min(CONNECT_TIMEOUT_MS, config.upstreamTimeoutMs),
      headersTimeout: config.upstreamTimeoutMs,
      bodyTimeout: config.upstreamTimeoutMs,
      // Certificate checks stay on for HTTPS upstreams, whatever the proxy library defaults to.
      connect: { rejectUnauthorized: true },
    },
    replyOptions: {
      rewriteRequestHeaders: (request, headers) =>
        upstreamHeaders(
          headers as IncomingHttpHeaders,
          admitted(request as FastifyRequest),
          hostHeader,
        ) as IncomingHttpHeaders,
      rewriteHeaders: (headers) => downstreamHeaders(headers as IncomingHttpHeaders),
      onError: (reply, { error }) => upstreamFailed(reply as FastifyReply, error),
    },
    // The plugin calls wsClientOptions.rewriteRequestHeaders(headers, request) (index.js); its types omit it.
    wsClientOptions: {
      rewriteRequestHeaders: (_headers: IncomingHttpHeaders, request: FastifyRequest) =>
        upstreamWebSocketHeaders(request.headers, admitted(request), hostHeader),
    } as ClientOptions,
  })
  return { app, health }
}

/** No answer in time: waiting for headers or body (reply-from), or connecting (undici). */
const UPSTREAM_TIMEOUTS = new Set(['FST_REPLY_FROM_GATEWAY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

/**
 * The upstream did not answer. The client gets 502 or 504 and a request id; the cause (which may name
 * internal addresses) goes to the log only.
 */
function upstreamFailed(reply: FastifyReply, error: Error & { code?: string }): void {
  const timedOut = UPSTREAM_TIMEOUTS.has(error.code as string)
  const cause = (error.cause as { code?: string } | undefined)?.code ?? error.code
  if (timedOut) deny(reply.request, reply, DENIALS.gatewayTimeout, 'upstream_timeout')
  else deny(reply.request, reply, DENIALS.badGateway, `upstream_error:${cause}`)
}

/** Reaching the proxy without the pipeline's facts would be a bug: refuse rather than forward unchecked. */
function admitted(request: FastifyRequest) {
  /* c8 ignore next -- defensive: every request that gets here passed the pipeline, which set the facts */
  if (request.gateway === null) throw new Error('request reached the proxy without passing the pipeline')
  return request.gateway
}

import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import httpProxy from '@fastify/http-proxy'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify'
import type { ClientOptions } from 'ws'
import { logResponse, upgradeLog } from './access-log.ts'
import { clientErrorHandler } from './client-error.ts'
import type { GatewayConfig } from './config.ts'
import { createForwarder, EXPECTS_CONTINUE } from './forward.ts'
import { Health } from './health.ts'
import type { Logger } from './logging.ts'
import { type AssertionVerifier, createPipeline } from './pipeline.ts'
import { denyError } from './refusal.ts'
import { toOriginForm, UNKNOWN_EXPECTATION } from './request-target.ts'
import { isWebSocketHandshake } from './upgrade.ts'
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

  const accessLog = logResponse(config)
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One access-log line of our own per request instead of Fastify's two; ids logged as requestId.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => randomUUID(),
    // Never take a request id from the client: it is echoed in bodies and logs.
    requestIdHeader: false,
    trustProxy: false,
    // Before routing: the router, the path rules, the upstream and the log see origin form only.
    rewriteUrl: toOriginForm,
    // Fastify's own would log the raw bytes of a malformed request, credentials included.
    clientErrorHandler,
    // What Fastify's router refuses before any hook runs (a target whose percent-escapes do not decode:
    // FST_ERR_BAD_URL). Its default answer echoes the path back, keeps the connection (reading any body
    // to its end, however slowly it comes) and logs nothing. Refused as the hooks refuse instead; no
    // hook runs for it, onResponse included, so its log line is written here.
    frameworkErrors: (error, request, reply) => {
      reply.raw.once('finish', () => void accessLog(request, reply))
      denyError(request, reply, error)
    },
    // Only a WebSocket handshake takes Node's 'upgrade' path to the proxy (upgrade.ts).
    http: { shouldUpgradeCallback: isWebSocketHandshake },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  })
  // With a 'checkContinue' listener Node no longer answers `Expect: 100-continue` itself, before any
  // check: the request goes through the pipeline like any other, and the forwarder invites the body
  // only once it is admitted (a refusal never does).
  app.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    request[EXPECTS_CONTINUE] = true
    app.server.emit('request', request, response)
  })
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    request[UNKNOWN_EXPECTATION] = true
    app.server.emit('request', request, response)
  })
  app.decorateRequest('gateway', null)
  app.decorateRequest('denialReason', null)
  app.decorateRequest('refusedEmail', null)
  app.decorateRequest('clientAddress', null)
  app.decorateRequest('upstreamHeaders', null)
  const { idTokenAudience } = config.upstream
  const stages = {
    health,
    verifier: config.iap.disabled ? undefined : verifier,
    idTokens: idTokenAudience === undefined ? undefined : createIdTokenSource(idTokenAudience, logger),
  }
  app.addHook('onRequest', createPipeline(config, stages))
  // Plain HTTP is forwarded from here; only WebSocket upgrades go on to @fastify/http-proxy's route.
  const forwarder = createForwarder(config)
  app.addHook('onRequest', forwarder.hook)
  const upgrades = upgradeLog(config)
  app.addHook('onRequest', upgrades.hook)
  app.addHook('onClose', forwarder.close)
  app.addHook('onResponse', accessLog)
  // An error no stage expected gets the same generic body as any refusal.
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    denyError(request, reply, error)
  })

  await app.register(httpProxy, {
    upstream: config.upstream.origin,
    rewritePrefix: config.upstream.basePath,
    websocket: true,
    disableRequestLogging: true,
    // Upgrades arrive as GET; every other request was answered by the forwarder's hook.
    httpMethods: ['GET'],
    // reply-from's own pool is never used (see below); should it ever be, it checks certificates too.
    undici: { connect: { rejectUnauthorized: true } },
    replyOptions: {
      /* c8 ignore next 3 -- fail closed should a plain request ever get past the forwarder */
      rewriteRequestHeaders: () => {
        throw new Error('plain HTTP reached reply-from instead of the forwarder')
      },
    },
    // The plugin calls wsClientOptions.rewriteRequestHeaders(headers, request) (index.js); its types omit it.
    // ws calls it once it has validated the handshake, just before it answers 101: the access log's cue.
    wsServerOptions: { verifyClient: upgrades.verifyClient },
    wsClientOptions: {
      rewriteRequestHeaders: (_headers: IncomingHttpHeaders, request: FastifyRequest) => admitted(request),
    } as ClientOptions,
  })
  return { app, health }
}

/**
 * The upstream headers the forwarder's hook built for an admitted upgrade. Reaching the proxy without
 * them would be a bug: refuse rather than forward unchecked.
 */
function admitted(request: FastifyRequest): OutgoingHttpHeaders {
  /* c8 ignore next 3 -- defensive: every upgrade that gets here passed the pipeline and the forwarder */
  if (request.gateway === null || request.upstreamHeaders === null) {
    throw new Error('request reached the proxy without passing the pipeline')
  }
  return request.upstreamHeaders
}

import { connect } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { DENIALS } from './errors.ts'
import { deny, mustClose } from './refusal.ts'

/** The gateway's own paths: matched exactly and undecoded, answered here, never proxied. */
export const RESERVED_PREFIX = '/_gateway/'
export const HEALTH_PATH = `${RESERVED_PREFIX}healthz`
export const READY_PATH = `${RESERVED_PREFIX}readyz`

export interface Readiness {
  readonly ready: boolean
  readonly reasons: readonly string[]
  readonly iap: 'verifying' | 'disabled'
}

export interface HealthOptions {
  readonly upstreamOrigin: string
  readonly iapDisabled: boolean
  /** False until the IAP key set has loaded once. */
  readonly keysReady: () => boolean
}

/** The upstream shares the container's network namespace: a second is generous. */
const PROBE_TIMEOUT_MS = 1000
/**
 * readyz answers without any check, so each answer must not cost the app a connection: one probe
 * serves every readiness request for this long (Cloud Run probes every few seconds at most).
 */
const PROBE_MAX_AGE_MS = 1000

/**
 * Liveness and readiness. Liveness only says the process serves; readiness says a request would get
 * through: keys loaded, upstream accepting connections (as of at most a second ago), no shutdown in
 * progress (at once).
 */
export class Health {
  #draining = false
  readonly #options: HealthOptions
  /** The latest upstream probe (under way or done) and when it started. */
  #probe: { startedAt: number; reachable: Promise<boolean> } | undefined

  constructor(options: HealthOptions) {
    this.#options = options
  }

  beginShutdown(): void {
    this.#draining = true
  }

  async readiness(): Promise<Readiness> {
    const reasons: string[] = []
    if (this.#draining) reasons.push('shutting down')
    if (!this.#options.iapDisabled && !this.#options.keysReady()) reasons.push('IAP keys not loaded')
    if (!(await this.#upstreamReachable())) reasons.push('upstream not reachable')
    return { ready: reasons.length === 0, reasons, iap: this.#options.iapDisabled ? 'disabled' : 'verifying' }
  }

  /** A probe at most PROBE_MAX_AGE_MS old, joined while under way: one connection per second at most. */
  #upstreamReachable(): Promise<boolean> {
    const now = performance.now()
    if (this.#probe === undefined || now - this.#probe.startedAt >= PROBE_MAX_AGE_MS) {
      this.#probe = { startedAt: now, reachable: canConnect(this.#options.upstreamOrigin, PROBE_TIMEOUT_MS) }
    }
    return this.#probe.reachable
  }
}

/** A TCP connect is enough: it shows the app is listening without making it do any work. */
function canConnect(origin: string, timeoutMs: number): Promise<boolean> {
  const url = new URL(origin)
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  const host = url.hostname.replace(/^\[|\]$/g, '')
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

/**
 * A request under RESERVED_PREFIX (the pipeline sends it here before any check): liveness, readiness,
 * or 404 for any other path or method.
 */
export async function serveReserved(
  rawUrl: string,
  request: FastifyRequest,
  reply: FastifyReply,
  health: Health,
): Promise<FastifyReply> {
  const queryAt = rawUrl.indexOf('?')
  const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt)
  const readable = request.method === 'GET' || request.method === 'HEAD'
  if (!readable || (path !== HEALTH_PATH && path !== READY_PATH)) {
    return deny(request, reply, DENIALS.notFound, 'reserved_path_unknown')
  }
  // Answered without any check, so a body sent along is not read either: close after the answer (as
  // after a refusal), or a client trickling it would hold the connection.
  if (mustClose(request.raw)) reply.header('connection', 'close')
  if (path === HEALTH_PATH) {
    return reply.code(200).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send('ok\n')
  }
  const readiness = await health.readiness()
  return reply
    .code(readiness.ready ? 200 : 503)
    .header('cache-control', 'no-store')
    .send({ status: readiness.ready ? 'ready' : 'not ready', reasons: readiness.reasons, iap: readiness.iap })
}

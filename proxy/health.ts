import { connect } from 'node:net'

export const HEALTH_PATH = '/_gateway/healthz'
export const READY_PATH = '/_gateway/readyz'

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

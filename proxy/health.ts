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
 * Liveness and readiness. Liveness only says the process serves; readiness says a request would get
 * through: keys loaded, upstream accepting connections, no shutdown in progress.
 */
export class Health {
  #draining = false
  readonly #options: HealthOptions

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
    if (!(await canConnect(this.#options.upstreamOrigin, PROBE_TIMEOUT_MS))) {
      reasons.push('upstream not reachable')
    }
    return { ready: reasons.length === 0, reasons, iap: this.#options.iapDisabled ? 'disabled' : 'verifying' }
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

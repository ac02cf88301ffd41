// IAP's public key set: fetched from IAP_KEYS_URL (a JSON object kid -> PEM, the format of
// https://www.gstatic.com/iap/verify/public_key), each PEM parsed once into a KeyObject when the set loads,
// kept for the response's max-age (clamped), refreshed in the background, and kept as the last good set
// when a fetch fails. An unknown kid may trigger one refetch per cooldown, shared by every caller, so a
// flood of made-up kids cannot turn the gateway into an amplifier against the key server.
import { createPublicKey, type KeyObject } from 'node:crypto'

export interface KeyLog {
  info(o: object, msg: string): void
  warn(o: object, msg: string): void
  error(o: object, msg: string): void
}

export interface KeySetOptions {
  url: string
  log: KeyLog
  /** ms since the epoch; the unknown-kid cooldown is measured on it so tests can freeze it */
  now?: () => number
  /** max-age outside these bounds is clamped; absent or unparseable max-age means `defaultTtlMs` */
  minTtlMs?: number
  maxTtlMs?: number
  defaultTtlMs?: number
  unknownKidCooldownMs?: number
  /** first retry delay after a failed fetch; doubles up to `retryMaxMs` */
  retryBaseMs?: number
  retryMaxMs?: number
  fetchTimeoutMs?: number
}

export interface KeySetTimings {
  minTtlMs: number
  maxTtlMs: number
  defaultTtlMs: number
  unknownKidCooldownMs: number
  retryBaseMs: number
  retryMaxMs: number
  fetchTimeoutMs: number
}

export const KEY_SET_DEFAULTS: Readonly<KeySetTimings> = Object.freeze({
  minTtlMs: 60_000,
  maxTtlMs: 24 * 3600_000,
  defaultTtlMs: 3600_000,
  unknownKidCooldownMs: 30_000,
  retryBaseMs: 1_000,
  retryMaxMs: 60_000,
  fetchTimeoutMs: 10_000,
})

/** A key set larger than this is not Google's (it holds a handful of ~180-byte PEMs). */
const MAX_BODY_BYTES = 256 * 1024
/** Refresh when this share of the TTL has passed, so a slow or failed fetch still has time to retry. */
const REFRESH_AT = 0.8

export interface IapKeySet {
  /** true once a key set has loaded (it stays true: the last good set is kept) */
  readonly ready: boolean
  /** when the current set's max-age runs out (ms, on `now`); undefined before the first load */
  readonly expiresAt: number | undefined
  get(kid: string): KeyObject | undefined
  /**
   * Called for a kid not in the set: refetches unless a fetch ran within the cooldown, and joins a
   * fetch already under way. Resolves (never rejects) once the set is as fresh as it will get.
   */
  refreshForUnknownKid(): Promise<void>
  start(): void
  close(): void
}

/** Seconds of `max-age` from a Cache-Control value, or undefined when absent or unparseable. */
export function maxAgeSeconds(cacheControl: string | null): number | undefined {
  const match = /(?:^|[,\s])max-age\s*=\s*"?(\d{1,10})"?(?:$|[,\s;])/i.exec(cacheControl ?? '')
  return match === null ? undefined : Number(match[1])
}

export function clampTtlMs(maxAge: number | undefined, bounds: Readonly<KeySetTimings>): number {
  if (maxAge === undefined) return bounds.defaultTtlMs
  return Math.min(bounds.maxTtlMs, Math.max(bounds.minTtlMs, maxAge * 1000))
}

/**
 * kid -> KeyObject for every entry that is an EC P-256 public key; entries that are not are skipped with
 * a warning (a new key type must not take the whole set down). Returns a description of the problem when
 * the body is not a key set at all, so the caller keeps the last good set.
 */
export function parseKeySet(body: unknown, log: KeyLog): Map<string, KeyObject> | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'not a JSON object'
  const keys = new Map<string, KeyObject>()
  const skipped: string[] = []
  for (const [kid, pem] of Object.entries(body)) {
    let key: KeyObject | undefined
    try {
      if (typeof pem === 'string') key = createPublicKey(pem)
    } catch {
      // the parser's message is not ours to log; the kid says which entry
    }
    if (key?.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      skipped.push(kid)
      continue
    }
    keys.set(kid, key)
  }
  // One line per fetch however many entries were junk (10,000 of them wrote 9,999 lines), naming a few.
  if (skipped.length > 0) {
    log.warn(
      { skipped: skipped.length, kids: skipped.slice(0, SKIPPED_KIDS_LOGGED).map((kid) => kid.slice(0, 64)) },
      'IAP key set entries skipped: not EC P-256 public key PEMs',
    )
  }
  return keys.size === 0 ? 'no usable EC P-256 key' : keys
}

/** How many of the skipped entries' kids the summary line names. */
const SKIPPED_KIDS_LOGGED = 5

export function createKeySet(options: KeySetOptions): IapKeySet {
  const settings: KeySetTimings = { ...KEY_SET_DEFAULTS, ...stripUndefined(options) }
  const { url, log } = options
  const now = options.now ?? Date.now
  let keys: Map<string, KeyObject> | undefined
  let expiresAt: number | undefined
  let inFlight: Promise<void> | undefined
  let lastFetchAt = Number.NEGATIVE_INFINITY
  let failures = 0
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const abort = new AbortController()

  function schedule(delayMs: number): void {
    clearTimeout(timer) // callers checked `closed` already
    timer = setTimeout(() => void refresh('scheduled'), delayMs)
    timer.unref()
  }

  function refresh(cause: string): Promise<void> {
    inFlight ??= fetchOnce(cause).finally(() => {
      inFlight = undefined
    })
    return inFlight
  }

  async function fetchOnce(cause: string): Promise<void> {
    lastFetchAt = now()
    const outcome = await download()
    if (closed) return
    if (typeof outcome === 'string') {
      failures += 1
      const delay = Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** (failures - 1))
      const keeping = keys === undefined ? 'no key set yet' : 'keeping the last good key set'
      log[keys === undefined ? 'error' : 'warn'](
        { url, cause, problem: outcome, failures, retryInMs: delay },
        `IAP key set fetch failed; ${keeping}`,
      )
      schedule(delay)
      return
    }
    failures = 0
    const ttl = clampTtlMs(outcome.maxAge, settings)
    keys = outcome.keys
    expiresAt = now() + ttl
    log.info({ url, cause, kids: [...keys.keys()], ttlMs: ttl }, 'IAP key set loaded')
    schedule(ttl * REFRESH_AT)
  }

  /** The new set and its max-age, or what went wrong (never the body: it is not ours to log). */
  async function download(): Promise<{ keys: Map<string, KeyObject>; maxAge: number | undefined } | string> {
    let response: Response
    let bytes: Buffer | undefined
    try {
      const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(settings.fetchTimeoutMs)])
      response = await fetch(url, { signal, headers: { accept: 'application/json' } })
      if (response.status !== 200) {
        await response.body?.cancel()
        return `HTTP status ${response.status}`
      }
      bytes = await readAtMost(response, MAX_BODY_BYTES)
    } catch (error) {
      return `request failed (${(error as Error).name})`
    }
    if (bytes === undefined) return `body over ${MAX_BODY_BYTES} bytes`
    let body: unknown
    try {
      body = JSON.parse(bytes.toString('utf8'))
    } catch {
      return 'body is not JSON'
    }
    const parsed = parseKeySet(body, log)
    if (typeof parsed === 'string') return parsed
    return { keys: parsed, maxAge: maxAgeSeconds(response.headers.get('cache-control')) }
  }

  return {
    get ready() {
      return keys !== undefined
    },
    get expiresAt() {
      return expiresAt
    },
    get(kid) {
      return keys?.get(kid)
    },
    refreshForUnknownKid() {
      if (inFlight !== undefined) return inFlight
      if (now() - lastFetchAt < settings.unknownKidCooldownMs) return Promise.resolve()
      return refresh('unknown kid')
    },
    start() {
      if (!closed && inFlight === undefined && timer === undefined) void refresh('start')
    },
    close() {
      closed = true
      clearTimeout(timer)
      abort.abort()
    },
  }
}

/**
 * The body, or undefined as soon as it passes `limit` bytes: reading stops there and the transfer is
 * cancelled (arrayBuffer() read a 50 MB answer to its end before the size could be checked).
 */
async function readAtMost(response: Response, limit: number): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = []
  let length = 0
  /* c8 ignore next -- fetch gives every 200 a body stream, an empty one included */
  if (response.body === null) return Buffer.alloc(0)
  for await (const chunk of response.body) {
    length += chunk.byteLength
    if (length > limit) return undefined // leaving the loop cancels the stream, and fetch the transfer
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, length)
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}

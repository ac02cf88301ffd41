import type { Compute } from 'google-auth-library'
import type { Logger } from './logging.ts'

/** Google ID tokens live an hour; refresh well before, so no request ever waits for one. */
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000
/** A token whose expiry cannot be read is still used, but only this long. */
const UNKNOWN_LIFETIME_MS = 5 * 60_000
const RETRY_AFTER_FAILURE_MS = 5_000

export interface IdTokenSource {
  /** A token valid now; waits only when none is held (first request, or after a long outage). */
  token(): Promise<string>
}

interface Held {
  readonly value: string
  readonly expiresAt: number
}

/**
 * Google ID tokens for a private upstream (a Cloud Run service that requires run.invoker), fetched from
 * the metadata server by google-auth-library (`GCE_METADATA_HOST` points it elsewhere in tests).
 *
 * One fetch at a time, shared by every waiting request. Inside the refresh window the held token is
 * still returned at once while a new one is fetched in the background; a failed refresh keeps the old
 * token until it really expires and is retried after a pause.
 */
export function createIdTokenSource(
  audience: string,
  log: Logger,
  now: () => number = Date.now,
): IdTokenSource {
  // Loaded on the first token request: google-auth-library costs ~40 ms of start-up (of ~290 ms), and
  // only gateways with UPSTREAM_ID_TOKEN_AUDIENCE need it.
  let client: Promise<Compute> | undefined
  let held: Held | undefined
  let inflight: Promise<Held> | undefined
  let retryAt = 0

  const refresh = (): Promise<Held> => {
    client ??= import('google-auth-library').then((library) => new library.Compute())
    inflight ??= client
      .then((compute) => compute.fetchIdToken(audience))
      .then((value) => {
        held = { value, expiresAt: expiryOf(value) ?? now() + UNKNOWN_LIFETIME_MS }
        return held
      })
      .catch((error: unknown) => {
        retryAt = now() + RETRY_AFTER_FAILURE_MS
        // The library's message names the metadata path, never the token.
        log.error(
          { audience, error: (error as Error).message },
          'could not fetch an ID token for the upstream',
        )
        throw error
      })
      .finally(() => {
        inflight = undefined
      })
    return inflight
  }

  return {
    async token() {
      const at = now()
      if (held !== undefined && at < held.expiresAt) {
        if (at >= held.expiresAt - REFRESH_BEFORE_EXPIRY_MS && at >= retryAt && inflight === undefined) {
          refresh().catch(() => {}) // logged inside; the held token still serves
        }
        return held.value
      }
      return (await refresh()).value
    },
  }
}

/** The `exp` claim, read without verifying: the token is ours to send, not to trust. */
function expiryOf(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: unknown
    }
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined
  } catch {
    return undefined
  }
}

// Verified assertions, so a browser's burst of asset requests carrying the same assertion pays for one
// ES256 verification. Keyed by a SHA-256 of the token (the cache never holds a token), bounded, and an
// entry never outlives the token: its exp is re-checked on every hit against the verifier's clock.
import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'

export interface CachedVerdict<T> {
  /** the token's exp plus the allowed skew, in seconds: the last second the token is acceptable */
  readonly lastValidSecond: number
  /** the kid it was signed with: a hit for a kid that left the key set is dropped */
  readonly kid: string
  readonly value: T
}

export interface TokenCache<T> {
  get(token: string, nowSeconds: number): CachedVerdict<T> | undefined
  set(token: string, verdict: CachedVerdict<T>, nowSeconds: number): void
  delete(token: string): void
  readonly size: number
}

export function createTokenCache<T>(maxEntries: number): TokenCache<T> {
  if (maxEntries === 0) {
    return { get: () => undefined, set: () => {}, delete: () => {}, size: 0 }
  }
  // lru-cache's own TTL (on its monotonic clock) only frees memory; validity is decided by the
  // explicit check against the verifier's clock below.
  const lru = new LRUCache<string, CachedVerdict<T>>({ max: maxEntries, ttlAutopurge: false })
  // One-shot hash(): no Hash object per lookup (1.5 us -> 0.9 us for a 1 kB assertion on Node 24 here).
  const keyOf = (token: string) => hash('sha256', token, 'base64url')
  return {
    get(token, nowSeconds) {
      const key = keyOf(token)
      const verdict = lru.get(key)
      if (verdict === undefined) return undefined
      if (nowSeconds > verdict.lastValidSecond) {
        lru.delete(key)
        return undefined
      }
      return verdict
    },
    set(token, verdict, nowSeconds) {
      const ttlMs = (verdict.lastValidSecond - nowSeconds) * 1000
      if (ttlMs > 0) lru.set(keyOf(token), verdict, { ttl: ttlMs })
    },
    delete(token) {
      lru.delete(keyOf(token))
    },
    get size() {
      return lru.size
    },
  }
}

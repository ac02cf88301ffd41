// Test doubles for IAP: a loopback key server (kid -> PEM JSON, like
// https://www.gstatic.com/iap/verify/public_key) whose keys, Cache-Control and failure modes a test
// controls, and token makers for valid assertions and every kind of bad one. Signing is dev/iap-signer.ts
// (node:crypto, ES256 with r||s signatures); the e2e suite, the emulator and the benchmarks share it.
import { createHmac, generateKeyPairSync, sign } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSigningKey, IAP_ISSUER, publicKeySet, type SigningKey, signJwt } from '../../dev/iap-signer.ts'

export { createSigningKey, IAP_ISSUER, publicKeySet, type SigningKey, signJwt }

export const TEST_AUDIENCE = '/projects/123456789012/global/backendServices/9876543210'

/** What the key server answers: the key set, or one of the ways a key server goes wrong. */
export type KeyServerMode =
  | 'keys'
  | 'garbage'
  | 'not-json-object'
  | 'empty-set'
  | 'error-500'
  | 'reset'
  /** a 50 MB JSON object, streamed as fast as the client reads it (chunked, no Content-Length) */
  | 'huge'

/** What the key server managed to send in 'huge' mode before the client stopped reading. */
export interface HugeBodyProgress {
  bytesSent: number
  finished: boolean
  /** resolves when the response has finished or its connection closed */
  done: Promise<void>
}

export interface KeyServer {
  readonly url: string
  /** requests served so far (every mode counts; 'down' refuses connections and counts nothing) */
  readonly requests: number
  setKeys(...keys: SigningKey[]): void
  /** the exact body to serve in 'keys' mode instead of the keys' PEMs */
  setBody(body: unknown): void
  /** null sends no Cache-Control header */
  setCacheControl(value: string | null): void
  setMode(mode: KeyServerMode): void
  /** the last 'huge' answer's progress, once one has begun */
  readonly huge: HugeBodyProgress | undefined
  /** resolves once `count` requests have been served in total */
  waitForRequests(count: number): Promise<void>
  /** stop listening (connections refused) while keeping the port for up() */
  down(): Promise<void>
  up(): Promise<void>
  close(): Promise<void>
}

export async function startKeyServer(
  initial: { keys?: SigningKey[]; up?: boolean } = {},
): Promise<KeyServer> {
  let body: unknown = Object.assign({}, ...(initial.keys ?? []).map(publicKeySet))
  let cacheControl: string | null = 'public, max-age=3600'
  let mode: KeyServerMode = 'keys'
  let requests = 0
  const waiters: { count: number; resolve: () => void }[] = []

  const server: Server = createServer((request, response) => {
    requests += 1
    for (const waiter of waiters.filter((w) => requests >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve()
    }
    if (mode === 'reset') return void request.socket.destroy()
    if (cacheControl !== null) response.setHeader('cache-control', cacheControl)
    response.setHeader('content-type', 'application/json')
    if (mode === 'error-500') return void response.writeHead(500).end('{}')
    if (mode === 'garbage') return void response.end('<html>\u0000 not json')
    if (mode === 'not-json-object') return void response.end('["a","b"]')
    if (mode === 'empty-set') return void response.end('{}')
    if (mode === 'huge') return void streamHuge(response)
    response.end(JSON.stringify(body))
  })
  let huge: HugeBodyProgress | undefined

  function streamHuge(response: ServerResponse): void {
    const total = 50 * 1024 * 1024
    const chunk = Buffer.alloc(64 * 1024, 'x')
    let resolveDone: () => void = () => {}
    const progress: HugeBodyProgress = {
      bytesSent: 0,
      finished: false,
      done: new Promise((resolve) => (resolveDone = resolve)),
    }
    huge = progress
    response.once('close', resolveDone)
    response.write('{"padding":"')
    const pump = () => {
      while (progress.bytesSent < total && !response.destroyed) {
        progress.bytesSent += chunk.length
        if (!response.write(chunk)) return void response.once('drain', pump)
      }
      if (response.destroyed) return
      progress.finished = true
      response.end('"}')
    }
    pump()
  }
  server.keepAliveTimeout = 1 // each fetch a new connection, so down() means refused at once

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  if (initial.up === false) await stop()

  async function stop(): Promise<void> {
    if (!server.listening) return
    const closed = once(server, 'close')
    server.close()
    server.closeAllConnections()
    await closed
  }

  return {
    url: `http://127.0.0.1:${port}/iap/verify/public_key`,
    get requests() {
      return requests
    },
    get huge() {
      return huge
    },
    setKeys(...keys) {
      body = Object.assign({}, ...keys.map(publicKeySet))
    },
    setBody(value) {
      body = value
    },
    setCacheControl(value) {
      cacheControl = value
    },
    setMode(value) {
      mode = value
    },
    waitForRequests(count) {
      if (requests >= count) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ count, resolve }))
    },
    down: stop,
    async up() {
      if (server.listening) return
      server.listen(port, '127.0.0.1')
      await once(server, 'listening')
    },
    close: stop,
  }
}

export interface ClaimOptions {
  audience?: string
  email?: string
  /** stored as given: Google identities send `accounts.google.com:<id>` */
  sub?: string
  hd?: string
  /** seconds since the epoch; default: now */
  iat?: number
  /** seconds; IAP issues 10 minutes */
  lifetime?: number
  issuer?: string
  extra?: Record<string, unknown>
}

/** The claims IAP puts in an assertion for a Google identity, overridable one by one. */
export function iapClaims(options: ClaimOptions = {}): Record<string, unknown> {
  const iat = options.iat ?? Math.floor(Date.now() / 1000)
  const claims: Record<string, unknown> = {
    aud: options.audience ?? TEST_AUDIENCE,
    email: options.email ?? 'alice@example.com',
    exp: iat + (options.lifetime ?? 600),
    iat,
    iss: options.issuer ?? IAP_ISSUER,
    sub: options.sub ?? 'accounts.google.com:108765432109876543210',
    ...options.extra,
  }
  if (options.hd !== undefined) claims.hd = options.hd
  return claims
}

/** A valid assertion signed by `key`. */
export function signAssertion(key: SigningKey, options: ClaimOptions = {}): string {
  return signJwt(key, iapClaims(options))
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/**
 * Tokens a verifier must refuse, each named after the attack it stands for. `key` is a key the verifier
 * trusts (its kid is in the served set); claims default to a valid assertion.
 */
export const badTokens = {
  /** RFC 7519 unsecured JWT: no signature at all */
  algNone(key: SigningKey, claims = iapClaims()): string {
    return `${b64({ alg: 'none', typ: 'JWT', kid: key.kid })}.${b64(claims)}.`
  },
  /** the classic confusion: HMAC keyed with the (public) PEM the server holds */
  hs256WithPem(key: SigningKey, claims = iapClaims()): string {
    const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${b64(claims)}`
    const pem = publicKeySet(key)[key.kid] as string
    return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`
  },
  /** RS256 with an attacker's RSA key under a trusted kid */
  rs256(key: SigningKey, claims = iapClaims()): string {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: key.kid })}.${b64(claims)}`
    return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`
  },
  /** ES256 signed by a key the server never published, claiming a trusted kid */
  rogueKey(key: SigningKey, claims = iapClaims()): string {
    const rogue = createSigningKey()
    return signJwt({ ...rogue, kid: key.kid }, claims)
  },
  /** a valid token whose payload was swapped for different claims after signing */
  tamperedPayload(token: string, claims: Record<string, unknown>): string {
    const [header, , signature] = token.split('.')
    return `${header}.${b64(claims)}.${signature}`
  },
  /** a valid signature in DER form instead of JWS's raw r||s */
  derSignature(key: SigningKey, claims = iapClaims()): string {
    const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: key.kid })}.${b64(claims)}`
    return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`
  },
  /** any header/payload objects, signed properly by `key` (for header fields such as crit or a missing kid) */
  signedWith(key: SigningKey, header: Record<string, unknown>, claims: unknown): string {
    const input = `${b64(header)}.${b64(claims)}`
    const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    return `${input}.${signature.toString('base64url')}`
  },
}

/** A frozen clock for `now` options: ms since the epoch, moved only by the test. */
export function frozenClock(startMs = Date.UTC(2026, 0, 1, 12)): {
  now: () => number
  ms: number
  advance(seconds: number): void
} {
  const clock = {
    ms: startMs,
    now: () => clock.ms,
    advance(seconds: number) {
      clock.ms += seconds * 1000
    },
  }
  return clock
}

/** A log that records what it was given, for asserting on reasons and on what never appears. */
export function recordingLog(): {
  lines: { level: string; obj: object; msg: string }[]
  info(o: object, m: string): void
  warn(o: object, m: string): void
  error(o: object, m: string): void
} {
  const lines: { level: string; obj: object; msg: string }[] = []
  return {
    lines,
    info: (obj, msg) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj, msg }),
  }
}

/** Resolves when `condition()` holds, checking every few ms; rejects after `timeoutMs` naming `what`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

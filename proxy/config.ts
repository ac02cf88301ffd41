import { type Allowlist, createAllowlist, parseNetwork } from './allowlist.ts'
import { isStrictAddress } from './client-address.ts'
import { GW_ERR_CONFIG } from './errors.ts'
import type { HeaderLimits } from './header-limits.ts'
import { parseOrigin } from './origin.ts'

/** Everything the gateway is told by its environment, validated once at start and then frozen. */
export interface GatewayConfig {
  readonly port: number
  readonly host: string
  readonly upstream: UpstreamConfig
  readonly allowlist: Allowlist
  readonly trustProxyHops: number
  /** Origins besides the request's own host that may open a WebSocket (`https://host[:port]`). */
  readonly allowedOrigins: readonly string[]
  readonly upstreamTimeoutMs: number
  /** An admitted request body may pause this long between two reads before it is cut with 408. */
  readonly clientBodyTimeoutMs: number
  readonly shutdownGraceMs: number
  readonly logLevel: LogLevel
  readonly accessLog: boolean
  readonly iap: IapConfig
  /** Only used to write Cloud Logging trace ids (`projects/P/traces/T`). */
  readonly googleCloudProject: string | undefined
}

export interface UpstreamConfig {
  /** `http://127.0.0.1:3000`: scheme, host and port only. */
  readonly origin: string
  /** The path prefix of UPSTREAM_URL without a trailing slash (`/base`), or '' for none. */
  readonly basePath: string
  readonly tls: boolean
  /** Host header sent upstream; undefined keeps the client's. */
  readonly hostHeader: string | undefined
  /** When set, each request carries a Google ID token for this audience in X-Serverless-Authorization. */
  readonly idTokenAudience: string | undefined
  /** The most the app is assumed to hold of a request's header block; more is refused with 431. */
  readonly headerLimits: HeaderLimits
}

export interface IapConfig {
  readonly disabled: boolean
  readonly audiences: readonly string[]
  readonly keysUrl: string
  readonly allowedEmails: readonly string[]
  readonly allowedDomains: readonly string[]
  /** Verified assertions remembered (each until its exp); 0 verifies every request. */
  readonly tokenCacheSize: number
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export const DEFAULT_IAP_KEYS_URL = 'https://www.gstatic.com/iap/verify/public_key'
/** Cloud Run lets a request (an SSE stream included) run for up to 3600 s; an LLM may think for minutes. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 3_600_000
/** nginx's client_body_timeout: a minute between two reads of a request body. */
export const DEFAULT_CLIENT_BODY_TIMEOUT_MS = 60_000
/** Apache's LimitRequestFields, Tomcat's maxHeaderCount and gunicorn's limit_request_fields: the lowest common. */
export const DEFAULT_UPSTREAM_MAX_HEADER_COUNT = 100
/** Under Node's default 16 KiB (--max-http-header-size), leaving room for the framing headers undici adds. */
export const DEFAULT_UPSTREAM_MAX_HEADER_BYTES = 16_000

/** The three audience shapes IAP signs for (google-cloud-facts.md section 1). */
const AUDIENCE_SHAPES = [
  /^\/projects\/\d+\/global\/backendServices\/\d+$/,
  /^\/projects\/\d+\/locations\/[a-z][a-z0-9-]*\/services\/[a-z][a-z0-9-]{0,62}$/,
  /^\/projects\/\d+\/apps\/[a-z][a-z0-9:.-]{4,62}$/,
]
const EMAIL = /^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/

type Env = Readonly<Record<string, string | undefined>>

/**
 * Reads the gateway's settings from `env`. Every problem is collected and reported together in one
 * line (`ALLOWED_CIDRS[2] (10.0.0.0/33): prefix length 33 exceeds 32 for IPv4; PORT (abc): ...`).
 */
export function loadConfig(env: Env): GatewayConfig {
  const problems: string[] = []
  const problem = (name: string, value: string, why: string) => problems.push(`${name} (${value}): ${why}`)
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === '' ? undefined : value
  }
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const text = read(name)
    if (text === undefined) return fallback
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      problem(name, text, `not an integer between ${min} and ${max}`)
      return fallback
    }
    return Number(text)
  }
  const boolean = (name: string, fallback: boolean): boolean => {
    const text = read(name)
    if (text === undefined) return fallback
    if (text !== 'true' && text !== 'false') problem(name, text, 'must be true or false')
    return text === 'true'
  }
  const list = (name: string): string[] =>
    (read(name) ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '')

  const port = integer('PORT', 8080, 0, 65535)
  const host = read('HOST') ?? '0.0.0.0'
  if (host !== 'localhost' && !isStrictAddress(host)) problem('HOST', host, 'not an IP address or localhost')

  const upstream = parseUpstream(read('UPSTREAM_URL') ?? 'http://127.0.0.1:3000', problem)
  const hostHeader = read('UPSTREAM_HOST_HEADER')
  if (
    hostHeader !== undefined &&
    !/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(hostHeader)
  ) {
    problem('UPSTREAM_HOST_HEADER', hostHeader, 'not a host[:port]')
  }
  const idTokenAudience = read('UPSTREAM_ID_TOKEN_AUDIENCE')
  if (idTokenAudience !== undefined && !URL.canParse(idTokenAudience)) {
    problem('UPSTREAM_ID_TOKEN_AUDIENCE', idTokenAudience, 'not a URL (use the receiving service URL)')
  }

  const cidrs = list('ALLOWED_CIDRS')
  if (cidrs.length === 0)
    problems.push('ALLOWED_CIDRS: required, a comma-separated list of CIDRs or addresses')
  const ranges = cidrs.flatMap((entry, index) => {
    const parsed = parseNetwork(entry)
    if (typeof parsed === 'string') {
      problem(`ALLOWED_CIDRS[${index}]`, entry, parsed)
      return []
    }
    return [parsed]
  })

  const allowedOrigins = list('ALLOWED_ORIGINS').flatMap((entry, index) => {
    const origin = parseOrigin(entry)
    if (origin !== undefined) return [origin]
    // Never echo userinfo back: it may be a password.
    const url = URL.parse(entry)
    const shown =
      url !== null && (url.username !== '' || url.password !== '') ? `${url.protocol}//${url.host}` : entry
    problem(`ALLOWED_ORIGINS[${index}]`, shown, 'not an http(s) origin (scheme://host[:port])')
    return []
  })

  const logLevel = (read('LOG_LEVEL') ?? 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) problem('LOG_LEVEL', logLevel, `not one of ${LOG_LEVELS.join(', ')}`)

  const config: GatewayConfig = {
    port,
    host,
    upstream: Object.freeze({
      ...upstream,
      hostHeader: hostHeader ?? (upstream.tls ? new URL(upstream.origin).host : undefined),
      idTokenAudience,
      headerLimits: Object.freeze({
        // Node 24 itself refuses a request of more than 1000 header fields (nodejs/node#65470).
        count: integer('UPSTREAM_MAX_HEADER_COUNT', DEFAULT_UPSTREAM_MAX_HEADER_COUNT, 1, 1000),
        bytes: integer('UPSTREAM_MAX_HEADER_BYTES', DEFAULT_UPSTREAM_MAX_HEADER_BYTES, 1024, 1_048_576),
      }),
    }),
    allowlist: createAllowlist(cidrs, ranges),
    trustProxyHops: integer('TRUST_PROXY_HOPS', 0, 0, 16),
    allowedOrigins: Object.freeze(allowedOrigins),
    upstreamTimeoutMs: integer('UPSTREAM_TIMEOUT_MS', DEFAULT_UPSTREAM_TIMEOUT_MS, 1, 86_400_000),
    clientBodyTimeoutMs: integer('CLIENT_BODY_TIMEOUT_MS', DEFAULT_CLIENT_BODY_TIMEOUT_MS, 1, 3_600_000),
    shutdownGraceMs: integer('SHUTDOWN_GRACE_MS', 8000, 0, 3_600_000),
    logLevel,
    accessLog: boolean('ACCESS_LOG', true),
    iap: Object.freeze({
      ...parseIap(read, list, boolean, problem, problems),
      tokenCacheSize: integer('IAP_TOKEN_CACHE_SIZE', 10_000, 0, 1_000_000),
    }),
    googleCloudProject: read('GOOGLE_CLOUD_PROJECT'),
  }
  if (problems.length > 0) throw new GW_ERR_CONFIG(problems.join('; '))
  return Object.freeze(config)
}

type Problem = (name: string, value: string, why: string) => void

function parseUpstream(text: string, problem: Problem): Pick<UpstreamConfig, 'origin' | 'basePath' | 'tls'> {
  const fallback = { origin: 'http://127.0.0.1:3000', basePath: '', tls: false }
  if (!URL.canParse(text)) {
    problem('UPSTREAM_URL', text, 'not a URL')
    return fallback
  }
  const url = new URL(text)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problem('UPSTREAM_URL', text, 'scheme must be http or https')
    return fallback
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    // Do not echo the value back: it may hold a password.
    problem(
      'UPSTREAM_URL',
      `${url.protocol}//${url.host}`,
      'must not carry credentials, a query or a fragment',
    )
    return fallback
  }
  return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, ''), tls: url.protocol === 'https:' }
}

function parseIap(
  read: (name: string) => string | undefined,
  list: (name: string) => string[],
  boolean: (name: string, fallback: boolean) => boolean,
  problem: Problem,
  problems: string[],
): Omit<IapConfig, 'tokenCacheSize'> {
  const disabled = boolean('IAP_DISABLED', false)
  const audiences = list('IAP_AUDIENCE')
  if (audiences.length === 0 && !disabled) {
    problems.push('IAP_AUDIENCE: required (or IAP_DISABLED=true behind another authenticator)')
  }
  audiences.forEach((audience, index) => {
    if (!AUDIENCE_SHAPES.some((shape) => shape.test(audience))) {
      problem(
        `IAP_AUDIENCE[${index}]`,
        audience,
        'expected /projects/NUMBER/global/backendServices/ID, /projects/NUMBER/locations/REGION/services/NAME or /projects/NUMBER/apps/PROJECT_ID',
      )
    }
  })

  const keysUrl = read('IAP_KEYS_URL') ?? DEFAULT_IAP_KEYS_URL
  if (!URL.canParse(keysUrl)) {
    problem('IAP_KEYS_URL', keysUrl, 'not a URL')
  } else {
    const url = new URL(keysUrl)
    // Keys fetched over plain HTTP could be swapped in transit; only a loopback emulator may use it.
    const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      problem('IAP_KEYS_URL', keysUrl, 'must be https (plain http only on loopback, for the local emulator)')
    }
  }

  const allowedEmails = list('ALLOWED_EMAILS').map((email) => email.toLowerCase())
  allowedEmails.forEach((email, index) => {
    if (!EMAIL.test(email)) problem(`ALLOWED_EMAILS[${index}]`, email, 'not an email address')
  })
  const allowedDomains = list('ALLOWED_DOMAINS').map((domain) => domain.toLowerCase())
  allowedDomains.forEach((domain, index) => {
    if (!DOMAIN.test(domain)) problem(`ALLOWED_DOMAINS[${index}]`, domain, 'not a domain name')
  })

  return {
    disabled,
    audiences: Object.freeze(audiences),
    keysUrl,
    allowedEmails: Object.freeze(allowedEmails),
    allowedDomains: Object.freeze(allowedDomains),
  }
}

/** The effective configuration as plain data, for `--check-config` and the start-up log line. */
export function describeConfig(config: GatewayConfig): Record<string, unknown> {
  return {
    PORT: config.port,
    HOST: config.host,
    UPSTREAM_URL: config.upstream.origin + config.upstream.basePath,
    UPSTREAM_HOST_HEADER: config.upstream.hostHeader ?? '(the client Host header)',
    UPSTREAM_ID_TOKEN_AUDIENCE: config.upstream.idTokenAudience ?? '(none)',
    UPSTREAM_MAX_HEADER_COUNT: config.upstream.headerLimits.count,
    UPSTREAM_MAX_HEADER_BYTES: config.upstream.headerLimits.bytes,
    ALLOWED_CIDRS: config.allowlist.entries,
    TRUST_PROXY_HOPS: config.trustProxyHops,
    ALLOWED_ORIGINS: config.allowedOrigins,
    UPSTREAM_TIMEOUT_MS: config.upstreamTimeoutMs,
    CLIENT_BODY_TIMEOUT_MS: config.clientBodyTimeoutMs,
    SHUTDOWN_GRACE_MS: config.shutdownGraceMs,
    LOG_LEVEL: config.logLevel,
    ACCESS_LOG: config.accessLog,
    IAP_DISABLED: config.iap.disabled,
    IAP_AUDIENCE: config.iap.audiences,
    IAP_KEYS_URL: config.iap.keysUrl,
    ALLOWED_EMAILS: config.iap.allowedEmails,
    ALLOWED_DOMAINS: config.iap.allowedDomains,
    IAP_TOKEN_CACHE_SIZE: config.iap.tokenCacheSize,
    GOOGLE_CLOUD_PROJECT: config.googleCloudProject ?? '(unset)',
  }
}

import { type Allowlist, createAllowlist, parseNetwork } from './allowlist.ts'
import { isStrictAddress } from './client-address.ts'
import { GW_ERR_CONFIG } from './errors.ts'
import type { HeaderLimits } from './header-limits.ts'
import { parseOrigin } from './origin.ts'
import { type Env, readSettings, type Settings } from './settings.ts'

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

/** The three audience shapes IAP signs for: the `aud` row of https://cloud.google.com/iap/docs/signed-headers-howto. */
const AUDIENCE_SHAPES = [
  /^\/projects\/\d+\/global\/backendServices\/\d+$/,
  /^\/projects\/\d+\/locations\/[a-z][a-z0-9-]*\/services\/[a-z][a-z0-9-]{0,62}$/,
  /^\/projects\/\d+\/apps\/[a-z][a-z0-9:.-]{4,62}$/,
]
const EMAIL = /^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/

/**
 * Reads the gateway's settings from `env`, one validator per concern. Every problem is collected and
 * reported together in one line (`ALLOWED_CIDRS[2] (10.0.0.0/33): prefix length 33 exceeds 32 for
 * IPv4; PORT (abc): ...`); the result is frozen all the way down.
 */
export function loadConfig(env: Env): GatewayConfig {
  const settings = readSettings(env)
  const listen = readListen(settings)
  const upstream = readUpstream(settings)
  const network = readNetwork(settings)
  const logLevel = readLogLevel(settings)
  const config: GatewayConfig = {
    ...listen,
    upstream,
    ...network,
    upstreamTimeoutMs: settings.integer('UPSTREAM_TIMEOUT_MS', DEFAULT_UPSTREAM_TIMEOUT_MS, 1, 86_400_000),
    clientBodyTimeoutMs: settings.integer(
      'CLIENT_BODY_TIMEOUT_MS',
      DEFAULT_CLIENT_BODY_TIMEOUT_MS,
      1,
      3_600_000,
    ),
    shutdownGraceMs: settings.integer('SHUTDOWN_GRACE_MS', 8000, 0, 3_600_000),
    logLevel,
    accessLog: settings.boolean('ACCESS_LOG', true),
    iap: readIap(settings),
    googleCloudProject: settings.text('GOOGLE_CLOUD_PROJECT'),
  }
  if (settings.problems.length > 0) throw new GW_ERR_CONFIG(settings.problems.join('; '))
  return Object.freeze(config)
}

/** PORT, HOST. */
function readListen(settings: Settings): Pick<GatewayConfig, 'port' | 'host'> {
  const port = settings.integer('PORT', 8080, 0, 65535)
  const host = settings.text('HOST') ?? '0.0.0.0'
  if (host !== 'localhost' && !isStrictAddress(host)) {
    settings.problem('HOST', host, 'not an IP address or localhost')
  }
  return { port, host }
}

/** UPSTREAM_URL, UPSTREAM_HOST_HEADER, UPSTREAM_ID_TOKEN_AUDIENCE, UPSTREAM_MAX_HEADER_*. */
function readUpstream(settings: Settings): UpstreamConfig {
  const { origin, basePath, tls } = parseUpstreamUrl(settings)
  const hostHeader = settings.text('UPSTREAM_HOST_HEADER')
  if (
    hostHeader !== undefined &&
    !/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(hostHeader)
  ) {
    settings.problem('UPSTREAM_HOST_HEADER', hostHeader, 'not a host[:port]')
  }
  const idTokenAudience = settings.text('UPSTREAM_ID_TOKEN_AUDIENCE')
  if (idTokenAudience !== undefined && !URL.canParse(idTokenAudience)) {
    settings.problem(
      'UPSTREAM_ID_TOKEN_AUDIENCE',
      idTokenAudience,
      'not a URL (use the receiving service URL)',
    )
  }
  return Object.freeze({
    origin,
    basePath,
    tls,
    hostHeader: hostHeader ?? (tls ? new URL(origin).host : undefined),
    idTokenAudience,
    headerLimits: Object.freeze({
      // Node 24 itself refuses a request of more than 1000 header fields (nodejs/node#65470).
      count: settings.integer('UPSTREAM_MAX_HEADER_COUNT', DEFAULT_UPSTREAM_MAX_HEADER_COUNT, 1, 1000),
      bytes: settings.integer(
        'UPSTREAM_MAX_HEADER_BYTES',
        DEFAULT_UPSTREAM_MAX_HEADER_BYTES,
        1024,
        1_048_576,
      ),
    }),
  })
}

function parseUpstreamUrl(settings: Settings): Pick<UpstreamConfig, 'origin' | 'basePath' | 'tls'> {
  const text = settings.text('UPSTREAM_URL') ?? 'http://127.0.0.1:3000'
  const fallback = { origin: 'http://127.0.0.1:3000', basePath: '', tls: false }
  const url = URL.parse(text)
  if (url === null) {
    settings.problem('UPSTREAM_URL', text, 'not a URL')
    return fallback
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    settings.problem('UPSTREAM_URL', text, 'scheme must be http or https')
    return fallback
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    // Do not echo the value back: it may hold a password.
    const shown = `${url.protocol}//${url.host}`
    settings.problem('UPSTREAM_URL', shown, 'must not carry credentials, a query or a fragment')
    return fallback
  }
  return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, ''), tls: url.protocol === 'https:' }
}

/** ALLOWED_CIDRS, TRUST_PROXY_HOPS, ALLOWED_ORIGINS: who may connect, and from which pages. */
function readNetwork(
  settings: Settings,
): Pick<GatewayConfig, 'allowlist' | 'trustProxyHops' | 'allowedOrigins'> {
  const cidrs = settings.list('ALLOWED_CIDRS')
  if (cidrs.length === 0) {
    settings.missing('ALLOWED_CIDRS', 'required, a comma-separated list of CIDRs or addresses')
  }
  const ranges = cidrs.flatMap((entry, index) => {
    const parsed = parseNetwork(entry)
    if (typeof parsed !== 'string') return [parsed]
    settings.problem(`ALLOWED_CIDRS[${index}]`, entry, parsed)
    return []
  })
  const allowedOrigins = settings.list('ALLOWED_ORIGINS').flatMap((entry, index) => {
    const origin = parseOrigin(entry)
    if (origin !== undefined) return [origin]
    // Never echo userinfo back: it may be a password.
    const url = URL.parse(entry)
    const shown =
      url !== null && (url.username !== '' || url.password !== '') ? `${url.protocol}//${url.host}` : entry
    settings.problem(`ALLOWED_ORIGINS[${index}]`, shown, 'not an http(s) origin (scheme://host[:port])')
    return []
  })
  return {
    allowlist: createAllowlist(cidrs, ranges),
    trustProxyHops: settings.integer('TRUST_PROXY_HOPS', 0, 0, 16),
    allowedOrigins: Object.freeze(allowedOrigins),
  }
}

function readLogLevel(settings: Settings): LogLevel {
  const level = (settings.text('LOG_LEVEL') ?? 'info') as LogLevel
  if (!LOG_LEVELS.includes(level)) settings.problem('LOG_LEVEL', level, `not one of ${LOG_LEVELS.join(', ')}`)
  return level
}

/** IAP_*, ALLOWED_EMAILS, ALLOWED_DOMAINS. */
function readIap(settings: Settings): IapConfig {
  const disabled = settings.boolean('IAP_DISABLED', false)
  const audiences = settings.list('IAP_AUDIENCE')
  if (audiences.length === 0 && !disabled) {
    settings.missing('IAP_AUDIENCE', 'required (or IAP_DISABLED=true behind another authenticator)')
  }
  audiences.forEach((audience, index) => {
    if (!AUDIENCE_SHAPES.some((shape) => shape.test(audience))) {
      settings.problem(
        `IAP_AUDIENCE[${index}]`,
        audience,
        'expected /projects/NUMBER/global/backendServices/ID, /projects/NUMBER/locations/REGION/services/NAME or /projects/NUMBER/apps/PROJECT_ID',
      )
    }
  })

  const keysUrl = settings.text('IAP_KEYS_URL') ?? DEFAULT_IAP_KEYS_URL
  const url = URL.parse(keysUrl)
  // Keys fetched over plain HTTP could be swapped in transit; only a loopback emulator may use it.
  const loopback = url !== null && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)
  if (url === null) {
    settings.problem('IAP_KEYS_URL', keysUrl, 'not a URL')
  } else if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    settings.problem(
      'IAP_KEYS_URL',
      keysUrl,
      'must be https (plain http only on loopback, for the local emulator)',
    )
  }

  const allowedEmails = settings.list('ALLOWED_EMAILS').map((email) => email.toLowerCase())
  allowedEmails.forEach((email, index) => {
    if (!EMAIL.test(email)) settings.problem(`ALLOWED_EMAILS[${index}]`, email, 'not an email address')
  })
  const allowedDomains = settings.list('ALLOWED_DOMAINS').map((domain) => domain.toLowerCase())
  allowedDomains.forEach((domain, index) => {
    if (!DOMAIN.test(domain)) settings.problem(`ALLOWED_DOMAINS[${index}]`, domain, 'not a domain name')
  })

  return Object.freeze({
    disabled,
    audiences: Object.freeze(audiences),
    keysUrl,
    allowedEmails: Object.freeze(allowedEmails),
    allowedDomains: Object.freeze(allowedDomains),
    tokenCacheSize: settings.integer('IAP_TOKEN_CACHE_SIZE', 10_000, 0, 1_000_000),
  })
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

// Headers in and out: what the upstream receives of a request (the client's, less every spelling of
// what the gateway owns, plus the values it verified), and what the client receives of the answer.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { IapIdentity } from './iap/verify.ts'

/** What the pipeline established about one admitted request; the upstream headers are built from it. */
export interface RequestFacts {
  /** The one client address the gateway determined (never a client-written X-Forwarded-For entry). */
  readonly clientAddress: string
  readonly proto: 'http' | 'https'
  /** The Host the client asked for (the proxy has already replaced `host` with the upstream's). */
  readonly host: string | undefined
  /** Present when an IAP assertion was verified. */
  readonly identity: IapIdentity | undefined
  /** The verified assertion, passed on unchanged so the app may verify it again. */
  readonly assertion: string | undefined
  /** A Google ID token for a private upstream; sent as X-Serverless-Authorization, leaving Authorization to the app. */
  readonly upstreamToken: string | undefined
}

/**
 * Request headers that carry identity, a client address, Google credentials or a credential meant for a
 * proxy. A client may send any of them, in any case and with `_` for `-` (many frameworks fold
 * `x_forwarded_email` into `X-Forwarded-Email`), so every spelling is dropped and only values the gateway
 * verified are set.
 */
export function isGatewayOwnedHeader(name: string): boolean {
  const folded = name.toLowerCase().replaceAll('_', '-')
  return (
    folded.startsWith('x-forwarded-') ||
    folded.startsWith('x-goog-authenticated-') ||
    folded.startsWith('x-goog-iap-') ||
    OWNED_EXACT.has(folded)
  )
}

const OWNED_EXACT = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'x-original-forwarded-for',
  // IAP's credential towards Cloud Run; meaningless to the app, and a token to keep out of its logs.
  'x-serverless-authorization',
  // A credential for the proxy in front of the app (RFC 9110 11.7.2), where IAP's programmatic clients
  // may put their Google OIDC token (https://cloud.google.com/iap/docs/authentication-howto). The app
  // keeps Authorization (Flowise API keys); this one ends here.
  'proxy-authorization',
])

/**
 * Headers that belong to one connection (RFC 9110 7.6.1), in either direction: never passed on. The IAP
 * emulator (dev/iap-emulator.ts) filters with the same set, so the two hops agree.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // h2c's settings for the connection it asks to upgrade (RFC 7540 3.2.1); the gateway never upgrades.
  'http2-settings',
])

/** Whether `name` (lower case) is hop-by-hop by itself; a `Connection` header may name more. */
export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name)
}

/**
 * Request headers never copied from the client: this hop's own; `host`, which the gateway sets; and
 * `expect`, met here (forward.ts sends 100 Continue once the request is admitted; undici refuses it).
 */
const SET_BY_THIS_HOP = new Set([...HOP_BY_HOP, 'host', 'expect'])

/** For a WebSocket upgrade, also the handshake headers the upstream client writes itself. */
const WEBSOCKET_OWN_HEADERS = new Set([
  ...SET_BY_THIS_HOP,
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
])

/**
 * The headers the upstream receives: the verified values first, then the client's, less hop-by-hop
 * headers, every header the client's `Connection` names and every gateway-owned spelling. First, so an
 * app that keeps only its first N lines (Node before v22.23.2 / v24.18.1 did so silently) keeps the
 * identity; and since the client's copies of those names are dropped, nothing the client writes, not even
 * `Connection: x-forwarded-email`, can replace or remove them.
 */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  facts: RequestFacts,
  hostHeader: string | undefined,
  ownedByThisHop: ReadonlySet<string> = SET_BY_THIS_HOP,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {}
  // Flowise (Express, trust proxy on) takes the left-most entry: make it the only one.
  headers['x-forwarded-for'] = facts.clientAddress
  headers['x-forwarded-proto'] = facts.proto
  if (facts.host !== undefined) headers['x-forwarded-host'] = facts.host
  // The app sees the name the user typed, unless it needs its own (an HTTPS upstream, for SNI and vhosts).
  const host = hostHeader ?? facts.host
  if (host !== undefined) headers.host = host
  const identity = facts.identity
  if (identity !== undefined) {
    headers['x-forwarded-email'] = identity.email
    headers['x-forwarded-user'] = identity.sub
    headers['x-goog-authenticated-user-email'] = identity.userEmailHeader
    headers['x-goog-authenticated-user-id'] = identity.userIdHeader
  }
  if (facts.assertion !== undefined) headers['x-goog-iap-jwt-assertion'] = facts.assertion
  if (facts.upstreamToken !== undefined)
    headers['x-serverless-authorization'] = `Bearer ${facts.upstreamToken}`

  const listed = connectionTokens(incoming.connection)
  for (const name in incoming) {
    if (ownedByThisHop.has(name) || listed.has(name) || isGatewayOwnedHeader(name)) continue
    // A JavaScript object lists integer-like keys before all others, whatever the insertion order: a
    // client header named `0` would be written ahead of the gateway's. No real header is named so.
    if (isIndexLike(name)) continue
    headers[name] = incoming[name]
  }
  return headers
}

/** `0`, `1`, `42`: the property names a JavaScript object orders first (ECMA-262 OrdinaryOwnPropertyKeys). */
function isIndexLike(name: string): boolean {
  const first = name.charCodeAt(0)
  return first >= 48 && first <= 57 && /^(?:0|[1-9]\d*)$/.test(name)
}

/**
 * The same headers for a WebSocket upgrade, where the upstream client writes the handshake headers
 * itself. (@fastify/http-proxy's WebSocket path would otherwise forward only `cookie`.)
 */
export function upstreamWebSocketHeaders(
  incoming: IncomingHttpHeaders,
  facts: RequestFacts,
  hostHeader: string | undefined,
): OutgoingHttpHeaders {
  return upstreamHeaders(incoming, facts, hostHeader, WEBSOCKET_OWN_HEADERS)
}

/**
 * The `x-goog-iap-jwt-assertion` values exactly as received. `request.headers` joins repeated lines
 * with ', ', which would hide a second assertion; raw headers show every line and every spelling.
 */
export function assertionValues(rawHeaders: readonly string[]): string[] {
  const values: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === 'x-goog-iap-jwt-assertion')
      values.push(rawHeaders[i + 1] as string)
  }
  return values
}

/**
 * The upstream's response headers for the client, less its hop-by-hop headers and those its
 * `Connection` names: the upstream's `Connection: keep-alive` would override a client's
 * `Connection: close` (the socket then never closes), and its keep-alive timeout is not ours.
 */
export function downstreamHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionTokens(incoming.connection)
  const headers: OutgoingHttpHeaders = {}
  for (const name in incoming) {
    if (!HOP_BY_HOP.has(name) && !listed.has(name)) headers[name] = incoming[name]
  }
  return headers
}

const NONE_LISTED: ReadonlySet<string> = new Set()

/**
 * The header names a `Connection` header lists, lower case. Node joins a request's repeated lines with
 * ', '; undici gives a response's as an array. A Set, so a header block of thousands of names and
 * thousands of tokens costs one lookup per name, not their product.
 */
export function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NONE_LISTED
  const text = typeof value === 'string' ? value : value.join(',')
  return new Set(
    text
      .toLowerCase()
      .split(',')
      .map((token) => token.trim()),
  )
}

import type { IncomingHttpHeaders } from 'node:http'

/**
 * Whether a WebSocket upgrade's origin may open a socket here: no origin (not a browser: a browser
 * always sends one on a WebSocket handshake, RFC 6455 4.1, so there is no page to hijack the socket
 * for), one listed in ALLOWED_ORIGINS (exact, as `URL.origin` spells it), or one on the request's own
 * host. The origin is `Origin`, and `Sec-WebSocket-Origin` too: the drafts before RFC 6455 (hybi-07 to
 * -12, `Sec-WebSocket-Version: 8`, which ws still accepts) named it so. Each one sent must pass.
 *
 * "Own host" is the `Host` header the gateway received, compared exactly (case aside, and a default
 * port the same as none): the name the user typed, which Google's load balancer passes on unchanged
 * (and the dev emulator too). Not `X-Forwarded-Host`: the gateway drops the client's and writes its own
 * from `Host`. The scheme counts when the gateway knows it: behind trusted proxies that report `https`,
 * a page on the same host over plain HTTP (which anyone on its network path may write) is another
 * origin. Directly, the gateway sees plain HTTP whatever the user typed, so either scheme is its own.
 */
export function originAllowed(
  headers: IncomingHttpHeaders,
  proto: 'http' | 'https',
  allowedOrigins: ReadonlySet<string>,
): boolean {
  const { origin, host } = headers
  const legacy = headers['sec-websocket-origin'] as string | undefined
  return (
    (origin === undefined || allowed(origin, host, proto, allowedOrigins)) &&
    (legacy === undefined || allowed(legacy, host, proto, allowedOrigins))
  )
}

function allowed(
  origin: string,
  host: string | undefined,
  proto: 'http' | 'https',
  allowedOrigins: ReadonlySet<string>,
): boolean {
  const url = URL.parse(origin) // `null` (sandboxed frames, file: pages) and junk do not parse
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return false
  if (allowedOrigins.has(url.origin)) return true
  if (proto === 'https' && url.protocol !== 'https:') return false
  return host !== undefined && sameHost(url, host.toLowerCase())
}

/** `URL.host` is lower case, without the scheme's default port; `Host` may name that port. */
function sameHost(url: URL, host: string): boolean {
  return host === url.host || host === `${url.host}${url.protocol === 'https:' ? ':443' : ':80'}`
}

/** An ALLOWED_ORIGINS entry as `URL.origin` spells it, or undefined when it is not an http(s) origin. */
export function parseOrigin(text: string): string | undefined {
  const url = URL.parse(text)
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return undefined
  if (
    url.username !== '' ||
    url.password !== '' ||
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== ''
  ) {
    return undefined
  }
  return url.origin
}

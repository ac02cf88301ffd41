/**
 * Whether a WebSocket upgrade's `Origin` may open a socket here: no Origin (not a browser: a browser
 * always sends one on a WebSocket handshake, RFC 6455 4.1, so there is no page to hijack the socket
 * for), one listed in ALLOWED_ORIGINS (exact, as `URL.origin` spells it), or one whose host is the
 * request's own.
 *
 * "Own host" is the `Host` header the gateway received: the name the user typed, which Google's load
 * balancer passes on unchanged (and the dev emulator too). Not `X-Forwarded-Host`: the gateway drops the
 * client's and writes its own from `Host`. The scheme is not compared: behind the load balancer the
 * gateway sees plain HTTP, and a page on the same host over the other scheme is the same site.
 */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowedOrigins: ReadonlySet<string>,
): boolean {
  if (origin === undefined) return true
  const url = URL.parse(origin) // `null` (sandboxed frames, file: pages) and junk do not parse
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return false
  if (allowedOrigins.has(url.origin)) return true
  // Host in the Origin's scheme, so a default port (`:443`) compares like none.
  return host !== undefined && URL.parse(`${url.protocol}//${host}`)?.host === url.host
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

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

/** The most an app is assumed to hold of one request's header block (UPSTREAM_MAX_HEADER_*). */
export interface HeaderLimits {
  readonly count: number
  readonly bytes: number
}

/** Which limit the header block as sent upstream would pass; each is a 431 reason in the log. */
export type HeaderExcess = 'count' | 'bytes'

/** Lines (and their bytes) the HTTP client adds to the block as it writes it. */
export interface Framing {
  readonly count: number
  readonly bytes: number
}

/** A line's bytes as counted below: name and value, no separators. */
const line = (name: string, value: string) => name.length + value.length

// undici 7's lib/dispatcher/client-h1.js writeH1: `connection: keep-alive` on every request on a pooled
// connection (`connection: close`, shorter, when it means to close it); `host: <origin host>` when the
// headers name none; the body's length line from the `content-length` header it is given, else, for a
// stream body, `transfer-encoding: chunked` while it is still arriving (writeStream) or
// `content-length: <n>` when it is already in (util.bodyLength), a line no longer for any body held in
// memory. Counted as chunked.
const UNDICI_CONNECTION = line('connection', 'keep-alive')
const UNDICI_CHUNKED = line('transfer-encoding', 'chunked')

/**
 * What undici adds to a plain request's `headers`. `hasBody` as the forwarder passes the client's body
 * on: a stream, whose length undici takes from `content-length` when the client sent one (that line is
 * already in `headers`).
 */
export function plainFraming(headers: OutgoingHttpHeaders, hasBody: boolean, upstreamHost: string): Framing {
  let count = 1
  let bytes = UNDICI_CONNECTION
  if (hasBody && headers['content-length'] === undefined) {
    count += 1
    bytes += UNDICI_CHUNKED
  }
  if (headers.host === undefined) {
    count += 1
    bytes += line('host', upstreamHost)
  }
  return { count, bytes }
}

// ws 8's lib/websocket.js initAsClient, as @fastify/http-proxy opens the upstream socket: the version
// (13), a 16-byte key in base64, `Connection: Upgrade`, `Upgrade: websocket`, the permessage-deflate
// offer (perMessageDeflate is on by default), and `Sec-WebSocket-Protocol` with the subprotocol the
// client's handshake agreed on; Node's http.request adds `Host` when the headers name none.
const WS_HANDSHAKE =
  line('sec-websocket-version', '13') +
  line('sec-websocket-key', 'x'.repeat(24)) +
  line('connection', 'Upgrade') +
  line('upgrade', 'websocket') +
  line('sec-websocket-extensions', 'permessage-deflate; client_max_window_bits')

/**
 * What ws and Node add to an upgrade's `headers`. The subprotocol is one of those the client offered
 * (`incoming`), so its line is counted at the length of the whole offer: at most a few bytes too many.
 */
export function webSocketFraming(
  incoming: IncomingHttpHeaders,
  headers: OutgoingHttpHeaders,
  upstreamHost: string,
): Framing {
  let count = 5
  let bytes = WS_HANDSHAKE
  const offered = incoming['sec-websocket-protocol']
  if (offered !== undefined) {
    count += 1
    bytes += line('sec-websocket-protocol', offered)
  }
  if (headers.host === undefined) {
    count += 1
    bytes += line('host', upstreamHost)
  }
  return { count, bytes }
}

/**
 * Whether `headers`, sent with `target` and the client's `framing`, would pass the app's limits. Lines
 * are counted as written (an array value is one line per element); bytes as Node counts them against
 * its --max-http-header-size: the target plus every name and value, without separators. An app that
 * meets a block over its limit refuses it (Node 24, Apache, Tomcat, gunicorn) or, worse, drops the
 * lines beyond (older Node): refused here with a clear reason instead.
 */
export function headerExcess(
  target: string,
  headers: OutgoingHttpHeaders,
  framing: Framing,
  limits: HeaderLimits,
): HeaderExcess | undefined {
  let count = framing.count
  let bytes = target.length + framing.bytes
  for (const name in headers) {
    const value = headers[name]
    if (typeof value === 'string') {
      count += 1
      bytes += name.length + value.length
    } else {
      // The client's repeated lines Node keeps apart (Set-Cookie); the gateway's own are strings.
      const lines = value as string[]
      count += lines.length
      for (const line of lines) bytes += name.length + line.length
    }
  }
  if (count > limits.count) return 'count'
  if (bytes > limits.bytes) return 'bytes'
  return undefined
}

import type { OutgoingHttpHeaders } from 'node:http'

/** The most an app is assumed to hold of one request's header block (UPSTREAM_MAX_HEADER_*). */
export interface HeaderLimits {
  readonly count: number
  readonly bytes: number
}

/** Which limit the header block as sent upstream would pass; each is a 431 reason in the log. */
export type HeaderExcess = 'count' | 'bytes'

/**
 * Whether `headers`, sent with `target`, would pass the app's limits. Lines are counted as written (an
 * array value is one line per element); bytes as Node counts them against its --max-http-header-size:
 * the target plus every name and value, without separators. An app that meets a block over its limit
 * refuses it (Node 24, Apache, Tomcat, gunicorn) or, worse, drops the lines beyond (older Node): refused
 * here with a clear reason instead.
 */
export function headerExcess(
  target: string,
  headers: OutgoingHttpHeaders,
  limits: HeaderLimits,
): HeaderExcess | undefined {
  let count = 0
  let bytes = target.length
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

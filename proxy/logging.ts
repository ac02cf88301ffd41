import pino, { type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from './config.ts'

export type { Logger }

/** pino's level labels mapped to Cloud Logging's `severity` values. */
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
}

/**
 * A pino logger whose lines Cloud Logging reads natively: `severity` instead of a numeric level,
 * `message` instead of `msg`, an RFC 3339 `time`.
 *
 * Redaction is a second line of defence: nothing in the gateway logs headers, but should a request or
 * error object ever be logged, its credentials are censored rather than written out.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      messageKey: 'message',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ severity: SEVERITY[label] }),
        log: withoutQueryStrings,
      },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["proxy-authorization"]',
          'req.headers["x-goog-iap-jwt-assertion"]',
          'req.headers["x-serverless-authorization"]',
          'headers.authorization',
          'headers.cookie',
          'headers["x-goog-iap-jwt-assertion"]',
          // Node's parser errors carry the raw bytes it read (Fastify's client-error log wrote them).
          'err.rawPacket',
          'error.rawPacket',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  )
}

/**
 * Keys under which the libraries the gateway runs log a URL: @fastify/http-proxy writes the upstream
 * WebSocket URL, the client's query string included, as `url` at debug ("proxy websocket"), and `target`
 * on reconnects. Our own lines never carry a query; a library's get theirs cut off here.
 */
const URL_KEYS = ['url', 'target'] as const

function withoutQueryStrings(object: Record<string, unknown>): Record<string, unknown> {
  let cleaned: Record<string, unknown> | undefined
  for (const key of URL_KEYS) {
    const value = object[key]
    if (typeof value !== 'string' && !(value instanceof URL)) continue
    const text = String(value)
    const queryAt = text.search(/[?#]/)
    if (queryAt === -1) continue
    cleaned ??= { ...object }
    cleaned[key] = text.slice(0, queryAt)
  }
  return cleaned ?? object
}

const TRACE_CONTEXT = /^([0-9a-f]{32})(?:\/(\d+))?/i
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/i

/**
 * Cloud Logging's trace correlation fields from `X-Cloud-Trace-Context` or W3C `traceparent`, so a
 * gateway line sits under the load balancer's request in the log viewer. Needs the project id.
 */
export function traceFields(
  project: string | undefined,
  cloudTraceContext: string | undefined,
  traceparent: string | undefined,
): Record<string, string> | undefined {
  if (project === undefined) return undefined
  let trace: string | undefined
  let spanId: string | undefined
  const cloud = cloudTraceContext === undefined ? null : TRACE_CONTEXT.exec(cloudTraceContext)
  if (cloud !== null) {
    trace = cloud[1]
    spanId = cloud[2]
  } else {
    const w3c = traceparent === undefined ? null : TRACEPARENT.exec(traceparent)
    if (w3c === null) return undefined
    trace = w3c[1]
    spanId = w3c[2]
  }
  const fields: Record<string, string> = {
    'logging.googleapis.com/trace': `projects/${project}/traces/${trace}`,
  }
  if (spanId !== undefined) fields['logging.googleapis.com/spanId'] = spanId
  return fields
}

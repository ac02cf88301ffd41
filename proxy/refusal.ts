import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Denial, RefusalReason } from './errors.ts'
import { ignoredUpgrade } from './upgrade.ts'

/**
 * The one way the gateway refuses a request, whoever refuses it (a stage, the forwarder, an error no
 * stage expected, Fastify's router): the client learns the status and a request id in a generic body;
 * the log learns the reason (the access log writes `request.denialReason`); and when more of the
 * request may still arrive, the answer closes the connection rather than read it.
 */

/** The refusal as a Fastify reply: for the hooks, before Fastify handed the response over. */
export function deny(
  request: FastifyRequest,
  reply: FastifyReply,
  denial: Denial,
  reason: RefusalReason,
): FastifyReply {
  const { headers, body } = refusal(request, denial, reason)
  return reply.code(denial.status).headers(headers).send(body)
}

/** The same refusal on the raw response: for answers written after the forwarder took it over. */
export function refuse(
  request: FastifyRequest,
  response: ServerResponse,
  denial: Denial,
  reason: RefusalReason,
): void {
  const { headers, body } = refusal(request, denial, reason)
  response.writeHead(denial.status, headers)
  response.end(body)
}

/**
 * An error thrown where no stage expected one (a bug in a stage, a library) or raised by Fastify itself
 * before any hook (`frameworkErrors`: a target whose percent-escapes do not decode): its own 4xx status
 * or 500, the generic body (Fastify's default would echo its message, which may name internal
 * addresses or the path), its code in the reason.
 */
export function denyError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: Error & { statusCode?: number; code?: string },
): FastifyReply {
  const status =
    error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500
      ? error.statusCode
      : 500
  return deny(
    request,
    reply,
    { status, message: STATUS_CODES[status] ?? 'Error' },
    `${status >= 500 ? 'internal_error' : 'request_invalid'}:${error.code ?? status}`,
  )
}

function refusal(request: FastifyRequest, denial: Denial, reason: RefusalReason) {
  request.denialReason = reason
  const headers: Record<string, string> = { ...REFUSAL_HEADERS }
  const body = refusalBody(denial.message, request.id)
  // ASCII only: the message is a status text, the id a UUID.
  headers['content-length'] = String(body.length)
  if (mustClose(request.raw)) headers.connection = 'close'
  return { headers, body }
}

/** The headers every refusal carries besides its length (client-error.ts writes them by hand). */
export const REFUSAL_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  'content-type': 'application/json; charset=utf-8',
})

/**
 * Every refusal's body: the status text, and the request id when there is a request (Node's parser
 * refuses some bytes before there is one, client-error.ts).
 */
export function refusalBody(message: string, requestId?: string): string {
  return requestId === undefined
    ? `{"error":"${message}"}`
    : `{"error":"${message}","requestId":"${requestId}"}`
}

/**
 * Whether the answer to this request must close the connection: a body still on its way would be read
 * to its end to keep the connection (Node drains it), however slowly it trickles; and after an ignored
 * upgrade Node reads nothing more of the connection (upgrade.ts).
 */
export function mustClose(raw: IncomingMessage): boolean {
  return bodyPending(raw) || ignoredUpgrade(raw)
}

/**
 * Whether the request has a body that has not fully arrived. `complete` alone is not enough: a
 * request without a body is complete only after the 'request' event, in which a synchronous refusal
 * is already written.
 */
function bodyPending(raw: IncomingMessage): boolean {
  if (raw.complete) return false
  const length = raw.headers['content-length']
  return (length !== undefined && length !== '0') || raw.headers['transfer-encoding'] !== undefined
}

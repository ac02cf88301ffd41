import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { RefusalReason } from './errors.ts'
import { REFUSAL_HEADERS, refusalBody } from './refusal.ts'

/** The parser's codes that are not a plain 400 (Fastify's default handler answers the same). */
const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  HPE_HEADER_OVERFLOW: 431,
}

/**
 * Node's parser refused the bytes before there was a request: a malformed request line or header, a
 * header block over 16 KiB or 1000 fields, headers too slow to arrive. Fastify's default handler logs
 * the error at trace with `rawPacket`, the raw bytes read so far: query string, Authorization, Cookie,
 * Proxy-Authorization, the assertion. This one logs only the parser's code, and answers as Node does:
 * a short refusal, unless an answer to an earlier request on the connection is already under way,
 * then the connection is closed.
 */
export function clientErrorHandler(
  this: FastifyInstance,
  error: Error & { code?: string },
  socket: Socket,
): void {
  // A reset needs no answer; nor does a socket already gone (https://nodejs.org/api/http.html#event-clienterror).
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const status = STATUS_BY_CODE[error.code as string] ?? 400
  // Node's parser errors all carry a code (HPE_..., ERR_HTTP_REQUEST_TIMEOUT).
  const reason: RefusalReason = `client_error:${error.code}`
  this.log.debug({ reason, status }, 'malformed request refused')
  // Node's own rule (lib/_http_server.js socketOnError): never write into a response already begun.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && inFlight?.headersSent !== true) {
    const text = STATUS_CODES[status] as string
    const body = refusalBody(text)
    const headers = { ...REFUSAL_HEADERS, 'content-length': body.length, connection: 'close' }
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`)
    socket.write(`HTTP/1.1 ${status} ${text}\r\n${lines.join('')}\r\n${body}`)
  }
  socket.destroy()
}

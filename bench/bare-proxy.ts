// The limit for any Node proxy: undici's Pool.stream piping the upstream's answer straight into the
// client's response. No checks, no framework, no header rewriting. Run as its own process.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'

const pool = new Pool(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:3000', { connections: 128 })

const server = createServer((request, response) => {
  const { connection: _, ...headers } = request.headers
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
  pool.stream(
    { path: request.url ?? '/', method: request.method as 'GET', headers, body: hasBody ? request : null },
    ({ statusCode, headers: upstreamHeaders }) => {
      response.writeHead(statusCode, upstreamHeaders as Record<string, string>)
      return response
    },
    (error) => {
      if (error !== null && !response.headersSent) response.writeHead(502).end()
    },
  )
})
server.keepAliveTimeout = 65_000

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
})
process.on('SIGTERM', () => process.exit(0))

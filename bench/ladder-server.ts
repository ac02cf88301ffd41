// One rung of the cost ladder (bench/ladder.ts): a proxy built from some of the gateway's parts, to see
// what each part costs. Run as its own process: VARIANT, PORT, UPSTREAM_URL, IAP_KEYS_URL, IAP_AUDIENCE.
//   fastify-http-proxy   Fastify (no logger) + @fastify/http-proxy, no hooks: the framework and the plugin
//   fastify-stream       Fastify (no logger), one catch-all route that hijacks and pipes with Pool.stream
//   checks-stream        no framework: node:http + the gateway's own checks (client address, allowlist,
//                        IAP verification, identity headers) + Pool.stream
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import httpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import { Pool } from 'undici'
import { createAllowlist, parseNetwork } from '../proxy/allowlist.ts'
import { resolveClientAddress } from '../proxy/client-address.ts'
import { assertionValues, downstreamHeaders, upstreamHeaders } from '../proxy/headers.ts'
import { createIapVerifier } from '../proxy/iap/verify.ts'

const upstream = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:3000'
const port = Number(process.env.PORT ?? 0)
const ready = (address: AddressInfo | string | null) =>
  process.stdout.write(`${JSON.stringify({ port: (address as AddressInfo).port })}\n`)

function streamTo(
  pool: Pool,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  response: import('node:http').ServerResponse,
) {
  pool.stream(
    { path, method: method as 'GET', headers: headers as Record<string, string>, body: null },
    ({ statusCode, headers: upstreamResponseHeaders }) => {
      response.writeHead(
        statusCode,
        downstreamHeaders(upstreamResponseHeaders as IncomingHttpHeaders) as Record<string, string>,
      )
      return response
    },
    (error) => {
      if (error !== null && !response.headersSent) response.writeHead(502).end()
    },
  )
}

switch (process.env.VARIANT) {
  case 'fastify-http-proxy': {
    const app = Fastify({ logger: false })
    await app.register(httpProxy, { upstream, undici: { connections: 128, pipelining: 1 } })
    await app.listen({ port, host: '127.0.0.1' })
    ready(app.server.address())
    break
  }
  case 'fastify-stream': {
    const pool = new Pool(upstream, { connections: 128 })
    const app = Fastify({ logger: false })
    app.all('/*', (request, reply) => {
      reply.hijack()
      const { connection: _, ...headers } = request.headers
      streamTo(pool, request.method, request.url, headers, reply.raw)
    })
    await app.listen({ port, host: '127.0.0.1' })
    ready(app.server.address())
    break
  }
  case 'checks-stream': {
    const pool = new Pool(upstream, { connections: 128 })
    const ranges = ['127.0.0.1/32'].map(
      (entry) => parseNetwork(entry) as Exclude<ReturnType<typeof parseNetwork>, string>,
    )
    const allowlist = createAllowlist(['127.0.0.1/32'], ranges)
    const silent = { info() {}, warn() {}, error() {}, debug() {} }
    const verifier = createIapVerifier({
      audiences: [process.env.IAP_AUDIENCE ?? ''],
      keysUrl: process.env.IAP_KEYS_URL ?? '',
      allowedEmails: [],
      allowedDomains: [],
      log: silent as never,
    })
    verifier.start()
    const refuse = (response: import('node:http').ServerResponse, status: number) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end('{"error":"refused"}')
    const server = createServer(async (request, response) => {
      const address = resolveClientAddress(request.socket.remoteAddress, undefined, 0)
      if (typeof address === 'string' || !allowlist.allows(address)) return refuse(response, 403)
      const assertions = assertionValues(request.rawHeaders)
      const result = await verifier.verify(assertions)
      if (!result.ok) return refuse(response, 401)
      const { connection: _, ...incoming } = request.headers
      const headers = upstreamHeaders(
        incoming,
        {
          clientAddress: address.toString(),
          proto: 'http',
          host: request.headers.host,
          identity: result.identity,
          assertion: assertions[0],
          upstreamToken: undefined,
        },
        undefined,
      )
      streamTo(pool, request.method ?? 'GET', request.url ?? '/', headers as IncomingHttpHeaders, response)
    })
    server.keepAliveTimeout = 65_000
    server.listen(port, '127.0.0.1', () => ready(server.address()))
    break
  }
  default:
    process.stderr.write(`unknown VARIANT ${process.env.VARIANT}\n`)
    process.exit(2)
}
process.on('SIGTERM', () => process.exit(0))

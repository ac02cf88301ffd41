// One rung of the cost ladder (bench/ladder.ts): a proxy with some of the gateway's parts, to see what
// each costs. Run as its own process: VARIANT, PORT, UPSTREAM_URL.
//   fastify-http-proxy   Fastify (no logger) + @fastify/http-proxy, no hooks: the framework and the plugin
//   fastify-stream       Fastify (no logger), one catch-all route that hijacks and pipes with Pool.stream
//   gateway-no-iap       the gateway itself, from its own factory (createGateway), with IAP_DISABLED=true:
//                        every stage but the signature check, so a stage added to the pipeline shows here
// The last rung, the gateway with every check, is the built gateway process (bench/targets.ts).
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import httpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import { Pool } from 'undici'
import { loadConfig } from '../proxy/config.ts'
import { downstreamHeaders } from '../proxy/headers.ts'
import { createLogger } from '../proxy/logging.ts'
import { createGateway } from '../proxy/server.ts'
import { gatewayEnv } from './targets.ts'

const upstream = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:3000'
const port = Number(process.env.PORT ?? 0)
const ready = (address: AddressInfo | string | null) =>
  process.stdout.write(`${JSON.stringify({ port: (address as AddressInfo).port })}\n`)

function streamTo(
  pool: Pool,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  response: ServerResponse,
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
  case 'gateway-no-iap': {
    // The same environment the built gateway gets (bench/targets.ts), less IAP.
    const env = gatewayEnv(
      {
        name: 'gateway-no-iap',
        upstreamUrl: upstream,
        keysUrl: '',
        iap: false,
        accessLog: false,
        logDir: '',
      },
      port,
    )
    const config = loadConfig(env)
    const { app } = await createGateway(config, {
      logger: createLogger(config.logLevel),
      verifier: undefined,
    })
    await app.listen({ port: config.port, host: config.host })
    ready(app.server.address())
    break
  }
  default:
    process.stderr.write(`unknown VARIANT ${process.env.VARIANT}\n`)
    process.exit(2)
}
process.on('SIGTERM', () => process.exit(0))

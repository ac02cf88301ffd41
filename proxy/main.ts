#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { describeConfig, type GatewayConfig, loadConfig } from './config.ts'
import { createIapVerifier } from './iap/verify.ts'
import { createLogger, type Logger } from './logging.ts'
import { resolveEnvironment } from './secrets/resolve.ts'
import { createGateway } from './server.ts'

/**
 * The gateway process: configuration -> server -> listen -> drain on SIGTERM.
 * A configuration problem ends the process here, before anything listens, with one line on stderr.
 */
async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values } = parseArgs({ args: [...argv], options: { 'check-config': { type: 'boolean' } } })
  let config: GatewayConfig
  try {
    // Secret references (sm://...) are resolved before the configuration is read, so any setting may be one.
    config = loadConfig(await resolveEnvironment(env))
  } catch (error) {
    return fail(error)
  }
  if (values['check-config']) {
    process.stdout.write(`${JSON.stringify(describeConfig(config), null, 2)}\n`)
    return
  }

  const logger = createLogger(config.logLevel)
  const verifier = config.iap.disabled
    ? undefined
    : createIapVerifier({
        audiences: config.iap.audiences,
        keysUrl: config.iap.keysUrl,
        allowedEmails: config.iap.allowedEmails,
        allowedDomains: config.iap.allowedDomains,
        cacheSize: config.iap.tokenCacheSize,
        log: logger,
      })
  const { app, health } = await createGateway(config, { logger, verifier })
  // Keys load in the background: /_gateway/healthz answers meanwhile, readyz and requests wait for them.
  verifier?.start()
  app.addHook('onClose', async () => verifier?.close())
  if (config.iap.disabled) {
    logger.warn(
      'IAP_DISABLED=true: IAP assertions are NOT verified; only run this behind another authenticator',
    )
  }
  await app.listen({ port: config.port, host: config.host })
  logger.info({ config: describeConfig(config), address: app.server.address() }, 'gateway listening')

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    shutdown(signal, config, logger, health.beginShutdown.bind(health), () => {
      // server.close() drops only the connections idle at that moment; a keep-alive connection whose
      // stream ends later would hold the process until its keep-alive timeout. Sweep them as they idle.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100)
      return app.close().finally(() => clearInterval(sweep))
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

/**
 * Readiness turns 503 first, then the server stops accepting and waits for in-flight requests
 * (SSE streams included) up to SHUTDOWN_GRACE_MS; whatever is still open then is cut.
 */
function shutdown(
  signal: NodeJS.Signals,
  config: GatewayConfig,
  logger: Logger,
  beginShutdown: () => void,
  close: () => Promise<void>,
): void {
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: draining in-flight requests')
  beginShutdown()
  const deadline = setTimeout(() => {
    logger.warn({ graceMs: config.shutdownGraceMs }, 'grace period over: closing remaining connections')
    process.exit(0)
  }, config.shutdownGraceMs)
  deadline.unref()
  close().then(
    () => {
      logger.info('drained; exiting')
      process.exit(0)
    },
    /* c8 ignore next 4 -- Fastify's close() rejects only if a plugin's onClose hook fails; ours have none */
    (error: unknown) => {
      logger.error({ err: error }, 'error while closing')
      process.exit(1)
    },
  )
}

function fail(error: unknown): never {
  /* c8 ignore next -- everything we throw is an Error; String() keeps an odd library throw printable */
  const message = error instanceof Error ? error.message : String(error)
  process.stderr.write(`iap-gateway: ${message}\n`)
  process.exit(1)
}

main(process.argv.slice(2), process.env).catch(fail)

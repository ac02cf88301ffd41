#!/usr/bin/env node
// `npm run dev`: the IAP emulator in front of the gateway in front of UPSTREAM_URL, on loopback, with
// verification ON. Ctrl-C stops everything; a second Ctrl-C kills what is still running.
import { once } from 'node:events'
import { type DevChain, startDevChain, waitUntilReady } from './dev-chain.ts'
import { startUpstreamChildren } from './dev-flowise.ts'
import { parseDevOptions, USAGE } from './dev-options.ts'
import { banner, ownGatewayHint, summary } from './dev-report.ts'

async function main(): Promise<number> {
  const options = parseDevOptions(process.argv.slice(2), process.env)
  if (options.help) {
    process.stdout.write(USAGE)
    return 0
  }
  process.stderr.write(banner(options))
  const io = { stdout: process.stdout, stderr: process.stderr, env: process.env }

  // the first signal asks for a clean stop, any further one kills whatever is still running
  const stopping = new AbortController()
  const stopRequested = once(stopping.signal, 'abort').then(() => 'stopping (Ctrl-C again to kill)')
  const chainUp = Promise.withResolvers<DevChain>()
  const onSignal = () => {
    if (stopping.signal.aborted) chainUp.promise.then((chain) => chain.kill())
    stopping.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const upstream = await startUpstreamChildren(options, io)
  const chain = await startDevChain(options, io, upstream.children)
  chainUp.resolve(chain)
  if (options.gateway) process.stdout.write(ownGatewayHint(chain))
  // whatever happens below, no child outlives this process
  process.on('exit', chain.kill)

  const ready = await waitUntilReady(chain.gatewayUrl, upstream.readyTimeoutMs, stopping.signal)
  process.stdout.write(summary(chain, options, ready.ready, ready.reasons))

  const reason = await Promise.race([chain.ended, stopRequested])
  process.stderr.write(`dev: ${reason}\n`)
  await chain.stop()
  process.stderr.write('dev: stopped\n')
  return stopping.signal.aborted ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error: Error & { code?: string }) => {
    process.stderr.write(`dev: ${error.message}\n`)
    if (error.code === 'DEV_ERR_OPTIONS') process.stderr.write('dev: see npm run dev -- --help\n')
    process.exit(error.code === 'DEV_ERR_OPTIONS' ? 2 : 1)
  },
)

// The IAP emulator in front of the gateway (a child process, configured through its environment as on
// Cloud Run), wired by the same code `npm run dev` runs, in front of a Flowise the suite started.
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { type DevChain, startDevChain, waitUntilReady } from '../../../dev/dev-chain.ts'
import { parseDevOptions } from '../../../dev/dev-options.ts'

/** The gateway's drain period on SIGTERM: long enough for a streamed answer (about 5 s) to finish. */
export const SHUTDOWN_GRACE_MS = 20_000

export type Chain = DevChain & {
  gateway: DevChain['children'][number]
}

export async function startChain(options: {
  upstream: string
  outputDir: string
  logName: string
  email: string
  /** ALLOWED_CIDRS for the gateway (default loopback) */
  allow?: string
}): Promise<Chain> {
  const args = ['--port=0', `--upstream=${options.upstream}`, `--email=${options.email}`]
  if (options.allow) args.push(`--allow=${options.allow}`)
  const devOptions = parseDevOptions(args, {})
  const log = createWriteStream(join(options.outputDir, `${options.logName}.log`))
  const chain = await startDevChain(devOptions, {
    stdout: log,
    stderr: log,
    env: { PATH: process.env.PATH ?? '', SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS) },
  })
  const readiness = await waitUntilReady(chain.gatewayUrl, 30_000)
  if (!readiness.ready) {
    await chain.stop()
    throw new Error(`the gateway is not ready: ${readiness.reasons.join('; ')}`)
  }
  const gateway = chain.children.find((child) => child.name === 'gateway')
  if (!gateway) throw new Error('the chain started no gateway')
  return Object.assign(Object.create(null), chain, { gateway }) as Chain
}

// What `npm run dev` tells its user: a banner nobody can mistake for production, and where to go.
import { type DevOptions, isLoopbackHost } from './dev-options.ts'

export function banner(options: DevOptions): string {
  const lines = [
    'IAP EMULATOR - DEVELOPMENT ONLY - NOT A SECURITY BOUNDARY',
    `Every request that reaches it is signed in as ${options.identity.email}.`,
    'It is not part of the gateway image; never deploy or expose it.',
  ]
  if (!isLoopbackHost(options.host)) {
    lines.push(`WARNING: listening on ${options.host}: other machines can reach it and are signed in too.`)
  }
  const width = Math.max(...lines.map((line) => line.length)) + 4
  const rule = '#'.repeat(width)
  return `${[rule, ...lines.map((line) => `# ${line.padEnd(width - 4)} #`), rule].join('\n')}\n`
}

/** The parts of a running chain the summary names. */
export type ChainAddresses = Readonly<{
  url: string
  gatewayUrl: string
  children: readonly Readonly<{ name: string; pid: number }>[]
  gatewaySettings: Readonly<Record<string, string>>
}>

/** For --gateway: the one command line that starts a gateway behind this emulator (no secrets in it). */
export function ownGatewayHint(chain: ChainAddresses): string {
  const settings = Object.entries(chain.gatewaySettings).map(([name, value]) => `${name}='${value}'`)
  return `Start your gateway behind the emulator with:\n  ${settings.join(' \\\n  ')} \\\n  node proxy/main.ts\n`
}

export function summary(
  chain: ChainAddresses,
  options: DevOptions,
  upstreamReady: boolean,
  reasons: string[],
): string {
  const gateway = chain.children.find((child) => child.name === 'gateway')
  const gatewayNote = gateway ? `pid ${gateway.pid}; ` : 'yours; '
  const startHint = reasons.includes('upstream not reachable')
    ? '; start it with `npx flowise start`, or use --flowise'
    : ''
  const status = upstreamReady ? 'ready' : `not ready: ${reasons.join(', ')}${startHint}`
  // The URL to open comes last, after every line the gateway logged at start (Fastify's own "Server
  // listening at" names the gateway's address, which refuses anyone who skips the emulator).
  return [
    '',
    `  identity  ${options.identity.email} (${options.identity.sub}${options.identity.hd ? `, hd ${options.identity.hd}` : ''})`,
    `  emulator  ${chain.url}  (signs the IAP assertion; keys at ${chain.url}/_iap_emulator/verify/public_key)`,
    `  gateway   ${chain.gatewayUrl}  (${gatewayNote}refuses anything that skips the emulator)`,
    `  upstream  ${options.upstream.origin}`,
    `  status    ${status}`,
    '',
    'Ctrl-C stops everything.',
    '',
    `Open ${chain.url}/`,
    '',
  ].join('\n')
}

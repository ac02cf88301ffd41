// `npm run dev` options: parsed once with node:util parseArgs, every problem collected, then frozen.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { DEV_ERR_OPTIONS } from './errors.ts'
import { createSigningKey, type Identity, type SigningKey } from './iap-signer.ts'

/** Any project number and backend service id will do locally; both must only have IAP's shape. */
export const DEFAULT_AUDIENCE = '/projects/000000000000/global/backendServices/0000000000000000000'
export const DEFAULT_EMAIL = 'dev@example.com'
export const DEFAULT_UPSTREAM = 'http://127.0.0.1:3000'

export type DevOptions = Readonly<{
  identity: Identity
  audience: string
  allowedCidrs: string
  allowedEmails: string | undefined
  allowedDomains: string | undefined
  upstream: URL
  host: string
  port: number
  gatewayPort: number
  /** a gateway the user runs (under a debugger, say) instead of one the chain starts */
  gateway: URL | undefined
  tokenLifetimeSeconds: number
  key: SigningKey
  keyFile: string | undefined
  flowise: boolean
  help: boolean
}>

export const USAGE = `Usage: npm run dev -- [options]

Starts a local IAP emulator in front of the gateway in front of UPSTREAM_URL, all on loopback.
DEVELOPMENT ONLY: the emulator signs every request in as one identity.

Identity the emulator signs in
  --email EMAIL            email claim (default ${DEFAULT_EMAIL})
  --sub SUB                sub claim (default accounts.google.com:<number derived from the email>)
  --hd DOMAIN              Workspace domain claim (default none: a consumer account)
  --audience AUD           aud claim and the gateway's IAP_AUDIENCE (default ${DEFAULT_AUDIENCE})
  --token-lifetime SEC     assertion lifetime, re-signed before it ends (default 600, as IAP)
  --key-file PEM           sign with this EC P-256 private key (default: a fresh key per start)

Gateway
  --allow CIDRS            ALLOWED_CIDRS (default 127.0.0.1/32,::1/128)
  --allowed-emails LIST    ALLOWED_EMAILS (default: any identity)
  --allowed-domains LIST   ALLOWED_DOMAINS (default: any identity)
  --upstream URL           UPSTREAM_URL (default $UPSTREAM_URL or ${DEFAULT_UPSTREAM})

Addresses
  --host ADDR              emulator address: loopback (default 127.0.0.1), or 0.0.0.0 / :: to let
                           other machines in (they are all signed in as --email)
  --port N                 emulator port, the one URL to open (default 8080; 0 = any free port)
  --gateway-port N         gateway port on 127.0.0.1 (default 0 = any free port)
  --gateway URL            front a gateway you run yourself instead of starting one; the variables
                           it needs are printed at start

  --flowise                also install (once) and start the pinned Flowise on the upstream port
  -h, --help               this text
`

const EMAIL = /^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i

/** IAP's sub for a Google account is `accounts.google.com:` and a 21-digit number: derive a stable one. */
export function defaultSub(email: string): string {
  const digest = createHash('sha256').update(email.toLowerCase()).digest()
  return `accounts.google.com:1${(digest.readBigUInt64BE(0) % 10n ** 20n).toString().padStart(20, '0')}`
}

export function parseDevOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): DevOptions {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        email: { type: 'string', default: DEFAULT_EMAIL },
        sub: { type: 'string' },
        hd: { type: 'string' },
        audience: { type: 'string', default: DEFAULT_AUDIENCE },
        'token-lifetime': { type: 'string', default: '600' },
        'key-file': { type: 'string' },
        allow: { type: 'string', default: '127.0.0.1/32,::1/128' },
        'allowed-emails': { type: 'string' },
        'allowed-domains': { type: 'string' },
        upstream: { type: 'string', default: env.UPSTREAM_URL || DEFAULT_UPSTREAM },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
        'gateway-port': { type: 'string', default: '0' },
        gateway: { type: 'string' },
        flowise: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (error) {
    // parseArgs names the unknown or malformed option itself
    throw new DEV_ERR_OPTIONS((error as Error).message)
  }
  const text = (name: string) => values[name] as string
  const problems: string[] = []
  const problem = (name: string, value: string, why: string) => problems.push(`--${name} (${value}): ${why}`)

  // A Cloud Run container has K_SERVICE set: an emulator there would sign in everyone who reaches it.
  if (env.K_SERVICE) problems.push(`K_SERVICE (${env.K_SERVICE}): the IAP emulator never runs on Cloud Run`)

  const email = text('email')
  if (!EMAIL.test(email)) problem('email', email, 'not an email address')
  const sub = values.sub === undefined ? defaultSub(email) : text('sub')
  if (!/^\S+$/.test(sub)) problem('sub', sub, 'must be non-empty without spaces')
  const hd = values.hd as string | undefined
  if (hd !== undefined && !DOMAIN.test(hd)) problem('hd', hd, 'not a domain name')
  const audience = text('audience')
  if (!/^\/projects\/\S+$/.test(audience)) problem('audience', audience, 'expected /projects/NUMBER/...')

  const integer = (name: string, min: number, max: number): number => {
    const value = text(name)
    if (/^\d+$/.test(value) && Number(value) >= min && Number(value) <= max) return Number(value)
    problem(name, value, `not an integer between ${min} and ${max}`)
    return min
  }
  const tokenLifetimeSeconds = integer('token-lifetime', 1, 86_400)
  const port = integer('port', 0, 65_535)
  const gatewayPort = integer('gateway-port', 0, 65_535)

  // The gateway fetches the emulator's keys over plain http, which it accepts on loopback only, so the
  // emulator listens on loopback or on every interface (loopback included), never on one other address.
  const host = text('host')
  if (!isLoopbackHost(host) && host !== '0.0.0.0' && host !== '::') {
    problem('host', host, 'a loopback address, or 0.0.0.0 / :: for every interface')
  }

  const httpUrl = (name: string, fallback: URL): URL => {
    const value = text(name)
    if (URL.canParse(value) && /^https?:$/.test(new URL(value).protocol)) return new URL(value)
    problem(name, value, 'not an http(s) URL')
    return fallback
  }
  const upstream = httpUrl('upstream', new URL(DEFAULT_UPSTREAM))
  const gateway = values.gateway === undefined ? undefined : httpUrl('gateway', new URL(DEFAULT_UPSTREAM))

  const keyFile = values['key-file'] as string | undefined
  let key: SigningKey | undefined
  if (keyFile !== undefined) {
    try {
      key = createSigningKey(readFileSync(keyFile, 'utf8'), keyFile)
    } catch (error) {
      const { code, message } = error as { code?: string; message: string }
      problem('key-file', keyFile, code === 'DEV_ERR_SIGNING_KEY' ? message : `unreadable (${code})`)
    }
  }

  if (problems.length > 0) throw new DEV_ERR_OPTIONS(problems.join('; '))
  return Object.freeze({
    identity: Object.freeze({ email, sub, hd }),
    audience,
    allowedCidrs: text('allow'),
    allowedEmails: values['allowed-emails'] as string | undefined,
    allowedDomains: values['allowed-domains'] as string | undefined,
    upstream,
    host,
    port,
    gatewayPort,
    gateway,
    tokenLifetimeSeconds,
    key: key ?? createSigningKey(),
    keyFile,
    flowise: values.flowise as boolean,
    help: values.help as boolean,
  })
}

/** Loopback is the only place a sign-everyone-in proxy belongs; anything else earns a louder banner. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

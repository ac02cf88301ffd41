import { crc32c } from '@aws-crypto/crc32c'
import type { SecretManagerServiceClient } from '@google-cloud/secret-manager'
import { GW_ERR_SECRET, GW_ERR_SECRET_REFERENCE } from '../errors.ts'
import { isReference, parseReference, resourceName, type SecretReference } from './reference.ts'

export interface ResolveOptions {
  /** Attempts per secret, the first included, when Secret Manager answers with a transient error. */
  readonly maxAttempts?: number
  /** Backoff before retry n is min(maxDelayMs, baseDelayMs * 2^(n-1)), with full jitter. */
  readonly baseDelayMs?: number
  readonly maxDelayMs?: number
  /** Deadline of one AccessSecretVersion call. */
  readonly attemptTimeoutMs?: number
  /** Where the one warning about a plain-text endpoint goes (stderr by default). */
  readonly warn?: (message: string) => void
}

type Env = Readonly<Record<string, string | undefined>>

// gRPC status codes (google.rpc.Code).
const NOT_FOUND = 5
const PERMISSION_DENIED = 7
const TRANSIENT = new Set([14 /* UNAVAILABLE */, 4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */])
const CODE_NAMES: Record<number, string> = {
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  16: 'UNAUTHENTICATED',
}
const HINTS: Record<number, string> = {
  [NOT_FOUND]: 'the secret or version does not exist (or is disabled or destroyed)',
  [PERMISSION_DENIED]: 'the service account lacks roles/secretmanager.secretAccessor on this secret',
}
const DEFAULTS = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 4_000, attemptTimeoutMs: 10_000 }

/**
 * Returns a copy of `env` with every `sm://` value replaced by the secret's value. All distinct
 * secrets are read in parallel; any failure throws one error whose one-line message names every
 * variable that failed and its resource name. Without a reference it returns at once: no client is
 * created and the Secret Manager library is not even loaded (the gateway's cold start matters).
 */
export async function resolveEnvironment(
  env: Env,
  options: ResolveOptions = {},
): Promise<Record<string, string | undefined>> {
  const resolved: Record<string, string | undefined> = { ...env }
  const references = new Map<string, SecretReference>()
  const problems: string[] = []
  for (const [name, value] of Object.entries(env)) {
    if (!isReference(value)) continue
    const parsed = parseReference(value)
    if (typeof parsed === 'string') problems.push(`${name} (${value}): ${parsed}`)
    else references.set(name, parsed)
  }
  if (problems.length > 0) throw new GW_ERR_SECRET_REFERENCE(problems.join('; '))
  if (references.size === 0) return resolved

  const settings = { ...DEFAULTS, ...options }
  const client = await createClient(env, settings.warn ?? warnOnStderr)
  try {
    const needsProject = [...references.values()].some((reference) => reference.project === undefined)
    const project = needsProject ? await defaultProject(env, client) : ''
    // One call per distinct resource, however many variables name it.
    const reads = new Map<string, Promise<string>>()
    const entries = [...references].map(([name, reference]) => {
      const resource = resourceName(reference, project)
      let read = reads.get(resource)
      if (read === undefined) {
        read = access(client, resource, settings)
        reads.set(resource, read)
      }
      return { name, resource, read }
    })
    const outcomes = await Promise.allSettled(entries.map((entry) => entry.read))
    outcomes.forEach((outcome, index) => {
      const { name, resource } = entries[index] as (typeof entries)[number]
      if (outcome.status === 'fulfilled') resolved[name] = outcome.value
      else problems.push(`${name} (${resource}): ${(outcome.reason as Error).message}`)
    })
    if (problems.length > 0) throw new GW_ERR_SECRET(problems.join('; '))
    return resolved
  } finally {
    await client.close()
  }
}

async function createClient(env: Env, warn: (message: string) => void): Promise<SecretManagerServiceClient> {
  const [{ SecretManagerServiceClient }, { grpc }] = await Promise.all([
    import('@google-cloud/secret-manager'),
    import('google-gax'),
  ])
  const endpoint = env.SECRET_MANAGER_ENDPOINT?.trim()
  /* c8 ignore next -- Google's endpoint with real credentials: not reachable from the tests */
  if (!endpoint) return new SecretManagerServiceClient()
  // A plain-text endpoint in a Cloud Run revision (K_SERVICE is always set there) would send the
  // secrets unencrypted and unauthenticated: it can only be a mistake, so it stops the start.
  if (env.K_SERVICE !== undefined) {
    throw new GW_ERR_SECRET(
      `SECRET_MANAGER_ENDPOINT (${endpoint}): a plain-text endpoint is refused on Cloud Run (K_SERVICE is set)`,
    )
  }
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(endpoint)
  if (match === null || Number(match[2]) > 65535) {
    throw new GW_ERR_SECRET(`SECRET_MANAGER_ENDPOINT (${endpoint}): expected host:port`)
  }
  warn(
    `with SECRET_MANAGER_ENDPOINT=${endpoint} secrets are read over plain-text gRPC without Google ` +
      'credentials: for local development and tests only',
  )
  return new SecretManagerServiceClient({
    // gax joins host and port with a colon, so an IPv6 host keeps its brackets.
    apiEndpoint: match[1] as string,
    port: Number(match[2]),
    sslCreds: grpc.credentials.createInsecure(),
    // Named here so gax does not ask Application Default Credentials (the metadata server) for it.
    universeDomain: 'googleapis.com',
  })
}

async function defaultProject(env: Env, client: SecretManagerServiceClient): Promise<string> {
  const fromEnv = env.GOOGLE_CLOUD_PROJECT?.trim()
  if (fromEnv) return fromEnv
  try {
    return await client.getProjectId()
  } catch {
    throw new GW_ERR_SECRET(
      'a short sm:// reference needs a project: set GOOGLE_CLOUD_PROJECT, or use sm://PROJECT/SECRET ' +
        '(Application Default Credentials name none)',
    )
  }
}

interface Settings {
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly attemptTimeoutMs: number
}

/** One secret version's value, retried on transient errors and checked against its CRC32C. */
async function access(client: SecretManagerServiceClient, name: string, settings: Settings): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      // gax's own retry is switched off (retry: null): this loop owns the policy and its bound.
      const [response] = await client.accessSecretVersion(
        { name },
        { retry: null, timeout: settings.attemptTimeoutMs },
      )
      return decode(response.payload?.data, response.payload?.dataCrc32c)
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (typeof code !== 'number') throw error
      const codeName = CODE_NAMES[code] ?? `gRPC status ${code}`
      if (!TRANSIENT.has(code)) throw new Error(HINTS[code] ? `${codeName}: ${HINTS[code]}` : codeName)
      if (attempt >= settings.maxAttempts) throw new Error(`${codeName} after ${attempt} attempts`)
      const ceiling = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attempt - 1))
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling))
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decode(data: unknown, checksum: unknown): string {
  // gax hands bytes over as a Buffer; anything else means the response had no payload.
  if (!(data instanceof Uint8Array)) throw new Error('the response carries no payload')
  // The API always returns the checksum it stored (or computed) when the version was added.
  if (checksum === null || checksum === undefined) throw new Error('the response carries no CRC32C checksum')
  // int64 arrives as a string or a Long depending on the decoder; both print the same decimal digits.
  if (String(checksum) !== String(crc32c(data))) throw new Error('CRC32C checksum mismatch: payload refused')
  const bytes = data
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    throw new Error('the value is not valid UTF-8 text')
  }
  if (text.includes('\0')) throw new Error('the value contains a NUL byte, which no environment can hold')
  return text
}

function warnOnStderr(message: string): void {
  process.stderr.write(`warning: ${message}\n`)
}

// The `app` block, the container beside the gateway, and `storage`, the bucket it keeps its files in.
// Flowise is the default preset; the Flowise-only parts (its secrets, the bucket, and Cloud SQL in
// config-database.ts) follow the preset unless the config says otherwise.
import { ENV_NAME, NAME, NAME_HINT, type Reader, TAG } from './config-reader.ts'
import type { AppConfig, AppSecret, StorageConfig } from './config-schema.ts'
import { build, cpu, memory } from './config-service.ts'
import { GATEWAY_PORT } from './gateway-env.ts'

const FLOWISE_SECRETS = [
  'FLOWISE_SECRETKEY_OVERWRITE',
  'JWT_AUTH_TOKEN_SECRET',
  'JWT_REFRESH_TOKEN_SECRET',
  'EXPRESS_SESSION_SECRET',
  'TOKEN_HASH_SECRET',
]
// Set by the deploy or by Cloud Run itself; an app env entry must not override them.
const RESERVED_ENV = new Set(['PORT', 'K_SERVICE', 'K_REVISION', 'K_CONFIGURATION', 'HOST'])
// Flowise listens on 3000 by default; a custom app is asked to as well unless the config says otherwise.
const APP_PORT = 3000

/** The preset decides the other blocks' defaults, so it is read first. */
export function isFlowise(r: Reader): boolean {
  return r.string('app.preset', 'flowise', /^(flowise|custom)$/, 'must be flowise or custom') === 'flowise'
}

function secretId(name: string, env: string): string {
  return `${name}-${env
    .toLowerCase()
    .replace(/^flowise_/, '')
    .replaceAll('_', '-')}`
}

function appSecrets(r: Reader, name: string, flowise: boolean): AppSecret[] {
  const out: AppSecret[] = []
  if (flowise) {
    for (const env of FLOWISE_SECRETS) out.push({ env, secret: secretId(name, env), generate: true })
  }
  for (const [env, v] of Object.entries(r.map('app.secrets'))) {
    const path = `app.secrets.${env}`
    if (!ENV_NAME.test(env)) r.problem(path, 'must be an environment variable name (A-Z, 0-9, _)')
    if (v === 'generate') out.push({ env, secret: secretId(name, env), generate: true })
    else if (typeof v === 'string' && /^[A-Za-z0-9_-]{1,255}$/.test(v))
      out.push({ env, secret: v, generate: false })
    else r.problem(path, 'must be "generate" or the id of an existing secret in the project', v)
  }
  return out
}

function appEnv(r: Reader): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(r.map('app.env'))) {
    if (!ENV_NAME.test(k)) r.problem(`app.env.${k}`, 'must be an environment variable name (A-Z, 0-9, _)')
    else if (RESERVED_ENV.has(k)) r.problem(`app.env.${k}`, 'is set by the deploy or by Cloud Run')
    else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
      r.problem(`app.env.${k}`, 'must be a string', v)
    else if (typeof v === 'string' && v.startsWith('sm://'))
      r.problem(`app.env.${k}`, 'secret references belong in app.secrets')
    else env[k] = String(v)
  }
  return env
}

/** A ready image, or how to build one: Flowise always builds; a custom app needs exactly one of the two. */
function appImage(
  r: Reader,
  baseDir: string,
  flowise: boolean,
): Pick<AppConfig, 'image' | 'build'> & { version: string } {
  const version = r.string(
    'app.flowiseVersion',
    '3.1.4',
    /^3\.(1\.[3-9]|1\.[1-9][0-9]|[2-9]\.[0-9]+)$/,
    'must be 3.1.3 or later (earlier releases have unauthenticated RCE advisories)',
  )
  const image = r.has('app.image')
    ? r.string('app.image', '', /^[a-z0-9.-]+(:[0-9]+)?\/[^\s]+$/, 'is not a container image reference')
    : undefined
  if (!flowise && !image && !r.has('app.build')) r.problem('app', 'a custom app needs app.image or app.build')
  if (image && r.has('app.build')) r.problem('app', 'give app.image or app.build, not both')
  if (image) return { image, version }
  if (!flowise && !r.has('app.build')) return { version }
  const args: Record<string, string> = flowise ? { FLOWISE_VERSION: version } : {}
  return { build: build(r, 'app.build', baseDir, 'Dockerfile.flowise', args), version }
}

export function appConfig(r: Reader, name: string, baseDir: string, flowise: boolean): AppConfig {
  const { version, ...image } = appImage(r, baseDir, flowise)
  const port = r.int('app.port', APP_PORT, 1, 65535)
  if (port === GATEWAY_PORT)
    r.problem('app.port', `must differ from the gateway's port ${GATEWAY_PORT}`, port)
  return {
    preset: flowise ? 'flowise' : 'custom',
    container: r.string('app.container', flowise ? 'flowise' : 'app', NAME, NAME_HINT),
    ...image,
    tag: r.string('app.tag', flowise ? version : '1', TAG, 'is not a docker tag'),
    port,
    healthPath: r.string(
      'app.healthPath',
      flowise ? '/api/v1/ping' : '/',
      /^\/[^\s?#]*$/,
      'must be a path starting with /',
    ),
    args: r.list('app.args'),
    env: appEnv(r),
    secrets: appSecrets(r, name, flowise),
    cpu: cpu(r, 'app.cpu'),
    memory: memory(r, 'app.memory', flowise ? '2Gi' : '512Mi'),
    // Flowise runs its migrations before it listens: give it the whole 240 s window Cloud Run allows.
    startupSeconds: r.int('app.startupSeconds', 240, 10, 240),
    projectRoles: r.list('app.projectRoles', flowise ? ['roles/aiplatform.user'] : []),
  }
}

export function storageConfig(r: Reader, project: string, name: string, flowise: boolean): StorageConfig {
  return {
    enabled: r.bool('storage.enabled', flowise),
    bucket: r.string(
      'storage.bucket',
      `${project}-${name}-files`,
      /^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$/,
      'is not a bucket name',
    ),
  }
}

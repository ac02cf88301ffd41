// The deploy config: YAML -> one typed, frozen object. Every problem is collected and reported at once,
// each naming the field and the bad value. Flowise is the default preset of the `app` block; the
// Flowise-only parts (its secrets, Cloud SQL, the bucket) follow the preset unless the config says otherwise.
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import ipaddr from 'ipaddr.js'
import { parse } from 'yaml'
import { type DatabaseConfig, databaseConfig } from './config-database.ts'
import { type MonitoringConfig, monitoringConfig } from './config-monitoring.ts'
import { type Raw, Reader } from './config-reader.ts'
import { DeployError } from './errors.ts'
import { GATEWAY_PORT, gatewayEnvProblems } from './gateway-env.ts'

export interface Build {
  context: string
  dockerfile: string
  args: Record<string, string>
}

export interface AppSecret {
  /** Environment variable the container reads. */
  env: string
  /** Secret Manager secret id (managed secrets are created by the deploy). */
  secret: string
  /** Created with random bytes when absent, never overwritten; otherwise an existing secret. */
  generate: boolean
}

export interface DeployConfig {
  project: string
  region: string
  name: string
  domain: string
  allowedCidrs: string[]
  iapMembers: string[]
  trustProxyHops: number
  allowedEmails: string[]
  allowedDomains: string[]
  maxInstances: number
  minInstances: number
  timeoutSeconds: number
  repository: string
  gateway: {
    build: Build
    tag: string
    cpu: string
    memory: string
    logLevel: string
    upstreamTimeoutMs: number
    shutdownGraceMs: number
  }
  app: {
    preset: 'flowise' | 'custom'
    container: string
    image?: string
    build?: Build
    tag: string
    port: number
    healthPath: string
    args: string[]
    env: Record<string, string>
    secrets: AppSecret[]
    cpu: string
    memory: string
    startupSeconds: number
    projectRoles: string[]
  }
  network: { name: string; subnet: string; subnetRange: string }
  database: DatabaseConfig
  storage: { enabled: boolean; bucket: string }
  /** Log-based metrics and an alert policy from the gateway's log lines (config-monitoring.ts). */
  monitoring: MonitoringConfig
  /**
   * IAP's own (Google-managed) OAuth client admits only users of the project's organisation and no
   * programmatic callers (cloud.google.com/iap/docs/custom-oauth-configuration): a custom client is
   * needed for outside users or scripts. Its secret stays in Secret Manager; the deploy reads it and
   * hands it to gcloud in a flags file, never on a command line.
   */
  iapOAuthClient?: { clientId: string; secret: string }
}

const FLOWISE_SECRETS = [
  'FLOWISE_SECRETKEY_OVERWRITE',
  'JWT_AUTH_TOKEN_SECRET',
  'JWT_REFRESH_TOKEN_SECRET',
  'EXPRESS_SESSION_SECRET',
  'TOKEN_HASH_SECRET',
]
// Set by the deploy or by Cloud Run itself; an app env entry must not override them.
const RESERVED_ENV = new Set(['PORT', 'K_SERVICE', 'K_REVISION', 'K_CONFIGURATION', 'HOST'])

const NAME = /^[a-z][a-z0-9-]{0,18}[a-z0-9]$/
const CPU = /^(0\.[1-9][0-9]*|[1-8])$/
const MEMORY = /^[1-9][0-9]*(Mi|Gi)$/
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/

function build(
  r: Reader,
  path: string,
  baseDir: string,
  dockerfile: string,
  args: Record<string, string> = {},
): Build {
  r.known(path, ['context', 'dockerfile', 'args'])
  const extra = r.map(`${path}.args`)
  for (const [k, v] of Object.entries(extra)) {
    if (typeof v !== 'string') r.problem(`${path}.args.${k}`, 'must be a string', v)
  }
  return {
    context: resolve(baseDir, r.string(`${path}.context`, '.')),
    dockerfile: r.string(`${path}.dockerfile`, dockerfile, /^[^\s]+$/),
    args: { ...args, ...(extra as Record<string, string>) },
  }
}

function cidrs(r: Reader): string[] {
  const list = r.list('allowedCidrs')
  if (list.length === 0)
    r.problem('allowedCidrs', 'must list at least one range (an empty allowlist admits nobody)')
  return list.map((c, i) => {
    try {
      const [addr, bits] = ipaddr.parseCIDR(c)
      // Cloud Armor and the gateway both want the network address, not a host inside it.
      const network =
        addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(c) : ipaddr.IPv6.networkAddressFromCIDR(c)
      return `${network.toString()}/${bits}`
    } catch {
      r.problem(`allowedCidrs[${i}]`, 'is not an IPv4 or IPv6 range like 203.0.113.0/24', c)
      return c
    }
  })
}

function secretId(name: string, env: string): string {
  return `${name}-${env
    .toLowerCase()
    .replace(/^flowise_/, '')
    .replaceAll('_', '-')}`
}

function appSecrets(r: Reader, name: string, preset: string): AppSecret[] {
  const out: AppSecret[] = []
  if (preset === 'flowise') {
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

export function readConfig(file: string): DeployConfig {
  let raw: unknown
  try {
    raw = parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new DeployError('DEPLOY_ERR_CONFIG', `cannot read config ${file}: ${(error as Error).message}`)
  }
  return validateConfig(raw, dirname(resolve(file)))
}

export function validateConfig(raw: unknown, baseDir: string): DeployConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DeployError('DEPLOY_ERR_CONFIG', 'config: must be a YAML mapping')
  }
  const r = new Reader(raw as Raw)
  r.known('', [
    'project',
    'region',
    'name',
    'domain',
    'allowedCidrs',
    'iapMembers',
    'trustProxyHops',
    'allowedEmails',
    'allowedDomains',
    'maxInstances',
    'minInstances',
    'timeoutSeconds',
    'repository',
    'gateway',
    'app',
    'network',
    'database',
    'storage',
    'iapOAuthClient',
    'monitoring',
  ])
  for (const section of ['gateway', 'app', 'network', 'database', 'storage', 'iapOAuthClient', 'monitoring'])
    r.map(section)
  r.known('gateway', ['build', 'tag', 'cpu', 'memory', 'logLevel', 'upstreamTimeoutMs', 'shutdownGraceMs'])
  r.known('app', [
    'preset',
    'container',
    'image',
    'build',
    'tag',
    'flowiseVersion',
    'port',
    'healthPath',
    'args',
    'env',
    'secrets',
    'cpu',
    'memory',
    'startupSeconds',
    'projectRoles',
  ])
  r.known('network', ['name', 'subnet', 'subnetRange'])
  r.known('storage', ['enabled', 'bucket'])
  r.known('iapOAuthClient', ['clientId', 'secret'])

  const project = r.string(
    'project',
    undefined,
    /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/,
    'is not a Google Cloud project id',
  )
  const region = r.string('region', undefined, /^[a-z]+-[a-z]+[0-9]+$/, 'is not a region like europe-west1')
  const name = r.string('name', 'flowise', NAME, 'must be 2-20 lowercase letters, digits or hyphens')
  const domain = r.string(
    'domain',
    undefined,
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/,
    'is not a DNS name',
  )
  const iapMembers = r.list('iapMembers')
  if (iapMembers.length === 0)
    r.problem('iapMembers', 'must name at least one user:, group: or domain: member')
  iapMembers.forEach((m, i) => {
    if (!/^(user|group|serviceAccount):[^@\s]+@[^@\s]+\.[a-z]+$|^domain:[a-z0-9.-]+\.[a-z]+$/.test(m)) {
      r.problem(
        `iapMembers[${i}]`,
        'must be user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN',
        m,
      )
    }
  })
  const preset = r.string('app.preset', 'flowise', /^(flowise|custom)$/, 'must be flowise or custom')
  const flowise = preset === 'flowise'
  const flowiseVersion = r.string(
    'app.flowiseVersion',
    '3.1.4',
    /^3\.(1\.[3-9]|1\.[1-9][0-9]|[2-9]\.[0-9]+)$/,
    'must be 3.1.3 or later (earlier releases have unauthenticated RCE advisories)',
  )
  const appImage = r.has('app.image')
    ? r.string('app.image', '', /^[a-z0-9.-]+(:[0-9]+)?\/[^\s]+$/, 'is not a container image reference')
    : undefined
  const hasBuild = r.has('app.build') || flowise
  if (!flowise && !appImage && !r.has('app.build'))
    r.problem('app', 'a custom app needs app.image or app.build')
  if (appImage && r.has('app.build')) r.problem('app', 'give app.image or app.build, not both')
  const port = r.int('app.port', flowise ? 3000 : 3000, 1, 65535)
  if (port === GATEWAY_PORT)
    r.problem('app.port', `must differ from the gateway's port ${GATEWAY_PORT}`, port)
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
  const secrets = appSecrets(r, name, preset)
  const storageEnabled = r.bool('storage.enabled', flowise)
  const minInstances = r.int('minInstances', 0, 0, 100)
  // Flowise 3.1.4 outside queue mode runs every schedule once per instance ("Running in non-queue mode
  // with node-cron and no distributed locking. If multiple API replicas are running, schedules will be
  // executed once per replica", its own start-up warning): one instance until the deploy offers queue mode.
  const maxInstances = r.int('maxInstances', flowise ? 1 : 3, 1, 1000)
  if (maxInstances < minInstances)
    r.problem('maxInstances', `must be at least minInstances (${minInstances})`, maxInstances)

  const config: DeployConfig = {
    project,
    region,
    name,
    domain,
    allowedCidrs: cidrs(r),
    iapMembers,
    // The load balancer appends "<client>,<lb>" to X-Forwarded-For (facts, section 2): verify on a live
    // deployment. The upper bound is the gateway's (checked below with its own code); 0 would judge the
    // address of Google's front end instead of the client's, so behind the load balancer it is refused.
    trustProxyHops: r.int('trustProxyHops', 2, 1, Number.MAX_SAFE_INTEGER),
    allowedEmails: commaFree(r, 'allowedEmails'),
    allowedDomains: commaFree(r, 'allowedDomains'),
    maxInstances,
    minInstances,
    timeoutSeconds: r.int('timeoutSeconds', 3600, 60, 3600),
    repository: r.string('repository', name, NAME, 'must be 2-20 lowercase letters, digits or hyphens'),
    gateway: {
      build: build(r, 'gateway.build', baseDir, 'Dockerfile.proxy'),
      tag: r.string('gateway.tag', '0.1.0', /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'is not a docker tag'),
      cpu: r.string('gateway.cpu', '1', CPU, 'must be a CPU count like 1, 2 or 0.5'),
      memory: r.string('gateway.memory', '512Mi', MEMORY, 'must be like 512Mi or 2Gi'),
      logLevel: r.string(
        'gateway.logLevel',
        'info',
        /^(fatal|error|warn|info|debug|trace)$/,
        'must be a pino level',
      ),
      upstreamTimeoutMs: r.int('gateway.upstreamTimeoutMs', 3_600_000, 1000, 3_600_000),
      shutdownGraceMs: r.int('gateway.shutdownGraceMs', 8000, 0, 9000),
    },
    app: {
      preset: flowise ? 'flowise' : 'custom',
      container: r.string(
        'app.container',
        flowise ? 'flowise' : 'app',
        NAME,
        'must be 2-20 lowercase letters, digits or hyphens',
      ),
      ...(appImage ? { image: appImage } : {}),
      ...(hasBuild && !appImage
        ? {
            build: build(
              r,
              'app.build',
              baseDir,
              'Dockerfile.flowise',
              flowise ? { FLOWISE_VERSION: flowiseVersion } : {},
            ),
          }
        : {}),
      tag: r.string(
        'app.tag',
        flowise ? flowiseVersion : '1',
        /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
        'is not a docker tag',
      ),
      port,
      healthPath: r.string(
        'app.healthPath',
        flowise ? '/api/v1/ping' : '/',
        /^\/[^\s?#]*$/,
        'must be a path starting with /',
      ),
      args: r.list('app.args'),
      env,
      secrets,
      cpu: r.string('app.cpu', flowise ? '1' : '1', CPU, 'must be a CPU count like 1, 2 or 0.5'),
      memory: r.string('app.memory', flowise ? '2Gi' : '512Mi', MEMORY, 'must be like 512Mi or 2Gi'),
      // Flowise runs its migrations before it listens: give it the whole 240 s window Cloud Run allows.
      startupSeconds: r.int('app.startupSeconds', 240, 10, 240),
      projectRoles: r.list('app.projectRoles', flowise ? ['roles/aiplatform.user'] : []),
    },
    network: {
      name: r.string('network.name', 'default', NAME, 'is not a network name'),
      subnet: r.string('network.subnet', 'default', NAME, 'is not a subnet name'),
      subnetRange: r.string(
        'network.subnetRange',
        '10.8.0.0/26',
        /^\d+\.\d+\.\d+\.\d+\/\d+$/,
        'is not an IPv4 range',
      ),
    },
    database: databaseConfig(r, name, flowise),
    storage: {
      enabled: storageEnabled,
      bucket: r.string(
        'storage.bucket',
        `${project}-${name}-files`,
        /^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$/,
        'is not a bucket name',
      ),
    },
    monitoring: monitoringConfig(r, project),
  }
  if (r.has('iapOAuthClient')) {
    config.iapOAuthClient = {
      clientId: r.string(
        'iapOAuthClient.clientId',
        undefined,
        /^[0-9]+-[a-z0-9]+\.apps\.googleusercontent\.com$/,
        'is not an OAuth client id like 123-abc.apps.googleusercontent.com',
      ),
      secret: r.string(
        'iapOAuthClient.secret',
        undefined,
        /^[A-Za-z0-9_-]{1,255}$/,
        'must be the id of the Secret Manager secret holding the client secret',
      ),
    }
  }
  for (const p of gatewayEnvProblems(config)) {
    if (!r.reported(p.slice(0, p.indexOf(':')).replace(/\[\d+\]$/, ''))) r.problems.push(p)
  }
  if (r.problems.length > 0) {
    throw new DeployError('DEPLOY_ERR_CONFIG', `invalid deploy config:\n  - ${r.problems.join('\n  - ')}`)
  }
  return deepFreeze(config)
}

/** The gateway reads these lists comma-separated: a comma inside one entry would split it in two. */
function commaFree(r: Reader, path: string): string[] {
  const list = r.list(path)
  list.forEach((v, i) => {
    if (v.includes(',')) r.problem(`${path}[${i}]`, 'must not contain a comma', v)
  })
  return list
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

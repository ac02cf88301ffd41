// Flowise as the Cloud Run sidecar runs it: through the `with-secrets` launcher, on PostgreSQL, on
// loopback, with the database password and the five instance-stable secrets as sm:// references that
// the local Secret Manager (gRPC) serves. Nothing secret is on a command line or in the environment
// Flowise is started with; the launcher puts the values into Flowise's environment only.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { onExit } from 'signal-exit'
import { flowiseCacheDir, flowiseCommand, nodeBinary } from '../../../dev/flowise.ts'
import { freePort, type Postgres } from '../../../dev/postgres.ts'
import { type SecretManagerServer, startSecretManagerServer } from '../../../dev/secret-manager-server.ts'

const OFFLINE_TIKTOKEN = fileURLToPath(new URL('./offline-tiktoken.cjs', import.meta.url))
const LAUNCHER = fileURLToPath(new URL('../../../proxy/secrets/with-secrets.ts', import.meta.url))
export const PROJECT = 'e2e-project'

/** The variables that must be identical across instances and restarts, each with its secret's id. */
export const FLOWISE_SECRETS = {
  DATABASE_PASSWORD: 'flowise-db-password',
  FLOWISE_SECRETKEY_OVERWRITE: 'flowise-secretkey',
  JWT_AUTH_TOKEN_SECRET: 'flowise-jwt-auth',
  JWT_REFRESH_TOKEN_SECRET: 'flowise-jwt-refresh',
  EXPRESS_SESSION_SECRET: 'flowise-session',
  TOKEN_HASH_SECRET: 'flowise-token-hash',
} as const

export type FlowiseInstance = {
  url: string
  port: number
  process: ChildProcess
  /** SIGTERM to the launcher (it passes it on), SIGKILL to the group after 40 s */
  stop(): Promise<void>
  /** last resort when the test process exits without its teardown (a timeout's signal) */
  kill(): void
}

export async function startSecrets(postgres: Postgres): Promise<SecretManagerServer> {
  const table: Record<string, string> = {}
  for (const [variable, secret] of Object.entries(FLOWISE_SECRETS)) {
    table[`projects/${PROJECT}/secrets/${secret}`] =
      variable === 'DATABASE_PASSWORD' ? postgres.password : randomBytes(32).toString('base64url')
  }
  return startSecretManagerServer(table)
}

export async function startFlowise(options: {
  postgres: Postgres
  secrets: SecretManagerServer
  outputDir: string
  dataDir: string
  port?: number
  logName: string
}): Promise<FlowiseInstance> {
  const port = options.port ?? (await freePort())
  const { command, args } = flowiseCommand()
  const references = Object.fromEntries(
    Object.entries(FLOWISE_SECRETS).map(([variable, secret]) => [variable, `sm://${PROJECT}/${secret}`]),
  )
  mkdirSync(options.dataDir, { recursive: true })
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: options.dataDir,
    SECRET_MANAGER_ENDPOINT: options.secrets.endpoint,
    GOOGLE_CLOUD_PROJECT: PROJECT,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_TYPE: 'postgres',
    DATABASE_HOST: options.postgres.host,
    DATABASE_PORT: String(options.postgres.port),
    DATABASE_USER: options.postgres.user,
    DATABASE_NAME: options.postgres.database,
    ...references,
    // anything Flowise would otherwise keep under ~/.flowise stays in the suite's folder
    SECRETKEY_PATH: join(options.dataDir, 'keys'),
    LOG_PATH: join(options.dataDir, 'logs'),
    BLOB_STORAGE_PATH: join(options.dataDir, 'storage'),
    DISABLE_FLOWISE_TELEMETRY: 'true',
    // one gateway in front, as on Cloud Run (it sends a single, trustworthy X-Forwarded-For)
    NUMBER_OF_PROXIES: '1',
    // offline, LangChain would hold every stream open for a minute fetching tiktoken tables (see there)
    NODE_OPTIONS: `--require=${OFFLINE_TIKTOKEN}`,
    OFFLINE_TIKTOKEN_FROM: flowiseCacheDir(),
  }
  const child = spawn(nodeBinary().path, [LAUNCHER, '--', command, ...args], {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const log = createWriteStream(join(options.outputDir, `${options.logName}.log`))
  child.stdout.pipe(log, { end: false })
  child.stderr.pipe(log, { end: false })
  const exited = once(child, 'exit')
  // tap's timeout (SIGALRM) ends the test process without its teardown: leave no Flowise behind
  const kill = () => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL')
    } catch {}
  }
  const removeExitHook = onExit(kill)
  exited.then(removeExitHook)
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL')
        } catch {}
      }, 40_000)
      await exited
      clearTimeout(timer)
    }
    // whatever Flowise spawned itself goes with it
    try {
      process.kill(-(child.pid as number), 'SIGKILL')
    } catch {}
  }
  // the first start runs every migration before it listens
  const deadline = Date.now() + 300_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `Flowise exited at start (${child.exitCode ?? child.signalCode}); see ${options.logName}.log`,
      )
    }
    try {
      const res = await fetch(`${url}/api/v1/ping`, { signal: AbortSignal.timeout(2000) })
      if (res.status === 200 && (await res.text()) === 'pong') break
    } catch {}
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`Flowise did not answer /api/v1/ping within 5 minutes; see ${options.logName}.log`)
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return { url, port, process: child, stop, kill }
}

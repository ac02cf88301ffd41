// The I/O half of run-local: build the images, start the local peers (PostgreSQL, reached as Cloud
// Run reaches Cloud SQL: through a Unix socket folder mounted at /cloudsql/INSTANCE; the Secret Manager
// fake), the IAP emulator, then the service from its images (runner.ts), and stop all of it. Used by `npm run deploy -- run-local` and by the image and end-to-end suites.
// Development only: podman and PostgreSQL's binaries must be installed (docs/run-local.md).
import { randomInt } from 'node:crypto'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { type DevChain, startDevChain } from '../../dev/dev-chain.ts'
import { parseDevOptions } from '../../dev/dev-options.ts'
import { banner } from '../../dev/dev-report.ts'
import { freePort } from '../../dev/free-port.ts'
import { buildDockerfile } from '../../dev/images/build.ts'
import { podmanMissing } from '../../dev/images/podman.ts'
import { ensureBaseImage } from '../../dev/images/stand-in-base.ts'
import { type Postgres, startPostgres } from '../../dev/postgres.ts'
import { type SecretManagerServer, startSecretManagerServer } from '../../dev/secret-manager-server.ts'
import type { DeployConfig } from '../config.ts'
import type { Io } from '../main.ts'
import { describe, prepare, type RunLocalOptions } from './command.ts'
import { RunLocalError } from './errors.ts'
import { localSecrets } from './local-secrets.ts'
import { localImages } from './render-local.ts'
import { type RunningService, type RunOptions, runService } from './runner.ts'
import type { LocalService } from './service.ts'

export type LocalStartOptions = {
  config: DeployConfig
  /** the emulator's port (default 0: a free one) */
  port?: number
  /** the ingress container's host port (default: a free one) */
  gatewayPort?: number
  email?: string
  /** local stand-ins by container (the user's --env), printed by name only */
  env?: Readonly<Record<string, Readonly<Record<string, string>>>>
  /** further layers for tests (shims), by container */
  testOnly?: Pick<RunOptions, 'overrides' | 'mounts'>
  build?: boolean
  out?: string
} & Pick<RunOptions, 'images' | 'onOutput' | 'onEvent'>

export type LocalDeployment = Readonly<{
  yaml: string
  service: LocalService
  running: RunningService
  /** the IAP emulator in front of the ingress container */
  chain: DevChain
  postgres: Postgres | undefined
  secretManager: SecretManagerServer
  /** what stands in for Google here, and every variable laid over the rendered environment */
  standIns: readonly string[]
  stop(): Promise<void>
}>

const LOOPBACK = '127.0.0.1/32,::1/128'

/**
 * A loopback address of its own for PostgreSQL, so it can take the rendered port 5432: the socket's
 * name (.s.PGSQL.5432) carries the port the service's DATABASE_PORT names, and PostgreSQL binds its
 * TCP port too.
 */
async function databaseAddress(): Promise<string> {
  for (;;) {
    const host = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`
    const probe = createServer().listen(5432, host)
    const free = await Promise.race([
      once(probe, 'listening').then(() => true),
      once(probe, 'error').then(() => false),
    ])
    probe.close()
    if (free) return host
  }
}

export async function startLocal(options: LocalStartOptions): Promise<LocalDeployment> {
  const { config } = options
  const event = options.onEvent ?? (() => {})
  const missing = podmanMissing()
  if (missing) throw new RunLocalError('RUN_LOCAL_ERR_USAGE', [missing])
  const cleanups: (() => Promise<unknown> | unknown)[] = []
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await Promise.resolve(step()).catch(() => {})
  }
  try {
    const { yaml, service } = prepare(config)
    if (options.out) writeFileSync(options.out, yaml)
    for (const container of Object.keys(options.env ?? {})) {
      if (!service.containers.some((c) => c.name === container)) {
        throw new RunLocalError('RUN_LOCAL_ERR_USAGE', [
          `--env ${container}.*: the service has no container ${container}`,
        ])
      }
    }

    const images: Record<string, string> = {}
    for (const image of localImages(config)) {
      images[image.ref] = options.images?.[image.ref] ?? image.local
      if (options.build === false || options.images?.[image.ref] || !image.build) continue
      await ensureBaseImage((line) => event(`base image: ${line}`))
      event(`building ${image.local} from ${image.build.dockerfile} (podman; cached after the first build)`)
      const built = await buildDockerfile({
        tag: image.local,
        context: image.build.context,
        dockerfile: image.build.dockerfile,
        buildArgs: image.build.args,
      })
      event(`built ${built.tag} in ${built.seconds} s`)
    }
    Object.assign(images, options.images)

    let postgres: Postgres | undefined
    const known: Record<string, string> = {}
    if (config.database.enabled) {
      // no TLS: through the /cloudsql/ socket the client speaks plain PostgreSQL to the Cloud SQL Auth
      // Proxy, which encrypts to the instance (https://cloud.google.com/sql/docs/postgres/connect-run)
      postgres = await startPostgres({
        host: await databaseAddress(),
        port: 5432,
        user: config.database.user,
        database: config.database.name,
      })
      const started = postgres
      cleanups.push(() => started.stop())
      known[`projects/${config.project}/secrets/${config.database.passwordSecret}`] = postgres.password
      event(
        `PostgreSQL on the socket folder ${postgres.socketDir}, database ${config.database.name}, user ${config.database.user}`,
      )
    }
    const secretManager = await startSecretManagerServer(localSecrets(service, config.project, known))
    cleanups.push(() => secretManager.close())

    const audience = service.ingress.env.find((e) => e.name === 'IAP_AUDIENCE')
    const gatewayPort = options.gatewayPort || (await freePort())
    const devOptions = parseDevOptions(
      [
        `--port=${options.port ?? 0}`,
        `--gateway=http://127.0.0.1:${gatewayPort}`,
        `--email=${options.email ?? 'dev@example.com'}`,
        ...(audience && 'value' in audience ? [`--audience=${audience.value}`] : []),
      ],
      {},
    )
    event(banner(devOptions).trimEnd())
    const chain = await startDevChain(devOptions, { stdout: process.stderr, stderr: process.stderr, env: {} })
    cleanups.push(() => chain.stop())

    const ingress = service.ingress
    const renderedCidrs = ingress.env.find((e) => e.name === 'ALLOWED_CIDRS')
    const cidrs = renderedCidrs && 'value' in renderedCidrs ? renderedCidrs.value : ''
    const ours: Record<string, Record<string, string>> = {
      '*': { SECRET_MANAGER_ENDPOINT: secretManager.endpoint },
      [ingress.name]: {
        IAP_KEYS_URL: chain.gatewaySettings.IAP_KEYS_URL as string,
        // the emulator's client is this machine: loopback joins the rendered ranges
        ...(cidrs.startsWith('sm://') ? {} : { ALLOWED_CIDRS: [cidrs, LOOPBACK].filter(Boolean).join(',') }),
      },
    }
    const standIns = [
      `IAP: the emulator at ${chain.url}, signing ${options.email ?? 'dev@example.com'} in for ${devOptions.audience}`,
      `Secret Manager: local, ${secretManager.endpoint}, random values for every secret the service names`,
      ...(postgres
        ? [
            `Cloud SQL: local PostgreSQL, its socket folder mounted at /cloudsql/ (password in secret version 1)`,
          ]
        : []),
      ...Object.entries(ours).flatMap(([container, vars]) =>
        Object.entries(vars).map(
          ([name, value]) => `${container === '*' ? 'every container' : container}: ${name}=${value}`,
        ),
      ),
      ...Object.entries(options.env ?? {}).flatMap(([container, vars]) =>
        Object.keys(vars).map((name) => `${container}: ${name} (set by --env)`),
      ),
      ...Object.entries(options.testOnly?.overrides ?? {}).flatMap(([container, vars]) =>
        Object.keys(vars).map((name) => `${container}: ${name} (test only)`),
      ),
    ]
    const overrides: Record<string, Record<string, string>> = {}
    for (const layer of [ours, options.env ?? {}, options.testOnly?.overrides ?? {}]) {
      for (const [container, vars] of Object.entries(layer))
        overrides[container] = { ...overrides[container], ...vars }
    }
    const running = await runService(service, {
      project: config.project,
      images,
      secretManagerEndpoint: secretManager.endpoint,
      ingressPort: gatewayPort,
      cloudSqlSocket: () => postgres?.socketDir,
      overrides,
      mounts: options.testOnly?.mounts ?? {},
      ...(options.onOutput ? { onOutput: options.onOutput } : {}),
      onEvent: event,
    })
    cleanups.push(() => running.stop())
    return Object.freeze({ yaml, service, running, chain, postgres, secretManager, standIns, stop: cleanup })
  } catch (error) {
    await cleanup()
    throw error
  }
}

/** The command's loop: start, say where to go, wait for Ctrl-C (or a container's end), stop. */
export async function runLocalUntilStopped(
  config: DeployConfig,
  options: RunLocalOptions,
  io: Io,
): Promise<number> {
  const stopping = new AbortController()
  const onSignal = () => stopping.abort()
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const deployment = await startLocal({
    config,
    port: options.port,
    gatewayPort: options.gatewayPort,
    email: options.email,
    env: options.env,
    images: options.images,
    build: options.build,
    ...(options.out ? { out: options.out } : {}),
    onOutput: (container, chunk) => {
      for (const line of chunk.split('\n').filter(Boolean)) io.stderr.write(`[${container}] ${line}\n`)
    },
    onEvent: (line) => io.stderr.write(`run-local: ${line}\n`),
  })
  io.stdout.write(describe(config, deployment.service, options.images))
  io.stdout.write(`Local stand-ins:\n${deployment.standIns.map((line) => `  ${line}\n`).join('')}`)
  io.stdout.write(
    `Open ${deployment.chain.url}/  (the ingress container at ${deployment.running.url} refuses what skips the emulator)\n`,
  )
  const reason = await Promise.race([
    deployment.running.ended,
    once(stopping.signal, 'abort').then(() => 'stopping'),
  ])
  io.stderr.write(`run-local: ${reason}\n`)
  await deployment.stop()
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  io.stderr.write('run-local: stopped\n')
  return stopping.signal.aborted ? 0 : 1
}

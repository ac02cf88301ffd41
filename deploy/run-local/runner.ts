// Runs a checked service (service.ts) from its images with podman, the way Cloud Run starts an
// instance: the secretKeyRef values resolved first (an instance whose secrets cannot be read does not
// start), then the containers wave by wave in the order of run.googleapis.com/container-dependencies,
// each wave once the one before passed its startup probes within their windows; liveness probes
// watched afterwards (a container that fails one is replaced by a new one, as Cloud Run restarts it).
// Stopping sends SIGTERM and, 10 s later, SIGKILL (container runtime contract, "Lifecycle"), the
// dependents first. Development only: it needs podman, and the images built locally (build.ts).
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { freePort } from '../../dev/free-port.ts'
import { type Container, startContainer } from '../../dev/images/container.ts'
import { imageExists } from '../../dev/images/podman.ts'
import { resolveEnvironment } from '../../proxy/secrets/resolve.ts'
import { RunLocalError } from './errors.ts'
import {
  type ContainerPlan,
  type HostMount,
  hostPorts,
  planService,
  secretFiles,
  secretVersions,
} from './plan.ts'
import { livenessProbe, startupProbe } from './probe.ts'
import { type LocalService, localProblems } from './service.ts'

/** Cloud Run's grace between SIGTERM and SIGKILL. */
export const STOP_GRACE_MS = 10_000

export type RunOptions = {
  /** the project of short secretKeyRef names */
  project: string
  images?: Readonly<Record<string, string>>
  /** host:port of the local Secret Manager, where secretKeyRef values are read */
  secretManagerEndpoint?: string
  /** the host port of the ingress container (default: a free one) */
  ingressPort?: number
  cloudSqlSocket?: (connection: string) => string | undefined
  overrides?: Readonly<Record<string, Readonly<Record<string, string>>>>
  mounts?: Readonly<Record<string, readonly HostMount[]>>
  onOutput?: (container: string, chunk: string) => void
  /** progress, one line at a time (names and timings, never a value) */
  onEvent?: (line: string) => void
}

export type RunningService = Readonly<{
  service: LocalService
  url: string
  ingressPort: number
  /** the container currently running under that name */
  container(name: string): Container
  /** the environment the container was given (it holds resolved secretKeyRef values: tests only) */
  environment(name: string): Readonly<Record<string, string>>
  /** a new container for that name, as a new instance would start it, once its startup probe passes */
  restart(name: string): Promise<void>
  /** resolves when a container exits without being asked to */
  ended: Promise<string>
  stop(): Promise<void>
}>

async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Every secretKeyRef and secret-volume value, by field, read before anything starts. */
async function readSecrets(service: LocalService, options: RunOptions): Promise<Record<string, string>> {
  const versions = secretVersions(service, options.project)
  if (versions.size === 0) return {}
  if (!options.secretManagerEndpoint) {
    throw new RunLocalError('RUN_LOCAL_ERR_USAGE', [
      'the service reads secrets, and no local Secret Manager is given',
    ])
  }
  const fields = [...versions.keys()]
  const env: Record<string, string> = { SECRET_MANAGER_ENDPOINT: options.secretManagerEndpoint ?? '' }
  fields.forEach((field, i) => {
    env[`SECRET_${i}`] = `sm://${versions.get(field)}`
  })
  try {
    const resolved = await resolveEnvironment(env, { maxAttempts: 2, warn: () => {} })
    return Object.fromEntries(fields.map((field, i) => [field, resolved[`SECRET_${i}`] as string]))
  } catch (error) {
    // the message names SECRET_<i> and the resource; say which field asked for it
    const message = (error as Error).message.replace(/SECRET_(\d+)/g, (_, i) => fields[Number(i)] as string)
    throw new RunLocalError('RUN_LOCAL_ERR_START', [`Cloud Run would not start the instance: ${message}`])
  }
}

/**
 * Host folders for the volumes: emptyDir shared and writable, secret volumes holding their files
 * (root-owned, 0444, as Cloud Run mounts them). The folder above them is this user's only (0700), so
 * only the containers, through their mounts, see the files.
 */
function makeVolumes(service: LocalService, secrets: Readonly<Record<string, string>>) {
  const root = mkdtempSync(join(tmpdir(), `run-local-${service.name}-`))
  const dirs: Record<string, string> = {}
  const files = secretFiles(service)
  for (const volume of service.volumes) {
    const dir = join(root, volume.name)
    if (volume.kind === 'emptyDir') {
      mkdirSync(dir)
      chmodSync(dir, 0o1777)
    } else if (volume.kind === 'secret') {
      mkdirSync(dir, { mode: 0o755 })
      for (const { path, field } of files.get(volume.name) ?? []) {
        const file = join(dir, path)
        mkdirSync(dirname(file), { recursive: true, mode: 0o755 })
        writeFileSync(file, secrets[field] ?? '', { mode: 0o444 })
      }
    } else continue
    dirs[volume.name] = dir
  }
  return { root, dirs }
}

export async function runService(service: LocalService, options: RunOptions): Promise<RunningService> {
  const event = options.onEvent ?? (() => {})
  const unsupported = localProblems(service)
  if (unsupported.length > 0) throw new RunLocalError('RUN_LOCAL_ERR_UNSUPPORTED', unsupported)
  const ingressPort = options.ingressPort ?? (await freePort())
  const secrets = await readSecrets(service, options)
  const volumes = makeVolumes(service, secrets)
  const cleanup = () => rmSync(volumes.root, { recursive: true, force: true })
  const { plans, problems } = planService(service, {
    images: options.images ?? {},
    ingressPort,
    secrets,
    volumes: volumes.dirs,
    cloudSqlSocket: options.cloudSqlSocket ?? (() => undefined),
    overrides: options.overrides ?? {},
    mounts: options.mounts ?? {},
  })
  for (const plan of plans) {
    if (!(await imageExists(plan.image))) {
      problems.push(
        `${plan.field}.image: ${plan.image} is not in podman's local store (build it, or map its reference)`,
      )
    }
  }
  for (const { port, field } of hostPorts(service, plans)) {
    if (await portInUse(port)) {
      problems.push(
        `${field}: port ${port} is in use on this machine (the containers share its network here)`,
      )
    }
  }
  if (problems.length > 0) {
    cleanup()
    throw new RunLocalError('RUN_LOCAL_ERR_START', problems)
  }

  const running = new Map<string, Container>()
  const stopping = new Set<string>()
  const watching = new AbortController()
  const ended = Promise.withResolvers<string>()
  const planOf = (name: string) => plans.find((p) => p.name === name) as ContainerPlan
  const specOf = (name: string) =>
    service.containers.find((c) => c.name === name) as LocalService['containers'][number]

  async function start(name: string): Promise<void> {
    const plan = planOf(name)
    const spec = specOf(name)
    const began = performance.now()
    const container = await startContainer({
      image: plan.image,
      name: `iapgw-${service.name}-${name}-${randomBytes(3).toString('hex')}`,
      purpose: `run-local-${name}`,
      env: plan.env,
      ...(plan.entrypoint ? { entrypoint: plan.entrypoint } : {}),
      ...(plan.args ? { args: plan.args } : {}),
      ...(plan.workdir ? { workdir: plan.workdir } : {}),
      resources: plan.resources,
      mounts: plan.mounts,
      onOutput: (chunk) => options.onOutput?.(name, chunk),
    })
    running.set(name, container)
    container.exited.then(({ code }) => {
      if (!stopping.has(name) && running.get(name) === container) ended.resolve(`${name} exited (${code})`)
    })
    if (spec.startupProbe) {
      try {
        const outcome = await startupProbe(spec.startupProbe, {
          port: plan.probePort(spec.startupProbe.port),
          exited: container.exited,
        })
        event(`${name}: started, startup probe passed after ${outcome.ms} ms (attempt ${outcome.attempts})`)
      } catch (error) {
        const tail = container.logs().trim().split('\n').slice(-30).join('\n')
        throw new RunLocalError('RUN_LOCAL_ERR_START', [
          `${(error as Error).message}\n--- last output of ${name} ---\n${tail}`,
        ])
      }
    } else event(`${name}: started in ${Math.round(performance.now() - began)} ms (no startup probe)`)
    if (spec.livenessProbe) {
      const probe = spec.livenessProbe
      livenessProbe(probe, { signal: watching.signal, port: plan.probePort(probe.port) }, (reason) => {
        if (stopping.has(name) || running.get(name) !== container) return
        event(`${name}: ${reason}: Cloud Run restarts the container`)
        restart(name).catch((error) =>
          ended.resolve(`${name} could not be restarted: ${(error as Error).message}`),
        )
      })
    }
  }

  async function stopOne(name: string): Promise<void> {
    const container = running.get(name)
    if (!container) return
    stopping.add(name)
    await container.stop(STOP_GRACE_MS)
  }

  async function restart(name: string): Promise<void> {
    await stopOne(name)
    stopping.delete(name)
    await start(name)
  }

  const stop = async () => {
    watching.abort()
    // the dependents first: a gateway drains while its upstream still answers
    for (const wave of [...service.startOrder].reverse()) await Promise.all(wave.map(stopOne))
    cleanup()
  }

  try {
    for (const wave of service.startOrder) {
      event(`starting ${wave.join(', ')}`)
      await Promise.all(wave.map(start))
    }
  } catch (error) {
    await stop()
    throw error
  }
  return Object.freeze({
    service,
    url: `http://127.0.0.1:${ingressPort}`,
    ingressPort,
    container: (name: string) => running.get(name) as Container,
    environment: (name: string) => planOf(name).env,
    restart,
    ended: ended.promise,
    stop,
  })
}

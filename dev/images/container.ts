// One container started from an image the way Cloud Run starts one: its own user (the image's USER
// unless told otherwise), the environment it is given and nothing else, the host's loopback network
// (Cloud Run's containers of one instance share a network namespace; here `--network=host` stands in
// for it, so a container's port is a port of this machine: callers pick free ones). Output is kept and
// streamed; stop() sends SIGTERM, as Cloud Run does, then SIGKILL after the grace period.
//
// No value is put on a command line: the environment goes through an --env-file in a private folder,
// read by `podman create` and deleted before the container starts.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onExit } from 'signal-exit'
import { globalFlags, PODMAN, podman, RUN_FLAGS } from './podman.ts'

export const CONTAINER_LABEL = 'org.iap-gateway.container'

export type Mount = { source: string; target: string; readOnly?: boolean }

export type ContainerOptions = {
  image: string
  /** default: iapgw-<purpose>-<random> */
  name?: string
  purpose?: string
  env?: Readonly<Record<string, string>>
  /** variables the image sets that the container must not have (podman's --unsetenv) */
  unsetEnv?: readonly string[]
  /** "uid:gid" or a name; default: the image's USER, which is what Cloud Run runs */
  user?: string
  /** replaces the image's CMD (Cloud Run's `args`) */
  args?: readonly string[]
  /** replaces the image's ENTRYPOINT (Cloud Run's `command`) */
  entrypoint?: readonly string[]
  mounts?: readonly Mount[]
  /** a read-only root file system with these folders as memory (tmpfs) */
  readOnlyRoot?: { tmpfs: readonly string[] }
  /** CPU and memory limits (Cloud Run's resources.limits), enforced by the kernel's cgroups */
  resources?: { cpus: number; memoryBytes: number }
  /** the working directory (Cloud Run's workingDir) */
  workdir?: string
  /** output as it comes, e.g. to show it in a test's comments */
  onOutput?: (chunk: string) => void
}

export type Exit = { code: number | null }

export type Container = {
  readonly name: string
  /** everything the container wrote to stdout and stderr so far */
  logs(): string
  readonly exited: Promise<Exit>
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit once the container is gone */
  stop(graceMs?: number): Promise<Exit>
  /** sends a signal and returns at once (watch `exited`) */
  signal(signal: NodeJS.Signals): Promise<void>
  /** run a command in the running container (as its user unless `user` says otherwise) */
  exec(args: readonly string[], user?: string): Promise<{ code: number | null; output: string }>
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

function checkMounts(mounts: readonly Mount[]): void {
  for (const m of mounts) {
    // a comma would end the --mount option's field early
    if (/[,\n]/.test(m.source + m.target))
      throw new Error(`container mount: ${m.source} -> ${m.target} holds a comma`)
  }
}

function envFile(env: Readonly<Record<string, string>>): { dir: string; file: string } {
  const lines: string[] = []
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) throw new Error(`container env: "${name}" is not a variable name`)
    // an --env-file line ends at the newline: such a value would silently be cut
    if (/[\r\n\0]/.test(value)) throw new Error(`container env: ${name} holds a line break or NUL`)
    lines.push(`${name}=${value}`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'container-env-'))
  const file = join(dir, 'env')
  writeFileSync(file, lines.length > 0 ? `${lines.join('\n')}\n` : '', { mode: 0o600 })
  return { dir, file }
}

export async function startContainer(options: ContainerOptions): Promise<Container> {
  const name = options.name ?? `iapgw-${options.purpose ?? 'test'}-${randomBytes(4).toString('hex')}`
  checkMounts(options.mounts ?? [])
  const { dir, file } = envFile(options.env ?? {})
  const create = [
    'create',
    '--rm',
    '--name',
    name,
    '--label',
    `${CONTAINER_LABEL}=${options.purpose ?? 'test'}`,
    ...RUN_FLAGS,
    '--env-file',
    file,
    ...(options.unsetEnv ?? []).flatMap((name) => ['--unsetenv', name]),
    ...(options.user ? ['--user', options.user] : []),
    ...(options.workdir ? ['--workdir', options.workdir] : []),
    ...(options.resources
      ? [
          '--cpus',
          String(options.resources.cpus),
          // no swap: an instance over its memory limit is stopped, as on Cloud Run
          ...['--memory', '--memory-swap'].flatMap((flag) => [flag, String(options.resources?.memoryBytes)]),
        ]
      : []),
    ...(options.entrypoint ? ['--entrypoint', JSON.stringify(options.entrypoint)] : []),
    ...(options.readOnlyRoot
      ? ['--read-only', ...options.readOnlyRoot.tmpfs.flatMap((path) => ['--tmpfs', `${path}:rw,mode=1777`])]
      : []),
    // --mount, not --volume: a target may hold colons (/cloudsql/PROJECT:REGION:INSTANCE)
    ...(options.mounts ?? []).flatMap((m) => [
      '--mount',
      `type=bind,source=${m.source},target=${m.target}${m.readOnly === false ? '' : ',readonly'}`,
    ]),
    options.image,
    ...(options.args ?? []),
  ]
  try {
    await podman(create)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  // a test process ended by a signal (tap's timeout) leaves no container behind
  const removeExitHook = onExit(() => {
    spawnSync(PODMAN, [...globalFlags(), 'rm', '--force', '--time=0', name], { stdio: 'ignore' })
  })
  // its own process group, and no signal proxying: a Ctrl-C in the terminal reaches the process that
  // started the container, which decides when and how the container stops (stop(), signal())
  const child = spawn(PODMAN, [...globalFlags(), 'start', '--attach', '--sig-proxy=false', name], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let output = ''
  const keep = (chunk: string) => {
    output += chunk
    options.onOutput?.(chunk)
  }
  child.stdout.setEncoding('utf8').on('data', keep)
  child.stderr.setEncoding('utf8').on('data', keep)
  const exited: Promise<Exit> = once(child, 'close').then(([code]) => {
    removeExitHook()
    return { code: code as number | null }
  })

  const signal = (name_: string, signalName: string) =>
    podman(['kill', '--signal', signalName, name_], { allowFailure: true })

  return {
    name,
    logs: () => output,
    exited,
    async stop(graceMs = 10_000) {
      await signal(name, 'SIGTERM')
      const timer = setTimeout(() => signal(name, 'SIGKILL'), graceMs)
      const exit = await exited
      clearTimeout(timer)
      return exit
    },
    async signal(signalName) {
      await signal(name, signalName)
    },
    async exec(args, user) {
      const result = await podman(['exec', ...(user ? ['--user', user] : []), name, ...args], {
        allowFailure: true,
      })
      return { code: result.code, output: result.output }
    },
  }
}

export type ProbeOptions = {
  timeoutMs: number
  intervalMs?: number
  /** stop waiting (and fail) when this resolves: the container exited */
  exited?: Promise<unknown>
}

/** Waits until an HTTP GET answers 2xx-3xx (Cloud Run's httpGet probe); resolves the ms waited. */
export async function waitForHttp(url: string, options: ProbeOptions): Promise<number> {
  return waitFor(
    async () => {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000), redirect: 'manual' })
      await response.body?.cancel()
      return response.status >= 200 && response.status < 400
    },
    `GET ${url}`,
    options,
  )
}

/** Waits until a TCP connection opens (Cloud Run's tcpSocket probe); resolves the ms waited. */
export async function waitForTcp(host: string, port: number, options: ProbeOptions): Promise<number> {
  return waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = connect({ host, port, timeout: 2000 })
        socket.once('connect', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
        socket.once('timeout', () => {
          socket.destroy()
          resolve(false)
        })
      }),
    `tcp ${host}:${port}`,
    options,
  )
}

async function waitFor(check: () => Promise<boolean>, what: string, options: ProbeOptions): Promise<number> {
  const started = performance.now()
  let gone = false
  options.exited?.then(() => {
    gone = true
  })
  for (;;) {
    if (gone) throw new Error(`${what}: the container exited before the probe passed`)
    if (await check().catch(() => false)) return Math.round(performance.now() - started)
    if (performance.now() - started > options.timeoutMs) {
      throw new Error(`${what}: no answer within ${Math.round(options.timeoutMs / 1000)} s`)
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250))
  }
}

/** Runs a container to its end (a one-off command in an image) and returns its exit and output. */
export async function runToExit(options: ContainerOptions): Promise<{ code: number | null; output: string }> {
  const container = await startContainer(options)
  const { code } = await container.exited
  return { code, output: container.logs() }
}

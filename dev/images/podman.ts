// The one way this project calls podman: argv only (never a shell), output kept for the error message,
// and the flags that work on the machines this project is built on (docs/images.md, "Building here:
// podman and the stand-in base"):
//   - runc, not crun, and the cgroupfs manager: crun refuses these machines' hybrid cgroups;
//   - builds: --isolation=chroot and the host network (no bridge plugin, no user namespaces needed),
//     --pull=never (no image registry is reachable: the base is made locally, see stand-in-base.ts),
//     and a higher open-files limit (`npm install` of Flowise's tree fails with EMFILE below it);
//   - runs: open-files and process limits below podman's defaults, which these sandboxes refuse to set
//     ("error setting rlimit ... operation not permitted"), and the host network.
// Assumption: the process runs as root (podman's rootful store); rootless podman is not tried here.
import { spawn, spawnSync } from 'node:child_process'
import type { Readable } from 'node:stream'

export const PODMAN = process.env.PODMAN || 'podman'

/** Global options: before the subcommand. runc only when installed (elsewhere podman's default runtime). */
let flags: string[] | undefined
export function globalFlags(): string[] {
  if (!flags) {
    const runc = spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).status === 0
    flags = runc ? ['--runtime', 'runc', '--cgroup-manager=cgroupfs'] : ['--cgroup-manager=cgroupfs']
  }
  return flags
}

export const BUILD_FLAGS = [
  '--pull=never',
  '--network=host',
  '--isolation=chroot',
  '--ulimit',
  'nofile=20000:20000',
] as const

export const RUN_FLAGS = [
  '--ulimit',
  'nofile=10000:10000',
  '--ulimit',
  'nproc=4096:4096',
  '--network=host',
] as const

/** Why image builds cannot run here, or undefined when podman answers. */
export function podmanMissing(): string | undefined {
  const found = spawnSync(PODMAN, ['--version'], { encoding: 'utf8' })
  if (found.error || found.status !== 0) {
    return `${PODMAN} not found (apt-get install podman buildah runc debootstrap; .ci/run installs them)`
  }
  if (process.getuid?.() !== 0) return 'image builds here need root (podman rootful store, debootstrap)'
  return undefined
}

export type CommandResult = { code: number | null; signal: string | null; stdout: string; output: string }

export type CommandOptions = {
  /** each chunk of output as it comes (stdout and stderr), e.g. to show a build's progress */
  onOutput?: (chunk: string) => void
  /** piped into the command's stdin (podman import reads the root file system from it) */
  input?: Readable
  timeoutMs?: number
  /** accept a non-zero exit instead of throwing */
  allowFailure?: boolean
}

export class CommandError extends Error {
  readonly result: CommandResult
  constructor(argv: readonly string[], result: CommandResult) {
    super(
      `${argv.join(' ')} failed (${result.code ?? result.signal}); last output:\n${result.output.slice(-4000)}`,
    )
    this.name = 'CommandError'
    this.result = result
  }
}

/** Runs a program (no shell). stdout is returned whole; `output` keeps the tail of both streams. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const child = spawn(command, [...args], { stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  if (options.input && child.stdin) options.input.pipe(child.stdin)
  let stdout = ''
  let output = ''
  const keep = (chunk: string) => {
    output = (output + chunk).slice(-64_000)
    options.onOutput?.(chunk)
  }
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    keep(chunk)
  })
  child.stderr?.setEncoding('utf8').on('data', keep)
  const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      const result = { code, signal, stdout, output }
      if (code === 0 || options.allowFailure) resolve(result)
      else reject(new CommandError([command, ...args], result))
    })
  })
}

/** `podman <global flags> <args>` */
export function podman(args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  return runCommand(PODMAN, [...globalFlags(), ...args], options)
}

export async function imageExists(ref: string): Promise<boolean> {
  const { code } = await podman(['image', 'exists', ref], { allowFailure: true })
  return code === 0
}

export type ImageFacts = { id: string; size: number; created: string; labels: Record<string, string> }

export async function inspectImage(ref: string): Promise<ImageFacts> {
  const { stdout } = await podman(['image', 'inspect', ref])
  const [facts] = JSON.parse(stdout) as {
    Id: string
    Size: number
    Created: string
    Labels?: Record<string, string> | null
  }[]
  if (!facts) throw new Error(`podman image inspect ${ref}: no image`)
  return { id: facts.Id, size: facts.Size, created: facts.Created, labels: facts.Labels ?? {} }
}

// The one way the deploy runs gcloud: an argument array (no shell), --project on every command,
// --format=json where values are read, a timeout on every call, retries while IAM propagates,
// secrets only on stdin, and every known secret value redacted from anything shown.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DeployError } from './errors.ts'
import type { Command } from './steps/types.ts'

export interface GcloudResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunnerOptions {
  project: string
  /** The gcloud executable (tests point it at a recorder that execs the real one). */
  gcloud?: string
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
  longTimeoutMs?: number
  /** Delays between attempts while IAM propagates (about 30 s in total by default). */
  iamRetryDelaysMs?: number[]
}

// IAM says a fresh identity "does not exist" until it has propagated; policy writes can race (ABORTED).
const IAM_TRANSIENT =
  /does not exist|not found or permission denied|concurrent policy changes|ABORTED|PERMISSION_DENIED/i
// A describe that fails this way found nothing; anything else is a real error.
const NOT_FOUND =
  /NOT_FOUND|HTTPError 404|was not found|Cannot find service|could not be found|Could not fetch resource:\s*-\s*[^\n]*not found|\b404\b/i

export function isNotFound(stderr: string): boolean {
  return NOT_FOUND.test(stderr)
}

export class Redactor {
  private readonly values = new Set<string>()

  add(value: string): void {
    if (value.length >= 8) this.values.add(value)
  }

  apply(text: string): string {
    let out = text
    for (const v of this.values) out = out.split(v).join('[REDACTED]')
    // Belt and braces: nothing the deploy runs passes these, but a pasted command line might.
    return out.replace(/(--password[= ])\S+/g, '$1[REDACTED]')
  }
}

export class Gcloud {
  readonly redactor = new Redactor()
  private readonly opts: Required<Omit<RunnerOptions, 'env'>> & { env: NodeJS.ProcessEnv }
  /** Every argv run, for --verbose output and for tests; secrets never appear in argv. */
  readonly history: string[][] = []

  constructor(opts: RunnerOptions) {
    this.opts = {
      gcloud: 'gcloud',
      env: process.env,
      timeoutMs: 180_000,
      longTimeoutMs: 3_600_000,
      iamRetryDelaysMs: [2000, 4000, 8000, 16000],
      ...opts,
    }
  }

  /** The full argv for a command, as run and as printed by `plan`. */
  argv(command: Command, files: Record<string, string> = {}): string[] {
    const args = command.argv.map((a) =>
      a.replace(/\{file:([a-z0-9-]+)\}/g, (_, n: string) => files[n] ?? `{file:${n}}`),
    )
    const flags = [`--project=${this.opts.project}`, '--format=json']
    if (!command.prompts) flags.push('--quiet')
    if (command.poll) flags.push('--async')
    return [...args, ...flags]
  }

  /** Runs a command; a non-zero exit is returned, not thrown, so describes can read "absent". */
  async run(command: Command, stdin?: string): Promise<GcloudResult> {
    const dir = command.files ? mkdtempSync(join(tmpdir(), 'iap-gateway-deploy-')) : undefined
    try {
      const paths: Record<string, string> = {}
      for (const [name, content] of Object.entries(command.files ?? {})) {
        paths[name] = join(dir as string, name)
        writeFileSync(paths[name], content, { mode: 0o600 })
      }
      const argv = this.argv(command, paths)
      const timeout = command.long ? this.opts.longTimeoutMs : this.opts.timeoutMs
      const delays = command.retryIam ? this.opts.iamRetryDelaysMs : []
      for (let attempt = 0; ; attempt += 1) {
        this.history.push(argv)
        const result = await this.spawn(argv, stdin, timeout, command)
        const delay = delays[attempt]
        if (result.code === 0 || delay === undefined || !IAM_TRANSIENT.test(result.stderr)) return result
        await new Promise((r) => setTimeout(r, delay))
      }
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true })
    }
  }

  /** Runs a command that must succeed; a failure stops the deploy with the command, code and stderr. */
  async must(command: Command, stdin?: string): Promise<GcloudResult> {
    const result = await this.run(command, stdin)
    if (result.code !== 0) throw this.failure(command, result)
    return result
  }

  failure(command: Command, result: GcloudResult): DeployError {
    const shown = ['gcloud', ...this.argv(command)].join(' ')
    const stderr = this.redactor.apply(result.stderr.trim()).split('\n').slice(-15).join('\n')
    const code = result.code === 124 ? 'DEPLOY_ERR_TIMEOUT' : 'DEPLOY_ERR_GCLOUD'
    return new DeployError(
      code,
      `command failed (exit ${result.code}): ${this.redactor.apply(shown)}\n${stderr}`,
    )
  }

  private spawn(
    argv: string[],
    stdin: string | undefined,
    timeoutMs: number,
    command: Command,
  ): Promise<GcloudResult> {
    return new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = {
        ...this.opts.env,
        CLOUDSDK_CORE_DISABLE_COLOR: 'true',
        // A password prompt reads stdin only while prompts are on; everything else must never wait for input.
        CLOUDSDK_CORE_DISABLE_PROMPTS: command.prompts ? 'false' : 'true',
      }
      // gcloud writes every command's arguments, flags-file values included, to its log files under the
      // config folder ("Running [gcloud.sql.users.create] with arguments: [... --password: ...]", seen with
      // gcloud 528): a command that carries a secret runs without them.
      if (command.stdin || command.secretFlags) env.CLOUDSDK_CORE_DISABLE_FILE_LOGGING = 'true'
      // detached: a new session without a controlling terminal, so gcloud's password prompt reads the
      // pipe instead of /dev/tty, and a timeout can end the whole process group.
      const child = spawn(this.opts.gcloud, argv, { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
      const out: Buffer[] = []
      const err: Buffer[] = []
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        /* c8 ignore start -- the group can be gone between the timer and the kill */
        try {
          process.kill(-(child.pid as number), 'SIGKILL')
        } catch {}
        /* c8 ignore stop */
      }, timeoutMs)
      child.stdout.on('data', (d: Buffer) => out.push(d))
      child.stderr.on('data', (d: Buffer) => err.push(d))
      child.on('error', (error) => {
        clearTimeout(timer)
        reject(new DeployError('DEPLOY_ERR_GCLOUD', `cannot run ${this.opts.gcloud}: ${error.message}`))
      })
      child.on('close', (code) => {
        clearTimeout(timer)
        const stderr = Buffer.concat(err).toString('utf8')
        resolve({
          code: timedOut ? 124 : (code ?? 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: timedOut ? `${stderr}\ntimed out after ${Math.round(timeoutMs / 1000)} s` : stderr,
        })
      })
      child.stdin.on('error', () => {})
      child.stdin.end(stdin ?? '')
    })
  }
}

// Runs the steps: describe what exists, then create, update or leave each resource (apply), say what
// it would do (plan), or delete in reverse order (destroy). Describes of a step are read in parallel
// up front and reused until something changes, so an unchanged apply is a handful of reads.
import { randomBytes } from 'node:crypto'
import type { DeployConfig } from './config.ts'
import { DeployError } from './errors.ts'
import { type Gcloud, isNotFound } from './gcloud.ts'
import type { Progress } from './progress.ts'
import type { Command, Context, Resource, Step } from './steps/types.ts'

export type Action = 'create' | 'update' | 'unchanged' | 'read' | 'delete' | 'absent' | 'keep'

export interface Planned {
  step: Step
  resource: Resource
  action: Action
  reasons: string[]
  commands: Command[]
}

export interface EngineOptions {
  gcloud: Gcloud
  progress: Progress
  /** Describes run at most this many at a time. */
  concurrency?: number
  pollIntervalMs?: number
  /** Plan without reading anything (no gcloud, or not signed in): every resource shows as create. */
  offline?: boolean
}

interface Observed {
  found: boolean
  json?: any
}

export class Engine {
  readonly context: Context
  private readonly opts: Required<Omit<EngineOptions, 'gcloud' | 'progress'>> &
    Pick<EngineOptions, 'gcloud' | 'progress'>
  private readonly cache = new Map<string, Promise<{ ok: boolean; json?: any }>>()
  private readonly secrets = new Map<string, string>()

  constructor(config: DeployConfig, opts: EngineOptions) {
    this.opts = { concurrency: 4, pollIntervalMs: 10_000, offline: false, ...opts }
    const facts = new Map<string, string>()
    this.context = { config, facts, fact: (name) => facts.get(name) ?? `\${${name}}` }
  }

  private read(argv: string[]): Promise<{ ok: boolean; json?: any }> {
    const key = argv.join('\0')
    let pending = this.cache.get(key)
    if (!pending) {
      pending = this.opts.gcloud.run({ argv }).then((r) => {
        if (r.code === 0) return { ok: true, json: r.stdout.trim() ? JSON.parse(r.stdout) : null }
        if (isNotFound(r.stderr)) return { ok: false }
        throw this.opts.gcloud.failure({ argv }, r)
      })
      this.cache.set(key, pending)
      pending.catch(() => this.cache.delete(key))
    }
    return pending
  }

  async observe(r: Resource): Promise<Observed> {
    if (this.opts.offline) return { found: false }
    const res = await this.read(r.describe(this.context))
    if (!res.ok) return { found: false }
    if (r.absent?.(res.json, this.context)) return { found: false, json: res.json }
    r.learn?.(res.json, this.context)
    return { found: true, json: res.json }
  }

  private async prefetch(resources: Resource[]): Promise<void> {
    if (this.opts.offline) return
    const queue = [...resources]
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift())
        await this.read(r.describe(this.context)).catch(() => {})
    }
    await Promise.all(Array.from({ length: this.opts.concurrency }, worker))
  }

  private active(step: Step): Resource[] {
    return step.resources.filter((r) => (r.when ? r.when(this.context.config) : true))
  }

  private decide(step: Step, r: Resource, seen: Observed): Planned {
    if (r.readOnly) {
      if (!seen.found && !this.opts.offline) {
        const read = `gcloud ${r.describe(this.context).join(' ')}`
        throw new DeployError(
          'DEPLOY_ERR_REFUSED',
          `${r.title} (${read}): not found, or this account cannot read it`,
        )
      }
      return { step, resource: r, action: 'read', reasons: [], commands: [] }
    }
    if (!seen.found)
      return { step, resource: r, action: 'create', reasons: [], commands: r.create(this.context) }
    const reasons = r.check?.(seen.json, this.context) ?? []
    if (reasons.length === 0) return { step, resource: r, action: 'unchanged', reasons, commands: [] }
    if (!r.update) {
      throw new DeployError(
        'DEPLOY_ERR_DRIFT',
        `${r.title} differs from the config and cannot be updated in place: ${reasons.join('; ')}`,
      )
    }
    return { step, resource: r, action: 'update', reasons, commands: r.update(this.context, seen.json) }
  }

  async plan(steps: Step[]): Promise<Planned[]> {
    const out: Planned[] = []
    for (const step of steps) {
      await this.prefetch(this.active(step))
      for (const r of this.active(step)) out.push(this.decide(step, r, await this.observe(r)))
    }
    return out
  }

  async apply(steps: Step[]): Promise<Planned[]> {
    const done: Planned[] = []
    for (const step of steps) {
      this.opts.progress.line(`== ${step.title}`)
      await this.prefetch(this.active(step))
      for (const r of this.active(step)) {
        const planned = this.decide(step, r, await this.observe(r))
        this.opts.progress.line(
          `${planned.action.padEnd(9)} ${r.title}${planned.reasons.length ? ` (${planned.reasons.join('; ')})` : ''}`,
        )
        for (const command of planned.commands) await this.execute(command)
        // Read back what was just made: later steps need its id or address.
        if (planned.commands.length > 0 && r.learn) await this.observe(r)
        done.push(planned)
      }
    }
    return done
  }

  async destroy(steps: Step[], deleteData: boolean): Promise<Planned[]> {
    const done: Planned[] = []
    for (const step of [...steps].reverse()) {
      this.opts.progress.line(`== ${step.title}`)
      await this.prefetch(this.active(step).filter((r) => r.delete && (deleteData || !r.data)))
      for (const r of [...this.active(step)].reverse()) {
        if (!r.delete) continue
        if (r.data && !deleteData) {
          this.opts.progress.line(`keep      ${r.title} (data: pass --delete-data to remove)`)
          done.push({ step, resource: r, action: 'keep', reasons: [], commands: [] })
          continue
        }
        const seen = await this.observe(r)
        const commands = seen.found ? r.delete(this.context, seen.json) : []
        const action: Action = seen.found ? 'delete' : 'absent'
        this.opts.progress.line(`${action.padEnd(9)} ${r.title}`)
        // Deleting one resource does not change what the others' reads said: keep them.
        for (const command of commands) await this.execute(command, false)
        done.push({ step, resource: r, action, reasons: [], commands })
      }
    }
    return done
  }

  /** The stdin for a command: a managed secret's value, generated (32 random bytes) the first time. */
  private async stdinFor(command: Command): Promise<string | undefined> {
    const s = command.stdin
    if (!s) return undefined
    let value = this.secrets.get(s.secret)
    if (value === undefined) {
      if (command.argv.includes('--prompt-for-password')) {
        // The secret exists from an earlier run: read it (stdout only, never shown).
        const r = await this.opts.gcloud.must({
          argv: ['secrets', 'versions', 'access', 'latest', `--secret=${s.secret}`],
        })
        value = Buffer.from(JSON.parse(r.stdout).payload.data, 'base64').toString('utf8')
      } else {
        value = randomBytes(32).toString('base64url')
      }
      this.secrets.set(s.secret, value)
    }
    this.opts.gcloud.redactor.add(value)
    return value
  }

  private async execute(command: Command, invalidate = true): Promise<void> {
    const gcloud = this.opts.gcloud
    const label = `  gcloud ${command.argv.join(' ')}`
    if (invalidate) this.cache.clear()
    const stdin = await this.stdinFor(command)
    const run = async () => {
      const result = await gcloud.must(command, stdin)
      if (!command.poll) return
      const submitted = JSON.parse(result.stdout)
      for (;;) {
        const status = JSON.parse((await gcloud.must({ argv: command.poll.describe(submitted) })).stdout)
        if (command.poll.done(status)) {
          const failed = command.poll.failed(status)
          if (failed) throw new DeployError('DEPLOY_ERR_GCLOUD', failed)
          return
        }
        await new Promise((r) => setTimeout(r, this.opts.pollIntervalMs))
      }
    }
    if (command.long) await this.opts.progress.track(label, run)
    else {
      this.opts.progress.line(label)
      await run()
    }
  }
}

// Runs the steps: describe what exists, then create, update or leave each resource (apply), say what
// it would do (plan), or delete in reverse order (destroy). Describes of a step are read in parallel
// up front and reused until something changes, so an unchanged apply is a handful of reads. A change
// forgets only the reads it can have changed (the resource's own, and those it names in `affects`)
// until the step ends; the next step starts with nothing remembered.
// Over 300 lines on purpose: plan, apply and destroy share one read cache, the placeholder guard and the
// secret handling; split apart, each would need to reach into the others.
import { randomBytes } from 'node:crypto'
import type { DeployConfig } from './config.ts'
import { DeployError } from './errors.ts'
import { type Gcloud, isNotFound } from './gcloud.ts'
import type { Progress } from './progress.ts'
import type { Command, Context, Resource, SecretValue, Step } from './steps/types.ts'

export type Action = 'create' | 'update' | 'unchanged' | 'read' | 'delete' | 'absent' | 'keep' | 'pending'

export interface Planned {
  step: Step
  resource: Resource
  action: Action
  reasons: string[]
  commands: Command[]
}

/** A failure Google documents as temporary (`Command.pending`): apply and destroy record it and go on. */
class Held extends Error {}

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
  /** The describe's JSON as gcloud printed it (each resource declares its shape: Resource's `J`). */
  json?: unknown
}

/** A describe's answer: found with its JSON (null for an empty answer), or not found. */
interface Read {
  ok: boolean
  json?: unknown
}

/** `secrets versions access --format=json` (Secret Manager AccessSecretVersionResponse). */
interface AccessedVersion {
  payload: { data: string }
}

export class Engine {
  readonly context: Context
  private readonly opts: Required<Omit<EngineOptions, 'gcloud' | 'progress'>> &
    Pick<EngineOptions, 'gcloud' | 'progress'>
  private readonly cache = new Map<string, Promise<Read>>()
  private readonly secrets = new Map<string, string>()
  /** Facts asked for before anything had read them: their `${NAME}` placeholders may be in a command. */
  private readonly placeholders = new Set<string>()
  /** apply() ran a command since the cache was last cleared: the next step reads afresh. */
  private changed = false

  constructor(config: DeployConfig, opts: EngineOptions) {
    this.opts = { concurrency: 4, pollIntervalMs: 10_000, offline: false, ...opts }
    const facts = new Map<string, string>()
    const fact = (name: string) => {
      const value = facts.get(name)
      if (value !== undefined) return value
      this.placeholders.add(name)
      return `\${${name}}`
    }
    this.context = { config, facts, fact }
  }

  private read(argv: string[]): Promise<Read> {
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

  /** Reads every resource that records facts (project number, ids, versions), as `render` needs them. */
  async learn(steps: Step[]): Promise<void> {
    this.cache.clear()
    for (const step of steps) for (const r of this.active(step)) if (r.learn) await this.observe(r)
  }

  /** Runs one command outside any plan (the day-two verbs). */
  async run(command: Command): Promise<void> {
    await this.execute(command)
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
      // What another step changed is not declared anywhere: read everything again after any change,
      // also when an earlier apply() of this engine made it (upgrade applies in two parts).
      if (this.changed) this.cache.clear()
      this.changed = false
      const active = this.active(step)
      await this.prefetch(active)
      for (const r of active) {
        const planned = this.decide(step, r, await this.observe(r))
        this.opts.progress.line(
          `${planned.action.padEnd(9)} ${r.title}${planned.reasons.length ? ` (${planned.reasons.join('; ')})` : ''}`,
        )
        try {
          for (const command of planned.commands) {
            this.changed = true
            await this.execute(command, false).finally(() => this.forget(step, r))
          }
        } catch (error) {
          // Something Google documents as not ready yet (a metric Monitoring does not know): the rest goes on.
          if (!(error instanceof Held)) throw error
          this.opts.progress.line(`pending   ${r.title} (${error.message})`)
          done.push({ ...planned, action: 'pending', reasons: [error.message] })
          continue
        }
        // Read back what was just made: later steps need its id or address.
        if (planned.commands.length > 0 && r.learn) await this.observe(r)
        done.push(planned)
      }
    }
    return done
  }

  /**
   * Deletes in reverse order. Everything is read, and every refusal evaluated, before the first delete:
   * a refusal (a protected database) stops the run with nothing deleted. A deletion Google holds for a
   * while (`Command.pending`) is recorded and the rest goes on; a later destroy finishes it.
   */
  async destroy(steps: Step[], deleteData: boolean): Promise<Planned[]> {
    const todo: { step: Step; r: Resource; seen?: Observed }[] = []
    const refusals: string[] = []
    for (const step of [...steps].reverse()) {
      const deletable = [...this.active(step)].reverse().filter((r) => r.delete)
      await this.prefetch(deletable.filter((r) => deleteData || !r.data))
      for (const r of deletable) {
        if (r.data && !deleteData) {
          todo.push({ step, r })
          continue
        }
        const seen = await this.observe(r)
        const refusal = seen.found ? r.refuseDelete?.(this.context, seen.json) : undefined
        if (refusal) refusals.push(refusal)
        todo.push({ step, r, seen })
      }
    }
    if (refusals.length > 0) {
      throw new DeployError('DEPLOY_ERR_REFUSED', `nothing was deleted: ${refusals.join('; ')}`)
    }
    const done: Planned[] = []
    const pending = new Set<string>()
    let title = ''
    for (const { step, r, seen } of todo) {
      if (step.title !== title) {
        title = step.title
        this.opts.progress.line(`== ${title}`)
      }
      const planned = (action: Action, reasons: string[] = [], commands: Command[] = []) => {
        this.opts.progress.line(
          `${action.padEnd(9)} ${r.title}${reasons.length ? ` (${reasons.join('; ')})` : ''}`,
        )
        done.push({ step, resource: r, action, reasons, commands })
      }
      if (!seen) {
        planned('keep', ['data: pass --delete-data to remove'])
        continue
      }
      if (!seen.found) {
        planned('absent')
        continue
      }
      const holder = r.heldBy?.find((id) => pending.has(id))
      if (holder) {
        pending.add(r.id)
        planned('pending', [`waits for ${holder}`])
        continue
      }
      const commands = (r.delete as NonNullable<Resource['delete']>)(this.context, seen.json)
      this.opts.progress.line(`delete    ${r.title}`)
      try {
        // Deleting one resource does not change what the others' reads said: keep them.
        for (const command of commands) await this.execute(command, false)
        done.push({ step, resource: r, action: 'delete', reasons: [], commands })
      } catch (error) {
        if (!(error instanceof Held)) throw error
        pending.add(r.id)
        planned('pending', [error.message])
      }
    }
    return done
  }

  /**
   * Forgets the reads a change to `r` can have made stale: its own describe (and every resource's that
   * reads the same thing: one project IAM policy) and the describes of the resources it `affects`.
   * Called after each command, run or failed: a failed command may have changed something too.
   */
  private forget(step: Step, r: Resource): void {
    // A run of part of a step (rotate-db-password) may leave an affected resource out: it is not read.
    const stale = [r, ...step.resources.filter((o) => r.affects?.includes(o.id))]
    for (const s of stale) this.cache.delete(s.describe(this.context).join('\0'))
  }

  /** A secret's value: made here the first time a managed secret is created, otherwise read (never shown). */
  private async secretValue(v: SecretValue): Promise<string> {
    let value = this.secrets.get(v.secret) ?? this.secrets.get(`${v.secret}#${v.version ?? 'latest'}`)
    if (v.generate) {
      value = randomBytes(32).toString('base64url')
      this.secrets.set(v.secret, value)
    } else if (value === undefined) {
      const r = await this.opts.gcloud.must({
        argv: ['secrets', 'versions', 'access', v.version ?? 'latest', `--secret=${v.secret}`],
      })
      const accessed: AccessedVersion = JSON.parse(r.stdout)
      value = Buffer.from(accessed.payload.data, 'base64').toString('utf8')
      this.secrets.set(`${v.secret}#${v.version ?? 'latest'}`, value)
    }
    this.opts.gcloud.redactor.add(value)
    return value
  }

  /** The command as run: its secret flags written into the flags file it names. */
  private async withSecretFlags(command: Command): Promise<Command> {
    const f = command.secretFlags
    if (!f) return command
    const value = await this.secretValue({
      kind: 'secret',
      secret: f.secret,
      ...(f.version ? { version: f.version } : {}),
    })
    // JSON is YAML, and quotes any character a secret holds (gcloud topic flags-file).
    return { ...command, files: { ...command.files, [f.file]: `${JSON.stringify({ [f.flag]: value })}\n` } }
  }

  /**
   * The placeholders a command still holds. A placeholder is how `plan` shows a value read at run time;
   * in a command that runs it would reach Google as text (an audience of `${BACKEND_SERVICE_ID}` that
   * no token matches), so a real run refuses it instead.
   */
  private unresolved(command: Command): string[] {
    const { stdin, secretFlags } = command
    const text = [
      ...command.argv,
      ...Object.values(command.files ?? {}),
      ...[stdin, secretFlags].flatMap((v) => (v ? [v.secret, v.version ?? ''] : [])),
    ].join('\n')
    return [...this.placeholders].filter((name) => text.includes(`\${${name}}`))
  }

  private async execute(command: Command, invalidate = true): Promise<void> {
    const gcloud = this.opts.gcloud
    const label = `  gcloud ${command.argv.join(' ')}`
    const unresolved = this.unresolved(command)
    if (unresolved.length > 0) {
      throw new DeployError(
        'DEPLOY_ERR_REFUSED',
        `${label.trim()}: needs ${unresolved.join(', ')}, which nothing has read yet: not run with a placeholder`,
      )
    }
    if (invalidate) this.cache.clear()
    const stdin = command.stdin ? await this.secretValue(command.stdin) : undefined
    const runnable = await this.withSecretFlags(command)
    const run = async () => {
      const result = await gcloud.run(runnable, stdin)
      if (result.code !== 0) {
        if (command.pending?.when.test(result.stderr)) throw new Held(command.pending.reason)
        throw gcloud.failure(command, result)
      }
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

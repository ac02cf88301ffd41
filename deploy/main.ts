// npm run deploy -- plan|apply|destroy|render|rotate-db-password|doctor|rollback|run-local --config FILE
import { writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline/promises'
import { parseArgs } from 'node:util'
import { readConfig } from './config.ts'
import { doctor, formatFindings, type OutsideTargets } from './doctor.ts'
import { Engine, type Planned } from './engine.ts'
import { DeployError, reportError } from './errors.ts'
import { Gcloud } from './gcloud.ts'
import { type Output, Progress } from './progress.ts'
import { rollback } from './rollback.ts'
import { rotateDbPassword } from './rotate-db-password.ts'
import { serviceYaml } from './service-yaml.ts'
import { shellScript } from './shell.ts'
import { steps } from './steps/index.ts'
import { serviceValues } from './steps/run.ts'
import { applyWithUpgrade, restoreCommand } from './upgrade.ts'

export interface Io {
  stdout: Output
  stderr: Output
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean }
  env?: NodeJS.ProcessEnv
  /** Test hooks: faster IAM retries and build polling against the fake APIs. */
  tuning?: { iamRetryDelaysMs?: number[]; pollIntervalMs?: number }
  /** Test hook: where doctor's outside checks go (local servers instead of the domain). */
  outside?: OutsideTargets
}

const NO_ACCESS = /cannot run|active account|credentials|auth login|reauthenticat/i

const COMMANDS = ['plan', 'apply', 'destroy', 'render', 'rotate-db-password', 'doctor', 'rollback'] as const
type CommandName = (typeof COMMANDS)[number]
/** destroy finished all it could; Google still holds something a later destroy deletes. */
export const EXIT_PENDING = 3

const USAGE = `usage: deploy <${COMMANDS.join('|')}> --config FILE [options]
  plan     show each step, what exists, and the gcloud commands apply would run
           --format text|sh   (sh: a reviewable bash script)   --offline  (read nothing)
  apply    create or update everything; safe to re-run
  destroy  delete in reverse order; asks first unless --yes; keeps the database, bucket and
           secrets unless --delete-data (then a final backup of the database is kept);
           exit ${EXIT_PENDING}: done except what Google still holds, run it again later
  render   print the Cloud Run service YAML (--out FILE to write it)
  rotate-db-password  a new database password: SQL user, service and secret in one go
  doctor   check the live deployment's security invariants, read-only; exit 0 only if all pass
           --format text|json   --timeout SECONDS (outside checks, default 10)
  rollback all traffic back to the previous ready revision (database migrations are not undone)
  run-local  run the rendered service from its images here, behind the IAP emulator
           (no Google; podman; see run-local --help)
common: --gcloud PATH (default: gcloud on PATH)`

export function formatPlan(planned: Planned[], gcloud: Gcloud): string {
  const lines: string[] = []
  let step = ''
  for (const p of planned) {
    if (p.step.title !== step) {
      step = p.step.title
      lines.push(`== ${step}`)
    }
    lines.push(
      `  ${p.action.padEnd(9)} ${p.resource.title}${p.reasons.length ? ` (${p.reasons.join('; ')})` : ''}`,
    )
    for (const c of p.commands) {
      lines.push(`      gcloud ${gcloud.argv(c).join(' ')}${c.stdin ? '   < (secret on stdin)' : ''}`)
      const f = c.secretFlags
      if (f)
        lines.push(
          `        ${f.file}: ${f.flag} = secret ${f.secret} version ${f.version ?? 'latest'} (not shown)`,
        )
      for (const line of c.review ?? []) lines.push(`        ${line}`)
    }
  }
  const changes = planned.filter((p) => p.action === 'create' || p.action === 'update').length
  lines.push('', changes === 0 ? 'No changes.' : `${changes} resource(s) to create or update.`)
  return `${lines.join('\n')}\n`
}

/** Exit 0, or EXIT_PENDING after listing what Google did not let finish yet. */
function reportPending(progress: Progress, done: Planned[], why: string): number {
  const pending = done.filter((p) => p.action === 'pending')
  if (pending.length === 0) return 0
  progress.line('')
  progress.line(`Pending: ${why}:`)
  for (const p of pending) progress.line(`  ${p.resource.title}: ${p.reasons.join('; ')}`)
  return EXIT_PENDING
}

async function confirm(io: Io, question: string): Promise<boolean> {
  if (!io.stdin?.isTTY) {
    throw new DeployError('DEPLOY_ERR_USAGE', 'destroy needs --yes when standard input is not a terminal')
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream })
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim())
  } finally {
    rl.close()
  }
}

export async function main(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'run-local') return (await import('./run-local/command.ts')).runLocal(argv.slice(1), io)
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n${USAGE}\n`)
    return 2
  }
  const { command, values } = parsed
  try {
    const config = readConfig(values.config)
    const gcloud = new Gcloud({
      project: config.project,
      env: io.env ?? process.env,
      ...(values.gcloud ? { gcloud: values.gcloud } : {}),
      ...(io.tuning?.iamRetryDelaysMs ? { iamRetryDelaysMs: io.tuning.iamRetryDelaysMs } : {}),
    })
    const progress = new Progress(['plan', 'render', 'doctor'].includes(command) ? io.stderr : io.stdout)
    const engine = new Engine(config, {
      gcloud,
      progress,
      offline: values.offline === true,
      ...(io.tuning?.pollIntervalMs !== undefined ? { pollIntervalMs: io.tuning.pollIntervalMs } : {}),
    })
    const all = steps(config)
    if (command === 'plan') {
      let planned: Planned[]
      try {
        planned = await engine.plan(all)
      } catch (error) {
        // No gcloud, or not signed in: still show the plan, without what exists.
        if (!(error instanceof DeployError) || !NO_ACCESS.test(error.message)) throw error
        io.stderr.write(
          `gcloud cannot read the project (${error.message.split('\n').at(-1)}): planning offline\n`,
        )
        planned = await new Engine(config, { gcloud, progress, offline: true }).plan(all)
      }
      io.stdout.write(
        values.format === 'sh' ? shellScript(planned, engine.context) : formatPlan(planned, gcloud),
      )
      return 0
    }
    if (command === 'render') {
      // Read the values the YAML carries (project number, backend service id, password version).
      await engine.learn(all)
      const yaml = serviceYaml(config, serviceValues(engine.context))
      if (values.out) writeFileSync(values.out, yaml)
      else io.stdout.write(yaml)
      return 0
    }
    if (command === 'rotate-db-password') {
      await rotateDbPassword(engine, config, all, progress)
      return 0
    }
    if (command === 'doctor') {
      const outside = { timeoutMs: Number(values.timeout) * 1000, ...io.outside }
      const findings = await doctor(gcloud, config, outside)
      io.stdout.write(formatFindings(findings, values.format === 'json' ? 'json' : 'text'))
      return findings.every((f) => f.verdict === 'pass') ? 0 : 1
    }
    if (command === 'rollback') {
      await rollback(gcloud, config, progress)
      return 0
    }
    if (command === 'apply') {
      const { done, upgrade } = await applyWithUpgrade(engine, gcloud, config, all, progress)
      const f = engine.context.facts
      progress.line('')
      progress.line(`Point DNS: ${config.domain}. A ${f.get('ADDRESS')}`)
      if (f.has('ADDRESS_V6')) progress.line(`Point DNS: ${config.domain}. AAAA ${f.get('ADDRESS_V6')}`)
      progress.line(
        `Certificate: ${f.get('CERTIFICATE_STATUS')} (becomes ACTIVE some minutes after DNS points at the address)`,
      )
      progress.line(`URL: https://${config.domain}/`)
      if (upgrade) {
        progress.line(
          `Upgraded (${upgrade.changed.join('; ')}); previous revision: ${upgrade.previousRevision}`,
        )
        if (upgrade.backupId)
          progress.line(
            `Backup before the upgrade: ${upgrade.backupId} (restore: ${restoreCommand(config, upgrade.backupId)})`,
          )
        progress.line(
          `Back to ${upgrade.previousRevision}: npm run deploy -- rollback --config ${values.config}`,
        )
      }
      progress.line(`Check it: npm run deploy -- doctor --config ${values.config}`)
      return reportPending(
        progress,
        done,
        'Google is not ready for these yet; run the same apply again later',
      )
    }
    const what = values['delete-data']
      ? 'everything, including the database, bucket and secrets'
      : 'everything except data'
    if (
      !values.yes &&
      !(await confirm(io, `Destroy ${what} of ${config.name} in ${config.project}? [y/N] `))
    ) {
      io.stderr.write('Nothing destroyed.\n')
      return 1
    }
    const done = await engine.destroy(all, values['delete-data'] === true)
    return reportPending(
      progress,
      done,
      'Google still holds these; run the same destroy again later to finish',
    )
  } catch (error) {
    return reportError(error, io.stderr)
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', default: 'deploy.config.yaml' },
      format: { type: 'string', default: 'text' },
      offline: { type: 'boolean' },
      yes: { type: 'boolean' },
      'delete-data': { type: 'boolean' },
      out: { type: 'string' },
      gcloud: { type: 'string' },
      timeout: { type: 'string', default: '10' },
    },
  })
  const command = positionals[0]
  if (positionals.length !== 1 || !(COMMANDS as readonly string[]).includes(command as string)) {
    throw new DeployError(
      'DEPLOY_ERR_USAGE',
      `expected one command: ${COMMANDS.join(', ')} (got ${positionals.join(' ') || 'none'})`,
    )
  }
  const formats = command === 'doctor' ? ['text', 'json'] : ['text', 'sh']
  if (!formats.includes(values.format)) {
    throw new DeployError(
      'DEPLOY_ERR_USAGE',
      `--format must be ${formats.join(' or ')} (got ${values.format})`,
    )
  }
  if (!/^[1-9][0-9]{0,2}$/.test(values.timeout)) {
    throw new DeployError(
      'DEPLOY_ERR_USAGE',
      `--timeout must be whole seconds from 1 to 999 (got ${values.timeout})`,
    )
  }
  return { command: command as CommandName, values }
}

/* c8 ignore start -- the process entry; tests call main() and spawn this file once */
if (import.meta.main) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }).then(
    (code) => {
      process.exitCode = code
    },
  )
}
/* c8 ignore stop */

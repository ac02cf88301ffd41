// `rotate-db-password`: a new database password in one command, without locking the app out.
//   1. add a version to the password secret (32 random bytes, on stdin);
//   2. set the SQL user to it and record that version on the secret (the sql-user-password resource);
//   3. replace the service so new instances read that version (DATABASE_PASSWORD is pinned: sm://...#N);
//   4. disable the version the app read before, now that no new instance reads it.
// Between 2 and 3 the running revision keeps its open connections (PostgreSQL checks a password only at
// connect) but a new connection it opens fails until the new revision serves: seconds to a minute.
import type { DeployConfig } from './config.ts'
import type { Engine } from './engine.ts'
import { DeployError } from './errors.ts'
import type { Progress } from './progress.ts'
import { cmd, type Step } from './steps/types.ts'

function only(steps: Step[], ids: Record<string, string>): Step[] {
  return steps
    .filter((s) => s.id in ids)
    .map((s) => ({ ...s, resources: s.resources.filter((r) => r.id === ids[s.id]) }))
}

export async function rotateDbPassword(
  engine: Engine,
  c: DeployConfig,
  all: Step[],
  progress: Progress,
): Promise<void> {
  if (!c.database.enabled) {
    throw new DeployError(
      'DEPLOY_ERR_USAGE',
      'rotate-db-password: this config has no database (database.enabled is false)',
    )
  }
  const secret = c.database.passwordSecret
  await engine.learn(all)
  const applied = engine.context.facts.get('DATABASE_PASSWORD_VERSION')
  if (!applied) {
    throw new DeployError(
      'DEPLOY_ERR_REFUSED',
      `rotate-db-password: ${secret} was never applied to the SQL user ${c.database.user}: run apply first`,
    )
  }
  progress.line(`== Rotate the password of ${c.database.user} (now version ${applied} of ${secret})`)
  await engine.run(
    cmd(['secrets', 'versions', 'add', secret, '--data-file=-'], {
      stdin: { kind: 'secret', secret, generate: true },
    }),
  )
  // Only the newest version changed: read it again, not every fact.
  await engine.learn(only(all, { secrets: `secret/${secret}` }))
  await engine.apply(only(all, { database: 'sql-user-password', run: 'service' }))
  await engine.run(cmd(['secrets', 'versions', 'disable', applied, `--secret=${secret}`]))
  progress.line(
    `Rotated: the SQL user and the service use version ${engine.context.fact('DATABASE_PASSWORD_VERSION')}; version ${applied} is disabled.`,
  )
}

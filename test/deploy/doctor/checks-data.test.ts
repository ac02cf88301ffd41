// The invariants of what the service holds and runs as, over gcloud's answers (live.ts: a correct
// deployment), one answer changed per case. apply-doctor.test.ts runs them against the fake through gcloud.
import t from 'tap'
import type { DeployConfig } from '../../../deploy/config.ts'
import { dataInvariants } from '../../../deploy/doctor/checks-data.ts'
import { evaluate, type Outcome } from '../../../deploy/doctor/invariant.ts'
import { Reads } from '../../../deploy/doctor/reads.ts'
import { logMetrics } from '../../../deploy/steps/monitoring.ts'
import { type Answers, CannedGcloud, cannedConfig, denied, json, notFound } from '../canned-gcloud.ts'
import { app, config, gateway, live, READ, service, sql } from './live.ts'

async function check(id: string, changes: Partial<Answers> = {}, c: DeployConfig = config): Promise<Outcome> {
  const inv = dataInvariants.find((i) => i.id === id)
  if (!inv) throw new Error(`no invariant ${id}`)
  return evaluate(inv, new Reads(new CannedGcloud(live(changes)), c))
}

const SQL_CHECKS = ['sql-private', 'sql-tls', 'sql-backups', 'sql-deletion-protection']
const withSql = (change: (i: ReturnType<typeof sql>) => void) => {
  const i = sql()
  change(i)
  return json(i)
}
const RUN_AS = 'serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'

t.test('a correct deployment passes every data invariant (the fixture is sound)', async (t) => {
  for (const inv of dataInvariants) t.match(await check(inv.id), { verdict: 'pass' }, inv.id)
})

t.test('no check passes or fails on a read it could not do: could-not-check, with the read', async (t) => {
  const none: Answers = Object.fromEntries(
    Object.entries(live()).map(([k]) => [k, denied('cloudsql.instances.get')]),
  )
  for (const inv of dataInvariants) {
    const r = await evaluate(inv, new Reads(new CannedGcloud(none), config))
    t.match(r, { verdict: 'could-not-check', reason: /^cannot read .*: +- Required 'cloudsql/ }, inv.id)
  }
})

t.test('a database that is gone fails every Cloud SQL check, naming the instance', async (t) => {
  for (const id of SQL_CHECKS)
    t.same(await check(id, { [READ.sql]: notFound('fw-db') }), {
      verdict: 'fail',
      reason: 'Cloud SQL instance fw-db does not exist',
    })
})

t.test(
  'the database checks are skipped for a config without a database, the monitoring ones without it',
  async (t) => {
    const off = cannedConfig({ database: { enabled: false }, monitoring: { enabled: false } })
    const reads = new Reads(new CannedGcloud({}), off)
    t.same(
      dataInvariants.filter((inv) => inv.when?.(reads) ?? true).map((inv) => inv.id),
      ['secrets-readable', 'runtime-roles'],
    )
  },
)

t.test('public IPv4 switched on is a FAIL even before Google has assigned the address', async (t) => {
  const on = withSql((i) => {
    i.settings.ipConfiguration.ipv4Enabled = true
    delete (i as { ipAddresses?: unknown }).ipAddresses
  })
  t.same(await check('sql-private', { [READ.sql]: on }), { verdict: 'fail', reason: 'public IPv4 is on' })
})

t.test('a public address Google assigned is named, even with ipv4Enabled reading false', async (t) => {
  const assigned = withSql((i) => {
    i.ipAddresses.push({ type: 'PRIMARY', ipAddress: '35.1.1.1' })
  })
  t.same(await check('sql-private', { [READ.sql]: assigned }), {
    verdict: 'fail',
    reason: 'public IPv4 is on (35.1.1.1)',
  })
})

t.test('TLS: client certificates required passes; sslMode unset accepts unencrypted, a FAIL', async (t) => {
  const certs = withSql((i) => {
    i.settings.ipConfiguration.sslMode = 'TRUSTED_CLIENT_CERTIFICATE_REQUIRED'
  })
  t.match(await check('sql-tls', { [READ.sql]: certs }), { verdict: 'pass' })
  const unset = withSql((i) => {
    delete (i.settings.ipConfiguration as { sslMode?: string }).sslMode
  })
  t.same(await check('sql-tls', { [READ.sql]: unset }), {
    verdict: 'fail',
    reason: 'sslMode is unset: unencrypted connections are accepted',
  })
})

t.test(
  'backups: no backup configuration at all names both problems; retention unknown still passes',
  async (t) => {
    const none = withSql((i) => {
      delete (i.settings as { backupConfiguration?: unknown }).backupConfiguration
    })
    t.same(await check('sql-backups', { [READ.sql]: none }), {
      verdict: 'fail',
      reason: 'automated backups are off; point-in-time recovery is off',
    })
    const unknown = withSql((i) => {
      i.settings.backupConfiguration = {
        enabled: true,
        pointInTimeRecoveryEnabled: true,
      } as typeof i.settings.backupConfiguration
    })
    t.same(await check('sql-backups', { [READ.sql]: unknown }), {
      verdict: 'pass',
      reason: '? backups, ? days of log',
    })
  },
)

t.test('deletion protection: off as configured passes; on against the config fails', async (t) => {
  const relaxed = cannedConfig({ database: { deletionProtection: false } })
  const off = withSql((i) => {
    i.settings.deletionProtectionEnabled = false
  })
  t.same(await check('sql-deletion-protection', { [READ.sql]: off }, relaxed), {
    verdict: 'pass',
    reason: 'deletion protection off (database.deletionProtection: false)',
  })
  t.same(await check('sql-deletion-protection', {}, relaxed), {
    verdict: 'fail',
    reason: 'deletion protection is on, the config says off',
  })
})

t.test('deletion protection off against the config is a FAIL', async (t) => {
  const off = withSql((i) => {
    i.settings.deletionProtectionEnabled = false
  })
  t.same(await check('sql-deletion-protection', { [READ.sql]: off }), {
    verdict: 'fail',
    reason: 'deletion protection is off, the config says on',
  })
})

t.test('secrets: containers without env, or a service without containers, reference none', async (t) => {
  const noEnv = service()
  for (const c of noEnv.spec.template.spec.containers) delete (c as { env?: unknown }).env
  t.same(await check('secrets-readable', { [READ.service]: json(noEnv) }), {
    verdict: 'pass',
    reason: '0 reference(s) readable',
  })
  const bare = service()
  delete (bare.spec.template.spec as { containers?: unknown }).containers
  t.same(await check('secrets-readable', { [READ.service]: json(bare) }), {
    verdict: 'pass',
    reason: '0 reference(s) readable',
  })
})

t.test('secrets: a service that is gone fails, saying run apply', async (t) => {
  t.same(await check('secrets-readable', { [READ.service]: notFound('fw') }), {
    verdict: 'fail',
    reason: 'service fw does not exist (run apply)',
  })
})

t.test(
  'secrets: a version that is gone, or that the runtime account cannot read, fails by name',
  async (t) => {
    t.same(await check('secrets-readable', { [READ.secretVersion]: notFound('1') }), {
      verdict: 'fail',
      reason: 'flowise.JWT_AUTH_TOKEN_SECRET: fw-jwt-auth-token-secret version 1 does not exist',
    })
    t.same(await check('secrets-readable', { [READ.secretPolicy]: notFound('fw-jwt-auth-token-secret') }), {
      verdict: 'fail',
      reason: `flowise.JWT_AUTH_TOKEN_SECRET: ${RUN_AS} cannot read fw-jwt-auth-token-secret`,
    })
  },
)

t.test('secrets: the accessor role granted project-wide is enough', async (t) => {
  const projectWide = json({
    bindings: [{ role: 'roles/secretmanager.secretAccessor', members: [RUN_AS] }],
  })
  t.same(
    await check('secrets-readable', {
      [READ.projectPolicy]: projectWide,
      [READ.secretPolicy]: json({ etag: 'ACAB' }),
    }),
    { verdict: 'pass', reason: '1 reference(s) readable' },
  )
})

t.test(
  'secrets: a service without serviceAccountName runs as the Compute default account, which cannot read them',
  async (t) => {
    // "If you don't specify a service account, Cloud Run links a revision ... to the default service
    // account" (run/docs/securing/service-identity): the deploy's grants to fw-run do not count then.
    const s = service(gateway(), [...app(), { name: 'FROM_SECRET' }])
    delete (s.spec.template.spec as { serviceAccountName?: string }).serviceAccountName
    t.same(await check('secrets-readable', { [READ.service]: json(s) }), {
      verdict: 'fail',
      reason:
        'flowise.JWT_AUTH_TOKEN_SECRET: serviceAccount:123456789012-compute@developer.gserviceaccount.com cannot read fw-jwt-auth-token-secret',
    })
  },
)

t.test('secrets: a reference without #VERSION is checked at latest', async (t) => {
  const s = service(gateway(), [
    { name: 'JWT_AUTH_TOKEN_SECRET', value: 'sm://demo-project/fw-jwt-auth-token-secret' },
  ])
  t.same(
    await check('secrets-readable', {
      [READ.service]: json(s),
      'secrets versions describe latest --secret=fw-jwt-auth-token-secret': json({ state: 'DESTROYED' }),
    }),
    {
      verdict: 'fail',
      reason: 'flowise.JWT_AUTH_TOKEN_SECRET: fw-jwt-auth-token-secret version latest is DESTROYED',
    },
  )
})

t.test('runtime roles: a policy without the account holds none; a policy not found is no PASS', async (t) => {
  t.same(
    await check('runtime-roles', { [READ.projectPolicy]: json({ bindings: [{ role: 'roles/viewer' }] }) }),
    {
      verdict: 'pass',
      reason: '0 role(s): none',
    },
  )
  // Google leaves `bindings` out of a policy that has none.
  t.same(await check('runtime-roles', { [READ.projectPolicy]: json({}) }), {
    verdict: 'pass',
    reason: '0 role(s): none',
  })
  t.same(await check('runtime-roles', { [READ.projectPolicy]: notFound('demo-project') }), {
    verdict: 'could-not-check',
    reason: 'cannot read the IAM policy of project demo-project: not found',
  })
})

t.test('runtime roles: a role beyond the config is named', async (t) => {
  const editor = json({ bindings: [{ role: 'roles/editor', members: [RUN_AS] }] })
  t.same(await check('runtime-roles', { [READ.projectPolicy]: editor }), {
    verdict: 'fail',
    reason: `${RUN_AS} also holds roles/editor`,
  })
})

t.test('log metrics: one gone, one with its filter changed, both named', async (t) => {
  const [refusals, upstream] = logMetrics(config)
  if (!refusals || !upstream) throw new Error('logMetrics')
  t.same(
    await check('log-metrics', {
      [READ.metric(refusals.name)]: notFound(refusals.name),
      [READ.metric(upstream.name)]: json({ ...upstream, filter: 'severity>=ERROR' }),
    }),
    { verdict: 'fail', reason: `missing: ${refusals.name}, ${upstream.name} (filter differs) (run apply)` },
  )
})

t.test(
  'alert policy: none listed, disabled, or not sent to the configured channel, each a FAIL',
  async (t) => {
    const name = 'projects/demo-project/alertPolicies/77'
    const display = 'fw gateway: refusals or upstream failures'
    // gcloud 528 prints an empty list as [] (seen against the fake); an empty answer reads the same.
    for (const none of [json([]), { code: 0, stdout: '', stderr: '' }])
      t.same(await check('alert-policy', { [READ.alertPolicies]: none }), {
        verdict: 'fail',
        reason: `no policy "${display}" (run apply)`,
      })
    t.same(
      await check('alert-policy', {
        [READ.alertPolicies]: json([{ name, displayName: display, enabled: false }]),
      }),
      {
        verdict: 'fail',
        reason: `${name} is disabled`,
      },
    )
    const channel = 'projects/demo-project/notificationChannels/42'
    const withChannel = cannedConfig({ monitoring: { notificationChannel: channel } })
    t.same(await check('alert-policy', {}, withChannel), {
      verdict: 'fail',
      reason: `${name} does not notify ${channel}`,
    })
    const notifying = json([{ name, displayName: display, enabled: true, notificationChannels: [channel] }])
    t.same(await check('alert-policy', { [READ.alertPolicies]: notifying }, withChannel), {
      verdict: 'pass',
      reason: `${name}, to ${channel}`,
    })
  },
)

// Interrupted applies: the fake fails one request at a sampled set of steps (500s, a 409, an IAM policy
// race that outlasts the retries), each re-run continues from where the last stopped, and the end state
// equals an uninterrupted apply's. Sampled, not every step: each re-run costs the reads of the steps
// before it (about 1 s per gcloud call), so the full matrix would take many minutes.
// The same uninterrupted apply is the yardstick for `plan --format sh`: the script, run with bash against
// a third fake, must leave exactly the state `apply` leaves. The run that finishes the interrupted apply
// also carries a config change (drift), so that one read of every step serves both.
import { execFile } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { flowiseConfig, type Harness, harness, normalised } from './harness.ts'

/** Runs the script as a user would (`bash deploy.sh`), with `gcloud` on PATH recording each argv. */
async function runScript(h: Harness, script: string): Promise<{ code: number; stderr: string }> {
  const file = join(h.dir, 'deploy.sh')
  writeFileSync(file, script)
  const bin = join(h.dir, 'bin')
  mkdirSync(bin, { recursive: true })
  symlinkSync(h.recorder, join(bin, 'gcloud'))
  const env = { ...h.env, PATH: `${bin}:${process.env.PATH}` }
  try {
    await promisify(execFile)('bash', [file], { env, maxBuffer: 64 * 1024 * 1024 })
    return { code: 0, stderr: '' }
  } catch (error) {
    const e = error as { code: number; stderr: string }
    return { code: e.code, stderr: e.stderr }
  }
}

t.setTimeout(1_200_000)

const FAULTS = [
  // secrets: the secret is created but adding its first version fails -> re-run adds a version.
  { method: 'POST', pathIncludes: '/secrets/fw-jwt-auth-token-secret:addVersion', status: 500, times: 9 },
  // IAM: a policy write keeps racing (409 ABORTED) past the retries.
  { method: 'POST', pathIncludes: '/secrets/fw-token-hash-secret:setIamPolicy', status: 409, times: 3 },
  // Cloud SQL: the user exists but recording its password version fails -> re-run sets the password
  // again from the stored secret and records it.
  { method: 'PATCH', pathIncludes: '/secrets/fw-db-password', status: 500, times: 9 },
  // Armor: the policy exists with only some rules.
  { method: 'POST', pathIncludes: '/securityPolicies/fw-armor/addRule', status: 500, times: 9 },
  // Cloud Run: the create is refused as a conflict.
  { method: 'POST', pathIncludes: '/namespaces/demo-project/services', status: 409, times: 1 },
  // Load balancer: the HTTPS forwarding rule fails.
  { method: 'POST', pathIncludes: '/global/forwardingRules', status: 500, times: 9 },
]

t.test('every sampled failure stops with the command and its stderr; re-runs converge', async (t) => {
  const interrupted = await harness()
  const clean = await harness()
  const scripted = await harness()
  t.teardown(async () => {
    await interrupted.close()
    await clean.close()
    await scripted.close()
  })
  // The yardsticks apply the preset as shipped; the interrupted runs apply it with deletion protection
  // off, so that the run that finishes them is also a config change (see the end).
  const config = (h: typeof clean) => h.writeConfig('flowise.yaml', flowiseConfig(h))
  const cleanConfig = config(clean)
  const interruptedConfig = interrupted.writeConfig(
    'unprotected.yaml',
    flowiseConfig(interrupted, { database: { deletionProtection: false } }),
  )
  const plan = await scripted.deploy(['plan', '--offline', '--format', 'sh', '--config', config(scripted)])
  t.equal(plan.code, 0, plan.stderr)

  const [cleanRun, scriptRun] = await Promise.all([
    clean.deploy(['apply', '--config', cleanConfig]),
    runScript(scripted, plan.stdout),
    (async () => {
      for (const fault of FAULTS) {
        interrupted.fake.inject(fault)
        const r = await interrupted.deploy(['apply', '--config', interruptedConfig])
        t.equal(r.code, 1, `stops at ${fault.pathIncludes}`)
        t.match(
          r.stderr,
          /^DEPLOY_ERR_GCLOUD: command failed \(exit 1\): gcloud .* --project=demo-project/,
          'names the command',
        )
        t.match(r.stderr, new RegExp(`injected ${fault.status}`), "carries gcloud's stderr")
        interrupted.fake.faults.length = 0
      }
    })(),
  ])
  t.equal(cleanRun.code, 0, cleanRun.stderr)
  t.equal(scriptRun.code, 0, scriptRun.stderr)
  t.same(normalised(scripted.fake), normalised(clean.fake), 'plan --format sh leaves the state apply leaves')
  // The script is the plan from empty: every create, decided before anything exists. apply decides each
  // resource on reads, reused within a step until a change makes them stale (Resource.affects). So apply
  // makes the script's changes but one pair: the user's create records the password it set, apply reads
  // that record again (declared), and does not set the password a second time as the script does. A
  // stale read there would repeat the pair; a stale read elsewhere would repeat or skip a create.
  const changes = (h: Harness) =>
    h.fake.mutations().map((r) => `${r.method} ${r.path.replace(/\d+4242/g, 'ID')}`)
  const applied = changes(clean)
  const onlyScripted = changes(scripted)
  for (const c of applied) {
    const i = onlyScripted.indexOf(c)
    if (i >= 0) onlyScripted.splice(i, 1)
  }
  t.same(
    onlyScripted.sort(),
    [
      'PATCH /secretmanager/v1/projects/demo-project/secrets/fw-db-password',
      'PUT /sql/v1beta4/projects/demo-project/instances/fw-db/users',
    ],
    'the script sets the password again; apply does not',
  )
  t.equal(applied.length, changes(scripted).length - 2, 'apply makes no change the script does not')
  // The run that finishes the interrupted apply also changes the config (deletion protection off -> on):
  // a config change is an update, not a re-create. One run proves both; each costs a read of every step.
  const before = interrupted.fake.requests.length
  const last = await interrupted.deploy(['apply', '--config', config(interrupted)])
  t.equal(last.code, 0, last.stderr)
  t.match(last.stdout, /update +Cloud SQL instance fw-db \(deletion protection differs\)/)
  const sqlInstance = (r: { path: string }) => /\/instances\/fw-db$/.test(r.path)
  const finishing = interrupted.fake.requests.slice(before)
  t.same(
    finishing
      .filter((r) => r.method === 'PATCH')
      .map(
        (r) =>
          (r.body as { settings: { deletionProtectionEnabled: boolean } }).settings.deletionProtectionEnabled,
      ),
    [true],
    'one PATCH, of the instance',
  )
  t.notOk(
    finishing.some(
      (r) => ['POST', 'DELETE'].includes(r.method) && (sqlInstance(r) || /\/instances$/.test(r.path)),
    ),
    'the instance is neither deleted nor created again',
  )

  t.same(normalised(interrupted.fake), normalised(clean.fake), 'same end state as an uninterrupted apply')
  t.equal(
    interrupted.fake.payloads.get('sql-password:demo-project/fw-db/flowise'),
    interrupted.fake.payloads.get('demo-project/fw-db-password/1'),
    'the password set after the interruption is the stored secret',
  )
  t.equal(
    interrupted.fake.payloads.has('demo-project/fw-jwt-auth-token-secret/2'),
    false,
    'exactly one version added',
  )
  const secrets = [...interrupted.fake.payloads.values(), ...scripted.fake.payloads.values()]
  for (const h of [interrupted, clean, scripted]) {
    const argv = h.argvLog().flat().join('\n')
    t.ok(
      secrets.every((s) => !argv.includes(s)),
      'no secret in any argv',
    )
  }
})

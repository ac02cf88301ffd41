// Interrupted applies: the fake fails one request at a sampled set of steps (500s, a 409, an IAM policy
// race that outlasts the retries), each re-run continues from where the last stopped, and the end state
// equals an uninterrupted apply's. Sampled, not every step: each re-run costs the reads of the steps
// before it (about 1 s per gcloud call), so the full matrix would take many minutes.
import t from 'tap'
import { flowiseConfig, harness, normalised } from './harness.ts'

t.setTimeout(1_200_000)

const FAULTS = [
  // secrets: the secret is created but adding its first version fails -> re-run adds a version.
  { method: 'POST', pathIncludes: '/secrets/fw-jwt-auth-token-secret:addVersion', status: 500, times: 9 },
  // IAM: a policy write keeps racing (409 ABORTED) past the retries.
  { method: 'POST', pathIncludes: '/secrets/fw-token-hash-secret:setIamPolicy', status: 409, times: 3 },
  // Cloud SQL: the user exists but setting its password fails -> re-run sets it from the stored secret.
  { method: 'PUT', pathIncludes: '/instances/fw-db/users', status: 500, times: 9 },
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
  t.teardown(async () => {
    await interrupted.close()
    await clean.close()
  })
  const config = (h: typeof clean) =>
    h.writeConfig('flowise.yaml', flowiseConfig(h, { database: { deletionProtection: false } }))
  const cleanConfig = config(clean)
  const interruptedConfig = config(interrupted)

  const [cleanRun] = await Promise.all([
    clean.deploy(['apply', '--config', cleanConfig]),
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
  const last = await interrupted.deploy(['apply', '--config', interruptedConfig])
  t.equal(last.code, 0, last.stderr)

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
  const secrets = [...interrupted.fake.payloads.values()]
  for (const h of [interrupted, clean]) {
    const argv = h.argvLog().flat().join('\n')
    t.ok(
      secrets.every((s) => !argv.includes(s)),
      'no secret in any argv',
    )
  }

  // Drift: a config change is an update, not a re-create (deletion protection off -> on).
  const protectedConfig = interrupted.writeConfig('protected.yaml', flowiseConfig(interrupted))
  const before = interrupted.fake.requests.length
  const drift = await interrupted.deploy(['apply', '--config', protectedConfig])
  t.equal(drift.code, 0, drift.stderr)
  t.match(drift.stdout, /update +Cloud SQL instance fw-db \(deletion protection differs\)/)
  const patches = interrupted.fake.requests.slice(before).filter((r) => r.method === 'PATCH')
  t.same(
    patches.map((r) => (r.body as any).settings.deletionProtectionEnabled),
    [true],
  )
})

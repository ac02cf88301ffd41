// doctor against the fake: a correct deployment passes every invariant, and each invariant broken (seeded
// misconfigurations, undone after each subtest; see the runs below) fails with a line that names it. The
// outside checks go to local servers standing in for the load balancer, IAP and the run.app URL.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { flowiseConfig, type Harness, harness } from './harness.ts'

t.setTimeout(1_800_000)
// About 30 gcloud reads per doctor run, six at a time: seconds alone, minutes on a loaded machine.
const SLOW = { timeout: 600_000 }

let h: Harness
let config: string
const answers = {
  https: { status: 302, location: 'https://accounts.google.com/o/oauth2/v2/auth?client_id=x' },
  runApp: { status: 404, location: '' },
}
const servers: http.Server[] = []
const outside = { http: '', https: '', runApp: '', timeoutMs: 2000 }

async function serve(answer: () => { status: number; location: string }): Promise<string> {
  const server = http.createServer((_req, res) => {
    const a = answer()
    res.writeHead(a.status, a.location ? { location: a.location } : {})
    res.end('hello from the app')
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
}

t.before(async () => {
  h = await harness()
  config = h.writeConfig(
    'doctor.yaml',
    flowiseConfig(h, { allowedCidrs: ['198.51.100.0/24', '203.0.113.0/24'], trustProxyHops: 2 }),
  )
  const applied = await h.deploy(['apply', '--config', config])
  if (applied.code !== 0) throw new Error(applied.stderr)
  // DNS points at the address and Google has provisioned the certificate (not modelled: timing).
  const cert = h.fake.resources.get('compute:projects/demo-project/global/sslCertificates/fw-cert')
  cert.managed.status = 'ACTIVE'
  outside.http = await serve(() => ({ status: 301, location: 'https://flowise.example.com/' }))
  outside.https = await serve(() => answers.https)
  outside.runApp = await serve(() => answers.runApp)
})
t.teardown(async () => {
  for (const s of servers) s.close()
  await h?.close()
})

async function doctor(format = 'text') {
  const { main } = await import('../../deploy/main.ts')
  let stdout = ''
  let stderr = ''
  const code = await main(['doctor', '--config', config, '--format', format, '--gcloud', h.recorder], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: h.env,
    outside,
  })
  return { code, stdout, stderr }
}

// The fake's stored resources (API shapes), as far as the subtests below change them; apply made them all.
interface StoredService {
  metadata: { annotations: Record<string, string> }
  spec: { template: { spec: { containers: { name: string; env: { name: string; value?: string }[] }[] } } }
  status: { url?: string; traffic: { revisionName: string; percent: number }[] }
}
interface StoredPolicy {
  bindings: { role: string; members: string[] }[]
}
interface StoredBackend {
  iap: { enabled: boolean }
  securityPolicy?: string
}
interface StoredSql {
  ipAddresses: { type: string; ipAddress: string }[]
  settings: {
    ipConfiguration: { ipv4Enabled: boolean; sslMode: string }
    backupConfiguration: { pointInTimeRecoveryEnabled: boolean }
    deletionProtectionEnabled: boolean
  }
}
interface StoredArmor {
  rules: { priority: number; action: string; match?: { config?: { srcIpRanges?: string[] } } }[]
}

/** Changes a stored resource for one subtest, and puts it back afterwards. */
function seed<R>(t: Test, key: string, change: (r: R) => void): void {
  const before = structuredClone(h.fake.resources.get(key))
  change(h.fake.resources.get(key))
  t.teardown(() => {
    h.fake.resources.set(key, before)
  })
}

const svc = 'run:demo-project/fw'
const backend = 'compute:projects/demo-project/global/backendServices/fw-backend'
const sql = 'sql:demo-project/fw-db'

/** The element a subtest changes; the subtest fails here when the fake does not hold it. */
function found<T>(x: T | undefined, what: string): T {
  if (x === undefined) throw new Error(`not in the fake: ${what}`)
  return x
}
function gatewayVar(s: StoredService, name: string): { name: string; value?: string } {
  const gateway = s.spec.template.spec.containers.find((c) => c.name === 'gateway')
  return found(
    gateway?.env.find((e) => e.name === name),
    `the gateway's ${name}`,
  )
}

t.test(
  'a correct deployment passes every invariant, read-only, and never shows a secret',
  SLOW,
  async (t) => {
    const mutationsBefore = h.fake.mutations().length
    const r = await doctor()
    t.equal(r.code, 0, r.stdout)
    t.notMatch(r.stdout, /^(FAIL|\?\?\?\?)/m)
    for (const id of [
      'run-ingress',
      'run-default-url',
      'run-invoker',
      'iap-enabled',
      'iap-accessors',
      'armor-attached',
      'armor-default-deny',
      'armor-allow-rules',
      'tls-policy',
      'certificate',
      'gateway-audience',
      'gateway-network',
      'revision-serving',
      'sql-private',
      'sql-tls',
      'sql-backups',
      'sql-deletion-protection',
      'secrets-readable',
      'runtime-roles',
      'log-metrics',
      'alert-policy',
      'outside-http-redirect',
      'outside-sign-in',
      'outside-run-app',
    ]) {
      t.match(r.stdout, new RegExp(`^PASS  ${id}: `, 'm'), id)
    }
    t.match(r.stdout, /24 passed, 0 failed, 0 could not be checked/)
    t.equal(h.fake.mutations().length, mutationsBefore, 'doctor changed nothing')
    const argv = h.argvLog().slice(-60).flat()
    t.notOk(argv.includes('access'), 'no secret value was ever read')
    for (const value of h.fake.payloads.values()) t.notOk(r.stdout.includes(value), 'no secret value shown')

    const json = JSON.parse((await doctor('json')).stdout)
    t.equal(json.ok, true)
    t.equal(json.findings.length, 24)
    t.match(json.findings[0], { id: 'run-ingress', verdict: 'pass', reason: String })
  },
)

/** id, what is broken, the reason doctor must give, the stored resource it changes, the change. */
const broken: [string, string, RegExp, string, (t: Test) => void][] = [
  [
    'run-ingress',
    'ingress all',
    /ingress is all/,
    svc,
    (t) =>
      seed(t, svc, (s: StoredService) => {
        s.metadata.annotations['run.googleapis.com/ingress'] = 'all'
      }),
  ],
  [
    'run-default-url',
    'the run.app URL on',
    /has a run\.app URL/,
    svc,
    (t) =>
      seed(t, svc, (s: StoredService) => {
        delete s.metadata.annotations['run.googleapis.com/default-url-disabled']
        s.status.url = 'https://fw-123456789012.run.app'
      }),
  ],
  [
    'run-invoker',
    'allUsers may invoke',
    /public members are bound: allUsers/,
    'policy:run/demo-project/fw',
    (t) =>
      seed(t, 'policy:run/demo-project/fw', (p: StoredPolicy) => {
        p.bindings.push({ role: 'roles/run.invoker', members: ['allUsers'] })
      }),
  ],
  [
    'iap-enabled',
    'IAP switched off for a test',
    /IAP is off/,
    backend,
    (t) =>
      seed(t, backend, (b: StoredBackend) => {
        b.iap.enabled = false
      }),
  ],
  [
    'armor-attached',
    'Cloud Armor detached',
    /security policy is none/,
    backend,
    (t) =>
      seed(t, backend, (b: StoredBackend) => {
        delete b.securityPolicy
      }),
  ],
  [
    'gateway-audience',
    'a stale audience in the gateway',
    /IAP_AUDIENCE is \/projects\/1\/global\/backendServices\/1/,
    svc,
    (t) =>
      seed(t, svc, (s: StoredService) => {
        gatewayVar(s, 'IAP_AUDIENCE').value = '/projects/1/global/backendServices/1'
      }),
  ],
  [
    'gateway-network',
    'TRUST_PROXY_HOPS edited by hand',
    /TRUST_PROXY_HOPS is 1 \(config: 2\)/,
    svc,
    (t) =>
      seed(t, svc, (s: StoredService) => {
        gatewayVar(s, 'TRUST_PROXY_HOPS').value = '1'
      }),
  ],
  [
    'revision-serving',
    'traffic pinned to an old revision',
    /serves 0%/,
    svc,
    (t) =>
      seed(t, svc, (s: StoredService) => {
        s.status.traffic = [{ revisionName: 'fw-00000-old', percent: 100 }]
      }),
  ],
  [
    'sql-private',
    'a public IP on the database',
    /public IPv4 is on \(35\.1\.1\.1\)/,
    sql,
    (t) =>
      seed(t, sql, (i: StoredSql) => {
        i.settings.ipConfiguration.ipv4Enabled = true
        i.ipAddresses.push({ type: 'PRIMARY', ipAddress: '35.1.1.1' })
      }),
  ],
  [
    'sql-tls',
    'unencrypted connections allowed',
    /sslMode is ALLOW_UNENCRYPTED_AND_ENCRYPTED/,
    sql,
    (t) =>
      seed(t, sql, (i: StoredSql) => {
        i.settings.ipConfiguration.sslMode = 'ALLOW_UNENCRYPTED_AND_ENCRYPTED'
      }),
  ],
  [
    'sql-backups',
    'point-in-time recovery off',
    /point-in-time recovery is off/,
    sql,
    (t) =>
      seed(t, sql, (i: StoredSql) => {
        i.settings.backupConfiguration.pointInTimeRecoveryEnabled = false
      }),
  ],
  [
    'sql-deletion-protection',
    'deletion protection off',
    /deletion protection is off, the config says on/,
    sql,
    (t) =>
      seed(t, sql, (i: StoredSql) => {
        i.settings.deletionProtectionEnabled = false
      }),
  ],
  [
    'certificate',
    'a certificate still provisioning',
    /PROVISIONING/,
    'compute:projects/demo-project/global/sslCertificates/fw-cert',
    (t) =>
      seed(
        t,
        'compute:projects/demo-project/global/sslCertificates/fw-cert',
        (c: { managed: { status: string } }) => {
          c.managed.status = 'PROVISIONING'
        },
      ),
  ],
  [
    'tls-policy',
    'the HTTPS proxy without its SSL policy',
    /no SSL policy/,
    'compute:projects/demo-project/global/targetHttpsProxies/fw-https-proxy',
    (t) =>
      seed(
        t,
        'compute:projects/demo-project/global/targetHttpsProxies/fw-https-proxy',
        (p: { sslPolicy?: string }) => {
          delete p.sslPolicy
        },
      ),
  ],
  [
    'iap-accessors',
    'an accessor added by hand',
    /not in the config: user:mallory@example\.com/,
    'policy:iap/projects/123456789012/iap_web/compute/services/fw-backend',
    (t) =>
      seed(t, 'policy:iap/projects/123456789012/iap_web/compute/services/fw-backend', (p: StoredPolicy) => {
        found(
          p.bindings.find((b) => b.role === 'roles/iap.httpsResourceAccessor'),
          'the accessor binding',
        ).members.push('user:mallory@example.com')
      }),
  ],
  [
    'armor-default-deny',
    'the default rule allows',
    /default rule is allow/,
    'compute:projects/demo-project/global/securityPolicies/fw-armor',
    (t) =>
      seed(t, 'compute:projects/demo-project/global/securityPolicies/fw-armor', (p: StoredArmor) => {
        found(
          p.rules.find((x) => x.priority === 2147483647),
          'the default rule',
        ).action = 'allow'
      }),
  ],
  [
    'armor-allow-rules',
    'a range allowed by hand',
    /allowed but not in the config: 0\.0\.0\.0\/0/,
    'compute:projects/demo-project/global/securityPolicies/fw-armor',
    (t) =>
      seed(t, 'compute:projects/demo-project/global/securityPolicies/fw-armor', (p: StoredArmor) => {
        p.rules.push({ priority: 5, action: 'allow', match: { config: { srcIpRanges: ['0.0.0.0/0'] } } })
      }),
  ],
  [
    'secrets-readable',
    'a disabled secret version',
    /fw-jwt-auth-token-secret version latest is DISABLED/,
    'secret-version:demo-project/fw-jwt-auth-token-secret/1',
    (t) =>
      seed(t, 'secret-version:demo-project/fw-jwt-auth-token-secret/1', (v: { state: string }) => {
        v.state = 'DISABLED'
      }),
  ],
  [
    'runtime-roles',
    'Editor granted to the runtime account',
    /also holds roles\/editor/,
    'policy:project/demo-project',
    (t) =>
      seed(t, 'policy:project/demo-project', (p: StoredPolicy) => {
        p.bindings.push({
          role: 'roles/editor',
          members: ['serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'],
        })
      }),
  ],
  [
    'outside-sign-in',
    'the app answering without sign-in',
    /answered 200 without sign-in/,
    'outside:https',
    (t) => {
      answers.https = { status: 200, location: '' }
      t.teardown(() => {
        answers.https = { status: 302, location: 'https://accounts.google.com/o/oauth2/v2/auth?client_id=x' }
      })
    },
  ],
  [
    'outside-run-app',
    'the run.app URL serving',
    /answered 200: the service is reachable without the load balancer/,
    'outside:run.app',
    (t) => {
      answers.runApp = { status: 200, location: '' }
      t.teardown(() => {
        answers.runApp = { status: 404, location: '' }
      })
    },
  ],
]

// About 30 gcloud reads a doctor run: the cases share runs. A run never holds two changes to one
// resource, nor two checks of one family (run-*, with revision-serving and the outside checks, which
// read the same service; iap-*; armor-*; sql-*; gateway-*), so one seeded change cannot hide behind
// another's FAIL line: each run still shows every change failing its own check and nothing else.
const family = (id: string) => (/^(outside|revision)-/.test(id) ? 'run' : (id.split('-')[0] as string))
const runs: (typeof broken)[] = []
for (const c of broken) {
  const run = runs.find((r) => !r.some((o) => o[3] === c[3] || family(o[0]) === family(c[0])))
  if (run) run.push(c)
  else runs.push([c])
}

for (const run of runs) {
  t.test(run.map(([id, what]) => `${what}: ${id} fails and says why`).join('; '), SLOW, async (t) => {
    for (const [, , , , change] of run) change(t)
    const r = await doctor()
    t.equal(r.code, 1)
    for (const [id, , reason] of run)
      t.match(r.stdout, new RegExp(`^FAIL  ${id}: .*${reason.source}`, 'm'), id)
    t.same(
      r.stdout
        .match(/^FAIL {2}[a-z-]+/gm)
        ?.map((l) => l.slice(6))
        .sort(),
      run.map(([id]) => id).sort(),
      `only these fail:\n${r.stdout}`,
    )
  })
}

// The Flowise preset end to end against the fake APIs with the real gcloud, as a deployer holding exactly
// the documented roles: a full apply from empty, what was really sent, an unchanged re-apply, plan (text
// and sh), a revision that fails and is retried, a password rotation, render, and destroy with and without
// data (refusals first, a final backup, the peering Google holds for days). One fake is shared by the
// subtests, in order, so that every gcloud call (about a second each) is paid once.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { DEPLOYER_ROLES } from '../../deploy/deployer-roles.ts'
import type { Service } from '../../deploy/service-yaml.ts'
import type { Binding } from '../../deploy/steps/iam.ts'
import { loadConfig } from '../../proxy/config.ts'
import { CIDRS_23, flowiseConfig, type Harness, harness } from './harness.ts'

// About 4 minutes on an idle 2-core machine; generous for a loaded one.
t.setTimeout(1_200_000)

let h: Harness
let config: string
let applied = { code: -1, stdout: '', stderr: '' }
t.before(async () => {
  h = await harness({ callerRoles: DEPLOYER_ROLES.map((r) => r.role) })
  config = h.writeConfig('flowise.yaml', flowiseConfig(h))
})
t.teardown(() => h?.close())

const secretValues = () =>
  [...h.fake.payloads.entries()].filter(([k]) => !k.startsWith('sql-password:')).map(([, v]) => v)
const bodies = () => h.fake.requests.map((r) => r.raw).join('\n')
const svcKey = 'run:demo-project/fw'
type Container = Service['spec']['template']['spec']['containers'][number]
const env = (c: Container | undefined) => Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]))
const containers = () => h.fake.resources.get(svcKey).spec.template.spec.containers as Container[]

/** The service as the deploy last sent it to the Cloud Run API. */
function serviceBody(): Service {
  const puts = h.fake.requests.filter(
    (r) => /\/services(\/fw)?$/.test(r.path) && ['POST', 'PUT'].includes(r.method),
  )
  return puts.at(-1)?.body as Service
}

t.test(
  'a first revision that fails stops the apply with its message; the next apply retries it',
  async (t) => {
    h.fake.revisionFailures.push(
      'The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable.',
    )
    const failed = await h.deploy(['apply', '--config', config])
    t.equal(failed.code, 1, failed.stderr)
    t.match(failed.stdout, /gcloud builds submit .*: done in \d+ s/, 'long steps report elapsed time')
    t.match(
      failed.stderr,
      /gcloud run services replace .*\n.*Revision 'fw-00001-abc' is not ready and cannot serve traffic/s,
    )
    // The spec matches what was applied, but the service does not serve: the next apply replaces it again.
    const r = await h.deploy(['apply', '--config', config])
    applied = r
    t.equal(r.code, 0, r.stderr)
    t.match(
      r.stdout,
      /update +Cloud Run service fw \(not ready: Revision 'fw-00001-abc' is not ready and cannot serve traffic\. .*; revision fw-00001-abc is not the latest ready one \(none\)\)/,
    )
    t.equal(h.fake.resources.get(svcKey).status.latestReadyRevisionName, 'fw-00002-abc')
  },
)

t.test('everything exists, as a deployer with the documented roles only, in a valid order', async (t) => {
  // The fake refuses dangling references, a service account or peering that does not exist yet, a tier the
  // edition does not take, a user without a password, a build without its own logged account, and acting
  // as an account without Service Account User: success means the order and every request are right.
  t.same(
    h.fake.requests.filter((q) => q.status >= 400 && q.method !== 'GET'),
    [],
    'no refused mutation',
  )
  const r = applied
  t.match(r.stdout, /Point DNS: flowise\.example\.com\. A 34\.120\.7\.\d+/)
  t.match(
    r.stdout,
    /Point DNS: flowise\.example\.com\. AAAA 2600:1901:0:\d+::/,
    'IPv6 ranges get an IPv6 address',
  )
  t.match(r.stdout, /Certificate: PROVISIONING/)

  const keys = Object.keys(h.fake.snapshot())
  for (const k of [
    'compute:projects/demo-project/global/forwardingRules/fw-https-rule',
    'compute:projects/demo-project/global/forwardingRules/fw-http-rule',
    'compute:projects/demo-project/global/forwardingRules/fw-https-rule-v6',
    'compute:projects/demo-project/global/forwardingRules/fw-http-rule-v6',
    'compute:projects/demo-project/global/urlMaps/fw-http-redirect',
    'compute:projects/demo-project/regions/europe-west1/networkEndpointGroups/fw-neg',
    'sql-db:demo-project/fw-db/flowise',
    'bucket:demo-project-fw-files',
    'ar-tag:demo-project/europe-west1/fw/gateway/0.1.0',
    'ar-tag:demo-project/europe-west1/fw/flowise/3.1.4',
  ]) {
    t.ok(keys.includes(k), k)
  }
  const compute = (path: string) => h.fake.resources.get(`compute:projects/demo-project/global/${path}`)
  t.same(compute('urlMaps/fw-http-redirect').defaultUrlRedirect, {
    httpsRedirect: true,
    redirectResponseCode: 'MOVED_PERMANENTLY_DEFAULT',
  })
  const bs = compute('backendServices/fw-backend')
  t.equal(bs.loadBalancingScheme, 'EXTERNAL_MANAGED')
  t.equal(bs.iap.enabled, true)
  t.match(bs.securityPolicy, /\/securityPolicies\/fw-armor$/)
  for (const rule of ['fw-https-rule', 'fw-http-rule', 'fw-https-rule-v6', 'fw-http-rule-v6']) {
    t.equal(compute(`forwardingRules/${rule}`).loadBalancingScheme, 'EXTERNAL_MANAGED')
  }
  t.match(compute('forwardingRules/fw-https-rule-v6').IPAddress, /\/addresses\/fw-ipv6$/)
  t.equal(compute('addresses/fw-ipv6').ipVersion, 'IPV6')
  // TLS 1.0/1.1 refused at the load balancer: the proxy carries a MODERN policy with TLS 1.2 at least.
  t.match(compute('targetHttpsProxies/fw-https-proxy').sslPolicy, /\/sslPolicies\/fw-ssl-policy$/)
  t.match(compute('sslPolicies/fw-ssl-policy'), { profile: 'MODERN', minTlsVersion: 'TLS_1_2' })

  const sql = h.fake.resources.get('sql:demo-project/fw-db')
  t.match(sql.settings, {
    edition: 'ENTERPRISE',
    tier: 'db-g1-small',
    availabilityType: 'ZONAL',
    deletionProtectionEnabled: true,
    retainBackupsOnDelete: true,
    ipConfiguration: {
      sslMode: 'ENCRYPTED_ONLY',
      ipv4Enabled: false,
      serverCaMode: 'GOOGLE_MANAGED_INTERNAL_CA',
    },
    backupConfiguration: {
      enabled: true,
      pointInTimeRecoveryEnabled: true,
      transactionLogRetentionDays: 7,
      backupRetentionSettings: { retainedBackups: 14 },
    },
  })
  // The user is created with the secret's first version (Cloud SQL refuses a PostgreSQL user without one).
  t.equal(
    h.fake.payloads.get('sql-password:demo-project/fw-db/flowise'),
    h.fake.payloads.get('demo-project/fw-db-password/1'),
  )
  t.match(h.fake.resources.get('secret:demo-project/fw-db-password').labels, {
    'applied-to-sql-user': 'fw-db',
    'applied-version': '1',
  })

  // Builds run as the deploy's own build account, logging to Cloud Logging, with exactly its grants.
  const builds = h.fake.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/builds'))
  t.equal(builds.length, 2)
  for (const b of builds) {
    t.match(b.body, {
      serviceAccount: 'projects/demo-project/serviceAccounts/fw-build@demo-project.iam.gserviceaccount.com',
      options: { logging: 'CLOUD_LOGGING_ONLY' },
      source: { storageSource: { bucket: 'demo-project-fw-build-src' } },
    })
  }
  const build = 'serviceAccount:fw-build@demo-project.iam.gserviceaccount.com'
  t.same(h.fake.resources.get('policy:ar/demo-project/europe-west1/fw').bindings, [
    { role: 'roles/artifactregistry.writer', members: [build] },
  ])
  t.same(h.fake.resources.get('policy:bucket/demo-project-fw-build-src').bindings, [
    { role: 'roles/storage.objectViewer', members: [build] },
  ])
})

t.test('23 CIDRs become 3 Armor allow rules of at most 10 ranges, default deny-403', async (t) => {
  const added = h.fake.requests
    .filter((r) => r.path.endsWith('/securityPolicies/fw-armor/addRule'))
    .map((r) => r.body as { priority: number; action: string; match: { config: { srcIpRanges: string[] } } })
  t.same(
    added.map((r) => r.priority),
    [1000, 1001, 1002],
  )
  t.same(
    added.flatMap((r) => r.match.config.srcIpRanges),
    CIDRS_23,
  )
  t.ok(added.every((r) => r.action === 'allow'))
  const patched = h.fake.requests.find((r) => r.path.endsWith('/fw-armor/patchRule'))
  t.same(patched?.query.priority, '2147483647')
  t.equal((patched?.body as { action?: string } | undefined)?.action, 'deny(403)')
})

t.test('the Cloud Run service body', async (t) => {
  const svc = serviceBody()
  t.match(svc.metadata.annotations, {
    'run.googleapis.com/ingress': 'internal-and-cloud-load-balancing',
    'run.googleapis.com/default-url-disabled': 'true',
    'run.googleapis.com/launch-stage': 'BETA',
  })
  t.notOk(h.fake.resources.get(svcKey).status.url, 'no run.app URL exists')
  const tpl = svc.spec.template
  const all = tpl.spec.containers
  t.same(
    all.filter((c) => (c.ports ?? []).length > 0).map((c) => c.name),
    ['gateway'],
    'exactly one container with ports',
  )
  t.same(JSON.parse(String(tpl.metadata.annotations['run.googleapis.com/container-dependencies'])), {
    gateway: ['flowise'],
  })
  const flowise = all.find((c) => c.name === 'flowise')
  t.same(flowise?.startupProbe.httpGet, { path: '/api/v1/ping', port: 3000 })
  t.equal(tpl.spec.timeoutSeconds, 3600)
  t.equal(tpl.spec.serviceAccountName, 'fw-run@demo-project.iam.gserviceaccount.com')
  t.match(tpl.metadata.annotations, {
    'autoscaling.knative.dev/maxScale': '1',
    'run.googleapis.com/cloudsql-instances': 'demo-project:europe-west1:fw-db',
    'run.googleapis.com/vpc-access-egress': 'private-ranges-only',
  })

  const bsId = h.fake.resources.get('compute:projects/demo-project/global/backendServices/fw-backend').id
  const g = env(all.find((c) => c.name === 'gateway'))
  t.equal(
    g.IAP_AUDIENCE,
    `/projects/${h.fake.projectNumber}/global/backendServices/${bsId}`,
    'first revision has the real audience',
  )
  t.equal(g.ALLOWED_CIDRS, CIDRS_23.join(','))
  t.equal(g.TRUST_PROXY_HOPS, '2')
  t.notOk('PORT' in g, 'PORT is left to Cloud Run')
  t.notOk('IAP_DISABLED' in g)
  t.doesNotThrow(() => loadConfig(g), 'the gateway accepts its environment as deployed')
  const f = env(flowise)
  t.match(f, {
    DATABASE_TYPE: 'postgres',
    DATABASE_HOST: '/cloudsql/demo-project:europe-west1:fw-db',
    DATABASE_PORT: '5432',
    DATABASE_PASSWORD: 'sm://demo-project/fw-db-password#1',
    HOST: '127.0.0.1',
    STORAGE_TYPE: 'gcs',
    GOOGLE_CLOUD_STORAGE_BUCKET_NAME: 'demo-project-fw-files',
    GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS: 'true',
    FLOWISE_SECRETKEY_OVERWRITE: 'sm://demo-project/fw-secretkey-overwrite',
    TOKEN_HASH_SECRET: 'sm://demo-project/fw-token-hash-secret',
  })
  for (const unverified of ['DATABASE_SSL', 'DATABASE_SSL_KEY_BASE64', 'DATABASE_REJECT_UNAUTHORIZED'])
    t.notOk(unverified in f, `${unverified}: the socket's proxy does TLS and verifies the server`)
  // Every secret the containers name exists and the runtime account may read it.
  for (const ref of Object.values({ ...f, ...g }).filter((v) => String(v).startsWith('sm://'))) {
    const id = String(ref).split('/').pop()?.split('#')[0]
    t.ok(h.fake.resources.has(`secret:demo-project/${id}`), `${id} exists`)
    t.same(h.fake.resources.get(`policy:secret/demo-project/${id}`).bindings, [
      {
        role: 'roles/secretmanager.secretAccessor',
        members: ['serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'],
      },
    ])
  }
})

t.test('IAM: only the IAP agent invokes, no allUsers anywhere, IAP members as configured', async (t) => {
  t.notMatch(bodies(), /allUsers|allAuthenticatedUsers/)
  t.same(h.fake.resources.get('policy:run/demo-project/fw').bindings, [
    {
      role: 'roles/run.invoker',
      members: [`serviceAccount:service-${h.fake.projectNumber}@gcp-sa-iap.iam.gserviceaccount.com`],
    },
  ])
  t.same(
    h.fake.resources.get(`policy:iap/projects/${h.fake.projectNumber}/iap_web/compute/services/fw-backend`)
      .bindings,
    [
      {
        role: 'roles/iap.httpsResourceAccessor',
        members: ['group:flowise-users@example.com', 'user:alice@example.com'],
      },
    ],
  )
  const roles = (member: string) =>
    h.fake.resources
      .get('policy:project/demo-project')
      .bindings.filter((b: Binding) => b.members?.includes(member))
      .map((b: Binding) => b.role)
      .sort()
  t.same(roles('serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'), [
    'roles/aiplatform.user',
    'roles/cloudsql.client',
    'roles/logging.logWriter',
  ])
  t.same(roles('serviceAccount:fw-build@demo-project.iam.gserviceaccount.com'), ['roles/logging.logWriter'])
  t.same(h.fake.resources.get('policy:bucket/demo-project-fw-files').bindings, [
    {
      role: 'roles/storage.objectAdmin',
      members: ['serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'],
    },
  ])
})

t.test('secrets reach gcloud on stdin or in a flags file only, never argv or gcloud logs', async (t) => {
  const values = secretValues()
  t.equal(values.length, 6, "Flowise's five secrets and the database password")
  t.ok(
    values.every((v) => v.length >= 40),
    'generated with 32 random bytes',
  )
  const argv = h.argvLog().flat().join('\n')
  const logs = h.gcloudFiles()
  t.match(logs, /Running \[gcloud\./, "gcloud's own logs were written")
  for (const v of values) {
    t.notOk(argv.includes(v), 'no secret in any argv')
    t.notOk(logs.includes(v), "no secret in gcloud's log files")
  }
  t.ok(
    h.argvLog().some((a) => a.includes('create') && a.some((x) => x.startsWith('--flags-file='))),
    'user created from a flags file',
  )
})

// No mutating request also means no Cloud SQL backup (a POST of backupRuns): an apply that changes no
// image is not an upgrade (apply-upgrade.test.ts has the one that is).
t.test('a second apply sends no mutating request', async (t) => {
  const before = h.fake.requests.length
  const r = await h.deploy(['apply', '--config', config])
  t.equal(r.code, 0, r.stderr)
  t.same(
    h.fake.requests
      .slice(before)
      .filter((q) => q.method !== 'GET' && !q.path.endsWith(':getIamPolicy'))
      .map((q) => `${q.method} ${q.path}`),
    [],
  )
  t.notMatch(r.stdout, /^(create|update) /m)
  t.match(r.stdout, /unchanged +Cloud Run service fw/, 'it serves, so it is unchanged')
  t.notMatch(r.stdout, /Upgrade/, 'no upgrade report')
  t.match(r.stdout, /Check it: npm run deploy -- doctor --config /)
})

t.test(
  'plan shows what each file grants, routes and runs; plan --format sh assigns all it uses',
  async (t) => {
    // The verdict of an online plan after apply is the second apply's ("a second apply sends no mutating
    // request": the same decisions); the plans here are offline, which costs no gcloud call.
    const offline = await h.deploy(['plan', '--offline', '--config', config])
    t.match(
      offline.stdout,
      /run services set-iam-policy fw .*\n {8}policy-json: replaces the service's IAM policy with: roles\/run\.invoker -> serviceAccount:service-\$\{PROJECT_NUMBER\}@gcp-sa-iap/,
    )
    t.match(
      offline.stdout,
      /url-maps import fw-http-redirect .*\n {8}redirect-yaml: every request -> 301 to https:\/\//,
    )
    t.match(offline.stdout, /service-yaml: ingress internal-and-cloud-load-balancing, run\.app URL disabled/)
    t.match(
      offline.stdout,
      /service-yaml: container flowise: .*; secrets .*DATABASE_PASSWORD=sm:\/\/demo-project\/fw-db-password#\$\{DATABASE_PASSWORD_VERSION\}/,
    )
    t.match(
      offline.stdout,
      /cloudbuild-yaml: runs as fw-build@demo-project\.iam\.gserviceaccount\.com, logs to Cloud Logging only/,
    )
    t.match(
      offline.stdout,
      /user-flags: --password = secret fw-db-password version \$\{DATABASE_PASSWORD_LATEST\} \(not shown\)/,
    )

    const sh = await h.deploy(['plan', '--offline', '--format', 'sh', '--config', config])
    t.equal(sh.code, 0, sh.stderr)
    const file = join(h.dir, 'plan.sh')
    writeFileSync(file, sh.stdout)
    execFileSync('bash', ['-n', file])
    // Every ${NAME} the script substitutes is assigned before it is used (DATABASE_CA_BASE64 once was not).
    const assigned = new Set<string>()
    for (const line of sh.stdout.split('\n')) {
      for (const [, name] of line.matchAll(/\$\{([A-Z][A-Z0-9_]*)\}/g))
        t.ok(assigned.has(name as string), `${name} assigned before use`)
      const a = /^([A-Z][A-Z0-9_]*)="\$\(gcloud /.exec(line)
      if (a) assigned.add(a[1] as string)
    }
    t.match(
      sh.stdout,
      /openssl rand -base64 32 \| tr -d '\\n' \| CLOUDSDK_CORE_DISABLE_FILE_LOGGING=true gcloud secrets create fw-db-password/,
    )
    t.match(
      sh.stdout,
      /IAP_AUDIENCE\n\s+value: \/projects\/\$\{PROJECT_NUMBER\}\/global\/backendServices\/\$\{BACKEND_SERVICE_ID\}/,
    )
    for (const v of secretValues()) t.notOk(offline.stdout.includes(v) || sh.stdout.includes(v))
  },
)

t.test(
  'rotate-db-password: a new version for the SQL user and the service, the old one disabled',
  async (t) => {
    const r = await h.deploy(['rotate-db-password', '--config', config])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /Rotated: the SQL user and the service use version 2; version 1 is disabled\./)
    const v2 = h.fake.payloads.get('demo-project/fw-db-password/2')
    t.ok(v2 && v2 !== h.fake.payloads.get('demo-project/fw-db-password/1'), 'a new value')
    t.equal(h.fake.payloads.get('sql-password:demo-project/fw-db/flowise'), v2, 'the SQL user has it')
    t.equal(env(containers()[1]).DATABASE_PASSWORD, 'sm://demo-project/fw-db-password#2', 'the app reads it')
    t.equal(h.fake.resources.get('secret-version:demo-project/fw-db-password/1').state, 'DISABLED')
    t.match(h.fake.resources.get('secret:demo-project/fw-db-password').labels, { 'applied-version': '2' })
    t.notOk(
      h
        .argvLog()
        .flat()
        .join('\n')
        .includes(v2 as string),
      'not on any argv',
    )
  },
)

t.test('render prints the service as deployed', async (t) => {
  const r = await h.deploy(['render', '--config', config])
  t.equal(r.code, 0, r.stderr)
  const rendered = parse(r.stdout).spec
  // the template is what the deploy owns; traffic it leaves to Cloud Run's default (all to the latest
  // ready revision), which gcloud's replace carries over from the live service (the fake stores it)
  t.same(rendered.template, serviceBody().spec.template)
  t.notOk('traffic' in rendered, 'the YAML pins no traffic')
})

t.test('destroy keeps data unless asked and removes the rest in reverse', async (t) => {
  const before = h.fake.requests.length
  const r = await h.deploy(['destroy', '--yes', '--config', config])
  t.equal(r.code, 0, r.stderr)
  const deletes = h.fake.requests
    .slice(before)
    .filter((q) => q.method === 'DELETE')
    .map((q) => q.path.split('/').slice(-2).join('/'))
  t.match(deletes[0], /^alertPolicies\/\d+$/, 'the alert policy first')
  t.same(deletes.slice(1, 16), [
    // the rest of the monitoring step, last to be made, first to go
    'metrics/fw-gateway-latency',
    'metrics/fw-gateway-upstream-errors',
    'metrics/fw-gateway-refusals',
    'forwardingRules/fw-http-rule-v6',
    'forwardingRules/fw-http-rule',
    'targetHttpProxies/fw-http-proxy',
    'urlMaps/fw-http-redirect',
    'forwardingRules/fw-https-rule-v6',
    'forwardingRules/fw-https-rule',
    'targetHttpsProxies/fw-https-proxy',
    'urlMaps/fw-urlmap',
    'sslPolicies/fw-ssl-policy',
    'sslCertificates/fw-cert',
    'addresses/fw-ipv6',
    'addresses/fw-ip',
  ])
  const keys = Object.keys(h.fake.snapshot())
  t.notOk(
    keys.some(
      (k) => k.startsWith('run:') || k.includes('/backendServices/') || k.includes('/securityPolicies/'),
    ),
  )
  t.notOk(keys.includes('iam-sa:fw-run@demo-project.iam.gserviceaccount.com'))
  t.ok(keys.includes('sql:demo-project/fw-db') && keys.includes('bucket:demo-project-fw-files'), 'data kept')
  t.ok(
    keys.includes('secret:demo-project/fw-secretkey-overwrite'),
    'secrets kept: stored credentials stay decryptable',
  )
  t.match(r.stdout, /keep +Cloud SQL instance fw-db \(data: pass --delete-data to remove\)/)
})

t.test(
  'destroy --delete-data: every refusal before the first delete, a final backup, the held peering',
  async (t) => {
    // Deletion protection is on: refused with nothing deleted (the bucket used to be emptied first).
    const objects = 'object:demo-project-fw-files/'
    h.fake.resources.set(`${objects}a.txt`, { name: 'a.txt' })
    const snapshot = JSON.stringify(h.fake.snapshot())
    const refused = await h.deploy(['destroy', '--yes', '--delete-data', '--config', config])
    t.equal(refused.code, 1)
    t.match(
      refused.stderr,
      /^DEPLOY_ERR_REFUSED: nothing was deleted: Cloud SQL instance fw-db has deletion protection/,
    )
    t.equal(JSON.stringify(h.fake.snapshot()), snapshot, 'not one resource touched')

    // As after `apply` with database.deletionProtection: false (that drift patch, in the other direction, is
    // covered in apply-resume.test.ts):
    h.fake.resources.get('sql:demo-project/fw-db').settings.deletionProtectionEnabled = false
    const unprotected = h.writeConfig(
      'unprotected.yaml',
      flowiseConfig(h, { database: { deletionProtection: false } }),
    )
    const first = await h.deploy(['destroy', '--yes', '--delete-data', '--config', unprotected])
    t.equal(first.code, 3, first.stderr)
    t.match(
      first.stdout,
      /Pending: Google still holds these; run the same destroy again later to finish:\n {2}private services access peering: Service Networking keeps the peering in use/,
    )
    t.match(first.stdout, / {2}private services range fw-psa-range: waits for psa-peering/)
    t.match(h.fake.resources.get('sql-backup:demo-project/fw-db/final'), { type: 'FINAL', ttlDays: 30 })
    const left = () =>
      Object.keys(h.fake.snapshot()).filter((k) => !/^(compute-op|sql-op|build|object|api|lro):/.test(k))
    t.same(
      left().sort(),
      [
        'compute:projects/demo-project/global/addresses/fw-psa-range',
        'compute:projects/demo-project/global/networks/default',
        'compute:projects/demo-project/regions/europe-west1/subnetworks/default',
        `iam-sa:service-${h.fake.projectNumber}@gcp-sa-iap.iam.gserviceaccount.com`,
        `peering:projects/${h.fake.projectNumber}/global/networks/default`,
        'policy:project/demo-project',
        'sql-backup:demo-project/fw-db/final',
      ],
      'the repository, secrets, buckets and service accounts are gone; only what the peering holds is left',
    )

    // Days later Service Networking lets go: the same destroy finishes.
    h.fake.releaseProducerHolds()
    const second = await h.deploy(['destroy', '--yes', '--delete-data', '--config', unprotected])
    t.equal(second.code, 0, second.stderr)
    t.same(left().sort(), [
      'compute:projects/demo-project/global/networks/default',
      'compute:projects/demo-project/regions/europe-west1/subnetworks/default',
      `iam-sa:service-${h.fake.projectNumber}@gcp-sa-iap.iam.gserviceaccount.com`,
      'policy:project/demo-project',
      'sql-backup:demo-project/fw-db/final',
    ])
    t.same(h.fake.resources.get('policy:project/demo-project').bindings, [])
  },
)

// The Flowise preset end to end against the fake APIs with the real gcloud: a full apply from empty,
// what was really sent, an unchanged re-apply, plan (text and sh), render, and destroy with and
// without data. One fake is shared by the subtests, in order, to keep gcloud calls bounded.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { CIDRS_23, flowiseConfig, type Harness, harness } from './harness.ts'

// About 3 minutes on an idle 2-core machine; generous for a loaded one.
t.setTimeout(1_200_000)

let h: Harness
let config: string
t.before(async () => {
  h = await harness()
  config = h.writeConfig('flowise.yaml', flowiseConfig(h))
})
t.teardown(() => h?.close())

const secretValues = () => [...h.fake.payloads.values()]
const bodies = () => h.fake.requests.map((r) => r.raw).join('\n')

function serviceBody(): any {
  const puts = h.fake.requests.filter(
    (r) => /\/services(\/fw)?$/.test(r.path) && ['POST', 'PUT'].includes(r.method),
  )
  return puts.at(-1)?.body
}

t.test('a full apply from empty creates everything in a valid order', async (t) => {
  const r = await h.deploy(['apply', '--config', config])
  t.equal(r.code, 0, r.stderr)
  // The fake refuses dangling references and a service account or peering that does not exist yet,
  // so success means every resource came after what it names.
  t.same(
    h.fake.requests.filter((q) => q.status >= 400 && q.method !== 'GET'),
    [],
    'no refused mutation',
  )
  t.match(r.stdout, /Point DNS: flowise\.example\.com\. A 34\.120\.7\.\d+/)
  t.match(r.stdout, /Certificate: PROVISIONING/)
  t.match(r.stdout, /URL: https:\/\/flowise\.example\.com\//)
  t.match(r.stdout, /gcloud builds submit .*: done in \d+ s/, 'long steps report elapsed time')

  const keys = Object.keys(h.fake.snapshot())
  for (const k of [
    'compute:projects/demo-project/global/forwardingRules/fw-https-rule',
    'compute:projects/demo-project/global/forwardingRules/fw-http-rule',
    'compute:projects/demo-project/global/targetHttpsProxies/fw-https-proxy',
    'compute:projects/demo-project/global/urlMaps/fw-http-redirect',
    'compute:projects/demo-project/regions/europe-west1/networkEndpointGroups/fw-neg',
    'sql:demo-project/fw-db',
    'sql-db:demo-project/fw-db/flowise',
    'sql-user:demo-project/fw-db/flowise',
    'bucket:demo-project-fw-files',
    'run:demo-project/fw',
    'ar-tag:demo-project/europe-west1/fw/gateway/0.1.0',
    'ar-tag:demo-project/europe-west1/fw/flowise/3.1.4',
  ]) {
    t.ok(keys.includes(k), k)
  }
  const redirect = h.fake.resources.get('compute:projects/demo-project/global/urlMaps/fw-http-redirect')
  t.same(redirect.defaultUrlRedirect, {
    httpsRedirect: true,
    redirectResponseCode: 'MOVED_PERMANENTLY_DEFAULT',
  })
  const bs = h.fake.resources.get('compute:projects/demo-project/global/backendServices/fw-backend')
  t.equal(bs.loadBalancingScheme, 'EXTERNAL_MANAGED')
  t.equal(bs.iap.enabled, true)
  t.match(bs.securityPolicy, /\/securityPolicies\/fw-armor$/)
  for (const rule of ['fw-https-rule', 'fw-http-rule']) {
    t.equal(
      h.fake.resources.get(`compute:projects/demo-project/global/forwardingRules/${rule}`)
        .loadBalancingScheme,
      'EXTERNAL_MANAGED',
    )
  }
  const sql = h.fake.resources.get('sql:demo-project/fw-db')
  t.equal(sql.settings.ipConfiguration.sslMode, 'ENCRYPTED_ONLY')
  t.equal(sql.settings.ipConfiguration.ipv4Enabled, false)
  t.equal(sql.settings.deletionProtectionEnabled, true)
  t.equal(
    h.fake.payloads.get('sql-password:demo-project/fw-db/flowise'),
    h.fake.payloads.get('demo-project/fw-db-password/1'),
  )
})

t.test('23 CIDRs become 3 Armor allow rules of at most 10 ranges, default deny-403', async (t) => {
  const added = h.fake.requests
    .filter((r) => r.path.endsWith('/securityPolicies/fw-armor/addRule'))
    .map((r) => r.body as any)
  t.same(
    added.map((r) => r.priority),
    [1000, 1001, 1002],
  )
  t.same(
    added.map((r) => r.match.config.srcIpRanges.length),
    [10, 10, 3],
  )
  t.same(
    added.flatMap((r) => r.match.config.srcIpRanges),
    CIDRS_23,
  )
  t.ok(added.every((r) => r.action === 'allow'))
  const patched = h.fake.requests.find((r) => r.path.endsWith('/fw-armor/patchRule'))
  t.same(patched?.query.priority, '2147483647')
  t.equal((patched?.body as any)?.action, 'deny(403)')
})

t.test('the Cloud Run service body', async (t) => {
  const svc = serviceBody()
  t.equal(svc.metadata.annotations['run.googleapis.com/ingress'], 'internal-and-cloud-load-balancing')
  const tpl = svc.spec.template
  const containers: any[] = tpl.spec.containers
  t.equal(containers.length, 2)
  t.ok(
    containers.every((c) => typeof c.name === 'string' && c.name.length > 0),
    'every container named',
  )
  const withPorts = containers.filter((c) => (c.ports ?? []).length > 0)
  t.same(
    withPorts.map((c) => c.name),
    ['gateway'],
    'exactly one container with ports',
  )
  const deps = JSON.parse(tpl.metadata.annotations['run.googleapis.com/container-dependencies'])
  t.same(deps, { gateway: ['flowise'] })
  const flowise = containers.find((c) => c.name === 'flowise')
  t.same(flowise.startupProbe.httpGet, { path: '/api/v1/ping', port: 3000 })
  for (const c of containers) {
    for (const p of [c.startupProbe, c.livenessProbe].filter(Boolean))
      t.ok(p.failureThreshold * p.periodSeconds <= 240, `${c.name} probe <= 240 s`)
  }
  t.equal(tpl.spec.timeoutSeconds, 3600)
  t.equal(tpl.spec.serviceAccountName, 'fw-run@demo-project.iam.gserviceaccount.com')
  t.same(JSON.parse(tpl.metadata.annotations['run.googleapis.com/network-interfaces']), [
    { network: 'default', subnetwork: 'default' },
  ])
  t.equal(tpl.metadata.annotations['run.googleapis.com/vpc-access-egress'], 'private-ranges-only')

  const env = (c: any) => Object.fromEntries(c.env.map((e: any) => [e.name, e.value]))
  const bsId = h.fake.resources.get('compute:projects/demo-project/global/backendServices/fw-backend').id
  const g = env(containers.find((c) => c.name === 'gateway'))
  t.equal(
    g.IAP_AUDIENCE,
    `/projects/${h.fake.projectNumber}/global/backendServices/${bsId}`,
    'first revision has the real audience',
  )
  t.equal(g.ALLOWED_CIDRS, CIDRS_23.join(','))
  t.equal(g.TRUST_PROXY_HOPS, '2')
  t.equal(g.UPSTREAM_URL, 'http://127.0.0.1:3000')
  t.equal(g.HOST, '0.0.0.0')
  t.notOk('PORT' in g, 'PORT is left to Cloud Run')
  t.notOk('IAP_DISABLED' in g)
  const f = env(flowise)
  t.match(f, {
    DATABASE_TYPE: 'postgres',
    DATABASE_HOST: '10.60.0.3',
    DATABASE_PORT: '5432',
    DATABASE_PASSWORD: 'sm://demo-project/fw-db-password',
    HOST: '127.0.0.1',
    STORAGE_TYPE: 'gcs',
    GOOGLE_CLOUD_STORAGE_BUCKET_NAME: 'demo-project-fw-files',
    FLOWISE_SECRETKEY_OVERWRITE: 'sm://demo-project/fw-secretkey-overwrite',
    JWT_AUTH_TOKEN_SECRET: 'sm://demo-project/fw-jwt-auth-token-secret',
    JWT_REFRESH_TOKEN_SECRET: 'sm://demo-project/fw-jwt-refresh-token-secret',
    EXPRESS_SESSION_SECRET: 'sm://demo-project/fw-express-session-secret',
    TOKEN_HASH_SECRET: 'sm://demo-project/fw-token-hash-secret',
  })
  // Every secret the containers name exists and the runtime account may read it.
  for (const ref of Object.values({ ...f, ...g }).filter((v) => String(v).startsWith('sm://'))) {
    const id = String(ref).split('/').pop()
    t.ok(h.fake.resources.has(`secret:demo-project/${id}`), `${id} exists`)
    const policy = h.fake.resources.get(`policy:secret/demo-project/${id}`)
    t.same(policy.bindings, [
      {
        role: 'roles/secretmanager.secretAccessor',
        members: ['serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'],
      },
    ])
  }
})

t.test('IAM: only the IAP agent invokes, no allUsers anywhere, IAP members as configured', async (t) => {
  t.notMatch(bodies(), /allUsers|allAuthenticatedUsers/)
  const invoker = h.fake.resources.get('policy:run/demo-project/fw')
  t.same(invoker.bindings, [
    {
      role: 'roles/run.invoker',
      members: [`serviceAccount:service-${h.fake.projectNumber}@gcp-sa-iap.iam.gserviceaccount.com`],
    },
  ])
  const iap = h.fake.resources.get(
    `policy:iap/projects/${h.fake.projectNumber}/iap_web/compute/services/fw-backend`,
  )
  t.same(iap.bindings, [
    {
      role: 'roles/iap.httpsResourceAccessor',
      members: ['group:flowise-users@example.com', 'user:alice@example.com'],
    },
  ])
  const project = h.fake.resources.get('policy:project/demo-project')
  t.same(project.bindings.map((b: any) => b.role).sort(), [
    'roles/aiplatform.user',
    'roles/logging.logWriter',
  ])
  const bucket = h.fake.resources.get('policy:bucket/demo-project-fw-files')
  t.same(bucket.bindings, [
    {
      role: 'roles/storage.objectAdmin',
      members: ['serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'],
    },
  ])
})

t.test('secrets reach gcloud on stdin only', async (t) => {
  const values = secretValues()
  t.equal(values.length, 7, 'six secrets and the database password')
  t.ok(
    values.every((v) => v.length >= 40),
    'generated with 32 random bytes',
  )
  const argv = h.argvLog().flat().join('\n')
  for (const v of values) t.notOk(argv.includes(v), 'no secret in any argv')
  t.ok(h.argvLog().some((a) => a.includes('--prompt-for-password') && !a.includes('--quiet')))
})

t.test('a second apply sends no mutating request', async (t) => {
  const before = h.fake.requests.length
  const r = await h.deploy(['apply', '--config', config])
  t.equal(r.code, 0, r.stderr)
  const mutations = h.fake.requests
    .slice(before)
    .filter((q) => q.method !== 'GET' && !q.path.endsWith(':getIamPolicy'))
  t.same(
    mutations.map((q) => `${q.method} ${q.path}`),
    [],
  )
  t.notMatch(r.stdout, /^(create|update) /m)
})

t.test('plan reads what exists; plan --format sh is valid bash and holds no secret', async (t) => {
  const plan = await h.deploy(['plan', '--config', config])
  t.equal(plan.code, 0, plan.stderr)
  t.match(plan.stdout, /No changes\./)
  t.match(plan.stdout, /unchanged +Cloud Run service fw/)
  const offline = await h.deploy(['plan', '--offline', '--format', 'sh', '--config', config])
  t.equal(offline.code, 0, offline.stderr)
  const file = join(h.dir, 'plan.sh')
  writeFileSync(file, offline.stdout)
  execFileSync('bash', ['-n', file])
  t.match(offline.stdout, /openssl rand -base64 32 \| tr -d '\\n' \| gcloud secrets create fw-db-password/)
  t.match(
    offline.stdout,
    /BACKEND_SERVICE_ID="\$\(gcloud compute backend-services describe fw-backend --global/,
  )
  t.match(
    offline.stdout,
    /IAP_AUDIENCE\n\s+value: \/projects\/\$\{PROJECT_NUMBER\}\/global\/backendServices\/\$\{BACKEND_SERVICE_ID\}/,
  )
  for (const v of secretValues()) t.notOk(plan.stdout.includes(v) || offline.stdout.includes(v))
})

t.test('render prints the service as deployed', async (t) => {
  const r = await h.deploy(['render', '--config', config])
  t.equal(r.code, 0, r.stderr)
  const rendered = parse(r.stdout)
  t.same(rendered.spec, serviceBody().spec)
})

t.test('destroy keeps data unless asked and removes the rest in reverse', async (t) => {
  const before = h.fake.requests.length
  const r = await h.deploy(['destroy', '--yes', '--config', config])
  t.equal(r.code, 0, r.stderr)
  const deletes = h.fake.requests
    .slice(before)
    .filter((q) => q.method === 'DELETE')
    .map((q) => q.path.split('/').slice(-2).join('/'))
  t.same(deletes.slice(0, 8), [
    'forwardingRules/fw-http-rule',
    'targetHttpProxies/fw-http-proxy',
    'urlMaps/fw-http-redirect',
    'forwardingRules/fw-https-rule',
    'targetHttpsProxies/fw-https-proxy',
    'urlMaps/fw-urlmap',
    'sslCertificates/fw-cert',
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

  // With protection on, --delete-data is refused (steps.test.ts); as after `apply` with
  // database.deletionProtection: false (that patch is covered in resume.test.ts):
  h.fake.resources.get('sql:demo-project/fw-db').settings.deletionProtectionEnabled = false
  const unprotected = h.writeConfig(
    'unprotected.yaml',
    flowiseConfig(h, { database: { deletionProtection: false } }),
  )
  const all = await h.deploy(['destroy', '--yes', '--delete-data', '--config', unprotected])
  t.equal(all.code, 0, all.stderr)
  const left = Object.keys(h.fake.snapshot()).filter((k) => !/^(compute-op|sql-op|build|object|api):/.test(k))
  t.same(left.sort(), [
    'bucket:demo-project_cloudbuild',
    'compute:projects/demo-project/global/networks/default',
    'compute:projects/demo-project/regions/europe-west1/subnetworks/default',
    `iam-sa:service-${h.fake.projectNumber}@gcp-sa-iap.iam.gserviceaccount.com`,
    'policy:project/demo-project',
  ])
  t.same(h.fake.resources.get('policy:project/demo-project').bindings, [])
})

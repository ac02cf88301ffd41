// The step data on its own: what each resource decides from a described state, without gcloud.
// The end-to-end tests cover the paths an apply from empty takes; these cover drift and teardown.
import t from 'tap'
import { validateConfig } from '../../deploy/config.ts'
import { serviceObject, serviceReview } from '../../deploy/service-yaml.ts'
import { apisStep, requiredApis } from '../../deploy/steps/apis.ts'
import { databaseStep } from '../../deploy/steps/database.ts'
import { edgeStep } from '../../deploy/steps/edge.ts'
import { frontendStep, hasIpv6 } from '../../deploy/steps/frontend.ts'
import { identityStep } from '../../deploy/steps/identity.ts'
import { imagesStep } from '../../deploy/steps/images.ts'
import { steps } from '../../deploy/steps/index.ts'
import {
  lockedPolicy,
  policyReview,
  readinessProblems,
  runStep,
  serviceValues,
} from '../../deploy/steps/run.ts'
import { secretsStep } from '../../deploy/steps/secrets.ts'
import type { Context, Resource, Step } from '../../deploy/steps/types.ts'

const raw = {
  project: 'demo-project',
  region: 'europe-west1',
  name: 'fw',
  domain: 'a.example.com',
  allowedCidrs: Array.from({ length: 12 }, (_, i) => `10.${i}.0.0/16`),
  iapMembers: ['user:a@example.com'],
  app: { secrets: { EXTERNAL: 'existing-secret' } },
}
const config = validateConfig(raw, '/')
const facts = new Map([
  ['PROJECT_NUMBER', '42'],
  ['BACKEND_SERVICE_ID', '7'],
])
const x: Context = { config, facts, fact: (n) => facts.get(n) ?? `\${${n}}` }
const sa = 'serviceAccount:fw-run@demo-project.iam.gserviceaccount.com'
const argv = (cmds: { argv: string[] }[]) => cmds.map((c) => c.argv.join(' '))
const find = (step: Step, id: string) => step.resources.find((r) => r.id === id) as Resource

t.test('APIs: only the missing ones are enabled', async (t) => {
  const r = find(apisStep, 'apis')
  const enabled = requiredApis(config)
    .slice(1)
    .map((name) => ({ config: { name } }))
  t.same(r.check?.(enabled, x), ['run.googleapis.com is not enabled'])
  t.same(argv(r.update?.(x, enabled) ?? []), ['services enable run.googleapis.com'])
  t.equal(r.absent?.([{ name: 'projects/1/services/other.googleapis.com' }], x), true)
})

t.test('identity: missing roles granted, only its own roles removed', async (t) => {
  const r = find(identityStep, 'project-roles')
  const policy = { bindings: [{ role: 'roles/logging.logWriter', members: [sa, 'user:x@example.com'] }] }
  t.same(r.check?.(policy, x), ['roles/cloudsql.client not granted', 'roles/aiplatform.user not granted'])
  t.match(argv(r.update?.(x, policy) ?? []), [
    /add-iam-policy-binding demo-project .*--role=roles\/cloudsql.client/,
    /add-iam-policy-binding demo-project .*--role=roles\/aiplatform.user/,
  ])
  t.match(argv(r.delete?.(x, policy) ?? []), [
    /remove-iam-policy-binding demo-project .*--role=roles\/logging.logWriter --condition=None/,
  ])
})

t.test(
  'secrets: a missing version is added; an external secret must exist; deletes only managed ones',
  async (t) => {
    const step = secretsStep(config)
    const managed = find(step, 'secret/fw-db-password')
    t.same(managed.check?.([], x), ['no enabled version'])
    t.same(argv(managed.update?.(x, []) ?? []), ['secrets versions add fw-db-password --data-file=-'])
    t.same(managed.update?.(x, [])[0]?.stdin, { kind: 'secret', secret: 'fw-db-password', generate: true })
    t.same(argv(managed.delete?.(x, {}) ?? []), ['secrets delete fw-db-password'])
    const external = find(step, 'secret/existing-secret')
    t.throws(() => external.create(x), {
      code: 'DEPLOY_ERR_REFUSED',
      message: 'secret existing-secret (named in app.secrets) does not exist: create it first',
    })
    t.same(external.update?.(x, []), [])
    t.same(external.delete?.(x, {}), [])
    const access = find(step, 'secret-access/existing-secret')
    t.same(access.check?.({ bindings: [] }, x), ['runtime service account lacks access'])
    t.equal(access.update?.(x, {})[0]?.retryIam, true)
  },
)

t.test(
  'database: shared peering extended, not deleted; instance drift patched; protection refused',
  async (t) => {
    const step = databaseStep(config)
    const peering = find(step, 'psa-peering')
    const shared = [{ reservedPeeringRanges: ['other-range'] }]
    t.same(peering.check?.(shared, x), ['range fw-psa-range not peered'])
    t.match(argv(peering.update?.(x, shared) ?? []), [
      /vpc-peerings update .*--ranges=other-range,fw-psa-range/,
    ])
    t.same(peering.delete?.(x, [{ reservedPeeringRanges: ['other-range', 'fw-psa-range'] }]), [])
    t.match(argv(peering.delete?.(x, [{ reservedPeeringRanges: ['fw-psa-range'] }]) ?? []), [
      /vpc-peerings delete/,
    ])
    const sql = find(step, 'sql-instance')
    const wanted = {
      settings: {
        edition: 'ENTERPRISE',
        tier: 'db-g1-small',
        availabilityType: 'ZONAL',
        ipConfiguration: { sslMode: 'ENCRYPTED_ONLY' },
        retainBackupsOnDelete: true,
        deletionProtectionEnabled: true,
        backupConfiguration: {
          enabled: true,
          pointInTimeRecoveryEnabled: true,
          transactionLogRetentionDays: 7,
          backupRetentionSettings: { retainedBackups: 14 },
        },
      },
    }
    t.same(sql.check?.(wanted, x), [])
    // As Cloud SQL makes a POSTGRES_16 instance from a request without an edition or backup settings.
    const drifted = {
      settings: {
        edition: 'ENTERPRISE_PLUS',
        tier: 'db-perf-optimized-N-2',
        availabilityType: 'REGIONAL',
        ipConfiguration: {},
        deletionProtectionEnabled: false,
        backupConfiguration: {
          enabled: true,
          transactionLogRetentionDays: 14,
          backupRetentionSettings: { retainedBackups: 15 },
        },
      },
    }
    t.same(sql.check?.(drifted, x), [
      'edition is ENTERPRISE_PLUS',
      'tier is db-perf-optimized-N-2',
      'availability is REGIONAL',
      'TLS is not enforced',
      'point-in-time recovery is off',
      '15 backups retained',
      '14 days of transaction log',
      'backups are deleted with the instance',
      'deletion protection differs',
    ])
    t.same(argv(sql.update?.(x, drifted) ?? []), [
      'sql instances patch fw-db --edition=enterprise --tier=db-g1-small --availability-type=zonal --ssl-mode=ENCRYPTED_ONLY --enable-point-in-time-recovery --retained-backups-count=14 --retained-transaction-log-days=7 --retain-backups-on-delete --deletion-protection',
    ])
    t.same(sql.check?.({}, x).slice(-4), [
      'no backups retained',
      'no days of transaction log',
      'backups are deleted with the instance',
      'deletion protection differs',
    ])
    t.match(
      sql.refuseDelete?.(x, { settings: { deletionProtectionEnabled: true } }),
      /has deletion protection/,
    )
    t.equal(sql.refuseDelete?.(x, { settings: {} }), undefined)
    t.same(argv(sql.delete?.(x, {}) ?? []), [
      'sql instances delete fw-db --enable-final-backup --final-backup-retention-days=30',
    ])
  },
)

// Issue 14, point 4: Cloud SQL refuses a PostgreSQL user without a password; gcloud 528's `users create`
// has no prompt, so the password travels in a flags file, never argv.
t.test('database: the user is created with the newest password version, from a flags file', async (t) => {
  const step = databaseStep(config)
  const user = find(step, 'sql-user')
  const withVersion = { ...x, fact: (n: string) => (n === 'DATABASE_PASSWORD_LATEST' ? '4' : x.fact(n)) }
  const [create, record] = user.create(withVersion)
  t.same(create?.argv, [
    'sql',
    'users',
    'create',
    'flowise',
    '--instance=fw-db',
    '--flags-file={file:user-flags}',
  ])
  t.same(create?.secretFlags, {
    file: 'user-flags',
    flag: '--password',
    secret: 'fw-db-password',
    version: '4',
  })
  t.same(record?.argv, [
    'secrets',
    'update',
    'fw-db-password',
    '--update-labels=applied-to-sql-user=fw-db,applied-version=4',
  ])
  const password = find(step, 'sql-user-password')
  const labels = { labels: { 'applied-to-sql-user': 'fw-db', 'applied-version': '4' } }
  t.equal(password.absent?.(labels, withVersion), false, 'the newest version is applied')
  t.equal(
    password.absent?.({ labels: { ...labels.labels, 'applied-version': '3' } }, withVersion),
    true,
    'a newer version waits',
  )
  const [set] = password.create(withVersion)
  t.same(set?.stdin, { kind: 'secret', secret: 'fw-db-password', version: '4' })
  t.equal(set?.prompts, true)
  const peering = find(step, 'psa-peering').delete?.(x, [{ reservedPeeringRanges: ['fw-psa-range'] }])[0]
  t.ok(
    peering?.pending?.when.test(
      'Failed to delete connection; Producer services (e.g. CloudSQL, Cloud Memstore, etc.) are still using this connection.',
    ),
  )
  t.same(find(step, 'psa-range').heldBy, ['psa-peering'])
})

t.test('edge: Armor rules converge (change, add, remove), backend and IAP members drift', async (t) => {
  const step = edgeStep(config)
  const armor = find(step, 'armor')
  const existing = [
    {
      rules: [
        {
          priority: 1000,
          action: 'allow',
          match: { config: { srcIpRanges: config.allowedCidrs.slice(0, 10) } },
        },
        { priority: 1001, action: 'allow', match: { config: { srcIpRanges: ['192.0.2.0/24'] } } },
        { priority: 1005, action: 'allow', match: { config: { srcIpRanges: ['198.51.100.0/24'] } } },
        { priority: 2147483647, action: 'deny(403)', match: { config: { srcIpRanges: ['*'] } } },
      ],
    },
  ]
  t.same(argv(armor.update?.(x, existing) ?? []), [
    'compute security-policies rules update 1001 --security-policy=fw-armor --action=allow --src-ip-ranges=10.10.0.0/16,10.11.0.0/16',
    'compute security-policies rules delete 1005 --security-policy=fw-armor',
  ])
  t.same(armor.check?.(existing, x), [
    'rule 1001: live allow 192.0.2.0/24, config allow 10.10.0.0/16,10.11.0.0/16',
    'rule 1005: live allow 198.51.100.0/24, not in the config',
  ])
  t.same(armor.check?.([{ rules: [] }], x).slice(0, 2), [
    'default rule: live none, config deny(403)',
    'rule 1000: live none, config allow 10.0.0.0/16,10.1.0.0/16,10.2.0.0/16,10.3.0.0/16,10.4.0.0/16,10.5.0.0/16,10.6.0.0/16,10.7.0.0/16,10.8.0.0/16,10.9.0.0/16',
  ])
  // A default rule edited to allow, and a rule matching a CEL expression (SecurityPolicyRule.match.expr,
  // no srcIpRanges): both are drift, shown as they are.
  const edited = [
    {
      rules: [
        ...(existing[0]?.rules ?? []).filter((r) => r.priority === 1000),
        { priority: 1004, action: 'allow', match: { expr: { expression: "origin.region_code == 'CH'" } } },
        { priority: 2147483647, action: 'allow', match: { config: { srcIpRanges: ['*'] } } },
      ],
    },
  ]
  t.same(armor.check?.(edited, x), [
    'default rule: live allow, config deny(403)',
    'rule 1001: live none, config allow 10.10.0.0/16,10.11.0.0/16',
    'rule 1004: live allow, not in the config',
  ])
  const backend = find(step, 'backend-service')
  t.same(backend.check?.({ securityPolicy: '.../securityPolicies/fw-armor', iap: { enabled: true } }, x), [])
  t.same(backend.check?.({ id: '7' }, x), [
    'security policy: live none, config fw-armor',
    'IAP: live off, config on',
  ])
  t.same(
    backend.check?.({ id: '7', securityPolicy: '.../securityPolicies/other', iap: { enabled: true } }, x),
    ['security policy: live other, config fw-armor'],
  )
  const iap = find(step, 'iap-access')
  const policy = {
    bindings: [{ role: 'roles/iap.httpsResourceAccessor', members: ['user:old@example.com'] }],
  }
  t.same(iap.check?.(policy, x), [
    'IAP member user:a@example.com: live not granted, config granted',
    'IAP member user:old@example.com: live granted, not in the config',
  ])
  t.equal(iap.update?.(x, policy).length, 2)
})

t.test(
  'run: the invoker policy keeps other roles, drops public members, has only the IAP agent',
  async (t) => {
    const current = {
      etag: 'e1',
      bindings: [
        { role: 'roles/run.invoker', members: ['allUsers', 'user:x@example.com'] },
        { role: 'roles/run.viewer', members: ['allAuthenticatedUsers', 'user:y@example.com'] },
        { role: 'roles/run.developer', members: ['allUsers'] },
      ],
    }
    t.same(lockedPolicy(x, current), {
      etag: 'e1',
      bindings: [
        { role: 'roles/run.viewer', members: ['user:y@example.com'] },
        {
          role: 'roles/run.invoker',
          members: ['serviceAccount:service-42@gcp-sa-iap.iam.gserviceaccount.com'],
        },
      ],
    })
    const invoker = find(runStep(config), 'invoker')
    t.same(invoker.check?.(current, x), [
      'run.invoker: live allUsers, user:x@example.com, config serviceAccount:service-42@gcp-sa-iap.iam.gserviceaccount.com only',
      'roles/run.viewer: live allAuthenticatedUsers, config no public member',
      'roles/run.developer: live allUsers, config no public member',
    ])
    t.same(invoker.check?.(lockedPolicy(x, undefined), x), [])
    t.match(argv(invoker.update?.(x, current) ?? []), [
      /^beta services identity create --service=iap.googleapis.com$/,
      /^run services set-iam-policy fw \{file:policy-json\} --region=europe-west1$/,
    ])
  },
)

t.test('frontend: a certificate for another domain is drift that cannot be updated in place', async (t) => {
  const cert = find(frontendStep(config), 'certificate')
  t.same(cert.check?.({ managed: { domains: ['old.example.com'] } }, x), [
    'domains: live old.example.com, config a.example.com (a new domain needs a new certificate)',
  ])
  t.equal(cert.update, undefined)
  const learned = new Map<string, string>()
  cert.learn?.({}, { ...x, facts: learned })
  t.same([...learned], [['CERTIFICATE_STATUS', 'unknown']])
})

t.test('images: a prebuilt app image is not built; step order', async (t) => {
  const custom = validateConfig({ ...raw, app: { preset: 'custom', image: 'docker.io/a/b:1' } }, '/')
  t.same(
    imagesStep(custom).resources.map((r) => r.id),
    ['repository', 'repository-access', 'source-bucket', 'source-access', 'image/gateway'],
  )
  t.same(
    steps(custom).map((s) => s.id),
    ['apis', 'identity', 'images', 'edge', 'run', 'frontend', 'monitoring'],
  )
  t.same(
    steps(config).map((s) => s.id),
    ['apis', 'identity', 'secrets', 'images', 'database', 'storage', 'edge', 'run', 'frontend', 'monitoring'],
  )
})

// The engine reads again only what a change `affects` (Resource.affects): a name that matches no later
// resource of the step would leave a stale read in place without anyone noticing.
t.test('every resource a change affects is a later resource of the same step', async (t) => {
  const custom = validateConfig({ ...raw, app: { preset: 'custom', image: 'docker.io/a/b:1' } }, '/')
  const declared: string[] = []
  for (const c of [config, custom])
    for (const step of steps(c)) {
      const ids = step.resources.map((r) => r.id)
      step.resources.forEach((r, i) => {
        for (const id of r.affects ?? []) {
          declared.push(`${step.id}: ${r.id} -> ${id}`)
          t.ok(ids.indexOf(id) > i, `${step.id}: ${r.id} affects ${id}, later in the step`)
        }
      })
    }
  t.ok(declared.includes('database: sql-user -> sql-user-password'), 'the password record is declared')
})

// Google's JSON leaves out empty fields: a policy with no bindings has no `bindings`, a new instance no
// `ipAddresses`, a build that failed early no `logUrl`. Each reader must take the omission as "empty".
t.test('fields Google omits when empty are read as empty', async (t) => {
  t.same(find(apisStep, 'project').create(x), [], 'a read-only resource creates nothing')

  const db = databaseStep(config)
  t.match(argv(find(db, 'psa-peering').update?.(x, [{}]) ?? []), [/--ranges=fw-psa-range --network/])
  const password = find(db, 'sql-user-password')
  const learned = new Map<string, string>()
  password.learn?.({}, { ...x, facts: learned })
  password.learn?.(
    { labels: { 'applied-to-sql-user': 'other-db', 'applied-version': '3' } },
    { ...x, facts: learned },
  )
  t.same([...learned], [], 'no version applied to this instance, nothing learned')
  const secret = find(secretsStep(config), 'secret/fw-db-password')
  secret.learn?.([], { ...x, facts: learned })
  t.same([...learned], [], 'no enabled version, nothing learned')

  const cert = find(frontendStep(config), 'certificate')
  t.same(cert.check?.({}, x), [
    'domains: live none, config a.example.com (a new domain needs a new certificate)',
  ])
  t.same(cert.check?.({ managed: { domains: ['a.example.com'] } }, x), [])

  const build = find(imagesStep(config), 'image/gateway').create(x)[0]?.poll
  t.same(build?.describe({ id: 'b-1' }).slice(0, 3), ['builds', 'describe', 'b-1'])
  t.same(build?.describe({ metadata: { build: { id: 'b-2' } } }).slice(0, 3), ['builds', 'describe', 'b-2'])
  t.equal(build?.failed({ id: 'b-1', status: 'FAILURE' }), 'build b-1 ended FAILURE: ')
  t.equal(
    build?.failed({ id: 'b-1', status: 'FAILURE', statusDetail: 'denied', logUrl: 'u' }),
    'build b-1 ended FAILURE (denied): u',
  )
  t.equal(build?.failed({ id: 'b-1', status: 'SUCCESS' }), undefined)

  const identity = find(identityStep, 'project-roles')
  t.same(identity.check?.({}, x), [
    'roles/logging.logWriter not granted',
    'roles/cloudsql.client not granted',
    'roles/aiplatform.user not granted',
  ])
  t.same(identity.check?.({ bindings: [{ role: 'roles/logging.logWriter' }] }, x).length, 3)

  const invoker = find(runStep(config), 'invoker')
  t.same(invoker.check?.({}, x), [
    'run.invoker: live none, config serviceAccount:service-42@gcp-sa-iap.iam.gserviceaccount.com only',
  ])
  t.same(lockedPolicy(x, { bindings: [{ role: 'roles/run.viewer' }] }).bindings, [
    { role: 'roles/run.invoker', members: ['serviceAccount:service-42@gcp-sa-iap.iam.gserviceaccount.com'] },
  ])
  t.same(
    invoker.check?.({ bindings: [{ role: 'roles/run.viewer' }, ...lockedPolicy(x, {}).bindings] }, x),
    [],
  )

  const backend = find(edgeStep(config), 'backend-service')
  t.match(argv(backend.update?.(x, {}) ?? []), [/backend-services update fw-backend/, /iap web enable/])
})

// Issue 14, point 3: the Cloud Run service counts as unchanged only when it serves.
t.test('run: a service whose latest revision is not ready is drift, with the revision message', async (t) => {
  const failedFirst = {
    status: {
      conditions: [{ type: 'Ready', status: 'False', message: "Revision 'fw-00001-abc' is not ready" }],
      latestCreatedRevisionName: 'fw-00001-abc',
    },
  }
  t.same(readinessProblems(failedFirst), [
    "not ready: Revision 'fw-00001-abc' is not ready",
    'revision fw-00001-abc is not the latest ready one (none)',
  ])
  t.same(readinessProblems({ status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }), [
    'not ready (Ready is Unknown)',
  ])
  t.same(readinessProblems({}), ['not ready (Ready is missing)'])
  const serving = {
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      latestCreatedRevisionName: 'fw-00002-abc',
      latestReadyRevisionName: 'fw-00002-abc',
    },
  }
  t.same(readinessProblems(serving), [])
  const service = find(runStep(config), 'service')
  t.ok(service.check?.(failedFirst, x).includes('revision fw-00001-abc is not the latest ready one (none)'))
})

t.test('edge: a custom IAP OAuth client is set from a flags file, its secret never in argv', async (t) => {
  const client = { clientId: '123-abc.apps.googleusercontent.com', secret: 'iap-oauth' }
  const c = validateConfig({ ...raw, iapOAuthClient: client }, '/')
  const backend = find(edgeStep(c), 'backend-service')
  const enable =
    backend.update?.(x, { securityPolicy: '.../securityPolicies/fw-armor', iap: { enabled: true } }) ?? []
  t.same(argv(enable), [
    'iap web enable --resource-type=backend-services --service=fw-backend --oauth2-client-id=123-abc.apps.googleusercontent.com --flags-file={file:iap-flags}',
  ])
  t.same(enable[0]?.secretFlags, { file: 'iap-flags', flag: '--oauth2-client-secret', secret: 'iap-oauth' })
  const done = {
    securityPolicy: '.../securityPolicies/fw-armor',
    iap: { enabled: true, oauth2ClientId: client.clientId },
  }
  t.same(backend.check?.(done, x), [])
  t.same(backend.check?.({ ...done, iap: { enabled: true } }, x), [
    `IAP OAuth client: live Google-managed, config ${client.clientId}`,
  ])
  t.same(backend.check?.({ ...done, iap: { enabled: true, oauth2ClientId: 'old' } }, x), [
    `IAP OAuth client: live old, config ${client.clientId}`,
  ])
  t.same(backend.check?.({ ...done, iap: { enabled: false } }, x), [
    `IAP: live off, config on with OAuth client ${client.clientId}`,
  ])
  const read = find(secretsStep(c), 'oauth-client-secret/iap-oauth')
  t.equal(read.readOnly, true)
  t.same(read.create(x), [], "the user's secret: never created here")
  t.equal(read.absent?.([], x), true, 'a secret without an enabled version counts as missing')
})

t.test('frontend: a MODERN TLS 1.2 policy on the HTTPS proxy; IPv6 only with IPv6 ranges', async (t) => {
  const f = frontendStep(config)
  const policy = find(f, 'ssl-policy')
  t.same(policy.check?.({ profile: 'MODERN', minTlsVersion: 'TLS_1_2' }, x), [])
  t.same(policy.check?.({ profile: 'COMPATIBLE', minTlsVersion: 'TLS_1_0' }, x), [
    'profile: live COMPATIBLE, config MODERN',
    'minimum TLS version: live TLS_1_0, config TLS_1_2',
  ])
  t.same(policy.check?.({}, x), [
    'profile: live none, config MODERN',
    'minimum TLS version: live none, config TLS_1_2',
  ])
  t.same(argv(policy.update?.(x, {}) ?? []), [
    'compute ssl-policies update fw-ssl-policy --global --profile=MODERN --min-tls-version=1.2',
  ])
  const proxy = find(f, 'https-proxy')
  t.same(proxy.check?.({}, x), ['SSL policy: live none, config fw-ssl-policy'])
  t.same(proxy.check?.({ sslPolicy: '.../sslPolicies/old' }, x), [
    'SSL policy: live old, config fw-ssl-policy',
  ])
  t.same(argv(proxy.update?.(x, {}) ?? []), [
    'compute target-https-proxies update fw-https-proxy --global --ssl-policy=fw-ssl-policy',
  ])
  t.equal(hasIpv6(config), false)
  t.equal(find(f, 'address-v6').when?.(config), false, 'IPv4 ranges only: no IPv6 address')
  const v6 = validateConfig({ ...raw, allowedCidrs: ['2001:db8::/32'] }, '/')
  t.equal(hasIpv6(v6), true)
  t.same(
    frontendStep(v6)
      .resources.filter((r) => r.when?.(v6))
      .map((r) => r.id),
    ['address-v6', 'https-rule-v6', 'http-rule-v6'],
  )
})

t.test('images: the build account gets write on the repository and read on the sources', async (t) => {
  const step = imagesStep(config)
  const repo = find(step, 'repository-access')
  t.same(argv(repo.create(x)), [
    'artifacts repositories add-iam-policy-binding fw --location=europe-west1 --member=serviceAccount:fw-build@demo-project.iam.gserviceaccount.com --role=roles/artifactregistry.writer',
  ])
  t.same(repo.describe(x), ['artifacts', 'repositories', 'get-iam-policy', 'fw', '--location=europe-west1'])
  t.same(repo.check?.({}, x), ['build service account lacks access'])
  t.equal(repo.update?.(x, {})[0]?.retryIam, true)
  const sources = find(step, 'source-access')
  t.same(
    sources.check?.(
      {
        bindings: [
          {
            role: 'roles/storage.objectViewer',
            members: ['serviceAccount:fw-build@demo-project.iam.gserviceaccount.com'],
          },
        ],
      },
      x,
    ),
    [],
  )
  t.same(argv(find(step, 'source-bucket').delete?.(x, {}) ?? []), [
    'storage rm --recursive gs://demo-project-fw-build-src',
  ])
  const yaml = find(step, 'image/gateway').create(x)[0]?.files?.['cloudbuild-yaml'] as string
  t.match(
    yaml,
    /serviceAccount: projects\/demo-project\/serviceAccounts\/fw-build@demo-project\.iam\.gserviceaccount\.com\noptions:\n {2}logging: CLOUD_LOGGING_ONLY/,
  )
})

t.test('the plan review lines: what the policy grants and what the service runs', async (t) => {
  t.same(policyReview(lockedPolicy(x, undefined)), [
    "policy-json: replaces the service's IAM policy with: roles/run.invoker -> serviceAccount:service-42@gcp-sa-iap.iam.gserviceaccount.com",
  ])
  const custom = validateConfig({ ...raw, app: { preset: 'custom', image: 'docker.io/a/b:1' } }, '/')
  const review = find(runStep(custom), 'service').create({ ...x, config: custom })[0]?.review ?? []
  t.match(review, [
    'service-yaml: ingress internal-and-cloud-load-balancing, run.app URL disabled',
    'service-yaml: runs as fw-run@demo-project.iam.gserviceaccount.com, at most 3 instance(s), requests up to 3600 s',
    /^service-yaml: container gateway: .*\(the only port: 8080\)$/,
    'service-yaml: container app: docker.io/a/b:1',
  ])
  t.equal(review.length, 4, 'no database: no Cloud SQL line')
  const svc = serviceObject(custom, serviceValues({ ...x, config: custom }))
  svc.metadata.annotations['run.googleapis.com/default-url-disabled'] = 'false'
  t.match(serviceReview(svc)[0], /run\.app URL enabled/, 'the line says what the YAML says')
})

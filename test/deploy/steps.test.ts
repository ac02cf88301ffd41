// The step data on its own: what each resource decides from a described state, without gcloud.
// The end-to-end tests cover the paths an apply from empty takes; these cover drift and teardown.
import t from 'tap'
import { validateConfig } from '../../deploy/config.ts'
import { apisStep, requiredApis } from '../../deploy/steps/apis.ts'
import { databaseStep } from '../../deploy/steps/database.ts'
import { edgeStep } from '../../deploy/steps/edge.ts'
import { frontendStep } from '../../deploy/steps/frontend.ts'
import { identityStep } from '../../deploy/steps/identity.ts'
import { imagesStep } from '../../deploy/steps/images.ts'
import { steps } from '../../deploy/steps/index.ts'
import { lockedPolicy, runStep } from '../../deploy/steps/run.ts'
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
  t.same(r.check?.(policy, x), ['roles/aiplatform.user not granted'])
  t.match(argv(r.update?.(x, policy) ?? []), [
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
    t.same(managed.update?.(x, [])[0]?.stdin, { kind: 'secret', secret: 'fw-db-password' })
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
    const drifted = {
      settings: { tier: 'db-f1-micro', ipConfiguration: {}, deletionProtectionEnabled: false },
    }
    t.same(sql.check?.(drifted, x), [
      'tier is db-f1-micro',
      'TLS is not enforced',
      'deletion protection differs',
    ])
    t.match(argv(sql.update?.(x, drifted) ?? []), [
      /sql instances patch fw-db --tier=db-g1-small --ssl-mode=ENCRYPTED_ONLY --deletion-protection/,
    ])
    t.throws(() => sql.delete?.(x, { settings: { deletionProtectionEnabled: true } }), {
      code: 'DEPLOY_ERR_REFUSED',
    })
    const learned = new Map<string, string>()
    sql.learn?.({ ipAddresses: [{ type: 'PRIMARY', ipAddress: '1.2.3.4' }] }, { ...x, facts: learned })
    t.same([...learned], [], 'no private address, nothing learned')
  },
)

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
  t.equal(armor.check?.(existing, x).length, 2)
  const backend = find(step, 'backend-service')
  t.same(backend.check?.({ securityPolicy: '.../securityPolicies/fw-armor', iap: { enabled: true } }, x), [])
  t.same(backend.check?.({}, x), ['compute backend-services update', 'iap web enable'])
  const iap = find(step, 'iap-access')
  const policy = {
    bindings: [{ role: 'roles/iap.httpsResourceAccessor', members: ['user:old@example.com'] }],
  }
  t.same(iap.check?.(policy, x), [
    'add-iam-policy-binding --member=user:a@example.com',
    'remove-iam-policy-binding --member=user:old@example.com',
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
      'run.invoker is not exactly the IAP service agent',
      'a public member is bound',
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
    'certificate is for old.example.com',
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
    ['repository', 'image/gateway'],
  )
  t.same(
    steps(custom).map((s) => s.id),
    ['apis', 'identity', 'images', 'edge', 'run', 'frontend'],
  )
  t.same(
    steps(config).map((s) => s.id),
    ['apis', 'identity', 'secrets', 'images', 'database', 'storage', 'edge', 'run', 'frontend'],
  )
})

// Google's JSON leaves out empty fields: a policy with no bindings has no `bindings`, a new instance no
// `ipAddresses`, a build that failed early no `logUrl`. Each reader must take the omission as "empty".
t.test('fields Google omits when empty are read as empty', async (t) => {
  t.same(find(apisStep, 'project').create(x), [], 'a read-only resource creates nothing')

  const db = databaseStep(config)
  t.match(argv(find(db, 'psa-peering').update?.(x, [{}]) ?? []), [/--ranges=fw-psa-range --network/])
  const sql = find(db, 'sql-instance')
  const learned = new Map<string, string>()
  sql.learn?.({}, { ...x, facts: learned })
  t.same([...learned], [])
  t.same(sql.check?.({}, x), ['tier is undefined', 'TLS is not enforced', 'deletion protection differs'])

  const cert = find(frontendStep(config), 'certificate')
  t.same(cert.check?.({}, x), ['certificate is for no domain'])
  t.same(cert.check?.({ managed: { domains: ['a.example.com'] } }, x), [])

  const build = find(imagesStep(config), 'image/gateway').create(x)[0]?.poll
  t.same(build?.describe({ id: 'b-1' }).slice(0, 3), ['builds', 'describe', 'b-1'])
  t.same(build?.describe({ metadata: { build: { id: 'b-2' } } }).slice(0, 3), ['builds', 'describe', 'b-2'])
  t.equal(build?.failed({ id: 'b-1', status: 'FAILURE' }), 'build b-1 ended FAILURE: ')
  t.equal(build?.failed({ id: 'b-1', status: 'SUCCESS' }), undefined)

  const identity = find(identityStep, 'project-roles')
  t.same(identity.check?.({}, x), [
    'roles/logging.logWriter not granted',
    'roles/aiplatform.user not granted',
  ])
  t.same(identity.check?.({ bindings: [{ role: 'roles/logging.logWriter' }] }, x).length, 2)

  const invoker = find(runStep(config), 'invoker')
  t.same(invoker.check?.({}, x), ['run.invoker is not exactly the IAP service agent'])
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

// The fake answers as Google's APIs do where the deploy depends on it: 404s, 409s, references,
// etags, Cloud Run's multi-container rules, injected faults, and the CONNECT tunnel gcloud uses for
// APIs without an endpoint override.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { gcloudEnv } from './gcloud-env.ts'
import { FakeGcp, isMutation } from './server.ts'

const fake = await new FakeGcp().start()
t.teardown(() => fake.close())

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${fake.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, body: (await res.json()) as any }
}

const C = '/compute/v1/projects/p/global'

t.test('compute: 404, create, 409, references on create and delete, operations', async (t) => {
  t.same((await call('GET', `${C}/addresses/a`)).body.error.status, 'NOT_FOUND')
  const op = await call('POST', `${C}/addresses`, { name: 'a' })
  t.equal(op.body.status, 'DONE')
  t.same((await call('GET', op.body.selfLink.slice(fake.base.length))).body.name, op.body.name)
  t.equal((await call('POST', `${C}/operations/${op.body.name}/wait`)).body.status, 'DONE')
  t.equal((await call('POST', `${C}/addresses`, { name: 'a' })).status, 409)
  t.match((await call('GET', `${C}/addresses/a`)).body.address, /^34\.120\.7\.\d+$/)
  const dangling = await call('POST', `${C}/urlMaps`, {
    name: 'm',
    defaultService: `${fake.base}${C}/backendServices/missing`,
  })
  t.equal(dangling.status, 400)
  t.match(dangling.body.error.message, /backendServices\/missing' was not found/)
  await call('POST', `${C}/backendServices`, { name: 'bs' })
  await call('POST', `${C}/urlMaps`, { name: 'm', defaultService: `${fake.base}${C}/backendServices/bs` })
  const inUse = await call('DELETE', `${C}/backendServices/bs`)
  t.equal(inUse.status, 400)
  t.equal(inUse.body.error.errors[0].reason, 'resourceInUseByAnotherResource')
  t.equal((await call('DELETE', `${C}/urlMaps/m`)).status, 200)
  t.equal((await call('DELETE', `${C}/backendServices/bs`)).status, 200)
  t.equal((await call('GET', `${C}/addresses`)).body.items.length, 1)
})

t.test('Armor rules: default rule, add, patch, remove', async (t) => {
  await call('POST', `${C}/securityPolicies`, { name: 's' })
  const rules = async () => (await call('GET', `${C}/securityPolicies/s`)).body.rules
  t.same(
    (await rules()).map((r: any) => r.action),
    ['allow'],
    'Google adds a default allow rule',
  )
  await call('POST', `${C}/securityPolicies/s/addRule`, { priority: 1000, action: 'allow' })
  t.equal((await call('POST', `${C}/securityPolicies/s/addRule`, { priority: 1000 })).status, 400)
  await call('POST', `${C}/securityPolicies/s/patchRule?priority=2147483647`, { action: 'deny(403)' })
  t.same((await call('GET', `${C}/securityPolicies/s/getRule?priority=2147483647`)).body.action, 'deny(403)')
  t.equal((await call('POST', `${C}/securityPolicies/s/removeRule?priority=1000`)).status, 200)
  t.equal((await call('POST', `${C}/securityPolicies/s/removeRule?priority=1000`)).status, 400)
  t.equal((await call('POST', `${C}/securityPolicies/s/patchRule?priority=5`, {})).status, 400)
  t.equal((await call('GET', `${C}/securityPolicies/s/getRule?priority=5`)).status, 400)
  t.equal((await call('POST', `${C}/securityPolicies/s/frobnicate`, {})).status, 400)
})

t.test('IAM policies: etags guard read-modify-write, unknown accounts are refused', async (t) => {
  const read = await call('POST', '/cloudresourcemanager/v1/projects/p:getIamPolicy', {})
  const policy = { bindings: [{ role: 'r', members: ['user:a@example.com'] }], etag: read.body.etag }
  t.equal((await call('POST', '/cloudresourcemanager/v1/projects/p:setIamPolicy', { policy })).status, 200)
  const stale = await call('POST', '/cloudresourcemanager/v1/projects/p:setIamPolicy', { policy })
  t.equal(stale.status, 409)
  t.equal(stale.body.error.status, 'ABORTED')
  const fresh = (await call('POST', '/cloudresourcemanager/v1/projects/p:getIamPolicy', {})).body
  const unknown = {
    bindings: [{ role: 'r', members: ['serviceAccount:nobody@p.iam.gserviceaccount.com'] }],
    etag: fresh.etag,
  }
  t.match(
    (await call('POST', '/cloudresourcemanager/v1/projects/p:setIamPolicy', { policy: unknown })).body.error
      .message,
    /does not exist/,
  )
  fake.simulatePropagation = true
  await call('POST', '/iam/v1/projects/p/serviceAccounts', { accountId: 'new' })
  fake.simulatePropagation = false
  const binding = {
    bindings: [{ role: 'r', members: ['serviceAccount:new@p.iam.gserviceaccount.com'] }],
    etag: fresh.etag,
  }
  t.equal(
    (await call('POST', '/cloudresourcemanager/v1/projects/p:setIamPolicy', { policy: binding })).status,
    400,
    'not propagated yet',
  )
  t.equal(
    (await call('POST', '/cloudresourcemanager/v1/projects/p:setIamPolicy', { policy: binding })).status,
    200,
    'then it is',
  )
})

t.test('Cloud Run refuses what Cloud Run refuses for multi-container services', async (t) => {
  await call('POST', '/iam/v1/projects/p/serviceAccounts', { accountId: 'run' })
  const svc = (containers: any[], deps?: string, sa = 'run@p.iam.gserviceaccount.com') => ({
    metadata: { name: 's' },
    spec: {
      template: {
        metadata: { annotations: deps ? { 'run.googleapis.com/container-dependencies': deps } : {} },
        spec: { serviceAccountName: sa, containers },
      },
    },
  })
  const post = (body: unknown) => call('POST', '/apis/serving.knative.dev/v1/namespaces/p/services', body)
  const port = [{ containerPort: 8080 }]
  t.match((await post(svc([]))).body.error.message, /at least one container/)
  t.match(
    (
      await post(
        svc([
          { name: 'a', ports: port },
          { name: 'b', ports: port },
        ]),
      )
    ).body.error.message,
    /exactly one container/,
  )
  t.match((await post(svc([{ ports: port }, { name: 'b' }]))).body.error.message, /must be named/)
  const slow = { name: 'b', startupProbe: { periodSeconds: 10, failureThreshold: 25 } }
  t.match((await post(svc([{ name: 'a', ports: port }, slow]))).body.error.message, /must not exceed 240/)
  t.match(
    (await post(svc([{ name: 'a', ports: port }, { name: 'b' }], '{"a":["b"]}'))).body.error.message,
    /must exist and have a startupProbe/,
  )
  t.match(
    (await post(svc([{ name: 'a', ports: port }], undefined, 'ghost@p.iam.gserviceaccount.com'))).body.error
      .message,
    /ghost.* does not exist/,
  )
  const ok = svc(
    [
      { name: 'a', ports: port },
      { name: 'b', startupProbe: { periodSeconds: 10, failureThreshold: 24 } },
    ],
    '{"a":["b"]}',
  )
  t.equal((await post(ok)).status, 200)
  t.equal((await post(ok)).status, 409)
  t.equal(
    (await call('PUT', '/apis/serving.knative.dev/v1/namespaces/p/services/s', ok)).body.metadata.generation,
    2,
  )
  t.equal((await call('PUT', '/apis/serving.knative.dev/v1/namespaces/p/services/none', ok)).status, 404)
  t.equal((await call('GET', '/v1/projects/p/locations/r/services/none:getIamPolicy')).status, 404)
  t.equal(
    (await call('POST', '/v1/projects/p/locations/r/services/none:setIamPolicy', { policy: {} })).status,
    404,
  )
  t.equal((await call('DELETE', '/apis/serving.knative.dev/v1/namespaces/p/services/s')).status, 200)
  t.equal((await call('DELETE', '/apis/serving.knative.dev/v1/namespaces/p/services/s')).status, 404)
})

t.test('Cloud SQL needs private services access and honours deletion protection', async (t) => {
  const instance = {
    name: 'db',
    region: 'r',
    settings: {
      deletionProtectionEnabled: true,
      ipConfiguration: { privateNetwork: 'projects/p/global/networks/n' },
    },
  }
  t.match(
    (await call('POST', '/sql/v1beta4/projects/p/instances', instance)).body.error.message,
    /Private services access/,
  )
  fake.resources.set('peering:projects/1/global/networks/n', {})
  t.equal((await call('POST', '/sql/v1beta4/projects/p/instances', instance)).status, 200)
  t.equal((await call('POST', '/sql/v1beta4/projects/p/instances', instance)).status, 409)
  t.equal(
    (await call('PUT', '/sql/v1beta4/projects/p/instances/db/users?name=u', { password: 'x' })).status,
    404,
  )
  await call('POST', '/sql/v1beta4/projects/p/instances/db/users', { name: 'u' })
  t.equal(
    (await call('PUT', '/sql/v1beta4/projects/p/instances/db/users?name=u', { name: 'u' })).status,
    400,
    'empty password refused',
  )
  t.equal((await call('DELETE', '/sql/v1beta4/projects/p/instances/db')).status, 400)
  await call('PATCH', '/sql/v1beta4/projects/p/instances/db', {
    settings: { deletionProtectionEnabled: false },
  })
  t.equal((await call('DELETE', '/sql/v1beta4/projects/p/instances/db/users?name=u')).status, 200)
  t.equal((await call('DELETE', '/sql/v1beta4/projects/p/instances/db')).status, 200)
  t.notOk([...fake.resources.keys()].some((k) => k.startsWith('sql')) && fake.resources.has('sql:p/db'))
  t.equal((await call('GET', '/sql/v1beta4/projects/p/instances/db/users')).status, 404)
})

t.test('faults are injected per route and counted down', async (t) => {
  fake.inject({ method: 'GET', pathIncludes: '/addresses/a', status: 503, times: 2 })
  t.equal((await call('GET', `${C}/addresses/a`)).status, 503)
  t.equal((await call('GET', `${C}/addresses/a`)).status, 503)
  t.equal((await call('GET', `${C}/addresses/a`)).status, 200)
  t.equal((await call('GET', '/nothing/here')).status, 501)
  t.ok(isMutation({ method: 'POST', path: '/x/y:setIamPolicy' }))
  t.notOk(isMutation({ method: 'POST', path: '/x/y:getIamPolicy' }))
  t.ok(fake.mutations().every((r) => r.status < 400))
})

t.test('gcloud reaches APIs without an override through the CONNECT tunnel', async (t) => {
  const env = { ...process.env, ...gcloudEnv(fake.port) }
  fake.resources.set('peering:projects/123456789012/global/networks/n', {
    network: 'projects/123456789012/global/networks/n',
    reservedPeeringRanges: ['r'],
  })
  const { stdout } = await promisify(execFile)(
    'gcloud',
    ['services', 'vpc-peerings', 'list', '--network=n', '--project=p', '--format=json'],
    { env },
  )
  t.same(JSON.parse(stdout)[0].reservedPeeringRanges, ['r'])
  t.ok(fake.requests.some((r) => r.path.startsWith('/servicenetworking/v1/services/')))
})

// The fake answers as Google's APIs do where the deploy depends on it: 404s, 409s, references,
// etags, Cloud Run's multi-container rules, injected faults, and the CONNECT tunnel gcloud uses for
// APIs without an endpoint override.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import t from 'tap'
import { gcloudEnv } from './gcloud-env.ts'
import type { ApiJson } from './server.ts'
import { FakeGcp, isMutation } from './server.ts'
import { LEGACY_ACL_REFUSED } from './storage.ts'
import { startStorageFake } from './storage-emulator.ts'

const fake = await new FakeGcp().start()
t.teardown(() => fake.close())

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${fake.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, body: (await res.json()) as ApiJson }
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
    (await rules()).map((r: ApiJson) => r.action),
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
  const svc = (containers: ApiJson[], deps?: string, sa = 'run@p.iam.gserviceaccount.com') => ({
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
  // a liveness probe has no 240 s window (it runs for the instance's life): a slow one is accepted
  const patient = { name: 'b', livenessProbe: { periodSeconds: 60, failureThreshold: 10 } }
  t.equal(
    (
      await call(
        'PUT',
        '/apis/serving.knative.dev/v1/namespaces/p/services/s',
        svc([{ name: 'a', ports: port }, patient]),
      )
    ).status,
    200,
    'a 600 s liveness window',
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
  await call('POST', '/sql/v1beta4/projects/p/instances/db/users', { name: 'u', password: 'first' })
  t.equal(
    (await call('PUT', '/sql/v1beta4/projects/p/instances/db/users?name=u', { name: 'u' })).status,
    400,
    'empty password refused',
  )
  t.equal((await call('DELETE', '/sql/v1beta4/projects/p/instances/db')).status, 400)
  // patch semantics merge nested messages: a partial ipConfiguration keeps the private network
  await call('PATCH', '/sql/v1beta4/projects/p/instances/db', {
    settings: { deletionProtectionEnabled: false, ipConfiguration: { sslMode: 'ENCRYPTED_ONLY' } },
  })
  t.same(fake.resources.get('sql:p/db').settings.ipConfiguration, {
    privateNetwork: 'projects/p/global/networks/n',
    sslMode: 'ENCRYPTED_ONLY',
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

// Issue 14: the behaviours the fake models from Google's documentation and issue threads (docs/fake-gcp.md).
t.test(
  'Cloud SQL: edition defaults, tiers per edition, log retention, passwords, final backups',
  async (t) => {
    fake.resources.set('peering:projects/1/global/networks/n2', {})
    const net = { ipConfiguration: { privateNetwork: 'projects/p/global/networks/n2' } }
    const create = (name: string, version: string, settings: Record<string, unknown>) =>
      call('POST', '/sql/v1beta4/projects/p/instances', {
        name,
        databaseVersion: version,
        settings: { ...net, ...settings },
      })
    const noEdition = await create('pg16', 'POSTGRES_16', { tier: 'db-g1-small' })
    t.equal(noEdition.status, 400)
    t.equal(
      noEdition.body.error.message,
      'Invalid request: Invalid Tier (db-g1-small) for (ENTERPRISE_PLUS) Edition. Use a predefined Tier like db-perf-optimized-N-* instead.',
    )
    t.match(
      (await create('perf', 'POSTGRES_16', { tier: 'db-perf-optimized-N-2', edition: 'ENTERPRISE' })).body
        .error.message,
      /Invalid Tier \(db-perf-optimized-N-2\) for \(ENTERPRISE\) Edition/,
    )
    t.match(
      (
        await create('logs', 'POSTGRES_16', {
          tier: 'db-g1-small',
          edition: 'ENTERPRISE',
          backupConfiguration: { transactionLogRetentionDays: 8 },
        })
      ).body.error.message,
      /transaction log retention days must be between 1 and 7/,
    )
    t.equal(
      (await create('pg15', 'POSTGRES_15', { tier: 'db-g1-small' })).status,
      200,
      'before 16 the default is ENTERPRISE',
    )
    t.match(fake.resources.get('sql:p/pg15').settings, {
      edition: 'ENTERPRISE',
      availabilityType: 'ZONAL',
      backupConfiguration: {
        enabled: false,
        pointInTimeRecoveryEnabled: false,
        transactionLogRetentionDays: 7,
      },
    })
    t.equal((await create('plus', 'POSTGRES_16', { tier: 'db-perf-optimized-N-2' })).status, 200)
    t.match(fake.resources.get('sql:p/plus').settings.backupConfiguration, {
      pointInTimeRecoveryEnabled: true,
      transactionLogRetentionDays: 14,
      backupRetentionSettings: { retainedBackups: 15 },
    })
    t.match(
      (
        await call('PATCH', '/sql/v1beta4/projects/p/instances/pg15', {
          settings: { tier: 'db-perf-optimized-N-2' },
        })
      ).body.error.message,
      /Invalid Tier/,
      'a patch is checked as a create',
    )
    const user = await call('POST', '/sql/v1beta4/projects/p/instances/pg15/users', { name: 'u' })
    t.equal(user.body.error.message, 'Invalid request: Missing user password for PostgreSQL instance.')
    t.equal(
      (
        await call('POST', '/sql/v1beta4/projects/p/instances/pg15/users', {
          name: 'iam',
          type: 'CLOUD_IAM_USER',
        })
      ).status,
      200,
    )
    t.equal(
      (
        await call(
          'DELETE',
          '/sql/v1beta4/projects/p/instances/pg15?enableFinalBackup=True&finalBackupTtlDays=9',
        )
      ).status,
      200,
    )
    t.match(fake.resources.get('sql-backup:p/pg15/final'), { type: 'FINAL', ttlDays: 9 })
    t.ok(fake.producerHolds.has('n2'), 'the deleted instance still holds the peering')
    fake.releaseProducerHolds()
    t.equal(fake.producerHolds.size, 0)
    t.equal((await call('DELETE', '/sql/v1beta4/projects/p/instances/plus')).status, 200)
    t.notOk(fake.resources.has('sql-backup:p/plus/final'), 'no final backup unless asked')
  },
)

t.test('Cloud Run: failing revisions, launch stages, acting as the service account', async (t) => {
  await call('POST', '/iam/v1/projects/p/serviceAccounts', { accountId: 'rev' })
  const body = (annotations: Record<string, string> = {}) => ({
    metadata: { name: 'rev', annotations },
    spec: {
      template: {
        spec: {
          serviceAccountName: 'rev@p.iam.gserviceaccount.com',
          containers: [{ name: 'a', ports: [{ containerPort: 8080 }] }],
        },
      },
    },
  })
  const post = (b: unknown) => call('POST', '/apis/serving.knative.dev/v1/namespaces/p/services', b)
  t.match(
    (await post(body({ 'run.googleapis.com/default-url-disabled': 'true' }))).body.error.message,
    /The feature 'default URL disabled' is not supported in the declared launch stage .* at least as BETA/,
  )
  fake.revisionFailures.push('The user-provided container failed to start.')
  const failed = await post(
    body({ 'run.googleapis.com/default-url-disabled': 'true', 'run.googleapis.com/launch-stage': 'BETA' }),
  )
  t.equal(failed.status, 200)
  t.match(failed.body.status, {
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        message:
          "Revision 'rev-00001-abc' is not ready and cannot serve traffic. The user-provided container failed to start.",
      },
    ],
    latestCreatedRevisionName: 'rev-00001-abc',
    traffic: [],
  })
  t.notOk('latestReadyRevisionName' in failed.body.status)
  t.notOk('url' in failed.body.status, 'no run.app URL when it is disabled')
  const ok = await call('PUT', '/apis/serving.knative.dev/v1/namespaces/p/services/rev', body())
  t.match(ok.body.status, { latestReadyRevisionName: 'rev-00002-abc', url: /run\.app$/ })
  fake.revisionFailures.push('again')
  const second = await call('PUT', '/apis/serving.knative.dev/v1/namespaces/p/services/rev', body())
  t.match(second.body.status, {
    latestReadyRevisionName: 'rev-00002-abc',
    latestCreatedRevisionName: 'rev-00003-abc',
    // TrafficTarget.latestRevision "may be optionally provided to indicate that the latest ready Revision
    // of the Configuration should be used" (Cloud Run Admin API v1): a failed newer revision gets none
    traffic: [{ revisionName: 'rev-00002-abc', percent: 100, latestRevision: true }],
  })
  fake.caller = { member: 'user:dev@example.com', roles: ['roles/run.admin'] }
  const denied = await call('PUT', '/apis/serving.knative.dev/v1/namespaces/p/services/rev', body())
  t.equal(denied.status, 403)
  t.equal(
    denied.body.error.message,
    "Permission 'iam.serviceaccounts.actAs' denied on service account rev@p.iam.gserviceaccount.com (or it may not exist).",
  )
  fake.caller = { member: 'user:dev@example.com', roles: ['roles/run.admin', 'roles/iam.serviceAccountUser'] }
  t.equal((await call('PUT', '/apis/serving.knative.dev/v1/namespaces/p/services/rev', body())).status, 200)
  fake.caller = undefined
})

t.test('Cloud Build: its own account must log somewhere of its own and hold its roles', async (t) => {
  const builds = '/cloudbuild/v1/projects/p/locations/r/builds'
  const sa = 'projects/p/serviceAccounts/builder@p.iam.gserviceaccount.com'
  const image = 'r-docker.pkg.dev/p/repo/img:1'
  const status = async (b: ApiJson) => (await call('GET', `${builds}/${b.body.metadata.build.id}`)).body
  const legacy = await call('POST', builds, { images: [image] })
  t.match(await status(legacy), { status: 'FAILURE', statusDetail: /Compute Engine default service account/ })
  t.match(
    (await call('POST', builds, { serviceAccount: sa })).body.error.message,
    /must either \(a\) specify 'build\.logs_bucket'/,
  )
  const logged = { serviceAccount: sa, options: { logging: 'CLOUD_LOGGING_ONLY' } }
  t.match(
    (await call('POST', builds, logged)).body.error.message,
    /builder@p\.iam\.gserviceaccount\.com does not exist/,
  )
  await call('POST', '/iam/v1/projects/p/serviceAccounts', { accountId: 'builder' })
  fake.caller = { member: 'user:dev@example.com', roles: [] }
  t.equal((await call('POST', builds, logged)).status, 403, 'running a build as an account is acting as it')
  fake.caller = undefined
  t.match(await status(await call('POST', builds, logged)), {
    statusDetail: /lacks roles\/logging\.logWriter/,
  })
  const member = 'serviceAccount:builder@p.iam.gserviceaccount.com'
  const project = (await call('POST', '/cloudresourcemanager/v1/projects/p:getIamPolicy', {})).body
  await call('POST', '/cloudresourcemanager/v1/projects/p:setIamPolicy', {
    policy: {
      ...project,
      bindings: [...project.bindings, { role: 'roles/logging.logWriter', members: [member] }],
    },
  })
  await call('POST', '/storage/v1/b?project=p', { name: 'src' })
  const fromSource = { ...logged, source: { storageSource: { bucket: 'src' } }, images: [image] }
  t.match(await status(await call('POST', builds, fromSource)), {
    statusDetail: /does not have storage\.objects\.get access to gs:\/\/src/,
  })
  await call('PUT', '/storage/v1/b/src/iam', {
    bindings: [{ role: 'roles/storage.objectViewer', members: [member] }],
  })
  await call('POST', '/artifactregistry/v1/projects/p/locations/r/repositories?repositoryId=repo', {
    format: 'DOCKER',
  })
  t.match(await status(await call('POST', builds, fromSource)), {
    statusDetail: /uploadArtifacts' denied on repository repo/,
  })
  const repo = '/artifactregistry/v1/projects/p/locations/r/repositories/repo'
  const policy = (await call('GET', `${repo}:getIamPolicy`)).body
  await call('POST', `${repo}:setIamPolicy`, {
    policy: { ...policy, bindings: [{ role: 'roles/artifactregistry.writer', members: [member] }] },
  })
  t.match(await status(await call('POST', builds, fromSource)), { status: 'SUCCESS' })
  t.ok(fake.resources.has('ar-tag:p/r/repo/img/1'), 'and the image is pushed')
  t.equal(
    (await call('GET', '/artifactregistry/v1/projects/p/locations/r/repositories/none:getIamPolicy')).status,
    404,
  )
  t.equal(
    (
      await call('POST', '/artifactregistry/v1/projects/p/locations/r/repositories/none:setIamPolicy', {
        policy: {},
      })
    ).status,
    404,
  )
  t.equal((await call('DELETE', repo)).status, 200)
  t.notOk(fake.resources.has('policy:ar/p/r/repo'), 'the policy goes with the repository')
})

t.test('Cloud Storage: legacy ACLs refused on uniform buckets; resumable uploads; media reads', async (t) => {
  const {
    url,
    fake: gcs,
    close,
  } = await startStorageFake([
    { name: 'uniform', uniformBucketLevelAccess: true },
    { name: 'legacy', uniformBucketLevelAccess: false },
  ])
  t.teardown(close)
  const req = (method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body }),
    })
  const start = (bucket: string, query: string, metadata: unknown = {}) =>
    req(
      'POST',
      `/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=a%2Fb.txt${query}`,
      JSON.stringify(metadata),
    )
  const refused = await start('uniform', '&predefinedAcl=private')
  t.equal(refused.status, 400)
  t.same(((await refused.json()) as ApiJson).error.errors[0], {
    message: LEGACY_ACL_REFUSED,
    domain: 'global',
    reason: 'invalid',
  })
  t.equal(
    (await start('uniform', '', { acl: [{ entity: 'allUsers', role: 'READER' }] })).status,
    400,
    'acl in the metadata too',
  )
  t.equal((await start('legacy', '&predefinedAcl=private')).status, 200, 'a fine-grained bucket takes ACLs')
  const session = (await start('uniform', '')).headers.get('location') as string
  const path = session.slice(url.length)
  const bytes = (range: string) => ({ 'content-range': range, 'content-type': 'text/plain' })
  t.equal((await req('PUT', path, Buffer.from('hel'), bytes('bytes 0-2/*'))).status, 308)
  t.equal((await req('PUT', path, Buffer.alloc(0), bytes('bytes */*'))).status, 308)
  const done = await req('PUT', path, Buffer.from('lo'), bytes('bytes 3-4/5'))
  t.match(await done.json(), { name: 'a/b.txt', size: '5' })
  t.equal(await (await req('GET', '/storage/v1/b/uniform/o/a%2Fb.txt?alt=media')).text(), 'hello')
  t.match(await (await req('GET', '/storage/v1/b/uniform/o/a%2Fb.txt')).json(), { bucket: 'uniform' })
  t.equal((await req('GET', '/storage/v1/b/uniform/o/none?alt=media')).status, 404)
  t.equal(
    (
      await req(
        'PUT',
        '/upload/storage/v1/b/uniform/o?uploadType=resumable&upload_id=none',
        'x',
        bytes('bytes 0-0/1'),
      )
    ).status,
    404,
  )
  t.same(
    ((await (await req('GET', '/storage/v1/b/uniform/o?prefix=a%2F')).json()) as ApiJson).items.map(
      (o: ApiJson) => o.name,
    ),
    ['a/b.txt'],
  )
  t.equal((await req('DELETE', '/storage/v1/b/uniform/o/a%2Fb.txt')).status, 204)
  t.notOk(gcs.media.has('uniform/a/b.txt'))
})

t.test('Compute: an IAP client secret is kept as its hash only; IPv6 addresses', async (t) => {
  await call('POST', `${C}/backendServices`, { name: 'iap-bs' })
  await call('PATCH', `${C}/backendServices/iap-bs`, {
    iap: { enabled: true, oauth2ClientId: 'id', oauth2ClientSecret: 's3cret' },
  })
  const bs = (await call('GET', `${C}/backendServices/iap-bs`)).body
  t.same(bs.iap, {
    enabled: true,
    oauth2ClientId: 'id',
    oauth2ClientSecretSha256: createHash('sha256').update('s3cret').digest('hex'),
  })
  t.equal(fake.payloads.get('iap-client-secret:iap-bs'), 's3cret')
  t.notMatch(JSON.stringify(bs), /s3cret/)
  await call('POST', `${C}/addresses`, { name: 'v6', ipVersion: 'IPV6' })
  t.match((await call('GET', `${C}/addresses/v6`)).body.address, /^2600:1901:0:\d+::$/)
})

t.test('Service Networking: the delete operation fails while an instance holds the peering', async (t) => {
  fake.resources.set('peering:projects/123456789012/global/networks/held', {
    network: 'projects/123456789012/global/networks/held',
  })
  fake.producerHolds.add('held')
  const del = (
    await call('POST', '/servicenetworking/v1/services/servicenetworking.googleapis.com/connections/-', {
      consumerNetwork: 'projects/123456789012/global/networks/held',
    })
  ).body
  t.match(del, {
    done: true,
    error: {
      code: 9,
      message: /Producer services \(e\.g\. CloudSQL, Cloud Memstore, etc\.\) are still using this connection/,
    },
  })
  t.same(
    (await call('GET', `/servicenetworking/v1/${del.name}`)).body,
    del,
    "gcloud's wait reads the same outcome",
  )
  t.equal((await call('GET', '/servicenetworking/v1/operations/none')).status, 404)
  fake.releaseProducerHolds()
  const ok = (
    await call('POST', '/servicenetworking/v1/services/servicenetworking.googleapis.com/connections/-', {
      consumerNetwork: 'projects/123456789012/global/networks/held',
    })
  ).body
  t.match(ok, { done: true, response: {} })
})

// The second example: a stock web app (traefik/whoami) behind the same gateway, with no database,
// bucket or generated secrets. Apply from empty, re-apply without changes, destroy.
import t from 'tap'
import { harness, webappConfig } from './harness.ts'

t.setTimeout(1_200_000)

t.test('a stock web app behind the gateway', async (t) => {
  const h = await harness()
  t.teardown(() => h.close())
  // The example file itself, with only the project changed.
  const config = h.writeConfig('webapp.yaml', webappConfig())

  // A read that fails for another reason than "not found" stops the run at once.
  h.fake.inject({
    method: 'GET',
    pathIncludes: '/cloudresourcemanager/v1/projects/demo-project',
    status: 403,
    times: 9,
  })
  const denied = await h.deploy(['apply', '--config', config])
  t.equal(denied.code, 1)
  t.match(
    denied.stderr,
    /^DEPLOY_ERR_GCLOUD: command failed \(exit 1\): gcloud projects describe demo-project --project=demo-project --format=json --quiet\n.*injected 403/s,
  )
  h.fake.faults.length = 0

  // A build that runs a while and then fails stops the apply with the build's status.
  h.fake.buildStatuses = ['QUEUED', 'WORKING', 'FAILURE']
  const failed = await h.deploy(['apply', '--config', config])
  t.equal(failed.code, 1)
  t.match(
    failed.stderr,
    /^DEPLOY_ERR_GCLOUD: build build-\d+ ended FAILURE: https:\/\/console\.cloud\.google\.com\/cloud-build\/builds\//,
  )
  t.same(h.fake.buildStatuses, [], 'polled until the build ended')

  const r = await h.deploy(['apply', '--config', config])
  t.equal(r.code, 0, r.stderr)
  const keys = Object.keys(h.fake.snapshot())
  t.notOk(
    keys.some((k) => /^(sql|bucket:demo-project-whoami|secret|peering):/.test(k)),
    'no Flowise parts',
  )
  t.notOk(
    h.fake.requests.some(
      (q) =>
        q.path.includes('/builds') && (q.body as any)?.images?.some((i: string) => i.includes('/whoami:')),
    ),
    'the app image is not built',
  )
  const svc = h.fake.resources.get('run:demo-project/whoami')
  const [gateway, app] = svc.spec.template.spec.containers
  t.equal(app.image, 'docker.io/traefik/whoami:v1.10.3')
  t.same(app.env, [{ name: 'WHOAMI_PORT_NUMBER', value: '3000' }])
  t.same(app.startupProbe.httpGet, { path: '/health', port: 3000 })
  t.equal(app.startupProbe.failureThreshold * app.startupProbe.periodSeconds, 60)
  t.notOk(app.ports)
  t.same(gateway.ports, [{ name: 'http1', containerPort: 8080 }])
  t.notOk('run.googleapis.com/network-interfaces' in svc.spec.template.metadata.annotations)
  t.same(JSON.parse(svc.spec.template.metadata.annotations['run.googleapis.com/container-dependencies']), {
    gateway: ['whoami'],
  })
  t.same(h.fake.resources.get('policy:project/demo-project').bindings, [
    {
      role: 'roles/logging.logWriter',
      members: ['serviceAccount:whoami-run@demo-project.iam.gserviceaccount.com'],
    },
  ])
  t.notMatch(h.fake.requests.map((q) => q.raw).join('\n'), /allUsers/)

  const before = h.fake.requests.length
  const again = await h.deploy(['apply', '--config', config])
  t.equal(again.code, 0, again.stderr)
  t.same(
    h.fake.requests.slice(before).filter((q) => q.method !== 'GET' && !q.path.endsWith(':getIamPolicy')),
    [],
  )

  const gone = await h.deploy(['destroy', '--yes', '--config', config])
  t.equal(gone.code, 0, gone.stderr)
  const left = Object.keys(h.fake.snapshot()).filter((k) => !/^(compute-op|build|object|api):/.test(k))
  t.same(left.sort(), [
    'bucket:demo-project_cloudbuild',
    `iam-sa:service-${h.fake.projectNumber}@gcp-sa-iap.iam.gserviceaccount.com`,
    'policy:project/demo-project',
  ])
})

// The second example: a stock web app (traefik/whoami) behind the same gateway, with no database,
// bucket or generated secrets. Apply from empty, re-apply without changes, destroy.
import t from 'tap'
import { harness, webappConfig } from './harness.ts'

t.setTimeout(600_000)

t.test('a stock web app behind the gateway', async (t) => {
  const h = await harness()
  t.teardown(() => h.close())
  // The example file itself, with only the project changed.
  const config = h.writeConfig('webapp.yaml', webappConfig())

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

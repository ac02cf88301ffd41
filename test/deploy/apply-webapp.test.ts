// The second example: a stock web app (traefik/whoami) behind the same gateway, with no database,
// bucket or generated secrets, and a custom IAP OAuth client whose secret the user keeps in Secret
// Manager. Apply from empty, re-apply without changes, destroy.
import { crc32c } from '@aws-crypto/crc32c'
import t from 'tap'
import { harness, webappConfig } from './harness.ts'

const CLIENT_SECRET = 'GOCSPX-a "quoted" secret: with $pecial chars'

t.setTimeout(1_200_000)

t.test('a stock web app behind the gateway', async (t) => {
  const h = await harness()
  t.teardown(() => h.close())
  // The example file itself, with only the project changed, and a custom OAuth client for IAP.
  const client = { clientId: '123-abc.apps.googleusercontent.com', secret: 'whoami-iap-oauth' }
  const config = h.writeConfig('webapp.yaml', { ...webappConfig(), iapOAuthClient: client })
  // The user made the client in the console and stored its secret (docs/deploy.md).
  const api = `${h.fake.base}/secretmanager/v1/projects/demo-project/secrets`
  const json = { 'content-type': 'application/json' }
  await fetch(`${api}?secretId=${client.secret}`, { method: 'POST', headers: json, body: '{}' })
  const data = Buffer.from(CLIENT_SECRET)
  await fetch(`${api}/${client.secret}:addVersion`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ payload: { data: data.toString('base64'), dataCrc32c: String(crc32c(data)) } }),
  })
  const plan = await h.deploy(['plan', '--offline', '--config', config])
  t.match(
    plan.stdout,
    /gcloud iap web enable --resource-type=backend-services --service=whoami-backend --oauth2-client-id=123-abc\.apps\.googleusercontent\.com --flags-file=\{file:iap-flags\} .*\n {8}iap-flags: --oauth2-client-secret = secret whoami-iap-oauth version latest \(not shown\)/,
  )

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
    keys.some((k) =>
      /^(sql|bucket:demo-project-whoami-files|peering):|^secret:(?!demo-project\/whoami-iap-oauth$)/.test(k),
    ),
    'no Flowise parts',
  )
  t.notOk(
    h.fake.requests.some(
      (q) =>
        q.path.includes('/builds') &&
        (q.body as { images?: string[] } | undefined)?.images?.some((i) => i.includes('/whoami:')),
    ),
    'the app image is not built',
  )
  // IAP uses the custom client; Compute keeps only the secret's hash; gcloud got it from a flags file.
  const bs = h.fake.resources.get('compute:projects/demo-project/global/backendServices/whoami-backend')
  t.match(bs.iap, {
    enabled: true,
    oauth2ClientId: client.clientId,
    oauth2ClientSecretSha256: /^[0-9a-f]{64}$/,
  })
  t.equal(
    h.fake.payloads.get('iap-client-secret:whoami-backend'),
    CLIENT_SECRET,
    'the secret as stored, every character',
  )
  t.notOk(h.argvLog().flat().join('\n').includes('GOCSPX'), 'not on any argv')
  t.notOk(h.gcloudFiles().includes('GOCSPX'), "not in gcloud's log files")
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
      members: [
        'serviceAccount:whoami-run@demo-project.iam.gserviceaccount.com',
        'serviceAccount:whoami-build@demo-project.iam.gserviceaccount.com',
      ],
    },
  ])
  t.notOk('run.googleapis.com/cloudsql-instances' in svc.spec.template.metadata.annotations)
  t.equal(svc.spec.template.metadata.annotations['autoscaling.knative.dev/maxScale'], '2')
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
  const left = Object.keys(h.fake.snapshot()).filter((k) => !/^(compute-op|build|object|api|lro):/.test(k))
  t.same(
    left.sort(),
    [
      `iam-sa:service-${h.fake.projectNumber}@gcp-sa-iap.iam.gserviceaccount.com`,
      'policy:project/demo-project',
      'secret-version:demo-project/whoami-iap-oauth/1',
      'secret:demo-project/whoami-iap-oauth',
    ],
    "the user's OAuth client secret is not the deploy's to delete",
  )
})

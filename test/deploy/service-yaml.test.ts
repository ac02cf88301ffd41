import t from 'tap'
import { parse } from 'yaml'
import { validateConfig } from '../../deploy/config.ts'
import { differences, serviceObject, serviceYaml } from '../../deploy/service-yaml.ts'

const base = {
  project: 'demo-project',
  region: 'europe-west1',
  domain: 'a.example.com',
  allowedCidrs: ['10.0.0.0/8'],
  iapMembers: ['domain:example.com'],
}
const values = {
  gatewayImage: 'g:1',
  appImage: 'a:1',
  serviceAccount: 'sa@demo-project.iam.gserviceaccount.com',
  audience: '/projects/1/global/backendServices/2',
}

t.test('custom app: its own port, args, env and secrets; no database, bucket or VPC egress', async (t) => {
  const c = validateConfig(
    {
      ...base,
      minInstances: 1,
      allowedEmails: ['a@example.com'],
      allowedDomains: ['example.com'],
      app: {
        preset: 'custom',
        image: 'docker.io/x/y:1',
        port: 5000,
        args: ['--port', '5000'],
        env: { A: 'b' },
        secrets: { KEY: 'generate' },
      },
    },
    '/',
  )
  const svc = serviceObject(c, values)
  const [gateway, app] = svc.spec.template.spec.containers
  t.equal(app.name, 'app')
  t.same(app.args, ['--port', '5000'])
  t.same(app.env, [
    { name: 'KEY', value: 'sm://demo-project/flowise-key' },
    { name: 'A', value: 'b' },
  ])
  t.same(app.startupProbe.httpGet, { path: '/', port: 5000 })
  const genv = Object.fromEntries(gateway.env.map((e) => [e.name, e.value]))
  t.equal(genv.UPSTREAM_URL, 'http://127.0.0.1:5000')
  t.equal(genv.ALLOWED_EMAILS, 'a@example.com')
  t.equal(genv.ALLOWED_DOMAINS, 'example.com')
  const annotations = svc.spec.template.metadata.annotations
  t.equal(annotations['autoscaling.knative.dev/minScale'], '1')
  t.notOk('run.googleapis.com/network-interfaces' in annotations)
  t.same(parse(serviceYaml(c, values)), svc, 'the YAML is the object')
})

t.test('Flowise moved off 3000 gets PORT; its probe window is the whole startupSeconds', async (t) => {
  const c = validateConfig({ ...base, app: { port: 3100, startupSeconds: 95 } }, '/')
  const app = serviceObject(c, values).spec.template.spec.containers[1]
  t.ok(app.env.some((e) => e.name === 'PORT' && e.value === '3100'))
  t.equal(app.startupProbe.failureThreshold * app.startupProbe.periodSeconds, 100)
})

t.test('differences: what the config sets must be there; Google may add more', async (t) => {
  t.same(differences({ a: 1, b: { c: 'x' } }, { a: '1', b: { c: 'x', extra: true }, more: 1 }), [])
  t.same(differences({ a: [1, 2] }, { a: [1] }), ['a: live 1 entry, config 2 entries'])
  t.same(differences({ a: [{ x: 1 }] }, { a: [{ x: 2 }] }), ['a[0].x: live 2, config 1'])
  t.same(differences({ a: { b: 1 } }, { a: 'flat' }), ['a: live flat, config a mapping'])
  t.same(differences('x', 'y'), ['(value): live y, config x'])
  t.same(differences({ cpu: '2' }, {}), ['cpu: live unset, config 2'])
  t.same(differences({ a: 'x', b: 'y' }, { a: { n: 1 }, b: null }), [
    'a: live a mapping, config x',
    'b: live null, config y',
  ])
  t.same(
    differences(
      { env: [{ name: 'K', value: 'from-config' }] },
      { env: [{ name: 'K', value: 'set-by-hand' }] },
    ),
    ['env[0].value: live and config differ (values not shown)'],
    "a variable's value is not shown: one set by hand may be a secret",
  )
})

// Issue 14, points 2, 10, 12 and 15: what the Flowise container and the service say.
t.test(
  'Flowise: the Cloud SQL socket, the pinned password version, uniform bucket access, no run.app URL',
  async (t) => {
    const c = validateConfig({ ...base, name: 'fw' }, '/')
    const svc = serviceObject(c, { ...values, databasePasswordVersion: '3' })
    const env = Object.fromEntries(svc.spec.template.spec.containers[1].env.map((e) => [e.name, e.value]))
    t.match(env, {
      DATABASE_HOST: '/cloudsql/demo-project:europe-west1:fw-db',
      DATABASE_PORT: '5432',
      DATABASE_PASSWORD: 'sm://demo-project/fw-db-password#3',
      GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS: 'true',
    })
    t.notOk('DATABASE_SSL' in env || 'DATABASE_SSL_KEY_BASE64' in env, 'no TLS settings that verify nothing')
    t.equal(
      svc.spec.template.metadata.annotations['run.googleapis.com/cloudsql-instances'],
      'demo-project:europe-west1:fw-db',
    )
    t.match(svc.metadata.annotations, {
      'run.googleapis.com/default-url-disabled': 'true',
      'run.googleapis.com/launch-stage': 'BETA',
    })
    t.same(
      differences(svc, {
        ...svc,
        metadata: {
          ...svc.metadata,
          annotations: { ...svc.metadata.annotations, 'run.googleapis.com/launch-stage': 'GA' },
        },
      }),
      [],
      'Google may rewrite the launch stage it reads back',
    )
  },
)

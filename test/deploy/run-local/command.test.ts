// `npm run deploy -- run-local` without podman: options, --check (render + Cloud Run's rules), the
// local render and its stand-ins, the image map, the secrets the local Secret Manager must hold, and
// the plan of what each container gets. The run itself is in npm run test:images and test:e2e.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { readConfig, validateConfig } from '../../../deploy/config.ts'
import { main } from '../../../deploy/main.ts'
import { describe as describeService, parseRunLocal } from '../../../deploy/run-local/command.ts'
import { localSecrets } from '../../../deploy/run-local/local-secrets.ts'
import {
  hostPorts,
  planService,
  secretFiles,
  secretVersions,
  versionName,
} from '../../../deploy/run-local/plan.ts'
import { LOCAL_FACTS, localImages, renderLocal } from '../../../deploy/run-local/render-local.ts'
import { checkService, readService } from '../../../deploy/run-local/service.ts'
import { serviceWithContainers } from '../../helpers/knative-service.ts'

const ROOT = new URL('../../../', import.meta.url).pathname
const EXAMPLE = `${ROOT}deploy.config.example.yaml`
const WEBAPP = `${ROOT}deploy.config.webapp.example.yaml`
const facts = LOCAL_FACTS

async function run(args: string[]) {
  let stdout = ''
  let stderr = ''
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  })
  return { code, stdout, stderr }
}

// biome-ignore lint/suspicious/noExplicitAny: the tests edit YAML documents as free-form data
type Doc = any

const dir = mkdtempSync(join(tmpdir(), 'run-local-'))
function configFile(edit: (raw: Doc) => void): string {
  const raw = parse(readFileSync(EXAMPLE, 'utf8'))
  edit(raw)
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, stringify(raw))
  return file
}

t.test(
  '--check renders the service without Google and checks it against Cloud Run, running nothing',
  async (t) => {
    const out = join(dir, 'service.yaml')
    const r = await run(['run-local', '--config', EXAMPLE, '--check', '--out', out])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /containers start in this order: flowise, then gateway/)
    t.match(
      r.stdout,
      /image europe-west1-docker\.pkg\.dev\/my-flowise-project\/flowise\/gateway:0\.1\.0 -> localhost\/iap-gateway\/gateway:local/,
    )
    t.match(r.stdout, /startup probe: http port 3000\/api\/v1\/ping, every 10 s, window 240 s/)
    t.match(
      r.stdout,
      /secrets \(from the local Secret Manager\): DATABASE_PASSWORD, FLOWISE_SECRETKEY_OVERWRITE/,
    )
    t.match(r.stdout, /Cloud Run would accept this service/)
    const written = readFileSync(out, 'utf8')
    t.match(
      written,
      /IAP_AUDIENCE\n\s+value: \/projects\/000000000000\/global\/backendServices\/0000000000000000000/,
    )
    t.notMatch(written, /\$\{/, 'no placeholder left')
    const webapp = await run([
      'run-local',
      '--config',
      WEBAPP,
      '--check',
      '--image',
      'docker.io/traefik/whoami:v1.10.3=localhost/whoami:test',
    ])
    t.equal(webapp.code, 0, webapp.stderr)
    t.match(webapp.stdout, /image docker\.io\/traefik\/whoami:v1\.10\.3 -> localhost\/whoami:test/)
    t.match(webapp.stdout, /whoami: 1 vCPU, 256Mi/)
  },
)

t.test(
  'a config Cloud Run would refuse stops run-local (and plan) at the config, naming the field and the YAML rule',
  async (t) => {
    // (Below 1 vCPU the deploy config refuses itself: the service runs in the second generation.)
    const file = configFile((raw) => {
      raw.app.cpu = '3'
      raw.gateway.memory = '8Gi'
    })
    const r = await run(['run-local', '--config', file, '--check'])
    t.equal(r.code, 2)
    t.match(r.stderr, /^DEPLOY_ERR_CONFIG: invalid deploy config:\n/)
    t.match(
      r.stderr,
      /app\.cpu: 3 vCPU: above 1, Cloud Run allows only 2, 4, 6 or 8 \(Cloud Run's rule for spec\.template\.spec\.containers\[1\]\.resources\.limits\.cpu\)/,
    )
    t.match(r.stderr, /gateway\.memory: 8Gi with 1 vCPU: Cloud Run allows at most 4Gi/)
    const plan = await run(['plan', '--config', file])
    t.equal(plan.code, 2, 'plan stops the same way')
    t.match(plan.stderr, /app\.cpu: 3 vCPU/)
  },
)

t.test('usage: --help, and every bad option named at once (an --env value never echoed)', async (t) => {
  const help = await run(['run-local', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /^usage: deploy run-local --config FILE/)
  const r = await run([
    'run-local',
    '--port',
    '70000',
    '--gateway-port',
    'x',
    '--email',
    'x',
    '--env',
    'Flowise.KEY=hunter2',
    '--env',
    'noequals',
    '--image',
    'a',
  ])
  t.equal(r.code, 2)
  t.match(r.stderr, /RUN_LOCAL_ERR_USAGE: invalid run-local options:/)
  for (const expected of [
    '--env: expected CONTAINER.NAME=VALUE (got one starting "Flowise.KEY")',
    '--env: expected CONTAINER.NAME=VALUE (got one starting "noequals")',
    '--image (a): expected REF=LOCAL',
    '--email (x): not an email address',
    '--port (70000): not a port number (0 to 65535)',
    '--gateway-port (x): not a port number (0 to 65535)',
  ]) {
    t.ok(r.stderr.includes(expected), expected)
  }
  t.notMatch(r.stderr, /hunter2/, 'the value of a refused --env is not printed')
  const unknown = await run(['run-local', '--bogus'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /RUN_LOCAL_ERR_USAGE: invalid run-local options: Unknown option '--bogus'/)
  const missing = await run(['run-local', '--config', join(dir, 'nope.yaml'), '--check'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /^DEPLOY_ERR_CONFIG: cannot read config/)
})

t.test('options: --env by container, --image map, --no-build', async (t) => {
  const options = parseRunLocal([
    '--env',
    'flowise.STORAGE_EMULATOR_HOST=http://127.0.0.1:4443',
    '--env',
    'flowise.A=b=c',
    '--image',
    'r=l',
    '--no-build',
  ])
  t.same(options.env, { flowise: { STORAGE_EMULATOR_HOST: 'http://127.0.0.1:4443', A: 'b=c' } })
  t.same(options.images, { r: 'l' })
  t.equal(options.build, false)
  t.match(parseRunLocal([]), {
    config: 'deploy.config.yaml',
    port: 8080,
    gatewayPort: 0,
    email: 'dev@example.com',
    build: true,
    check: false,
  })
})

t.test('the local render is the deploy render with the stand-ins; a fact it lacks is named', async (t) => {
  const config = readConfig(EXAMPLE)
  const yaml = renderLocal(config, facts)
  const service = readService(yaml)
  const flowise = service.containers[1]?.env ?? []
  // the database as deployed: Cloud Run's /cloudsql/ socket folder, the password pinned to a version
  t.match(
    flowise.find((e) => e.name === 'DATABASE_HOST'),
    { value: '/cloudsql/my-flowise-project:europe-west1:flowise-db' },
  )
  t.match(
    flowise.find((e) => e.name === 'DATABASE_PASSWORD'),
    { value: 'sm://my-flowise-project/flowise-db-password#1' },
  )
  t.equal(service.cloudSqlInstances.join(), 'my-flowise-project:europe-west1:flowise-db')
  t.equal(renderLocal(config), yaml, 'the local facts are the default')
  t.throws(
    () => renderLocal(config, { ...facts, DATABASE_PASSWORD_VERSION: undefined } as unknown as typeof facts),
    {
      code: 'RUN_LOCAL_ERR_USAGE',
      message:
        /the rendered service needs DATABASE_PASSWORD_VERSION, which run-local has no local stand-in for/,
    },
  )
  t.match(describeService(config, service, {}), /gateway \(ingress, port 8080, PORT set here\)/)
  const bare = serviceWith((doc) => {
    const [gateway, flowise] = doc.spec.template.spec.containers
    delete gateway.startupProbe
    delete flowise.startupProbe
    doc.spec.template.metadata.annotations['run.googleapis.com/container-dependencies'] = '{}'
    flowise.env = [{ name: 'KEY', valueFrom: { secretKeyRef: { name: 'k', key: 'latest' } } }]
  })
  const text = describeService(config, bare, {})
  t.match(text, /startup probe: tcp port 8080, every 240 s, window 240 s \(Cloud Run's default\)/)
  t.match(text, /no startup probe: started once running/)
  const other = readService(serviceWithContainers([{ image: 'localhost/mine:1' }]))
  t.match(
    describeService(config, other, {}),
    /\n {4}image localhost\/mine:1\n/,
    'an image nobody maps runs as named',
  )
  t.match(text, /secrets \(from the local Secret Manager\): KEY/)
  t.match(text, /containers start in this order: gateway \+ flowise/)
})

t.test(
  'images: the deploy builds become local builds; a public app.image runs under its own name',
  async (t) => {
    t.same(
      localImages(readConfig(EXAMPLE)).map((i) => [i.ref, i.local, i.build?.dockerfile, i.flowiseVersion]),
      [
        [
          'europe-west1-docker.pkg.dev/my-flowise-project/flowise/gateway:0.1.0',
          'localhost/iap-gateway/gateway:local',
          'Dockerfile.proxy',
          undefined,
        ],
        [
          'europe-west1-docker.pkg.dev/my-flowise-project/flowise/flowise:3.1.4',
          'localhost/iap-gateway/flowise:3.1.4',
          'Dockerfile.flowise',
          '3.1.4',
        ],
      ],
    )
    t.same(localImages(readConfig(WEBAPP))[1], {
      ref: 'docker.io/traefik/whoami:v1.10.3',
      local: 'docker.io/traefik/whoami:v1.10.3',
    })
    const custom = validateConfig(
      {
        ...parse(readFileSync(WEBAPP, 'utf8')),
        app: { preset: 'custom', container: 'api', build: { dockerfile: 'Dockerfile.api' }, tag: '7' },
      },
      ROOT,
    )
    t.match(localImages(custom)[1], {
      ref: 'europe-west1-docker.pkg.dev/my-webapp-project/whoami/api:7',
      local: 'localhost/iap-gateway/api:7',
      build: { dockerfile: 'Dockerfile.api' },
    })
    t.notOk('flowiseVersion' in (localImages(custom)[1] ?? {}))
    t.equal(localImages({ ...custom, app: { ...custom.app, build: undefined, image: undefined } }).length, 1)
  },
)

function serviceWith(edit: (doc: Doc) => void) {
  const doc = parse(renderLocal(readConfig(EXAMPLE), facts))
  edit(doc)
  return checkService(doc)
}

t.test(
  'the local Secret Manager holds every secret the service names, the known ones with their values',
  async (t) => {
    const service = serviceWith((doc) => {
      const flowise = doc.spec.template.spec.containers[1]
      flowise.env.push(
        { name: 'PINNED', valueFrom: { secretKeyRef: { name: 'api-key', key: '3' } } },
        { name: 'SHORT', value: 'sm://short-one' },
        { name: 'BROKEN', value: 'sm://a/b/c' },
      )
      doc.spec.template.spec.volumes = [{ name: 'cert', secret: { secretName: 'tls' } }]
    })
    const table = localSecrets(service, 'my-flowise-project', {
      'projects/my-flowise-project/secrets/flowise-db-password': 'pg-password',
    })
    t.same(Object.keys(table).sort(), [
      'projects/my-flowise-project/secrets/api-key',
      'projects/my-flowise-project/secrets/flowise-db-password',
      'projects/my-flowise-project/secrets/flowise-express-session-secret',
      'projects/my-flowise-project/secrets/flowise-jwt-auth-token-secret',
      'projects/my-flowise-project/secrets/flowise-jwt-refresh-token-secret',
      'projects/my-flowise-project/secrets/flowise-secretkey-overwrite',
      'projects/my-flowise-project/secrets/flowise-token-hash-secret',
      'projects/my-flowise-project/secrets/short-one',
      'projects/my-flowise-project/secrets/tls',
    ])
    t.same(
      table['projects/my-flowise-project/secrets/flowise-db-password'],
      ['pg-password'],
      "the database's own password",
    )
    t.equal(
      table['projects/my-flowise-project/secrets/api-key']?.length,
      3,
      'a pinned version 3 needs three versions',
    )
    t.match(
      table['projects/my-flowise-project/secrets/tls']?.[0],
      /^[A-Za-z0-9_-]{43}$/,
      'fresh random values elsewhere',
    )
    t.same(
      secretFiles(service).get('cert'),
      [{ path: 'tls', field: 'spec.template.spec.volumes[0].secret.items[0]' }],
      'no items: the latest version, in a file named after the secret',
    )
    const noProject = serviceWith((doc) => {
      doc.spec.template.spec.containers[1].env.push({ name: 'X', value: 'sm://other' })
    })
    t.ok('projects/my-flowise-project/secrets/other' in localSecrets(noProject, 'my-flowise-project'))
  },
)

t.test(
  'the plan: the rendered env, secretKeyRef values, PORT in the ingress container only, stand-ins on top',
  async (t) => {
    const service = serviceWith((doc) => {
      const [gateway, flowise] = doc.spec.template.spec.containers
      flowise.env.push({ name: 'PINNED', valueFrom: { secretKeyRef: { name: 'api-key', key: '2' } } })
      flowise.volumeMounts = [
        { name: 'sql', mountPath: '/sockets' },
        { name: 'scratch', mountPath: '/scratch' },
        { name: 'cert', mountPath: '/certs' },
      ]
      gateway.volumeMounts = [{ name: 'scratch', mountPath: '/shared' }]
      doc.spec.template.spec.volumes = [
        { name: 'sql', cloudSqlInstance: { instances: ['p:europe-west1:db'] } },
        { name: 'scratch', emptyDir: {} },
        { name: 'cert', secret: { secretName: 'tls', items: [{ key: '1', path: 'a/cert.pem' }] } },
      ]
      doc.spec.template.metadata.annotations['run.googleapis.com/cloudsql-instances'] = 'p:europe-west1:db'
    })
    const versions = secretVersions(service, 'my-flowise-project')
    t.same(
      [...versions.values()],
      [
        'projects/my-flowise-project/secrets/api-key/versions/2',
        'projects/my-flowise-project/secrets/tls/versions/1',
      ],
    )
    t.same(
      [...(secretFiles(service).get('cert') ?? [])],
      [{ path: 'a/cert.pem', field: 'spec.template.spec.volumes[2].secret.items[0]' }],
    )
    t.equal(versionName('p', 'projects/q/secrets/s', 'latest'), 'projects/q/secrets/s/versions/latest')
    const pinned = [...versions.keys()][0] as string
    const { plans, problems } = planService(service, {
      images: {
        'europe-west1-docker.pkg.dev/my-flowise-project/flowise/gateway:0.1.0':
          'localhost/iap-gateway/gateway:local',
      },
      ingressPort: 43210,
      secrets: { [pinned]: 'the-value' },
      volumes: { scratch: '/tmp/scratch', cert: '/tmp/cert' },
      cloudSqlSocket: (connection) => (connection === 'p:europe-west1:db' ? '/tmp/pg-socket' : undefined),
      overrides: {
        '*': { SECRET_MANAGER_ENDPOINT: '127.0.0.1:1' },
        gateway: { IAP_KEYS_URL: 'http://127.0.0.1:2/k' },
      },
      mounts: { flowise: [{ source: '/shim.cjs', target: '/test-shims/shim.cjs' }] },
    })
    t.same(problems, [])
    const [gateway, flowise] = plans
    t.equal(gateway?.image, 'localhost/iap-gateway/gateway:local', 'mapped')
    t.equal(
      flowise?.image,
      'europe-west1-docker.pkg.dev/my-flowise-project/flowise/flowise:3.1.4',
      'unmapped: as named',
    )
    t.equal(gateway?.env.PORT, '43210', 'PORT: the ingress port here')
    t.notOk('PORT' in (flowise?.env ?? {}), 'no PORT in the sidecar (the app listens on its default 3000)')
    t.equal(flowise?.env.PINNED, 'the-value', 'secretKeyRef resolved before start')
    t.equal(
      flowise?.env.DATABASE_PASSWORD,
      'sm://my-flowise-project/flowise-db-password#1',
      'sm:// left for the launcher',
    )
    t.equal(flowise?.env.SECRET_MANAGER_ENDPOINT, '127.0.0.1:1')
    t.equal(gateway?.env.IAP_KEYS_URL, 'http://127.0.0.1:2/k')
    t.notOk('IAP_KEYS_URL' in (flowise?.env ?? {}))
    t.same(gateway?.resources, { cpus: 1, memoryBytes: 512 * 2 ** 20 })
    t.same(flowise?.mounts, [
      { source: '/tmp/pg-socket', target: '/cloudsql/p:europe-west1:db', readOnly: false },
      { source: '/tmp/pg-socket', target: '/sockets/p:europe-west1:db', readOnly: false },
      { source: '/tmp/scratch', target: '/scratch', readOnly: false },
      { source: '/tmp/cert', target: '/certs', readOnly: true },
      { source: '/shim.cjs', target: '/test-shims/shim.cjs' },
    ])
    t.same(
      gateway?.mounts.map((m) => m.target),
      ['/cloudsql/p:europe-west1:db', '/shared'],
      'the annotation: in every container',
    )
    t.equal(gateway?.probePort(8080), 43210, "the ingress container's port is remapped for its probes")
    t.equal(flowise?.probePort(3000), 3000)
    t.same(hostPorts(service, plans), [
      { port: 43210, field: 'spec.template.spec.containers[0].startupProbe (port 8080)' },
      { port: 3000, field: 'spec.template.spec.containers[1].startupProbe (port 3000)' },
    ])
    t.same(gateway?.entrypoint, undefined)
    const orphan = planService(service, {
      images: {},
      ingressPort: 1,
      secrets: {},
      volumes: {},
      cloudSqlSocket: () => undefined,
      overrides: {},
      mounts: {},
    })
    t.same(
      orphan.problems,
      [
        'spec.template.metadata.annotations["run.googleapis.com/cloudsql-instances"]: no local database stands in for Cloud SQL instance p:europe-west1:db',
        'spec.template.spec.volumes[0]: no local database stands in for Cloud SQL instance p:europe-west1:db',
        'spec.template.spec.volumes[0]: no local database stands in for Cloud SQL instance p:europe-west1:db',
      ].slice(0, 2),
      'each missing socket named once per place that asks for it',
    )
  },
)

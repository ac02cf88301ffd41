// Dockerfile.flowise built by a real builder and run as the Cloud Run sidecar: as `node`, with exactly
// the environment the deploy renders for it (deploy/service-yaml.ts, from deploy.config.example.yaml),
// against a real PostgreSQL reached as Cloud Run reaches Cloud SQL (its Unix socket folder mounted at
// /cloudsql/INSTANCE), with every secret an sm:// reference served by the local Secret Manager. What
// the tests add, and why, is TEST_ONLY below; none of it is in the image.
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { readConfig } from '../../deploy/config.ts'
import { cloudSqlSocketDir, serviceObject } from '../../deploy/service-yaml.ts'
import { FLOWISE_VERSION } from '../../dev/flowise.ts'
import { buildImage, REPO_ROOT } from '../../dev/images/build.ts'
import { waitForHttp } from '../../dev/images/container.ts'
import { imageExists, inspectImage } from '../../dev/images/podman.ts'
import { freePort, startPostgres } from '../../dev/postgres.ts'
import { startSecretManagerServer } from '../../dev/secret-manager-server.ts'
import {
  buildForTest,
  changeableFiles,
  containerProcesses,
  pid1Owner,
  podmanOrSkip,
  runForTest,
  startForTest,
  trustOnlyFromBase,
  writtenPaths,
} from './suite.ts'

t.setTimeout(3_600_000)

// FLOWISE_VERSION=X npm run test:images tests the image of another locked release (docs/images.md)
const VERSION = process.env.FLOWISE_VERSION || FLOWISE_VERSION
const OFFLINE_TIKTOKEN = fileURLToPath(new URL('../e2e/helpers/offline-tiktoken.cjs', import.meta.url))
const SHIM_DIR = '/test-shims'
const NODE_FAILED_TO_LOAD = /Error during initDatabase with file (\S+?):?\s/g
// What a running Flowise may add to its image: the folders it creates under ~/.flowise (DataSource.js
// makes ~/.flowise, BaseStorageProvider makes ~/.flowise/storage even with STORAGE_TYPE=gcs), and what
// the container runtime itself puts in /etc (hosts, resolv.conf) and the mount points (the test shim,
// the Cloud SQL socket folder, which Cloud Run mounts too).
const ALLOWED_WRITES = [
  /^\/home(\/node(\/\.flowise(\/storage)?)?)?$/,
  /^\/etc(\/(hosts|hostname|resolv\.conf))?$/,
  /^\/run(\/\.containerenv)?$/,
  /^\/test-shims(\/offline-tiktoken\.cjs)?$/,
  /^\/cloudsql(\/[^/]+)?$/,
]
const transportsIn = (output: string): unknown => JSON.parse(/^TRANSPORTS=(.*)$/m.exec(output)?.[1] ?? 'null')
// Which transports Flowise's storage provider hands each of its four loggers (dist/utils/logger.js).
const TRANSPORTS_PROBE = `
const { StorageProviderFactory } = require(require.resolve('flowise-components', { paths: ['/opt/flowise/node_modules/flowise'] }))
const provider = StorageProviderFactory.getProvider()
const config = { logging: { dir: '/tmp/probe-logs', server: {}, express: {} } }
const names = (type) => provider.getLoggerTransports(type, config).map((t) => t.constructor.name === 'Console' ? 'console' + (t.silent ? ' (silent)' : '') : t.constructor.name)
console.log('TRANSPORTS=' + JSON.stringify({ server: names('server'), error: names('error'), audit: names('audit'), requests: names('requests') }))
`

if (podmanOrSkip()) {
  const image = await buildForTest('flowise', { flowiseVersion: VERSION })
  const postgres = await startPostgres()
  t.teardown(() => postgres.stop())

  // What the deploy gives the Flowise container, from its own renderer. The database is where Cloud Run
  // puts it, /cloudsql/INSTANCE, mounted from the local PostgreSQL's socket folder; only the port differs
  // (the socket's name, .s.PGSQL.PORT, carries the local server's free port), and the app port (3000 may
  // be taken on a shared machine: a non-default app port is what the deploy passes as PORT).
  const config = readConfig(`${REPO_ROOT}/deploy.config.example.yaml`)
  const rendered = serviceObject(config, {
    gatewayImage: 'gateway',
    appImage: image.tag,
    serviceAccount: 'flowise@example.iam.gserviceaccount.com',
    audience: '/projects/1/global/backendServices/2',
    databasePasswordVersion: '1',
  })
  const app = (
    rendered.spec.template.spec.containers as { name: string; env: { name: string; value: string }[] }[]
  ).find((container) => container.name === config.app.container)
  if (!app) throw new Error(`no ${config.app.container} container in the rendered service`)
  const deployed = Object.fromEntries(app.env.map(({ name, value }) => [name, value]))

  // Every sm:// reference the deploy renders, served by the local Secret Manager.
  const secrets: Record<string, string> = {}
  for (const [name, value] of Object.entries(deployed)) {
    const match = /^sm:\/\/([^/]+)\/([^#]+)(?:#\d+)?$/.exec(value)
    if (!match) continue
    secrets[`projects/${match[1]}/secrets/${match[2]}`] =
      name === 'DATABASE_PASSWORD' ? postgres.password : randomBytes(32).toString('base64url')
  }
  const secretManager = await startSecretManagerServer(secrets)
  t.teardown(() => secretManager.close())

  async function startFlowise(test: Test) {
    const port = await freePort()
    const env = {
      ...deployed,
      DATABASE_PORT: String(postgres.port),
      DATABASE_USER: postgres.user,
      DATABASE_NAME: postgres.database,
      PORT: String(port),
      ...TEST_ONLY(),
    }
    const started = performance.now()
    const container = await startForTest(test, {
      image: image.tag,
      purpose: 'flowise',
      env,
      mounts: [
        { source: OFFLINE_TIKTOKEN, target: `${SHIM_DIR}/offline-tiktoken.cjs` },
        { source: postgres.socketDir, target: cloudSqlSocketDir(config) },
      ],
    })
    const url = `http://127.0.0.1:${port}`
    await waitForHttp(`${url}/api/v1/ping`, { timeoutMs: 240_000, exited: container.exited }).catch(
      (error) => {
        throw new Error(`${error.message}\n${container.logs().slice(-4000)}`)
      },
    )
    return { container, url, readyMs: Math.round(performance.now() - started) }
  }

  /** What only the tests add, each for a reason that does not exist on Cloud Run. */
  function TEST_ONLY(): Record<string, string> {
    return {
      // Secret Manager is the local gRPC fake, not secretmanager.googleapis.com
      SECRET_MANAGER_ENDPOINT: secretManager.endpoint,
      // offline, Flowise's LangChain fetches tiktoken tables from tiktoken.pages.dev; the shim answers
      // them from the js-tiktoken package inside the image. Mounted read-only, never copied in.
      NODE_OPTIONS: `--require=${SHIM_DIR}/offline-tiktoken.cjs`,
      OFFLINE_TIKTOKEN_FROM: '/opt/flowise',
    }
  }

  t.test('the image holds the Flowise release of its build argument', async (t) => {
    const facts = await inspectImage(image.tag)
    t.equal(facts.labels['org.iap-gateway.flowise-version'], VERSION)
    const { code, output } = await runForTest({
      image: image.tag,
      purpose: 'flowise-version',
      entrypoint: ['node', '-p', 'require("/opt/flowise/node_modules/flowise/package.json").version'],
    })
    t.equal(code, 0)
    t.equal(output.trim(), VERSION, 'the installed flowise package')
  })

  t.test('a FLOWISE_VERSION without a lock folder fails the build at once', async (t) => {
    const tag = 'localhost/iap-gateway/flowise:no-lock-test'
    const started = performance.now()
    const error = await buildImage('flowise', { flowiseVersion: '0.0.0-no-lock', tag }).then(
      () => undefined,
      (error: Error) => error,
    )
    const seconds = (performance.now() - started) / 1000
    t.ok(error, 'the build fails (it never installs some other release under the new tag)')
    t.match(error?.message, /flowise\/0\.0\.0-no-lock\/package(-lock)?\.json/, 'naming the missing lock file')
    t.ok(seconds < 180, `before any install: ${seconds.toFixed(0)} s`)
    t.notOk(await imageExists(tag), 'no image under that tag')
  })

  t.test(
    'starts as node against PostgreSQL through /cloudsql/, answers /api/v1/ping, every node loads',
    async (t) => {
      const { container, url, readyMs } = await startFlowise(t)
      t.comment(`flowise image: container start to /api/v1/ping in ${readyMs} ms (first start, migrations)`)
      const response = await fetch(`${url}/api/v1/ping`)
      t.equal(await response.text(), 'pong')
      t.same(await pid1Owner(container), { uid: 1000, gid: 1000 }, 'PID 1 (tini) runs as node')
      const processes = await containerProcesses(container)
      t.ok(
        processes.length >= 3,
        `tini, the launcher, Flowise: ${processes.map((p) => `${p.pid} ${p.command}`).join(' | ')}`,
      )
      t.same(
        processes.filter((p) => p.uid !== 1000 || p.gid !== 1000),
        [],
        'every process in the container runs as 1000:1000',
      )
      const failed = [...container.logs().matchAll(NODE_FAILED_TO_LOAD)].map((match) => match[1])
      t.same(failed, [], 'no node failed to load')
      t.match(container.logs(), /Flowise Server is listening/, "Flowise's log on stdout")
      // a Unix-socket client has no address (pg_stat_activity.client_addr is NULL for it)
      const clients = await postgres.query<{ client_addr: string | null }>(
        "SELECT client_addr FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        [postgres.user],
      )
      t.ok(clients.length > 0, `Flowise holds ${clients.length} database connections`)
      t.same(
        clients.filter((row) => row.client_addr !== null),
        [],
        'every one of them through the socket folder mounted at /cloudsql/',
      )
    },
  )

  t.test('what Flowise writes as it runs: nothing but under its home, and no log file', async (t) => {
    const { container, url } = await startFlowise(t)
    // a few requests that log (a refused login, a missing chatflow), then what the container changed
    await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'nobody@example.com', password: 'not-the-password-1A!' }),
    })
    await fetch(`${url}/api/v1/prediction/00000000-0000-4000-8000-000000000000`, { method: 'POST' })
    const written = await writtenPaths(container)
    t.comment(`written: ${written.join(' ')}`)
    t.same(
      written.filter((path) => !ALLOWED_WRITES.some((allowed) => allowed.test(path))),
      [],
      'only the folders Flowise creates under ~/.flowise (and what the runtime mounts)',
    )
    t.same(
      written.filter((path) => /\.log|\.jsonl|\/logs\//.test(path)),
      [],
      'no log file anywhere',
    )
    t.notMatch(container.logs(), /Error logging to GCS/, 'nothing is sent to the Cloud Logging API')
    t.notMatch(container.logs(), /EACCES|EROFS/, 'no write refused')
  })

  t.test("Flowise's logger transports: stdout only, whatever STORAGE_TYPE", async (t) => {
    const probe = (preload: boolean, storage: string) =>
      runForTest({
        image: image.tag,
        purpose: 'flowise-logs',
        env: {
          STORAGE_TYPE: storage,
          GOOGLE_CLOUD_STORAGE_BUCKET_NAME: 'b',
          GOOGLE_CLOUD_STORAGE_PROJ_ID: 'p',
        },
        entrypoint: [
          'node',
          ...(preload ? ['--require=/opt/flowise/stdout-logs.cjs'] : []),
          '-e',
          TRANSPORTS_PROBE,
        ],
      })
    for (const storage of ['local', 'gcs']) {
      const { code, output } = await probe(true, storage)
      t.equal(code, 0, output)
      t.same(
        transportsIn(output),
        { server: [], error: [], audit: ['console'], requests: ['console (silent)'] },
        `STORAGE_TYPE=${storage} with stdout-logs.cjs`,
      )
    }
    // why the preload is there: without it, the deploy's STORAGE_TYPE=gcs sends every log to the API
    const { output } = await probe(false, 'gcs')
    t.match(
      transportsIn(output),
      { server: ['LoggingWinston'], audit: ['LoggingWinston'], requests: ['LoggingWinston'] },
      "Flowise's own choice for STORAGE_TYPE=gcs: the Cloud Logging API",
    )
  })

  t.test('Flowise and the launcher are root:root: the process can change none of their files', async (t) => {
    const { container } = await startFlowise(t)
    const write = await container.exec([
      'sh',
      '-c',
      'touch /opt/flowise/stdout-logs.cjs /opt/flowise/x /opt/iap-gateway/dist/proxy/x 2>&1; true',
    ])
    t.equal(write.output.match(/Permission denied/g)?.length, 3, 'no file there is writable by node')
    t.equal(
      await changeableFiles(container, ['/opt/flowise', '/opt/iap-gateway']),
      '',
      'every file under /opt/flowise and /opt/iap-gateway is root:root, none o+w',
    )
  })

  t.test('the build machine’s TLS-proxy CA comes from the stand-in base only', async (t) => {
    await trustOnlyFromBase(t, image.tag)
    const { code, output } = await runForTest({
      image: image.tag,
      purpose: 'flowise-trust',
      entrypoint: ['node', '-p', 'process.env.NODE_EXTRA_CA_CERTS ?? "unset"'],
    })
    t.equal(code, 0)
    t.equal(output.trim(), 'unset', 'the containers run with the trust production has')
  })

  t.test('a FLOWISE_INSTALL_DIR in the environment cannot send the log patch to another copy', async (t) => {
    // another install beside the image's: a flowise with a flowise-components whose provider is a stub
    const other = mkdtempSync(join(tmpdir(), 'other-flowise-'))
    t.teardown(() => rmSync(other, { recursive: true, force: true }))
    const files: Record<string, string> = {
      'node_modules/flowise/package.json': '{"name":"flowise","version":"0.0.0"}',
      'node_modules/flowise-components/package.json': '{"name":"flowise-components","main":"index.js"}',
      'node_modules/flowise-components/index.js':
        'exports.StorageProviderFactory = { getProvider: () => ({ getLoggerTransports: () => [] }) }',
      'node_modules/winston/package.json': '{"name":"winston","main":"index.js"}',
      'node_modules/winston/index.js': 'exports.transports = { Console: class Console {} }',
    }
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(other, dirname(path)), { recursive: true })
      writeFileSync(join(other, path), text)
    }
    chmodSync(other, 0o755) // mkdtemp makes it 0700; the container reads it as node
    const { code, output } = await runForTest({
      image: image.tag,
      purpose: 'flowise-logs-elsewhere',
      env: {
        STORAGE_TYPE: 'gcs',
        GOOGLE_CLOUD_STORAGE_BUCKET_NAME: 'b',
        GOOGLE_CLOUD_STORAGE_PROJ_ID: 'p',
        FLOWISE_INSTALL_DIR: `${SHIM_DIR}/other-install`,
      },
      mounts: [{ source: other, target: `${SHIM_DIR}/other-install` }],
      entrypoint: ['node', '--require=/opt/flowise/stdout-logs.cjs', '-e', TRANSPORTS_PROBE],
    })
    t.equal(code, 0, output)
    t.same(
      transportsIn(output),
      { server: [], error: [], audit: ['console'], requests: ['console (silent)'] },
      'the Flowise in the image still logs to stdout only',
    )
  })

  t.test('SIGTERM: the launcher passes it on; Flowise exits and the container with it', async (t) => {
    const { container } = await startFlowise(t)
    const started = performance.now()
    const exit = await container.stop(40_000)
    const seconds = (performance.now() - started) / 1000
    t.comment(`flowise image: stopped ${seconds.toFixed(1)} s after SIGTERM, exit ${exit.code}`)
    // Cloud Run stops a container 10 s after SIGTERM (container contract, "Lifecycle")
    t.ok(seconds < 10, `within the 10 s Cloud Run waits: ${seconds.toFixed(1)} s`)
    t.not(exit.code, 137, 'not killed')
  })

  t.test('size', async (t) => {
    const facts = await inspectImage(image.tag)
    t.comment(`flowise image: ${(facts.size / 1e6).toFixed(0)} MB`)
    t.ok(facts.size < 4e9, `under 4 GB (${(facts.size / 1e6).toFixed(0)} MB)`)
  })
}

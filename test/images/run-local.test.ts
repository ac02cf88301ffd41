// The run-local runner with real containers: a service YAML written as Cloud Run documents it (an
// ingress container from the gateway image, a sidecar from the same image with `command` replaced)
// run by podman as Cloud Run would run it. What the runner promises, checked from outside it: the
// start order (podman's own start times), PORT in the ingress container only (printenv inside the
// containers), secretKeyRef values resolved before start (and no start when one cannot be read),
// startup probe windows, cgroup limits, Cloud SQL sockets, host ports in use, and a restart. Last,
// `npm run deploy -- run-local` itself on the example config, through the emulator.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { RunLocalError } from '../../deploy/run-local/errors.ts'
import { runService } from '../../deploy/run-local/runner.ts'
import { checkService } from '../../deploy/run-local/service.ts'
import { freePort } from '../../dev/free-port.ts'
import { REPO_ROOT } from '../../dev/images/build.ts'
import { CONTAINER_LABEL } from '../../dev/images/container.ts'
import { podman } from '../../dev/images/podman.ts'
import { startPostgres } from '../../dev/postgres.ts'
import { startSecretManagerServer } from '../../dev/secret-manager-server.ts'
import { createSigningKey, startKeyServer, TEST_AUDIENCE } from '../helpers/iap.ts'
import { buildForTest, podmanOrSkip } from './suite.ts'

t.setTimeout(1_800_000)

const PROJECT = 'run-local-test'
// the sidecar: listens on APP_PORT after APP_DELAY_MS, answers /ready; written for `node -e`
const SIDECAR = `
const http = require('node:http')
setTimeout(() => http.createServer((req, res) => res.end('ok')).listen(Number(process.env.APP_PORT), '127.0.0.1'),
  Number(process.env.APP_DELAY_MS))
`

// biome-ignore lint/suspicious/noExplicitAny: the tests edit the YAML document as free-form data
type Doc = any

async function runningContainers(purpose: string): Promise<string[]> {
  const { stdout } = await podman([
    'ps',
    '--filter',
    `label=${CONTAINER_LABEL}=${purpose}`,
    '--format',
    '{{.Names}}',
  ])
  return stdout.split('\n').filter(Boolean)
}

async function startedAt(name: string): Promise<number> {
  const { stdout } = await podman(['inspect', '--format', '{{.State.StartedAt}}', name])
  // "2026-12-01 12:00:00.123456789 +0000 UTC"
  const [date, time] = stdout.trim().split(' ')
  return Date.parse(`${date}T${(time as string).slice(0, 12)}Z`)
}

if (podmanOrSkip()) {
  const image = await buildForTest('gateway')
  const key = createSigningKey()
  const keys = await startKeyServer({ keys: [key] })
  const secretManager = await startSecretManagerServer({
    [`projects/${PROJECT}/secrets/app-secret`]: ['first', 'second'],
  })
  t.teardown(async () => {
    await keys.close()
    await secretManager.close()
  })

  /** A two-container service as Cloud Run documents it; `edit` changes the document first. */
  async function service(edit: (doc: Doc) => void = () => {}) {
    const appPort = await freePort()
    const doc = {
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Service',
      metadata: { name: 'rl' },
      spec: {
        template: {
          metadata: {
            annotations: {
              'run.googleapis.com/container-dependencies': JSON.stringify({ gateway: ['app'] }),
              'run.googleapis.com/execution-environment': 'gen2',
            },
          },
          spec: {
            containers: [
              {
                name: 'gateway',
                image: 'europe-west1-docker.pkg.dev/p/r/gateway:1',
                ports: [{ name: 'http1', containerPort: 8080 }],
                env: [
                  { name: 'HOST', value: '0.0.0.0' },
                  { name: 'UPSTREAM_URL', value: `http://127.0.0.1:${appPort}` },
                  { name: 'ALLOWED_CIDRS', value: '127.0.0.1/32' },
                  { name: 'TRUST_PROXY_HOPS', value: '1' },
                  { name: 'IAP_AUDIENCE', value: TEST_AUDIENCE },
                  { name: 'IAP_KEYS_URL', value: keys.url },
                ],
                resources: { limits: { cpu: '1', memory: '512Mi' } },
                startupProbe: {
                  httpGet: { path: '/_gateway/healthz', port: 8080 },
                  periodSeconds: 1,
                  failureThreshold: 30,
                },
              },
              {
                name: 'app',
                image: image.tag,
                command: ['node', '-e', SIDECAR],
                env: [
                  { name: 'APP_PORT', value: String(appPort) },
                  { name: 'APP_DELAY_MS', value: '3000' },
                  { name: 'SECRET', valueFrom: { secretKeyRef: { name: 'app-secret', key: '1' } } },
                ],
                resources: { limits: { cpu: '1', memory: '256Mi' } },
                startupProbe: {
                  httpGet: { path: '/ready', port: appPort },
                  periodSeconds: 1,
                  failureThreshold: 20,
                },
              },
            ],
          },
        },
      },
    }
    edit(doc)
    return { service: checkService(parse(stringify(doc))), appPort }
  }

  const run = (s: Awaited<ReturnType<typeof service>>['service'], events: string[] = []) =>
    runService(s, {
      project: PROJECT,
      images: { 'europe-west1-docker.pkg.dev/p/r/gateway:1': image.tag },
      secretManagerEndpoint: secretManager.endpoint,
      onEvent: (line) => events.push(line),
    })

  t.test(
    'start order, PORT in the ingress container only, secretKeyRef resolved, limits enforced',
    async (t) => {
      const { service: s } = await service()
      const events: string[] = []
      const running = await run(s, events)
      t.teardown(() => running.stop())
      const gateway = running.container('gateway')
      const app = running.container('app')
      const appStarted = await startedAt(app.name)
      const gatewayStarted = await startedAt(gateway.name)
      t.ok(
        gatewayStarted - appStarted >= 2900,
        `podman started the gateway ${gatewayStarted - appStarted} ms after the app, which listens after 3 s`,
      )
      t.match(
        events.join('\n'),
        /starting app\napp: started, startup probe passed after \d+ ms \(attempt \d+\)\nstarting gateway/,
      )
      const port = (c: typeof gateway) => c.exec(['sh', '-c', 'printenv PORT || echo unset'])
      t.equal(
        (await port(gateway)).output.trim(),
        String(running.ingressPort),
        'PORT in the ingress container',
      )
      // the gateway image, which the sidecar runs here, defaults PORT to 8080 (Dockerfile.proxy)
      t.equal((await port(app)).output.trim(), '8080', "no injected PORT in the sidecar: its image's own")
      t.equal(
        (await app.exec(['sh', '-c', 'printenv SECRET'])).output.trim(),
        'first',
        'version 1 of the secret',
      )
      const limit = await app.exec([
        'sh',
        '-c',
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
      ])
      t.equal(limit.output.trim(), String(256 * 2 ** 20), "the sidecar's 256Mi limit, in its cgroup")
      const health = await fetch(`${running.url}/_gateway/healthz`)
      t.equal(health.status, 200, 'the ingress port is published on this machine')
      const unsigned = await fetch(`${running.url}/`, { headers: { 'x-forwarded-for': '127.0.0.1' } })
      t.equal(unsigned.status, 401, 'and it is the gateway answering: no assertion')
      const before = app.name
      await running.restart('app')
      t.not(running.container('app').name, before, 'a restart is a new container')
      t.equal((await running.container('app').exec(['sh', '-c', 'printenv SECRET'])).output.trim(), 'first')
      await running.stop()
      t.same(await runningContainers('run-local-app'), [], 'stopped: no container left')
    },
  )

  t.test(
    'a secret Cloud Run could not read: the instance does not start, and the field is named',
    async (t) => {
      const { service: s } = await service((doc) => {
        doc.spec.template.spec.containers[1].env[2].valueFrom.secretKeyRef.name = 'missing-secret'
      })
      const error = await run(s).catch((e) => e)
      t.type(error, RunLocalError)
      t.equal(error.code, 'RUN_LOCAL_ERR_START')
      t.match(
        error.message,
        /spec\.template\.spec\.containers\[1\]\.env\[2\]\.valueFrom\.secretKeyRef \(projects\/run-local-test\/secrets\/missing-secret\/versions\/1\): NOT_FOUND/,
      )
      t.same(await runningContainers('run-local-app'), [], 'no container was created')
    },
  )

  t.test('a startup probe that fails its window stops the start; the dependent never starts', async (t) => {
    const { service: s } = await service((doc) => {
      const app = doc.spec.template.spec.containers[1]
      app.env[1].value = '600000' // listens after 10 minutes
      app.startupProbe.failureThreshold = 3
    })
    const started = performance.now()
    const error = await run(s).catch((e) => e)
    const seconds = (performance.now() - started) / 1000
    t.equal(error.code, 'RUN_LOCAL_ERR_START')
    t.match(
      error.message,
      /spec\.template\.spec\.containers\[1\]\.startupProbe: http 127\.0\.0\.1:\d+\/ready failed 3 times in a row over its 3 s window/,
    )
    t.ok(seconds < 30, `within the window (and the container's start): ${seconds.toFixed(1)} s`)
    t.same(await runningContainers('run-local-gateway'), [], 'the gateway never started')
    t.same(await runningContainers('run-local-app'), [], 'the app was stopped')
  })

  t.test("a sidecar's port already taken on this machine: refused before anything starts", async (t) => {
    const { service: s, appPort } = await service()
    const squatter = createServer().listen(appPort, '127.0.0.1')
    await once(squatter, 'listening')
    t.teardown(() => squatter.close())
    const error = await run(s).catch((e) => e)
    t.equal(error.code, 'RUN_LOCAL_ERR_START')
    t.match(
      error.message,
      new RegExp(
        `containers\\[1\\]\\.startupProbe \\(port ${appPort}\\): port ${appPort} is in use on this machine`,
      ),
    )
    const unknown = await service((doc) => {
      doc.spec.template.spec.containers[1].image = 'localhost/iap-gateway/not-built:0'
    })
    t.match(
      (await run(unknown.service).catch((e) => e)).message,
      /containers\[1\]\.image: localhost\/iap-gateway\/not-built:0 is not in podman's local store/,
    )
  })

  t.test('Cloud SQL: the local database socket where Cloud Run mounts /cloudsql/CONNECTION', async (t) => {
    const postgres = await startPostgres()
    t.teardown(() => postgres.stop())
    const connection = 'run-local-test:europe-west1:db'
    const { service: s } = await service((doc) => {
      doc.spec.template.metadata.annotations['run.googleapis.com/cloudsql-instances'] = connection
    })
    const running = await runService(s, {
      project: PROJECT,
      images: { 'europe-west1-docker.pkg.dev/p/r/gateway:1': image.tag },
      secretManagerEndpoint: secretManager.endpoint,
      cloudSqlSocket: (name) => (name === connection ? postgres.socketDir : undefined),
    })
    t.teardown(() => running.stop())
    // PostgreSQL answers an SSLRequest on its socket with one byte ('N': no TLS over a Unix socket)
    const probe = `const s=require('node:net').connect('/cloudsql/${connection}/.s.PGSQL.${postgres.port}');s.on('connect',()=>s.write(Buffer.from([0,0,0,8,4,210,22,47])));s.on('data',(d)=>{console.log('answer',d.toString());s.destroy()});s.on('error',(e)=>console.log('error',e.code))`
    const answer = await running.container('app').exec(['node', '-e', probe])
    t.equal(answer.output.trim(), 'answer N', 'PostgreSQL answers through the mounted socket, as uid 1000')
  })

  t.test(
    'npm run deploy -- run-local: the example config, built, started behind the emulator, stopped on Ctrl-C',
    async (t) => {
      await buildForTest('flowise')
      // the example config with a free app port (3000 may be taken on a shared machine) and the
      // repository as the build context (the config lives in a temporary folder)
      mkdirSync(join(REPO_ROOT, '.local'), { recursive: true })
      const dir = mkdtempSync(join(REPO_ROOT, '.local', 'run-local-cli-'))
      t.teardown(() => rmSync(dir, { recursive: true, force: true }))
      const raw = parse(readFileSync(join(REPO_ROOT, 'deploy.config.example.yaml'), 'utf8'))
      raw.gateway.build = { context: REPO_ROOT }
      raw.app.build = { context: REPO_ROOT }
      raw.app.port = await freePort()
      writeFileSync(join(dir, 'deploy.config.yaml'), stringify(raw))
      const child = spawn(
        join(REPO_ROOT, 'node_modules/.bin/node'),
        [
          'deploy/main.ts',
          'run-local',
          '--config',
          join(dir, 'deploy.config.yaml'),
          '--port',
          '0',
          '--no-build',
        ],
        // a process group of its own, so that Ctrl-C can be sent as a terminal sends it: to the group
        {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, NODE_OPTIONS: '' },
          detached: true,
        },
      )
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk) => (stdout += chunk))
      child.stderr.on('data', (chunk) => (stderr += chunk))
      const exited = once(child, 'exit')
      t.teardown(() => {
        if (child.exitCode === null) process.kill(-(child.pid as number), 'SIGKILL')
      })
      const deadline = Date.now() + 300_000
      while (!/^Open (http:\/\/127\.0\.0\.1:\d+)\//m.test(stdout)) {
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`run-local did not start:\n${stderr.slice(-4000)}`)
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
      const emulator = /^Open (http:\/\/127\.0\.0\.1:\d+)\//m.exec(stdout)?.[1] as string
      const gateway = /the ingress container at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1] as string
      t.match(stdout, /containers start in this order: flowise, then gateway/)
      t.match(
        stdout,
        /gateway: ALLOWED_CIDRS=203\.0\.113\.0\/24,2001:db8:1234::\/48,127\.0\.0\.1\/32,::1\/128/,
        'stand-ins printed',
      )
      t.notMatch(stdout + stderr, /run-local database CA|BEGIN PRIVATE KEY/, 'no key material printed')
      const ping = await fetch(`${emulator}/api/v1/ping`)
      t.equal(await ping.text(), 'pong', 'Flowise answers through the emulator and the gateway')
      const direct = await fetch(`${gateway}/api/v1/ping`)
      t.equal(direct.status, 403, 'straight at the ingress container: refused')
      // Ctrl-C reaches every process of the terminal's group; run-local alone must decide how the
      // containers and the database stop (SIGTERM, dependents first), so none of them may get it
      process.kill(-(child.pid as number), 'SIGINT')
      const [code] = await exited
      t.equal(code, 0, 'Ctrl-C: a clean stop')
      t.match(stderr, /"signal":"SIGTERM".*shutting down/, 'the gateway got SIGTERM, as from Cloud Run')
      t.notMatch(
        stderr,
        /Database pool error|terminating connection due to administrator command/,
        'PostgreSQL outlived Flowise',
      )
      t.same(await runningContainers('run-local-flowise'), [], 'no container left')
    },
  )
}

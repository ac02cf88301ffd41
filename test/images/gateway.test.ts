// Dockerfile.proxy built by a real builder and run as Cloud Run runs it: the image's own user, PORT
// injected, the environment the deploy renders. The gateway must answer its health path, refuse an
// unsigned request, pass a signed one on, and drain on SIGTERM, as uid 1000 on files it cannot change,
// with no package manager left from the base (npm, npx, corepack and yarn 1: the real base has all four,
// and the stand-in models them) and no trust setting of the machine it was built on.
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { buildImage, REPO_ROOT } from '../../dev/images/build.ts'
import { waitForHttp } from '../../dev/images/container.ts'
import { imageExists, inspectImage, podman } from '../../dev/images/podman.ts'
import { BASE_IMAGE, STAND_IN_LABEL } from '../../dev/images/stand-in-base.ts'
import { freePort } from '../../dev/postgres.ts'
import { createSigningKey, signAssertion, startKeyServer, TEST_AUDIENCE } from '../helpers/iap.ts'
import { startUpstream } from '../helpers/upstream.ts'
import {
  buildForTest,
  changeableFiles,
  pid1Owner,
  podmanOrSkip,
  startForTest,
  trustOnlyFromBase,
} from './suite.ts'

// a cold build with the base takes minutes; the image tests run in their own suite (npm run test:images)
t.setTimeout(1_800_000)

if (podmanOrSkip()) {
  const image = await buildForTest('gateway')
  const key = createSigningKey()
  const keys = await startKeyServer({ keys: [key] })
  const upstream = await startUpstream()
  t.teardown(async () => {
    await keys.close()
    await upstream.close()
  })

  async function startGateway(test: Test) {
    const port = await freePort()
    const started = performance.now()
    const container = await startForTest(test, {
      image: image.tag,
      purpose: 'gateway',
      // PORT as Cloud Run injects it into the ingress container; the rest as the deploy renders it,
      // with the key server and the upstream on loopback
      env: {
        PORT: String(port),
        HOST: '0.0.0.0',
        UPSTREAM_URL: upstream.url,
        ALLOWED_CIDRS: '127.0.0.1/32',
        TRUST_PROXY_HOPS: '0',
        IAP_AUDIENCE: TEST_AUDIENCE,
        IAP_KEYS_URL: keys.url,
        SHUTDOWN_GRACE_MS: '3000',
      },
    })
    const url = `http://127.0.0.1:${port}`
    await waitForHttp(`${url}/_gateway/readyz`, { timeoutMs: 60_000, exited: container.exited })
    const readyMs = Math.round(performance.now() - started)
    return { container, url, readyMs }
  }

  t.test('the image runs as 1000:1000 and says so in its config', async (t) => {
    const { container, readyMs } = await startGateway(t)
    t.comment(`gateway image: container start to ready (readyz 200) in ${readyMs} ms`)
    t.same(await pid1Owner(container), { uid: 1000, gid: 1000 }, 'PID 1 (node) runs as 1000:1000')
    const { stdout } = await podman(['image', 'inspect', '--format', '{{.Config.User}}', image.tag])
    t.equal(stdout.trim(), '1000:1000')
    t.match(container.logs(), /"message":"Server listening at/, 'JSON logs on stdout')
  })

  t.test('answers its health path, refuses an unsigned request, passes a signed one on', async (t) => {
    const { url } = await startGateway(t)
    const health = await fetch(`${url}/_gateway/healthz`)
    t.equal(health.status, 200, 'healthz')
    const unsigned = await fetch(`${url}/api/v1/ping`)
    t.equal(unsigned.status, 401, 'no assertion: 401')
    const seenBefore = upstream.seen.length
    const forged = await fetch(`${url}/api/v1/ping`, {
      headers: { 'x-goog-iap-jwt-assertion': signAssertion({ ...createSigningKey(), kid: key.kid }) },
    })
    t.equal(forged.status, 401, 'an assertion signed by another key under the same kid: 401')
    t.equal(upstream.seen.length, seenBefore, 'nothing refused reached the upstream')
    const signed = await fetch(`${url}/api/v1/ping?x=1`, {
      headers: { 'x-goog-iap-jwt-assertion': signAssertion(key, { email: 'alice@example.com' }) },
    })
    t.equal(signed.status, 200, 'signed by the key server key: proxied')
    const echoed = (await signed.json()) as { url: string; headers: Record<string, string> }
    t.equal(echoed.url, '/api/v1/ping?x=1')
    t.equal(echoed.headers['x-forwarded-email'], 'alice@example.com', 'verified identity passed on')
  })

  t.test('SIGTERM: drains and exits 0 (node is PID 1, no npm in between)', async (t) => {
    const { container } = await startGateway(t)
    const exit = await container.stop(15_000)
    t.equal(exit.code, 0)
    t.match(container.logs(), /"signal":"SIGTERM"/)
    t.match(container.logs(), /drained; exiting/)
  })

  t.test('the process can change none of its files; no package manager; no dev dependency', async (t) => {
    const { container } = await startGateway(t)
    const write = await container.exec(['sh', '-c', 'touch /app/dist/proxy/main.js /app/x 2>&1; echo $?'])
    t.match(write.output, /Permission denied/, 'the application files are not writable by uid 1000')
    t.equal(await changeableFiles(container, ['/app']), '', 'every file under /app is root:root, none o+w')
    // one name per `command -v`: dash's looks at its first operand only, so a list hid all but npm
    const managers = await container.exec([
      'sh',
      '-c',
      'for tool in npm npx corepack yarn yarnpkg; do command -v "$tool"; done; true',
    ])
    t.equal(managers.output.trim(), '', 'no npm, npx, corepack, yarn or yarnpkg at run time')
    const left = await container.exec([
      'sh',
      '-c',
      'ls -d /opt/yarn* /usr/local/lib/node_modules/* 2>/dev/null; true',
    ])
    t.equal(left.output.trim(), '', 'nor their files')
    // whatever the project's lock marks as needed by development only must be absent
    const lock = JSON.parse(readFileSync(`${REPO_ROOT}/package-lock.json`, 'utf8')) as {
      packages: Record<string, { dev?: boolean }>
    }
    const devOnly = Object.entries(lock.packages)
      .filter(([path, entry]) => entry.dev === true && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path))
      .map(([path]) => path)
    t.ok(devOnly.length > 100, `${devOnly.length} development-only packages in the lock`)
    const listed = await container.exec([
      'node',
      '-e',
      'const fs=require("fs");const top=fs.readdirSync("/app/node_modules");' +
        'console.log(JSON.stringify(top.flatMap((n)=>n.startsWith("@")?fs.readdirSync("/app/node_modules/"+n).map((m)=>n+"/"+m):[n])))',
    ])
    const installed = new Set((JSON.parse(listed.output) as string[]).map((name) => `node_modules/${name}`))
    t.ok(installed.has('node_modules/fastify'), 'production dependencies are there')
    t.same(
      devOnly.filter((path) => installed.has(path)),
      [],
      'no development-only package (the node devDependency included)',
    )
  })

  t.test('the build machine’s TLS-proxy CA comes from the stand-in base only', async (t) => {
    await trustOnlyFromBase(t, image.tag)
    const { container } = await startGateway(t)
    const seen = await container.exec(['node', '-p', 'process.env.NODE_EXTRA_CA_CERTS ?? "unset"'])
    t.equal(seen.output.trim(), 'unset', 'the container runs with the trust production has')
  })

  t.test('an image on the stand-in base is never built under a registry’s name', async (t) => {
    const { labels } = await inspectImage(BASE_IMAGE)
    const tag = 'europe-docker.pkg.dev/example/iap-gateway/gateway:stand-in-test'
    const error = await buildImage('gateway', { tag }).then(
      () => undefined,
      (error: Error) => error,
    )
    if (labels[STAND_IN_LABEL] === undefined) {
      t.notOk(error, 'on the real base, any name')
      await podman(['rmi', tag], { allowFailure: true })
      return
    }
    t.match(error?.message, /stand-in/, 'refused, naming why')
    t.notOk(await imageExists(tag), 'no image under that name')
  })

  t.test('size', async (t) => {
    const facts = await inspectImage(image.tag)
    t.comment(`gateway image: ${(facts.size / 1e6).toFixed(0)} MB`)
    t.ok(facts.size < 600e6, `under 600 MB (${(facts.size / 1e6).toFixed(0)} MB)`)
  })
}

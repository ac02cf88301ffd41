import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { startSecretManagerServer } from '../helpers/secret-manager-server.ts'

/**
 * The runtime stage of Dockerfile.proxy, reproduced without Docker: build the package, pack it,
 * install the tarball with production dependencies only into an empty folder, then run the gateway
 * and the launcher from there, with the Node 24 that the image has.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)
// npm and the bins' `#!/usr/bin/env node` find this Node 24 first.
const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`
// Build, pack and install take 30-60 s here, more on a loaded machine: above the suite's 120 s default.
t.setTimeout(360_000)
const work = mkdtempSync(join(tmpdir(), 'image-runtime-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

const staging = join(work, 'staging')
const app = join(work, 'app')
t.before(async () => {
  // `npm run build` into a private folder, so a build here never races one in the working tree.
  await run(
    join(ROOT, 'node_modules/.bin/tsc'),
    ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(staging, 'dist')],
    {
      env: { ...process.env, PATH },
    },
  )
  cpSync(join(ROOT, 'package.json'), join(staging, 'package.json'))
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], {
    cwd: staging,
    env: { ...process.env, PATH },
  })
  const tarball = join(work, (JSON.parse(stdout) as { filename: string }[])[0]?.filename as string)
  // An empty project: only what the tarball itself asks for gets installed.
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), '{"private": true}\n')
  await run(
    'npm',
    ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', tarball],
    { cwd: app, env: { ...process.env, PATH }, timeout: 240_000 },
  )
})

t.test('the package holds dist/proxy and production dependencies only', async (t) => {
  const installed = join(app, 'node_modules/iap-gateway')
  t.same(readdirSync(installed).sort(), ['dist', 'package.json'])
  t.same(readdirSync(join(installed, 'dist')), ['proxy'])
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>
  }
  for (const name of Object.keys(manifest.dependencies)) {
    t.ok(existsSync(join(app, 'node_modules', name)), `${name} installed`)
  }
  // Whatever the lock file marks as needed by development only must be absent.
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>
  }
  const devOnly = Object.entries(lock.packages)
    .filter(([path, entry]) => entry.dev === true && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path))
    .map(([path]) => path)
  t.ok(devOnly.length > 100, `${devOnly.length} development-only packages in the lock`)
  t.same(
    devOnly.filter((path) => existsSync(join(app, path))),
    [],
    'no development-only package installed',
  )
  t.notOk(existsSync(join(app, 'node_modules/node')), 'the node devDependency never reaches the runtime')
})

interface Started {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

function start(t: Test, file: string, args: string[], env: Record<string, string>): Started {
  const child = spawn(file, args, { cwd: app, env: { PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  return { child, output: () => output, exited }
}

t.test(
  'the installed gateway starts with node as its own process and answers /_gateway/healthz',
  async (t) => {
    const gateway = start(t, process.execPath, [join(app, 'node_modules/iap-gateway/dist/proxy/main.js')], {
      PORT: '0',
      HOST: '127.0.0.1',
      ALLOWED_CIDRS: '127.0.0.1/32',
      IAP_DISABLED: 'true',
    })
    const port = await new Promise<number>((resolve, reject) => {
      gateway.child.stdout?.on('data', () => {
        const match = /"address":\{[^}]*"port":(\d+)/.exec(gateway.output())
        if (match) resolve(Number(match[1]))
      })
      gateway.exited.then((code) => reject(new Error(`gateway exited (${code}): ${gateway.output()}`)))
    })
    const response = await fetch(`http://127.0.0.1:${port}/_gateway/healthz`)
    t.equal(response.status, 200)
    gateway.child.kill('SIGTERM')
    t.equal(await gateway.exited, 0, 'exits 0 on SIGTERM')
  },
)

t.test('the installed launcher (bin with-secrets) hands resolved values to a program', async (t) => {
  const value = `pw-${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 16)}`
  const server = await startSecretManagerServer({ 'projects/image-test/secrets/db': value })
  t.teardown(() => server.close())
  const program = `const { createHash } = require('node:crypto')
    console.log(createHash('sha256').update(process.env.DATABASE_PASSWORD).digest('hex'))`
  const launcher = start(
    t,
    join(app, 'node_modules/.bin/with-secrets'),
    ['--', process.execPath, '-e', program],
    {
      GOOGLE_CLOUD_PROJECT: 'image-test',
      SECRET_MANAGER_ENDPOINT: server.endpoint,
      DATABASE_PASSWORD: 'sm://db',
    },
  )
  t.equal(await launcher.exited, 0)
  t.match(launcher.output(), createHash('sha256').update(value).digest('hex'))
  t.notMatch(launcher.output(), value)
  t.same(server.calls, ['projects/image-test/secrets/db/versions/latest'])
})

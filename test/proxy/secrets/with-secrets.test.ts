import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { status } from '@grpc/grpc-js'
import t, { type Test } from 'tap'
import { startSecretManagerServer } from '../../../dev/secret-manager-server.ts'

const LAUNCHER = fileURLToPath(new URL('../../../proxy/secrets/with-secrets.ts', import.meta.url))
const PROJECT = 'test-project'
const VALUES = { db: 'pg-password-Zq81', jwt: 'jwt-secret-Xk27' }
const sha = (value: string) => createHash('sha256').update(value).digest('hex')

// The child reports hashes of what it received, never the values themselves.
const REPORT_HASHES = `
const { createHash } = require('node:crypto')
const sha = (v) => v === undefined ? null : createHash('sha256').update(v).digest('hex')
console.log(JSON.stringify({ db: sha(process.env.DATABASE_PASSWORD), jwt: sha(process.env.JWT_AUTH_TOKEN_SECRET),
  plain: process.env.DATABASE_HOST, argv: process.argv.slice(1) }))
process.exitCode = 7`

interface Run {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function launch(t: Test, args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [LAUNCHER, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  )
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

async function fake(t: Test) {
  const server = await startSecretManagerServer({
    [`projects/${PROJECT}/secrets/db-password`]: ['old', VALUES.db],
    [`projects/${PROJECT}/secrets/jwt`]: VALUES.jwt,
  })
  t.teardown(() => server.close())
  return { server, env: { GOOGLE_CLOUD_PROJECT: PROJECT, SECRET_MANAGER_ENDPOINT: server.endpoint } }
}

function untilOutput(run: Run, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (pattern.test(run.stdout())) {
        run.child.stdout?.off('data', check)
        resolve()
      }
    }
    run.child.stdout?.on('data', check)
    check()
  })
}

t.test('runs the command with the resolved environment and returns its exit code', async (t) => {
  const { server, env } = await fake(t)
  const run = launch(t, ['--', process.execPath, '-e', REPORT_HASHES, 'arg one', '--flag'], {
    ...env,
    DATABASE_PASSWORD: 'sm://db-password',
    JWT_AUTH_TOKEN_SECRET: `sm://projects/${PROJECT}/secrets/jwt/versions/1`,
    DATABASE_HOST: '10.0.0.5',
  })
  const { code, signal } = await run.exited
  t.same({ code, signal }, { code: 7, signal: null })
  t.same(JSON.parse(run.stdout()), {
    db: sha(VALUES.db),
    jwt: sha(VALUES.jwt),
    plain: '10.0.0.5',
    argv: ['arg one', '--flag'],
  })
  t.equal(server.calls.length, 2)
  for (const value of [...Object.values(VALUES), 'old']) {
    t.notOk(run.stdout().includes(value), 'no value on stdout')
    t.notOk(run.stderr().includes(value), 'no value on stderr')
  }
  t.match(run.stderr(), /^warning: with SECRET_MANAGER_ENDPOINT=.*development and tests only\n$/)
})

t.test(
  'a secret that cannot be read stops before the command runs, naming variable and resource',
  async (t) => {
    const { server, env } = await fake(t)
    server.failNext(`projects/${PROJECT}/secrets/jwt`, status.PERMISSION_DENIED)
    const run = launch(t, ['--', process.execPath, '-e', 'console.log("child ran")'], {
      ...env,
      DATABASE_PASSWORD: 'sm://db-password',
      JWT_AUTH_TOKEN_SECRET: 'sm://jwt',
    })
    const { code } = await run.exited
    t.equal(code, 1)
    t.equal(run.stdout(), '')
    const lines = run.stderr().trimEnd().split('\n')
    t.equal(
      lines.at(-1),
      `with-secrets: cannot resolve secret: JWT_AUTH_TOKEN_SECRET (projects/${PROJECT}/secrets/jwt/versions/latest): ` +
        'PERMISSION_DENIED: the service account lacks roles/secretmanager.secretAccessor on this secret',
    )
    for (const value of Object.values(VALUES)) t.notOk(run.stderr().includes(value), 'no value on stderr')
  },
)

t.test('SIGTERM and SIGINT reach the child; its exit code comes back', async (t) => {
  const { env } = await fake(t)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const program = `
      process.on('${signal}', () => { console.log('child got ${signal}'); process.exit(42) })
      console.log('ready'); setInterval(() => {}, 1000)`
    const run = launch(t, ['--', process.execPath, '-e', program], { ...env, S: 'sm://jwt' })
    await untilOutput(run, /ready/)
    run.child.kill(signal)
    const { code, signal: killedBy } = await run.exited
    t.same({ code, signal: killedBy }, { code: 42, signal: null }, signal)
    t.match(run.stdout(), new RegExp(`child got ${signal}`))
  }
})

t.test('a child killed by a signal ends the launcher by the same signal', async (t) => {
  const { env } = await fake(t)
  const run = launch(
    t,
    ['--', process.execPath, '-e', 'console.log("ready"); setInterval(() => {}, 1000)'],
    env,
  )
  await untilOutput(run, /ready/)
  run.child.kill('SIGTERM')
  const { code, signal } = await run.exited
  t.same({ code, signal }, { code: null, signal: 'SIGTERM' })
})

t.test('a signal while secrets are still being read ends the launcher by that signal', async (t) => {
  const { server, env } = await fake(t)
  server.holdUntil(1_000)
  const run = launch(t, ['--', process.execPath, '-e', 'console.log("child ran")'], { ...env, S: 'sm://jwt' })
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (server.calls.length > 0) {
        clearInterval(poll)
        resolve()
      }
    }, 10)
  })
  run.child.kill('SIGTERM')
  const { code, signal } = await run.exited
  t.same({ code, signal }, { code: null, signal: 'SIGTERM' })
  t.equal(run.stdout(), '')
})

t.test('usage errors and commands that cannot run', async (t) => {
  const none = launch(t, ['--'], {})
  t.equal((await none.exited).code, 64)
  t.equal(none.stderr(), 'with-secrets: usage: with-secrets -- <command> [args...]\n')

  const missing = launch(t, ['/nonexistent/program'], {})
  t.equal((await missing.exited).code, 127)
  t.equal(missing.stderr(), 'with-secrets: cannot run /nonexistent/program: ENOENT\n')

  const notExecutable = launch(t, ['--', fileURLToPath(import.meta.url)], {})
  t.equal((await notExecutable.exited).code, 126)
  t.equal(notExecutable.stderr(), `with-secrets: cannot run ${fileURLToPath(import.meta.url)}: EACCES\n`)

  // No reference: the command runs at once, and without a client the endpoint is never even parsed.
  const plain = launch(t, ['--', process.execPath, '-e', 'process.exit(3)'], {
    SECRET_MANAGER_ENDPOINT: 'junk',
  })
  t.equal((await plain.exited).code, 3)
  t.equal(plain.stderr(), '')
})

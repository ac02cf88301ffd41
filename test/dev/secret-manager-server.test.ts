import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { resolveEnvironment } from '../../proxy/secrets/resolve.ts'

/** The fake as a separate process, as the local dev chain and the end-to-end suite start it. */
const SERVER = fileURLToPath(new URL('../../dev/secret-manager-server.ts', import.meta.url))

function startCli(t: Test, args: string[], stdin?: string) {
  const child = spawn(process.execPath, [SERVER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  child.stdin.end(stdin)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  const ready = new Promise<{ endpoint: string; port: number }>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0] as string))
    })
    exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  ready.catch(() => {})
  return { child, ready, exited, stderr: () => stderr }
}

t.test('secrets from a file or from stdin; prints its endpoint; stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'secrets.json')
  writeFileSync(file, JSON.stringify({ 'projects/cli-project/secrets/a': ['a1', 'a2'] }))
  for (const [args, stdin] of [
    [['--port', '0', '--secrets-file', file], undefined],
    [['--secrets-file', '-'], JSON.stringify({ 'projects/cli-project/secrets/a': ['a1', 'a2'] })],
  ] as const) {
    const server = startCli(t, [...args], stdin)
    const { endpoint, port } = await server.ready
    t.equal(endpoint, `127.0.0.1:${port}`)
    const env = await resolveEnvironment(
      { SECRET_MANAGER_ENDPOINT: endpoint, A: 'sm://cli-project/a', B: 'sm://cli-project/a#1' },
      { warn: () => {} },
    )
    t.match(env, { A: 'a2', B: 'a1' })
    server.child.kill('SIGTERM')
    t.equal(await server.exited, 0)
  }
})

t.test('a bad port is refused', async (t) => {
  const server = startCli(t, ['--port', 'eighty'])
  t.equal(await server.exited, 1)
  t.equal(server.stderr(), 'secret-manager-server: --port (eighty): not a port number\n')
})

t.test(
  'in process: a port already taken is an error at start; a name that is no version name is NOT_FOUND',
  async (t) => {
    const { startSecretManagerServer } = await import('../../dev/secret-manager-server.ts')
    const first = await startSecretManagerServer({ 'projects/p/secrets/s': 'v' })
    t.teardown(() => first.close())
    await t.rejects(
      startSecretManagerServer({}, { port: first.port }),
      'the second bind on the same port fails',
    )
    const { SecretManagerServiceClient } = await import('@google-cloud/secret-manager')
    const { grpc } = await import('google-gax')
    const client = new SecretManagerServiceClient({
      apiEndpoint: '127.0.0.1',
      port: first.port,
      sslCreds: grpc.credentials.createInsecure(),
      universeDomain: 'googleapis.com',
    })
    t.teardown(() => client.close())
    const error = await client
      .accessSecretVersion({ name: 'projects/p/secrets/s' }, { retry: null })
      .catch((e) => e)
    t.equal(error.code, 5, 'NOT_FOUND for a secret name without /versions/')
    t.same(first.calls, ['projects/p/secrets/s'])
  },
)

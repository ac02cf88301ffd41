import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { resolveEnvironment } from '../../proxy/secrets/resolve.ts'
import { spawnNode } from '../helpers/node-process.ts'

/** The fake as a separate process, as the local dev chain and the end-to-end suite start it. */
const SERVER = fileURLToPath(new URL('../../dev/secret-manager-server.ts', import.meta.url))

/** The fake's first line on stdout: where it listens. */
function endpointLine(stdout: string): { endpoint: string; port: number } | undefined {
  return stdout.includes('\n') ? JSON.parse(stdout.split('\n')[0] as string) : undefined
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
    const server = spawnNode(t, SERVER, args, { stdin })
    const { endpoint, port } = await server.waitForStdout(endpointLine)
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
  const server = spawnNode(t, SERVER, ['--port', 'eighty'])
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

import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { startSecretManagerServer } from '../../../dev/secret-manager-server.ts'
import { spawnNode } from '../../helpers/node-process.ts'

/** The gateway process resolves its own sm:// settings before its configuration is validated. */
const MAIN = fileURLToPath(new URL('../../../proxy/main.ts', import.meta.url))
const PROJECT = 'test-project'
const TOKEN = 'gateway-token-Qm42x'

async function fake(t: Test) {
  const server = await startSecretManagerServer({
    // Version 1 leaves the loopback client out, the latest lets it in.
    [`projects/${PROJECT}/secrets/cidrs`]: ['10.0.0.0/8', '127.0.0.1/32'],
    [`projects/${PROJECT}/secrets/token`]: TOKEN,
  })
  t.teardown(() => server.close())
  return {
    server,
    env: {
      GOOGLE_CLOUD_PROJECT: PROJECT,
      SECRET_MANAGER_ENDPOINT: server.endpoint,
      IAP_DISABLED: 'true',
      // Nothing listens on the discard port: a request let through is answered 502, a refused one 403.
      UPSTREAM_URL: 'http://127.0.0.1:9',
      SOME_TOKEN: 'sm://token',
    },
  }
}

t.test('the gateway starts with ALLOWED_CIDRS=sm://... and applies the resolved value', async (t) => {
  const { server, env } = await fake(t)
  for (const [reference, status] of [
    ['sm://cidrs', 502],
    ['sm://cidrs#1', 403],
  ] as const) {
    const gateway = runMain(t, { ...env, ALLOWED_CIDRS: reference })
    const url = await gateway.waitForStdout(listeningUrl)
    t.equal((await fetch(`${url}/_gateway/healthz`)).status, 200, `${reference}: healthz`)
    t.equal((await fetch(`${url}/anything`)).status, status, `${reference}: /anything`)
    gateway.child.kill('SIGTERM')
    t.equal(await gateway.exited, 0)
    t.notOk(
      gateway.stdout().includes(TOKEN) || gateway.stderr().includes(TOKEN),
      'a secret value never appears in the output',
    )
  }
  t.ok(server.calls.includes(`projects/${PROJECT}/secrets/cidrs/versions/1`))
})

t.test('a secret the gateway cannot read stops it with one line naming variable and resource', async (t) => {
  const { env } = await fake(t)
  const gateway = runMain(t, { ...env, ALLOWED_CIDRS: 'sm://absent' }, ['--check-config'])
  t.equal(await gateway.exited, 1)
  t.equal(gateway.stdout(), '')
  t.match(
    gateway.stderr(),
    new RegExp(
      `^(warning: .*\\n)?iap-gateway: cannot resolve secret: ALLOWED_CIDRS \\(projects/${PROJECT}/secrets/absent/versions/latest\\): NOT_FOUND.*\\n$`,
    ),
  )
  t.notOk(gateway.stderr().includes(TOKEN))
})

/** `node proxy/main.ts` with `env` only (helpers/gateway.ts would load, and so count, the whole gateway). */
function runMain(t: Test, env: Record<string, string>, args: string[] = []) {
  return spawnNode(t, MAIN, args, {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
  })
}

/** The gateway's URL once it has logged the address it listens on. */
function listeningUrl(stdout: string): string | undefined {
  const port = /"address":\{[^}]*"port":(\d+)/.exec(stdout)?.[1]
  return port === undefined ? undefined : `http://127.0.0.1:${port}`
}

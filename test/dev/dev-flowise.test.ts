// The Flowise child of `npm run dev -- --flowise`, wired to the installer's API. The installer itself
// (a three-gigabyte install) is the end-to-end suite's; here a stand-in app takes Flowise's place to
// show what the chain asks of it: the upstream's port, loopback only, data under .local/.
import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { terminate } from '../../dev/dev-chain.ts'
import { FLOWISE_DATA_DIR, startFlowiseChild, startUpstreamChildren } from '../../dev/dev-flowise.ts'
import { parseDevOptions } from '../../dev/dev-options.ts'

const STAND_IN = `
const http = require('node:http')
const seen = ['PORT', 'HOST', 'DATABASE_PATH', 'SECRETKEY_PATH', 'LOG_PATH', 'BLOB_STORAGE_PATH']
http.createServer((req, res) => res.end(JSON.stringify(Object.fromEntries(seen.map((k) => [k, process.env[k]])))))
  .listen(Number(process.env.PORT), process.env.HOST, () => console.log('listening'))
`

t.test(
  'Flowise is installed once, then started on the upstream port, loopback only, data in .local',
  async (t) => {
    const progress: string[] = []
    const installs: unknown[] = []
    const installer = {
      async ensureFlowiseInstalled(options: { sqlite: boolean; onProgress?: (message: string) => void }) {
        installs.push({ sqlite: options.sqlite })
        options.onProgress?.('already installed')
      },
      flowiseCommand: () => ({ command: process.execPath, args: ['-e', STAND_IN] }),
    }
    // a free port for the stand-in, as `--upstream` would name Flowise's
    const probe = (await import('node:net')).createServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const { port } = probe.address() as { port: number }
    await new Promise((resolve) => probe.close(resolve))

    const stdout = new PassThrough().setEncoding('utf8')
    const stderr = new PassThrough().setEncoding('utf8')
    stderr.on('data', (line: string) => progress.push(line))
    const options = parseDevOptions([`--upstream=http://127.0.0.1:${port}`, '--flowise'], {})
    const { child, readyTimeoutMs } = await startFlowiseChild(
      options,
      { stdout, stderr, env: { PATH: process.env.PATH ?? '' } },
      installer,
    )
    t.teardown(() => terminate(child))
    t.same(installs, [{ sqlite: true }])
    t.same(progress, ['flowise install: already installed\n'])
    t.equal(readyTimeoutMs, 180_000, 'a first start runs migrations: wait minutes, not seconds')
    t.equal(child.name, 'flowise')
    t.equal(child.stopGraceMs, 35_000, 'Flowise force-exits 30 s after SIGTERM')
    await once(stdout, 'data')

    const env = await (await fetch(`http://127.0.0.1:${port}/`)).json()
    t.same(env, {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_PATH: FLOWISE_DATA_DIR,
      SECRETKEY_PATH: FLOWISE_DATA_DIR,
      LOG_PATH: `${FLOWISE_DATA_DIR}/logs`,
      BLOB_STORAGE_PATH: `${FLOWISE_DATA_DIR}/storage`,
    })
    t.match(FLOWISE_DATA_DIR, /\/\.local\/flowise-data$/, 'under .local/, which git ignores')
  },
)

t.test('an upstream URL without a port means the scheme’s default port', async (t) => {
  const installer = {
    ensureFlowiseInstalled: async () => undefined,
    flowiseCommand: () => ({ command: process.execPath, args: ['-e', 'console.log(process.env.PORT)'] }),
  }
  for (const [upstream, port] of [
    ['http://127.0.0.1', '80'],
    ['https://127.0.0.1', '443'],
  ] as const) {
    const stdout = new PassThrough().setEncoding('utf8')
    const options = parseDevOptions([`--upstream=${upstream}`], {})
    const { child } = await startFlowiseChild(
      options,
      { stdout, stderr: new PassThrough(), env: {} },
      installer,
    )
    t.equal(String((await once(stdout, 'data'))[0]).trim(), port)
    await child.exited
  }
})

t.test('without --flowise nothing is started and the upstream is not waited for long', async (t) => {
  const options = parseDevOptions([], {})
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), env: {} }
  t.same(await startUpstreamChildren(options, io), { children: [], readyTimeoutMs: 3000 })

  const installer = {
    ensureFlowiseInstalled: async () => undefined,
    flowiseCommand: () => ({ command: process.execPath, args: ['-e', ''] }),
  }
  const withFlowise = await startUpstreamChildren(parseDevOptions(['--flowise'], {}), io, installer)
  t.equal(withFlowise.readyTimeoutMs, 180_000)
  t.same(
    withFlowise.children.map((child) => child.name),
    ['flowise'],
  )
  await withFlowise.children[0]?.exited
})

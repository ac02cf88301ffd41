// `npm run dev` as a user starts it: `node dev/dev.ts` as a child process in front of a real upstream,
// then Ctrl-C (SIGINT) and a check that every process it started is gone.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { type Echo, startEchoUpstream } from './echo-upstream.ts'

const DEV = fileURLToPath(new URL('../../dev/dev.ts', import.meta.url))
// a bare environment: no UPSTREAM_URL or gateway settings leak in from the shell, no coverage hooks
const env = { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn' }

type Dev = {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** stdout and stderr in the order they arrived, as a terminal shows them */
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>
}

function runDev(t: { teardown(fn: () => unknown): void }, args: string[], extraEnv = {}): Dev {
  const child = spawn(process.execPath, [DEV, ...args], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    output += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
    output += chunk
  })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }))
  // SIGTERM, not SIGKILL: dev then stops the gateway it started (also when tap's timeout ends the test)
  const cleanUp = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  }
  process.once('exit', cleanUp)
  t.teardown(() => {
    process.off('exit', cleanUp)
    cleanUp()
  })
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    exited: exited as Dev['exited'],
    async waitFor(pattern) {
      for (;;) {
        const match = stdout.match(pattern)
        if (match) return match
        const chunk = once(child.stdout, 'data')
        const ended = exited.then(() => {
          throw new Error(`dev exited before printing ${pattern}: ${stderr}`)
        })
        await Promise.race([chunk, ended])
      }
    },
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test(
  'npm run dev: one URL to open, the identity arrives upstream, Ctrl-C leaves nothing running',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const dev = runDev(t, ['--port=0', `--upstream=${upstream.url}`, '--email=ada@corp.example'])
    const [, url] = (await dev.waitFor(/^Open (http:\/\/127\.0\.0\.1:\d+)\/$/m)) as [string, string]
    const [, gatewayUrl, gatewayPid] = (await dev.waitFor(/gateway +(http:\S+) +\(pid (\d+);/)) as string[]
    t.match(dev.stderr(), /# IAP EMULATOR - DEVELOPMENT ONLY - NOT A SECURITY BOUNDARY +#/, 'the banner')
    t.match(dev.stderr(), /signed in as ada@corp\.example/)
    t.notMatch(dev.stdout(), /not ready/, 'the upstream was reachable')

    const res = await fetch(`${url}/api/v1/chatflows`, { headers: { 'x-forwarded-email': 'evil@evil.test' } })
    t.equal(res.status, 200)
    t.equal(((await res.json()) as Echo).headers['x-forwarded-email'], 'ada@corp.example')
    t.equal((await fetch(`${gatewayUrl}/api/v1/chatflows`)).status, 403, 'the gateway port alone refuses')

    t.ok(isRunning(Number(gatewayPid)))
    dev.child.kill('SIGINT')
    t.same(await dev.exited, { code: 0, signal: null }, 'a clean stop')
    t.match(dev.stderr(), /dev: stopping \(Ctrl-C again to kill\)\ndev: stopped\n$/)
    t.notOk(isRunning(Number(gatewayPid)), 'the gateway is gone')
    t.notOk(isRunning(dev.child.pid as number), 'dev itself is gone')
    await t.rejects(fetch(`${url}/`), 'nothing listens on the URL any more')
  },
)

t.test('the URL to open is the last line, after the gateway’s own “Server listening”', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  // at LOG_LEVEL=info the gateway logs its own address, the one that refuses a browser
  const dev = runDev(t, ['--port=0', `--upstream=${upstream.url}`], { LOG_LEVEL: 'info' })
  const [, url] = (await dev.waitFor(/^Open (http:\S+)\/\n$/m)) as [string, string]
  await new Promise((resolve) => setTimeout(resolve, 300)) // anything still on its way
  const lines = dev.output().trimEnd().split('\n')
  t.equal(lines.at(-1), `Open ${url}/`, 'nothing after it')
  const listening = lines.findIndex((line) => line.includes('Server listening at'))
  t.ok(listening !== -1 && listening < lines.length - 1, 'Fastify’s line came first')
})

t.test('a second Ctrl-C kills what is still draining', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const dev = runDev(t, ['--port=0', `--upstream=${upstream.url}`])
  const [, url] = (await dev.waitFor(/^Open (http:\S+)\/$/m)) as [string, string]
  const [, pid] = (await dev.waitFor(/\(pid (\d+);/)) as [string, string]
  // an open event stream keeps the gateway draining after the first Ctrl-C
  const sse = upstream.nextSse()
  const response = fetch(`${url}/sse`)
  ;(await sse).send('open')
  const body = (await response).body as ReadableStream<Uint8Array>
  const reader = body.getReader()
  await reader.read()
  dev.child.kill('SIGINT')
  while (!dev.stderr().includes('dev: stopping'))
    await once(dev.child.stderr as NodeJS.ReadableStream, 'data')
  t.ok(isRunning(Number(pid)), 'the gateway is draining the open stream')
  dev.child.kill('SIGINT')
  t.same(await dev.exited, { code: 0, signal: null })
  t.notOk(isRunning(Number(pid)), 'the gateway was killed, not waited for')
  await t.rejects(reader.read(), 'the stream was cut')
})

t.test('an upstream that is not up yet is reported with what to do', async (t) => {
  const dev = runDev(t, ['--port=0', '--upstream=http://127.0.0.1:1'])
  await dev.waitFor(/^Open http/m)
  await dev.waitFor(/status +not ready: upstream not reachable; start it with `npx flowise start`/)
  dev.child.kill('SIGTERM')
  t.equal((await dev.exited).code, 0)
})

t.test("with --gateway it prints what the user's gateway needs and starts none", async (t) => {
  const dev = runDev(t, ['--port=0', '--gateway=http://127.0.0.1:1'])
  const [hint] = (await dev.waitFor(
    /Start your gateway behind the emulator with:[\s\S]+node proxy\/main\.ts\n/,
  )) as [string]
  t.match(hint, /IAP_KEYS_URL='http:\/\/127\.0\.0\.1:\d+\/_iap_emulator\/verify\/public_key'/)
  t.match(hint, "TRUST_PROXY_HOPS='2'")
  t.match(hint, "PORT='1'")
  await dev.waitFor(/gateway +http:\/\/127\.0\.0\.1:1 +\(yours;/)
  await dev.waitFor(/status +not ready: gateway not answering/)
  dev.child.kill('SIGINT')
  t.same(await dev.exited, { code: 0, signal: null })
})

t.test('a gateway that dies while running stops the chain with exit code 1', async (t) => {
  const upstream = await startEchoUpstream()
  t.teardown(() => upstream.close())
  const dev = runDev(t, ['--port=0', `--upstream=${upstream.url}`])
  const [, pid] = (await dev.waitFor(/\(pid (\d+);/)) as [string, string]
  process.kill(Number(pid), 'SIGKILL')
  t.same(await dev.exited, { code: 1, signal: null })
  t.match(dev.stderr(), new RegExp(`dev: gateway \\(pid ${pid}\\) exited \\(SIGKILL\\)\\ndev: stopped\\n$`))
})

t.test('configuration problems stop it at start, naming the option', async (t) => {
  const bad = runDev(t, ['--email=nobody', '--port=99999'])
  t.same(await bad.exited, { code: 2, signal: null })
  t.equal(
    bad.stderr(),
    'dev: invalid options: --email (nobody): not an email address; ' +
      '--port (99999): not an integer between 0 and 65535\ndev: see npm run dev -- --help\n',
  )

  const refused = runDev(t, ['--port=0', '--allow=10.0.0.0/33'])
  t.same(await refused.exited, { code: 1, signal: null })
  t.match(refused.stderr(), /ALLOWED_CIDRS\[0\] \(10\.0\.0\.0\/33\)/, "the gateway's own message")
  t.match(refused.stderr(), /dev: the gateway exited at start \(1\)\n$/)

  const help = runDev(t, ['--help'])
  t.same(await help.exited, { code: 0, signal: null })
  t.match(help.stdout(), /^Usage: npm run dev -- \[options\]/)
  t.equal(help.stderr(), '', 'no banner for --help')
})

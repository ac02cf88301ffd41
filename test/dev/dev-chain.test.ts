// The chain as `npm run dev` builds it, in this process: the emulator here, the real gateway
// (`node proxy/main.ts`) as a child process, and a real upstream that echoes what it received.
import { once } from 'node:events'
import http from 'node:http'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import WebSocket from 'ws'
import {
  browserHost,
  gatewaySettings,
  spawnChild,
  startDevChain,
  terminate,
  waitUntilReady,
} from '../../dev/dev-chain.ts'
import { parseDevOptions } from '../../dev/dev-options.ts'
import { createSigningKey, signJwt } from '../../dev/iap-signer.ts'
import { type Echo, type EchoUpstream, jwtParts, startEchoUpstream } from './echo-upstream.ts'

const GATEWAY_MAIN_FOR_TESTS = fileURLToPath(new URL('../../proxy/main.ts', import.meta.url))
// the children start from a bare environment: tap's coverage hooks stay out of the gateway process
const childEnv = { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn' }

function output() {
  const stream = new PassThrough()
  let text = ''
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
  })
  return { stream, text: () => text }
}

async function startChain(t: Tap, args: string[] = [], { waitForReady = true } = {}) {
  const upstream = await startEchoUpstream()
  const options = parseDevOptions(['--port=0', `--upstream=${upstream.url}`, ...args], {})
  const stdout = output()
  const stderr = output()
  const chain = await startDevChain(options, { stdout: stdout.stream, stderr: stderr.stream, env: childEnv })
  // a test killed by tap's timeout skips its teardown but still exits: no gateway outlives it
  process.once('exit', chain.kill)
  t.teardown(async () => {
    process.off('exit', chain.kill)
    await chain.stop()
    await upstream.close()
  })
  // as dev.ts does before it prints the URL: the gateway has the emulator's keys
  if (waitForReady) await waitUntilReady(chain.gatewayUrl, 10_000)
  return { chain, upstream, options, stdout, stderr }
}
type Tap = { teardown(fn: () => unknown): void }

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function getJson(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers })
  return { status: res.status, body: await res.text() }
}

// One chain serves every test that only sends requests: a gateway start is the slow part.
let shared: Awaited<ReturnType<typeof startChain>>
t.before(async () => {
  shared = await startChain(t, ['--email=ada@corp.example', '--hd=corp.example', '--token-lifetime=2'])
})

t.test(
  'through the emulator the upstream gets the verified identity; forged headers never arrive',
  async (t) => {
    const { chain } = shared
    const { status, body } = await getJson(`${chain.url}/api/v1/ping`, {
      'x-goog-iap-jwt-assertion': 'forged.assertion.value',
      'x-goog-authenticated-user-email': 'accounts.google.com:evil@evil.test',
      'x-forwarded-email': 'evil@evil.test',
      'x-forwarded-user': 'evil',
    })
    t.equal(status, 200)
    const echo = JSON.parse(body) as Echo
    const sub = shared.options.identity.sub
    t.equal(echo.headers['x-forwarded-email'], 'ada@corp.example')
    t.equal(
      echo.headers['x-forwarded-user'],
      sub.replace('accounts.google.com:', ''),
      'the sub, prefix removed',
    )
    t.equal(echo.headers['x-goog-authenticated-user-email'], 'accounts.google.com:ada@corp.example')
    t.equal(echo.headers['x-goog-authenticated-user-id'], sub)
    const { payload } = jwtParts(echo.headers['x-goog-iap-jwt-assertion'] as string)
    t.match(payload, { email: 'ada@corp.example', hd: 'corp.example', iss: 'https://cloud.google.com/iap' })
    t.notMatch(body, /evil/, 'no forged value reached the upstream')
  },
)

t.test('the gateway port itself refuses whatever skips the emulator', async (t) => {
  const { chain } = shared
  t.equal((await getJson(`${chain.gatewayUrl}/`)).status, 403, 'no forwarded chain: not via the balancer')
  const viaForgedChain = { 'x-forwarded-for': '127.0.0.1,127.0.0.1' }
  t.equal((await getJson(`${chain.gatewayUrl}/`, viaForgedChain)).status, 401, 'no assertion')
  // well-formed, fresh, for the right audience and identity, but not signed by the emulator's key
  const now = Math.floor(Date.now() / 1000)
  const claims = jwtParts(chain.emulator.currentAssertion().token).payload
  const rogue = signJwt(createSigningKey(), { ...claims, iat: now, exp: now + 600 })
  const forged = { ...viaForgedChain, 'x-goog-iap-jwt-assertion': rogue }
  t.equal((await getJson(`${chain.gatewayUrl}/`, forged)).status, 401, 'an assertion from another key')
  t.equal((await getJson(`${chain.url}/`)).status, 200, 'while the emulator gets through')
})

t.test('the assertion is re-signed before it expires (short lifetime)', async (t) => {
  const { chain } = shared
  const first = JSON.parse((await getJson(`${chain.url}/one`)).body) as Echo
  const firstToken = jwtParts(first.headers['x-goog-iap-jwt-assertion'] as string).payload
  t.equal((firstToken.exp as number) - (firstToken.iat as number), 2)
  // wait until the first assertion has expired
  while (Date.now() / 1000 < (firstToken.exp as number) + 0.1) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const res = await getJson(`${chain.url}/two`)
  t.equal(res.status, 200, 'still admitted after the first assertion expired')
  const second = jwtParts(
    (JSON.parse(res.body) as Echo).headers['x-goog-iap-jwt-assertion'] as string,
  ).payload
  t.ok((second.iat as number) > (firstToken.iat as number), 'a newer assertion')
  t.ok((second.exp as number) > Date.now() / 1000, 'that had not expired when it arrived')
})

t.test('WebSocket and SSE work through the whole chain with the identity', async (t) => {
  const { chain, upstream } = shared
  const ws = new WebSocket(`${chain.url.replace('http', 'ws')}/socket`)
  const [first] = (await once(ws, 'message')) as [Buffer]
  t.equal((JSON.parse(first.toString()) as Echo).headers['x-forwarded-email'], 'ada@corp.example')
  ws.send('hello')
  t.equal(((await once(ws, 'message')) as [Buffer])[0].toString(), 'hello')
  ws.close()

  const sse = (upstream as EchoUpstream).nextSse()
  const response = fetch(`${chain.url}/sse`)
  const stream = await sse
  // the gateway sends the response head with the first event, so one goes out before awaiting it
  stream.send('one')
  const reader = ((await response).body as ReadableStream<Uint8Array>).getReader()
  t.equal(new TextDecoder().decode((await reader.read()).value), 'data: one\n\n')
  stream.send('two')
  t.equal(new TextDecoder().decode((await reader.read()).value), 'data: two\n\n', 'each event on its own')
  stream.end()
  await reader.cancel()
})

t.test('stop() ends the gateway process and frees the emulator port', async (t) => {
  const { chain } = await startChain(t)
  const [gateway] = chain.children
  t.ok(isRunning(gateway?.pid as number))
  await chain.stop()
  t.notOk(isRunning(gateway?.pid as number), 'the gateway pid is gone')
  await t.rejects(fetch(`${chain.url}/`), 'the emulator no longer accepts')
  await t.resolves(chain.stop(), 'a second stop() is harmless')
  t.notOk(isRunning(gateway?.pid as number), 'and starts nothing again')
})

t.test('a gateway that ends on its own is reported through ended', async (t) => {
  const { chain } = await startChain(t)
  const [gateway] = chain.children
  process.kill(gateway?.pid as number, 'SIGKILL')
  t.match(await chain.ended, /^gateway \(pid \d+\) exited \(SIGKILL\)$/)
})

t.test(
  'a gateway that refuses its configuration fails the start, and nothing is left listening',
  async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const options = parseDevOptions(['--port=0', '--allow=10.0.0.0/33', `--upstream=${upstream.url}`], {})
    const stderr = output()
    await t.rejects(
      startDevChain(options, { stdout: new PassThrough(), stderr: stderr.stream, env: childEnv }),
      { message: 'the gateway exited at start (1)' },
    )
    t.match(
      stderr.text(),
      /ALLOWED_CIDRS\[0\] \(10\.0\.0\.0\/33\)/,
      "the gateway's own message reaches stderr",
    )
  },
)

t.test('a child that ignores SIGTERM is killed after its grace period', async (t) => {
  const stdout = output()
  const child = spawnChild(
    {
      name: 'stubborn',
      command: process.execPath,
      args: ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
      env: childEnv,
      stopGraceMs: 300,
    },
    { stdout: stdout.stream, stderr: new PassThrough(), env: childEnv },
  )
  while (!stdout.text().includes('ready')) await once(stdout.stream, 'data')
  const started = Date.now()
  await terminate(child)
  t.ok(Date.now() - started >= 300, 'waited for the grace period')
  t.same(await child.exited, { code: null, signal: 'SIGKILL' })
  t.notOk(isRunning(child.pid))
  await t.resolves(terminate(child), 'terminating an ended child is harmless')
  t.same(await child.exited, { code: null, signal: 'SIGKILL' }, 'its exit is still the first one')
})

t.test('waitUntilReady reports the last answer when the gateway never gets ready', async (t) => {
  const closed = http.createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const { port } = closed.address() as { port: number }
  closed.close()
  t.same(await waitUntilReady(`http://127.0.0.1:${port}`, 300), {
    ready: false,
    reasons: ['gateway not answering'],
  })
  const { chain } = await startChain(t, ['--upstream=http://127.0.0.1:1'], { waitForReady: false })
  t.same(await waitUntilReady(chain.gatewayUrl, 300), { ready: false, reasons: ['upstream not reachable'] })
  const stopped = new AbortController()
  stopped.abort()
  const started = Date.now()
  t.same(await waitUntilReady(chain.gatewayUrl, 60_000, stopped.signal), {
    ready: false,
    reasons: ['gateway not answering'],
  })
  t.ok(Date.now() - started < 5000, 'a stop request ends the wait')
})

t.test(
  'a taken emulator port fails the start with advice, and stops the children started before',
  async (t) => {
    const taken = http.createServer().listen(0, '127.0.0.1')
    await once(taken, 'listening')
    t.teardown(() => taken.close())
    const { port } = taken.address() as { port: number }
    const sleeper = spawnChild(
      {
        name: 'flowise',
        command: process.execPath,
        args: ['-e', 'setInterval(() => {}, 1000)'],
        env: childEnv,
        stopGraceMs: 5000,
      },
      { stdout: new PassThrough(), stderr: new PassThrough(), env: childEnv },
    )
    const options = parseDevOptions([`--port=${port}`], {})
    await t.rejects(
      startDevChain(options, { stdout: new PassThrough(), stderr: new PassThrough(), env: childEnv }, [
        sleeper,
      ]),
      { message: `the emulator cannot listen on 127.0.0.1 port ${port} (EADDRINUSE): try another --port` },
    )
    t.same(await sleeper.exited, { code: null, signal: 'SIGTERM' })
  },
)

t.test('ALLOWED_EMAILS and ALLOWED_DOMAINS reach the gateway as its second gate', async (t) => {
  const other = await startChain(t, ['--email=ada@corp.example', '--allowed-emails=bob@corp.example'])
  t.equal((await getJson(`${other.chain.url}/`)).status, 403, 'an identity IAP admitted, but not on the list')
  const options = parseDevOptions(['--allowed-emails=a@b.example', '--allowed-domains=b.example'], {})
  t.match(gatewaySettings(options, 'http://127.0.0.1:1/keys', '2000'), {
    ALLOWED_EMAILS: 'a@b.example',
    ALLOWED_DOMAINS: 'b.example',
  })
  t.notOk('ALLOWED_EMAILS' in gatewaySettings(parseDevOptions([], {}), 'http://127.0.0.1:1/keys', '2000'))
})

t.test('the chain works with the emulator on IPv6 loopback', async (t) => {
  const v6 = await startChain(t, ['--host=::1'])
  t.match(v6.chain.url, /^http:\/\/\[::1\]:\d+$/)
  t.match(v6.chain.gatewaySettings.IAP_KEYS_URL, /^http:\/\/\[::1\]:\d+\/_iap_emulator\/verify\/public_key$/)
  const echo = JSON.parse((await getJson(`${v6.chain.url}/`)).body) as Echo
  t.equal(echo.headers['x-forwarded-email'], 'dev@example.com', 'keys fetched from [::1], client ::1 allowed')
})

t.test('a wildcard address is opened through loopback', async (t) => {
  const at = (address: string, family: string) => ({ address, family, port: 8080 })
  t.equal(browserHost(at('0.0.0.0', 'IPv4'), '0.0.0.0'), '127.0.0.1')
  t.equal(browserHost(at('::', 'IPv6'), '::'), '[::1]')
  t.equal(browserHost(at('127.0.0.1', 'IPv4'), 'localhost'), 'localhost')
  t.equal(browserHost(at('::1', 'IPv6'), '::1'), '[::1]')
  t.equal(browserHost(at('127.0.0.1', 'IPv4'), '127.0.0.1'), '127.0.0.1')
})

t.test(
  'with --gateway the emulator fronts a gateway the user starts with the printed settings',
  async (t) => {
    const free = http.createServer().listen(0, '127.0.0.1')
    await once(free, 'listening')
    const { port } = free.address() as { port: number }
    await new Promise((resolve) => free.close(resolve))
    const { chain } = await startChain(t, [`--gateway=http://127.0.0.1:${port}`], { waitForReady: false })
    t.same(chain.children, [], 'no gateway child')
    t.equal(chain.gatewayUrl, `http://127.0.0.1:${port}`)
    t.equal(chain.gatewaySettings.PORT, String(port))
    t.equal((await getJson(`${chain.url}/`)).status, 502, 'nothing there yet')

    // the user's gateway, started from the printed settings alone
    const own = spawnChild(
      {
        name: 'own gateway',
        command: process.execPath,
        args: [GATEWAY_MAIN_FOR_TESTS],
        env: { ...childEnv, ...chain.gatewaySettings },
        stopGraceMs: 5000,
      },
      { stdout: new PassThrough(), stderr: new PassThrough(), env: childEnv },
    )
    t.teardown(() => terminate(own))
    t.same(await waitUntilReady(chain.gatewayUrl, 10_000), { ready: true, reasons: [] })
    const echo = JSON.parse((await getJson(`${chain.url}/`)).body) as Echo
    t.equal(echo.headers['x-forwarded-email'], 'dev@example.com')
  },
)

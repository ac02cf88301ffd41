import { generateKeyPairSync } from 'node:crypto'
import t, { type Test } from 'tap'
import { createKeySet, type KeySetOptions, maxAgeSeconds } from '../../../proxy/iap/keys.ts'
import {
  createSigningKey,
  frozenClock,
  iapClaims,
  type KeyServer,
  recordingLog,
  signJwt,
  startKeyServer,
  until,
} from '../../helpers/iap.ts'
import { verifierWithKeyServer } from '../../helpers/verifier.ts'

function keySet(t: Test, server: KeyServer, options: Partial<KeySetOptions> = {}) {
  const log = recordingLog()
  const keys = createKeySet({ url: server.url, log, ...options })
  t.teardown(() => keys.close())
  return { keys, log }
}

t.test('max-age is parsed from Cache-Control', async (t) => {
  t.equal(maxAgeSeconds('public, max-age=3600'), 3600)
  t.equal(maxAgeSeconds('max-age=60, must-revalidate'), 60)
  t.equal(maxAgeSeconds('MAX-AGE="90"'), 90)
  t.equal(maxAgeSeconds('s-maxage=5, no-cache'), undefined)
  t.equal(maxAgeSeconds('max-age=abc'), undefined)
  t.equal(maxAgeSeconds(null), undefined)
})

t.test('Cache-Control max-age is honoured and clamped to [1 min, 24 h]; absent means 1 h', async (t) => {
  const key = createSigningKey()
  const server = await startKeyServer({ keys: [key] })
  t.teardown(() => server.close())
  const clock = frozenClock()
  const cases: [string | null, number][] = [
    ['public, max-age=7200', 7200_000],
    ['max-age=5', 60_000],
    ['max-age=0', 60_000],
    ['max-age=9999999', 24 * 3600_000],
    [null, 3600_000],
    ['no-store', 3600_000],
  ]
  for (const [header, ttl] of cases) {
    server.setCacheControl(header)
    const { keys } = keySet(t, server, { now: clock.now })
    t.equal(keys.expiresAt, undefined)
    keys.start()
    await until(() => keys.ready, 'keys')
    t.equal(keys.expiresAt, clock.ms + ttl, `${header}`)
    t.ok(keys.get(key.kid), 'the PEM was parsed into a key')
    keys.close()
  }
})

t.test('the set is refreshed in the background before it expires', async (t) => {
  const first = createSigningKey()
  const second = createSigningKey()
  const server = await startKeyServer({ keys: [first] })
  t.teardown(() => server.close())
  server.setCacheControl('max-age=0') // clamped up to minTtlMs: refresh after 80% of 50 ms
  const { keys, log } = keySet(t, server, { minTtlMs: 50 })
  keys.start()
  await until(() => keys.ready, 'keys')
  server.setKeys(second)
  await server.waitForRequests(3)
  await until(() => keys.get(second.kid) !== undefined, 'the refreshed set')
  t.equal(keys.get(first.kid), undefined, 'the old kid is gone after rotation')
  t.ok(
    log.lines.some(
      (l) => l.msg === 'IAP key set loaded' && (l.obj as { cause: string }).cause === 'scheduled',
    ),
  )
  keys.close()
  const after = server.requests
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(server.requests, after, 'close() stops the refresh timer')
})

t.test('a failing key server: last good set kept, retried with backoff, never logged verbatim', async (t) => {
  const key = createSigningKey()
  const server = await startKeyServer({ keys: [key] })
  t.teardown(() => server.close())
  server.setCacheControl('max-age=0')
  const { keys, log } = keySet(t, server, { minTtlMs: 20, retryBaseMs: 10, retryMaxMs: 20 })
  keys.start()
  await until(() => keys.ready, 'keys')
  const modes = ['garbage', 'not-json-object', 'empty-set', 'error-500', 'reset'] as const
  for (const mode of modes) {
    server.setMode(mode)
    await server.waitForRequests(server.requests + 2)
    t.ok(keys.get(key.kid), `${mode}: the last good key is still served`)
  }
  const problems = log.lines
    .filter((l) => l.level === 'warn')
    .map((l) => (l.obj as { problem: string }).problem)
  for (const problem of [
    'body is not JSON',
    'not a JSON object',
    'no usable EC P-256 key',
    'HTTP status 500',
    'request failed (TypeError)',
  ]) {
    t.ok(problems.includes(problem), problem)
  }
  t.ok(
    log.lines.some((l) => (l.obj as { failures?: number; retryInMs?: number }).retryInMs === 20),
    'the retry delay doubles up to its cap',
  )
  server.setMode('keys')
  await until(() => log.lines.at(-1)?.msg === 'IAP key set loaded', 'recovery')
})

t.test('a key server that never served a good set leaves the verifier not ready', async (t) => {
  const server = await startKeyServer()
  t.teardown(() => server.close())
  server.setBody({
    a: 'not a pem',
    b: 42,
    rsa: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    }),
  })
  const { keys, log } = keySet(t, server, { retryBaseMs: 10 })
  keys.start()
  await server.waitForRequests(2)
  t.equal(keys.ready, false)
  t.equal(keys.get('a'), undefined)
  t.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'IAP key set fetch failed; no key set yet'))
  t.same(log.lines.find((l) => l.msg.startsWith('IAP key set entries skipped'))?.obj, {
    skipped: 3,
    kids: ['a', 'b', 'rsa'],
  })
  // an oversized body is refused before parsing
  server.setBody({ big: 'x'.repeat(300 * 1024) })
  const before = log.lines.length
  await until(
    () =>
      log.lines.slice(before).some((l) => (l.obj as { problem?: string }).problem?.startsWith('body over')),
    'size limit',
  )
  // a good entry next to a bad one is enough
  const key = createSigningKey()
  server.setBody({ bad: 'x', [key.kid]: key.publicKey.export({ type: 'spki', format: 'pem' }).toString() })
  await until(() => keys.ready, 'keys')
  t.ok(keys.get(key.kid))
})

t.test('a fetch that hangs times out and is retried', async (t) => {
  const { createServer } = await import('node:http')
  const hanging = createServer(() => {}) // never answers
  hanging.listen(0, '127.0.0.1')
  await new Promise((resolve) => hanging.once('listening', resolve))
  t.teardown(() => {
    hanging.closeAllConnections()
    hanging.close()
  })
  const address = hanging.address() as { port: number }
  const log = recordingLog()
  const keys = createKeySet({
    url: `http://127.0.0.1:${address.port}/`,
    log,
    fetchTimeoutMs: 30,
    retryBaseMs: 10,
  })
  t.teardown(() => keys.close())
  keys.start()
  await until(() => log.lines.length > 0, 'the timeout')
  t.equal((log.lines[0]?.obj as { problem?: string } | undefined)?.problem, 'request failed (TimeoutError)')
})

t.test('a flood of made-up kids causes at most one refetch per 30 s cooldown', async (t) => {
  const key = createSigningKey()
  const clock = frozenClock()
  const { server, verifier } = await verifierWithKeyServer(t, { keys: [key] }, { now: clock.now })
  await until(() => verifier.keysReady, 'keys')
  t.equal(server.requests, 1)
  const flood = () =>
    Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        verifier.verify([
          signJwt({ ...key, kid: `made-up-${i}` }, iapClaims({ iat: Math.floor(clock.ms / 1000) })),
        ]),
      ),
    )
  const reasons = new Set((await flood()).map((r) => (r.ok ? 'ok' : r.reason)))
  t.same([...reasons], ['unknown_kid'])
  t.equal(server.requests, 1, 'right after a fetch: no refetch at all')
  clock.advance(31)
  await flood()
  t.equal(server.requests, 2, '200 concurrent unknown kids after the cooldown: one shared refetch')
  clock.advance(20)
  await flood()
  t.equal(server.requests, 2, 'inside the cooldown again: none')
  clock.advance(11)
  await flood()
  t.equal(server.requests, 3)
})

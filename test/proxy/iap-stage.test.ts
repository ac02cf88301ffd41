import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { createIapVerifier } from '../../proxy/iap/verify.ts'
import { createLogger } from '../../proxy/logging.ts'
import { rawRequest, spawnGateway, startGateway } from '../helpers/gateway.ts'
import {
  badTokens,
  createSigningKey,
  signAssertion,
  startKeyServer,
  TEST_AUDIENCE,
  until,
} from '../helpers/iap.ts'
import { startUpstream } from '../helpers/upstream.ts'

const key = createSigningKey()

/** The real verifier against a real key server, wired into the gateway as main.ts wires it. */
async function setup(t: Test, env: Record<string, string> = {}) {
  const keyServer = await startKeyServer({ keys: [key] })
  const upstream = await startUpstream()
  const settings = { ALLOWED_EMAILS: '', ALLOWED_DOMAINS: '', ...env }
  const verifier = createIapVerifier({
    audiences: [TEST_AUDIENCE],
    keysUrl: keyServer.url,
    allowedEmails: settings.ALLOWED_EMAILS.split(',').filter(Boolean),
    allowedDomains: settings.ALLOWED_DOMAINS.split(',').filter(Boolean),
    log: createLogger('silent'),
  })
  verifier.start()
  const gateway = await startGateway(
    { UPSTREAM_URL: upstream.url, ALLOWED_CIDRS: '127.0.0.1', IAP_AUDIENCE: TEST_AUDIENCE, ...settings },
    verifier,
  )
  t.teardown(async () => {
    verifier.close()
    await gateway.close()
    await upstream.close()
    await keyServer.close()
  })
  await until(() => verifier.keysReady, 'keys loaded')
  return { keyServer, upstream, gateway, verifier }
}

const call = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/api/v1/chatflows`, { headers })
const reasons = (logs: Record<string, unknown>[]) =>
  logs.filter((entry) => entry.reason).map((entry) => entry.reason)

t.test(
  'a valid assertion is proxied with the verified identity headers and the assertion itself',
  async (t) => {
    const { gateway, upstream } = await setup(t)
    const assertion = signAssertion(key, { email: 'alice@example.com' })
    const response = await call(gateway.url, {
      'x-goog-iap-jwt-assertion': assertion,
      'x-forwarded-email': 'mallory@evil.example',
      x_forwarded_user: 'mallory',
      'x-goog-authenticated-user-email': 'accounts.google.com:mallory@evil.example',
    })
    t.equal(response.status, 200)
    t.match(upstream.seen[0]?.headers, {
      'x-forwarded-email': 'alice@example.com',
      'x-forwarded-user': '108765432109876543210',
      'x-goog-authenticated-user-email': 'accounts.google.com:alice@example.com',
      'x-goog-authenticated-user-id': 'accounts.google.com:108765432109876543210',
      'x-goog-iap-jwt-assertion': assertion,
    })
    t.notOk(
      JSON.stringify(upstream.seen[0]?.rawHeaders).includes('mallory'),
      'no spoofed identity got through',
    )
  },
)

t.test('missing, garbage, forged and misdirected assertions are 401 and never reach the app', async (t) => {
  const { gateway, upstream } = await setup(t)
  const valid = signAssertion(key)
  const cases: [string, Record<string, string>][] = [
    ['missing', {}],
    ['malformed', { 'x-goog-iap-jwt-assertion': 'garbage' }],
    ['alg', { 'x-goog-iap-jwt-assertion': badTokens.algNone(key) }],
    ['alg', { 'x-goog-iap-jwt-assertion': badTokens.hs256WithPem(key) }],
    ['signature', { 'x-goog-iap-jwt-assertion': badTokens.rogueKey(key) }],
    [
      'audience',
      { 'x-goog-iap-jwt-assertion': signAssertion(key, { audience: '/projects/1/apps/other-app' }) },
    ],
    ['malformed', { 'x-goog-iap-jwt-assertion': `${valid}, ${valid}` }],
  ]
  for (const [reason, headers] of cases) {
    const response = await call(gateway.url, headers)
    t.equal(response.status, 401, reason)
    t.same(Object.keys((await response.json()) as object).sort(), ['error', 'requestId'])
  }
  t.equal(upstream.seen.length, 0)
  t.same(
    reasons(gateway.logs),
    cases.map(([reason]) => `iap_${reason}`),
  )
  t.notOk(gateway.rawLog.join('').includes(valid.slice(0, 40)), 'no token in the log')
})

t.test('two assertion header lines are refused, even if each is valid', async (t) => {
  const { gateway, upstream } = await setup(t)
  const valid = signAssertion(key)
  const response = await rawRequest(
    gateway.port,
    `GET /x HTTP/1.1\nHost: a\nX-Goog-IAP-JWT-Assertion: ${valid}\nx-goog-iap-jwt-assertion: ${valid}\nConnection: close\n\n`,
  )
  t.match(response, /^HTTP\/1.1 401/)
  t.equal(upstream.seen.length, 0)
})

t.test('a client Connection header cannot drop the verified identity headers', async (t) => {
  const { gateway, upstream } = await setup(t)
  const response = await rawRequest(
    gateway.port,
    [
      'GET /x HTTP/1.1',
      'Host: a',
      `X-Goog-IAP-JWT-Assertion: ${signAssertion(key)}`,
      'Connection: close, x-forwarded-email, X-Goog-Authenticated-User-Email, x-forwarded-for, x-goog-iap-jwt-assertion',
      '',
      '',
    ].join('\n'),
  )
  t.match(response, /^HTTP\/1.1 200/)
  t.match(upstream.seen[0]?.headers, {
    'x-forwarded-email': 'alice@example.com',
    'x-goog-authenticated-user-email': 'accounts.google.com:alice@example.com',
    'x-forwarded-for': '127.0.0.1',
  })
})

t.test('ALLOWED_EMAILS / ALLOWED_DOMAINS: an identity IAP admitted but not listed is 403', async (t) => {
  const { gateway, upstream } = await setup(t, {
    ALLOWED_EMAILS: 'bob@example.org',
    ALLOWED_DOMAINS: 'example.com',
  })
  t.equal((await call(gateway.url, { 'x-goog-iap-jwt-assertion': signAssertion(key) })).status, 200)
  const bob = signAssertion(key, { email: 'bob@example.org' })
  t.equal((await call(gateway.url, { 'x-goog-iap-jwt-assertion': bob })).status, 200)
  const eve = signAssertion(key, { email: 'eve@elsewhere.example' })
  t.equal((await call(gateway.url, { 'x-goog-iap-jwt-assertion': eve })).status, 403)
  t.equal(upstream.seen.length, 2)
  t.same(reasons(gateway.logs), ['iap_identity'])
})

t.test('a refused identity is logged with its verified email, never the assertion', async (t) => {
  const { gateway } = await setup(t, { ALLOWED_EMAILS: 'bob@example.org' })
  const eve = signAssertion(key, { email: 'eve@elsewhere.example' })
  t.equal((await call(gateway.url, { 'x-goog-iap-jwt-assertion': eve })).status, 403)
  t.equal((await call(gateway.url)).status, 401)
  const refused = gateway.logs.filter((entry) => entry.reason !== undefined)
  t.match(refused, [{ reason: 'iap_identity', email: 'eve@elsewhere.example' }, { reason: 'iap_missing' }])
  t.notOk('email' in (refused[1] as object), 'only an identity refusal names an email')
  t.notMatch(JSON.stringify(gateway.logs), eve.split('.')[1] as string, 'no part of the assertion is logged')
})

t.test('a WebSocket upgrade needs an assertion too, and carries the verified identity', async (t) => {
  const { gateway, upstream } = await setup(t)
  const refused = await new Promise<number>((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/ws`)
    socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
  })
  t.equal(refused, 401)
  t.equal(upstream.wsHandshakes.length, 0)

  const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/ws`, {
    headers: { 'x-goog-iap-jwt-assertion': signAssertion(key), 'x-forwarded-email': 'mallory@evil.example' },
  })
  t.teardown(() => socket.close())
  await new Promise((resolve) => socket.once('message', resolve))
  t.match(upstream.wsHandshakes[0], {
    'x-forwarded-email': 'alice@example.com',
    'x-goog-authenticated-user-id': 'accounts.google.com:108765432109876543210',
  })
})

t.test(
  'the real process: keys down at start means 503 and not ready, then served without restart',
  async (t) => {
    const keyServer = await startKeyServer({ keys: [key], up: false })
    const upstream = await startUpstream()
    t.teardown(async () => {
      await upstream.close()
      await keyServer.close()
    })
    const running = await spawnGateway({
      UPSTREAM_URL: upstream.url,
      ALLOWED_CIDRS: '127.0.0.1',
      IAP_AUDIENCE: TEST_AUDIENCE,
      IAP_KEYS_URL: keyServer.url,
    })
    t.teardown(running.stop)
    const assertion = { 'x-goog-iap-jwt-assertion': signAssertion(key) }
    t.equal((await fetch(`${running.url}/_gateway/healthz`)).status, 200, 'alive while keys are missing')
    const notReady = await fetch(`${running.url}/_gateway/readyz`)
    t.equal(notReady.status, 503)
    t.match(await notReady.json(), { reasons: ['IAP keys not loaded'], iap: 'verifying' })
    t.equal((await call(running.url, assertion)).status, 503)
    t.equal(upstream.seen.length, 0)
    await keyServer.up()
    for (let i = 0; i < 200 && (await fetch(`${running.url}/_gateway/readyz`)).status !== 200; i++)
      await sleep(50)
    t.equal((await fetch(`${running.url}/_gateway/readyz`)).status, 200)
    t.equal((await call(running.url, assertion)).status, 200)
    t.equal(upstream.seen.length, 1)
  },
)

t.test('fail closed: a gateway with IAP on cannot be built without a verifier', async (t) => {
  await t.rejects(
    startGateway({ ALLOWED_CIDRS: '127.0.0.1', IAP_AUDIENCE: TEST_AUDIENCE }),
    /IAP verification is on but no verifier was given/,
  )
})

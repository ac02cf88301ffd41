import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createLogger } from '../../proxy/logging.ts'
import { createIdTokenSource } from '../../proxy/upstream-id-token.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startMetadataServer } from '../helpers/metadata-server.ts'

const AUDIENCE = 'https://private-app-abc123-ew.a.run.app'

/** A private upstream that, like Cloud Run with run.invoker, admits only a valid token for its audience. */
async function privateUpstream(t: Test, check: (token: string) => boolean) {
  const seen: IncomingHttpHeaders[] = []
  const server = createServer((req, res) => {
    const header = req.headers['x-serverless-authorization']
    const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : ''
    if (!check(token)) {
      res.writeHead(401).end('no valid ID token')
      return
    }
    seen.push(req.headers)
    res.end('private hello')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

async function setup(t: Test) {
  const metadata = await startMetadataServer()
  process.env.GCE_METADATA_HOST = metadata.host
  const upstream = await privateUpstream(t, (token) => metadata.verify(token, AUDIENCE))
  const gateway = await startGateway({
    UPSTREAM_URL: upstream.url,
    UPSTREAM_ID_TOKEN_AUDIENCE: AUDIENCE,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(async () => {
    await gateway.close()
    await metadata.close()
  })
  return { metadata, upstream, gateway }
}

/** The ID token source against a fresh metadata server, on a clock only the test moves (`clock.ms`). */
async function tokenSource(t: Test) {
  const metadata = await startMetadataServer()
  t.teardown(() => metadata.close())
  process.env.GCE_METADATA_HOST = metadata.host
  const clock = { ms: Date.now() }
  const source = createIdTokenSource(AUDIENCE, createLogger('silent'), () => clock.ms)
  return { metadata, source, clock }
}

t.test('a private upstream gets an ID token; the app keeps its own Authorization', async (t) => {
  const { metadata, upstream, gateway } = await setup(t)
  const responses = await Promise.all(
    Array.from({ length: 5 }, () =>
      fetch(`${gateway.url}/api`, {
        headers: { authorization: 'Bearer app-api-key', 'x-serverless-authorization': 'Bearer forged' },
      }),
    ),
  )
  t.same(
    responses.map((response) => response.status),
    [200, 200, 200, 200, 200],
  )
  t.equal(metadata.identityRequests(), 1, 'one fetch shared by concurrent requests, then cached')
  t.equal(upstream.seen[0]?.authorization, 'Bearer app-api-key')
  await fetch(`${gateway.url}/again`)
  t.equal(metadata.identityRequests(), 1, 'still cached')
  t.notOk(gateway.rawLog.join('').includes('eyJ'), 'no token in the log')
})

t.test('metadata server down at the first request: 503, nothing forwarded', async (t) => {
  const { metadata, upstream, gateway } = await setup(t)
  metadata.failing = true
  const response = await fetch(`${gateway.url}/api`)
  t.equal(response.status, 503)
  t.equal(upstream.seen.length, 0)
  t.ok(gateway.logs.some((entry) => entry.reason === 'upstream_credential_unavailable'))
})

t.test('refresh happens in the background before expiry; requests never wait for it', async (t) => {
  const { metadata, source, clock } = await tokenSource(t)
  const first = await source.token()
  t.ok(metadata.verify(first, AUDIENCE))
  // 56 minutes later: inside the 5-minute refresh window of a one-hour token.
  clock.ms += 56 * 60_000
  metadata.delayMs = 300
  metadata.lifetimeSeconds = 7200 // the next token expires 120 minutes after the first
  const started = performance.now()
  t.equal(await source.token(), first, 'the held token is returned at once')
  t.ok(performance.now() - started < 250, 'without waiting for the slow metadata server')
  while (metadata.identityRequests() < 2) await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 400))
  const second = await source.token()
  t.not(second, first, 'the refreshed token is used from then on')
  // A failed refresh keeps the held token until it really expires.
  clock.ms += 60 * 60_000 // 116 minutes: inside the second token's refresh window
  metadata.delayMs = 0
  metadata.failing = true
  t.equal(await source.token(), second)
  clock.ms += 5 * 60_000
  await t.rejects(source.token(), 'expired and no new token: the caller is told')
})

t.test('a token whose expiry cannot be read is used for five minutes, then fetched again', async (t) => {
  const { metadata, source, clock } = await tokenSource(t)
  for (const opaque of ['opaque-token', 'a.e30.b']) {
    metadata.tokenOverride = opaque
    t.equal(await source.token(), opaque)
    clock.ms += 4 * 60_000
    t.equal(await source.token(), opaque, 'still held')
    clock.ms += 2 * 60_000
  }
  t.equal(metadata.identityRequests(), 2)
})

t.test('a client that leaves while the ID token is fetched is not forwarded', async (t) => {
  const { metadata, upstream, gateway } = await setup(t)
  metadata.delayMs = 300
  const socket = connect(gateway.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /api HTTP/1.1\r\nHost: a\r\n\r\n')
  for (let i = 0; i < 200 && metadata.identityRequests() === 0; i++) await sleep(5)
  t.equal(metadata.identityRequests(), 1, 'the pipeline is waiting for the token')
  socket.destroy()
  await sleep(600) // the token arrives meanwhile
  t.same(upstream.seen, [], 'nothing was sent upstream for a client that is gone')
  t.equal((await fetch(`${gateway.url}/api`)).status, 200, 'the next client is served')
})

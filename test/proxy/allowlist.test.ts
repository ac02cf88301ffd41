// proxy/allowlist.ts (ALLOWED_CIDRS): the ranges themselves, then the stage on real sockets, where the
// verdict rests on the address the gateway determined and never on what the client wrote.
import { Agent, request as httpRequest } from 'node:http'
import ipaddr from 'ipaddr.js'
import t, { type Test } from 'tap'
import { createAllowlist, parseNetwork } from '../../proxy/allowlist.ts'
import { rawRequest, startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

function allowlist(...entries: string[]) {
  const ranges = entries.map((entry) => {
    const parsed = parseNetwork(entry)
    if (typeof parsed === 'string') throw new Error(parsed)
    return parsed
  })
  return createAllowlist(entries, ranges)
}
const allows = (list: ReturnType<typeof allowlist>, address: string) => list.allows(ipaddr.process(address))

for (const { name, entries, allowed, refused } of [
  {
    name: 'IPv4 ranges and single addresses',
    entries: ['10.0.0.0/8', '192.0.2.7'],
    allowed: ['10.200.3.4', '192.0.2.7'],
    // an IPv6 address never matches an IPv4 range
    refused: ['192.0.2.8', '11.0.0.1', '2001:db8::1'],
  },
  {
    name: 'IPv6 ranges',
    entries: ['2001:db8::/32', '::1'],
    allowed: ['2001:db8:1::5', '::1'],
    refused: ['2001:db9::1', '10.0.0.1'],
  },
  {
    name: 'IPv4-mapped entries and clients meet as IPv4',
    entries: ['::ffff:10.0.0.0/104'],
    allowed: ['10.1.2.3', '::ffff:10.1.2.3'],
    refused: ['11.1.2.3'],
  },
  {
    name: '0.0.0.0/0 and ::/0 admit all',
    entries: ['0.0.0.0/0', '::/0'],
    allowed: ['203.0.113.1', '2001:db8::1'],
    refused: [],
  },
]) {
  t.test(name, async (t) => {
    const list = allowlist(...entries)
    for (const address of allowed) t.ok(allows(list, address), `${address} is allowed`)
    for (const address of refused) t.notOk(allows(list, address), `${address} is refused`)
  })
}

t.test('bad entries are named', async (t) => {
  t.equal(parseNetwork('10.0.0.0/33'), 'prefix length 33 exceeds 32 for IPv4')
  t.equal(parseNetwork('::/129'), 'prefix length 129 exceeds 128 for IPv6')
  t.equal(parseNetwork('10.0.0.0/x'), 'prefix length is not a number')
  t.equal(parseNetwork('10.0.0/8'), 'not an IPv4 or IPv6 address')
  t.equal(parseNetwork('/8'), 'not an address or CIDR')
  t.equal(parseNetwork('10.0.0.0/8/9'), 'not an address or CIDR')
})

/** Real sockets: the gateway listens on '::' so IPv4 clients arrive as ::ffff:127.0.0.1. */
async function setup(t: Test, env: Record<string, string>) {
  const upstream = await startUpstream()
  const gateway = await startGateway(
    { UPSTREAM_URL: upstream.url, IAP_DISABLED: 'true', ...env },
    undefined,
    '::',
  )
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  return { upstream, gateway }
}

const get = (port: number, host: string, path = '/x') => fetch(`http://${host}:${port}${path}`)

t.test('an IPv4 client inside the allowlist is proxied (arriving as an IPv4-mapped address)', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '127.0.0.0/8' })
  const response = await get(gateway.port, '127.0.0.1')
  t.equal(response.status, 200)
  t.equal(upstream.seen.length, 1)
  t.equal(
    upstream.seen[0]?.headers['x-forwarded-for'],
    '127.0.0.1',
    'the mapped address is forwarded as IPv4',
  )
})

t.test('an IPv6 client inside the allowlist is proxied; outside it is refused', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '::1/128' })
  t.equal((await get(gateway.port, '[::1]')).status, 200)
  const refused = await get(gateway.port, '127.0.0.1')
  t.equal(refused.status, 403)
  t.equal(upstream.seen.length, 1, 'the refused request never reached the upstream')
})

t.test('a client outside the allowlist gets 403 with a generic body; the log says why', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '10.0.0.0/8,2001:db8::/32' })
  const response = await get(gateway.port, '127.0.0.1')
  t.equal(response.status, 403)
  const body = (await response.json()) as { error: string; requestId: string }
  t.equal(body.error, 'Forbidden')
  t.match(body.requestId, /^[0-9a-f-]{36}$/)
  t.same(Object.keys(body).sort(), ['error', 'requestId'])
  t.equal(upstream.seen.length, 0)
  const line = gateway.logs.find((entry) => entry.reason === 'network_not_allowed')
  t.ok(line, 'one denial line with a machine-readable reason')
  t.equal(line?.requestId, body.requestId)
  t.match(line, { httpRequest: { remoteIp: '127.0.0.1' } })
  t.equal(line?.severity, 'WARNING')
})

t.test('a forged X-Forwarded-For does not move a refused client inside (hops = 0)', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '10.0.0.0/8' })
  const response = await fetch(`http://127.0.0.1:${gateway.port}/x`, {
    headers: { 'x-forwarded-for': '10.1.1.1' },
  })
  t.equal(response.status, 403)
  t.equal(upstream.seen.length, 0)
})

t.test('hop counting: spoofed left-most entries cannot choose the client address', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '203.0.113.0/24', TRUST_PROXY_HOPS: '2' })
  const through = (xff: string) =>
    fetch(`http://[::1]:${gateway.port}/x`, { headers: { 'x-forwarded-for': xff } })
  // As Google's load balancer writes it: whatever the client sent, then "<client>,<lb>".
  t.equal((await through('10.9.9.9, 203.0.113.50, 35.191.0.1')).status, 200)
  t.equal(
    upstream.seen.at(-1)?.headers['x-forwarded-for'],
    '203.0.113.50',
    'exactly one address goes upstream',
  )
  // The attacker puts an allowed address left-most; their real address is what the LB appended.
  t.equal((await through('203.0.113.50, 198.51.100.9, 35.191.0.1')).status, 403)
  t.equal((await through('35.191.0.1')).status, 403, 'too short a chain is refused')
  t.equal((await through('garbage, 35.191.0.1')).status, 403, 'unparseable is refused')
  t.equal(upstream.seen.length, 1)
  t.same(
    gateway.logs.filter((entry) => entry.reason).map((entry) => entry.reason),
    ['network_not_allowed', 'forwarded_chain_too_short', 'client_address_unparseable'],
  )
})

t.test('repeated X-Forwarded-For lines are one chain, in order', async (t) => {
  const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '203.0.113.0/24', TRUST_PROXY_HOPS: '2' })
  const response = await rawRequest(
    gateway.port,
    'GET /x HTTP/1.1\nHost: a\nX-Forwarded-For: 1.1.1.1\nX-Forwarded-For: 203.0.113.9, 35.191.0.1\nConnection: close\n\n',
  )
  t.match(response, /^HTTP\/1.1 200/)
  t.equal(upstream.seen[0]?.headers['x-forwarded-for'], '203.0.113.9')
})

t.test(
  'a load balancer connection shared by many clients is judged per request, not per connection',
  async (t) => {
    // The gateway remembers a connection's verdict only when the socket peer is the client (hops = 0).
    // Behind a load balancer one keep-alive connection carries every client: an allowed client's
    // verdict must not admit the next one.
    const { gateway, upstream } = await setup(t, { ALLOWED_CIDRS: '203.0.113.0/24', TRUST_PROXY_HOPS: '1' })
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const send = (xff: string) =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const request = httpRequest(
          { port: gateway.port, host: '::1', path: '/x', agent, headers: { 'x-forwarded-for': xff } },
          (response) => {
            response.resume()
            response.on('end', () =>
              resolve({ status: response.statusCode as number, reused: request.reusedSocket }),
            )
          },
        )
        request.on('error', reject)
        request.end()
      })
    t.same(await send('203.0.113.7'), { status: 200, reused: false })
    t.same(
      await send('198.51.100.9'),
      { status: 403, reused: true },
      'same connection, other client: refused',
    )
    t.same(await send('203.0.113.8'), { status: 200, reused: true })
    t.same(
      upstream.seen.map((seen) => seen.headers['x-forwarded-for']),
      ['203.0.113.7', '203.0.113.8'],
    )
  },
)

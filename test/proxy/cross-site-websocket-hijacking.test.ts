// Cross-site WebSocket hijacking: authorization happens once, at the upgrade, and a browser sends IAP's
// cookie (so IAP adds a valid assertion) with an upgrade a page on another site opens too; the page then
// reads the socket. Browsers always send Origin on a WebSocket handshake (RFC 6455 4.1), so the gateway
// refuses an upgrade whose Origin is not the request's own host, unless ALLOWED_ORIGINS lists it.
// "Own host" is the Host header the gateway received: the name the user typed, which the load balancer
// passes on; a client's X-Forwarded-Host counts for nothing (the gateway overwrites it).
// A review found three ways around the first version: the scheme was not compared (behind the load
// balancer, a page on http://host, which anyone on its network path can write, counted as the https
// app's own); `Sec-WebSocket-Origin`, the origin header of the drafts before RFC 6455 (version 8, which
// ws accepts), was not read; and Host was parsed as a URL, so `Host: x@evil.example` named evil.example.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { openRaw, verifyingGatewayInFront } from '../helpers/gateway.ts'

async function setup(t: Test, env: Record<string, string> = {}) {
  const { upstream, gateway } = await verifyingGatewayInFront(t, env)
  /** A browser's handshake, as IAP passes it on (with a valid assertion); resolves with the status. */
  const upgrade = async (host: string, origin: string | undefined, extra: string[] = []) => {
    const client = openRaw(t, gateway.port)
    client.write(
      [
        'GET /api/v1/ws?room=1 HTTP/1.1',
        `Host: ${host}`,
        ...(origin === undefined ? [] : [`Origin: ${origin}`]),
        'Connection: Upgrade',
        'Upgrade: websocket',
        ...(extra.some((line) => line.startsWith('Sec-WebSocket-Version'))
          ? []
          : ['Sec-WebSocket-Version: 13']),
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        `X-Goog-IAP-JWT-Assertion: ${gateway.assertion()}`,
        ...extra,
        '',
        '',
      ].join('\r\n'),
    )
    const answer = await client.waitFor(/^HTTP\/1.1 \d{3}/)
    return Number(answer.slice(9, 12))
  }
  return { upstream, gateway, upgrade }
}

t.test('an upgrade from another site is refused before it reaches the app', async (t) => {
  const { upstream, gateway, upgrade } = await setup(t)
  t.equal(await upgrade('flowise.example.com', 'https://evil.example'), 403)
  t.equal(await upgrade('flowise.example.com', 'https://flowise.example.com.evil.example'), 403)
  t.equal(await upgrade('flowise.example.com', 'https://flowise.example.com:8443'), 403, 'another port')
  t.equal(await upgrade('flowise.example.com', 'null'), 403, 'a sandboxed or file: page')
  t.equal(await upgrade('flowise.example.com', 'not a url'), 403)
  await sleep(200) // an admitted upgrade's upstream handshake follows its 101
  t.equal(upstream.wsHandshakes.length, 0)
  t.equal(
    gateway.logs.filter((entry) => entry.reason === 'websocket_origin_not_allowed').length,
    5,
    'each refusal is logged with its reason',
  )
})

t.test('a client-written X-Forwarded-Host does not make another site the own host', async (t) => {
  const { upstream, upgrade } = await setup(t)
  const status = await upgrade('flowise.example.com', 'https://evil.example', [
    'X-Forwarded-Host: evil.example',
  ])
  t.equal(status, 403)
  await sleep(200) // an admitted upgrade's upstream handshake follows its 101
  t.equal(upstream.wsHandshakes.length, 0)
})

t.test('the app’s own pages, and clients that send no Origin, get their WebSocket', async (t) => {
  const { upstream, upgrade } = await setup(t)
  t.equal(await upgrade('flowise.example.com', 'https://flowise.example.com'), 101)
  t.equal(await upgrade('Flowise.Example.com', 'https://flowise.example.com'), 101, 'host names ignore case')
  t.equal(await upgrade('flowise.example.com:443', 'https://flowise.example.com'), 101, 'a default port')
  t.equal(await upgrade('localhost:3100', 'http://localhost:3100'), 101, 'the local emulator')
  t.equal(await upgrade('flowise.example.com', undefined), 101, 'no Origin: not a browser')
  await sleep(200)
  t.equal(upstream.wsHandshakes.length, 5)
})

t.test('ALLOWED_ORIGINS admits other sites by exact origin', async (t) => {
  const { upgrade } = await setup(t, {
    ALLOWED_ORIGINS: 'https://console.example.com, http://localhost:5173',
  })
  t.equal(await upgrade('flowise.example.com', 'https://console.example.com'), 101)
  t.equal(
    await upgrade('flowise.example.com', 'HTTPS://CONSOLE.EXAMPLE.COM:443'),
    101,
    'as browsers normalise it',
  )
  t.equal(await upgrade('flowise.example.com', 'http://localhost:5173'), 101)
  t.equal(await upgrade('flowise.example.com', 'http://console.example.com'), 403, 'another scheme')
  t.equal(await upgrade('flowise.example.com', 'https://evil.example'), 403)
})

t.test('plain HTTP with a foreign Origin is the app’s to judge (CORS), not refused here', async (t) => {
  const { upstream, gateway } = await setup(t)
  const response = await fetch(`${gateway.url}/api/v1/chatflows`, {
    headers: { origin: 'https://evil.example', 'x-goog-iap-jwt-assertion': gateway.assertion() },
  })
  t.equal(response.status, 200)
  t.equal(upstream.seen[0]?.headers.origin, 'https://evil.example')
})

t.test('behind proxies that report https, a page on plain http is not the app’s own', async (t) => {
  // as behind the load balancer: the client's address and scheme come from trusted proxies
  const { upstream, upgrade } = await setup(t, { TRUST_PROXY_HOPS: '1' })
  const https = ['X-Forwarded-For: 127.0.0.1', 'X-Forwarded-Proto: https']
  t.equal(await upgrade('flowise.example.com', 'http://flowise.example.com', https), 403)
  t.equal(await upgrade('flowise.example.com', 'https://flowise.example.com', https), 101)
  const plain = ['X-Forwarded-For: 127.0.0.1', 'X-Forwarded-Proto: http']
  t.equal(await upgrade('flowise.example.com', 'http://flowise.example.com', plain), 101, 'an http app')
  await sleep(200)
  t.equal(upstream.wsHandshakes.length, 2)
})

t.test('the pre-RFC 6455 Sec-WebSocket-Origin is checked like Origin', async (t) => {
  const { upstream, upgrade } = await setup(t)
  const hybi08 = (origin: string) => ['Sec-WebSocket-Version: 8', `Sec-WebSocket-Origin: ${origin}`]
  t.equal(await upgrade('flowise.example.com', undefined, hybi08('https://evil.example')), 403)
  t.equal(
    await upgrade('flowise.example.com', 'https://flowise.example.com', [
      'Sec-WebSocket-Origin: https://evil.example',
    ]),
    403,
    'each origin sent must pass',
  )
  t.equal(await upgrade('flowise.example.com', undefined, hybi08('https://flowise.example.com')), 101)
  await sleep(200)
  t.equal(upstream.wsHandshakes.length, 1)
})

t.test('Host is compared as sent, not parsed as a URL', async (t) => {
  const { upstream, upgrade } = await setup(t)
  // as a URL's authority, `x@evil.example` is the host evil.example with userinfo x
  t.equal(await upgrade('x@evil.example', 'https://evil.example'), 403)
  t.equal(await upgrade('evil.example@flowise.example.com', 'https://flowise.example.com'), 403)
  t.equal(await upgrade('flowise.example.com:443/x', 'https://flowise.example.com'), 403)
  t.equal(await upgrade('flowise.example.com:80', 'http://flowise.example.com'), 101, 'http’s default port')
  await sleep(200)
  t.equal(upstream.wsHandshakes.length, 1)
})

// proxy/headers.ts on its own: the header block the upstream receives and the one the client gets
// back, as pure functions (the tests through the gateway are forward.test.ts and the attack scenarios).
import type { IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import {
  assertionValues,
  connectionTokens,
  downstreamHeaders,
  isGatewayOwnedHeader,
  isHopByHop,
  type RequestFacts,
  upstreamHeaders,
  upstreamWebSocketHeaders,
} from '../../proxy/headers.ts'

const facts: RequestFacts = {
  clientAddress: '203.0.113.7',
  proto: 'https',
  host: 'app.example',
  identity: {
    email: 'ann@example.com',
    sub: '1234',
    userEmailHeader: 'accounts.google.com:ann@example.com',
    userIdHeader: 'accounts.google.com:1234',
  },
  assertion: 'a.b.c',
  upstreamToken: 'id-token',
}

t.test('the verified values come first, before any line of the client’s', async (t) => {
  const headers = upstreamHeaders({ accept: '*/*', 'x-app': '1' }, facts, undefined)
  const names = Object.keys(headers)
  t.equal(names.length, 12, 'ten of the gateway’s, two of the client’s')
  t.same(names.slice(-2), ['accept', 'x-app'], 'the client’s lines last')
  t.match(headers, {
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'app.example',
    host: 'app.example',
    'x-forwarded-email': 'ann@example.com',
    'x-goog-iap-jwt-assertion': 'a.b.c',
    'x-serverless-authorization': 'Bearer id-token',
  })
})

t.test('a client’s copy of a gateway-owned header is dropped in every spelling', async (t) => {
  const client = {
    'x-forwarded-email': 'mallory@evil.example',
    x_forwarded_user: 'mallory',
    'x-goog-authenticated-user-id': 'x',
    'x-goog-iap-jwt-assertion-extra': 'x',
    forwarded: 'for=1.2.3.4',
    'x-real-ip': '1.2.3.4',
    'proxy-authorization': 'Bearer google-token',
    'x-serverless-authorization': 'Bearer other',
    authorization: 'Bearer flowise-api-key',
  }
  const headers = upstreamHeaders(
    client,
    { ...facts, identity: undefined, upstreamToken: undefined },
    undefined,
  )
  for (const name of Object.keys(client).filter((name) => name !== 'authorization')) {
    t.ok(isGatewayOwnedHeader(name), `${name} is the gateway's`)
    t.notOk(name in headers && headers[name] === client[name as keyof typeof client], `${name} not passed on`)
  }
  t.equal(headers.authorization, 'Bearer flowise-api-key', 'Authorization is the app’s')
  t.notOk('x-serverless-authorization' in headers, 'no ID token configured: none sent')
  t.notOk('x-forwarded-email' in headers, 'no identity verified: none claimed')
})

t.test('hop-by-hop headers, what Connection names, Expect and digit-only names stay here', async (t) => {
  const headers = upstreamHeaders(
    {
      connection: 'keep-alive, X-Secret-Hop',
      'keep-alive': 'timeout=5',
      'x-secret-hop': '1',
      upgrade: 'h2c',
      'http2-settings': 'AAMAAABkAAQAAP__',
      te: 'trailers',
      expect: '100-continue',
      host: 'client-chosen',
      '0': 'first?',
      'x-kept': 'yes',
    },
    facts,
    'upstream.internal',
  )
  t.equal(headers.host, 'upstream.internal', 'UPSTREAM_HOST_HEADER wins over the client’s Host')
  for (const name of [
    'connection',
    'keep-alive',
    'x-secret-hop',
    'upgrade',
    'http2-settings',
    'te',
    'expect',
    '0',
  ]) {
    t.notOk(name in headers, `${name} dropped`)
  }
  t.equal(headers['x-kept'], 'yes')
})

t.test('a WebSocket upgrade leaves the handshake lines to the upstream client', async (t) => {
  const headers = upstreamWebSocketHeaders(
    {
      'sec-websocket-key': 'k',
      'sec-websocket-version': '13',
      'sec-websocket-extensions': 'permessage-deflate',
      'sec-websocket-protocol': 'chat',
      origin: 'https://app.example',
    },
    facts,
    undefined,
  )
  t.notOk(Object.keys(headers).some((name) => name.startsWith('sec-websocket-')))
  t.equal(headers.origin, 'https://app.example')
  t.equal(headers['x-forwarded-email'], 'ann@example.com')
})

t.test(
  'the answer loses the upstream’s hop-by-hop headers, repeated Connection lines included',
  async (t) => {
    // undici gives repeated lines as an array, which Node's IncomingHttpHeaders type does not foresee.
    const fromUndici: Record<string, string | string[]> = {
      connection: ['keep-alive', 'X-Internal'],
      'keep-alive': 'timeout=600',
      'transfer-encoding': 'chunked',
      'x-internal': 'next hop only',
      'set-cookie': ['a=1', 'b=2'],
    }
    const headers = downstreamHeaders(fromUndici as IncomingHttpHeaders)
    t.same(headers, { 'set-cookie': ['a=1', 'b=2'] })
  },
)

t.test('every assertion line is seen, in every spelling, unjoined', async (t) => {
  t.same(
    assertionValues(['Host', 'a', 'X-Goog-IAP-JWT-Assertion', 'one', 'x-goog-iap-jwt-assertion', 'two']),
    ['one', 'two'],
  )
  t.same(assertionValues(['Host', 'a']), [])
})

t.test('connection tokens and hop-by-hop names, as the emulator uses them too', async (t) => {
  t.same([...connectionTokens(' Keep-Alive ,X-A')], ['keep-alive', 'x-a'])
  t.same([...connectionTokens(['close', 'X-B'])], ['close', 'x-b'])
  t.equal(connectionTokens(undefined).size, 0)
  t.ok(isHopByHop('transfer-encoding') && isHopByHop('http2-settings'))
  t.notOk(isHopByHop('authorization'))
})

// IAP's programmatic clients may carry their Google OIDC token in Proxy-Authorization (IAP reads its
// credential from Authorization or Proxy-Authorization: https://cloud.google.com/iap/docs/authentication-howto).
// It is a credential for the proxy in front of the app; the app, and its logs, must never see it, on plain
// HTTP or on a WebSocket upgrade. Authorization stays the app's (Flowise API keys) and passes unchanged.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { gatewayInFront, rawRequest } from '../helpers/gateway.ts'

const setup = (t: Test) => gatewayInFront(t)

t.test('Proxy-Authorization never reaches the app; Authorization does, unchanged', async (t) => {
  const { gateway, upstream } = await setup(t)
  const response = await rawRequest(
    gateway.port,
    [
      'POST /api/v1/prediction/abc HTTP/1.1',
      'Host: a',
      'Authorization: Bearer flowise-api-key',
      'Proxy-Authorization: Bearer google-oidc-token',
      'proxy_authorization: Bearer google-oidc-token-underscore',
      'Content-Length: 2',
      'Connection: close',
      '',
      '{}',
    ].join('\n'),
  )
  t.match(response, /^HTTP\/1.1 200/)
  const seen = upstream.seen[0]
  t.equal(seen?.headers.authorization, 'Bearer flowise-api-key')
  t.equal(seen?.headers['proxy-authorization'], undefined)
  t.notOk(
    seen?.rawHeaders.some((value) => value.includes('google-oidc-token')),
    'no spelling of the proxy credential reached the upstream',
  )
})

t.test('Proxy-Authorization never reaches the app on a WebSocket upgrade', async (t) => {
  const { gateway, upstream } = await setup(t)
  const socket = new WebSocket(`ws://127.0.0.1:${gateway.port}/ws`, {
    headers: {
      authorization: 'Bearer flowise-api-key',
      'proxy-authorization': 'Bearer google-oidc-token',
    },
  })
  t.teardown(() => socket.close())
  const first = await new Promise<{ handshake: Record<string, string> }>((resolve, reject) => {
    socket.once('message', (data) => resolve(JSON.parse(String(data))))
    socket.once('error', reject)
  })
  t.equal(first.handshake.authorization, 'Bearer flowise-api-key')
  t.equal(first.handshake['proxy-authorization'], undefined)
  t.equal(upstream.wsHandshakes[0]?.['proxy-authorization'], undefined)
})

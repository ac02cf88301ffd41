import { type AddressInfo, createServer as createNetServer } from 'node:net'
import t from 'tap'
import { rawRequest, startGateway } from './helpers/gateway.ts'
import { startUpstream, unusedPort } from './helpers/upstream.ts'

t.test('upstream down: 502 with a short body, no stack, no internal address', async (t) => {
  const port = await unusedPort()
  const gateway = await startGateway({
    UPSTREAM_URL: `http://127.0.0.1:${port}`,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(() => gateway.close())
  const response = await fetch(`${gateway.url}/api/v1/chatflows`)
  t.equal(response.status, 502)
  const text = await response.text()
  t.match(JSON.parse(text), { error: 'Bad Gateway' })
  t.notMatch(text, String(port))
  t.notMatch(text, /127\.0\.0\.1|ECONNREFUSED|at /)
  const line = gateway.logs.find((entry) => typeof entry.reason === 'string')
  t.equal(line?.reason, 'upstream_error:ECONNREFUSED', 'the cause goes to the log')
  t.equal(line?.message, 'upstream failed')
})

t.test('an upstream slower than UPSTREAM_TIMEOUT_MS: 504', async (t) => {
  const upstream = await startUpstream()
  const gateway = await startGateway({
    UPSTREAM_URL: upstream.url,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
    UPSTREAM_TIMEOUT_MS: '200',
  })
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  const response = await fetch(`${gateway.url}/slow?ms=1500`)
  t.equal(response.status, 504)
  t.match(await response.json(), { error: 'Gateway Timeout' })
  t.ok(gateway.logs.some((entry) => entry.reason === 'upstream_timeout'))
})

t.test('an upstream that answers garbage or hangs up: 502, the cause in the log', async (t) => {
  const cases = [
    { answer: 'garbage\r\n\r\n', reason: 'upstream_error:HTTPParserError' },
    { answer: null, reason: 'upstream_error:UND_ERR_SOCKET' },
  ]
  for (const { answer, reason } of cases) {
    const raw = createNetServer((socket) =>
      socket.once('data', () => (answer === null ? socket.destroy() : socket.end(answer))),
    )
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
    const gateway = await startGateway({
      UPSTREAM_URL: `http://127.0.0.1:${(raw.address() as AddressInfo).port}`,
      ALLOWED_CIDRS: '127.0.0.1',
      IAP_DISABLED: 'true',
    })
    const response = await fetch(`${gateway.url}/x`)
    t.equal(response.status, 502)
    t.match(await response.json(), { error: 'Bad Gateway' })
    t.same(
      gateway.logs.filter((entry) => entry.reason).map((entry) => entry.reason),
      [reason],
    )
    await gateway.close()
    raw.close()
  }
})

t.test('a 502 or 504 says its length instead of being sent chunked', async (t) => {
  // written on the raw response once the forwarder has taken it over (writeHead, then end(body)), these
  // went out chunked: framing a client of HTTP/1.0 cannot read, for a body whose length is known
  const down = await startGateway({
    UPSTREAM_URL: `http://127.0.0.1:${await unusedPort()}`,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(() => down.close())
  const upstream = await startUpstream()
  const slow = await startGateway({
    UPSTREAM_URL: upstream.url,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
    UPSTREAM_TIMEOUT_MS: '200',
  })
  t.teardown(async () => {
    await slow.close()
    await upstream.close()
  })
  for (const [port, target, status] of [
    [down.port, '/x', 502],
    [slow.port, '/slow?ms=1500', 504],
  ] as const) {
    const response = await rawRequest(port, `GET ${target} HTTP/1.1\nHost: a\nConnection: close\n\n`)
    const [head = '', body = ''] = response.split('\r\n\r\n')
    t.match(head, new RegExp(`^HTTP/1.1 ${status} `))
    t.notMatch(head, /transfer-encoding/i, `${status}: not chunked`)
    t.match(head, new RegExp(`\r\ncontent-length: ${body.length}(\r\n|$)`, 'i'), `${status}: its length`)
  }
})

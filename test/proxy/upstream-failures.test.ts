// The upstream fails: down, too slow, garbage, a hang-up, an answer cut short. The client gets 502 or
// 504 with a generic body (the cause, which may name internal addresses, goes to the log only), or a
// cut connection once the answer has begun, so a partial answer never looks complete (forward.ts).

import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { freePort } from '../../dev/free-port.ts'
import { gatewayBefore, gatewayInFrontOfRaw, rawRequest } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

t.test('upstream down: 502 with a short body, no stack, no internal address', async (t) => {
  const port = await freePort()
  const gateway = await gatewayBefore(t, `http://127.0.0.1:${port}`)
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
  t.teardown(() => upstream.close())
  const gateway = await gatewayBefore(t, upstream.url, { UPSTREAM_TIMEOUT_MS: '200' })
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
    const { gateway } = await gatewayInFrontOfRaw(t, (socket) =>
      answer === null ? socket.destroy() : socket.end(answer),
    )
    const response = await fetch(`${gateway.url}/x`)
    t.equal(response.status, 502)
    t.match(await response.json(), { error: 'Bad Gateway' })
    t.same(
      gateway.logs.filter((entry) => entry.reason).map((entry) => entry.reason),
      [reason],
    )
  }
})

t.test('a 502 or 504 says its length instead of being sent chunked', async (t) => {
  // written on the raw response once the forwarder has taken it over (writeHead, then end(body)), these
  // went out chunked: framing a client of HTTP/1.0 cannot read, for a body whose length is known
  const down = await gatewayBefore(t, `http://127.0.0.1:${await freePort()}`)
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const slow = await gatewayBefore(t, upstream.url, { UPSTREAM_TIMEOUT_MS: '200' })
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

t.test('an upstream that dies after its headers: the client connection is cut, not ended', async (t) => {
  const { gateway } = await gatewayInFrontOfRaw(t, (socket) =>
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', () => socket.destroy()),
  )
  const response = await fetch(`${gateway.url}/download`)
  t.equal(response.status, 200)
  await t.rejects(response.text(), 'a truncated body never reads as complete')
  for (let i = 0; i < 500 && !gateway.logs.some((line) => line.reason); i++) await sleep(10)
  t.match(
    gateway.logs.find((line) => line.reason),
    {
      reason: /^upstream_error:/,
      message: 'upstream failed after the response began',
    },
  )
})

// /_gateway/readyz answers without any check (Cloud Run's probes carry no assertion), and each answer
// opened a new TCP connection to the app: 200 pipelined requests made 200 connections, an amplifier any
// client could drive. Readiness is now answered from an upstream probe at most a second old, shared by
// every request that asks meanwhile.
import { createServer, type Server } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { openRaw, startGateway } from '../helpers/gateway.ts'

/** A TCP listener standing in for the app, counting the connections made to it. */
async function countingUpstream(t: Test) {
  let connections = 0
  const server: Server = createServer((socket) => {
    connections += 1
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, server, connections: () => connections }
}

async function setup(t: Test) {
  const upstream = await countingUpstream(t)
  const gateway = await startGateway({
    UPSTREAM_URL: upstream.url,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(() => gateway.close())
  return { upstream, gateway }
}

/** `count` readiness requests pipelined on one connection; resolves with the answers' statuses. */
async function pipelinedReadyz(t: Test, port: number, count: number): Promise<string[]> {
  const client = openRaw(t, port)
  const one = 'GET /_gateway/readyz HTTP/1.1\r\nHost: a\r\n\r\n'
  client.write(one.repeat(count - 1) + one.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'))
  await client.closed
  return [...client.received().matchAll(/HTTP\/1.1 (\d{3}) /g)].map((match) => match[1] as string)
}

t.test('200 pipelined readiness requests do not make 200 upstream connections', async (t) => {
  const { upstream, gateway } = await setup(t)
  const statuses = await pipelinedReadyz(t, gateway.port, 200)
  t.equal(statuses.length, 200)
  t.ok(
    statuses.every((status) => status === '200'),
    'every answer says ready',
  )
  await sleep(500) // the listener here accepts after the gateway's connects return: let it catch up
  // One probe per second at most: the burst takes well under a second, a loaded machine a little more.
  t.ok(upstream.connections() <= 3, `${upstream.connections()} upstream connection(s)`)
})

t.test('the result is at most about a second old: a stopped upstream shows within it', async (t) => {
  const { upstream, gateway } = await setup(t)
  t.equal((await fetch(`${gateway.url}/_gateway/readyz`)).status, 200)
  await new Promise<void>((resolve) => upstream.server.close(() => resolve()))
  await sleep(1100)
  const after = await fetch(`${gateway.url}/_gateway/readyz`)
  t.equal(after.status, 503)
  t.match(await after.json(), { reasons: ['upstream not reachable'] })
})

t.test('shutdown shows at once, whatever the age of the probe', async (t) => {
  const { gateway } = await setup(t)
  t.equal((await fetch(`${gateway.url}/_gateway/readyz`)).status, 200)
  gateway.health.beginShutdown()
  t.match(await (await fetch(`${gateway.url}/_gateway/readyz`)).json(), { reasons: ['shutting down'] })
})

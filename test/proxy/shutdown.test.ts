import t from 'tap'
import { spawnGatewayInFront } from '../helpers/gateway.ts'

async function readAll(response: Response, onFirst: () => void): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  let text = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return text
    if (text === '') onFirst()
    text += Buffer.from(value).toString()
  }
}

t.test('SIGTERM: stop accepting, finish the stream in flight, then exit 0', async (t) => {
  const { gateway } = await spawnGatewayInFront(t)
  const response = await fetch(`${gateway.url}/sse?events=4&gapMs=250`)
  const body = await readAll(response, () => gateway.child.kill('SIGTERM'))
  t.equal(
    body,
    'data: event 0\n\ndata: event 1\n\ndata: event 2\n\ndata: event 3\n\n',
    'the stream completed',
  )
  t.same(await gateway.exited, { code: 0, signal: null })
  await t.rejects(fetch(`${gateway.url}/x`), 'no new connections after shutdown')
  const messages = gateway.stdout.map((line) => JSON.parse(line).message)
  t.ok(messages.includes('shutting down: draining in-flight requests'))
  t.ok(messages.includes('drained; exiting'))
})

t.test('SIGTERM: a stream longer than SHUTDOWN_GRACE_MS is cut and the process still exits 0', async (t) => {
  const { gateway } = await spawnGatewayInFront(t, { SHUTDOWN_GRACE_MS: '300' })
  const response = await fetch(`${gateway.url}/sse?events=100&gapMs=200`)
  const started = performance.now()
  await t.rejects(readAll(response, () => gateway.child.kill('SIGTERM')))
  t.same(await gateway.exited, { code: 0, signal: null })
  t.ok(performance.now() - started < 5000, 'did not wait for the whole stream')
  t.ok(gateway.stdout.some((line) => line.includes('grace period over')))
})

t.test('SIGINT drains the same way, and a second signal does not start a second shutdown', async (t) => {
  const { gateway } = await spawnGatewayInFront(t)
  const response = await fetch(`${gateway.url}/sse?events=3&gapMs=200`)
  const draining = () => gateway.stdout.filter((line) => line.includes('shutting down')).length
  // Signals sent back to back can merge into one; the second goes only once the first was handled.
  const body = readAll(response, () => gateway.child.kill('SIGINT'))
  while (draining() === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  gateway.child.kill('SIGTERM')
  t.equal(await body, 'data: event 0\n\ndata: event 1\n\ndata: event 2\n\n', 'the stream still completed')
  t.same(await gateway.exited, { code: 0, signal: null })
  t.equal(draining(), 1, 'one shutdown')
})

import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import t, { type Test } from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

async function setup(t: Test) {
  const upstream = await startUpstream()
  const gateway = await startGateway({
    UPSTREAM_URL: upstream.url,
    ALLOWED_CIDRS: '127.0.0.1',
    IAP_DISABLED: 'true',
  })
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  return { upstream, gateway }
}

t.test('a 50 MB upload arrives byte for byte, streamed (chunked, no size cap)', async (t) => {
  const { gateway, upstream } = await setup(t)
  const chunk = randomBytes(1024 * 1024)
  const expected = createHash('sha256')
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${gateway.url}/api/v1/attachments`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
    })
    req.on('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    let sent = 0
    const pump = () => {
      while (sent < 50) {
        sent++
        expected.update(chunk)
        if (!req.write(chunk)) return req.once('drain', pump)
      }
      req.end()
    }
    pump()
  })
  t.equal(status, 200)
  t.equal(upstream.seen[0]?.bodyBytes, 50 * 1024 * 1024)
  t.equal(upstream.seen[0]?.bodySha256, expected.digest('hex'))
})

t.test('SSE events reach the client one by one, before the stream ends', async (t) => {
  const { gateway } = await setup(t)
  const started = performance.now()
  const response = await fetch(`${gateway.url}/api/v1/prediction/x/sse?events=4&gapMs=300`, {
    headers: { accept: 'text/event-stream', 'accept-encoding': 'gzip, br' },
  })
  t.equal(response.headers.get('content-type'), 'text/event-stream')
  t.equal(response.headers.get('content-encoding'), null, 'no compression added')
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const arrivals: number[] = []
  let text = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    text += Buffer.from(value).toString()
    arrivals.push(performance.now() - started)
  }
  t.equal(text, 'data: event 0\n\ndata: event 1\n\ndata: event 2\n\ndata: event 3\n\n')
  t.ok(arrivals.length >= 4, `events arrived in ${arrivals.length} reads`)
  // The upstream spends >= 900 ms between the first and last event; a buffering proxy delivers at once.
  t.ok((arrivals.at(-1) as number) - (arrivals[0] as number) >= 600, 'first event long before the last')
})

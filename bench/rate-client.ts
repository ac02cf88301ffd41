// Latency at a fixed, moderate rate (an open-loop client, run as its own process). wrk2 is not in
// Debian and autocannon records latency in whole milliseconds, too coarse for a 0.5 ms budget; this
// client times each request from the moment it is sent to the last byte of its body, in microseconds.
// Usage: node bench/rate-client.ts URL RATE DURATION_S TOKEN_FILE   -> one JSON line on stdout
import { readFileSync } from 'node:fs'
import { Pool } from 'undici'

const [url = '', rateText = '1000', durationText = '5', tokenFile = ''] = process.argv.slice(2)
const rate = Number(rateText)
const durationMs = Number(durationText) * 1000
const tokens = readFileSync(tokenFile, 'utf8').split('\n').filter(Boolean)
const target = new URL(url)
const pool = new Pool(target.origin, { connections: 16 })

const latencies: number[] = []
let errors = 0
let non2xx = 0
let sent = 0
let maxBehindMs = 0

function send(index: number): Promise<void> {
  const started = performance.now()
  return pool
    .request({
      path: target.pathname,
      method: 'GET',
      headers: { 'x-goog-iap-jwt-assertion': tokens[index % tokens.length] as string },
    })
    .then(async (response) => {
      await response.body.dump()
      if (response.statusCode < 200 || response.statusCode > 299) non2xx += 1
      latencies.push(performance.now() - started)
    })
    .catch(() => {
      errors += 1
    })
}

// Warm the connections up first so the first samples do not carry TCP connects.
await Promise.all(Array.from({ length: 4 }, (_, i) => send(i)))
await new Promise((resolve) => setTimeout(resolve, 200))
latencies.length = 0

const begin = performance.now()
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now()
    const due = Math.min(Math.floor(((now - begin) * rate) / 1000), Math.floor((durationMs * rate) / 1000))
    if (due > sent) maxBehindMs = Math.max(maxBehindMs, now - (begin + (sent * 1000) / rate))
    while (sent < due) void send(sent++)
    if (now - begin >= durationMs) resolve()
    else setTimeout(tick, 0)
  }
  tick()
})
// Let the last requests finish.
await new Promise((resolve) => setTimeout(resolve, 500))
await pool.close()

latencies.sort((a, b) => a - b)
const at = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN
process.stdout.write(
  `${JSON.stringify({
    sent,
    completed: latencies.length,
    errors,
    non2xx,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    maxBehindMs,
  })}\n`,
)

// Measurements taken from the harness itself while no load runs: SSE time to first event, WebSocket
// echo round trip, and cold start.
import { request } from 'node:http'
import WebSocket from 'ws'
import { percentile } from './stats.ts'

export interface Distribution {
  readonly samples: number
  readonly p50Ms: number
  readonly p99Ms: number
}

function distribution(values: number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b)
  return { samples: sorted.length, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) }
}

/** Request sent -> first `data:` line read, over a fresh connection each time (as a browser's EventSource). */
export async function sseFirstEvent(url: string, token: string, samples: number): Promise<Distribution> {
  const times: number[] = []
  for (let i = 0; i < samples; i++) times.push(await oneSse(`${url}/sse`, token))
  return distribution(times)
}

function oneSse(url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    let firstEvent: number | undefined
    const req = request(
      url,
      { agent: false, headers: { accept: 'text/event-stream', 'x-goog-iap-jwt-assertion': token } },
      (response) => {
        if (response.statusCode !== 200) reject(new Error(`SSE ${url}: status ${response.statusCode}`))
        response.setEncoding('utf8')
        let text = ''
        response.on('data', (chunk: string) => {
          text += chunk
          if (firstEvent === undefined && text.includes('data: first\n\n')) firstEvent = performance.now()
        })
        response.on('end', () =>
          firstEvent === undefined
            ? reject(new Error(`SSE ${url}: no event`))
            : resolve(firstEvent - started),
        )
      },
    )
    req.once('error', reject)
    req.end()
  })
}

/** One connection, `messages` sequential 64-byte messages, each timed from send to echo. */
export async function websocketEcho(url: string, token: string, messages: number): Promise<Distribution> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, {
    headers: { 'x-goog-iap-jwt-assertion': token },
  })
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
    socket.once('unexpected-response', (_req, response) =>
      reject(new Error(`WebSocket ${url}: status ${response.statusCode}`)),
    )
  })
  const payload = Buffer.alloc(64, 'x')
  const times: number[] = []
  for (let i = 0; i < messages; i++) {
    const started = performance.now()
    await new Promise<void>((resolve) => {
      socket.once('message', () => resolve())
      socket.send(payload)
    })
    times.push(performance.now() - started)
  }
  socket.close()
  return distribution(times.slice(Math.min(10, messages - 1)))
}

/** A response to a GET, for checks that a target really proxies (status and body). */
export function get(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { 'x-goog-iap-jwt-assertion': token } }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    req.once('error', reject)
    req.end()
  })
}

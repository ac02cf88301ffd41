// The measurements, one function each. Rounds interleave the targets (the order rotates every round)
// so that noise from the shared machine falls on all of them alike; each figure is a median of rounds.
import { spawn } from 'node:child_process'
import { openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../dev/free-port.ts'
import type { KeyServer, TokenFiles } from './assertions.ts'
import { type Distribution, sseFirstEvent, websocketEcho } from './probes.ts'
import { cpuSeconds, rssMb, run, type Started, waitForOk } from './processes.ts'
import { median } from './stats.ts'
import { GATEWAY_MAIN, type GatewayOptions, gatewayEnv } from './targets.ts'
import { type LoadResult, load } from './wrk.ts'

export interface Context {
  readonly dir: string
  readonly script: string
  readonly tokens: TokenFiles
  readonly keys: KeyServer
  readonly rounds: number
  readonly durationS: number
  readonly connections: number
  /** Seconds of load per target before the rounds (JIT, pools); 2 unless told. */
  readonly warmUpS?: number
  readonly log: (line: string) => void
}

/** A target under load: where to send, and how many distinct assertions to rotate through. */
export interface LoadTarget {
  readonly name: string
  readonly url: string
  readonly distinctTokens: number
  readonly pid?: number | undefined
}

export interface Summary {
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** CPU time of the target's processes per request served, in microseconds. */
  readonly cpuUsPerRequest: number
  readonly rounds: readonly (LoadResult & { cpuUsPerRequest: number })[]
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length
  return [...items.slice(shift), ...items.slice(0, shift)]
}

function check(target: LoadTarget, result: { non2xx: number; errors: number }): void {
  // A refusal is fast: a round with any is not a measurement of proxying.
  if (result.non2xx > 0) throw new Error(`${target.name}: ${result.non2xx} responses were not 2xx`)
  if (result.errors > 0) throw new Error(`${target.name}: ${result.errors} socket errors`)
}

export async function throughput(
  ctx: Context,
  targets: readonly LoadTarget[],
): Promise<Map<string, Summary>> {
  const loadOnce = (target: LoadTarget, durationS: number, connections = ctx.connections) =>
    load({
      url: `${target.url}/`,
      connections,
      durationS,
      script: ctx.script,
      tokenFile: ctx.tokens.get(target.distinctTokens),
    })
  const warmUpS = ctx.warmUpS ?? 2
  if (warmUpS > 0) for (const target of targets) check(target, await loadOnce(target, warmUpS))
  const results = new Map<string, Summary['rounds'][number][]>(targets.map((target) => [target.name, []]))
  for (let round = 0; round < ctx.rounds; round++) {
    for (const target of rotate(targets, round)) {
      const cpuBefore = target.pid === undefined ? Number.NaN : await cpuSeconds(target.pid)
      const result = await loadOnce(target, ctx.durationS)
      const cpu = target.pid === undefined ? Number.NaN : (await cpuSeconds(target.pid)) - cpuBefore
      check(target, result)
      const cpuUsPerRequest = (cpu * 1e6) / result.requests
      results.get(target.name)?.push({ ...result, cpuUsPerRequest })
      ctx.log(
        `  round ${round + 1} ${target.name}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${cpuUsPerRequest.toFixed(0)} CPU us/request`,
      )
    }
  }
  return new Map(
    [...results].map(([name, rounds]) => [
      name,
      {
        requestsPerSecond: median(rounds.map((r) => r.requestsPerSecond)),
        p50Ms: median(rounds.map((r) => r.p50Ms)),
        p99Ms: median(rounds.map((r) => r.p99Ms)),
        cpuUsPerRequest: median(rounds.map((r) => r.cpuUsPerRequest)),
        rounds,
      },
    ]),
  )
}

export interface RateResult {
  readonly p50Ms: number
  readonly p99Ms: number
  readonly rounds: readonly { p50Ms: number; p99Ms: number; completed: number; maxBehindMs: number }[]
}

const RATE_CLIENT = new URL('./rate-client.ts', import.meta.url).pathname

export async function fixedRate(
  ctx: Context,
  targets: readonly LoadTarget[],
  rate: number,
  durationS: number,
): Promise<Map<string, RateResult>> {
  const results = new Map<string, RateResult['rounds'][number][]>(targets.map((t) => [t.name, []]))
  for (let round = 0; round < ctx.rounds; round++) {
    for (const target of rotate(targets, round)) {
      const output = await run(process.execPath, [
        RATE_CLIENT,
        `${target.url}/`,
        String(rate),
        String(durationS),
        ctx.tokens.get(target.distinctTokens),
      ])
      const result = JSON.parse(output) as RateResult['rounds'][number] & { errors: number; non2xx: number }
      check(target, result)
      results.get(target.name)?.push(result)
      ctx.log(
        `  round ${round + 1} ${target.name}: p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms (${result.completed} requests, client behind by at most ${result.maxBehindMs.toFixed(1)} ms)`,
      )
    }
  }
  return new Map(
    [...results].map(([name, rounds]) => [
      name,
      { p50Ms: median(rounds.map((r) => r.p50Ms)), p99Ms: median(rounds.map((r) => r.p99Ms)), rounds },
    ]),
  )
}

export async function streaming(
  ctx: Context,
  targets: readonly LoadTarget[],
  samples: number,
): Promise<{ sse: Map<string, Distribution>; websocket: Map<string, Distribution> }> {
  const token = firstToken(ctx)
  const sse = new Map<string, Distribution[]>(targets.map((t) => [t.name, []]))
  const websocket = new Map<string, Distribution[]>(targets.map((t) => [t.name, []]))
  for (let round = 0; round < ctx.rounds; round++) {
    for (const target of rotate(targets, round)) {
      sse.get(target.name)?.push(await sseFirstEvent(target.url, token, samples))
      websocket.get(target.name)?.push(await websocketEcho(target.url, token, samples * 5))
    }
  }
  const merge = (rounds: Distribution[]): Distribution => ({
    samples: rounds.reduce((sum, r) => sum + r.samples, 0),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
  })
  return {
    sse: new Map([...sse].map(([name, rounds]) => [name, merge(rounds)])),
    websocket: new Map([...websocket].map(([name, rounds]) => [name, merge(rounds)])),
  }
}

function firstToken(ctx: Context): string {
  return readFileSync(ctx.tokens.get(1), 'utf8').trim()
}

/** Process start to the first 200 on /_gateway/readyz (keys fetched, upstream reachable), polled every 2 ms. */
export async function coldStart(
  ctx: Context,
  options: GatewayOptions,
  times: number,
): Promise<{ gatewayMs: number[]; bareNodeMs: number[] }> {
  const gatewayMs: number[] = []
  const bareNodeMs: number[] = []
  for (let i = 0; i < times; i++) {
    const port = await freePort()
    const out = openSync(join(ctx.dir, 'cold-start.log'), 'a')
    const started = performance.now()
    const child = spawn(process.execPath, [GATEWAY_MAIN], {
      env: { PATH: process.env.PATH ?? '', ...gatewayEnv(options, port) },
      stdio: ['ignore', out, out],
    })
    try {
      await waitForOk(
        `http://127.0.0.1:${port}/_gateway/readyz`,
        10_000,
        () => child.exitCode !== null,
        () => 'gateway did not become ready for the cold-start measurement',
        2,
      )
      gatewayMs.push(performance.now() - started)
    } finally {
      child.kill('SIGKILL')
    }
    // Node itself, for scale: the part of the cold start no gateway code can remove.
    const nodeStarted = performance.now()
    await run(process.execPath, ['-e', ''])
    bareNodeMs.push(performance.now() - nodeStarted)
  }
  return { gatewayMs, bareNodeMs }
}

export interface MemoryAtLoad {
  readonly idleMb: number
  readonly maxMb: number
  /** The anonymous part of the RSS at its maximum (see rssMb). */
  readonly maxAnonMb: number
  readonly requestsPerSecond: number
}

/** RSS sampled every 200 ms while `connections` keep-alive connections load the target. */
export async function rssUnderLoad(
  ctx: Context,
  target: LoadTarget & { pid: number },
  connections: number,
  durationS: number,
): Promise<MemoryAtLoad> {
  const idleMb = (await rssMb(target.pid)).rss
  let maxMb = idleMb
  let maxAnonMb = 0
  const sampler = setInterval(() => {
    rssMb(target.pid).then(
      ({ rss, anon }) => {
        maxMb = Math.max(maxMb, rss)
        maxAnonMb = Math.max(maxAnonMb, anon)
      },
      () => {},
    )
  }, 200)
  try {
    const result = await load({
      url: `${target.url}/`,
      connections,
      durationS,
      script: ctx.script,
      tokenFile: ctx.tokens.get(target.distinctTokens),
    })
    check(target, result)
    ctx.log(
      `  ${target.name}: idle ${idleMb.toFixed(0)} MB, max ${maxMb.toFixed(0)} MB (anonymous ${maxAnonMb.toFixed(0)} MB)`,
    )
    return { idleMb, maxMb, maxAnonMb, requestsPerSecond: result.requestsPerSecond }
  } finally {
    clearInterval(sampler)
  }
}

export interface RssPoint {
  readonly requests: number
  readonly rssMb: number
}

/** Load in short wrk runs until `total` requests have been served, with RSS read after each run. */
export async function rssOverRequests(
  ctx: Context,
  target: LoadTarget & { pid: number },
  total: number,
): Promise<RssPoint[]> {
  const points: RssPoint[] = [{ requests: 0, rssMb: (await rssMb(target.pid)).rss }]
  let served = 0
  while (served < total) {
    const result = await load({
      url: `${target.url}/`,
      connections: ctx.connections,
      durationS: 3,
      script: ctx.script,
      tokenFile: ctx.tokens.get(target.distinctTokens),
    })
    check(target, result)
    served += result.requests
    points.push({ requests: served, rssMb: (await rssMb(target.pid)).rss })
    ctx.log(`  ${served} requests: RSS ${points.at(-1)?.rssMb.toFixed(1)} MB`)
  }
  return points
}

export type { Started }

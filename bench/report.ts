// Results as Markdown (the table the README quotes), JSON (every round) and an SVG chart of the ratios.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { chart } from './chart.ts'
import type { Distribution } from './probes.ts'
import type { MemoryAtLoad, RateResult, RssPoint, Summary } from './sections.ts'
import { median, ratio } from './stats.ts'

export interface Machine {
  readonly date: string
  readonly cpu: string
  readonly cores: number
  readonly memoryGb: number
  readonly kernel: string
  readonly node: string
  readonly nginx: string
  readonly wrk: string
  readonly loadAverage: readonly number[]
}

export function machine(): Machine {
  // nginx -v and wrk -v print their version on stderr (wrk then exits 1)
  const version = (command: string, args: string[]) => {
    const result = spawnSync(command, args, { encoding: 'utf8' })
    return `${result.stdout ?? ''}${result.stderr ?? ''}`
  }
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    node: process.version,
    nginx: /nginx\/[\d.]+/.exec(version('nginx', ['-v']))?.[0] ?? 'unknown',
    wrk: /wrk \S+/.exec(version('wrk', ['-v']))?.[0] ?? 'unknown',
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
  }
}

export interface Results {
  readonly options: Record<string, number | boolean>
  readonly iap: boolean
  readonly machine: Machine
  readonly machineAfter: Machine
  readonly throughput: Map<string, Summary> | undefined
  readonly fixedRate: Map<string, RateResult> | undefined
  readonly streaming: { sse: Map<string, Distribution>; websocket: Map<string, Distribution> } | undefined
  readonly coldStart: { gatewayMs: number[]; bareNodeMs: number[] } | undefined
  readonly memory: { at200: Map<string, MemoryAtLoad>; series: RssPoint[] } | undefined
  readonly scaling: Map<string, Summary> | undefined
}

const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')
const x = (n: number) => `${f(n)}x`
const NONE = Number.NaN

/** Prints the tables; writes results.md, results.json and chart.svg into `dir` when one is given. */
export function writeResults(dir: string | undefined, results: Results): string[] {
  const markdown = render(results)
  process.stdout.write(`\n${markdown}`)
  if (dir === undefined) return []
  mkdirSync(dir, { recursive: true })
  const files = [join(dir, 'results.md'), join(dir, 'results.json'), join(dir, 'chart.svg')]
  writeFileSync(files[0] as string, markdown)
  writeFileSync(
    files[1] as string,
    `${JSON.stringify(results, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 2)}\n`,
  )
  if (results.throughput !== undefined && results.fixedRate !== undefined) {
    writeFileSync(files[2] as string, chart(results.throughput, results.fixedRate, results))
  }
  return files
}

/**
 * RSS at the half-way point, at the end, and the most seen in the second half. The first half is
 * warm-up: V8 grows its heap to a steady size under load, which takes some 100 000 requests here.
 */
export function rssGrowth(series: readonly RssPoint[]): { warmMb: number; endMb: number; maxMb: number } {
  const total = series.at(-1)?.requests ?? 0
  const warm = series.find((point) => point.requests >= total / 2) ?? series[0]
  const after = series.filter((point) => point.requests >= (warm?.requests ?? 0))
  return {
    warmMb: warm?.rssMb ?? NONE,
    endMb: series.at(-1)?.rssMb ?? NONE,
    maxMb: Math.max(...after.map((point) => point.rssMb)),
  }
}

function render(r: Results): string {
  const m = r.machine
  const o = r.options
  const lines: string[] = [
    '# Benchmark results',
    '',
    `${m.date.slice(0, 16).replace('T', ' ')} UTC, \`npm run bench\`${o.quick ? ' --quick (a smoke run, not a result)' : ''}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, ${m.kernel}; Node ${m.node}, ${m.nginx}, ${m.wrk}.`,
    `Load average (1/5/15 min) before ${m.loadAverage.join(' / ')}, after ${r.machineAfter.loadAverage.join(' / ')}. Load generator, proxies and upstream share these ${m.cores} cores; ratios from interleaved rounds are what count, not absolute numbers.`,
    r.iap
      ? 'The gateway runs with every check on: the ALLOWED_CIDRS allowlist and IAP verification (ES256 assertions signed by a test key, keys from a loopback key server).'
      : '**IAP verification was not available in this build: the gateway ran with IAP_DISABLED=true (allowlist only).**',
    'Access log off (ACCESS_LOG=false) unless the row says otherwise.',
  ]
  const goals: string[] = []
  const met = (ok: boolean) => (ok ? 'yes' : '**no**')
  if (r.throughput !== undefined) lines.push(...throughputTable(r.throughput, o, goals, met))
  if (r.fixedRate !== undefined) lines.push(...rateTable(r.fixedRate, o, goals, met))
  if (r.streaming !== undefined) lines.push(...streamingTable(r.streaming, goals, met))
  if (r.coldStart !== undefined || r.memory !== undefined) {
    lines.push('', '## Start and memory', '', '| measurement | result |', '|---|---|')
  }
  if (r.coldStart !== undefined) {
    const times = r.coldStart.gatewayMs
    const cold = median(times)
    lines.push(
      `| cold start: process start to first 200 on /_gateway/readyz (median of ${times.length}) | ${f(cold, 0)} ms (min ${f(Math.min(...times), 0)}, max ${f(Math.max(...times), 0)}); \`node -e ''\` alone: ${f(median(r.coldStart.bareNodeMs), 0)} ms |`,
    )
    goals.push(`| cold start | <= 300 ms | ${f(cold, 0)} ms | ${met(cold <= 300)} |`)
  }
  if (r.memory !== undefined) {
    const { at200, series } = r.memory
    const growth = rssGrowth(series)
    const served = series.at(-1)?.requests ?? 0
    const flat = growth.endMb - growth.warmMb
    for (const [name, m200] of at200) {
      lines.push(
        `| ${name}: RSS idle, then max at 200 connections | ${f(m200.idleMb, 0)} MB, ${f(m200.maxMb, 0)} MB (anonymous ${f(m200.maxAnonMb, 0)} MB; ${f(m200.requestsPerSecond, 0)} req/s) |`,
      )
    }
    const gateway200 = at200.get('gateway') ?? { maxMb: NONE, maxAnonMb: NONE }
    lines.push(
      `| RSS over ${served} requests (fresh gateway, 1000 users' assertions) | half-way ${f(growth.warmMb, 0)} MB, end ${f(growth.endMb, 0)} MB, max ${f(growth.maxMb, 0)} MB |`,
      '',
      `RSS series (requests: MB): ${series.map((p) => `${p.requests}: ${f(p.rssMb, 0)}`).join(', ')}`,
    )
    goals.push(
      `| RSS at 200 connections | <= 100 MB | ${f(gateway200.maxMb, 0)} MB (anonymous ${f(gateway200.maxAnonMb, 0)} MB; bare proxy ${f(at200.get('bare undici proxy')?.maxMb ?? NONE, 0)} MB) | ${met(gateway200.maxMb <= 100)} |`,
      `| RSS over ${served} requests | flat after warm-up (second half) | ${flat >= 0 ? '+' : ''}${f(flat, 1)} MB | ${met(flat <= 10)} |`,
    )
  }
  if (r.scaling !== undefined) {
    const one = r.scaling.get('gateway')?.requestsPerSecond ?? NONE
    const two = r.scaling.get('gateway, 2 processes')?.requestsPerSecond ?? NONE
    lines.push(
      '',
      '## CPU scaling (same load, interleaved rounds)',
      '',
      '| gateway | req/s | p50 ms | p99 ms | CPU us/req |',
      '|---|---:|---:|---:|---:|',
      ...[...r.scaling].map(
        ([name, s]) =>
          `| ${name} | ${f(s.requestsPerSecond, 0)} | ${f(s.p50Ms)} | ${f(s.p99Ms)} | ${f(s.cpuUsPerRequest, 0)} |`,
      ),
      '',
      `Two processes / one: ${x(ratio(two, one))}, with wrk and the upstream on the same ${m.cores} cores.`,
    )
  }
  if (goals.length > 0) {
    lines.push('', '## Targets', '', '| target | goal | measured | met |', '|---|---|---|---|', ...goals)
  }
  lines.push('')
  return lines.join('\n')
}

type Met = (ok: boolean) => string

function throughputTable(
  throughput: Map<string, Summary>,
  o: Results['options'],
  goals: string[],
  met: Met,
): string[] {
  const rps = (name: string) => throughput.get(name)?.requestsPerSecond ?? NONE
  const bare = rps('bare undici proxy')
  const nginx = rps('nginx')
  const direct = rps('direct')
  const bareCpu = throughput.get('bare undici proxy')?.cpuUsPerRequest ?? NONE
  const lines = [
    '',
    `## Throughput: wrk, 1 thread, ${o.connections} connections, ${o.durationS} s rounds, median of ${o.rounds} interleaved rounds`,
    '',
    '| target | req/s | p50 ms | p99 ms | / bare proxy | / nginx | / direct | CPU us/req | CPU / bare proxy |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const [name, s] of throughput) {
    lines.push(
      `| ${name} | ${f(s.requestsPerSecond, 0)} | ${f(s.p50Ms)} | ${f(s.p99Ms)} | ${x(ratio(s.requestsPerSecond, bare))} | ${x(ratio(s.requestsPerSecond, nginx))} | ${x(ratio(s.requestsPerSecond, direct))} | ${f(s.cpuUsPerRequest, 0)} | ${x(ratio(s.cpuUsPerRequest, bareCpu))} |`,
    )
  }
  lines.push(
    '',
    "CPU us/req: user + system CPU time of the target's own processes (nginx: master and worker; the upstream not included) per request. On a shared machine it is steadier than req/s, which depends on how much CPU the target was given.",
  )
  const gateway = rps('gateway')
  const uncached = rps('gateway, uncached')
  goals.push(
    `| throughput, all checks on | >= 0.8x bare proxy | ${x(ratio(gateway, bare))} (uncached ${x(ratio(uncached, bare))}; nginx ratio ${x(ratio(gateway, nginx))}) | ${met(ratio(gateway, bare) >= 0.8)} |`,
  )
  return lines
}

function rateTable(
  fixedRate: Map<string, RateResult>,
  o: Results['options'],
  goals: string[],
  met: Met,
): string[] {
  const direct = fixedRate.get('direct')
  const lines = [
    '',
    `## Latency at a fixed ${o.rate} req/s (open-loop client, ${o.rateDurationS} s rounds, median of ${o.rounds})`,
    '',
    '| target | p50 ms | p99 ms | added p50 ms | added p99 ms |',
    '|---|---:|---:|---:|---:|',
  ]
  for (const [name, s] of fixedRate) {
    lines.push(
      `| ${name} | ${f(s.p50Ms, 3)} | ${f(s.p99Ms, 3)} | ${f(s.p50Ms - (direct?.p50Ms ?? NONE), 3)} | ${f(s.p99Ms - (direct?.p99Ms ?? NONE), 3)} |`,
    )
  }
  const gateway = fixedRate.get('gateway')
  const addedP50 = (gateway?.p50Ms ?? NONE) - (direct?.p50Ms ?? NONE)
  const addedP99 = (gateway?.p99Ms ?? NONE) - (direct?.p99Ms ?? NONE)
  goals.push(
    `| added latency at ${o.rate} req/s | p50 <= 0.5 ms, p99 <= 2 ms | p50 ${f(addedP50, 3)} ms, p99 ${f(addedP99, 3)} ms | ${met(addedP50 <= 0.5 && addedP99 <= 2)} |`,
  )
  return lines
}

function streamingTable(streaming: NonNullable<Results['streaming']>, goals: string[], met: Met): string[] {
  const lines = [
    '',
    '## Streaming (one client, no other load)',
    '',
    '| measurement | direct p50 / p99 ms | gateway p50 / p99 ms | added p50 / p99 ms |',
    '|---|---:|---:|---:|',
  ]
  for (const [label, map] of [
    ['SSE: request to first event (new connection each)', streaming.sse],
    ['WebSocket: echo round trip (64 bytes)', streaming.websocket],
  ] as const) {
    const d = map.get('direct')
    const g = map.get('gateway')
    if (d === undefined || g === undefined) continue
    lines.push(
      `| ${label} | ${f(d.p50Ms, 3)} / ${f(d.p99Ms, 3)} | ${f(g.p50Ms, 3)} / ${f(g.p99Ms, 3)} | ${f(g.p50Ms - d.p50Ms, 3)} / ${f(g.p99Ms - d.p99Ms, 3)} |`,
    )
  }
  const added = (streaming.sse.get('gateway')?.p50Ms ?? NONE) - (streaming.sse.get('direct')?.p50Ms ?? NONE)
  goals.push(`| SSE first event | within 5 ms of direct | +${f(added, 3)} ms | ${met(added <= 5)} |`)
  return lines
}

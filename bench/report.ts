// Results as Markdown (the table the README quotes), JSON (every round) and an SVG chart of the ratios.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { chart } from './chart.ts'
import type { Distribution } from './probes.ts'
import type { RateResult, RssPoint, Summary } from './sections.ts'
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
  readonly throughput: Map<string, Summary>
  readonly fixedRate: Map<string, RateResult>
  readonly streaming: { sse: Map<string, Distribution>; websocket: Map<string, Distribution> }
  readonly coldStart: { gatewayMs: number[]; bareNodeMs: number[] }
  readonly rss200: { idleMb: number; maxMb: number; requestsPerSecond: number }
  readonly rssSeries: RssPoint[]
  readonly scaling: Map<string, Summary>
}

const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')
const x = (n: number) => `${f(n)}x`

export function writeResults(dir: string, results: Results): string[] {
  mkdirSync(dir, { recursive: true })
  const markdown = render(results)
  const files = [join(dir, 'results.md'), join(dir, 'results.json'), join(dir, 'chart.svg')]
  writeFileSync(files[0] as string, markdown)
  writeFileSync(
    files[1] as string,
    `${JSON.stringify(results, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 2)}\n`,
  )
  writeFileSync(files[2] as string, chart(results))
  process.stdout.write(`\n${markdown}`)
  return files
}

/** Growth of RSS after warm-up (the first tenth of the requests): last reading minus first reading. */
export function rssGrowth(series: readonly RssPoint[]): { warmMb: number; endMb: number; maxMb: number } {
  const total = series.at(-1)?.requests ?? 0
  const warm = series.find((point) => point.requests >= total / 10) ?? series[0]
  const after = series.filter((point) => point.requests >= (warm?.requests ?? 0))
  return {
    warmMb: warm?.rssMb ?? Number.NaN,
    endMb: series.at(-1)?.rssMb ?? Number.NaN,
    maxMb: Math.max(...after.map((point) => point.rssMb)),
  }
}

function render(r: Results): string {
  const t = (name: string) => r.throughput.get(name)
  const bare = t('bare undici proxy')?.requestsPerSecond ?? Number.NaN
  const nginx = t('nginx')?.requestsPerSecond ?? Number.NaN
  const direct = t('direct')?.requestsPerSecond ?? Number.NaN
  const m = r.machine
  const o = r.options
  const lines: string[] = [
    '# Benchmark results',
    '',
    `${m.date.slice(0, 16).replace('T', ' ')} UTC, \`npm run bench\`${o.quick ? ' --quick (a smoke run, not a result)' : ''}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, ${m.kernel}; Node ${m.node}, ${m.nginx}, ${m.wrk}.`,
    `Load average (1/5/15 min) before ${m.loadAverage.join(' / ')}, after ${r.machineAfter.loadAverage.join(' / ')}: the machine was shared, so ratios from interleaved rounds are what count, not absolute numbers.`,
    `Everything (load generator, proxy, upstream) runs on these ${m.cores} cores.`,
    r.iap
      ? 'The gateway runs with every check on: ALLOWED_CIDRS allowlist and IAP verification (ES256 assertions signed by a test key, keys from a loopback key server).'
      : '**IAP verification was not available in this build: the gateway ran with IAP_DISABLED=true (allowlist only).**',
    'Access log off (ACCESS_LOG=false) unless the row says otherwise.',
    '',
    `## Throughput: wrk, 1 thread, ${o.connections} connections, ${o.durationS} s rounds, median of ${o.rounds} interleaved rounds`,
    '',
    '| target | req/s | p50 ms | p99 ms | / bare proxy | / nginx | / direct |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const [name, s] of r.throughput) {
    lines.push(
      `| ${name} | ${f(s.requestsPerSecond, 0)} | ${f(s.p50Ms)} | ${f(s.p99Ms)} | ${x(ratio(s.requestsPerSecond, bare))} | ${x(ratio(s.requestsPerSecond, nginx))} | ${x(ratio(s.requestsPerSecond, direct))} |`,
    )
  }
  const rateDirect = r.fixedRate.get('direct')
  lines.push(
    '',
    `## Latency at a fixed ${o.rate} req/s (open-loop client, ${o.rateDurationS} s rounds, median of ${o.rounds})`,
    '',
    '| target | p50 ms | p99 ms | added p50 ms | added p99 ms |',
    '|---|---:|---:|---:|---:|',
  )
  for (const [name, s] of r.fixedRate) {
    lines.push(
      `| ${name} | ${f(s.p50Ms, 3)} | ${f(s.p99Ms, 3)} | ${f(s.p50Ms - (rateDirect?.p50Ms ?? Number.NaN), 3)} | ${f(s.p99Ms - (rateDirect?.p99Ms ?? Number.NaN), 3)} |`,
    )
  }
  lines.push(
    '',
    '## Streaming (one client, no other load)',
    '',
    '| measurement | direct p50 / p99 ms | gateway p50 / p99 ms | added p50 / p99 ms |',
    '|---|---:|---:|---:|',
  )
  for (const [label, map] of [
    ['SSE: request to first event (new connection each)', r.streaming.sse],
    ['WebSocket: echo round trip (64 bytes)', r.streaming.websocket],
  ] as const) {
    const d = map.get('direct')
    const g = map.get('gateway')
    if (d === undefined || g === undefined) continue
    lines.push(
      `| ${label} | ${f(d.p50Ms, 3)} / ${f(d.p99Ms, 3)} | ${f(g.p50Ms, 3)} / ${f(g.p99Ms, 3)} | ${f(g.p50Ms - d.p50Ms, 3)} / ${f(g.p99Ms - d.p99Ms, 3)} |`,
    )
  }
  const growth = rssGrowth(r.rssSeries)
  const served = r.rssSeries.at(-1)?.requests ?? 0
  const cold = median(r.coldStart.gatewayMs)
  lines.push(
    '',
    '## Start and memory',
    '',
    '| measurement | result |',
    '|---|---|',
    `| cold start: process start to first 200 on /_gateway/readyz (median of ${r.coldStart.gatewayMs.length}) | ${f(cold, 0)} ms (min ${f(Math.min(...r.coldStart.gatewayMs), 0)}, max ${f(Math.max(...r.coldStart.gatewayMs), 0)}); \`node -e ''\` alone: ${f(median(r.coldStart.bareNodeMs), 0)} ms |`,
    `| RSS idle, then max at 200 connections | ${f(r.rss200.idleMb, 0)} MB, ${f(r.rss200.maxMb, 0)} MB (${f(r.rss200.requestsPerSecond, 0)} req/s) |`,
    `| RSS over ${served} requests (fresh gateway, 1000 users' assertions) | after warm-up ${f(growth.warmMb, 0)} MB, end ${f(growth.endMb, 0)} MB, max ${f(growth.maxMb, 0)} MB |`,
    '',
    `RSS series (requests: MB): ${r.rssSeries.map((p) => `${p.requests}: ${f(p.rssMb, 0)}`).join(', ')}`,
  )
  const one = r.scaling.get('gateway')?.requestsPerSecond ?? Number.NaN
  const two = r.scaling.get('gateway, 2 processes')?.requestsPerSecond ?? Number.NaN
  lines.push(
    '',
    '## CPU scaling (same load, interleaved rounds)',
    '',
    '| gateway | req/s | p50 ms | p99 ms |',
    '|---|---:|---:|---:|',
    ...[...r.scaling].map(
      ([name, s]) => `| ${name} | ${f(s.requestsPerSecond, 0)} | ${f(s.p50Ms)} | ${f(s.p99Ms)} |`,
    ),
    '',
    `Two processes / one: ${x(ratio(two, one))} on ${m.cores} cores shared with wrk and the upstream.`,
  )
  const gw = t('gateway')?.requestsPerSecond ?? Number.NaN
  const rg = r.fixedRate.get('gateway')
  const sse = r.streaming.sse
  const sseAdded = (sse.get('gateway')?.p50Ms ?? Number.NaN) - (sse.get('direct')?.p50Ms ?? Number.NaN)
  const addedP50 = (rg?.p50Ms ?? Number.NaN) - (rateDirect?.p50Ms ?? Number.NaN)
  const addedP99 = (rg?.p99Ms ?? Number.NaN) - (rateDirect?.p99Ms ?? Number.NaN)
  const flat = growth.endMb - growth.warmMb
  const met = (ok: boolean) => (ok ? 'yes' : '**no**')
  lines.push(
    '',
    '## Targets',
    '',
    '| target | goal | measured | met |',
    '|---|---|---|---|',
    `| throughput, all checks on | >= 0.8x bare proxy | ${x(ratio(gw, bare))} (nginx ${x(ratio(gw, nginx))}) | ${met(ratio(gw, bare) >= 0.8)} |`,
    `| added latency at ${o.rate} req/s | p50 <= 0.5 ms, p99 <= 2 ms | p50 ${f(addedP50, 3)} ms, p99 ${f(addedP99, 3)} ms | ${met(addedP50 <= 0.5 && addedP99 <= 2)} |`,
    `| SSE first event | within 5 ms of direct | +${f(sseAdded, 3)} ms | ${met(sseAdded <= 5)} |`,
    `| cold start | <= 300 ms | ${f(cold, 0)} ms | ${met(cold <= 300)} |`,
    `| RSS at 200 connections | <= 100 MB | ${f(r.rss200.maxMb, 0)} MB | ${met(r.rss200.maxMb <= 100)} |`,
    `| RSS over ${served} requests | flat after warm-up | ${flat >= 0 ? '+' : ''}${f(flat, 1)} MB | ${met(flat <= 10)} |`,
    '',
  )
  return lines.join('\n')
}

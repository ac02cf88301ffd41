// npm run bench: the gateway against the direct path, a bare undici proxy and nginx, on this machine.
// See docs/performance.md for what is measured and why. `--help` lists the options.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startKeyServer, TokenFiles } from './assertions.ts'
import { startNginx } from './nginx.ts'
import { get } from './probes.ts'
import { run, type Started } from './processes.ts'
import { machine, writeResults } from './report.ts'
import * as measure from './sections.ts'
import { type GatewayOptions, ROOT, startBareProxy, startGateway, startUpstream } from './targets.ts'
import { ensureTools } from './tools.ts'
import { writeWrkScript } from './wrk.ts'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    rate: { type: 'string', default: '1000' },
    'rate-duration': { type: 'string', default: '5' },
    requests: { type: 'string', default: '200000' },
    'distinct-tokens': { type: 'string', default: '20000' },
    quick: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    only: { type: 'string' },
    baseline: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  process.stdout.write(`npm run bench -- [options]
  --rounds N            interleaved rounds per measurement (3); medians are reported
  --duration S          seconds per throughput round (5)
  --connections N       wrk connections for throughput (50)
  --rate R              requests per second for the added-latency measurement (1000)
  --rate-duration S     seconds per fixed-rate round (5)
  --requests N          requests for the RSS-over-time run (200000; the full run is 1000000)
  --distinct-tokens N   distinct assertions for "uncached" (20000, more than the 10000-entry cache)
  --quick               1 round of 2 s, 20000 requests: a smoke run of the harness, not a result
  --no-build            benchmark the existing dist/ instead of running npm run build first
  --only LIST           some of: throughput,latency,streaming,start,memory,scaling (all by default);
                        a partial run prints its tables and writes files only with --out
  --baseline MAIN_JS    also measure another build (its dist/proxy/main.js, e.g. from a git worktree
                        of the commit before a change) as "gateway, baseline" in the same
                        interleaved throughput and latency rounds: on a noisy machine, the only fair
                        before/after comparison
  --out DIR             where results.md, results.json and chart.svg go (bench/results)
`)
  process.exit(0)
}
const integer = (name: keyof typeof values): number => {
  const value = Number(values[name])
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`bench: --${name} (${values[name]}): not a positive integer\n`)
    process.exit(2)
  }
  return value
}
const options = {
  rounds: values.quick ? 1 : integer('rounds'),
  durationS: values.quick ? 2 : integer('duration'),
  connections: integer('connections'),
  rate: integer('rate'),
  rateDurationS: values.quick ? 2 : integer('rate-duration'),
  requests: values.quick ? 20_000 : integer('requests'),
  distinctTokens: integer('distinct-tokens'),
}
const log = (line: string) => process.stdout.write(`${line}\n`)
const SECTIONS = ['throughput', 'latency', 'streaming', 'start', 'memory', 'scaling'] as const
const only = values.only?.split(',').map((name) => name.trim())
const unknown = only?.filter((name) => !(SECTIONS as readonly string[]).includes(name)) ?? []
if (unknown.length > 0) {
  process.stderr.write(`bench: --only (${unknown.join(',')}): not one of ${SECTIONS.join(', ')}\n`)
  process.exit(2)
}
const wanted = (section: (typeof SECTIONS)[number]) => only === undefined || only.includes(section)
const baselineMain = values.baseline === undefined ? undefined : resolve(values.baseline)
if (baselineMain !== undefined && !existsSync(baselineMain)) {
  process.stderr.write(
    `bench: --baseline (${values.baseline}): no such file; give a built dist/proxy/main.js\n`,
  )
  process.exit(2)
}
const out = values.out ?? (only === undefined ? join(ROOT, 'bench/results') : undefined)

await ensureTools(log)
if (!values['no-build']) {
  log('building dist/ (npm run build)')
  await run('npm', ['run', '--silent', 'build'], process.env as Record<string, string>)
}
const dir = mkdtempSync(join(tmpdir(), 'iap-gateway-bench-'))
const started: Started[] = []
const keep = <T extends Started>(target: T): T => {
  started.push(target)
  return target
}
try {
  const keys = await startKeyServer()
  const ctx: measure.Context = {
    dir,
    script: writeWrkScript(dir),
    tokens: new TokenFiles(keys.key, dir),
    keys,
    rounds: options.rounds,
    durationS: options.durationS,
    connections: options.connections,
    log,
  }
  const machineBefore = machine()

  const upstream = keep(await startUpstream(dir))
  let base: GatewayOptions = {
    name: 'gateway',
    upstreamUrl: upstream.url,
    keysUrl: keys.url,
    iap: true,
    accessLog: false,
    logDir: dir,
  }
  const bare = keep(await startBareProxy(dir, upstream.url))
  const nginx = keep(await startNginx(dir, upstream.port))
  // A build without the IAP stage refuses to start with IAP on: measure the rest and say so loudly.
  const gateway = keep(
    await startGateway(base).catch(() => {
      log('WARNING: this build cannot verify IAP assertions: the gateway runs with IAP_DISABLED=true')
      base = { ...base, iap: false }
      return startGateway(base)
    }),
  )
  const iap = base.iap
  const baseline =
    baselineMain === undefined
      ? undefined
      : keep(await startGateway({ ...base, name: 'gateway, baseline', main: baselineMain }))
  const gatewayNoCache = keep(await startGateway({ ...base, name: 'gateway, uncached' }))
  const gatewayLogged = keep(await startGateway({ ...base, name: 'gateway, access log', accessLog: true }))

  const one = (name: string, target: Started, distinctTokens = 1) => ({
    name,
    url: target.url,
    distinctTokens,
    pid: target.child.pid,
  })
  const direct = one('direct', upstream)
  const targets = [
    direct,
    one('bare undici proxy', bare),
    one('nginx', nginx),
    one('gateway', gateway),
    ...(baseline === undefined ? [] : [one('gateway, baseline', baseline)]),
    one('gateway, uncached', gatewayNoCache, options.distinctTokens),
    one('gateway, access log', gatewayLogged),
  ]
  for (const target of targets) {
    const answer = await get(`${target.url}/`, readToken(ctx))
    if (answer.status !== 200 || !answer.body.includes('hello from the upstream')) {
      throw new Error(`${target.name} does not proxy: ${answer.status} ${answer.body.slice(0, 200)}`)
    }
  }

  const section = async <T>(name: (typeof SECTIONS)[number], title: string, body: () => Promise<T>) => {
    if (!wanted(name)) return undefined
    log(title)
    return body()
  }
  const throughput = await section(
    'throughput',
    `throughput: wrk -t1 -c${options.connections}, ${options.durationS} s rounds, ${options.rounds} rounds`,
    () => measure.throughput(ctx, targets),
  )
  const fixedRate = await section('latency', `added latency at ${options.rate} req/s`, () =>
    measure.fixedRate(
      ctx,
      targets.filter((t) => t.name !== 'gateway, access log'),
      options.rate,
      options.rateDurationS,
    ),
  )
  const streaming = await section('streaming', 'SSE first event and WebSocket echo', () =>
    measure.streaming(ctx, [direct, one('gateway', gateway)], values.quick ? 20 : 100),
  )
  const coldStart = await section('start', 'cold start', () =>
    measure.coldStart(ctx, base, values.quick ? 2 : 7),
  )
  const memory = await section('memory', 'RSS at 200 connections, then over many requests', async () => {
    const at200 = new Map<string, measure.MemoryAtLoad>()
    for (const [name, target] of [
      ['direct', upstream],
      ['bare undici proxy', bare],
      ['gateway', gateway],
    ] as const) {
      const pid = target.child.pid as number
      at200.set(
        name,
        await measure.rssUnderLoad(ctx, { ...one(name, target), pid }, 200, values.quick ? 2 : 8),
      )
    }
    log(`RSS over ${options.requests} requests (a fresh gateway, 1000 users' assertions)`)
    const fresh = keep(await startGateway({ ...base, name: 'gateway, long run' }))
    const series = await measure.rssOverRequests(
      ctx,
      { ...one('gateway, long run', fresh, 1000), pid: fresh.child.pid as number },
      options.requests,
    )
    await fresh.stop()
    return { at200, series }
  })
  const scaling = await section(
    'scaling',
    'CPU scaling: one gateway process against two (node:cluster)',
    async () => {
      const clustered = keep(await startGateway({ ...base, name: 'gateway, 2 processes', workers: 2 }))
      return measure.throughput(ctx, [one('gateway', gateway), one('gateway, 2 processes', clustered)])
    },
  )

  const files = writeResults(out, {
    options: { ...options, quick: values.quick },
    iap,
    machine: machineBefore,
    machineAfter: machine(),
    throughput,
    fixedRate,
    streaming,
    coldStart,
    memory,
    scaling,
  })
  if (files.length > 0) log(`\nwritten: ${files.join(', ')}`)
  await keys.close()
} finally {
  for (const target of started.reverse()) await target.stop()
  rmSync(dir, { recursive: true, force: true })
}

function readToken(ctx: measure.Context): string {
  return readFileSync(ctx.tokens.get(1), 'utf8').trim()
}

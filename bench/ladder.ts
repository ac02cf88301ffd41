// The cost ladder: where the gateway's CPU per request goes between a bare undici proxy and the gateway
// with every check, measured with the same interleaved wrk rounds as npm run bench. Each rung adds one
// part (see ladder-server.ts); the gateway's rungs are built by its own factory, so a stage added to
// the pipeline is measured too.
// Usage: node bench/ladder.ts [--rounds N] [--duration S] [--warm-up S] [--out FILE.md]
//                             [--no-build] [--main PATH]   (PATH: the gateway to run, dist/proxy/main.js)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { freePort } from '../dev/free-port.ts'
import { startKeyServer, TokenFiles } from './assertions.ts'
import { run, type Started, start } from './processes.ts'
import { throughput } from './sections.ts'
import { ratio } from './stats.ts'
import { startBareProxy, startGateway, startUpstream } from './targets.ts'
import { writeWrkScript } from './wrk.ts'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    'warm-up': { type: 'string', default: '2' },
    out: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    main: { type: 'string' },
  },
})
const log = (line: string) => process.stdout.write(`${line}\n`)
if (!values['no-build']) await run('npm', ['run', '--silent', 'build'], process.env as Record<string, string>)
const dir = mkdtempSync(join(tmpdir(), 'iap-gateway-ladder-'))
const started: Started[] = []
try {
  const keys = await startKeyServer()
  const upstream = await startUpstream(dir)
  started.push(upstream)
  const rung = async (variant: string): Promise<Started> => {
    const port = await freePort()
    const target = await start({
      name: variant,
      command: process.execPath,
      args: [fileURLToPath(new URL('./ladder-server.ts', import.meta.url))],
      env: { VARIANT: variant, PORT: String(port), UPSTREAM_URL: upstream.url },
      port,
      readyPath: '/',
      anyStatus: true,
      logFile: join(dir, `${variant}.log`),
    })
    started.push(target)
    return target
  }
  const gatewayOptions = {
    upstreamUrl: upstream.url,
    keysUrl: keys.url,
    iap: true,
    accessLog: false,
    logDir: dir,
    main: values.main === undefined ? undefined : resolve(values.main),
  }
  const targets: [string, Started][] = [
    ['bare undici proxy (Pool.stream)', await startBareProxy(dir, upstream.url)],
    ['Fastify + Pool.stream (hijack)', await rung('fastify-stream')],
    ['Fastify + @fastify/http-proxy', await rung('fastify-http-proxy')],
    ['gateway, every stage but IAP', await rung('gateway-no-iap')],
    ['gateway, every stage', await startGateway({ name: 'gateway', ...gatewayOptions })],
  ]
  started.push(...targets.map(([, target]) => target))
  const results = await throughput(
    {
      dir,
      script: writeWrkScript(dir),
      tokens: new TokenFiles(keys.key, dir),
      keys,
      rounds: Number(values.rounds),
      durationS: Number(values.duration),
      connections: Number(values.connections),
      warmUpS: Number(values['warm-up']),
      log,
    },
    targets.map(([name, target]) => ({ name, url: target.url, distinctTokens: 1, pid: target.child.pid })),
  )
  const bare = results.get('bare undici proxy (Pool.stream)')
  const lines = [
    `| rung | req/s | / bare proxy | CPU us/req | CPU / bare proxy |`,
    '|---|---:|---:|---:|---:|',
    ...[...results].map(
      ([name, s]) =>
        `| ${name} | ${s.requestsPerSecond.toFixed(0)} | ${ratio(s.requestsPerSecond, bare?.requestsPerSecond ?? 0).toFixed(2)}x | ${s.cpuUsPerRequest.toFixed(0)} | ${ratio(s.cpuUsPerRequest, bare?.cpuUsPerRequest ?? 0).toFixed(2)}x |`,
    ),
    '',
  ]
  log(`\n${lines.join('\n')}`)
  if (values.out !== undefined) writeFileSync(values.out, lines.join('\n'))
  await keys.close()
} finally {
  for (const target of started.reverse()) await target.stop()
  rmSync(dir, { recursive: true, force: true })
}

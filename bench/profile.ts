// Where the gateway's time goes: runs it with --cpu-prof under wrk load (the same upstream and
// assertions as npm run bench), then prints self time by package and the hottest functions, and
// inclusive time of the frames that matter. Usage: node bench/profile.ts [--duration S] [--uncached]
//   [--connections N] [--keep DIR] [--out FILE.md]
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { startKeyServer, TokenFiles } from './assertions.ts'
import { run, type Started } from './processes.ts'
import { ROOT, startBareProxy, startGateway, startUpstream } from './targets.ts'
import { load, writeWrkScript } from './wrk.ts'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount: number
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
}

/** node_modules/<package>, node:internal, our own files, or V8's pseudo-frames. */
export function category(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  const modules = url.lastIndexOf('node_modules/')
  if (modules !== -1) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url)
  }
  if (url.startsWith('node:')) return url.startsWith('node:internal/') ? `node:${url.split('/')[1]}` : url
  return relative(ROOT, new URL(url).pathname)
}

export function summarise(profile: CpuProfile, requests: number, top = 25): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const total = profile.samples.length
  const self = new Map<string, number>()
  const selfByCategory = new Map<string, number>()
  const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n)
  const key = (node: ProfileNode) =>
    `${node.callFrame.functionName || '(anonymous)'} ${category(node.callFrame.url, node.callFrame.functionName)}:${node.callFrame.lineNumber + 1}`
  for (const node of profile.nodes) {
    add(self, key(node), node.hitCount)
    add(selfByCategory, category(node.callFrame.url, node.callFrame.functionName), node.hitCount)
  }
  // Inclusive time, counting a function once per stack even when it recurses.
  const inclusive = new Map<string, number>()
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id) as ProfileNode
    let sum = node.hitCount
    const k = key(node)
    const fresh = !onStack.has(k)
    if (fresh) onStack.add(k)
    for (const child of node.children ?? []) sum += walk(child, onStack)
    if (fresh) {
      onStack.delete(k)
      add(inclusive, k, sum)
    }
    return sum
  }
  walk(profile.nodes[0]?.id as number, new Set())
  const busy = total - (selfByCategory.get('(idle)') ?? 0)
  const usPerSample = (profile.endTime - profile.startTime) / total
  const pct = (n: number) =>
    `${((100 * n) / busy).toFixed(1)}% | ${((n * usPerSample) / requests).toFixed(1)}`
  const table = (title: string, map: Map<string, number>, rows: number) => [
    `### ${title}`,
    '',
    '| | share of busy time | us per request |',
    '|---|---:|---:|',
    ...[...map]
      .filter(([name]) => name !== '(idle)' && !name.startsWith('(root)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, rows)
      .map(([name, n]) => `| \`${name}\` | ${pct(n)} |`),
    '',
  ]
  return [
    `${total} samples, ${((profile.endTime - profile.startTime) / 1e6) | 0} s, idle ${(((selfByCategory.get('(idle)') ?? 0) * 100) / total).toFixed(1)}%`,
    '',
    ...table('Self time by package', selfByCategory, 20),
    ...table('Self time by function', self, top),
    ...table('Inclusive time by function', inclusive, top + 15),
  ].join('\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      uncached: { type: 'boolean', default: false },
      'iap-disabled': { type: 'boolean', default: false },
      'access-log': { type: 'boolean', default: false },
      bare: { type: 'boolean', default: false },
      out: { type: 'string' },
      keep: { type: 'string' },
    },
  })
  await run('npm', ['run', '--silent', 'build'], process.env as Record<string, string>)
  const dir = mkdtempSync(join(tmpdir(), 'iap-gateway-profile-'))
  const profiles = values.keep ?? join(dir, 'profiles')
  mkdirSync(profiles, { recursive: true })
  const stops: Started[] = []
  try {
    const keys = await startKeyServer()
    const tokens = new TokenFiles(keys.key, dir)
    const upstream = await startUpstream(dir)
    stops.push(upstream)
    const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profiles}`]
    const gateway = values.bare
      ? await startBareProxy(dir, upstream.url, nodeArgs)
      : await startGateway({
          name: 'gateway',
          upstreamUrl: upstream.url,
          keysUrl: keys.url,
          iap: !values['iap-disabled'],
          accessLog: values['access-log'],
          logDir: dir,
          nodeArgs,
        })
    const script = writeWrkScript(dir)
    const tokenFile = tokens.get(values.uncached ? 20_000 : 1)
    const connections = Number(values.connections)
    const warm = await load({ url: `${gateway.url}/`, connections, durationS: 2, script, tokenFile })
    const result = await load({
      url: `${gateway.url}/`,
      connections,
      durationS: Number(values.duration),
      script,
      tokenFile,
    })
    await gateway.stop()
    await keys.close()
    const file = readdirSync(profiles).find((name) => name.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error('no .cpuprofile written')
    const summary = [
      `# ${values.bare ? 'Bare undici proxy' : 'Gateway'} CPU profile (${values.uncached ? 'a fresh assertion per request' : 'one cached assertion'}${values['iap-disabled'] ? ', IAP disabled' : ''}${values['access-log'] ? ', access log on' : ''})`,
      '',
      `wrk -t1 -c${connections} -d${values.duration}s: ${result.requestsPerSecond.toFixed(0)} req/s; the profile also holds start-up and a 2 s warm-up`,
      '',
      summarise(
        JSON.parse(readFileSync(join(profiles, file), 'utf8')) as CpuProfile,
        warm.requests + result.requests,
      ),
    ].join('\n')
    if (values.out !== undefined) writeFileSync(values.out, summary)
    process.stdout.write(`${summary}\n`)
  } finally {
    for (const target of stops) await target.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) await main()

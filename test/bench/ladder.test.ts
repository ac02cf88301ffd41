// The benchmark harness runs and produces numbers: one tiny round of the cost ladder (bench/ladder.ts),
// every rung through its real process, the gateway's rungs built by the gateway's own factory. A
// harness that breaks (a rung that no longer starts, a parser that no longer reads wrk) would
// otherwise go unnoticed until someone needs a measurement. The figures themselves mean nothing here
// (2 shared cores, a 1 s round); the targets live in `npm run bench`.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))
const hasWrk = spawnSync('sh', ['-c', 'command -v wrk']).status === 0

t.test(
  'a one-round ladder measures every rung',
  { skip: hasWrk ? false : 'wrk is not installed (apt-get install wrk)' },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ladder-smoke-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const out = join(dir, 'ladder.md')
    // Outside tap's coverage hooks: bench/ never ships and has no coverage target (its many options are
    // not this test's to cover). tap injects its hook into every spawn's environment, so a shell drops it
    // again before node starts. The rungs run the gateway's sources (proxy/main.ts), not a build.
    const args = [
      '--no-build',
      '--main',
      'proxy/main.ts',
      '--rounds',
      '1',
      '--duration',
      '1',
      '--warm-up',
      '0',
    ]
    const run = spawnSync(
      'sh',
      ['-c', 'exec env -u NODE_OPTIONS "$@"', 'sh', process.execPath, 'bench/ladder.ts', ...args].concat([
        '--connections',
        '4',
        '--out',
        out,
      ]),
      { cwd: root, encoding: 'utf8', timeout: 100_000 },
    )
    t.equal(run.status, 0, run.stderr)
    const rows = readFileSync(out, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('| ') && !line.startsWith('| rung'))
      .map((line) => line.split('|').map((cell) => cell.trim()))
    t.same(
      rows.map((cells) => cells[1]),
      [
        'bare undici proxy (Pool.stream)',
        'Fastify + Pool.stream (hijack)',
        'Fastify + @fastify/http-proxy',
        'gateway, every stage but IAP',
        'gateway, every stage',
      ],
    )
    for (const cells of rows) {
      const [requestsPerSecond, cpuUsPerRequest] = [Number(cells[2]), Number(cells[4])]
      t.ok(requestsPerSecond > 0, `${cells[1]}: ${requestsPerSecond} req/s`)
      t.ok(
        Number.isFinite(cpuUsPerRequest) && cpuUsPerRequest > 0,
        `${cells[1]}: ${cpuUsPerRequest} CPU us/request`,
      )
    }
  },
)

// `npm run flowise:lock -- VERSION`: makes the lock folder of a Flowise release, flowise/VERSION/, the
// one place the image (Dockerfile.flowise), the dev chain and the end-to-end suite install Flowise from.
// It starts from the newest existing folder's package.json (its overrides carry over), pins
// flowise@VERSION, and resolves the tree once with `npm install --package-lock-only`. Review the result
// before committing it: docs/images.md, "A Flowise version bump", says what to compare and what to run.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../flowise/', import.meta.url))
const VERSION = /^\d+\.\d+\.\d+$/

const byVersion = (a: string, b: string) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number))
  for (let i = 0; i < 3; i += 1) if (x?.[i] !== y?.[i]) return (x?.[i] ?? 0) - (y?.[i] ?? 0)
  return 0
}

function main(argv: string[]): number {
  const version = argv[0]
  if (!version || !VERSION.test(version)) {
    console.error('usage: npm run flowise:lock -- VERSION   (a Flowise release, e.g. 3.1.5)')
    return 2
  }
  const target = join(ROOT, version)
  const existing = readdirSync(ROOT)
    .filter((entry) => VERSION.test(entry) && entry !== version)
    .sort(byVersion)
  const from = existsSync(join(target, 'package.json')) ? version : existing.at(-1)
  if (!from) {
    console.error('flowise:lock: no lock folder to start from')
    return 1
  }
  const manifest = JSON.parse(readFileSync(join(ROOT, from, 'package.json'), 'utf8')) as {
    version: string
    dependencies: Record<string, string>
  }
  manifest.version = version
  manifest.dependencies.flowise = version
  mkdirSync(target, { recursive: true })
  writeFileSync(join(target, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  console.error(`flowise:lock: flowise/${version}/package.json from flowise/${from}/; resolving the tree`)
  const npm = spawnSync(
    'npm',
    ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: target, stdio: 'inherit' },
  )
  if (npm.status !== 0) return npm.status ?? 1
  console.error(
    `flowise:lock: wrote flowise/${version}/package-lock.json. Next: compare its @langchain/* versions with ` +
      `Flowise's pnpm-lock.yaml at that release, then FLOWISE_VERSION=${version} npm run test:images`,
  )
  return 0
}

process.exit(main(process.argv.slice(2)))

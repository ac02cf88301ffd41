// The pinned Flowise, installed once into a cache folder and started on the Node 24 binary of the `node`
// devDependency. Shared by `npm run dev -- --flowise` (SQLite) and the end-to-end suite (PostgreSQL).
//
// The tree is the project's lock of it (flowise/<version>/package-lock.json, the same one the image
// installs): `npm ci`, never a fresh `npm install flowise@...`, whose resolution drifts from day to day
// (it once picked an @langchain/langgraph that needs an @langchain/core export Flowise's pinned core
// lacks, and three nodes failed to load). A version without a lock folder is refused at once.
//
// Why --ignore-scripts: Flowise's dependencies' install scripts download prebuilt binaries from outside
// the npm registry, which fails offline. Flowise runs without them on PostgreSQL; its SQLite default
// needs sqlite3's native module, built here from source with node-gyp against the headers of the same
// Node version that runs Flowise (`--nodedir`), fetched from the registry as `node-<os>-<arch>`.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** 3.1.3 is the first release without the sandbox escapes; 3.1.3+ need Node 24. */
export const FLOWISE_VERSION = '3.1.4'

const require = createRequire(import.meta.url)
const INSTALLED_MARKER = '.iap-gateway-installed.json'
const SQLITE_MARKER = '.iap-gateway-sqlite-built.json'

export type InstallOptions = {
  version?: string
  /** build sqlite3's native module (the SQLite default); PostgreSQL needs no native module */
  sqlite: boolean
  onProgress?: (message: string) => void
  /** default: $FLOWISE_CACHE_DIR, else .local/flowise-<version> in the repository */
  cacheDir?: string
  env?: Readonly<Record<string, string | undefined>>
}

export type InstallResult = { dir: string; installed: boolean; sqliteBuilt: boolean; seconds: number }

/** The repository root, from dev/ (sources) or dist/dev (compiled). */
function repoRoot(): string {
  return fileURLToPath(new URL(import.meta.url.includes('/dist/dev/') ? '../../' : '../', import.meta.url))
}

/** The project's lock of one Flowise version's tree: flowise/<version>/{package.json,package-lock.json}. */
export function flowiseLockDir(version = FLOWISE_VERSION): string {
  const dir = join(repoRoot(), 'flowise', version)
  if (!existsSync(join(dir, 'package-lock.json')) || !existsSync(join(dir, 'package.json'))) {
    const locked = existsSync(join(repoRoot(), 'flowise'))
      ? readdirSync(join(repoRoot(), 'flowise')).filter((entry) => /^\d+\.\d+\.\d+$/.test(entry))
      : []
    throw new Error(
      `flowise ${version}: no lock folder flowise/${version}/ (locked: ${locked.join(', ') || 'none'}); ` +
        'make one with `npm run flowise:lock -- ' +
        version +
        '` (docs/images.md, "A Flowise version bump")',
    )
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>
  }
  if (manifest.dependencies?.flowise !== version) {
    throw new Error(
      `flowise/${version}/package.json depends on flowise ${manifest.dependencies?.flowise ?? '(none)'}, not ${version}`,
    )
  }
  return dir
}

export function flowiseCacheDir(
  version = FLOWISE_VERSION,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  return env.FLOWISE_CACHE_DIR || join(repoRoot(), '.local', `flowise-${version}`)
}

/** The Node 24 binary of the `node` devDependency (never the machine's Node), and its version. */
export function nodeBinary(): { path: string; version: string } {
  const pkg = require.resolve('node/package.json')
  const { version } = JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }
  return { path: join(dirname(pkg), 'bin', 'node'), version }
}

function readMarker(file: string): { version?: string } | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

/** A cache counts as installed only from the lock as it is now: a changed lock reinstalls. */
export function isInstalled(dir: string, version = FLOWISE_VERSION): boolean {
  const marker = readMarker(join(dir, INSTALLED_MARKER)) as { version?: string; lock?: string } | undefined
  return (
    marker?.version === version &&
    marker.lock === lockDigest(flowiseLockDir(version)) &&
    existsSync(join(dir, 'node_modules', 'flowise', 'bin', 'run'))
  )
}

function lockDigest(lockDir: string): string {
  return createHash('sha256')
    .update(readFileSync(join(lockDir, 'package-lock.json')))
    .digest('hex')
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
  onProgress: (message: string) => void,
): Promise<void> {
  const child = spawn(command, [...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let tail = ''
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const started = Date.now()
  // npm is silent for minutes while it fetches: say it is still working
  const ticker = setInterval(
    () =>
      onProgress(
        `still running ${command.split('/').pop()} (${Math.round((Date.now() - started) / 1000)} s)`,
      ),
    30_000,
  )
  return once(child, 'close').then(([code, signal]) => {
    clearInterval(ticker)
    if (code !== 0) {
      throw new Error(
        `${[command, ...args].join(' ')} in ${cwd} failed (${code ?? signal}); last output:\n${tail}`,
      )
    }
  })
}

function npmCommand(env: Readonly<Record<string, string | undefined>>): {
  command: string
  prefix: string[]
} {
  // inside `npm run`, npm names its own CLI; else the npm on PATH
  const cli = env.npm_execpath
  return cli?.endsWith('.js') ? { command: nodeBinary().path, prefix: [cli] } : { command: 'npm', prefix: [] }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Partial installs (3 GB each) left by runs that were killed; one still running keeps its own. */
function removeAbandonedStagings(dir: string): void {
  const prefix = `${basename(dir)}.partial-`
  const parent = dirname(dir)
  if (!existsSync(parent)) return
  for (const entry of readdirSync(parent)) {
    const pid = Number(entry.slice(prefix.length))
    if (entry.startsWith(prefix) && (pid === process.pid || !isRunning(pid))) {
      rmSync(join(parent, entry), { recursive: true, force: true })
    }
  }
}

async function installFlowise(dir: string, version: string, options: InstallOptions): Promise<void> {
  const env = options.env ?? process.env
  const progress = options.onProgress ?? (() => {})
  const lock = flowiseLockDir(version)
  // a half-finished folder from an interrupted run is never trusted: install beside it, then swap
  const staging = `${dir}.partial-${process.pid}`
  removeAbandonedStagings(dir)
  mkdirSync(staging, { recursive: true })
  for (const file of ['package.json', 'package-lock.json'])
    copyFileSync(join(lock, file), join(staging, file))
  progress(`installing flowise@${version} from flowise/${version}/package-lock.json into ${dir} (about 3 GB)`)
  const npm = npmCommand(env)
  await run(
    npm.command,
    [...npm.prefix, 'ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
    staging,
    env,
    progress,
  )
  writeFileSync(join(staging, INSTALLED_MARKER), `${JSON.stringify({ version, lock: lockDigest(lock) })}\n`)
  rmSync(dir, { recursive: true, force: true })
  try {
    renameSync(staging, dir)
  } catch (error) {
    // another process finished first: use its install
    rmSync(staging, { recursive: true, force: true })
    if (!isInstalled(dir, version)) throw error
  }
}

/** node-gyp: the one npm runs scripts with, else one installed beside us, else npm's bundled one. */
function nodeGypScript(env: Readonly<Record<string, string | undefined>>, dir: string): string {
  const candidates = [env.npm_config_node_gyp]
  for (const from of [import.meta.url, join(dir, 'package.json')]) {
    try {
      candidates.push(createRequire(from).resolve('node-gyp/bin/node-gyp.js'))
    } catch {}
  }
  candidates.push('/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')
  const found = candidates.find((candidate) => candidate && existsSync(candidate))
  if (!found)
    throw new Error('node-gyp not found: install npm (it bundles node-gyp) or set npm_config_node_gyp')
  return found
}

async function buildSqlite(dir: string, options: InstallOptions): Promise<void> {
  const env = options.env ?? process.env
  const progress = options.onProgress ?? (() => {})
  const node = nodeBinary()
  const headersPkg = `node-${process.platform}-${process.arch}`
  const headersDir = join(dir, 'node-headers')
  const nodedir = join(headersDir, 'node_modules', headersPkg)
  if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
    progress(`fetching the Node ${node.version} headers (${headersPkg})`)
    mkdirSync(headersDir, { recursive: true })
    writeFileSync(join(headersDir, 'package.json'), '{"private":true}\n')
    const npm = npmCommand(env)
    await run(
      npm.command,
      [
        ...npm.prefix,
        'install',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        `${headersPkg}@${node.version}`,
      ],
      headersDir,
      env,
      progress,
    )
  }
  progress('building sqlite3 from source with node-gyp (about a minute)')
  const sqliteDir = join(dir, 'node_modules', 'sqlite3')
  await run(
    node.path,
    [nodeGypScript(env, dir), 'rebuild', `--nodedir=${nodedir}`, '--release'],
    sqliteDir,
    { ...env, PATH: `${dirname(node.path)}:${env.PATH ?? ''}` },
    progress,
  )
  writeFileSync(join(dir, SQLITE_MARKER), `${JSON.stringify({ node: node.version })}\n`)
}

/** Installs Flowise unless the cache holds a complete install; builds SQLite when asked and not built. */
export async function ensureFlowiseInstalled(options: InstallOptions): Promise<InstallResult> {
  const started = Date.now()
  const version = options.version ?? FLOWISE_VERSION
  const dir = options.cacheDir ?? flowiseCacheDir(version, options.env ?? process.env)
  const progress = options.onProgress ?? (() => {})
  let installed = false
  if (isInstalled(dir, version)) {
    progress(`flowise@${version} already installed in ${dir}`)
  } else {
    await installFlowise(dir, version, options)
    installed = true
  }
  let sqliteBuilt = false
  const built = readMarker(join(dir, SQLITE_MARKER)) as { node?: string } | undefined
  if (options.sqlite && built?.node !== nodeBinary().version) {
    await buildSqlite(dir, options)
    sqliteBuilt = true
  }
  const seconds = Math.round((Date.now() - started) / 1000)
  if (installed || sqliteBuilt) progress(`flowise ready in ${seconds} s`)
  return { dir, installed, sqliteBuilt, seconds }
}

/** The argv that starts the installed Flowise on Node 24 (`flowise start`). */
export function flowiseCommand(options: { version?: string; cacheDir?: string } = {}): {
  command: string
  args: string[]
} {
  const dir = options.cacheDir ?? flowiseCacheDir(options.version ?? FLOWISE_VERSION)
  return { command: nodeBinary().path, args: [join(dir, 'node_modules', 'flowise', 'bin', 'run'), 'start'] }
}

/* c8 ignore next 3: the CLI entry (`node dev/flowise.ts`) installs for real */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await ensureFlowiseInstalled({ sqlite: process.argv.includes('--sqlite'), onProgress: console.error })
}

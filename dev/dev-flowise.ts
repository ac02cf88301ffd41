// `npm run dev -- --flowise`: the pinned Flowise as one more child of the chain, installed once by the
// installer the end-to-end suite shares (dev/flowise.ts), with its SQLite data under .local/ (ignored).
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type ChainIo, type RunningChild, spawnChild } from './dev-chain.ts'
import type { DevOptions } from './dev-options.ts'

/** Keys load at once; an upstream the user has not started yet is reported, not waited for. */
export const UPSTREAM_READY_WAIT_MS = 3000

export const FLOWISE_DATA_DIR = fileURLToPath(new URL('../.local/flowise-data', import.meta.url))

/** The part of dev/flowise.ts (the installer shared with the end-to-end suite) used here; tests pass their own. */
export type FlowiseInstaller = {
  ensureFlowiseInstalled(options: {
    sqlite: boolean
    onProgress?: (message: string) => void
  }): Promise<unknown>
  flowiseCommand(): { command: string; args: readonly string[] }
}

/* c8 ignore start: the real installer runs with `npm run dev -- --flowise` and in the end-to-end suite;
   a multi-gigabyte install has no place in `npm test`, which drives the wiring through the same API */
function installerOrDefault(given: FlowiseInstaller | undefined): Promise<FlowiseInstaller> {
  // loaded on demand, so `npm test` (which never installs) does not load the installer at all
  return given ? Promise.resolve(given) : import('./flowise.ts')
}
/* c8 ignore stop */

export async function startFlowiseChild(
  options: DevOptions,
  io: ChainIo,
  given?: FlowiseInstaller,
): Promise<{ child: RunningChild; readyTimeoutMs: number }> {
  const installer = await installerOrDefault(given)
  await installer.ensureFlowiseInstalled({
    sqlite: true,
    onProgress: (message) => io.stderr.write(`flowise install: ${message}\n`),
  })
  mkdirSync(FLOWISE_DATA_DIR, { recursive: true })
  const { command, args } = installer.flowiseCommand()
  const port = options.upstream.port || (options.upstream.protocol === 'https:' ? '443' : '80')
  const child = spawnChild(
    {
      name: 'flowise',
      command,
      args,
      env: {
        ...io.env,
        PORT: port,
        // Flowise must only ever be reachable through the gateway
        HOST: '127.0.0.1',
        DATABASE_PATH: FLOWISE_DATA_DIR,
        SECRETKEY_PATH: FLOWISE_DATA_DIR,
        LOG_PATH: `${FLOWISE_DATA_DIR}/logs`,
        BLOB_STORAGE_PATH: `${FLOWISE_DATA_DIR}/storage`,
      },
      // Flowise force-exits 30 s after SIGTERM
      stopGraceMs: 35_000,
    },
    io,
  )
  // the first start runs its migrations before it listens
  return { child, readyTimeoutMs: 180_000 }
}

/** The children that stand in for UPSTREAM_URL: Flowise with --flowise, else none (the user runs it). */
export async function startUpstreamChildren(
  options: DevOptions,
  io: ChainIo,
  installer?: FlowiseInstaller,
): Promise<{ children: RunningChild[]; readyTimeoutMs: number }> {
  if (!options.flowise) return { children: [], readyTimeoutMs: UPSTREAM_READY_WAIT_MS }
  const { child, readyTimeoutMs } = await startFlowiseChild(options, io, installer)
  return { children: [child], readyTimeoutMs }
}

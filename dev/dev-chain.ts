// The local chain `npm run dev` runs: IAP emulator (this process) -> gateway (`node proxy/main.ts`, a
// child process, configured only through its environment as on Cloud Run) -> UPSTREAM_URL, optionally
// with Flowise started as a second child. Children run in their own process groups so that stopping
// reaches whatever they spawn, and this process alone decides when they stop.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { DevOptions } from './dev-options.ts'
import { freePort } from './free-port.ts'
import { createIapEmulator, type IapEmulator, KEYS_PATH } from './iap-emulator.ts'

// dev/ also compiles to dist/dev; run from there, the gateway is the compiled main.js beside it
const GATEWAY_MAIN = fileURLToPath(new URL(`../proxy/main${import.meta.url.slice(-3)}`, import.meta.url))

export type ChainIo = Readonly<{
  stdout: Writable
  stderr: Writable
  /** the environment the children start from (the gateway's settings are laid over it) */
  env: Readonly<Record<string, string | undefined>>
}>

/** A child the chain started and must stop: how to start it, and how long it may take to stop. */
export type ChildSpec = Readonly<{
  name: string
  command: string
  args: readonly string[]
  env: Readonly<Record<string, string | undefined>>
  stopGraceMs: number
}>

export type RunningChild = Readonly<{
  name: string
  pid: number
  process: ChildProcess
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stopGraceMs: number
}>

export type DevChain = Readonly<{
  /** the one URL to open: the emulator */
  url: string
  gatewayUrl: string
  /** the settings the gateway runs with (or, with --gateway, must run with) */
  gatewaySettings: Readonly<Record<string, string>>
  emulator: IapEmulator
  children: readonly RunningChild[]
  /** resolves when a child ends on its own (it should not): the reason, for the exit message */
  ended: Promise<string>
  /** SIGTERM to every child, SIGKILL after its grace period; the emulator stops accepting first */
  stop(): Promise<void>
  /** SIGKILL to every child still running (a second Ctrl-C, or this process exiting) */
  kill(): void
}>

export function spawnChild(spec: ChildSpec, io: ChainIo): RunningChild {
  const child = spawn(spec.command, [...spec.args], {
    env: spec.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout.pipe(io.stdout, { end: false })
  child.stderr.pipe(io.stderr, { end: false })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }))
  return Object.freeze({
    name: spec.name,
    pid: child.pid as number,
    process: child,
    exited: exited as RunningChild['exited'],
    stopGraceMs: spec.stopGraceMs,
  })
}

function signalGroup(child: RunningChild, signal: NodeJS.Signals): void {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
    /* c8 ignore start: the group ended between the exit check above and the kill (a race that cannot
       be produced on demand); there is nothing left to stop */
  } catch {}
  /* c8 ignore stop */
}

export async function terminate(child: RunningChild): Promise<void> {
  signalGroup(child, 'SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), child.stopGraceMs)
  })
  const outcome = await Promise.race([child.exited, deadline])
  clearTimeout(timer)
  if (outcome === 'late') {
    signalGroup(child, 'SIGKILL')
    await child.exited
  }
}

/** Resolves once the gateway answers its liveness path; rejects when it exits first. */
function gatewayAnswering(gateway: RunningChild, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let exited = false
    gateway.exited.then(({ code, signal }) => {
      exited = true
      reject(new Error(`the gateway exited at start (${code ?? signal})`))
    })
    const poll = async () => {
      while (!exited) {
        const res = await fetch(`${url}/_gateway/healthz`).catch(() => undefined)
        if (res?.status === 200) return resolve()
        await new Promise((wait) => setTimeout(wait, 100))
      }
    }
    poll()
  })
}

/** The host part of the URL to print: a wildcard address is opened through loopback. */
export function browserHost(address: AddressInfo, requested: string): string {
  if (requested === 'localhost') return 'localhost'
  if (address.address === '0.0.0.0') return '127.0.0.1'
  if (address.address === '::') return '[::1]'
  return address.family === 'IPv6' ? `[${address.address}]` : address.address
}

/**
 * The gateway settings that put it behind the emulator: what a Cloud Run deployment behind IAP sets,
 * on loopback. A gateway the user runs with `--gateway` needs exactly these.
 */
export function gatewaySettings(
  options: DevOptions,
  keysUrl: string,
  shutdownGraceMs: string,
): Record<string, string> {
  const settings: Record<string, string> = {
    PORT: options.gateway?.port || String(options.gatewayPort),
    HOST: '127.0.0.1',
    UPSTREAM_URL: options.upstream.href.replace(/\/$/, ''),
    ALLOWED_CIDRS: options.allowedCidrs,
    // the emulator appends `<client>,<its own address>` as Google's balancer does: two hops
    TRUST_PROXY_HOPS: '2',
    IAP_DISABLED: 'false',
    IAP_AUDIENCE: options.audience,
    IAP_KEYS_URL: keysUrl,
    SHUTDOWN_GRACE_MS: shutdownGraceMs,
  }
  if (options.allowedEmails !== undefined) settings.ALLOWED_EMAILS = options.allowedEmails
  if (options.allowedDomains !== undefined) settings.ALLOWED_DOMAINS = options.allowedDomains
  return settings
}

export async function startDevChain(
  options: DevOptions,
  io: ChainIo,
  extraChildren: readonly RunningChild[] = [],
): Promise<DevChain> {
  const emulator = createIapEmulator({
    key: options.key,
    identity: options.identity,
    audience: options.audience,
    tokenLifetimeSeconds: options.tokenLifetimeSeconds,
    keysMaxAgeSeconds: 300,
  })
  let address: AddressInfo
  try {
    address = await emulator.listen(options.port, options.host)
  } catch (error) {
    await Promise.all(extraChildren.map(terminate))
    const { code } = error as { code?: string }
    throw new Error(
      `the emulator cannot listen on ${options.host} port ${options.port} (${code}): try another --port`,
    )
  }
  const url = `http://${browserHost(address, options.host)}:${address.port}`
  const keysHost = address.family === 'IPv6' ? '[::1]' : '127.0.0.1'
  const keysUrl = `http://${keysHost}:${address.port}${KEYS_PATH}`

  // a local Ctrl-C should not wait for the production drain period
  const shutdownGraceMs = io.env.SHUTDOWN_GRACE_MS ?? '2000'
  // a free port chosen here, not by the gateway: it logs at the user's LOG_LEVEL, so its own
  // "listening" line cannot be relied on to learn an OS-chosen port
  const gatewayPort = options.gateway || options.gatewayPort !== 0 ? options.gatewayPort : await freePort()
  const settings = gatewaySettings({ ...options, gatewayPort }, keysUrl, shutdownGraceMs)
  const children = [...extraChildren]
  let stopping: Promise<void> | undefined
  const kill = () => {
    for (const child of children) signalGroup(child, 'SIGKILL')
  }
  const stop = () => {
    stopping ??= (async () => {
      const closing = emulator.close()
      await Promise.all(children.map(terminate))
      await closing
    })()
    return stopping
  }

  let gatewayUrl = options.gateway?.origin
  if (gatewayUrl === undefined) {
    const gateway = spawnChild(
      {
        name: 'gateway',
        command: process.execPath,
        args: [GATEWAY_MAIN],
        env: { ...io.env, ...settings },
        stopGraceMs: Number(shutdownGraceMs) + 3000,
      },
      io,
    )
    children.push(gateway)
    gatewayUrl = `http://127.0.0.1:${gatewayPort}`
    try {
      await gatewayAnswering(gateway, gatewayUrl)
    } catch (error) {
      await stop()
      throw error
    }
  }
  emulator.setTarget(new URL(gatewayUrl))

  const ended = Promise.race(
    children.map((child) =>
      child.exited.then(({ code, signal }) => `${child.name} (pid ${child.pid}) exited (${code ?? signal})`),
    ),
  )
  return Object.freeze({ url, gatewayUrl, gatewaySettings: settings, emulator, children, ended, stop, kill })
}

export type Readiness = { ready: boolean; reasons: string[] }

/** Polls the gateway's readyz until it is ready, `timeoutMs` passes or `stop` aborts: the last answer. */
export async function waitUntilReady(
  gatewayUrl: string,
  timeoutMs: number,
  stop = new AbortController().signal,
): Promise<Readiness> {
  const deadline = Date.now() + timeoutMs
  let last: Readiness = { ready: false, reasons: ['gateway not answering'] }
  while (Date.now() < deadline && !stop.aborted) {
    try {
      const signal = AbortSignal.any([stop, AbortSignal.timeout(2000)])
      const res = await fetch(`${gatewayUrl}/_gateway/readyz`, { signal })
      const body = (await res.json()) as { reasons: string[] }
      last = { ready: res.status === 200, reasons: body.reasons }
      if (last.ready) return last
    } catch {
      // not answering yet: keep polling until the deadline
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return last
}

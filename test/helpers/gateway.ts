import { type ChildProcess, spawn } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { loadConfig } from '../../proxy/config.ts'
import type { Health } from '../../proxy/health.ts'
import { createIapVerifier } from '../../proxy/iap/verify.ts'
import { createLogger } from '../../proxy/logging.ts'
import type { AssertionVerifier } from '../../proxy/pipeline.ts'
import { createGateway } from '../../proxy/server.ts'
import {
  type ClaimOptions,
  createSigningKey,
  signAssertion,
  startKeyServer,
  TEST_AUDIENCE,
  until,
} from './iap.ts'
import { type RawUpstream, startRawUpstream, startUpstream, type Upstream } from './upstream.ts'

export const MAIN = fileURLToPath(new URL('../../proxy/main.ts', import.meta.url))

export interface RunningGateway {
  readonly url: string
  readonly port: number
  readonly app: FastifyInstance
  readonly health: Health
  /** Every log line, parsed. */
  readonly logs: Record<string, unknown>[]
  /** Every log line as written, to search for things that must never appear. */
  readonly rawLog: string[]
  close(): Promise<void>
}

/** The gateway in this process, configured from `env` exactly as main.ts configures it. */
export async function startGateway(
  env: Record<string, string>,
  verifier?: AssertionVerifier,
  host = '127.0.0.1',
): Promise<RunningGateway> {
  const config = loadConfig({ PORT: '0', HOST: host, LOG_LEVEL: 'info', ...env })
  const logs: Record<string, unknown>[] = []
  const rawLog: string[] = []
  const logger = createLogger(config.logLevel, {
    write(line: string) {
      rawLog.push(line)
      logs.push(JSON.parse(line))
    },
  })
  const { app, health } = await createGateway(config, { logger, verifier })
  await app.listen({ port: 0, host: config.host })
  const { port } = app.server.address() as AddressInfo
  const urlHost = host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host
  return { url: `http://${urlHost}:${port}`, port, app, health, logs, rawLog, close: () => app.close() }
}

export interface GatewayProcess {
  readonly child: ChildProcess
  readonly url: string
  readonly port: number
  readonly stdout: string[]
  readonly stderr: string[]
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /**
   * SIGTERM, as Cloud Run stops a container, so the process ends itself (and tap records its coverage,
   * which a SIGKILL loses); SIGKILL only if it is still there after 15 s.
   */
  readonly stop: () => Promise<void>
}

export interface VerifyingGateway extends RunningGateway {
  /** A valid assertion for the test audience, signed by a key the gateway trusts. */
  assertion(claims?: ClaimOptions): string
}

/**
 * The gateway in this process with the real IAP verifier against a real key server (as main.ts wires
 * them), resolved once the keys have loaded. `close()` stops all three.
 */
export async function startVerifyingGateway(env: Record<string, string>): Promise<VerifyingGateway> {
  const key = createSigningKey()
  const keyServer = await startKeyServer({ keys: [key] })
  const verifier = createIapVerifier({
    audiences: [TEST_AUDIENCE],
    keysUrl: keyServer.url,
    allowedEmails: [],
    allowedDomains: [],
    log: createLogger('silent'),
  })
  verifier.start()
  const gateway = await startGateway({ IAP_AUDIENCE: TEST_AUDIENCE, ...env }, verifier)
  await until(() => verifier.keysReady, 'keys loaded')
  return {
    ...gateway,
    assertion: (claims) => signAssertion(key, claims),
    close: async () => {
      verifier.close()
      await gateway.close()
      await keyServer.close()
    },
  }
}

/**
 * The gateway as a real process (`node proxy/main.ts`), resolved once it logs that it listens or, when
 * `env.PORT` names a port (a LOG_LEVEL above info never logs that line), once healthz answers there.
 */
export function spawnGateway(env: Record<string, string>, args: string[] = []): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stdout: string[] = []
  const stderr: string[] = []
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
  const running = (port: number): GatewayProcess => ({
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    stdout,
    stderr,
    exited,
    stop,
  })
  return new Promise((resolve, reject) => {
    let buffered = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) {
        stdout.push(line)
        const entry = safeJson(line)
        const address = entry?.address as { port?: number } | undefined
        if (entry?.message === 'gateway listening' && address?.port !== undefined) {
          resolve(running(address.port))
        }
      }
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk))
    exited.then(({ code, signal }) =>
      reject(new Error(`gateway exited before listening (${code ?? signal}): ${stderr.join('')}`)),
    )
    const port = Number(env.PORT ?? 0)
    if (port !== 0) {
      void (async () => {
        while (child.exitCode === null) {
          const ok = await fetch(`http://127.0.0.1:${port}/_gateway/healthz`).then(
            (response) => response.ok,
            () => false,
          )
          if (ok) return resolve(running(port))
          await new Promise((done) => setTimeout(done, 25))
        }
      })()
    }
  })
}

/** Runs `node proxy/main.ts` to completion: for configuration errors and --check-config. */
export async function runGateway(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) =>
    child.once('exit', (exitCode) => resolve(exitCode)),
  )
  return { code, stdout, stderr }
}

export function safeJson(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/**
 * Sends bytes exactly as given (repeated or oddly spelled headers that HTTP clients refuse to write)
 * and returns the raw response text once the server closes or `Connection: close` completes it.
 */
export function rawRequest(port: number, text: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host })
    let response = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (response += chunk))
    socket.on('end', () => resolve(response))
    socket.on('error', reject)
    socket.write(text.replaceAll('\n', '\r\n'))
  })
}

export interface RawConnection {
  readonly socket: Socket
  /** Everything received so far, as text. */
  readonly received: () => string
  /** Resolves once what was received matches, rejects after `timeoutMs` naming what it waited for. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** Resolves when the server has closed the connection (or it broke), with the time that took. */
  readonly closed: Promise<number>
  /** Writes exactly these bytes (join header lines with \r\n yourself). */
  write(data: string | Buffer): void
}

/**
 * A client on a raw socket that writes what it is told, when it is told: for exchanges in steps.
 * Destroyed when `t` ends, whatever the test left open.
 */
export function openRaw(t: Test, port: number, host = '127.0.0.1'): RawConnection {
  const socket = connect({ port, host })
  t.teardown(() => socket.destroy())
  const openedAt = Date.now()
  let text = ''
  const listeners = new Set<() => void>()
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk
    for (const listener of listeners) listener()
  })
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - openedAt)))
  socket.on('error', () => {}) // a reset is a close here; `closed` reports it
  return {
    socket,
    received: () => text,
    write: (data) => void socket.write(data),
    closed,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(text)) return
          clearTimeout(timer)
          listeners.delete(check)
          resolve(text)
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(
            new Error(`timed out waiting for ${pattern} (received ${JSON.stringify(text.slice(0, 200))})`),
          )
        }, timeoutMs)
        listeners.add(check)
        check()
      })
    },
  }
}

/** The environment of a gateway in front of `upstreamUrl` that admits 127.0.0.1 with IAP off, and `env`. */
const openToLoopback = (upstreamUrl: string, env: Record<string, string>): Record<string, string> => ({
  UPSTREAM_URL: upstreamUrl,
  ALLOWED_CIDRS: '127.0.0.1',
  IAP_DISABLED: 'true',
  ...env,
})

/** The gateway (from 127.0.0.1, IAP off) in front of a fresh upstream; both closed when `t` ends. */
export async function gatewayInFront(
  t: Test,
  env: Record<string, string> = {},
  /** a path for UPSTREAM_URL, such as `/base` */
  basePath = '',
): Promise<{ upstream: Upstream; gateway: RunningGateway }> {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  return { upstream, gateway: await gatewayBefore(t, upstream.url + basePath, env) }
}

/** The gateway (from 127.0.0.1, IAP off) in front of `upstreamUrl`, whatever answers there; closed when `t` ends. */
export async function gatewayBefore(
  t: Test,
  upstreamUrl: string,
  env: Record<string, string> = {},
): Promise<RunningGateway> {
  const gateway = await startGateway(openToLoopback(upstreamUrl, env))
  t.teardown(() => gateway.close())
  return gateway
}

/** The same in front of a raw-socket upstream (startRawUpstream) answering with `script`. */
export async function gatewayInFrontOfRaw(
  t: Test,
  script: (socket: Socket) => void,
): Promise<{ upstream: RawUpstream; gateway: RunningGateway }> {
  const upstream = await startRawUpstream(script)
  t.teardown(() => upstream.close())
  return { upstream, gateway: await gatewayBefore(t, upstream.url) }
}

/** The same with the real IAP verifier (startVerifyingGateway); `keepHeaderLines` as in startUpstream. */
export async function verifyingGatewayInFront(
  t: Test,
  env: Record<string, string> = {},
  keepHeaderLines?: number,
): Promise<{ upstream: Upstream; gateway: VerifyingGateway }> {
  const upstream = await startUpstream('127.0.0.1', keepHeaderLines)
  const gateway = await startVerifyingGateway({
    UPSTREAM_URL: upstream.url,
    ALLOWED_CIDRS: '127.0.0.1',
    ...env,
  })
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  return { upstream, gateway }
}

/**
 * The gateway as a real process (spawnGateway), from 127.0.0.1 with IAP off, in front of `upstreamUrl`,
 * whatever answers there; stopped when `t` ends.
 */
export async function spawnGatewayBefore(
  t: Test,
  upstreamUrl: string,
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const gateway = await spawnGateway(openToLoopback(upstreamUrl, env))
  t.teardown(gateway.stop)
  return gateway
}

/** The same in front of a fresh upstream (startUpstream); both stopped when `t` ends. */
export async function spawnGatewayInFront(
  t: Test,
  env: Record<string, string> = {},
): Promise<{ upstream: Upstream; gateway: GatewayProcess }> {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  return { upstream, gateway: await spawnGatewayBefore(t, upstream.url, env) }
}

/** A request head ready for a raw socket: the lines joined with CRLF, then the empty line. */
export const httpHead = (lines: readonly string[]): string => `${lines.join('\r\n')}\r\n\r\n`

/** How long the server took to close the connection, or Infinity when it had not after `limitMs`. */
export function closedWithin(connection: RawConnection, limitMs: number): Promise<number> {
  return Promise.race([
    connection.closed,
    new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), limitMs).unref()),
  ])
}

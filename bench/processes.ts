// Child processes of the harness: started with a known port, waited on until they answer, and always
// stopped, even when the harness fails half-way (an exit hook kills whatever is still running).
import { type ChildProcess, spawn } from 'node:child_process'
import { openSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130))
}

export interface Started {
  readonly name: string
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  stop(): Promise<void>
}

/** A port the OS just handed out and released; the child binds it a moment later. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export interface StartOptions {
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
  readonly env: Record<string, string>
  readonly port: number
  /** Path that answers 200 once the process is ready. */
  readonly readyPath: string
  /** stdout and stderr go to this file (kept out of the harness, which must stay idle during loads). */
  readonly logFile: string
  readonly timeoutMs?: number
}

export async function start(options: StartOptions): Promise<Started> {
  const out = openSync(options.logFile, 'a')
  const child = spawn(options.command, [...options.args], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', out, out],
  })
  running.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.once('exit', () => running.delete(child))
  const url = `http://127.0.0.1:${options.port}`
  await waitForOk(
    `${url}${options.readyPath}`,
    options.timeoutMs ?? 20_000,
    () => child.exitCode !== null,
    () => `${options.name} did not become ready; see ${options.logFile}`,
  )
  return {
    name: options.name,
    url,
    port: options.port,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Polls `url` until it answers 200; returns the milliseconds it took. */
export async function waitForOk(
  url: string,
  timeoutMs: number,
  gaveUp: () => boolean,
  message: () => string,
  intervalMs = 20,
): Promise<number> {
  const started = performance.now()
  for (;;) {
    if ((await status(url)) === 200) return performance.now() - started
    if (gaveUp() || performance.now() - started > timeoutMs) throw new Error(message())
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

export function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    req.once('error', () => resolve(0))
    req.end()
  })
}

/** Resident set size of a process in MB, from /proc (Linux). */
export function rssMb(pid: number): Promise<number> {
  return import('node:fs/promises').then(async ({ readFile }) => {
    const text = await readFile(`/proc/${pid}/status`, 'utf8')
    const match = /VmRSS:\s+(\d+) kB/.exec(text)
    return match === null ? Number.NaN : Number(match[1]) / 1024
  })
}

/** Runs a command to completion and returns its stdout (stderr on failure goes into the error). */
export function run(command: string, args: readonly string[], env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env })
    running.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.once('error', reject)
    child.once('exit', (code) => {
      running.delete(child)
      if (code === 0) resolve(stdout)
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.trim()}`))
    })
  })
}

// Child processes of the harness: started with a known port, waited on until they answer, and always
// stopped, even when the harness fails half-way (an exit hook kills whatever is still running).
import { type ChildProcess, spawn } from 'node:child_process'
import { openSync, readFileSync } from 'node:fs'
import { request } from 'node:http'

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

export interface StartOptions {
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
  readonly env: Record<string, string>
  readonly port: number
  /** Path that answers 200 once the process is ready (any answer at all with `anyStatus`). */
  readonly readyPath: string
  readonly anyStatus?: boolean
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
    () => `${options.name} did not become ready:\n${tail(options.logFile)}`,
    20,
    options.anyStatus,
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

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n')
  } catch {
    return '(no output)'
  }
}

/** Polls `url` until it answers 200; returns the milliseconds it took. */
export async function waitForOk(
  url: string,
  timeoutMs: number,
  gaveUp: () => boolean,
  message: () => string,
  intervalMs = 20,
  anyStatus = false,
): Promise<number> {
  const started = performance.now()
  for (;;) {
    const answer = await status(url)
    if (answer === 200 || (anyStatus && answer !== 0)) return performance.now() - started
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

/**
 * Resident set size of a process in MB, from /proc (Linux): all of it, and the anonymous part (heap,
 * buffers; without the ~55 MB of the node binary's own file-backed pages, which any Node process has).
 */
export async function rssMb(pid: number): Promise<{ rss: number; anon: number }> {
  const { readFile } = await import('node:fs/promises')
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN) / 1024
  return { rss: field('VmRSS'), anon: field('RssAnon') }
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

const CLOCK_TICKS_PER_SECOND = 100 // USER_HZ, 100 on Linux everywhere that matters

/**
 * CPU seconds (user + system) used so far by a process and all its descendants (nginx's worker,
 * cluster workers). Divided by the requests served it gives the CPU cost per request, which a shared,
 * busy machine distorts far less than requests per second.
 */
export async function cpuSeconds(pid: number): Promise<number> {
  const { readFile, readdir } = await import('node:fs/promises')
  let ticks = 0
  const visit = async (id: number): Promise<void> => {
    const stat = await readFile(`/proc/${id}/stat`, 'utf8').catch(() => '')
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0)
    const tasks = await readdir(`/proc/${id}/task`).catch(() => [] as string[])
    for (const task of tasks) {
      const children = await readFile(`/proc/${id}/task/${task}/children`, 'utf8').catch(() => '')
      for (const child of children.split(' ').filter(Boolean)) await visit(Number(child))
    }
  }
  await visit(pid)
  return ticks / CLOCK_TICKS_PER_SECOND
}

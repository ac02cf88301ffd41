// Load from a separate process: wrk (Debian package), one thread, a fixed number of keep-alive
// connections. Every request carries an IAP assertion from a file: one token is sent as a static
// header (wrk's fast path); several are rotated, one per request (each then costs a verification).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from './processes.ts'

export interface LoadResult {
  readonly requestsPerSecond: number
  readonly requests: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly non2xx: number
}

const SCRIPT = `
local tokens = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  if #tokens == 1 then
    wrk.headers["x-goog-iap-jwt-assertion"] = tokens[1]
  else
    request = function()
      i = i % #tokens + 1
      return wrk.format(nil, nil, { ["x-goog-iap-jwt-assertion"] = tokens[i] })
    end
  end
end
`

export function writeWrkScript(dir: string): string {
  const path = join(dir, 'assertions.lua')
  writeFileSync(path, SCRIPT)
  return path
}

export interface LoadOptions {
  readonly url: string
  readonly connections: number
  readonly durationS: number
  readonly script: string
  /** One token per line; the path is passed, never a token (tokens stay off command lines). */
  readonly tokenFile: string
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  const output = await run('wrk', [
    '-t1',
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    '--timeout',
    '10s',
    '--latency',
    '-s',
    options.script,
    options.url,
    '--',
    options.tokenFile,
  ])
  return parseWrk(output)
}

export function parseWrk(output: string): LoadResult {
  const number = (pattern: RegExp): number => {
    const match = pattern.exec(output)
    return match === null ? 0 : Number(match[1])
  }
  const latency = (percent: string): number => {
    const match = new RegExp(`^\\s+${percent}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(output)
    if (match === null) throw new Error(`wrk output without a ${percent}% latency:\n${output}`)
    const unit = match[2] === 'us' ? 0.001 : match[2] === 'ms' ? 1 : 1000
    return Number(match[1]) * unit
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  return {
    requestsPerSecond: number(/^Requests\/sec:\s+([\d.]+)/m),
    requests: number(/^\s+(\d+) requests in/m),
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    errors: socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/),
  }
}

// The processes under test. Each is started once per run and kept up while the rounds interleave.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../dev/free-port.ts'
import { AUDIENCE } from './assertions.ts'
import { type Started, start } from './processes.ts'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
export const ROOT = here('..')
export const GATEWAY_MAIN = join(ROOT, 'dist/proxy/main.js')

export async function startUpstream(dir: string): Promise<Started> {
  const port = await freePort()
  return start({
    name: 'upstream',
    command: process.execPath,
    args: [here('./upstream.ts')],
    env: { PORT: String(port) },
    port,
    readyPath: '/',
    logFile: join(dir, 'upstream.log'),
  })
}

export interface GatewayOptions {
  readonly name: string
  readonly upstreamUrl: string
  readonly keysUrl: string
  readonly iap: boolean
  readonly accessLog: boolean
  /** More than one: node:cluster workers sharing the port (bench/cluster.ts). */
  readonly workers?: number
  readonly nodeArgs?: readonly string[]
  readonly logDir: string
  /** Another build's proxy/main.js, to measure against this one in the same run (`--baseline`). */
  readonly main?: string
}

export function gatewayEnv(options: GatewayOptions, port: number): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    UPSTREAM_URL: options.upstreamUrl,
    ALLOWED_CIDRS: '127.0.0.1/32,::1/128',
    TRUST_PROXY_HOPS: '0',
    LOG_LEVEL: 'info',
    ACCESS_LOG: String(options.accessLog),
    SHUTDOWN_GRACE_MS: '2000',
    ...(options.iap ? { IAP_AUDIENCE: AUDIENCE, IAP_KEYS_URL: options.keysUrl } : { IAP_DISABLED: 'true' }),
  }
}

export async function startGateway(options: GatewayOptions): Promise<Started> {
  const port = await freePort()
  const workers = options.workers ?? 1
  const main = options.main ?? GATEWAY_MAIN
  const args =
    workers > 1
      ? [...(options.nodeArgs ?? []), here('./cluster.ts'), String(workers), main]
      : [...(options.nodeArgs ?? []), main]
  return start({
    name: options.name,
    command: process.execPath,
    args,
    env: gatewayEnv(options, port),
    port,
    readyPath: '/_gateway/readyz',
    logFile: join(options.logDir, `${options.name.replaceAll(/\W+/g, '-')}.log`),
  })
}

export async function startBareProxy(
  dir: string,
  upstreamUrl: string,
  nodeArgs: readonly string[] = [],
): Promise<Started> {
  const port = await freePort()
  return start({
    name: 'bare undici proxy',
    command: process.execPath,
    args: [...nodeArgs, here('./bare-proxy.ts')],
    env: { PORT: String(port), UPSTREAM_URL: upstreamUrl },
    port,
    readyPath: '/',
    logFile: join(dir, 'bare-proxy.log'),
  })
}

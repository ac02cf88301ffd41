// The Cloud Run service as a whole: scaling, the request timeout, the image repository, the gateway
// container, and what every container shares (how its image is built, its CPU and memory limits).
import { resolve } from 'node:path'
import { NAME, NAME_HINT, type Reader, TAG } from './config-reader.ts'
import type { Build, GatewayConfig } from './config-schema.ts'

const CPU = /^(0\.[0-9]+|[1-8])$/
const MEMORY = /^[1-9][0-9]*(Mi|Gi)$/

export function build(
  r: Reader,
  path: string,
  baseDir: string,
  dockerfile: string,
  args: Record<string, string> = {},
): Build {
  const extra = r.map(`${path}.args`)
  for (const [k, v] of Object.entries(extra)) {
    if (typeof v !== 'string') r.problem(`${path}.args.${k}`, 'must be a string', v)
  }
  return {
    context: resolve(baseDir, r.string(`${path}.context`, '.')),
    dockerfile: r.string(`${path}.dockerfile`, dockerfile, /^[^\s]+$/),
    args: { ...args, ...(extra as Record<string, string>) },
  }
}

/**
 * A container's vCPUs. The service runs in the second generation execution environment (the
 * `execution-environment: gen2` annotation, service-yaml.ts), and below 1 vCPU "You must use the first
 * generation execution environment" (cloud.google.com/run/docs/configuring/services/cpu): Cloud Run
 * would refuse the revision at apply, so 0.5 is refused here, at plan.
 */
export function cpu(r: Reader, path: string): string {
  const value = r.string(path, '1', CPU, 'must be a CPU count from 1 to 8')
  if (!r.reported(path) && Number(value) < 1) {
    r.problem(
      path,
      'must be at least 1: the service runs in Cloud Run\'s second generation execution environment, which needs 1 vCPU or more per container ("You must use the first generation execution environment" below 1)',
      value,
    )
  }
  return value
}

export function memory(r: Reader, path: string, fallback: string): string {
  return r.string(path, fallback, MEMORY, 'must be like 512Mi or 2Gi')
}

export interface Scaling {
  minInstances: number
  maxInstances: number
  timeoutSeconds: number
}

export function scaling(r: Reader, flowise: boolean): Scaling {
  const minInstances = r.int('minInstances', 0, 0, 100)
  // Flowise 3.1.4 outside queue mode runs every schedule once per instance ("Running in non-queue mode
  // with node-cron and no distributed locking. If multiple API replicas are running, schedules will be
  // executed once per replica", its own start-up warning): one instance until the deploy offers queue mode.
  const maxInstances = r.int('maxInstances', flowise ? 1 : 3, 1, 1000)
  if (maxInstances < minInstances)
    r.problem('maxInstances', `must be at least minInstances (${minInstances})`, maxInstances)
  return { minInstances, maxInstances, timeoutSeconds: r.int('timeoutSeconds', 3600, 60, 3600) }
}

export function repository(r: Reader, name: string): string {
  return r.string('repository', name, NAME, NAME_HINT)
}

export function gatewayConfig(r: Reader, baseDir: string): GatewayConfig {
  return {
    build: build(r, 'gateway.build', baseDir, 'Dockerfile.proxy'),
    tag: r.string('gateway.tag', '0.1.0', TAG, 'is not a docker tag'),
    cpu: cpu(r, 'gateway.cpu'),
    memory: memory(r, 'gateway.memory', '512Mi'),
    logLevel: r.string(
      'gateway.logLevel',
      'info',
      /^(fatal|error|warn|info|debug|trace)$/,
      'must be a pino level',
    ),
    upstreamTimeoutMs: r.int('gateway.upstreamTimeoutMs', 3_600_000, 1000, 3_600_000),
    shutdownGraceMs: r.int('gateway.shutdownGraceMs', 8000, 0, 9000),
  }
}

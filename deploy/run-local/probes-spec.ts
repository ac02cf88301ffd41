// A container's startupProbe and livenessProbe as Cloud Run reads them, with its defaults and bounds.
//
// Sources (docs corpus, read 2026-12):
// - "Configure container health checks for services", https://cloud.google.com/run/docs/configuring/healthchecks:
//   HTTP, TCP and gRPC startup probes, HTTP and gRPC liveness probes (no TCP liveness probe); an HTTP
//   probe succeeds on a response "between 200 and 400"; a startup probe that does not succeed within
//   failureThreshold * periodSeconds shuts the container down, and for services that window "can't
//   exceed" 240 seconds (project facts, section 3; the jobs page says 600 s for jobs, not services).
//   "A TCP startup probe is automatically configured for a new Cloud Run service" ("The default TCP
//   startup probe"); its values here (timeoutSeconds 240, periodSeconds 240, failureThreshold 1) are
//   that section's as remembered: the stored excerpt ends before them (not re-verified here).
// - Probe fields, Cloud Run Admin API v2 (GoogleCloudRunV2Probe, googleapis.deno.dev/v1/run:v2.ts and
//   cloud.google.com/python/docs/reference/run/latest/google.cloud.run_v2.types.Probe):
//   initialDelaySeconds default 0, at most 240 for a startup probe and 3600 for a liveness probe;
//   periodSeconds default 10, from 1, at most 240 (startup) or 3600 (liveness), and "greater or equal
//   than timeout_seconds"; timeoutSeconds default 1, from 1; failureThreshold default 3, from 1.
//   "Exactly one of httpGet, tcpSocket, or grpc must be specified."
import type { Reader } from './yaml-reader.ts'

export type ProbeKind = 'http' | 'tcp' | 'grpc'

export type Probe = Readonly<{
  /** the YAML path, e.g. spec.template.spec.containers[1].startupProbe */
  field: string
  kind: ProbeKind
  port: number
  /** httpGet only */
  path: string
  headers: readonly (readonly [string, string])[]
  initialDelaySeconds: number
  periodSeconds: number
  timeoutSeconds: number
  failureThreshold: number
  /** Cloud Run's default TCP startup probe, not one the YAML declares */
  implicit: boolean
}>

export const STARTUP_WINDOW_SECONDS = 240

/** The default TCP startup probe of an ingress container that declares none. */
export function defaultStartupProbe(field: string, port: number): Probe {
  return Object.freeze({
    field: `${field}.startupProbe (Cloud Run's default TCP probe)`,
    kind: 'tcp',
    port,
    path: '',
    headers: [],
    initialDelaySeconds: 0,
    periodSeconds: 240,
    timeoutSeconds: 240,
    failureThreshold: 1,
    implicit: true,
  })
}

/**
 * Reads `${field}` (a startupProbe or livenessProbe); `containerPort` is the port a probe without one
 * targets (the ingress container's), undefined for a sidecar, which must name its port.
 */
export function readProbe(
  r: Reader,
  field: string,
  type: 'startup' | 'liveness',
  containerPort: number | undefined,
): Probe | undefined {
  const raw = r.object(field)
  if (raw === undefined) return undefined
  const handlers = (['httpGet', 'tcpSocket', 'grpc'] as const).filter((key) => raw[key] !== undefined)
  if (handlers.length !== 1) {
    r.problem(field, `needs exactly one of httpGet, tcpSocket or grpc (has ${handlers.join(', ') || 'none'})`)
    return undefined
  }
  const handler = handlers[0] as 'httpGet' | 'tcpSocket' | 'grpc'
  if (type === 'liveness' && handler === 'tcpSocket') {
    r.problem(`${field}.tcpSocket`, 'Cloud Run has HTTP and gRPC liveness probes, no TCP one')
  }
  const max = type === 'startup' ? 240 : 3600
  const initialDelaySeconds = r.integer(`${field}.initialDelaySeconds`, 0, 0, max)
  const periodSeconds = r.integer(`${field}.periodSeconds`, 10, 1, max)
  const timeoutSeconds = r.integer(`${field}.timeoutSeconds`, 1, 1, 3600)
  const failureThreshold = r.integer(`${field}.failureThreshold`, 3, 1, 1_000_000)
  if (timeoutSeconds > periodSeconds) {
    r.problem(
      `${field}.timeoutSeconds`,
      `${timeoutSeconds} s is longer than periodSeconds (${periodSeconds} s); Cloud Run refuses that`,
    )
  }
  if (type === 'startup' && failureThreshold * periodSeconds > STARTUP_WINDOW_SECONDS) {
    r.problem(
      field,
      `failureThreshold × periodSeconds is ${failureThreshold} × ${periodSeconds} = ` +
        `${failureThreshold * periodSeconds} s, over the ${STARTUP_WINDOW_SECONDS} s Cloud Run allows`,
    )
  }
  const at = `${field}.${handler}`
  const port = r.has(`${at}.port`) ? r.integer(`${at}.port`, 0, 1, 65535) : containerPort
  if (port === undefined) {
    r.problem(`${at}.port`, 'is required: the container declares no port for the probe to default to')
  }
  const headers: [string, string][] = []
  if (handler === 'httpGet') {
    r.list(`${at}.httpHeaders`).forEach((_, i) => {
      headers.push([r.string(`${at}.httpHeaders[${i}].name`), r.string(`${at}.httpHeaders[${i}].value`, '')])
    })
  }
  const path = handler === 'httpGet' ? r.string(`${at}.path`, '/') : ''
  if (handler === 'httpGet' && !path.startsWith('/')) r.problem(`${at}.path`, 'must start with /', path)
  return Object.freeze({
    field,
    kind: handler === 'httpGet' ? 'http' : handler === 'tcpSocket' ? 'tcp' : 'grpc',
    port: port ?? 0,
    path,
    headers,
    initialDelaySeconds,
    periodSeconds,
    timeoutSeconds,
    failureThreshold,
    implicit: false,
  })
}

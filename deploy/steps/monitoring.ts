// Step 10: what operators watch. Log-based metrics from the gateway's own access-log lines
// (proxy/access-log.ts: `message` "request refused" / "upstream failed" with `reason`, and Cloud Logging's
// `httpRequest` with `latency`), and one alert policy for a burst of refusals or upstream failures, sent to
// the configured notification channel. docs/operations.md has the same filters as log queries.
//
// Cloud Run sends a container's stdout to the log `run.googleapis.com/stdout` of the `cloud_run_revision`
// resource; a JSON line becomes `jsonPayload`, with `severity` and `httpRequest` lifted into the entry
// (cloud.google.com/run/docs/logging; logging/docs/structured-logging, "special JSON fields"). Only the
// gateway writes these messages, so the filters need no container label.
import type { DeployConfig } from '../config.ts'
import { differences } from '../service-yaml.ts'
import { names } from './names.ts'
import { type Command, cmd, type Resource, type Step } from './types.ts'

/** The gateway's log messages, exactly as proxy/access-log.ts writes them. */
export const GATEWAY_MESSAGES = {
  refused: 'request refused',
  upstreamFailed: 'upstream failed',
  proxied: 'request proxied',
  websocket: 'websocket proxied',
} as const

/** Lines of this deployment's gateway (every revision), as a Logging filter. */
export function gatewayLines(c: DeployConfig): string {
  return [
    'resource.type="cloud_run_revision"',
    `resource.labels.service_name="${names(c).service}"`,
    `logName="projects/${c.project}/logs/run.googleapis.com%2Fstdout"`,
  ].join(' AND ')
}

export function metricNames(c: DeployConfig) {
  return {
    refusals: `${c.name}-gateway-refusals`,
    upstreamErrors: `${c.name}-gateway-upstream-errors`,
    latency: `${c.name}-gateway-latency`,
  }
}

/** A LogMetric (Logging API v2) as the deploy writes it. */
export interface LogMetric {
  name: string
  description: string
  filter: string
  metricDescriptor: {
    metricKind: string
    valueType: string
    unit: string
    labels?: { key: string; valueType: string; description: string }[]
  }
  labelExtractors?: Record<string, string>
  valueExtractor?: string
  bucketOptions?: { exponentialBuckets: { numFiniteBuckets: number; growthFactor: number; scale: number } }
}

/** `logging metrics describe`: the LogMetric, with what Google adds; the deploy's fields are compared. */
export type LiveLogMetric = Partial<LogMetric>

/** The LogMetric bodies (Logging API v2), as `gcloud logging metrics create --config-from-file` takes them. */
export function logMetrics(c: DeployConfig): LogMetric[] {
  const m = metricNames(c)
  const reasonLabel = {
    labels: [{ key: 'reason', valueType: 'STRING', description: 'the gateway refusal reason' }],
  }
  const any = Object.values(GATEWAY_MESSAGES)
    .map((s) => `"${s}"`)
    .join(' OR ')
  return [
    {
      name: m.refusals,
      description: 'Requests the gateway refused, by reason (network, IAP assertion, request shape)',
      filter: `${gatewayLines(c)} AND jsonPayload.message="${GATEWAY_MESSAGES.refused}"`,
      metricDescriptor: { metricKind: 'DELTA', valueType: 'INT64', unit: '1', ...reasonLabel },
      labelExtractors: { reason: 'EXTRACT(jsonPayload.reason)' },
    },
    {
      name: m.upstreamErrors,
      description: 'Requests the gateway admitted but the app failed (refused, reset, timed out), by reason',
      filter: `${gatewayLines(c)} AND jsonPayload.message="${GATEWAY_MESSAGES.upstreamFailed}"`,
      metricDescriptor: { metricKind: 'DELTA', valueType: 'INT64', unit: '1', ...reasonLabel },
      labelExtractors: { reason: 'EXTRACT(jsonPayload.reason)' },
    },
    {
      name: m.latency,
      description: 'Time the gateway took per request, refusals included (seconds)',
      filter: `${gatewayLines(c)} AND jsonPayload.message=(${any})`,
      metricDescriptor: { metricKind: 'DELTA', valueType: 'DISTRIBUTION', unit: 's' },
      // The gateway writes latency as "0.012345s" (a Duration in the LogEntry's httpRequest).
      valueExtractor: 'REGEXP_EXTRACT(httpRequest.latency, "([0-9.]+)s")',
      // 1 ms to about 4.6 hours in 24 doublings: uploads and SSE streams run long.
      bucketOptions: { exponentialBuckets: { numFiniteBuckets: 24, growthFactor: 2, scale: 0.001 } },
    },
  ]
}

export function alertPolicyName(c: DeployConfig): string {
  return `${c.name} gateway: refusals or upstream failures`
}

/** An AlertPolicy (Monitoring API v3) as the deploy writes it. */
export interface AlertPolicy {
  displayName: string
  documentation: { mimeType: string; content: string }
  combiner: string
  conditions: {
    displayName: string
    conditionThreshold: {
      filter: string
      aggregations: { alignmentPeriod: string; perSeriesAligner: string; crossSeriesReducer: string }[]
      comparison: string
      thresholdValue: number
      duration: string
      trigger: { count: number }
    }
  }[]
  alertStrategy: { autoClose: string }
  notificationChannels?: string[]
  enabled: boolean
}

/** One entry of `alpha monitoring policies list`: `name` is projects/P/alertPolicies/ID. */
export type ListedAlertPolicy = Partial<AlertPolicy> & { name: string }

/** The AlertPolicy body (Monitoring API v3): a sum over one minute above the configured counts. */
export function alertPolicy(c: DeployConfig): AlertPolicy {
  const m = metricNames(c)
  const threshold = (name: string, metric: string, count: number) => ({
    displayName: name,
    conditionThreshold: {
      filter: `resource.type="cloud_run_revision" AND metric.type="logging.googleapis.com/user/${metric}"`,
      aggregations: [
        { alignmentPeriod: '60s', perSeriesAligner: 'ALIGN_SUM', crossSeriesReducer: 'REDUCE_SUM' },
      ],
      comparison: 'COMPARISON_GT',
      thresholdValue: count,
      duration: '0s',
      trigger: { count: 1 },
    },
  })
  return {
    displayName: alertPolicyName(c),
    documentation: {
      mimeType: 'text/markdown',
      content:
        'The iap-gateway in front of this service refused, or failed to reach the app for, more requests than usual. ' +
        'docs/operations.md has the log queries: who was refused and why, whether IAP is failing, whether the app is.',
    },
    combiner: 'OR',
    conditions: [
      threshold(
        `more than ${c.monitoring.refusalsPerMinute} refusals a minute`,
        m.refusals,
        c.monitoring.refusalsPerMinute,
      ),
      threshold(
        `more than ${c.monitoring.upstreamErrorsPerMinute} upstream failures a minute`,
        m.upstreamErrors,
        c.monitoring.upstreamErrorsPerMinute,
      ),
    ],
    alertStrategy: { autoClose: '1800s' },
    ...(c.monitoring.notificationChannel ? { notificationChannels: [c.monitoring.notificationChannel] } : {}),
    enabled: true,
  }
}

/**
 * Fields of `wanted` that `actual` lacks or sets otherwise, by name. What Google adds on read (a
 * condition's name, the metric descriptor's type) is not drift, nor is the order of keys.
 */
function drift<W extends object>(
  wanted: W,
  actual: Partial<W> | undefined,
  fields: (keyof W & string)[],
): string[] {
  return fields.filter((f) => wanted[f] !== undefined && differences(wanted[f], actual?.[f]).length > 0)
}

function metricResource(metric: LogMetric): Resource {
  const file = (verb: string): Command =>
    cmd(['logging', 'metrics', verb, metric.name, '--config-from-file={file:metric-json}'], {
      files: { 'metric-json': `${JSON.stringify(metric, null, 2)}\n` },
      review: [`metric-json: counts ${metric.filter.split(' AND ').at(-1)}`],
    })
  return {
    id: `metric/${metric.name}`,
    title: `log-based metric ${metric.name}`,
    describe: () => ['logging', 'metrics', 'describe', metric.name],
    check: (json) =>
      drift(metric, json, ['filter', 'labelExtractors', 'valueExtractor', 'bucketOptions']).map(
        (f) => `${f} differs`,
      ),
    create: () => [file('create')],
    update: () => [file('update')],
    delete: () => [cmd(['logging', 'metrics', 'delete', metric.name])],
  } satisfies Resource<LiveLogMetric>
}

/** Monitoring answers this until a just-made log-based metric reaches it (up to ten minutes). */
const METRIC_NOT_YET = /Cannot find metric\(s\) that match type/
const METRIC_NOT_YET_REASON =
  'Monitoring learns a new log-based metric within about 10 minutes: run apply again then'

function policyResource(c: DeployConfig): Resource {
  const wanted = alertPolicy(c)
  const mine = (json: ListedAlertPolicy[] | null) =>
    (json ?? []).find((p) => p.displayName === wanted.displayName)
  /** Ours, once `absent` has said the list holds it. */
  const ours = (json: ListedAlertPolicy[]) => mine(json) as ListedAlertPolicy
  const file = (argv: string[]): Command =>
    cmd([...argv, '--policy-from-file={file:policy-json}'], {
      files: { 'policy-json': `${JSON.stringify(wanted, null, 2)}\n` },
      review: [
        `policy-json: alert when ${wanted.conditions.map((x) => x.displayName).join(' or ')}, to ${c.monitoring.notificationChannel ?? 'no notification channel (monitoring.notificationChannel)'}`,
      ],
      pending: { when: METRIC_NOT_YET, reason: METRIC_NOT_YET_REASON },
    })
  return {
    id: 'alert-policy',
    title: `alert policy "${wanted.displayName}"`,
    // gcloud 528 has `monitoring policies` in its alpha track only.
    describe: () => ['alpha', 'monitoring', 'policies', 'list'],
    absent: (json) => mine(json) === undefined,
    learn: (json, x) => x.facts.set('ALERT_POLICY', String(ours(json).name)),
    check: (json) =>
      drift(wanted, mine(json), ['conditions', 'combiner', 'notificationChannels', 'enabled']).map(
        (f) => `${f} differs`,
      ),
    create: () => [file(['alpha', 'monitoring', 'policies', 'create'])],
    update: (_x, json) => [file(['alpha', 'monitoring', 'policies', 'update', String(ours(json).name)])],
    delete: (_x, json) => [cmd(['alpha', 'monitoring', 'policies', 'delete', String(ours(json).name)])],
  } satisfies Resource<ListedAlertPolicy[]>
}

export function monitoringStep(c: DeployConfig): Step {
  return {
    id: 'monitoring',
    title: 'Log-based metrics and alert',
    when: (cfg) => cfg.monitoring.enabled,
    resources: [...logMetrics(c).map(metricResource), policyResource(c)],
  }
}

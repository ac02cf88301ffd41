// The `monitoring` block: the log-based metrics and the alert policy `apply` makes from the gateway's own
// log lines (docs/operations.md lists them). The alert goes to a notification channel only when one is
// named: channels (e-mail, Slack, PagerDuty) are made once by a person, in the console or with
// `gcloud beta monitoring channels create`, and carry addresses this config has no business holding.
import type { Reader } from './config-reader.ts'

export interface MonitoringConfig {
  /** Create the metrics and the alert policy (default true; false leaves any existing ones alone). */
  enabled: boolean
  /** `projects/PROJECT/notificationChannels/ID`; without one the policy opens incidents but tells nobody. */
  notificationChannel?: string
  /** Refusals in one minute, across all instances, that open an incident. */
  refusalsPerMinute: number
  /** Upstream failures (the app down, slow or refusing) in one minute that open an incident. */
  upstreamErrorsPerMinute: number
}

export const MONITORING_FIELDS = [
  'enabled',
  'notificationChannel',
  'refusalsPerMinute',
  'upstreamErrorsPerMinute',
] satisfies (keyof MonitoringConfig)[]

export function monitoringConfig(r: Reader, project: string): MonitoringConfig {
  const out: MonitoringConfig = {
    enabled: r.bool('monitoring.enabled', true),
    refusalsPerMinute: r.int('monitoring.refusalsPerMinute', 50, 1, 1_000_000),
    upstreamErrorsPerMinute: r.int('monitoring.upstreamErrorsPerMinute', 5, 1, 1_000_000),
  }
  if (r.has('monitoring.notificationChannel')) {
    const channel = r.string(
      'monitoring.notificationChannel',
      undefined,
      /^projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/notificationChannels\/[0-9]+$/,
      'must be a channel name like projects/PROJECT/notificationChannels/123 (gcloud beta monitoring channels list)',
    )
    // Monitoring refuses a channel of another project in a policy of this one.
    if (!r.reported('monitoring.notificationChannel') && !channel.startsWith(`projects/${project}/`))
      r.problem('monitoring.notificationChannel', `must be a channel of the project ${project}`, channel)
    out.notificationChannel = channel
  }
  return out
}

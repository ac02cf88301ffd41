// Cloud Logging v2 log-based metrics and Cloud Monitoring v3 alert policies, as `gcloud logging metrics`
// and `gcloud alpha monitoring policies` call them. Sources at each rule: the LogMetric and AlertPolicy
// REST references, and the issue threads for what Monitoring answers about a metric created moments ago.
import type { ApiJson, FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

const METRICS = '^/logging/v2/projects/([^/]+)/metrics'
const POLICIES = '^/monitoring/v3/projects/([^/]+)/alertPolicies'

/**
 * What the LogMetric reference requires: a filter ("Required. An advanced logs filter"); a distribution
 * needs a value extractor ("A value_extractor is required when using a distribution logs-based metric");
 * "Each label in the metric descriptor must have a matching label name as the key and an extractor
 * expression as the value in the label_extractors map".
 */
function metricProblem(body: ApiJson): string | undefined {
  if (!body?.filter) return 'filter is required'
  const d = body.metricDescriptor ?? {}
  if (d.valueType === 'DISTRIBUTION' && !body.valueExtractor)
    return 'a distribution metric needs a value_extractor'
  for (const label of d.labels ?? []) {
    if (!body.labelExtractors?.[label.key]) return `label ${label.key} has no label extractor`
  }
  return undefined
}

/**
 * A policy whose condition names a log-based metric Monitoring does not know yet is refused with 404:
 * "Cannot find metric(s) that match type = "logging.googleapis.com/user/NAME". If a metric was created
 * recently, it could take up to 10 minutes to become available. Please try again soon."
 * (hashicorp/terraform-provider-google#11102; GoogleCloudPlatform/cloud-foundation-fabric#3739). Metrics
 * made while `fake.metricsArriveLate` is set stay unknown until `fake.metricsArrived()`.
 */
function unknownMetric(fake: FakeGcp, project: string, body: ApiJson): Reply | undefined {
  for (const c of body?.conditions ?? []) {
    const type = /metric\.type\s*=\s*"logging\.googleapis\.com\/user\/([^"]+)"/.exec(
      c.conditionThreshold?.filter ?? '',
    )?.[1]
    if (type && (!fake.resources.has(`log-metric:${project}/${type}`) || fake.lateMetrics.has(type))) {
      return {
        status: 404,
        body: {
          error: {
            code: 404,
            message: `Cannot find metric(s) that match type = "logging.googleapis.com/user/${type}". If a metric was created recently, it could take up to 10 minutes to become available. Please try again soon.`,
            status: 'NOT_FOUND',
          },
        },
      }
    }
  }
  return undefined
}

export function observabilityRoutes(): Route[] {
  return [
    {
      method: 'POST',
      re: new RegExp(`${METRICS}$`),
      handle: ({ fake, m, body }) => {
        const k = `log-metric:${m[1]}/${body?.name}`
        if (fake.resources.has(k)) return conflict(`metric ${body.name}`)
        const problem = metricProblem(body)
        if (problem) return badRequest(problem)
        if (fake.metricsArriveLate) fake.lateMetrics.add(body.name)
        fake.resources.set(k, { ...body, createTime: '2026-01-01T00:00:00Z' })
        return { status: 200, body: fake.resources.get(k) }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${METRICS}/([^/]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`log-metric:${m[1]}/${m[2]}`), `metric ${m[2]}`),
    },
    {
      method: 'PUT',
      re: new RegExp(`${METRICS}/([^/]+)$`),
      handle: ({ fake, m, body }) => {
        const k = `log-metric:${m[1]}/${m[2]}`
        if (!fake.resources.has(k)) return notFound(`metric ${m[2]}`)
        const problem = metricProblem(body)
        if (problem) return badRequest(problem)
        fake.resources.set(k, { ...fake.resources.get(k), ...body })
        return { status: 200, body: fake.resources.get(k) }
      },
    },
    {
      method: 'DELETE',
      re: new RegExp(`${METRICS}/([^/]+)$`),
      handle: ({ fake, m }) =>
        fake.resources.delete(`log-metric:${m[1]}/${m[2]}`)
          ? { status: 200, body: {} }
          : notFound(`metric ${m[2]}`),
    },
    {
      method: 'GET',
      re: new RegExp(`${POLICIES}$`),
      handle: ({ fake, m }) => {
        const alertPolicies = [...fake.resources]
          .filter(([k]) => k.startsWith(`alert-policy:${m[1]}/`))
          .map(([, v]) => v)
        return { status: 200, body: { alertPolicies, totalSize: alertPolicies.length } }
      },
    },
    {
      method: 'POST',
      re: new RegExp(`${POLICIES}$`),
      handle: ({ fake, m, body }) => {
        const refused = unknownMetric(fake, m[1] as string, body)
        if (refused) return refused
        // The name is assigned by Monitoring: projects/P/alertPolicies/ID (AlertPolicy reference).
        const name = `projects/${m[1]}/alertPolicies/${fake.id()}`
        const policy = { ...body, name }
        fake.resources.set(`alert-policy:${m[1]}/${name.split('/').pop()}`, policy)
        return { status: 200, body: policy }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${POLICIES}/([^/]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`alert-policy:${m[1]}/${m[2]}`), `policy ${m[2]}`),
    },
    {
      method: 'PATCH',
      re: new RegExp(`${POLICIES}/([^/]+)$`),
      handle: ({ fake, m, body }) => {
        const k = `alert-policy:${m[1]}/${m[2]}`
        if (!fake.resources.has(k)) return notFound(`policy ${m[2]}`)
        const refused = unknownMetric(fake, m[1] as string, body)
        if (refused) return refused
        fake.resources.set(k, { ...body, name: fake.resources.get(k).name })
        return { status: 200, body: fake.resources.get(k) }
      },
    },
    {
      method: 'DELETE',
      re: new RegExp(`${POLICIES}/([^/]+)$`),
      handle: ({ fake, m }) =>
        fake.resources.delete(`alert-policy:${m[1]}/${m[2]}`)
          ? { status: 200, body: {} }
          : notFound(`policy ${m[2]}`),
    },
  ]
}

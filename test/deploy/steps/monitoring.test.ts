// The monitoring step's resources over what gcloud prints: `logging metrics describe` (a LogMetric, with
// what Google adds) and `alpha monitoring policies list` (AlertPolicy entries, `name` assigned by
// Monitoring). What is drift, what is absent, which policy an update or delete names, where alerts go.
import t from 'tap'
import type { DeployConfig } from '../../../deploy/config.ts'
import { alertPolicy, alertPolicyName, logMetrics, monitoringStep } from '../../../deploy/steps/monitoring.ts'
import type { Context, Resource } from '../../../deploy/steps/types.ts'
import { cannedConfig } from '../canned-gcloud.ts'

const CHANNEL = 'projects/demo-project/notificationChannels/42'
const NAME = 'projects/demo-project/alertPolicies/77'

function context(c: DeployConfig): Context {
  const facts = new Map<string, string>()
  return { config: c, facts, fact: (n) => facts.get(n) ?? `\${${n}}` }
}
function resource(c: DeployConfig, id: string): Resource<unknown> {
  const r = monitoringStep(c).resources.find((x) => x.id === id)
  if (!r) throw new Error(`no resource ${id}`)
  return r
}
/** Our policy as the list prints it: what the deploy wrote, plus Monitoring's name and condition names. */
function listed(c: DeployConfig, change: Record<string, unknown> = {}) {
  const p = alertPolicy(c)
  return {
    ...p,
    name: NAME,
    conditions: p.conditions.map((x, i) => ({ ...x, name: `${NAME}/conditions/${i}` })),
    creationRecord: { mutateTime: '2025-01-01T00:00:00Z' },
    ...change,
  }
}

t.test(
  'alerts go to the configured channel, and the plan says where; none configured, it says so',
  async (t) => {
    const withChannel = cannedConfig({ monitoring: { notificationChannel: CHANNEL } })
    t.same(alertPolicy(withChannel).notificationChannels, [CHANNEL])
    const [create] = resource(withChannel, 'alert-policy').create(context(withChannel))
    t.match(create?.review?.[0], new RegExp(`, to ${CHANNEL}$`))
    t.match(JSON.parse(String(create?.files?.['policy-json'])), { notificationChannels: [CHANNEL] })

    const without = cannedConfig()
    t.notOk('notificationChannels' in alertPolicy(without))
    t.match(
      resource(without, 'alert-policy').create(context(without))[0]?.review?.[0],
      /, to no notification channel \(monitoring\.notificationChannel\)$/,
    )
  },
)

t.test(
  'the step is off with monitoring.enabled: false; the policy is read from the alpha list',
  async (t) => {
    const c = cannedConfig()
    const step = monitoringStep(c)
    t.equal(step.when?.(c), true)
    t.equal(step.when?.(cannedConfig({ monitoring: { enabled: false } })), false)
    // gcloud 528 has `monitoring policies` in its alpha track only.
    t.same(resource(c, 'alert-policy').describe(context(c)), ['alpha', 'monitoring', 'policies', 'list'])
  },
)

t.test('the alert policy is absent unless the list holds one with its display name', async (t) => {
  const c = cannedConfig()
  const policy = resource(c, 'alert-policy')
  const x = context(c)
  t.equal(policy.absent?.([], x), true)
  t.equal(policy.absent?.(null, x), true, 'an empty answer (the engine reads it as null)')
  t.equal(
    policy.absent?.([{ name: 'projects/demo-project/alertPolicies/1', displayName: 'someone else' }], x),
    true,
  )
  t.equal(policy.absent?.([listed(c)], x), false)
})

t.test('a policy changed by hand is drift, by field; what Monitoring adds is not', async (t) => {
  const c = cannedConfig({ monitoring: { notificationChannel: CHANNEL } })
  const policy = resource(c, 'alert-policy')
  const x = context(c)
  t.same(policy.check?.([listed(c)], x), [])
  t.same(policy.check?.([listed(c, { enabled: false, notificationChannels: [] })], x), [
    'notificationChannels differs',
    'enabled differs',
  ])
})

t.test('update and delete name the policy Monitoring assigned, learned from the list', async (t) => {
  const c = cannedConfig()
  const policy = resource(c, 'alert-policy')
  const x = context(c)
  const list = [{ name: 'projects/demo-project/alertPolicies/1', displayName: 'another team' }, listed(c)]
  policy.learn?.(list, x)
  t.equal(x.facts.get('ALERT_POLICY'), NAME)
  t.same(policy.update?.(x, list)[0]?.argv, [
    'alpha',
    'monitoring',
    'policies',
    'update',
    NAME,
    '--policy-from-file={file:policy-json}',
  ])
  t.same(policy.delete?.(x, list)[0]?.argv, ['alpha', 'monitoring', 'policies', 'delete', NAME])
})

t.test(
  'a policy Monitoring refuses for a metric it does not know yet is pending, not a failure',
  async (t) => {
    const c = cannedConfig()
    const [create] = resource(c, 'alert-policy').create(context(c))
    // The 404 Monitoring answers within ten minutes of a new log-based metric (docs/fake-gcp.md, Cloud Monitoring).
    const stderr =
      'ERROR: (gcloud.alpha.monitoring.policies.create) NOT_FOUND: Cannot find metric(s) that match type = "logging.googleapis.com/user/fw-gateway-refusals". If a metric was created recently, it could take up to 10 minutes to become available.'
    t.match(create?.pending?.when.exec(stderr), [String])
    t.match(create?.pending?.reason, /within about 10 minutes: run apply again then/)
  },
)

t.test('a log metric whose filter was edited is drift; Google-added fields are not', async (t) => {
  const c = cannedConfig()
  const [refusals] = logMetrics(c)
  if (!refusals) throw new Error('logMetrics')
  const metric = resource(c, `metric/${refusals.name}`)
  const x = context(c)
  const live = {
    ...refusals,
    metricDescriptor: { ...refusals.metricDescriptor, type: `logging.googleapis.com/user/${refusals.name}` },
    createTime: '2025-01-01T00:00:00Z',
  }
  t.same(metric.check?.(live, x), [])
  t.same(metric.check?.({ ...live, filter: 'severity>=ERROR' }, x), ['filter differs'])
  t.same(metric.describe(x), ['logging', 'metrics', 'describe', refusals.name])
  t.same(metric.create(x)[0]?.argv, [
    'logging',
    'metrics',
    'create',
    refusals.name,
    '--config-from-file={file:metric-json}',
  ])
  const [update] = metric.update?.(x, live) ?? []
  t.same(update?.argv, [
    'logging',
    'metrics',
    'update',
    refusals.name,
    '--config-from-file={file:metric-json}',
  ])
  t.same(
    JSON.parse(String(update?.files?.['metric-json'])),
    refusals,
    'the whole LogMetric the deploy writes',
  )
  t.same(update?.review, [`metric-json: counts jsonPayload.message="request refused"`])
  t.same(metric.delete?.(x, live)[0]?.argv, ['logging', 'metrics', 'delete', refusals.name])
  t.equal(alertPolicyName(c), 'fw gateway: refusals or upstream failures')
})

// The request-path invariants over gcloud's answers (test/deploy/doctor/live.ts: a correct deployment),
// one answer changed per case: what each check says when a resource is gone, shaped otherwise than the
// happy path, or unreadable. apply-doctor.test.ts runs them against the fake through the real gcloud.
import t from 'tap'
import { edgeInvariants } from '../../../deploy/doctor/checks-edge.ts'
import { evaluate, type Outcome } from '../../../deploy/doctor/invariant.ts'
import { Reads } from '../../../deploy/doctor/reads.ts'
import type { GcloudResult } from '../../../deploy/gcloud.ts'
import { type Answers, CannedGcloud, denied, json, notFound } from '../canned-gcloud.ts'
import { config, gateway, IAP_AGENT, live, READ, service } from './live.ts'

async function check(id: string, changes: Partial<Answers> = {}): Promise<Outcome> {
  const inv = edgeInvariants.find((i) => i.id === id)
  if (!inv) throw new Error(`no invariant ${id}`)
  return evaluate(inv, new Reads(new CannedGcloud(live(changes)), config))
}

const withService = (change: (s: ReturnType<typeof service>) => void): GcloudResult => {
  const s = service()
  change(s)
  return json(s)
}
const armor = (rules: unknown) => json([{ name: 'fw-armor', rules }])
const DENY = { priority: 2147483647, action: 'deny(403)', match: { config: { srcIpRanges: ['*'] } } }

t.test('a correct deployment passes every request-path invariant (the fixture is sound)', async (t) => {
  for (const inv of edgeInvariants) t.match(await check(inv.id), { verdict: 'pass' }, inv.id)
})

t.test('no check passes or fails on a read it could not do: could-not-check, with the read', async (t) => {
  const none: Answers = Object.fromEntries(
    Object.entries(live()).map(([k]) => [k, denied('resourcemanager.projects.get')]),
  )
  for (const inv of edgeInvariants) {
    const r = await evaluate(inv, new Reads(new CannedGcloud(none), config))
    t.match(
      r,
      { verdict: 'could-not-check', reason: /^cannot read .*: +- Required 'resourcemanager/ },
      inv.id,
    )
  }
})

t.test(
  'a service, backend or Armor policy that is gone fails the checks on it, saying run apply',
  async (t) => {
    for (const id of [
      'run-ingress',
      'run-default-url',
      'gateway-audience',
      'gateway-network',
      'revision-serving',
    ])
      t.same(await check(id, { [READ.service]: notFound('fw') }), {
        verdict: 'fail',
        reason: 'service fw does not exist (run apply)',
      })
    for (const id of ['iap-enabled', 'armor-attached', 'gateway-audience'])
      t.same(await check(id, { [READ.backend]: notFound('fw-backend') }), {
        verdict: 'fail',
        reason: 'backend service fw-backend does not exist (run apply)',
      })
    for (const id of ['armor-default-deny', 'armor-allow-rules'])
      t.same(await check(id, { [READ.armor]: notFound('fw-armor') }), {
        verdict: 'fail',
        reason: 'Cloud Armor policy fw-armor does not exist (run apply)',
      })
    t.match(await check('tls-policy', { [READ.httpsProxy]: notFound('fw-https-proxy') }), {
      verdict: 'fail',
      reason: 'HTTPS proxy fw-https-proxy does not exist (run apply)',
    })
    t.match(await check('tls-policy', { [READ.sslPolicy]: notFound('fw-ssl-policy') }), {
      verdict: 'fail',
      reason: 'SSL policy fw-ssl-policy does not exist (run apply)',
    })
    t.match(await check('certificate', { [READ.certificate]: notFound('fw-cert') }), {
      verdict: 'fail',
      reason: 'certificate fw-cert does not exist (run apply)',
    })
  },
)

t.test('a project gcloud cannot find is could-not-check, not a FAIL naming service-undefined@', async (t) => {
  for (const id of ['run-invoker', 'gateway-audience']) {
    const r = await check(id, { [READ.project]: notFound('demo-project') })
    t.same(r, { verdict: 'could-not-check', reason: 'cannot read project demo-project: not found' }, id)
  }
})

// Cloud Run omits the ingress annotation when it is the default, `all` (Admin API v1, Service metadata:
// "run.googleapis.com/ingress ... all (default)").
t.test('a service without the ingress annotation is open to all: run-ingress fails', async (t) => {
  const svc = withService((s) => {
    delete (s.metadata.annotations as Record<string, string>)['run.googleapis.com/ingress']
  })
  t.match(await check('run-ingress', { [READ.service]: svc }), {
    verdict: 'fail',
    reason: /^ingress is all:/,
  })
})

t.test('the run.app URL counts as on unless the annotation disables it', async (t) => {
  const noAnnotation = withService((s) => {
    delete (s.metadata.annotations as Record<string, string>)['run.googleapis.com/default-url-disabled']
  })
  t.same(await check('run-default-url', { [READ.service]: noAnnotation }), {
    verdict: 'fail',
    reason: 'the service has a run.app URL (annotation missing)',
  })
  const urlToo = withService((s) => Object.assign(s.status, { url: 'https://fw-x.a.run.app' }))
  t.match(await check('run-default-url', { [READ.service]: urlToo }), {
    verdict: 'fail',
    reason: 'the service has a run.app URL (https://fw-x.a.run.app)',
  })
})

t.test('run.invoker held by nobody, or by someone beside the IAP agent, fails', async (t) => {
  const expected = `expected only ${IAP_AGENT}`
  t.same(await check('run-invoker', { [READ.servicePolicy]: notFound('fw') }), {
    verdict: 'fail',
    reason: `run.invoker is held by nobody; ${expected}`,
  })
  // A binding can come back without members (IAM Policy: members is optional).
  t.match(
    await check('run-invoker', { [READ.servicePolicy]: json({ bindings: [{ role: 'roles/run.invoker' }] }) }),
    {
      reason: `run.invoker is held by nobody; ${expected}`,
    },
  )
  const two = json({
    bindings: [{ role: 'roles/run.invoker', members: [IAP_AGENT, 'user:eve@example.com'] }],
  })
  t.same(await check('run-invoker', { [READ.servicePolicy]: two }), {
    verdict: 'fail',
    reason: `run.invoker is held by ${IAP_AGENT}, user:eve@example.com; ${expected}`,
  })
})

t.test('a backend service without an iap block has IAP off', async (t) => {
  const bs = json({ id: '4242', name: 'fw-backend', securityPolicy: 'x/securityPolicies/fw-armor' })
  t.match(await check('iap-enabled', { [READ.backend]: bs }), {
    verdict: 'fail',
    reason: /^IAP is off on fw-backend/,
  })
  t.same(
    await check('armor-attached', {
      [READ.backend]: json({ id: '4242', securityPolicy: 'x/securityPolicies/other' }),
    }),
    {
      verdict: 'fail',
      reason: "the backend service's security policy is x/securityPolicies/other, not fw-armor",
    },
  )
})

t.test("IAP's accessors: one removed by hand is named as missing", async (t) => {
  t.same(await check('iap-accessors', { [READ.iapPolicy]: notFound('fw-backend') }), {
    verdict: 'fail',
    reason: 'missing: user:alice@example.com',
  })
})

t.test("Cloud Armor: the describe as one object (not gcloud 528's list) is read the same", async (t) => {
  const object = json({
    name: 'fw-armor',
    rules: [
      DENY,
      { priority: 1000, action: 'allow', match: { config: { srcIpRanges: ['198.51.100.0/24'] } } },
    ],
  })
  t.match(await check('armor-default-deny', { [READ.armor]: object }), { verdict: 'pass' })
  t.match(await check('armor-allow-rules', { [READ.armor]: object }), { verdict: 'pass' })
})

t.test(
  'Cloud Armor without rules, or allowing by expression, lets the config ranges go missing',
  async (t) => {
    t.same(await check('armor-default-deny', { [READ.armor]: armor(undefined) }), {
      verdict: 'fail',
      reason: 'default rule is missing: addresses outside allowedCidrs get through',
    })
    t.same(await check('armor-allow-rules', { [READ.armor]: armor(undefined) }), {
      verdict: 'fail',
      reason: 'missing: 198.51.100.0/24',
    })
    // A rule may match a CEL expression instead of ranges (SecurityPolicyRule.match.expr): it allows no range.
    const byExpr = armor([{ priority: 1000, action: 'allow', match: { expr: { expression: 'true' } } }, DENY])
    t.same(await check('armor-allow-rules', { [READ.armor]: byExpr }), {
      verdict: 'fail',
      reason: 'missing: 198.51.100.0/24',
    })
  },
)

t.test('an SSL policy other than MODERN, TLS 1.2+ fails, naming what it is', async (t) => {
  const compatible = json({ name: 'fw-ssl-policy', profile: 'COMPATIBLE', minTlsVersion: 'TLS_1_0' })
  t.same(await check('tls-policy', { [READ.sslPolicy]: compatible }), {
    verdict: 'fail',
    reason: 'fw-ssl-policy is COMPATIBLE, minimum TLS_1_0',
  })
})

t.test('a certificate for another domain, or still provisioning, fails with its status', async (t) => {
  const cert = (managed: unknown) => json({ name: 'fw-cert', type: 'MANAGED', managed })
  t.same(
    await check('certificate', {
      [READ.certificate]: cert({ status: 'ACTIVE', domains: ['other.example.com'] }),
    }),
    {
      verdict: 'fail',
      reason: 'the certificate is for other.example.com',
    },
  )
  t.same(
    await check('certificate', { [READ.certificate]: json({ name: 'fw-cert', type: 'SELF_MANAGED' }) }),
    {
      verdict: 'fail',
      reason: 'the certificate is for no domain',
    },
  )
  // SslCertificate.managed.domainStatus: per-domain status, e.g. FAILED_NOT_VISIBLE while DNS points elsewhere.
  const notVisible = cert({
    status: 'PROVISIONING',
    domains: ['flowise.example.com'],
    domainStatus: { 'flowise.example.com': 'FAILED_NOT_VISIBLE' },
  })
  t.same(await check('certificate', { [READ.certificate]: notVisible }), {
    verdict: 'fail',
    reason:
      "PROVISIONING (flowise.example.com: FAILED_NOT_VISIBLE): DNS must point at the load balancer's address",
  })
  t.match(await check('certificate', { [READ.certificate]: cert({ domains: ['flowise.example.com'] }) }), {
    reason: /^no status: DNS must point/,
  })
})

t.test(
  "the gateway's IAP_AUDIENCE unset (or from a secret, no value) fails: every request would be refused",
  async (t) => {
    const noAudience = json(service(gateway().filter((e) => e.name !== 'IAP_AUDIENCE')))
    t.match(await check('gateway-audience', { [READ.service]: noAudience }), {
      verdict: 'fail',
      reason:
        /^IAP_AUDIENCE is unset, the backend service's audience is \/projects\/123456789012\/global\/backendServices\/4242/,
    })
    // An env entry set by valueFrom (a secret reference) has no value (Knative EnvVar).
    const fromSecret = json(
      service([...gateway().filter((e) => e.name !== 'IAP_AUDIENCE'), { name: 'IAP_AUDIENCE' }]),
    )
    t.match(await check('gateway-audience', { [READ.service]: fromSecret }), {
      verdict: 'fail',
      reason: /^IAP_AUDIENCE is ,/,
    })
    const noGateway = withService((s) => {
      s.spec.template.spec.containers = s.spec.template.spec.containers.filter((c) => c.name !== 'gateway')
    })
    t.match(await check('gateway-audience', { [READ.service]: noGateway }), {
      reason: /^IAP_AUDIENCE is unset/,
    })
  },
)

t.test("the gateway's network settings unset fail, each named", async (t) => {
  const bare = withService((s) => {
    delete (s.spec.template.spec as { containers?: unknown }).containers
  })
  t.same(await check('gateway-network', { [READ.service]: bare }), {
    verdict: 'fail',
    reason: 'ALLOWED_CIDRS is unset (config: 198.51.100.0/24); TRUST_PROXY_HOPS is unset (config: 2)',
  })
})

// proto3 JSON leaves a zero out: a 0% target comes back without `percent` (TrafficTarget.percent).
t.test('a 0% traffic target reads as 0%, not "undefined%"; no traffic at all says none', async (t) => {
  const none = withService((s) => {
    delete (s.status as { traffic?: unknown }).traffic
  })
  t.same(await check('revision-serving', { [READ.service]: none }), {
    verdict: 'fail',
    reason: 'fw-00001-abc serves 0% (traffic: none); after a rollback, set the version back and apply',
  })
  const noPercent = withService((s) => {
    s.status.traffic = [{ revisionName: 'fw-00001-abc' } as (typeof s.status.traffic)[0]]
  })
  t.match(await check('revision-serving', { [READ.service]: noPercent }), {
    reason: /serves 0% \(traffic: fw-00001-abc 0%\)/,
  })
})

t.test('public members bound to any role on the service fail before the invoker is looked at', async (t) => {
  const open = json({
    bindings: [
      { role: 'roles/run.invoker', members: [IAP_AGENT] },
      { role: 'roles/run.viewer', members: ['allAuthenticatedUsers'] },
    ],
  })
  t.same(await check('run-invoker', { [READ.servicePolicy]: open }), {
    verdict: 'fail',
    reason: 'public members are bound: allAuthenticatedUsers (roles/run.viewer)',
  })
})

t.test("an IAP accessor added by hand is named, apart from the config's", async (t) => {
  const extra = json({
    bindings: [
      {
        role: 'roles/iap.httpsResourceAccessor',
        members: ['user:alice@example.com', 'user:mallory@example.com'],
      },
    ],
  })
  t.same(await check('iap-accessors', { [READ.iapPolicy]: extra }), {
    verdict: 'fail',
    reason: 'not in the config: user:mallory@example.com',
  })
})

t.test('a backend service without a security policy has no Cloud Armor', async (t) => {
  t.same(await check('armor-attached', { [READ.backend]: json({ id: '4242', iap: { enabled: true } }) }), {
    verdict: 'fail',
    reason: "the backend service's security policy is none, not fw-armor",
  })
})

t.test("an HTTPS proxy without an SSL policy gets Google's default, which allows TLS 1.0", async (t) => {
  t.same(await check('tls-policy', { [READ.httpsProxy]: json({ name: 'fw-https-proxy' }) }), {
    verdict: 'fail',
    reason: "no SSL policy: Google's default allows TLS 1.0",
  })
})

// The invariants of the path a request takes: load balancer (TLS policy, certificate), Cloud Armor, IAP,
// and the Cloud Run service behind them (ingress, run.app URL, invoker, the gateway's environment, the
// serving revision).

import { GATEWAY_CONTAINER } from '../service-yaml.ts'
import { allowRules, type BackendService } from '../steps/edge.ts'
import { membersOf } from '../steps/iam.ts'
import { names } from '../steps/names.ts'
import { readinessProblems } from '../steps/run.ts'
import type { LiveService } from '../upgrade.ts'
import { fail, type Invariant, need, one, pass, projectNumber, sameSet } from './invariant.ts'
import type { Reads } from './reads.ts'

const PUBLIC = ['allUsers', 'allAuthenticatedUsers']
const DEFAULT_RULE = 2147483647

async function service(r: Reads): Promise<LiveService | undefined> {
  return need(await r.service(), `Cloud Run service ${names(r.config).service}`)
}

async function backend(r: Reads): Promise<BackendService | undefined> {
  return need(await r.backend(), `backend service ${names(r.config).backend}`)
}

function gatewayEnv(svc: LiveService): Record<string, string> {
  const gw = (svc?.spec?.template?.spec?.containers ?? []).find((c) => c.name === GATEWAY_CONTAINER)
  return Object.fromEntries((gw?.env ?? []).map((e): [string, string] => [e.name, String(e.value ?? '')]))
}

/** What `have` holds beyond `wanted`, and what it lacks; undefined when they are the same. */
function setDifference(have: string[], wanted: readonly string[], extraLabel: string): string | undefined {
  const extra = have.filter((x) => !wanted.includes(x))
  const absent = wanted.filter((x) => !have.includes(x))
  if (extra.length === 0 && absent.length === 0) return undefined
  return [
    extra.length ? `${extraLabel}: ${extra.join(', ')}` : '',
    absent.length ? `missing: ${absent.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ')
}

const missing = (what: string) => fail(`${what} does not exist (run apply)`)

export const edgeInvariants: Invariant[] = [
  {
    id: 'run-ingress',
    title: 'Cloud Run ingress is internal-and-cloud-load-balancing',
    check: async (r) => {
      const svc = await service(r)
      if (!svc) return missing(`service ${names(r.config).service}`)
      const ingress = svc.metadata?.annotations?.['run.googleapis.com/ingress'] ?? 'all'
      return ingress === 'internal-and-cloud-load-balancing'
        ? pass('only the load balancer reaches the service')
        : fail(
            `ingress is ${ingress}: the service can be reached without the load balancer, Cloud Armor and IAP`,
          )
    },
  },
  {
    id: 'run-default-url',
    title: 'the run.app URL is disabled',
    check: async (r) => {
      const svc = await service(r)
      if (!svc) return missing(`service ${names(r.config).service}`)
      const disabled = svc.metadata?.annotations?.['run.googleapis.com/default-url-disabled'] === 'true'
      return disabled && !svc.status?.url
        ? pass('run.googleapis.com/default-url-disabled is true')
        : fail(`the service has a run.app URL (${svc.status?.url ?? 'annotation missing'})`)
    },
  },
  {
    id: 'run-invoker',
    title: 'run.invoker is held only by the IAP service agent',
    check: async (r) => {
      const policy = need(await r.servicePolicy(), 'the service IAM policy') ?? {}
      const agent = `serviceAccount:service-${await projectNumber(r)}@gcp-sa-iap.iam.gserviceaccount.com`
      const invokers = membersOf(policy, 'roles/run.invoker')
      const open = (policy.bindings ?? []).flatMap((b) =>
        (b.members ?? []).filter((m: string) => PUBLIC.includes(m)).map((m: string) => `${m} (${b.role})`),
      )
      if (open.length > 0) return fail(`public members are bound: ${open.join(', ')}`)
      return invokers.length === 1 && invokers[0] === agent
        ? pass(`only ${agent}`)
        : fail(`run.invoker is held by ${invokers.join(', ') || 'nobody'}; expected only ${agent}`)
    },
  },
  {
    id: 'iap-enabled',
    title: 'IAP is enabled on the backend service',
    check: async (r) => {
      const bs = await backend(r)
      if (!bs) return missing(`backend service ${names(r.config).backend}`)
      return bs.iap?.enabled === true
        ? pass(`IAP is on for ${names(r.config).backend}`)
        : fail(
            `IAP is off on ${names(r.config).backend}: the gateway refuses everyone, or was meant to be bypassed`,
          )
    },
  },
  {
    id: 'iap-accessors',
    title: "IAP's accessors are exactly the config's iapMembers",
    check: async (r) => {
      const policy = need(await r.iapPolicy(), 'the IAP policy of the backend service') ?? {}
      const have: string[] = membersOf(policy, 'roles/iap.httpsResourceAccessor')
      const diff = setDifference(have, r.config.iapMembers, 'not in the config')
      return diff ? fail(diff) : pass(`${have.length} member(s), as configured`)
    },
  },
  {
    id: 'armor-attached',
    title: 'Cloud Armor is attached to the backend service',
    check: async (r) => {
      const bs = await backend(r)
      if (!bs) return missing(`backend service ${names(r.config).backend}`)
      const armor = names(r.config).armor
      return String(bs.securityPolicy ?? '').endsWith(`/securityPolicies/${armor}`)
        ? pass(`${armor} is attached`)
        : fail(`the backend service's security policy is ${bs.securityPolicy ?? 'none'}, not ${armor}`)
    },
  },
  {
    id: 'armor-default-deny',
    title: "Cloud Armor's default rule denies",
    check: async (r) => {
      const policy = one(need(await r.armor(), `Cloud Armor policy ${names(r.config).armor}`))
      if (!policy) return missing(`Cloud Armor policy ${names(r.config).armor}`)
      const action = (policy.rules ?? []).find((x) => x.priority === DEFAULT_RULE)?.action
      return action?.startsWith('deny')
        ? pass(`default rule: ${action}`)
        : fail(`default rule is ${action ?? 'missing'}: addresses outside allowedCidrs get through`)
    },
  },
  {
    id: 'armor-allow-rules',
    title: "Cloud Armor's allow rules are exactly the config's allowedCidrs",
    check: async (r) => {
      const policy = one(need(await r.armor(), `Cloud Armor policy ${names(r.config).armor}`))
      if (!policy) return missing(`Cloud Armor policy ${names(r.config).armor}`)
      const allowed: string[] = (policy.rules ?? [])
        .filter((x) => x.priority !== DEFAULT_RULE && x.action === 'allow')
        .flatMap((x) => x.match?.config?.srcIpRanges ?? [])
      const wanted = allowRules(r.config).flatMap((x) => x.ranges)
      const diff = setDifference(allowed, wanted, 'allowed but not in the config')
      return diff ? fail(diff) : pass(`${wanted.length} range(s), as configured`)
    },
  },
  {
    id: 'tls-policy',
    title: 'the HTTPS proxy has the MODERN, TLS 1.2+ SSL policy',
    check: async (r) => {
      const proxy = need(await r.httpsProxy(), `HTTPS proxy ${names(r.config).httpsProxy}`)
      if (!proxy) return missing(`HTTPS proxy ${names(r.config).httpsProxy}`)
      if (!proxy.sslPolicy) return fail("no SSL policy: Google's default allows TLS 1.0")
      const name = String(proxy.sslPolicy).split('/').pop() as string
      const policy = need(await r.sslPolicy(name), `SSL policy ${name}`)
      if (!policy) return missing(`SSL policy ${name}`)
      return policy.profile === 'MODERN' && policy.minTlsVersion === 'TLS_1_2'
        ? pass(`${name}: MODERN, TLS 1.2+`)
        : fail(`${name} is ${policy.profile}, minimum ${policy.minTlsVersion}`)
    },
  },
  {
    id: 'certificate',
    title: 'the managed certificate is ACTIVE for the domain',
    check: async (r) => {
      const cert = need(await r.certificate(), `certificate ${names(r.config).cert}`)
      if (!cert) return missing(`certificate ${names(r.config).cert}`)
      const domains: string[] = cert.managed?.domains ?? []
      if (!domains.includes(r.config.domain))
        return fail(`the certificate is for ${domains.join(', ') || 'no domain'}`)
      const status = cert.managed?.status
      const domainStatus = cert.managed?.domainStatus?.[r.config.domain]
      return status === 'ACTIVE'
        ? pass(`ACTIVE for ${r.config.domain}`)
        : fail(
            `${status ?? 'no status'}${domainStatus ? ` (${r.config.domain}: ${domainStatus})` : ''}: DNS must point at the load balancer's address`,
          )
    },
  },
  {
    id: 'gateway-audience',
    title: "the gateway's IAP_AUDIENCE is the backend service's audience",
    check: async (r) => {
      const [svc, bs] = [await service(r), await backend(r)]
      if (!svc || !bs)
        return missing(
          !svc ? `service ${names(r.config).service}` : `backend service ${names(r.config).backend}`,
        )
      const wanted = `/projects/${await projectNumber(r)}/global/backendServices/${bs.id}`
      const have = gatewayEnv(svc).IAP_AUDIENCE
      return have === wanted
        ? pass(wanted)
        : fail(
            `IAP_AUDIENCE is ${have ?? 'unset'}, the backend service's audience is ${wanted}: every request is refused`,
          )
    },
  },
  {
    id: 'gateway-network',
    title: "the gateway's ALLOWED_CIDRS and TRUST_PROXY_HOPS match the config",
    check: async (r) => {
      const svc = await service(r)
      if (!svc) return missing(`service ${names(r.config).service}`)
      const env = gatewayEnv(svc)
      const cidrs = (env.ALLOWED_CIDRS ?? '').split(',').filter(Boolean)
      const problems: string[] = []
      if (!sameSet(cidrs, r.config.allowedCidrs))
        problems.push(
          `ALLOWED_CIDRS is ${env.ALLOWED_CIDRS ?? 'unset'} (config: ${r.config.allowedCidrs.join(',')})`,
        )
      if (env.TRUST_PROXY_HOPS !== String(r.config.trustProxyHops))
        problems.push(
          `TRUST_PROXY_HOPS is ${env.TRUST_PROXY_HOPS ?? 'unset'} (config: ${r.config.trustProxyHops})`,
        )
      return problems.length === 0
        ? pass(`${cidrs.length} range(s), ${env.TRUST_PROXY_HOPS} hop(s)`)
        : fail(problems.join('; '))
    },
  },
  {
    id: 'revision-serving',
    title: 'the latest revision is ready and serves 100% of traffic',
    check: async (r) => {
      const svc = await service(r)
      if (!svc) return missing(`service ${names(r.config).service}`)
      const problems = readinessProblems(svc)
      const latest = svc.status?.latestReadyRevisionName
      const onLatest = (svc.status?.traffic ?? [])
        .filter((t) => t.revisionName === latest)
        .reduce((sum, t) => sum + Number(t.percent ?? 0), 0)
      if (onLatest !== 100) {
        const where = (svc.status?.traffic ?? [])
          .map((t) => `${t.revisionName} ${t.percent ?? 0}%`)
          .join(', ')
        problems.push(
          `${latest} serves ${onLatest}% (traffic: ${where || 'none'}); after a rollback, set the version back and apply`,
        )
      }
      return problems.length === 0 ? pass(`${latest} serves 100%`) : fail(problems.join('; '))
    },
  },
]

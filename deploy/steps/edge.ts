// Steps 8-10 (the parts that exist before the service): Cloud Armor allowlist, the EXTERNAL_MANAGED
// backend service with Armor attached and IAP on, and who may pass IAP. The backend service's id is
// what the gateway's IAP audience names, so it is created before the Cloud Run service.
import type { DeployConfig } from '../config.ts'
import { membersOf, type Policy } from './iam.ts'
import { names } from './names.ts'
import { type Command, cmd, type Resource, type Step } from './types.ts'

const DEFAULT_RULE = 2147483647
const FIRST_ALLOW = 1000
/** A basic Cloud Armor rule matches at most 10 source ranges. */
export const RANGES_PER_RULE = 10
const ACCESSOR = 'roles/iap.httpsResourceAccessor'

export function allowRules(c: DeployConfig): { priority: number; ranges: string[] }[] {
  const rules = []
  for (let i = 0; i < c.allowedCidrs.length; i += RANGES_PER_RULE) {
    rules.push({
      priority: FIRST_ALLOW + i / RANGES_PER_RULE,
      ranges: c.allowedCidrs.slice(i, i + RANGES_PER_RULE),
    })
  }
  return rules
}

function sameRanges(a: string[] = [], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join()
}

/** One rule of a Cloud Armor security policy (compute v1 SecurityPolicyRule). */
interface ArmorRule {
  priority: number
  /** `allow`, `deny(403)`, ... */
  action: string
  match?: { config?: { srcIpRanges?: string[] } }
}

/** `compute security-policies describe`: gcloud 528 prints it as a one-element list. */
type SecurityPolicyJson = { rules?: ArmorRule[] } | { rules?: ArmorRule[] }[]

/** `compute backend-services describe` (compute v1 BackendService), the fields the deploy sets. */
export interface BackendService {
  id: string
  /** The attached Cloud Armor policy's URL, ending /securityPolicies/NAME. */
  securityPolicy?: string
  iap?: { enabled?: boolean; oauth2ClientId?: string }
  /** Each backend's group URL, ending /networkEndpointGroups/NAME for a serverless NEG. */
  backends?: { group: string }[]
}

/** A difference between what exists and the config, and the command that removes it. */
interface Change {
  reason: string
  command: Command
}

function shownRule(rule: ArmorRule): string {
  return `${rule.action} ${(rule.match?.config?.srcIpRanges ?? []).join(',')}`.trim()
}

function armorChanges(c: DeployConfig, json: SecurityPolicyJson | undefined): Change[] {
  const policy = names(c).armor
  const existing = (Array.isArray(json) ? json[0] : json)?.rules ?? []
  const rules = ['compute', 'security-policies', 'rules']
  const out: Change[] = []
  const dflt = existing.find((r) => r.priority === DEFAULT_RULE)
  if (dflt?.action !== 'deny(403)') {
    out.push({
      reason: `default rule: live ${dflt?.action ?? 'none'}, config deny(403)`,
      command: cmd([
        ...rules,
        'update',
        String(DEFAULT_RULE),
        `--security-policy=${policy}`,
        '--action=deny-403',
      ]),
    })
  }
  const wanted = allowRules(c)
  for (const rule of wanted) {
    const have = existing.find((r) => r.priority === rule.priority)
    const args = [
      String(rule.priority),
      `--security-policy=${policy}`,
      '--action=allow',
      `--src-ip-ranges=${rule.ranges.join(',')}`,
    ]
    const config = `config allow ${rule.ranges.join(',')}`
    if (!have) {
      out.push({
        reason: `rule ${rule.priority}: live none, ${config}`,
        command: cmd([...rules, 'create', ...args, '--description=iap-gateway allowlist']),
      })
    } else if (have.action !== 'allow' || !sameRanges(have.match?.config?.srcIpRanges, rule.ranges)) {
      out.push({
        reason: `rule ${rule.priority}: live ${shownRule(have)}, ${config}`,
        command: cmd([...rules, 'update', ...args]),
      })
    }
  }
  for (const r of existing) {
    if (r.priority !== DEFAULT_RULE && !wanted.some((w) => w.priority === r.priority)) {
      out.push({
        reason: `rule ${r.priority}: live ${shownRule(r)}, not in the config`,
        command: cmd([...rules, 'delete', String(r.priority), `--security-policy=${policy}`]),
      })
    }
  }
  return out
}

function backendChanges(c: DeployConfig, json: BackendService | undefined): Change[] {
  const n = names(c)
  const out: Change[] = []
  const attached = json?.securityPolicy
  if (!attached?.endsWith(`/securityPolicies/${n.armor}`)) {
    out.push({
      reason: `security policy: live ${attached?.split('/').pop() ?? 'none'}, config ${n.armor}`,
      command: cmd([
        'compute',
        'backend-services',
        'update',
        n.backend,
        '--global',
        `--security-policy=${n.armor}`,
      ]),
    })
  }
  const client = c.iapOAuthClient
  const enabled = json?.iap?.enabled === true
  const enable = ['iap', 'web', 'enable', '--resource-type=backend-services', `--service=${n.backend}`]
  if (client && (!enabled || json?.iap?.oauth2ClientId !== client.clientId)) {
    out.push({
      reason: enabled
        ? `IAP OAuth client: live ${json?.iap?.oauth2ClientId ?? 'Google-managed'}, config ${client.clientId}`
        : `IAP: live off, config on with OAuth client ${client.clientId}`,
      // The client id is public; the secret goes in a flags file (gcloud 528 takes both flags together).
      command: cmd([...enable, `--oauth2-client-id=${client.clientId}`, '--flags-file={file:iap-flags}'], {
        secretFlags: { file: 'iap-flags', flag: '--oauth2-client-secret', secret: client.secret },
      }),
    })
  } else if (!client && !enabled) {
    out.push({ reason: 'IAP: live off, config on', command: cmd(enable) })
  }
  return out
}

function iapMemberChanges(c: DeployConfig, json: Policy | undefined): Change[] {
  const have = membersOf(json, ACCESSOR)
  const target = [
    '--resource-type=backend-services',
    `--service=${names(c).backend}`,
    `--role=${ACCESSOR}`,
    '--condition=None',
  ]
  return [
    ...c.iapMembers
      .filter((m) => !have.includes(m))
      .map((m) => ({
        reason: `IAP member ${m}: live not granted, config granted`,
        command: cmd(['iap', 'web', 'add-iam-policy-binding', ...target, `--member=${m}`]),
      })),
    ...have
      .filter((m) => !c.iapMembers.includes(m))
      .map((m) => ({
        reason: `IAP member ${m}: live granted, not in the config`,
        command: cmd(['iap', 'web', 'remove-iam-policy-binding', ...target, `--member=${m}`]),
      })),
  ]
}

const reasons = (changes: Change[]) => changes.map((x) => x.reason)
const commands = (changes: Change[]) => changes.map((x) => x.command)

export function edgeStep(c: DeployConfig): Step {
  const n = names(c)
  return {
    id: 'edge',
    title: 'Cloud Armor, backend service and IAP',
    resources: [
      {
        id: 'armor',
        title: `Cloud Armor policy ${n.armor}`,
        describe: () => ['compute', 'security-policies', 'describe', n.armor],
        check: (json) => reasons(armorChanges(c, json)),
        create: () => [
          cmd([
            'compute',
            'security-policies',
            'create',
            n.armor,
            '--description=iap-gateway network allowlist',
          ]),
          ...commands(armorChanges(c, undefined)),
        ],
        update: (_x, json) => commands(armorChanges(c, json)),
        delete: () => [cmd(['compute', 'security-policies', 'delete', n.armor])],
      } satisfies Resource<SecurityPolicyJson>,
      {
        id: 'backend-service',
        title: `backend service ${n.backend}`,
        // IAP's policy on the backend service is NOT_FOUND until the service exists.
        affects: ['iap-access'],
        describe: () => ['compute', 'backend-services', 'describe', n.backend, '--global'],
        learn: (json, x) => x.facts.set('BACKEND_SERVICE_ID', String(json.id)),
        exports: { BACKEND_SERVICE_ID: 'value(id)' },
        check: (json) => reasons(backendChanges(c, json)),
        create: () => [
          cmd([
            'compute',
            'backend-services',
            'create',
            n.backend,
            '--global',
            '--load-balancing-scheme=EXTERNAL_MANAGED',
          ]),
          ...commands(backendChanges(c, undefined)),
        ],
        update: (_x, json) => commands(backendChanges(c, json)),
        delete: () => [cmd(['compute', 'backend-services', 'delete', n.backend, '--global'])],
      } satisfies Resource<BackendService>,
      {
        id: 'iap-access',
        title: 'who may pass IAP (httpsResourceAccessor)',
        describe: () => [
          'iap',
          'web',
          'get-iam-policy',
          '--resource-type=backend-services',
          `--service=${n.backend}`,
        ],
        check: (json) => reasons(iapMemberChanges(c, json)),
        create: () => commands(iapMemberChanges(c, undefined)),
        update: (_x, json) => commands(iapMemberChanges(c, json)),
      } satisfies Resource<Policy>,
    ],
  }
}

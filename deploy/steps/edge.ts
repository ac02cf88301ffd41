// Steps 8-10 (the parts that exist before the service): Cloud Armor allowlist, the EXTERNAL_MANAGED
// backend service with Armor attached and IAP on, and who may pass IAP. The backend service's id is
// what the gateway's IAP audience names, so it is created before the Cloud Run service.
import type { DeployConfig } from '../config.ts'
import { membersOf, names } from './names.ts'
import { type Command, cmd, type Step } from './types.ts'

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

function armorCommands(c: DeployConfig, json: any): Command[] {
  const policy = names(c).armor
  // gcloud 528 prints `security-policies describe` as a one-element list.
  const existing: any[] = (Array.isArray(json) ? json[0] : json)?.rules ?? []
  const out: Command[] = []
  const dflt = existing.find((r) => r.priority === DEFAULT_RULE)
  if (dflt?.action !== 'deny(403)') {
    out.push(
      cmd([
        'compute',
        'security-policies',
        'rules',
        'update',
        String(DEFAULT_RULE),
        `--security-policy=${policy}`,
        '--action=deny-403',
      ]),
    )
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
    if (!have)
      out.push(
        cmd([
          'compute',
          'security-policies',
          'rules',
          'create',
          ...args,
          '--description=iap-gateway allowlist',
        ]),
      )
    else if (have.action !== 'allow' || !sameRanges(have.match?.config?.srcIpRanges, rule.ranges)) {
      out.push(cmd(['compute', 'security-policies', 'rules', 'update', ...args]))
    }
  }
  for (const r of existing) {
    if (r.priority !== DEFAULT_RULE && !wanted.some((w) => w.priority === r.priority)) {
      out.push(
        cmd([
          'compute',
          'security-policies',
          'rules',
          'delete',
          String(r.priority),
          `--security-policy=${policy}`,
        ]),
      )
    }
  }
  return out
}

function backendCommands(c: DeployConfig, json: any): Command[] {
  const n = names(c)
  const out: Command[] = []
  if (!String(json?.securityPolicy ?? '').endsWith(`/securityPolicies/${n.armor}`)) {
    out.push(
      cmd(['compute', 'backend-services', 'update', n.backend, '--global', `--security-policy=${n.armor}`]),
    )
  }
  const client = c.iapOAuthClient
  const enable = ['iap', 'web', 'enable', '--resource-type=backend-services', `--service=${n.backend}`]
  if (client && (json?.iap?.enabled !== true || json?.iap?.oauth2ClientId !== client.clientId)) {
    // The client id is public; the secret goes in a flags file (gcloud 528 takes both flags together).
    out.push(
      cmd([...enable, `--oauth2-client-id=${client.clientId}`, '--flags-file={file:iap-flags}'], {
        secretFlags: { file: 'iap-flags', flag: '--oauth2-client-secret', secret: client.secret },
      }),
    )
  } else if (!client && json?.iap?.enabled !== true) {
    out.push(cmd(enable))
  }
  return out
}

function iapMemberCommands(c: DeployConfig, json: any): Command[] {
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
      .map((m) => cmd(['iap', 'web', 'add-iam-policy-binding', ...target, `--member=${m}`])),
    ...have
      .filter((m) => !c.iapMembers.includes(m))
      .map((m) => cmd(['iap', 'web', 'remove-iam-policy-binding', ...target, `--member=${m}`])),
  ]
}

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
        check: (json) => armorCommands(c, json).map((x) => x.argv.slice(3, 5).join(' ')),
        create: () => [
          cmd([
            'compute',
            'security-policies',
            'create',
            n.armor,
            '--description=iap-gateway network allowlist',
          ]),
          ...armorCommands(c, undefined),
        ],
        update: (_x, json) => armorCommands(c, json),
        delete: () => [cmd(['compute', 'security-policies', 'delete', n.armor])],
      },
      {
        id: 'backend-service',
        title: `backend service ${n.backend}`,
        describe: () => ['compute', 'backend-services', 'describe', n.backend, '--global'],
        learn: (json, x) => x.facts.set('BACKEND_SERVICE_ID', String(json.id)),
        exports: { BACKEND_SERVICE_ID: 'value(id)' },
        check: (json) => backendCommands(c, json).map((x) => x.argv.slice(0, 3).join(' ')),
        create: () => [
          cmd([
            'compute',
            'backend-services',
            'create',
            n.backend,
            '--global',
            '--load-balancing-scheme=EXTERNAL_MANAGED',
          ]),
          ...backendCommands(c, undefined),
        ],
        update: (_x, json) => backendCommands(c, json),
        delete: () => [cmd(['compute', 'backend-services', 'delete', n.backend, '--global'])],
      },
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
        check: (json) => iapMemberCommands(c, json).map((x) => `${x.argv[2]} ${x.argv.at(-1)}`),
        create: () => iapMemberCommands(c, undefined),
        update: (_x, json) => iapMemberCommands(c, json),
      },
    ],
  }
}

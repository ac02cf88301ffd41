// Step 7 (with 11): the Cloud Run multi-container service, applied whole with `run services replace`,
// carrying the IAP audience computed from the project number and the backend service id; and its
// invoker policy: only the IAP service agent may invoke, never allUsers.
import type { DeployConfig } from '../config.ts'
import {
  differences,
  imageRef,
  type ServiceValues,
  serviceObject,
  serviceReview,
  serviceYaml,
} from '../service-yaml.ts'
import { type Binding, membersOf, type Policy } from './iam.ts'
import { names } from './names.ts'
import { type Context, cmd, type Resource, type Step } from './types.ts'

const INVOKER = 'roles/run.invoker'
const PUBLIC = new Set(['allUsers', 'allAuthenticatedUsers'])

export function audience(x: Context): string {
  return `/projects/${x.fact('PROJECT_NUMBER')}/global/backendServices/${x.fact('BACKEND_SERVICE_ID')}`
}

export function serviceValues(x: Context): ServiceValues {
  const c = x.config
  return {
    gatewayImage: imageRef(c, 'gateway', c.gateway.tag),
    appImage: c.app.image ?? imageRef(c, c.app.container, c.app.tag),
    serviceAccount: names(c).serviceAccount,
    audience: audience(x),
    ...(c.database.enabled ? { databasePasswordVersion: x.fact('DATABASE_PASSWORD_VERSION') } : {}),
  }
}

/**
 * Why the service does not serve, read from its status (Cloud Run Admin API v1, ServiceStatus): the
 * Ready condition must be True, and the latest created revision must be the latest ready one ("It might
 * not be ready yet, for that use LatestReadyRevisionName"). A failed first revision leaves the spec as
 * applied, so comparing the spec alone would call it unchanged and never retry.
 */
export function readinessProblems(json: RunService): string[] {
  const status = json.status ?? {}
  const ready = (status.conditions ?? []).find((c) => c.type === 'Ready')
  const out: string[] = []
  if (ready?.status !== 'True') {
    out.push(
      `not ready${ready?.message ? `: ${ready.message}` : ` (Ready is ${ready?.status ?? 'missing'})`}`,
    )
  }
  if (
    status.latestCreatedRevisionName &&
    status.latestCreatedRevisionName !== status.latestReadyRevisionName
  ) {
    out.push(
      `revision ${status.latestCreatedRevisionName} is not the latest ready one (${status.latestReadyRevisionName ?? 'none'})`,
    )
  }
  return out
}

/**
 * `run services describe` (Cloud Run Admin API v1 Service): the spec is compared with the one the
 * deploy writes (service-yaml.ts `differences`), the status says whether it serves.
 */
export interface RunService {
  spec?: unknown
  metadata?: unknown
  status?: {
    conditions?: { type: string; status?: string; message?: string }[]
    latestCreatedRevisionName?: string
    latestReadyRevisionName?: string
  }
}

function iapAgent(x: Context): string {
  return `serviceAccount:service-${x.fact('PROJECT_NUMBER')}@gcp-sa-iap.iam.gserviceaccount.com`
}

/** A policy as `set-iam-policy` is given it: every binding names its members. */
type WrittenPolicy = Omit<Policy, 'bindings'> & { bindings: (Binding & { members: string[] })[] }

/** The policy with the IAP agent as the only invoker and no public member in any binding. */
export function lockedPolicy(x: Context, current: Policy | undefined): WrittenPolicy {
  const bindings = (current?.bindings ?? [])
    .filter((b) => b.role !== INVOKER)
    .map((b) => ({ ...b, members: (b.members ?? []).filter((m) => !PUBLIC.has(m)) }))
    .filter((b) => b.members.length > 0)
  bindings.push({ role: INVOKER, members: [iapAgent(x)] })
  return { bindings, ...(current?.etag ? { etag: current.etag } : {}) }
}

/** What the policy file sets, in one line: the plan shows this instead of the JSON. */
export function policyReview(policy: WrittenPolicy): string[] {
  const bindings = policy.bindings.map((b) => `${b.role} -> ${b.members.join(', ')}`)
  return [`policy-json: replaces the service's IAM policy with: ${bindings.join('; ')}`]
}

function policyProblems(x: Context, json: Policy): string[] {
  const out: string[] = []
  const invokers = membersOf(json, INVOKER)
  if (invokers.length !== 1 || invokers[0] !== iapAgent(x))
    out.push(`run.invoker: live ${invokers.join(', ') || 'none'}, config ${iapAgent(x)} only`)
  for (const b of json.bindings ?? []) {
    const exposed = (b.members ?? []).filter((m) => PUBLIC.has(m))
    // A public invoker is already in the line above.
    if (b.role !== INVOKER && exposed.length > 0)
      out.push(`${b.role}: live ${exposed.join(', ')}, config no public member`)
  }
  return out
}

export function runStep(c: DeployConfig): Step {
  const n = names(c)
  const region = `--region=${c.region}`
  const lock = (x: Context, json: Policy | undefined) => [
    // Creates the IAP service agent if the project has none yet (idempotent on Google's side).
    cmd(['beta', 'services', 'identity', 'create', '--service=iap.googleapis.com']),
    cmd(['run', 'services', 'set-iam-policy', n.service, '{file:policy-json}', region], {
      files: { 'policy-json': JSON.stringify(lockedPolicy(x, json), null, 2) },
      review: policyReview(lockedPolicy(x, json)),
      retryIam: true,
    }),
  ]
  const replace = (x: Context) => [
    cmd(['run', 'services', 'replace', '{file:service-yaml}', region], {
      files: { 'service-yaml': serviceYaml(c, serviceValues(x)) },
      review: serviceReview(serviceObject(c, serviceValues(x))),
      long: true,
    }),
  ]
  return {
    id: 'run',
    title: 'Cloud Run service',
    resources: [
      {
        id: 'service',
        title: `Cloud Run service ${n.service}`,
        affects: ['invoker'],
        describe: () => ['run', 'services', 'describe', n.service, region],
        check: (json, x) => [
          ...differences(serviceObject(c, serviceValues(x)), json),
          ...readinessProblems(json),
        ],
        create: replace,
        update: replace,
        delete: () => [cmd(['run', 'services', 'delete', n.service, region])],
      } satisfies Resource<RunService>,
      {
        id: 'invoker',
        title: 'run.invoker only for the IAP service agent',
        describe: () => ['run', 'services', 'get-iam-policy', n.service, region],
        check: (json, x) => policyProblems(x, json),
        create: (x) => lock(x, undefined),
        update: lock,
      } satisfies Resource<Policy>,
    ],
  }
}

// Compute Engine (v1): global and regional resources, their operations, Armor rules and the
// references between resources (create refuses a dangling reference, delete refuses a resource in use),
// so a wrong order in the deploy fails here as it would on Google's side.
import { createHash } from 'node:crypto'
import type { ApiJson, FakeGcp, Reply, Route } from './server.ts'
import { badRequest, notFound } from './server.ts'

const SCOPE = '/compute/v1/projects/([^/]+)/(global|regions/[^/]+)'
const REF_RE = /projects\/[^/"]+\/(?:global|regions\/[^/"]+)\/[a-zA-Z]+\/[^/"]+/g

function key(project: string, scope: string, collection: string, name: string): string {
  return `compute:projects/${project}/${scope}/${collection}/${name}`
}

function computeError(status: number, reason: string, message: string): Reply {
  return {
    status,
    body: { error: { code: status, message, errors: [{ reason, message, domain: 'global' }] } },
  }
}

function operation(
  fake: FakeGcp,
  base: string,
  project: string,
  scope: string,
  target: string,
  kind: string,
): Reply {
  const name = `operation-${fake.id()}`
  const op = {
    kind: 'compute#operation',
    id: fake.id(),
    name,
    operationType: kind,
    status: 'DONE',
    progress: 100,
    targetLink: target,
    selfLink: `${base}/compute/v1/projects/${project}/${scope}/operations/${name}`,
    // gcloud polls a regional operation only when the operation names its region.
    ...(scope.startsWith('regions/') ? { region: `${base}/compute/v1/projects/${project}/${scope}` } : {}),
  }
  fake.resources.set(`compute-op:${project}/${scope}/${name}`, op)
  return { status: 200, body: op }
}

/** Every compute reference inside a body must name an existing resource. */
function danglingReference(fake: FakeGcp, body: unknown): string | undefined {
  for (const ref of JSON.stringify(body).match(REF_RE) ?? []) {
    if (ref.includes('/operations/')) continue
    if (!fake.resources.has(`compute:${ref}`)) return ref
  }
  return undefined
}

function usedBy(fake: FakeGcp, self: string): string | undefined {
  for (const [k, v] of fake.resources) {
    if (!k.startsWith('compute:') || k === `compute:${self}`) continue
    if ((JSON.stringify(v).match(REF_RE) ?? ([] as string[])).includes(self)) return k
  }
  return undefined
}

function address(fake: FakeGcp, body: ApiJson): string {
  const n = [...fake.resources.keys()].filter((k) => k.includes('/addresses/')).length + 10
  if (body.purpose === 'VPC_PEERING') return '10.60.0.0'
  return body.ipVersion === 'IPV6' ? `2600:1901:0:${n}::` : `34.120.7.${n}`
}

/**
 * IAP's OAuth client secret is input only: Compute keeps its SHA-256 (`iap.oauth2ClientSecretSha256`,
 * "[Output Only]") and never returns the secret (compute/docs/reference/rest/v1/backendServices).
 */
function keepIapSecretHashOnly(fake: FakeGcp, name: string, resource: ApiJson): void {
  const secret = resource.iap?.oauth2ClientSecret
  if (secret === undefined) return
  fake.payloads.set(`iap-client-secret:${name}`, secret)
  const { oauth2ClientSecret: _, ...iap } = resource.iap
  resource.iap = { ...iap, oauth2ClientSecretSha256: createHash('sha256').update(secret).digest('hex') }
}

export function computeRoutes(): Route[] {
  const coll = new RegExp(`^${SCOPE}/([a-zA-Z]+)$`)
  const item = new RegExp(`^${SCOPE}/([a-zA-Z]+)/([^/]+)$`)
  const method = new RegExp(`^${SCOPE}/([a-zA-Z]+)/([^/]+)/([a-zA-Z]+)$`)
  return [
    {
      method: 'GET',
      re: item,
      handle: ({ fake, m }) => {
        const [, p, s, c, n] = m as [string, string, string, string, string]
        const store = c === 'operations' ? `compute-op:${p}/${s}/${n}` : key(p, s, c, n)
        const found = fake.resources.get(store)
        return found ? { status: 200, body: found } : notFound(`projects/${p}/${s}/${c}/${n}`)
      },
    },
    {
      method: 'POST',
      re: new RegExp(`^${SCOPE}/operations/([^/]+)/wait$`),
      handle: ({ fake, m }) => ({
        status: 200,
        body: fake.resources.get(`compute-op:${m[1]}/${m[2]}/${m[3]}`),
      }),
    },
    {
      method: 'GET',
      re: coll,
      handle: ({ fake, m }) => {
        const prefix = key(m[1] as string, m[2] as string, m[3] as string, '')
        const items = [...fake.resources].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v)
        return { status: 200, body: { kind: 'compute#list', items } }
      },
    },
    {
      method: 'POST',
      re: coll,
      handle: ({ fake, m, body, base }) => {
        const [, p, s, c] = m as [string, string, string, string]
        const k = key(p, s, c, body.name)
        const self = `projects/${p}/${s}/${c}/${body.name}`
        if (fake.resources.has(k)) {
          return computeError(409, 'alreadyExists', `The resource '${self}' already exists`)
        }
        const dangling = danglingReference(fake, body)
        if (dangling) return computeError(400, 'invalid', `The resource '${dangling}' was not found`)
        const resource: ApiJson = {
          ...body,
          id: fake.id(),
          creationTimestamp: '2026-01-01T00:00:00.000-00:00',
          selfLink: `${base}/compute/v1/${self}`,
        }
        if (c === 'addresses') resource.address = address(fake, body)
        if (c === 'sslCertificates') {
          resource.managed = { ...body.managed, status: 'PROVISIONING' }
          resource.type = 'MANAGED'
        }
        if (c === 'securityPolicies' && !(body.rules ?? []).some((r: ApiJson) => r.priority === 2147483647)) {
          const dflt = { priority: 2147483647, action: 'allow', match: { config: { srcIpRanges: ['*'] } } }
          resource.rules = [...(body.rules ?? []), dflt]
        }
        fake.resources.set(k, resource)
        return operation(fake, base, p, s, resource.selfLink, 'insert')
      },
    },
    {
      method: 'PUT',
      re: item,
      handle: ({ fake, m, body, base }) => update(fake, m, body, base, false),
    },
    {
      method: 'PATCH',
      re: item,
      handle: ({ fake, m, body, base }) => update(fake, m, body, base, true),
    },
    {
      method: 'DELETE',
      re: item,
      handle: ({ fake, m, base }) => {
        const [, p, s, c, n] = m as [string, string, string, string, string]
        const k = key(p, s, c, n)
        const self = `projects/${p}/${s}/${c}/${n}`
        if (!fake.resources.has(k)) return notFound(self)
        const user = usedBy(fake, self)
        if (user) {
          return computeError(
            400,
            'resourceInUseByAnotherResource',
            `'${self}' is already being used by '${user}'`,
          )
        }
        fake.resources.delete(k)
        // IAP settings and access policy live and die with their backend service.
        if (c === 'backendServices')
          fake.resources.delete(`policy:iap/projects/${fake.projectNumber}/iap_web/compute/services/${n}`)
        return operation(fake, base, p, s, `${base}/compute/v1/${self}`, 'delete')
      },
    },
    { method: 'POST', re: method, handle: (c) => customMethod(c.fake, c.m, c.body, c.query, c.base) },
    { method: 'GET', re: method, handle: (c) => customMethod(c.fake, c.m, c.body, c.query, c.base) },
  ]
}

function update(fake: FakeGcp, m: string[], body: ApiJson, base: string, merge: boolean): Reply {
  const [, p, s, c, n] = m as [string, string, string, string, string]
  const k = key(p, s, c, n)
  const current = fake.resources.get(k)
  if (!current) return notFound(`projects/${p}/${s}/${c}/${n}`)
  const dangling = danglingReference(fake, body)
  if (dangling) return computeError(400, 'invalid', `The resource '${dangling}' was not found`)
  const next = merge ? { ...current, ...body } : { ...body }
  for (const f of ['id', 'selfLink', 'creationTimestamp', 'address']) next[f] = current[f]
  keepIapSecretHashOnly(fake, n, next)
  fake.resources.set(k, next)
  return operation(fake, base, p, s, current.selfLink, 'update')
}

function customMethod(
  fake: FakeGcp,
  m: string[],
  body: ApiJson,
  query: Record<string, string>,
  base: string,
): Reply {
  const [, p, s, c, n, verb] = m as [string, string, string, string, string, string]
  const k = key(p, s, c, n)
  const current = fake.resources.get(k)
  if (!current) return notFound(`projects/${p}/${s}/${c}/${n}`)
  const done = () => operation(fake, base, p, s, current.selfLink, verb)
  const priority = Number(query.priority ?? body?.priority)
  const rules: ApiJson[] = current.rules ?? []
  switch (verb) {
    case 'setSecurityPolicy': {
      const dangling = danglingReference(fake, body)
      if (dangling) return computeError(400, 'invalid', `The resource '${dangling}' was not found`)
      current.securityPolicy = body.securityPolicy
      return done()
    }
    case 'getRule': {
      const rule = rules.find((r) => r.priority === priority)
      return rule
        ? { status: 200, body: rule }
        : badRequest(`Invalid value for field 'priority': '${priority}'`)
    }
    case 'addRule':
      if (rules.some((r) => r.priority === priority)) {
        return computeError(400, 'invalid', `A rule with priority ${priority} already exists`)
      }
      current.rules = [...rules, body].sort((a, b) => a.priority - b.priority)
      return done()
    case 'patchRule': {
      const i = rules.findIndex((r) => r.priority === priority)
      if (i < 0) return badRequest(`Invalid value for field 'priority': '${priority}'`)
      rules[i] = { ...rules[i], ...body, priority }
      return done()
    }
    case 'removeRule':
      if (!rules.some((r) => r.priority === priority)) return badRequest(`no rule at priority ${priority}`)
      current.rules = rules.filter((r) => r.priority !== priority)
      return done()
    default:
      return badRequest(`fake compute has no method ${verb}`)
  }
}

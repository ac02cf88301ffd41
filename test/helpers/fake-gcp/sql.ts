// Cloud SQL Admin API (v1beta4, the version gcloud 528 calls): instances, databases, users, operations.
import type { FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

const INST = '^/sql/v1beta4/projects/([^/]+)/instances'

function op(fake: FakeGcp, project: string, type: string, target: string): Reply {
  const name = `op-${fake.id()}`
  const body = {
    kind: 'sql#operation',
    name,
    status: 'DONE',
    operationType: type,
    targetId: target,
    targetProject: project,
  }
  fake.resources.set(`sql-op:${project}/${name}`, body)
  return { status: 200, body }
}

function peered(fake: FakeGcp, network: string): boolean {
  const name = network.split('/').pop()
  return [...fake.resources.keys()].some((k) => k.startsWith('peering:') && k.endsWith(`/networks/${name}`))
}

export function sqlRoutes(): Route[] {
  return [
    {
      method: 'GET',
      re: /^\/sql\/v1beta4\/projects\/([^/]+)\/operations\/([^/]+)$/,
      handle: ({ fake, m }) => found(fake.resources.get(`sql-op:${m[1]}/${m[2]}`), `operation ${m[2]}`),
    },
    {
      method: 'POST',
      re: new RegExp(`${INST}$`),
      handle: ({ fake, m, body }) => {
        const k = `sql:${m[1]}/${body.name}`
        if (fake.resources.has(k)) return conflict(`instance ${body.name}`)
        const network = body.settings?.ipConfiguration?.privateNetwork
        if (network && !peered(fake, network)) {
          return badRequest('Private services access is not configured for the network')
        }
        fake.resources.set(k, {
          ...body,
          kind: 'sql#instance',
          project: m[1],
          state: 'RUNNABLE',
          serverCaCert: {
            kind: 'sql#sslCert',
            cert: '-----BEGIN CERTIFICATE-----\nZmFrZSBDbG91ZCBTUUwgQ0E=\n-----END CERTIFICATE-----\n',
          },
          connectionName: `${m[1]}:${body.region}:${body.name}`,
          ipAddresses: network
            ? [{ type: 'PRIVATE', ipAddress: '10.60.0.3' }]
            : [{ type: 'PRIMARY', ipAddress: '35.1.1.1' }],
        })
        return op(fake, m[1] as string, 'CREATE', body.name)
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${INST}/([^/]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`sql:${m[1]}/${m[2]}`), `instance ${m[2]}`),
    },
    {
      method: 'PATCH',
      re: new RegExp(`${INST}/([^/]+)$`),
      handle: ({ fake, m, body }) => {
        const current = fake.resources.get(`sql:${m[1]}/${m[2]}`)
        if (!current) return notFound(`instance ${m[2]}`)
        current.settings = { ...current.settings, ...body.settings }
        return op(fake, m[1] as string, 'UPDATE', m[2] as string)
      },
    },
    {
      method: 'DELETE',
      re: new RegExp(`${INST}/([^/]+)$`),
      handle: ({ fake, m }) => {
        const k = `sql:${m[1]}/${m[2]}`
        const current = fake.resources.get(k)
        if (!current) return notFound(`instance ${m[2]}`)
        if (current.settings?.deletionProtectionEnabled) {
          return badRequest('The instance is protected from deletion. Turn off deletion protection first.')
        }
        for (const child of [...fake.resources.keys()]) {
          if (child.startsWith(`sql-db:${m[1]}/${m[2]}/`) || child.startsWith(`sql-user:${m[1]}/${m[2]}/`)) {
            fake.resources.delete(child)
          }
        }
        fake.resources.delete(k)
        return op(fake, m[1] as string, 'DELETE', m[2] as string)
      },
    },
    ...childRoutes('databases', 'sql-db'),
    ...childRoutes('users', 'sql-user'),
  ]
}

function childRoutes(collection: string, prefix: string): Route[] {
  const coll = new RegExp(`${INST}/([^/]+)/${collection}$`)
  const item = new RegExp(`${INST}/([^/]+)/${collection}/([^/]+)$`)
  const parent = (fake: FakeGcp, m: string[]) => fake.resources.has(`sql:${m[1]}/${m[2]}`)
  const nameOf = (m: string[], q: Record<string, string>) => m[3] ?? q.name
  return [
    {
      method: 'GET',
      re: coll,
      handle: ({ fake, m }) => {
        if (!parent(fake, m)) return notFound(`instance ${m[2]}`)
        const items = [...fake.resources]
          .filter(([k]) => k.startsWith(`${prefix}:${m[1]}/${m[2]}/`))
          .map(([, v]) => v)
        return { status: 200, body: { kind: `sql#${collection}List`, items } }
      },
    },
    {
      method: 'GET',
      re: item,
      handle: ({ fake, m }) => found(fake.resources.get(`${prefix}:${m[1]}/${m[2]}/${m[3]}`), `${m[3]}`),
    },
    {
      method: 'POST',
      re: coll,
      handle: ({ fake, m, body }) => {
        if (!parent(fake, m)) return notFound(`instance ${m[2]}`)
        const k = `${prefix}:${m[1]}/${m[2]}/${body.name}`
        if (fake.resources.has(k)) return conflict(`${collection} ${body.name}`)
        const { password, ...rest } = body
        if (password) fake.payloads.set(`sql-password:${m[1]}/${m[2]}/${body.name}`, password)
        fake.resources.set(k, { ...rest, kind: `sql#${collection.slice(0, -1)}` })
        return op(fake, m[1] as string, 'CREATE', body.name)
      },
    },
    {
      method: 'PUT',
      re: coll,
      handle: ({ fake, m, body, query }) => {
        const k = `${prefix}:${m[1]}/${m[2]}/${nameOf(m, query)}`
        const current = fake.resources.get(k)
        if (!current) return notFound(`${collection} ${nameOf(m, query)}`)
        const { password, ...rest } = body
        if (collection === 'users' && !password) return badRequest('password must not be empty')
        fake.payloads.set(`sql-password:${m[1]}/${m[2]}/${nameOf(m, query)}`, password)
        fake.resources.set(k, { ...current, ...rest })
        return op(fake, m[1] as string, 'UPDATE', nameOf(m, query) as string)
      },
    },
    ...[coll, item].map((re) => ({
      method: 'DELETE',
      re,
      handle: ({ fake, m, query }: { fake: FakeGcp; m: string[]; query: Record<string, string> }) => {
        const k = `${prefix}:${m[1]}/${m[2]}/${nameOf(m, query)}`
        if (!fake.resources.delete(k)) return notFound(`${nameOf(m, query)}`)
        return op(fake, m[1] as string, 'DELETE', nameOf(m, query) as string)
      },
    })),
  ]
}

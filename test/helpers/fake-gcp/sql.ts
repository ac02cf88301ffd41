// Cloud SQL Admin API (v1beta4, the version gcloud 528 calls): instances, databases, users, operations.
// What it refuses and defaults follows Google's documentation and the issue threads cited at each rule.
import type { ApiJson, FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

/** Cloud SQL answers refusals as 400 with reason "invalid" and an "Invalid request: ..." message. */
function invalid(message: string): Reply {
  return {
    status: 400,
    body: {
      error: { code: 400, message: `Invalid request: ${message}`, errors: [{ reason: 'invalid', message }] },
    },
  }
}

/**
 * instances.patch "partially updates settings of a Cloud SQL instance by merging the request with the
 * current configuration" (Cloud SQL Admin API reference, instances.patch): a nested message the request
 * names only in part (settings.ipConfiguration with one field) keeps the fields it does not name. Lists
 * (authorizedNetworks, flags) are replaced whole, as patch semantics do for repeated fields.
 * https://cloud.google.com/sql/docs/postgres/admin-api/rest/v1beta4/instances/patch
 */
function patched(current: Record<string, unknown>, change: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...current }
  for (const [key, value] of Object.entries(change)) {
    const before = current[key]
    const nested = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v)
    out[key] =
      nested(value) && nested(before)
        ? patched(before as Record<string, unknown>, value as Record<string, unknown>)
        : value
  }
  return out
}

/**
 * The instance as Cloud SQL would create it from this body, or the refusal. Sources:
 * - PostgreSQL 16 and later default to ENTERPRISE_PLUS when no edition is given, and ENTERPRISE_PLUS takes
 *   only db-perf-optimized-N-* tiers: "Invalid Tier (db-g1-small) for (ENTERPRISE_PLUS) Edition. Use a
 *   predefined Tier like db-perf-optimized-N-* instead." (hashicorp/terraform-provider-google#20498,
 *   GoogleCloudPlatform/magic-modules#18014); the performance-optimized tiers need ENTERPRISE_PLUS
 *   (langfuse/langfuse-terraform-gcp#34).
 * - Transaction log retention: 1-7 days on ENTERPRISE, 1-35 on ENTERPRISE_PLUS (gcloud sql instances create
 *   --help); "The number of transaction log retention days must be between 1 and 7." (langfuse #8).
 * - Point-in-time recovery is on by default for ENTERPRISE_PLUS only when created through the API or gcloud
 *   (sql/docs/postgres/backup-recovery/pitr).
 */
export function createdInstance(body: ApiJson): { instance?: ApiJson; refusal?: Reply } {
  const major = Number(/^POSTGRES_(\d+)/.exec(body.databaseVersion ?? '')?.[1] ?? 0)
  const settings = { ...(body.settings ?? {}) }
  settings.edition ??= major >= 16 ? 'ENTERPRISE_PLUS' : 'ENTERPRISE'
  const perfOptimized = /^db-perf-optimized-N-\d+$/.test(settings.tier ?? '')
  if (settings.edition === 'ENTERPRISE_PLUS' && !perfOptimized) {
    return {
      refusal: invalid(
        `Invalid Tier (${settings.tier}) for (ENTERPRISE_PLUS) Edition. Use a predefined Tier like db-perf-optimized-N-* instead.`,
      ),
    }
  }
  if (settings.edition === 'ENTERPRISE' && perfOptimized) {
    return { refusal: invalid(`Invalid Tier (${settings.tier}) for (ENTERPRISE) Edition.`) }
  }
  const backup = { ...(settings.backupConfiguration ?? {}) }
  backup.enabled ??= false
  backup.pointInTimeRecoveryEnabled ??= settings.edition === 'ENTERPRISE_PLUS'
  const maxLogDays = settings.edition === 'ENTERPRISE' ? 7 : 35
  backup.transactionLogRetentionDays ??= settings.edition === 'ENTERPRISE' ? 7 : 14
  if (backup.transactionLogRetentionDays < 1 || backup.transactionLogRetentionDays > maxLogDays) {
    return {
      refusal: invalid(`The number of transaction log retention days must be between 1 and ${maxLogDays}.`),
    }
  }
  backup.backupRetentionSettings ??= {
    retentionUnit: 'COUNT',
    retainedBackups: settings.edition === 'ENTERPRISE' ? 7 : 15,
  }
  settings.backupConfiguration = backup
  settings.availabilityType ??= 'ZONAL'
  return { instance: { ...body, settings } }
}

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
        const { instance, refusal } = createdInstance(body)
        if (refusal) return refusal
        fake.resources.set(k, {
          ...instance,
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
        // A new PostgreSQL instance comes with the database `postgres` (initdb makes it: PostgreSQL docs,
        // "Creating a Database Cluster") and the default user `postgres` ("For Cloud SQL for PostgreSQL, the
        // default user is postgres": sql/docs/postgres/create-manage-users).
        fake.resources.set(`sql-db:${m[1]}/${body.name}/postgres`, {
          kind: 'sql#database',
          name: 'postgres',
          instance: body.name,
        })
        fake.resources.set(`sql-user:${m[1]}/${body.name}/postgres`, {
          kind: 'sql#user',
          name: 'postgres',
          instance: body.name,
          type: 'BUILT_IN',
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
        const settings = patched(current.settings ?? {}, body.settings ?? {})
        const { refusal } = createdInstance({ ...current, settings })
        if (refusal) return refusal
        current.settings = settings
        return op(fake, m[1] as string, 'UPDATE', m[2] as string)
      },
    },
    {
      method: 'DELETE',
      re: new RegExp(`${INST}/([^/]+)$`),
      handle: ({ fake, m, query }) => {
        const k = `sql:${m[1]}/${m[2]}`
        const current = fake.resources.get(k)
        if (!current) return notFound(`instance ${m[2]}`)
        if (current.settings?.deletionProtectionEnabled) {
          return badRequest('The instance is protected from deletion. Turn off deletion protection first.')
        }
        // A final backup outlives the instance (sql/docs/postgres/backup-recovery/backups#final-backups);
        // without one, "All data on an instance, including backups, is permanently lost" (delete-instance),
        // unless the instance retains its backups on delete (settings.retainBackupsOnDelete).
        if (String(query.enableFinalBackup).toLowerCase() === 'true') {
          fake.resources.set(`sql-backup:${m[1]}/${m[2]}/final`, {
            kind: 'sql#backup',
            type: 'FINAL',
            instance: m[2],
            ttlDays: Number(query.finalBackupTtlDays ?? 30),
          })
        }
        // Service Networking keeps the instance's hold on the peering for up to days ("It can take up to
        // four days for the underlying resources related to an instance to be completely deleted":
        // sql/docs/delete-instance; GoogleCloudPlatform/ai-on-gke#550). A test ends the hold with
        // fake.releaseProducerHolds(), the days having passed.
        const network = current.settings?.ipConfiguration?.privateNetwork
        if (network) fake.producerHolds.add(String(network).split('/').pop() as string)
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
        // "Missing user password for PostgreSQL instance." (terraform-google-modules/terraform-google-sql-db
        // #222; hashicorp/terraform-provider-google#4123): a built-in PostgreSQL user needs one.
        const builtIn = !body.type || body.type === 'BUILT_IN'
        if (collection === 'users' && builtIn && !password)
          return invalid('Missing user password for PostgreSQL instance.')
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

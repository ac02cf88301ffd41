// Step 5: private services access and Cloud SQL for PostgreSQL on a private IP with TLS enforced,
// point-in-time recovery and retained backups. The user's password is the database secret: created with
// it (a flags file, never argv) and set again from it on rotation (`--prompt-for-password` on stdin).
// Labels on the secret record which version the SQL user has, so the app reads exactly that version.
// Over 300 lines: the network, instance, database, user and password resources of one step, with the
// instance's typed drift; the instance's flags and drift could move to steps/sql-instance.ts.
import type { DeployConfig } from '../config.ts'
import { names } from './names.ts'
import { type Command, type Context, cmd, type Resource, type Step } from './types.ts'

const APPLIED_LABEL = 'applied-to-sql-user'
const VERSION_LABEL = 'applied-version'

/** What Service Networking answers while a deleted instance still holds the peering (up to days). */
const PRODUCER_HOLD = /are still using this connection/
const PRODUCER_HOLD_REASON =
  'Service Networking keeps the peering in use for up to several days after the instance is deleted'

// gcloud spells the editions and availability types in lower case (sql instances create --help).
const EDITION_FLAG = { ENTERPRISE: 'enterprise', ENTERPRISE_PLUS: 'enterprise-plus' } as const

function instanceFlags(c: DeployConfig): string[] {
  const db = c.database
  return [
    // Named always: PostgreSQL 16+ would default to ENTERPRISE_PLUS and refuse shared-core tiers.
    `--edition=${EDITION_FLAG[db.edition]}`,
    `--tier=${db.tier}`,
    `--availability-type=${db.availabilityType.toLowerCase()}`,
    '--ssl-mode=ENCRYPTED_ONLY',
    // gcloud and the API leave point-in-time recovery off on ENTERPRISE unless asked
    // (cloud.google.com/sql/docs/postgres/backup-recovery/pitr); backups themselves are on by default.
    '--enable-point-in-time-recovery',
    `--retained-backups-count=${db.retainedBackups}`,
    `--retained-transaction-log-days=${db.transactionLogDays}`,
    // Automated and on-demand backups outlive the instance ("All data on an instance, including backups,
    // is permanently lost when that instance is deleted" otherwise: delete-instance).
    '--retain-backups-on-delete',
    db.deletionProtection ? '--deletion-protection' : '--no-deletion-protection',
  ]
}

/** The fields of `sql instances describe` (Cloud SQL Admin DatabaseInstance) the deploy compares. */
interface SqlInstance {
  settings?: {
    edition?: string
    tier?: string
    availabilityType?: string
    ipConfiguration?: { sslMode?: string }
    backupConfiguration?: {
      enabled?: boolean
      pointInTimeRecoveryEnabled?: boolean
      /** An int64: a string in the API's JSON. */
      backupRetentionSettings?: { retainedBackups?: number | string }
      transactionLogRetentionDays?: number | string
    }
    retainBackupsOnDelete?: boolean
    deletionProtectionEnabled?: boolean
  }
}

/** One entry of `services vpc-peerings list`: the ranges Service Networking has allocated to it. */
interface VpcPeering {
  reservedPeeringRanges?: string[]
}

/** One entry of `sql users list`. */
interface SqlUser {
  name: string
}

/** `secrets describe`: only its labels are read (they record the version the SQL user has). */
interface SecretMetadata {
  labels?: Record<string, string>
}

function instanceDrift(c: DeployConfig, json: SqlInstance): string[] {
  const db = c.database
  const s = json.settings ?? {}
  const b = s.backupConfiguration ?? {}
  const out: string[] = []
  if (s.edition !== db.edition) out.push(`edition is ${s.edition}`)
  if (s.tier !== db.tier) out.push(`tier is ${s.tier}`)
  if (s.availabilityType !== db.availabilityType) out.push(`availability is ${s.availabilityType}`)
  if (s.ipConfiguration?.sslMode !== 'ENCRYPTED_ONLY') out.push('TLS is not enforced')
  if (b.enabled !== true || b.pointInTimeRecoveryEnabled !== true) out.push('point-in-time recovery is off')
  if (Number(b.backupRetentionSettings?.retainedBackups) !== db.retainedBackups)
    out.push(`${b.backupRetentionSettings?.retainedBackups ?? 'no'} backups retained`)
  if (Number(b.transactionLogRetentionDays) !== db.transactionLogDays)
    out.push(`${b.transactionLogRetentionDays ?? 'no'} days of transaction log`)
  if (s.retainBackupsOnDelete !== true) out.push('backups are deleted with the instance')
  if (Boolean(s.deletionProtectionEnabled) !== db.deletionProtection) out.push('deletion protection differs')
  return out
}

/** The database password secret's newest enabled version, learned by the secrets step. */
export function latestPasswordVersion(x: Context): string {
  return x.fact('DATABASE_PASSWORD_LATEST')
}

/** Records on the secret which version the SQL user now has. */
function recordApplied(c: DeployConfig, x: Context): Command {
  return cmd([
    'secrets',
    'update',
    c.database.passwordSecret,
    `--update-labels=${APPLIED_LABEL}=${c.database.instance},${VERSION_LABEL}=${latestPasswordVersion(x)}`,
  ])
}

export function databaseStep(c: DeployConfig): Step {
  const n = names(c)
  const db = c.database
  return {
    id: 'database',
    title: 'Network and Cloud SQL',
    when: (cfg) => cfg.database.enabled,
    resources: [
      {
        id: 'network',
        title: `VPC network ${c.network.name}`,
        // Peerings of a network that does not exist are NOT_FOUND; of a new one, an empty list. A custom-mode
        // network starts with no subnets, so the subnet's answer stays NOT_FOUND.
        affects: ['psa-peering'],
        describe: () => ['compute', 'networks', 'describe', c.network.name],
        create: () => [cmd(['compute', 'networks', 'create', c.network.name, '--subnet-mode=custom'])],
        // Networks are often shared (default): never deleted by this tool.
      },
      {
        id: 'subnet',
        title: `subnet ${c.network.subnet}`,
        describe: () => [
          'compute',
          'networks',
          'subnets',
          'describe',
          c.network.subnet,
          `--region=${c.region}`,
        ],
        create: () => [
          cmd([
            'compute',
            'networks',
            'subnets',
            'create',
            c.network.subnet,
            `--network=${c.network.name}`,
            `--region=${c.region}`,
            `--range=${c.network.subnetRange}`,
          ]),
        ],
      },
      {
        id: 'psa-range',
        title: `private services range ${n.psaRange}`,
        data: true,
        // The peering is allocated this range: delete the range only once the peering is gone.
        heldBy: ['psa-peering'],
        describe: () => ['compute', 'addresses', 'describe', n.psaRange, '--global'],
        create: () => [
          cmd([
            'compute',
            'addresses',
            'create',
            n.psaRange,
            '--global',
            '--purpose=VPC_PEERING',
            '--prefix-length=16',
            `--network=${c.network.name}`,
          ]),
        ],
        delete: () => [cmd(['compute', 'addresses', 'delete', n.psaRange, '--global'])],
      },
      {
        id: 'psa-peering',
        title: 'private services access peering',
        data: true,
        describe: () => ['services', 'vpc-peerings', 'list', `--network=${c.network.name}`],
        absent: (peerings) => peerings.length === 0,
        check: (peerings) =>
          peerings[0]?.reservedPeeringRanges?.includes(n.psaRange) ? [] : [`range ${n.psaRange} not peered`],
        create: () => [
          cmd(
            [
              'services',
              'vpc-peerings',
              'connect',
              '--service=servicenetworking.googleapis.com',
              `--ranges=${n.psaRange}`,
              `--network=${c.network.name}`,
            ],
            { long: true },
          ),
        ],
        update: (_x, peerings) => [
          cmd(
            [
              'services',
              'vpc-peerings',
              'update',
              '--service=servicenetworking.googleapis.com',
              `--ranges=${[...(peerings[0]?.reservedPeeringRanges ?? []), n.psaRange].join(',')}`,
              `--network=${c.network.name}`,
            ],
            { long: true },
          ),
        ],
        // A peering that also serves other ranges is shared with something else: leave it.
        delete: (_x, peerings) =>
          peerings[0]?.reservedPeeringRanges?.length === 1
            ? [
                cmd(
                  [
                    'services',
                    'vpc-peerings',
                    'delete',
                    '--service=servicenetworking.googleapis.com',
                    `--network=${c.network.name}`,
                  ],
                  // Deleting the instance does not free the peering at once ("Producer services (e.g.
                  // CloudSQL) are still using this connection": hashicorp/terraform-provider-google#19908;
                  // "up to four days" for an instance's underlying resources: sql/docs/delete-instance).
                  { long: true, pending: { when: PRODUCER_HOLD, reason: PRODUCER_HOLD_REASON } },
                ),
              ]
            : [],
      } satisfies Resource<VpcPeering[]>,
      {
        id: 'sql-instance',
        title: `Cloud SQL instance ${db.instance}`,
        data: true,
        // A new instance has the built-in database and user `postgres` (a name the config may choose), so
        // the answers of both reads can change (sql/docs/postgres/create-manage-users: "the default user
        // is postgres"; PostgreSQL's initdb creates the `postgres` database).
        affects: ['sql-database', 'sql-user'],
        describe: () => ['sql', 'instances', 'describe', db.instance],
        check: (json) => instanceDrift(c, json),
        create: () => [
          cmd(
            [
              'sql',
              'instances',
              'create',
              db.instance,
              `--database-version=${db.version}`,
              `--region=${c.region}`,
              `--network=projects/${c.project}/global/networks/${c.network.name}`,
              '--no-assign-ip',
              // Cloud Run's built-in connection needs the per-instance CA: "You must select the per-instance
              // CA option (GOOGLE_MANAGED_INTERNAL_CA) as the server CA mode for instances you want to connect
              // to from web applications" (sql/docs/postgres/connect-run). Set only at creation: gcloud 528's
              // patch has no --server-ca-mode.
              '--server-ca-mode=GOOGLE_MANAGED_INTERNAL_CA',
              ...instanceFlags(c),
            ],
            { long: true },
          ),
        ],
        update: () => [cmd(['sql', 'instances', 'patch', db.instance, ...instanceFlags(c)], { long: true })],
        refuseDelete: (_x, json) =>
          json.settings?.deletionProtectionEnabled
            ? `Cloud SQL instance ${db.instance} has deletion protection: set database.deletionProtection: false, run apply, then destroy --delete-data`
            : undefined,
        delete: () => [
          cmd(
            [
              'sql',
              'instances',
              'delete',
              db.instance,
              // A last backup, kept after the instance is gone (backup-recovery/backups#final-backups).
              '--enable-final-backup',
              `--final-backup-retention-days=${db.finalBackupDays}`,
            ],
            { long: true },
          ),
        ],
      } satisfies Resource<SqlInstance>,
      {
        id: 'sql-database',
        title: `database ${db.name}`,
        describe: () => ['sql', 'databases', 'describe', db.name, `--instance=${db.instance}`],
        create: () => [cmd(['sql', 'databases', 'create', db.name, `--instance=${db.instance}`])],
      },
      {
        id: 'sql-user',
        title: `database user ${db.user}`,
        // Its create records the password version applied, on the secret the next resource reads.
        affects: ['sql-user-password'],
        describe: () => ['sql', 'users', 'list', `--instance=${db.instance}`],
        absent: (users) => !users.some((u) => u.name === db.user),
        // Cloud SQL refuses a PostgreSQL user without a password ("Missing user password for PostgreSQL
        // instance": terraform-google-modules/terraform-google-sql-db#222) and `users create` has no prompt
        // in gcloud 528, so the password reaches it in a flags file (mode 0600, removed after the call).
        create: (x) => [
          cmd(
            [
              'sql',
              'users',
              'create',
              db.user,
              `--instance=${db.instance}`,
              '--flags-file={file:user-flags}',
            ],
            {
              secretFlags: {
                file: 'user-flags',
                flag: '--password',
                secret: db.passwordSecret,
                version: latestPasswordVersion(x),
              },
            },
          ),
          recordApplied(c, x),
        ],
      } satisfies Resource<SqlUser[]>,
      {
        id: 'sql-user-password',
        title: `password of ${db.user}: the newest version of ${db.passwordSecret}`,
        describe: () => ['secrets', 'describe', db.passwordSecret],
        // Set again when an interrupted run never recorded it, or a newer version waits (rotation).
        absent: (json, x) =>
          json.labels?.[APPLIED_LABEL] !== db.instance ||
          json.labels?.[VERSION_LABEL] !== latestPasswordVersion(x),
        learn: (json, x) => {
          if (json.labels?.[APPLIED_LABEL] === db.instance && json.labels?.[VERSION_LABEL])
            x.facts.set('DATABASE_PASSWORD_VERSION', String(json.labels[VERSION_LABEL]))
        },
        exports: { DATABASE_PASSWORD_VERSION: `value(labels.${VERSION_LABEL})` },
        create: (x) => [
          cmd(
            ['sql', 'users', 'set-password', db.user, `--instance=${db.instance}`, '--prompt-for-password'],
            {
              stdin: { kind: 'secret', secret: db.passwordSecret, version: latestPasswordVersion(x) },
              prompts: true,
            },
          ),
          recordApplied(c, x),
        ],
      } satisfies Resource<SecretMetadata>,
    ],
  }
}

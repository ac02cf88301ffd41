// The `database` block: Cloud SQL for PostgreSQL. Edition, tier, availability and backups are checked
// against each other here, at plan time, because Cloud SQL refuses the combinations below only when
// `apply` is half done.
import type { Reader } from './config-reader.ts'

export type Edition = 'ENTERPRISE' | 'ENTERPRISE_PLUS'
export type AvailabilityType = 'ZONAL' | 'REGIONAL'

export interface DatabaseConfig {
  enabled: boolean
  instance: string
  /**
   * Always sent: for PostgreSQL 16 and later Cloud SQL defaults to ENTERPRISE_PLUS, which refuses the
   * shared-core and custom tiers ("Invalid Tier (db-g1-small) for (ENTERPRISE_PLUS) Edition. Use a
   * predefined Tier like db-perf-optimized-N-* instead": hashicorp/terraform-provider-google#20498,
   * GoogleCloudPlatform/magic-modules#18014).
   */
  edition: Edition
  tier: string
  version: string
  name: string
  user: string
  passwordSecret: string
  deletionProtection: boolean
  /** ZONAL by default (half the price); REGIONAL is Cloud SQL's high availability (a standby in a second zone). */
  availabilityType: AvailabilityType
  /** Automated daily backups kept (gcloud: 1-365; its own default is 7 on ENTERPRISE). */
  retainedBackups: number
  /**
   * Days of write-ahead log kept for point-in-time recovery. Cloud SQL allows 1-7 on ENTERPRISE and
   * 1-35 on ENTERPRISE_PLUS (`gcloud sql instances create --help`, --retained-transaction-log-days).
   */
  transactionLogDays: number
  /** `destroy --delete-data` takes a final backup kept this many days (gcloud: 1-365). */
  finalBackupDays: number
}

const EDITIONS: readonly Edition[] = ['ENTERPRISE', 'ENTERPRISE_PLUS']
const AVAILABILITY: readonly AvailabilityType[] = ['ZONAL', 'REGIONAL']
// Enterprise Plus takes only its performance-optimized machine types; Enterprise takes the shared-core
// and custom ones (magic-modules#18014; langfuse/langfuse-terraform-gcp#34 checks the same pairs).
const TIERS: Record<Edition, { re: RegExp; shape: string }> = {
  ENTERPRISE_PLUS: { re: /^db-perf-optimized-N-\d+$/, shape: 'db-perf-optimized-N-*' },
  ENTERPRISE: {
    re: /^db-(f1-micro|g1-small|custom-\d+-\d+)$/,
    shape: 'db-f1-micro, db-g1-small or db-custom-CPUS-MEMORY_MB',
  },
}
const MAX_LOG_DAYS: Record<Edition, number> = { ENTERPRISE: 7, ENTERPRISE_PLUS: 35 }

export const DATABASE_FIELDS = [
  'enabled',
  'instance',
  'edition',
  'tier',
  'version',
  'name',
  'user',
  'deletionProtection',
  'availabilityType',
  'retainedBackups',
  'transactionLogDays',
  'finalBackupDays',
]

export function databaseConfig(r: Reader, name: string, enabledByDefault: boolean): DatabaseConfig {
  r.known('database', DATABASE_FIELDS)
  const edition = r.choice('database.edition', 'ENTERPRISE', EDITIONS)
  const tier = r.string('database.tier', 'db-g1-small', /^db-[a-zA-Z0-9-]+$/, 'is not a Cloud SQL tier')
  if (!r.reported('database.tier') && !TIERS[edition].re.test(tier)) {
    const other = edition === 'ENTERPRISE' ? 'ENTERPRISE_PLUS' : 'ENTERPRISE'
    r.problem(
      'database.tier',
      `is not a tier of the ${edition} edition (it takes ${TIERS[edition].shape}; ${TIERS[other].shape} need database.edition: ${other})`,
      tier,
    )
  }
  const maxLogDays = MAX_LOG_DAYS[edition]
  return {
    enabled: r.bool('database.enabled', enabledByDefault),
    instance: r.string(
      'database.instance',
      `${name}-db`,
      /^[a-z][a-z0-9-]{0,18}[a-z0-9]$/,
      'is not an instance name',
    ),
    edition,
    tier,
    version: r.string(
      'database.version',
      'POSTGRES_16',
      /^POSTGRES_[0-9]+$/,
      'must be a PostgreSQL version like POSTGRES_16',
    ),
    name: r.string('database.name', 'flowise', /^[a-z_][a-z0-9_]{0,62}$/, 'is not a database name'),
    user: r.string('database.user', 'flowise', /^[a-z_][a-z0-9_]{0,62}$/, 'is not a user name'),
    passwordSecret: `${name}-db-password`,
    deletionProtection: r.bool('database.deletionProtection', true),
    availabilityType: r.choice('database.availabilityType', 'ZONAL', AVAILABILITY),
    retainedBackups: r.int('database.retainedBackups', 14, 1, 365),
    transactionLogDays: r.int('database.transactionLogDays', 7, 1, maxLogDays),
    finalBackupDays: r.int('database.finalBackupDays', 30, 1, 365),
  }
}

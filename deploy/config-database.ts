// The `database` and `network` blocks: Cloud SQL for PostgreSQL, and the VPC the service reaches its
// private IP through. Edition, tier, availability and backups are checked against each other here, at
// plan time, because Cloud SQL refuses the combinations below only when `apply` is half done.
import { NAME, type Reader } from './config-reader.ts'
import type { AvailabilityType, DatabaseConfig, Edition, NetworkConfig } from './config-schema.ts'

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
const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/

export function databaseConfig(r: Reader, name: string, enabledByDefault: boolean): DatabaseConfig {
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
  return {
    enabled: r.bool('database.enabled', enabledByDefault),
    instance: r.string('database.instance', `${name}-db`, NAME, 'is not an instance name'),
    edition,
    tier,
    version: r.string(
      'database.version',
      'POSTGRES_16',
      /^POSTGRES_[0-9]+$/,
      'must be a PostgreSQL version like POSTGRES_16',
    ),
    name: r.string('database.name', 'flowise', SQL_NAME, 'is not a database name'),
    user: r.string('database.user', 'flowise', SQL_NAME, 'is not a user name'),
    passwordSecret: `${name}-db-password`,
    deletionProtection: r.bool('database.deletionProtection', true),
    availabilityType: r.choice('database.availabilityType', 'ZONAL', AVAILABILITY),
    retainedBackups: r.int('database.retainedBackups', 14, 1, 365),
    transactionLogDays: r.int('database.transactionLogDays', 7, 1, MAX_LOG_DAYS[edition]),
    finalBackupDays: r.int('database.finalBackupDays', 30, 1, 365),
  }
}

export function networkConfig(r: Reader): NetworkConfig {
  return {
    name: r.string('network.name', 'default', NAME, 'is not a network name'),
    subnet: r.string('network.subnet', 'default', NAME, 'is not a subnet name'),
    subnetRange: r.string(
      'network.subnetRange',
      '10.8.0.0/26',
      /^\d+\.\d+\.\d+\.\d+\/\d+$/,
      'is not an IPv4 range',
    ),
  }
}

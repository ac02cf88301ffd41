// The deploy config's schema: one typed, frozen object, documented field by field (defaults in
// brackets; deploy.config.example.yaml is the same in YAML). Each block is read and checked by one
// validator: config-access.ts (who and where), config-service.ts (the service, the gateway and the
// images), config-app.ts (the app container and its files), config-database.ts (Cloud SQL and its
// network), config-monitoring.ts (metrics and the alert). config.ts runs them all and reports every
// problem at once.
import { MONITORING_FIELDS, type MonitoringConfig } from './config-monitoring.ts'

/** How an image is built by Cloud Build. */
export interface Build {
  /** The folder sent to Cloud Build, absolute (resolved against the config file's folder) [.]. */
  context: string
  /** The Dockerfile inside the context [Dockerfile.proxy for the gateway, Dockerfile.flowise for Flowise]. */
  dockerfile: string
  /** `--build-arg`s (Flowise: FLOWISE_VERSION from app.flowiseVersion). */
  args: Record<string, string>
}

/** A secret the app reads from its environment (`sm://` reference resolved by the launcher). */
export interface AppSecret {
  /** Environment variable the container reads. */
  env: string
  /** Secret Manager secret id (managed secrets are created by the deploy: `NAME-<env in kebab case>`). */
  secret: string
  /** Created with random bytes when absent, never overwritten; otherwise an existing secret. */
  generate: boolean
}

/** The ingress container: the gateway (proxy/), built from Dockerfile.proxy. */
export interface GatewayConfig {
  build: Build
  /** Image tag; a tag that exists is not rebuilt, so a new gateway needs a new tag [0.1.0]. */
  tag: string
  /** vCPUs: 1, or a whole number up to 8 (gen2 needs at least 1) ['1']. */
  cpu: string
  /** Memory limit, like 512Mi or 2Gi [512Mi]. */
  memory: string
  /** pino level: fatal, error, warn, info, debug or trace [info]. */
  logLevel: string
  /** The gateway's UPSTREAM_TIMEOUT_MS, 1000 to 3600000 [3600000]. */
  upstreamTimeoutMs: number
  /** The gateway's SHUTDOWN_GRACE_MS, 0 to 9000: Cloud Run gives 10 s after SIGTERM [8000]. */
  shutdownGraceMs: number
}

/** The app container beside the gateway: Flowise by default. */
export interface AppConfig {
  /** flowise: Dockerfile.flowise, its five secrets, Cloud SQL and the bucket; custom: only what is set [flowise]. */
  preset: 'flowise' | 'custom'
  /** Container (and image) name [flowise, or app for a custom app]. */
  container: string
  /** A ready image to run instead of a build (custom apps; not with `build`). */
  image?: string
  /** How the image is built (always for Flowise). */
  build?: Build
  /** Image tag [app.flowiseVersion (3.1.4) for Flowise, 1 otherwise]. */
  tag: string
  /** Where the app listens on 127.0.0.1; not the gateway's 8080 [3000]. */
  port: number
  /** Path of the app's startup probe [/api/v1/ping for Flowise, / otherwise]. */
  healthPath: string
  /** Container arguments [none]. */
  args: string[]
  /** Extra plain environment; not PORT, HOST or K_* (set by the deploy or Cloud Run), no `sm://` values. */
  env: Record<string, string>
  /** Secrets in the environment: Flowise's five, then `app.secrets` ("generate" or an existing secret id). */
  secrets: AppSecret[]
  /** vCPUs: 1, or a whole number up to 8 (gen2 needs at least 1) ['1']. */
  cpu: string
  /** Memory limit [2Gi for Flowise, 512Mi otherwise]. */
  memory: string
  /** Startup probe window, 10 to 240 s (Cloud Run's maximum) [240]. */
  startupSeconds: number
  /** Project roles of the runtime service account [roles/aiplatform.user for Flowise]. */
  projectRoles: string[]
}

/** The VPC the service reaches Cloud SQL's private IP through (Direct VPC egress). */
export interface NetworkConfig {
  /** Created in custom mode if absent; never deleted [default]. */
  name: string
  /** [default] */
  subnet: string
  /** Only used when the subnet is created [10.8.0.0/26]. */
  subnetRange: string
}

export type Edition = 'ENTERPRISE' | 'ENTERPRISE_PLUS'
export type AvailabilityType = 'ZONAL' | 'REGIONAL'

/** Cloud SQL for PostgreSQL on a private IP. */
export interface DatabaseConfig {
  /** [on with the flowise preset] */
  enabled: boolean
  /** Instance name [NAME-db]. */
  instance: string
  /**
   * Always sent: for PostgreSQL 16 and later Cloud SQL defaults to ENTERPRISE_PLUS, which refuses the
   * shared-core and custom tiers ("Invalid Tier (db-g1-small) for (ENTERPRISE_PLUS) Edition. Use a
   * predefined Tier like db-perf-optimized-N-* instead": hashicorp/terraform-provider-google#20498,
   * GoogleCloudPlatform/magic-modules#18014) [ENTERPRISE].
   */
  edition: Edition
  /** A tier of the edition: db-f1-micro, db-g1-small, db-custom-* (ENTERPRISE); db-perf-optimized-N-* [db-g1-small]. */
  tier: string
  /** [POSTGRES_16] */
  version: string
  /** Database name [flowise]. */
  name: string
  /** Database user [flowise]. */
  user: string
  /** The secret holding the user's password, always `NAME-db-password` (generated, rotated by the deploy). */
  passwordSecret: string
  /** `destroy --delete-data` refuses while on [true]. */
  deletionProtection: boolean
  /** ZONAL by default (half the price); REGIONAL is Cloud SQL's high availability (a standby in a second zone). */
  availabilityType: AvailabilityType
  /** Automated daily backups kept (gcloud: 1-365; its own default is 7 on ENTERPRISE) [14]. */
  retainedBackups: number
  /**
   * Days of write-ahead log kept for point-in-time recovery. Cloud SQL allows 1-7 on ENTERPRISE and
   * 1-35 on ENTERPRISE_PLUS (`gcloud sql instances create --help`, --retained-transaction-log-days) [7].
   */
  transactionLogDays: number
  /** `destroy --delete-data` takes a final backup kept this many days (gcloud: 1-365) [30]. */
  finalBackupDays: number
}

/** The bucket Flowise keeps its files in (STORAGE_TYPE=gcs). */
export interface StorageConfig {
  /** [on with the flowise preset] */
  enabled: boolean
  /** [PROJECT-NAME-files] */
  bucket: string
}

/**
 * IAP's own (Google-managed) OAuth client admits only users of the project's organisation and no
 * programmatic callers (cloud.google.com/iap/docs/custom-oauth-configuration): a custom client is
 * needed for outside users or scripts. Its secret stays in Secret Manager; the deploy reads it and
 * hands it to gcloud in a flags file, never on a command line.
 */
export interface IapOAuthClient {
  /** Public: like 123-abc.apps.googleusercontent.com. */
  clientId: string
  /** Id of the Secret Manager secret holding the client secret (made by the user). */
  secret: string
}

export interface DeployConfig {
  /** Google Cloud project id; the project must exist, with billing. */
  project: string
  /** Region of Cloud Run, Cloud SQL and the builds, like europe-west1. */
  region: string
  /** Prefix of every resource name, 2-20 lowercase letters, digits or hyphens [flowise]. */
  name: string
  /** The app's public DNS name (the managed certificate's). */
  domain: string
  /** Networks allowed in, IPv4 and IPv6, normalised to their network address; Cloud Armor and the gateway. */
  allowedCidrs: string[]
  /** Who may pass IAP: user:, group:, serviceAccount: or domain: members; others are removed on apply. */
  iapMembers: string[]
  /** Proxies in front of the gateway that append to X-Forwarded-For: the load balancer's two [2]. */
  trustProxyHops: number
  /** Optional second filter in the gateway on the verified identity (no commas) [none]. */
  allowedEmails: string[]
  /** The same by email domain [none]. */
  allowedDomains: string[]
  /** Cloud Run's maxScale, at least minInstances [1 for Flowise: see config-service.ts; 3 otherwise]. */
  maxInstances: number
  /** Cloud Run's minScale, 0 to 100 [0]. */
  minInstances: number
  /** Request timeout, 60 to 3600 s; bounds every request, event streams included [3600]. */
  timeoutSeconds: number
  /** Artifact Registry repository of both images [NAME]. */
  repository: string
  gateway: GatewayConfig
  app: AppConfig
  network: NetworkConfig
  database: DatabaseConfig
  storage: StorageConfig
  /** Log-based metrics and an alert policy from the gateway's log lines (config-monitoring.ts). */
  monitoring: MonitoringConfig
  iapOAuthClient?: IapOAuthClient
}

/** The fields a config may set, per block: any other key is a typo and is reported. */
export const KNOWN_FIELDS = {
  '': [
    'project',
    'region',
    'name',
    'domain',
    'allowedCidrs',
    'iapMembers',
    'trustProxyHops',
    'allowedEmails',
    'allowedDomains',
    'maxInstances',
    'minInstances',
    'timeoutSeconds',
    'repository',
    'gateway',
    'app',
    'network',
    'database',
    'storage',
    'iapOAuthClient',
    'monitoring',
  ] satisfies (keyof DeployConfig)[],
  gateway: [
    'build',
    'tag',
    'cpu',
    'memory',
    'logLevel',
    'upstreamTimeoutMs',
    'shutdownGraceMs',
  ] satisfies (keyof GatewayConfig)[],
  // flowiseVersion is read into app.build.args and app.tag; passwordSecret is derived, never set.
  app: [
    'preset',
    'container',
    'image',
    'build',
    'tag',
    'flowiseVersion',
    'port',
    'healthPath',
    'args',
    'env',
    'secrets',
    'cpu',
    'memory',
    'startupSeconds',
    'projectRoles',
  ] satisfies (keyof AppConfig | 'flowiseVersion')[],
  network: ['name', 'subnet', 'subnetRange'] satisfies (keyof NetworkConfig)[],
  database: [
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
  ] satisfies Exclude<keyof DatabaseConfig, 'passwordSecret'>[],
  storage: ['enabled', 'bucket'] satisfies (keyof StorageConfig)[],
  iapOAuthClient: ['clientId', 'secret'] satisfies (keyof IapOAuthClient)[],
  monitoring: MONITORING_FIELDS,
  build: ['context', 'dockerfile', 'args'] satisfies (keyof Build)[],
} as const

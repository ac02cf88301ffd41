// The doctor's view of the live project: read-only gcloud calls (describe, list, get-iam-policy), a few
// at a time, each at most once. A read ends as the resource, "not found", or an error the check reports
// as could-not-check (no permission, API off, gcloud missing) instead of guessing.
import type { DeployConfig } from '../config.ts'
import { type Gcloud, isNotFound } from '../gcloud.ts'
import type { BackendService } from '../steps/edge.ts'
import type { Policy } from '../steps/iam.ts'
import type { ListedAlertPolicy, LiveLogMetric } from '../steps/monitoring.ts'
import { names } from '../steps/names.ts'
import { cmd } from '../steps/types.ts'
import type { LiveService } from '../upgrade.ts'

/**
 * A read's outcome; `J` is what the command prints with --format=json, declared below with only the
 * fields the checks read (as Resource's `J`, ../steps/types.ts: parsed, not checked against it).
 */
export type Read<J = unknown> = { found: true; json: J } | { found: false } | { error: string }

/** `projects describe`: the number is a string in gcloud's JSON. */
export interface Project {
  projectNumber: string
}

/** One rule of a Cloud Armor security policy (compute v1 SecurityPolicyRule). */
export interface ArmorRule {
  priority: number
  /** `allow`, `deny(403)`, ... */
  action: string
  match?: { config?: { srcIpRanges?: string[] } }
}

/** `compute security-policies describe` (compute v1 SecurityPolicy); gcloud 528 prints a one-element list. */
export interface ArmorPolicy {
  rules?: ArmorRule[]
}

/** `compute target-https-proxies describe`: the attached SSL policy's URL, ending /sslPolicies/NAME. */
export interface HttpsProxy {
  sslPolicy?: string
}

/** `compute ssl-policies describe`. */
export interface SslPolicy {
  profile?: string
  minTlsVersion?: string
}

/** `compute ssl-certificates describe` of a Google-managed certificate. */
export interface ManagedCertificate {
  managed?: { status?: string; domains?: string[]; domainStatus?: Record<string, string> }
}

/** `sql instances describe` (Cloud SQL Admin DatabaseInstance): what the data checks read. */
export interface SqlInstance {
  ipAddresses?: { type?: string; ipAddress?: string }[]
  settings?: {
    ipConfiguration?: { ipv4Enabled?: boolean; sslMode?: string }
    backupConfiguration?: {
      enabled?: boolean
      pointInTimeRecoveryEnabled?: boolean
      /** An int64: a string in the API's JSON. */
      backupRetentionSettings?: { retainedBackups?: number | string }
      transactionLogRetentionDays?: number | string
    }
    deletionProtectionEnabled?: boolean
  }
}

/** `secrets versions describe` (Secret Manager SecretVersion). */
export interface SecretVersion {
  /** `ENABLED`, `DISABLED`, `DESTROYED`. */
  state?: string
}

/** Only these verbs are ever run: the doctor changes nothing. */
const READ_ONLY = /^(describe|list|get-iam-policy)$/

export class Reads {
  private readonly cache = new Map<string, Promise<Read>>()
  private running = 0
  private readonly queue: (() => void)[] = []

  private readonly gcloud: Gcloud
  readonly config: DeployConfig
  private readonly concurrency: number

  constructor(gcloud: Gcloud, config: DeployConfig, concurrency = 6) {
    this.gcloud = gcloud
    this.config = config
    this.concurrency = concurrency
  }

  get<J = unknown>(argv: string[]): Promise<Read<J>> {
    const verb = argv.find((a) => READ_ONLY.test(a))
    /* c8 ignore next -- a programming error: every read below uses a read-only verb */
    if (!verb) throw new Error(`doctor: not a read-only command: ${argv.join(' ')}`)
    const key = argv.join('\0')
    let pending = this.cache.get(key)
    if (!pending) {
      pending = this.limited(async () => {
        const r = await this.gcloud.run(cmd(argv))
        if (r.code === 0) return { found: true, json: r.stdout.trim() ? JSON.parse(r.stdout) : null }
        if (isNotFound(r.stderr)) return { found: false }
        return {
          error: this.gcloud.failure(cmd(argv), r).message.split('\n').filter(Boolean).at(-1) as string,
        }
      })
      this.cache.set(key, pending)
    }
    return pending as Promise<Read<J>>
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) await new Promise<void>((go) => this.queue.push(go))
    this.running += 1
    try {
      return await work()
    } finally {
      this.running -= 1
      this.queue.shift()?.()
    }
  }

  // The reads, by what they are about.
  private get n() {
    return names(this.config)
  }
  private get region() {
    return `--region=${this.config.region}`
  }
  project = () => this.get<Project>(['projects', 'describe', this.config.project])
  projectPolicy = () => this.get<Policy>(['projects', 'get-iam-policy', this.config.project])
  service = () => this.get<LiveService>(['run', 'services', 'describe', this.n.service, this.region])
  servicePolicy = () => this.get<Policy>(['run', 'services', 'get-iam-policy', this.n.service, this.region])
  backend = () =>
    this.get<BackendService>(['compute', 'backend-services', 'describe', this.n.backend, '--global'])
  iapPolicy = () =>
    this.get<Policy>([
      'iap',
      'web',
      'get-iam-policy',
      '--resource-type=backend-services',
      `--service=${this.n.backend}`,
    ])
  armor = () =>
    this.get<ArmorPolicy | ArmorPolicy[]>(['compute', 'security-policies', 'describe', this.n.armor])
  httpsProxy = () =>
    this.get<HttpsProxy>(['compute', 'target-https-proxies', 'describe', this.n.httpsProxy, '--global'])
  sslPolicy = (name: string) => this.get<SslPolicy>(['compute', 'ssl-policies', 'describe', name, '--global'])
  certificate = () =>
    this.get<ManagedCertificate>(['compute', 'ssl-certificates', 'describe', this.n.cert, '--global'])
  sql = () => this.get<SqlInstance>(['sql', 'instances', 'describe', this.config.database.instance])
  secretVersion = (secret: string, version: string) =>
    this.get<SecretVersion>(['secrets', 'versions', 'describe', version, `--secret=${secret}`])
  secretPolicy = (secret: string) => this.get<Policy>(['secrets', 'get-iam-policy', secret])
  metric = (name: string) => this.get<LiveLogMetric>(['logging', 'metrics', 'describe', name])
  alertPolicies = () => this.get<ListedAlertPolicy[]>(['alpha', 'monitoring', 'policies', 'list'])
}

// The doctor's view of the live project: read-only gcloud calls (describe, list, get-iam-policy), a few
// at a time, each at most once. A read ends as the resource, "not found", or an error the check reports
// as could-not-check (no permission, API off, gcloud missing) instead of guessing.
import type { DeployConfig } from '../config.ts'
import { type Gcloud, isNotFound } from '../gcloud.ts'
import { names } from '../steps/names.ts'
import { cmd } from '../steps/types.ts'

export type Read = { found: true; json: any } | { found: false } | { error: string }

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

  get(argv: string[]): Promise<Read> {
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
    return pending
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
  project = () => this.get(['projects', 'describe', this.config.project])
  projectPolicy = () => this.get(['projects', 'get-iam-policy', this.config.project])
  service = () => this.get(['run', 'services', 'describe', this.n.service, this.region])
  servicePolicy = () => this.get(['run', 'services', 'get-iam-policy', this.n.service, this.region])
  backend = () => this.get(['compute', 'backend-services', 'describe', this.n.backend, '--global'])
  iapPolicy = () =>
    this.get([
      'iap',
      'web',
      'get-iam-policy',
      '--resource-type=backend-services',
      `--service=${this.n.backend}`,
    ])
  armor = () => this.get(['compute', 'security-policies', 'describe', this.n.armor])
  httpsProxy = () => this.get(['compute', 'target-https-proxies', 'describe', this.n.httpsProxy, '--global'])
  sslPolicy = (name: string) => this.get(['compute', 'ssl-policies', 'describe', name, '--global'])
  certificate = () => this.get(['compute', 'ssl-certificates', 'describe', this.n.cert, '--global'])
  sql = () => this.get(['sql', 'instances', 'describe', this.config.database.instance])
  secretVersion = (secret: string, version: string) =>
    this.get(['secrets', 'versions', 'describe', version, `--secret=${secret}`])
  secretPolicy = (secret: string) => this.get(['secrets', 'get-iam-policy', secret])
  metric = (name: string) => this.get(['logging', 'metrics', 'describe', name])
  alertPolicies = () => this.get(['alpha', 'monitoring', 'policies', 'list'])
}

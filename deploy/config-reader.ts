// The config reader: typed reads of a parsed YAML tree by dotted path, each problem recorded with the
// field and the bad value so the caller can report them all at once. The validators (config-*.ts) read
// every field through it.

export type Raw = Record<string, unknown>

/** A resource name the deploy derives others from (service, repository, container, network). */
export const NAME = /^[a-z][a-z0-9-]{0,18}[a-z0-9]$/
export const NAME_HINT = 'must be 2-20 lowercase letters, digits or hyphens'
/** A docker image tag. */
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
export const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/

export class Reader {
  readonly problems: string[] = []
  private readonly root: Raw

  constructor(root: Raw) {
    this.root = root
  }

  private at(path: string): unknown {
    let v: unknown = this.root
    for (const key of path.split('.')) v = v && typeof v === 'object' ? (v as Raw)[key] : undefined
    return v
  }

  problem(path: string, message: string, value?: unknown): void {
    const shown = value === undefined ? '' : ` (got ${JSON.stringify(value)})`
    this.problems.push(`${path}: ${message}${shown}`)
  }

  string(path: string, fallback?: string, re?: RegExp, hint = 'has an invalid format'): string {
    const v = this.at(path)
    if (v === undefined || v === null) {
      if (fallback === undefined) this.problem(path, 'is required')
      return fallback ?? ''
    }
    if (typeof v !== 'string' && typeof v !== 'number') {
      this.problem(path, 'must be a string', v)
      return fallback ?? ''
    }
    const s = String(v)
    if (re && !re.test(s)) this.problem(path, hint, s)
    return s
  }

  int(path: string, fallback: number, min: number, max: number): number {
    const v = this.at(path)
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`
      this.problem(path, `must be an integer ${range}`, v)
      return fallback
    }
    return v
  }

  bool(path: string, fallback: boolean): boolean {
    const v = this.at(path)
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'boolean') this.problem(path, 'must be true or false', v)
    return v === true
  }

  list(path: string, fallback: string[] = []): string[] {
    const v = this.at(path)
    if (v === undefined || v === null) return fallback
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      this.problem(path, 'must be a list of strings', v)
      return fallback
    }
    return v as string[]
  }

  map(path: string): Record<string, unknown> {
    const v = this.at(path)
    if (v === undefined || v === null) return {}
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.problem(path, 'must be a mapping', v)
      return {}
    }
    return v as Record<string, unknown>
  }

  /** One of `values`; the problem lists them. */
  choice<T extends string>(path: string, fallback: T, values: readonly T[]): T {
    const v = this.string(path, fallback)
    if ((values as readonly string[]).includes(v)) return v as T
    this.problem(path, `must be one of ${values.join(', ')}`, v)
    return fallback
  }

  /** Whether a problem names this field already (another check of the same field need not repeat it). */
  reported(path: string): boolean {
    return this.problems.some((p) => p.startsWith(`${path}:`) || p.startsWith(`${path}[`))
  }

  has(path: string): boolean {
    return this.at(path) !== undefined
  }

  /** Unknown keys are typos until proven otherwise. */
  known(path: string, keys: string[]): void {
    const v = path ? this.at(path) : this.root
    if (!v || typeof v !== 'object' || Array.isArray(v)) return
    for (const k of Object.keys(v)) {
      if (!keys.includes(k))
        this.problem(path ? `${path}.${k}` : k, `is not a known field (known: ${keys.join(', ')})`)
    }
  }
}

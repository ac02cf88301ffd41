// Reads a parsed YAML document by field path (spec.template.spec.containers[1].ports[0].containerPort,
// metadata.annotations["run.googleapis.com/ingress"]) and collects every problem with its path, so
// that all of them are reported together, as deploy/config.ts does for the deploy config.
type Raw = Record<string, unknown>

const SEGMENT = /\.?([A-Za-z_$][\w$-]*)|\[(\d+)\]|\["([^"]*)"\]/y

function segments(path: string): (string | number)[] {
  const out: (string | number)[] = []
  SEGMENT.lastIndex = 0
  while (SEGMENT.lastIndex < path.length) {
    const match = SEGMENT.exec(path)
    /* c8 ignore next -- paths are written by this module's callers, never by users */
    if (!match) throw new Error(`bad field path: ${path}`)
    out.push(match[2] !== undefined ? Number(match[2]) : ((match[1] ?? match[3]) as string))
  }
  return out
}

const isMapping = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v)

export class Reader {
  readonly problems: string[] = []
  private readonly root: unknown

  constructor(root: unknown) {
    this.root = root
  }

  value(path: string): unknown {
    let v: unknown = this.root
    for (const key of segments(path)) {
      if (typeof key === 'number') v = Array.isArray(v) ? v[key] : undefined
      else v = isMapping(v) ? v[key] : undefined
    }
    return v
  }

  has(path: string): boolean {
    return this.value(path) !== undefined && this.value(path) !== null
  }

  problem(path: string, message: string, value?: unknown): void {
    const shown = value === undefined ? '' : ` (got ${JSON.stringify(value)})`
    this.problems.push(`${path}: ${message}${shown}`)
  }

  /** A mapping, or undefined when absent (a problem when it is something else). */
  object(path: string): Raw | undefined {
    const v = this.value(path)
    if (v === undefined || v === null) return undefined
    if (isMapping(v)) return v
    this.problem(path, 'must be a mapping', v)
    return undefined
  }

  /** A list ([] when absent; a problem when it is something else). */
  list(path: string): unknown[] {
    const v = this.value(path)
    if (v === undefined || v === null) return []
    if (Array.isArray(v)) return v
    this.problem(path, 'must be a list', v)
    return []
  }

  /** A string; required unless a fallback is given. Numbers are refused: Kubernetes fields are strings. */
  string(path: string, fallback?: string): string {
    const v = this.value(path)
    if (v === undefined || v === null) {
      if (fallback === undefined) this.problem(path, 'is required')
      return fallback ?? ''
    }
    if (typeof v === 'string') return v
    this.problem(path, 'must be a string (quote it in the YAML)', v)
    return fallback ?? ''
  }

  strings(path: string): string[] {
    return this.list(path).map((_, i) => this.string(`${path}[${i}]`))
  }

  integer(path: string, fallback: number, min: number, max: number): number {
    const v = this.value(path)
    if (v === undefined || v === null) return fallback
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v
    this.problem(path, `must be an integer from ${min} to ${max}`, v)
    return fallback
  }
}

// Reading environment variables for proxy/config.ts: typed reads that note a problem and go on.
export type Env = Readonly<Record<string, string | undefined>>

/**
 * The one way the gateway reads a setting: each reader notes a problem (naming the variable and the
 * bad value) and returns the default, so reading goes on and every problem is reported together.
 */
export interface Settings {
  /** The trimmed value; undefined when unset or blank. */
  text(name: string): string | undefined
  integer(name: string, fallback: number, min: number, max: number): number
  boolean(name: string, fallback: boolean): boolean
  /** A comma-separated list, blank entries dropped. */
  list(name: string): string[]
  /** A bad value: `NAME (value): why`. The value shown must never be a secret. */
  problem(name: string, value: string, why: string): void
  /** A missing value: `NAME: why`. */
  missing(name: string, why: string): void
  readonly problems: readonly string[]
}

export function readSettings(env: Env): Settings {
  const problems: string[] = []
  const problem = (name: string, value: string, why: string) =>
    void problems.push(`${name} (${value}): ${why}`)
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === '' ? undefined : value
  }
  return {
    text,
    integer(name, fallback, min, max) {
      const value = text(name)
      if (value === undefined) return fallback
      if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
        problem(name, value, `not an integer between ${min} and ${max}`)
        return fallback
      }
      return Number(value)
    },
    boolean(name, fallback) {
      const value = text(name)
      if (value === undefined) return fallback
      if (value !== 'true' && value !== 'false') problem(name, value, 'must be true or false')
      return value === 'true'
    },
    list: (name) =>
      (text(name) ?? '')
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    problem,
    missing: (name, why) => void problems.push(`${name}: ${why}`),
    problems,
  }
}

// What a doctor check is: one security invariant the deploy promises, checked against the live project,
// ending pass, fail or could-not-check, each with the reason in words (never a secret value).
import type { Read, Reads } from './reads.ts'

export type Verdict = 'pass' | 'fail' | 'could-not-check'

export interface Outcome {
  verdict: Verdict
  reason: string
}

export interface Invariant {
  /** Stable id for `--format json` and CI filters. */
  id: string
  /** The invariant, as a sentence that is true when it passes. */
  title: string
  when?: (r: Reads) => boolean
  check: (r: Reads) => Promise<Outcome>
}

/** A read the check cannot do without: its error ends the check as could-not-check. */
export class CouldNotRead extends Error {}

/** The resource, undefined when it does not exist, or could-not-check when it cannot be read. */
export function need<J>(read: Read<J>, what: string): J | undefined {
  if ('error' in read) throw new CouldNotRead(`cannot read ${what}: ${read.error}`)
  return read.found ? read.json : undefined
}

/**
 * The project's number, which names the IAP service agent, the audience and the run.app URL. A project
 * gcloud cannot find ends the check as could-not-check: with no number there is nothing to compare.
 */
export async function projectNumber(r: Reads): Promise<string> {
  const project = need(await r.project(), `project ${r.config.project}`)
  if (!project) throw new CouldNotRead(`cannot read project ${r.config.project}: not found`)
  return project.projectNumber
}

export const pass = (reason: string): Outcome => ({ verdict: 'pass', reason })
export const fail = (reason: string): Outcome => ({ verdict: 'fail', reason })

/** Runs one invariant; a read it cannot do, or a surprise, is could-not-check with the reason. */
export async function evaluate(inv: Invariant, r: Reads): Promise<Outcome> {
  try {
    return await inv.check(r)
  } catch (error) {
    if (error instanceof CouldNotRead) return { verdict: 'could-not-check', reason: error.message }
    // A bug in a check: reported, not hidden, and the other checks still run.
    return { verdict: 'could-not-check', reason: `check failed: ${(error as Error).message}` }
  }
}

/** Google's single-element list for some describes (gcloud 528 `security-policies describe`). */
export function one<T extends object>(json: T | T[] | undefined): T | undefined {
  return Array.isArray(json) ? json[0] : json
}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n')
}

// `doctor`: reads the live deployment (describe, list, get-iam-policy only) and checks every security
// invariant the deploy promises, then what a browser meets from outside. One line per invariant: pass,
// fail or could-not-check, with the reason. Exit 0 only when all pass. Secret values are never read:
// secrets are checked by version state and IAM policy.
import type { DeployConfig } from './config.ts'
import { dataInvariants } from './doctor/checks-data.ts'
import { edgeInvariants } from './doctor/checks-edge.ts'
import { evaluate, type Invariant, type Verdict } from './doctor/invariant.ts'
import { type OutsideTargets, outsideInvariants } from './doctor/outside.ts'
import { Reads } from './doctor/reads.ts'
import type { Gcloud } from './gcloud.ts'

export type { OutsideTargets }

export interface Finding {
  id: string
  title: string
  verdict: Verdict
  reason: string
}

export function invariants(c: DeployConfig, outside?: OutsideTargets): Invariant[] {
  return [...edgeInvariants, ...dataInvariants, ...outsideInvariants(c, outside)]
}

export async function doctor(gcloud: Gcloud, c: DeployConfig, outside?: OutsideTargets): Promise<Finding[]> {
  const reads = new Reads(gcloud, c)
  const todo = invariants(c, outside).filter((inv) => (inv.when ? inv.when(reads) : true))
  return Promise.all(
    todo.map(async (inv) => ({ id: inv.id, title: inv.title, ...(await evaluate(inv, reads)) })),
  )
}

const LABEL: Record<Verdict, string> = { pass: 'PASS', fail: 'FAIL', 'could-not-check': '????' }

export function formatFindings(findings: Finding[], format: 'text' | 'json'): string {
  const count = (v: Verdict) => findings.filter((f) => f.verdict === v).length
  const summary = {
    passed: count('pass'),
    failed: count('fail'),
    couldNotCheck: count('could-not-check'),
  }
  if (format === 'json') {
    return `${JSON.stringify({ ok: summary.passed === findings.length, ...summary, findings }, null, 2)}\n`
  }
  const lines = findings.map((f) => `${LABEL[f.verdict]}  ${f.id}: ${f.title}: ${f.reason}`)
  lines.push(
    '',
    `${summary.passed} passed, ${summary.failed} failed, ${summary.couldNotCheck} could not be checked (???? above)`,
  )
  return `${lines.join('\n')}\n`
}

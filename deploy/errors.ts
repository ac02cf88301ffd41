// The one table of the deploy's coded errors, for every verb (plan, apply, destroy, render,
// rotate-db-password) and for run-local: each code's exit status and what it means. Every code has a
// row in the errors table of docs/deploy.md or docs/run-local.md, with this exit status, and every row
// names a code of this table (test/deploy/errors.test.ts, as fastify's test/internals/errors.test.js
// checks lib/errors.js). A message says what failed in words a person can act on, naming the field or
// option and the bad value, never a secret.
import type { Output } from './progress.ts'

export const DEPLOY_ERRORS = {
  DEPLOY_ERR_CONFIG: { exit: 2, summary: 'invalid deploy config' },
  DEPLOY_ERR_USAGE: { exit: 2, summary: 'invalid command line' },
  DEPLOY_ERR_GCLOUD: { exit: 1, summary: 'a gcloud command failed' },
  DEPLOY_ERR_TIMEOUT: { exit: 1, summary: 'a gcloud command ran out of time' },
  DEPLOY_ERR_DRIFT: { exit: 1, summary: 'a resource differs from the config and cannot be updated in place' },
  DEPLOY_ERR_REFUSED: { exit: 1, summary: 'refused before anything changed' },
  RUN_LOCAL_ERR_SERVICE: { exit: 2, summary: 'the service YAML is not one Cloud Run would accept' },
  RUN_LOCAL_ERR_UNSUPPORTED: { exit: 2, summary: 'the service YAML asks for something run-local cannot run' },
  RUN_LOCAL_ERR_USAGE: { exit: 2, summary: 'invalid run-local options' },
  RUN_LOCAL_ERR_START: { exit: 1, summary: 'the service did not start' },
} as const satisfies Record<string, { exit: 1 | 2; summary: string }>

export type DeployErrorCode = keyof typeof DEPLOY_ERRORS

export class DeployError extends Error {
  readonly code: DeployErrorCode
  /** Every problem found, each naming its field or option; one for a message given whole. */
  readonly problems: readonly string[]

  /**
   * A message given whole is shown as it is; a list of problems (a validator's, all found at once) is
   * shown after the code's summary: on the same line when there is one, one per line when there are more.
   */
  constructor(code: DeployErrorCode, problems: string | readonly string[]) {
    const list = typeof problems === 'string' ? [problems] : problems
    const summary = DEPLOY_ERRORS[code].summary
    super(
      typeof problems === 'string'
        ? problems
        : list.length === 1
          ? `${summary}: ${list[0]}`
          : `${summary}:\n  - ${list.join('\n  - ')}`,
    )
    this.name = 'DeployError'
    this.code = code
    this.problems = Object.freeze([...list])
  }

  /** 2: fix the config, options or service and run again; 1: it failed on the way (see the message). */
  get exitCode(): 1 | 2 {
    return DEPLOY_ERRORS[this.code].exit
  }
}

/** How every verb ends on a coded error: `CODE: message` on stderr, the code's exit status. */
export function reportError(error: unknown, stderr: Output): number {
  /* c8 ignore next -- a bug, not an operational failure: keep the stack */
  if (!(error instanceof DeployError)) throw error
  stderr.write(`${error.code}: ${error.message}\n`)
  return error.exitCode
}

// Coded run-local errors (a closed union, as deploy/errors.ts): what failed, naming the YAML field or
// the option, never a secret value. Every code is documented in docs/run-local.md (a test checks).
export const RUN_LOCAL_ERRORS = {
  /** The service YAML asks for something Cloud Run would refuse. */
  RUN_LOCAL_ERR_SERVICE: 'the service YAML is not one Cloud Run would accept',
  /** Cloud Run would accept it, but it cannot be run here (a gRPC probe, an NFS volume, ...). */
  RUN_LOCAL_ERR_UNSUPPORTED: 'the service YAML asks for something run-local cannot run',
  /** Bad command-line options or deploy config for run-local. */
  RUN_LOCAL_ERR_USAGE: 'invalid run-local options',
  /** A container did not start: it exited, or its startup probe failed within its window. */
  RUN_LOCAL_ERR_START: 'the service did not start',
} as const

export type RunLocalErrorCode = keyof typeof RUN_LOCAL_ERRORS

export class RunLocalError extends Error {
  readonly code: RunLocalErrorCode
  readonly problems: readonly string[]

  constructor(code: RunLocalErrorCode, problems: readonly string[]) {
    super(
      problems.length === 1
        ? `${RUN_LOCAL_ERRORS[code]}: ${problems[0]}`
        : `${RUN_LOCAL_ERRORS[code]}:\n  - ${problems.join('\n  - ')}`,
    )
    this.name = 'RunLocalError'
    this.code = code
    this.problems = Object.freeze([...problems])
  }
}

// run-local's errors: the RUN_LOCAL_ERR_* codes of the deploy's one table (../errors.ts), each with
// every problem found, naming the YAML field or the option, never a secret value.
import { DeployError, type DeployErrorCode } from '../errors.ts'

export type RunLocalErrorCode = Extract<DeployErrorCode, `RUN_LOCAL_ERR_${string}`>

export class RunLocalError extends DeployError {
  declare readonly code: RunLocalErrorCode

  constructor(code: RunLocalErrorCode, problems: readonly string[]) {
    super(code, problems)
    this.name = 'RunLocalError'
  }
}

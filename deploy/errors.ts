// Coded deploy errors: what failed, in words a person can act on, never a secret.
export type DeployErrorCode =
  | 'DEPLOY_ERR_CONFIG'
  | 'DEPLOY_ERR_USAGE'
  | 'DEPLOY_ERR_GCLOUD'
  | 'DEPLOY_ERR_TIMEOUT'
  | 'DEPLOY_ERR_DRIFT'
  | 'DEPLOY_ERR_REFUSED'

export class DeployError extends Error {
  readonly code: DeployErrorCode

  constructor(code: DeployErrorCode, message: string) {
    super(message)
    this.name = 'DeployError'
    this.code = code
  }
}

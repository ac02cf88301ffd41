// The steps in apply order; destroy walks them backwards. The backend service (edge) comes before the
// Cloud Run service so the service's very first revision already carries the real IAP audience.
import type { DeployConfig } from '../config.ts'
import { apisStep } from './apis.ts'
import { databaseStep } from './database.ts'
import { edgeStep } from './edge.ts'
import { frontendStep } from './frontend.ts'
import { identityStep } from './identity.ts'
import { imagesStep } from './images.ts'
import { monitoringStep } from './monitoring.ts'
import { runStep } from './run.ts'
import { secretsStep } from './secrets.ts'
import { storageStep } from './storage.ts'
import type { Step } from './types.ts'

export function steps(c: DeployConfig): Step[] {
  return [
    apisStep,
    identityStep,
    secretsStep(c),
    imagesStep(c),
    databaseStep(c),
    storageStep(c),
    edgeStep(c),
    runStep(c),
    frontendStep(c),
    monitoringStep(c),
  ].filter((s) => (s.when ? s.when(c) : true) && s.resources.length > 0)
}

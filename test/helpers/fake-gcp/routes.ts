import { buildRoutes as artifactAndBuildRoutes } from './build.ts'
import { computeRoutes } from './compute.ts'
import { iapRoutes } from './iap.ts'
import { observabilityRoutes } from './observability.ts'
import { projectRoutes } from './project.ts'
import { runRoutes } from './run.ts'
import { secretRoutes } from './secrets.ts'
import type { Route } from './server.ts'
import { sqlRoutes } from './sql.ts'
import { sqlBackupRoutes } from './sql-backups.ts'
import { storageRoutes } from './storage.ts'

export function buildRoutes(): Route[] {
  return [
    ...computeRoutes(),
    ...runRoutes(),
    ...sqlRoutes(),
    ...sqlBackupRoutes(),
    ...secretRoutes(),
    ...projectRoutes(),
    ...storageRoutes(),
    ...artifactAndBuildRoutes(),
    ...iapRoutes(),
    ...observabilityRoutes(),
  ]
}

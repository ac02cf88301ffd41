// Cloud SQL Admin API (v1beta4) backup runs: the on-demand backups `gcloud sql backups create|list|describe
// --instance=I` make and read (gcloud 528 calls backupRuns when --instance is given, its list.py/create.py).
// Sources: sql/docs/postgres/backup-recovery/backing-up ("Create an on-demand backup": POST
// .../instances/INSTANCE/backupRuns, then list them); the BackupRun REST reference (id, status
// SUCCESSFUL, type ON_DEMAND or AUTOMATED, description, windowStartTime).
import type { Route } from './server.ts'
import { found, notFound } from './server.ts'

const RUNS = '^/sql/v1beta4/projects/([^/]+)/instances/([^/]+)/backupRuns'

export function sqlBackupRoutes(): Route[] {
  return [
    {
      method: 'POST',
      re: new RegExp(`${RUNS}$`),
      handle: ({ fake, m, body }) => {
        if (!fake.resources.has(`sql:${m[1]}/${m[2]}`)) return notFound(`instance ${m[2]}`)
        const id = fake.id()
        const at = new Date(Date.UTC(2026, 0, 1) + Number(id) * 1000).toISOString()
        fake.resources.set(`sql-run:${m[1]}/${m[2]}/${id}`, {
          kind: 'sql#backupRun',
          id,
          instance: m[2],
          status: 'SUCCESSFUL',
          type: 'ON_DEMAND',
          backupKind: 'SNAPSHOT',
          ...(body?.description ? { description: body.description } : {}),
          enqueuedTime: at,
          startTime: at,
          endTime: at,
          windowStartTime: at,
        })
        // The operation names the backup it made (Operation.backupContext.backupId, v1beta4 reference).
        const name = `op-${fake.id()}`
        const op = {
          kind: 'sql#operation',
          name,
          status: 'DONE',
          operationType: 'BACKUP_VOLUME',
          targetId: m[2],
          targetProject: m[1],
          backupContext: { kind: 'sql#backupContext', backupId: id },
        }
        fake.resources.set(`sql-op:${m[1]}/${name}`, op)
        return { status: 200, body: op }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${RUNS}$`),
      handle: ({ fake, m }) => {
        if (!fake.resources.has(`sql:${m[1]}/${m[2]}`)) return notFound(`instance ${m[2]}`)
        // Newest first; the deploy does not rely on the order (it looks a backup up by its description).
        const items = [...fake.resources]
          .filter(([k]) => k.startsWith(`sql-run:${m[1]}/${m[2]}/`))
          .map(([, v]) => v)
          .reverse()
        return { status: 200, body: { kind: 'sql#backupRunsList', items } }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${RUNS}/([^/]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`sql-run:${m[1]}/${m[2]}/${m[3]}`), `backup ${m[3]}`),
    },
  ]
}

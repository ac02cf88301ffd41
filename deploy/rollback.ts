// `rollback`: all traffic back to the newest ready revision before the one serving now
// (run/docs/rollouts-rollbacks-traffic-migration: `gcloud run services update-traffic --to-revisions`).
// It moves traffic only. Database migrations the newer version ran stay: the older app now runs on the
// newer schema. The restore command for the backup `apply` took before the upgrade is printed, not run:
// restoring overwrites everything written since.
import type { DeployConfig } from './config.ts'
import { DeployError } from './errors.ts'
import type { Gcloud } from './gcloud.ts'
import type { Progress } from './progress.ts'
import { names } from './steps/names.ts'
import { cmd } from './steps/types.ts'
import {
  BACKUP_PREFIX,
  type BackupRun,
  type LiveContainer,
  type LiveService,
  liveService,
  restoreCommand,
  type TrafficTarget,
} from './upgrade.ts'

/** One entry of `run revisions list` (Knative v1 Revision). */
interface Revision {
  /** Knative labels every revision with its Configuration's generation, which orders them. */
  metadata: { name: string; labels: Record<string, string> }
  /** Knative's RevisionSpec: containers is required. */
  spec: { containers: LiveContainer[] }
  status?: { conditions?: { type: string; status?: string }[] }
}

const ready = (r: Revision) =>
  (r.status?.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'True')
/** NaN without the label: such a revision is neither older nor newer than any, so never the target. */
const generation = (r: Revision) => Number(r.metadata.labels['serving.knative.dev/configurationGeneration'])

/** The revision taking (most of) the traffic now. */
export function servingRevision(service: LiveService | undefined): string | undefined {
  const targets: TrafficTarget[] = service?.status?.traffic ?? []
  return [...targets].sort((a, b) => Number(b.percent ?? 0) - Number(a.percent ?? 0))[0]?.revisionName
}

export async function rollback(gcloud: Gcloud, c: DeployConfig, progress: Progress): Promise<void> {
  const n = names(c)
  const region = `--region=${c.region}`
  const service = await liveService(gcloud, c)
  if (!service) throw new DeployError('DEPLOY_ERR_REFUSED', `rollback: service ${n.service} does not exist`)
  const current = servingRevision(service)
  const listed = await gcloud.must(cmd(['run', 'revisions', 'list', `--service=${n.service}`, region]))
  const revisions = (JSON.parse(listed.stdout) as Revision[]).sort((a, b) => generation(b) - generation(a))
  // A revision that serves cannot be deleted (run/docs/managing/revisions), so it is listed; no serving
  // revision means a status without traffic, and "older" would mean nothing: refused, not guessed.
  const serving = revisions.find((r) => r.metadata.name === current)
  if (!serving) {
    throw new DeployError(
      'DEPLOY_ERR_REFUSED',
      `rollback: cannot tell which revision of ${n.service} serves now (traffic: ${current ?? 'none'})`,
    )
  }
  const target = revisions.find((r) => ready(r) && generation(r) < generation(serving))
  if (!target) {
    throw new DeployError(
      'DEPLOY_ERR_REFUSED',
      `rollback: no ready revision of ${n.service} older than ${current}`,
    )
  }
  const to = target.metadata.name
  const move = cmd(['run', 'services', 'update-traffic', n.service, `--to-revisions=${to}=100`, region], {
    long: true,
  })
  await progress.track(`  gcloud ${move.argv.join(' ')}`, () => gcloud.must(move))
  const images = target.spec.containers.map((x) => `${x.name} ${x.image}`).join(', ')
  progress.line(`Traffic: 100% to ${to} (was ${current}). It runs ${images}.`)
  progress.line(
    'Database migrations are NOT undone: the newer version may have changed the schema the older one now runs on.',
  )
  if (c.database.enabled) {
    const list = await gcloud.must(cmd(['sql', 'backups', 'list', `--instance=${c.database.instance}`]))
    const taken = (JSON.parse(list.stdout) as BackupRun[]).find(
      (b) => b.description === `${BACKUP_PREFIX}${to}`,
    )
    progress.line(
      taken
        ? `To put the database back as it was before the upgrade (this loses everything written since): ${restoreCommand(c, String(taken.id))}`
        : `No backup taken by an upgrade from ${to} was found on ${c.database.instance}: list them with gcloud sql backups list --instance=${c.database.instance} --project=${c.project}`,
    )
  }
  progress.line(
    'Traffic stays here while the config is unchanged; set the version back in the config before the next apply that changes the service (docs/deploy.md, "Upgrading").',
  )
}

// An upgrade is an `apply` that changes an image the service runs (app.flowiseVersion, app.tag, app.image
// or gateway.tag). Flowise runs its database migrations when it starts, before it listens, and they are
// not undone by going back to the older image: so before the new revision is created, an on-demand Cloud
// SQL backup is taken and waited for (sql/docs/postgres/backup-recovery/backing-up). Its description
// names the revision that served before, so `rollback` finds the backup that belongs to it.
//
// A new revision that never becomes ready takes no traffic: the service routes to "the latest ready
// Revision" (Cloud Run Admin API v1, TrafficTarget.latestRevision), so the previous one keeps serving.
import type { DeployConfig } from './config.ts'
import type { Engine, Planned } from './engine.ts'
import { type Gcloud, isNotFound } from './gcloud.ts'
import type { Progress } from './progress.ts'
import { imageRef } from './service-yaml.ts'
import { names } from './steps/names.ts'
import type { RunService } from './steps/run.ts'
import { cmd, type Step } from './steps/types.ts'

export const BACKUP_PREFIX = 'iap-gateway: before the upgrade from revision '

export interface Upgrade {
  previousRevision: string
  changed: string[]
  backupId?: string
}

/** A container of a live service or revision (Knative v1 Container): its name, image and environment. */
export interface LiveContainer {
  name: string
  image?: string
  env?: { name: string; value?: string }[]
}

/** One traffic target in a service's status (Cloud Run Admin API v1 TrafficTarget). */
export interface TrafficTarget {
  revisionName?: string
  percent?: number
}

/** `run services describe` (Knative v1 Service) with the fields upgrade, rollback and doctor read. */
export interface LiveService extends RunService {
  metadata?: { annotations?: Record<string, string> }
  spec?: { template?: { spec?: { serviceAccountName?: string; containers?: LiveContainer[] } } }
  status?: RunService['status'] & { url?: string; traffic?: TrafficTarget[] }
}

/** One entry of `sql backups list` (Cloud SQL Admin BackupRun). */
export interface BackupRun {
  /** An int64: a string in the API's JSON. */
  id: number | string
  description?: string
  /** `SUCCESSFUL` once taken. */
  status?: string
  windowStartTime?: string
}

/** The images the config asks for, by container name. */
export function wantedImages(c: DeployConfig): Record<string, string> {
  return {
    gateway: imageRef(c, 'gateway', c.gateway.tag),
    [c.app.container]: c.app.image ?? imageRef(c, c.app.container, c.app.tag),
  }
}

/** The live service, or undefined before the first apply. */
export async function liveService(gcloud: Gcloud, c: DeployConfig): Promise<LiveService | undefined> {
  const command = cmd(['run', 'services', 'describe', names(c).service, `--region=${c.region}`])
  const r = await gcloud.run(command)
  if (r.code === 0) return JSON.parse(r.stdout) as LiveService
  if (isNotFound(r.stderr)) return undefined
  throw gcloud.failure(command, r)
}

/** What changes between the serving revision and the config: `flowise: ...:3.1.4 -> ...:3.1.5`. */
export function imageChanges(c: DeployConfig, live: LiveService | undefined): string[] {
  const have = Object.fromEntries(
    (live?.spec?.template?.spec?.containers ?? []).map((x): [string, string] => [x.name, String(x.image)]),
  )
  return Object.entries(wantedImages(c))
    .filter(([name, image]) => have[name] !== undefined && have[name] !== image)
    .map(([name, image]) => `${name}: ${have[name]} -> ${image}`)
}

/** Takes the on-demand backup and returns its id (gcloud waits for the operation, then lists to find it). */
async function backup(
  gcloud: Gcloud,
  c: DeployConfig,
  progress: Progress,
  previous: string,
): Promise<string> {
  const instance = c.database.instance
  const description = `${BACKUP_PREFIX}${previous}`
  const create = cmd(['sql', 'backups', 'create', `--instance=${instance}`, `--description=${description}`], {
    long: true,
  })
  await progress.track(`  gcloud ${create.argv.join(' ')}`, () => gcloud.must(create))
  const list = await gcloud.must(cmd(['sql', 'backups', 'list', `--instance=${instance}`]))
  const found = (JSON.parse(list.stdout) as BackupRun[])
    .filter((b) => b.description === description && b.status === 'SUCCESSFUL')
    .sort((a, b) => String(b.windowStartTime).localeCompare(String(a.windowStartTime)))[0]
  /* c8 ignore next -- defensive: gcloud returned only once the backup operation was DONE */
  if (!found) throw new Error(`backup "${description}" of ${instance} not found after it was taken`)
  return String(found.id)
}

export function restoreCommand(c: DeployConfig, backupId: string): string {
  const i = c.database.instance
  return `gcloud sql backups restore ${backupId} --restore-instance=${i} --backup-instance=${i} --project=${c.project}`
}

/**
 * `apply`, with the backup taken between the steps before the service (images built, database patched)
 * and the service itself. Prints the backup id and the previous revision either way it ends.
 */
export async function applyWithUpgrade(
  engine: Engine,
  gcloud: Gcloud,
  c: DeployConfig,
  all: Step[],
  progress: Progress,
): Promise<{ done: Planned[]; upgrade?: Upgrade }> {
  const live = await liveService(gcloud, c)
  const changed = imageChanges(c, live)
  const previous = live?.status?.latestReadyRevisionName
  if (changed.length === 0 || !previous) return { done: await engine.apply(all) }
  const at = all.findIndex((s) => s.id === 'run')
  const done = await engine.apply(all.slice(0, at))
  progress.line(`== Upgrade from revision ${previous}: ${changed.join('; ')}`)
  const upgrade: Upgrade = { previousRevision: previous, changed }
  if (c.database.enabled) {
    upgrade.backupId = await backup(gcloud, c, progress, previous)
    progress.line(`Backup ${upgrade.backupId} of ${c.database.instance} taken before the upgrade.`)
  } else {
    progress.line('No database in this config: no backup taken.')
  }
  try {
    done.push(...(await engine.apply(all.slice(at))))
  } catch (error) {
    progress.line('')
    progress.line(
      `The new revision did not become ready: traffic stays on ${previous}.${upgrade.backupId ? ` Backup: ${upgrade.backupId}.` : ''}`,
    )
    throw error
  }
  return { done, upgrade }
}

// The invariants of what the service holds and runs as: Cloud SQL (no public IP, TLS, backups with
// point-in-time recovery, deletion protection), the secrets it references, the runtime account's project
// roles, and the metrics and alert `apply` makes.

import { membersOf } from '../steps/iam.ts'
import { runtimeRoles } from '../steps/identity.ts'
import { alertPolicyName, type ListedAlertPolicy, logMetrics } from '../steps/monitoring.ts'
import { member, names } from '../steps/names.ts'
import type { LiveService } from '../upgrade.ts'
import { CouldNotRead, fail, type Invariant, need, pass, projectNumber } from './invariant.ts'
import type { Reads, SqlInstance } from './reads.ts'

const ACCESSOR = 'roles/secretmanager.secretAccessor'

async function instance(r: Reads): Promise<SqlInstance | undefined> {
  return need(await r.sql(), `Cloud SQL instance ${r.config.database.instance}`)
}

const noInstance = (r: Reads) => fail(`Cloud SQL instance ${r.config.database.instance} does not exist`)
const withDatabase = (r: Reads) => r.config.database.enabled

/** `sm://PROJECT/SECRET#VERSION` references in every container's environment. */
function secretRefs(svc: LiveService): { env: string; secret: string; version: string }[] {
  return (svc?.spec?.template?.spec?.containers ?? []).flatMap((c) =>
    (c.env ?? []).flatMap((e) => {
      const m = /^sm:\/\/[^/]+\/([^#]+)(?:#(.+))?$/.exec(String(e.value ?? ''))
      return m ? [{ env: `${c.name}.${e.name}`, secret: m[1] as string, version: m[2] ?? 'latest' }] : []
    }),
  )
}

export const dataInvariants: Invariant[] = [
  {
    id: 'sql-private',
    title: 'Cloud SQL has no public IP',
    when: withDatabase,
    check: async (r) => {
      const db = await instance(r)
      if (!db) return noInstance(r)
      const publicIps = (db.ipAddresses ?? []).filter((a) => a.type === 'PRIMARY').map((a) => a.ipAddress)
      if (db.settings?.ipConfiguration?.ipv4Enabled === true || publicIps.length > 0)
        return fail(`public IPv4 is on${publicIps.length ? ` (${publicIps.join(', ')})` : ''}`)
      return pass('private IP only')
    },
  },
  {
    id: 'sql-tls',
    title: 'Cloud SQL enforces TLS',
    when: withDatabase,
    check: async (r) => {
      const db = await instance(r)
      if (!db) return noInstance(r)
      const mode = db.settings?.ipConfiguration?.sslMode
      return mode === 'ENCRYPTED_ONLY' || mode === 'TRUSTED_CLIENT_CERTIFICATE_REQUIRED'
        ? pass(`sslMode ${mode}`)
        : fail(`sslMode is ${mode ?? 'unset'}: unencrypted connections are accepted`)
    },
  },
  {
    id: 'sql-backups',
    title: 'Cloud SQL has backups and point-in-time recovery',
    when: withDatabase,
    check: async (r) => {
      const db = await instance(r)
      if (!db) return noInstance(r)
      const b = db.settings?.backupConfiguration ?? {}
      const problems = [
        b.enabled === true ? '' : 'automated backups are off',
        b.pointInTimeRecoveryEnabled === true ? '' : 'point-in-time recovery is off',
      ].filter(Boolean)
      return problems.length === 0
        ? pass(
            `${b.backupRetentionSettings?.retainedBackups ?? '?'} backups, ${b.transactionLogRetentionDays ?? '?'} days of log`,
          )
        : fail(problems.join('; '))
    },
  },
  {
    id: 'sql-deletion-protection',
    title: 'Cloud SQL deletion protection is as configured',
    when: withDatabase,
    check: async (r) => {
      const db = await instance(r)
      if (!db) return noInstance(r)
      const on = db.settings?.deletionProtectionEnabled === true
      return on === r.config.database.deletionProtection
        ? pass(`deletion protection ${on ? 'on' : 'off (database.deletionProtection: false)'}`)
        : fail(
            `deletion protection is ${on ? 'on' : 'off'}, the config says ${r.config.database.deletionProtection ? 'on' : 'off'}`,
          )
    },
  },
  {
    id: 'secrets-readable',
    title: 'every secret the service references has an enabled version the runtime account can read',
    check: async (r) => {
      const svc = need(await r.service(), `Cloud Run service ${names(r.config).service}`)
      if (!svc) return fail(`service ${names(r.config).service} does not exist (run apply)`)
      // Without serviceAccountName a revision runs as the Compute Engine default service account
      // (run/docs/securing/service-identity), not as the account the deploy made and granted.
      const account =
        svc.spec?.template?.spec?.serviceAccountName ??
        `${await projectNumber(r)}-compute@developer.gserviceaccount.com`
      const runAs = `serviceAccount:${account}`
      const projectWide = membersOf(
        need(await r.projectPolicy(), 'the project IAM policy'),
        ACCESSOR,
      ).includes(runAs)
      const refs = secretRefs(svc)
      const problems: string[] = []
      await Promise.all(
        refs.map(async (ref) => {
          const version = need(await r.secretVersion(ref.secret, ref.version), `secret ${ref.secret}`)
          if (!version) problems.push(`${ref.env}: ${ref.secret} version ${ref.version} does not exist`)
          else if (version.state !== 'ENABLED')
            problems.push(`${ref.env}: ${ref.secret} version ${ref.version} is ${version.state}`)
          const policy = need(await r.secretPolicy(ref.secret), `the IAM policy of ${ref.secret}`)
          if (version && !projectWide && !membersOf(policy, ACCESSOR).includes(runAs))
            problems.push(`${ref.env}: ${runAs} cannot read ${ref.secret}`)
        }),
      )
      return problems.length === 0
        ? pass(`${refs.length} reference(s) readable`)
        : fail(problems.sort().join('; '))
    },
  },
  {
    id: 'runtime-roles',
    title: "the runtime account holds no project role beyond the config's",
    check: async (r) => {
      // Not found means no project to read, not a project where the account holds nothing.
      const policy = need(await r.projectPolicy(), 'the project IAM policy')
      if (!policy)
        throw new CouldNotRead(`cannot read the IAM policy of project ${r.config.project}: not found`)
      const who = member(r.config)
      const held: string[] = (policy.bindings ?? [])
        .filter((b) => (b.members ?? []).includes(who))
        .map((b) => b.role)
      const expected = runtimeRoles(r.config)
      const extra = held.filter((role) => !expected.includes(role))
      return extra.length === 0
        ? pass(`${held.length} role(s): ${held.join(', ') || 'none'}`)
        : fail(`${who} also holds ${extra.join(', ')}`)
    },
  },
  {
    id: 'log-metrics',
    title: "the gateway's log-based metrics exist",
    when: (r) => r.config.monitoring.enabled,
    check: async (r) => {
      const wanted = logMetrics(r.config)
      const absent: string[] = []
      for (const m of wanted) {
        const have = need(await r.metric(m.name), `metric ${m.name}`)
        if (!have || have.filter !== m.filter) absent.push(have ? `${m.name} (filter differs)` : m.name)
      }
      return absent.length === 0
        ? pass(wanted.map((m) => m.name).join(', '))
        : fail(`missing: ${absent.join(', ')} (run apply)`)
    },
  },
  {
    id: 'alert-policy',
    title: 'the alert policy for refusals and upstream failures exists',
    when: (r) => r.config.monitoring.enabled,
    check: async (r) => {
      const list: ListedAlertPolicy[] = need(await r.alertPolicies(), 'the alert policies') ?? []
      const policy = list.find((p) => p.displayName === alertPolicyName(r.config))
      if (!policy) return fail(`no policy "${alertPolicyName(r.config)}" (run apply)`)
      if (policy.enabled === false) return fail(`${policy.name} is disabled`)
      const channel = r.config.monitoring.notificationChannel
      if (channel && !(policy.notificationChannels ?? []).includes(channel))
        return fail(`${policy.name} does not notify ${channel}`)
      return pass(`${policy.name}${channel ? `, to ${channel}` : ', no notification channel configured'}`)
    },
  },
]

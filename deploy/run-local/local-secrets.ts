// The local Secret Manager's contents for a service: every secret the YAML names (sm:// values, which
// the gateway and the launcher read, and secretKeyRef entries and secret volumes, which Cloud Run
// reads), each with a fresh random value, except those the caller knows (the database password the
// local PostgreSQL was made with). The values live in this process and the local Secret Manager only;
// nothing here prints them.
import { randomBytes } from 'node:crypto'
import { isReference, parseReference } from '../../proxy/secrets/reference.ts'
import { secretVersions } from './plan.ts'
import type { LocalService } from './service.ts'

export type SecretTable = Record<string, string[]>

const VERSION_NAME = /^(projects\/[^/]+\/secrets\/[^/]+)\/versions\/(.+)$/

/** Secret name (projects/P/secrets/S) -> versions; `known` gives values by secret name. */
export function localSecrets(
  service: LocalService,
  project: string,
  known: Readonly<Record<string, string>> = {},
): SecretTable {
  const wanted = new Map<string, number>() // secret -> versions it needs (a pinned version N needs N)
  const want = (versionName: string) => {
    const [, secret, version] = VERSION_NAME.exec(versionName) as RegExpExecArray
    const count = /^\d+$/.test(version as string) ? Number(version) : 1
    wanted.set(secret as string, Math.max(wanted.get(secret as string) ?? 1, count))
  }
  for (const c of service.containers) {
    const own = c.env.find((e) => e.name === 'GOOGLE_CLOUD_PROJECT')
    const defaultProject = own && 'value' in own ? own.value : project
    for (const entry of c.env) {
      if (!('value' in entry) || !isReference(entry.value)) continue
      const reference = parseReference(entry.value)
      // a malformed reference stops the container that holds it, with its own message
      if (typeof reference === 'string') continue
      want(
        `projects/${reference.project ?? defaultProject}/secrets/${reference.secret}/versions/${reference.version}`,
      )
    }
  }
  for (const name of secretVersions(service, project).values()) want(name)
  const table: SecretTable = {}
  for (const [secret, versions] of wanted) {
    const value = known[secret] ?? randomBytes(32).toString('base64url')
    table[secret] = Array.from({ length: versions }, () => value)
  }
  return table
}

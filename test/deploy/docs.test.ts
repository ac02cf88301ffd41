// The deploy's documentation keeps in step with its code: the deployer roles in docs/deploy.md are
// exactly deploy/deployer-roles.ts (issue 14, point 7: Service Account User was missing, and without it
// `run services replace` is refused for anyone but an Owner), and docs/fake-gcp.md exists for the fake.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { DEPLOYER_ROLES } from '../../deploy/deployer-roles.ts'

const docs = (name: string) => readFileSync(join(import.meta.dirname, '../../docs', name), 'utf8')

t.test('docs/deploy.md lists exactly the roles a non-Owner deployer needs', async (t) => {
  const text = docs('deploy.md')
  const table = text.slice(text.indexOf('## Prerequisites'), text.indexOf('### When IAP needs'))
  const documented = [...table.matchAll(/^ {2}\| `(roles\/[a-zA-Z.]+)` \|/gm)].map((m) => m[1])
  t.same(
    documented,
    DEPLOYER_ROLES.map((r) => r.role),
  )
  t.ok(documented.includes('roles/iam.serviceAccountUser'), 'Service Account User, for actAs')
})

t.test('docs/fake-gcp.md cites a source for the behaviours the issue names', async (t) => {
  const text = docs('fake-gcp.md')
  for (const cited of [
    'Invalid Tier (db-g1-small) for (ENTERPRISE_PLUS) Edition',
    'Cannot insert legacy ACL for an object when uniform bucket-level access is enabled',
    "Revision 'X' is not ready and cannot serve traffic",
    'are still using this connection',
    'Missing user password for PostgreSQL instance',
    '## Not modelled',
  ]) {
    t.ok(text.includes(cited), cited)
  }
})

// The deploy's one table of coded errors (deploy/errors.ts) and its documentation keep in step, as
// fastify's test/internals/errors.test.js keeps lib/errors.js and docs/Reference/Errors.md: every code
// has a row with its exit status (DEPLOY_ERR_* in docs/deploy.md, RUN_LOCAL_ERR_* in docs/run-local.md),
// every row names a code of the table, and every code is thrown somewhere (no unused codes).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { DEPLOY_ERRORS, DeployError, reportError } from '../../deploy/errors.ts'
import { RunLocalError } from '../../deploy/run-local/errors.ts'

const ROOT = join(import.meta.dirname, '../..')

/** The `| `CODE` | exit | ... |` rows of a document's "## Errors" section. */
function documented(doc: string): Map<string, number> {
  const text = readFileSync(join(ROOT, 'docs', doc), 'utf8')
  const start = text.indexOf('\n## Errors\n')
  t.ok(start >= 0, `${doc} has an Errors section`)
  const end = text.indexOf('\n## ', start + 1)
  const section = text.slice(start, end < 0 ? undefined : end)
  return new Map(
    [...section.matchAll(/^\| `([A-Z_]+)` \| (\d) \|/gm)].map((m) => [m[1] as string, Number(m[2])]),
  )
}

t.test('every code is documented with its exit status, and every documented code exists', async (t) => {
  const rows = new Map([...documented('deploy.md'), ...documented('run-local.md')])
  const codes = Object.keys(DEPLOY_ERRORS) as (keyof typeof DEPLOY_ERRORS)[]
  t.same([...rows.keys()].sort(), [...codes].sort())
  for (const code of codes) t.equal(rows.get(code), DEPLOY_ERRORS[code].exit, `${code}: exit status`)
  t.same(
    [...documented('deploy.md').keys()].filter((c) => !c.startsWith('DEPLOY_ERR_')),
    [],
    'docs/deploy.md documents the deploy codes',
  )
})

t.test('every code is thrown somewhere in deploy/ (no unused codes)', async (t) => {
  const dir = join(ROOT, 'deploy')
  const sources = (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && f !== 'errors.ts')
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n')
  for (const code of Object.keys(DEPLOY_ERRORS)) t.match(sources, `'${code}'`, code)
})

t.test('one problem shows on the summary line, several one per line; a message stays whole', async (t) => {
  t.equal(
    new DeployError('DEPLOY_ERR_CONFIG', ['project: is required']).message,
    'invalid deploy config: project: is required',
  )
  const many = new RunLocalError('RUN_LOCAL_ERR_USAGE', ['--port (x): not a port', '--email: missing'])
  t.equal(many.message, 'invalid run-local options:\n  - --port (x): not a port\n  - --email: missing')
  t.same(many.problems, ['--port (x): not a port', '--email: missing'])
  t.ok(many instanceof DeployError, 'run-local errors are deploy errors')
  const whole = new DeployError('DEPLOY_ERR_REFUSED', 'nothing was deleted: protected')
  t.equal(whole.message, 'nothing was deleted: protected')
  t.same(whole.problems, ['nothing was deleted: protected'])
  let written = ''
  t.equal(reportError(many, { write: (s: string) => (written += s) }), 2)
  t.equal(written, `RUN_LOCAL_ERR_USAGE: ${many.message}\n`)
  t.equal(reportError(new RunLocalError('RUN_LOCAL_ERR_START', ['exited']), { write: () => true }), 1)
})

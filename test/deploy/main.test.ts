// The CLI surface without Google: usage and config errors, offline plan and render, destroy's
// confirmation, and the process entry point once.
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { main } from '../../deploy/main.ts'

const dir = mkdtempSync(join(tmpdir(), 'deploy-main-'))
const config = join(dir, 'deploy.config.yaml')
writeFileSync(
  config,
  stringify({
    project: 'demo-project',
    region: 'europe-west1',
    domain: 'a.example.com',
    allowedCidrs: ['10.0.0.0/8'],
    iapMembers: ['domain:example.com'],
  }),
)

async function run(args: string[], stdin?: { isTTY?: boolean }) {
  let stdout = ''
  let stderr = ''
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    ...(stdin ? { stdin: stdin as NodeJS.ReadableStream } : {}),
    env: { PATH: '/nonexistent' },
  })
  return { code, stdout, stderr }
}

t.test('usage errors exit 2 with the usage text', async (t) => {
  for (const args of [[], ['deploy'], ['plan', 'apply'], ['plan', '--format', 'yaml'], ['plan', '--bogus']]) {
    const r = await run(args)
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, /usage: deploy <plan\|apply\|destroy\|render\|rotate-db-password\|doctor\|rollback>/)
  }
  t.match((await run(['plan', '--format', 'yaml'])).stderr, /--format must be text or sh \(got yaml\)/)
})

t.test("doctor's --timeout must be whole seconds, 1 to 999: a usage error naming the value", async (t) => {
  for (const bad of ['0', '1.5', '1000', '10s']) {
    const r = await run(['doctor', '--config', config, '--timeout', bad])
    t.equal(r.code, 2, bad)
    t.match(r.stderr, `--timeout must be whole seconds from 1 to 999 (got ${bad})`)
  }
})

t.test('the usage names every verb, run-local included (it is dispatched apart)', async (t) => {
  const usage = (await run([])).stderr
  for (const verb of ['plan', 'apply', 'destroy', 'render', 'rotate-db-password', 'run-local'])
    t.match(usage, new RegExp(`^  ${verb} `, 'm'), verb)
})

t.test('config errors exit 2 and name the fields', async (t) => {
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'project: X\n')
  const r = await run(['plan', '--config', bad])
  t.equal(r.code, 2)
  t.match(
    r.stderr,
    /^DEPLOY_ERR_CONFIG: invalid deploy config:\n {2}- project: is not a Google Cloud project id \(got "X"\)/,
  )
  t.match(r.stderr, /- region: is required/)
})

t.test('plan --offline lists every step and the exact commands', async (t) => {
  const r = await run(['plan', '--offline', '--config', config])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^== Project and APIs\n {2}read {6}project number/)
  t.match(
    r.stdout,
    /create +Cloud SQL instance flowise-db\n +gcloud sql instances create flowise-db --database-version=POSTGRES_16 --region=europe-west1 .*--no-assign-ip --server-ca-mode=GOOGLE_MANAGED_INTERNAL_CA --edition=enterprise --tier=db-g1-small .*--ssl-mode=ENCRYPTED_ONLY --enable-point-in-time-recovery .*--deletion-protection --project=demo-project --format=json --quiet/,
  )
  t.match(
    r.stdout,
    /gcloud secrets create flowise-db-password --replication-policy=automatic --data-file=- .* {3}< \(secret on stdin\)/,
  )
  t.match(r.stdout, /\d+ resource\(s\) to create or update\.\n$/)
  // Issue 14, point 19: what each file passed to gcloud grants, routes or runs is in the plan itself.
  t.match(
    r.stdout,
    /set-iam-policy flowise \{file:policy-json\}.*\n {8}policy-json: replaces the service's IAM policy with: roles\/run\.invoker -> serviceAccount:service-\$\{PROJECT_NUMBER\}@gcp-sa-iap/,
  )
  t.match(r.stdout, /\n {8}redirect-yaml: every request -> 301 to https:\/\/ on the same host and path\n/)
  t.match(
    r.stdout,
    /\n {8}service-yaml: Cloud SQL demo-project:europe-west1:flowise-db through \/cloudsql\/ \(IAM \+ mTLS\)\n/,
  )
  t.match(
    r.stdout,
    /\n {8}user-flags: --password = secret flowise-db-password version \$\{DATABASE_PASSWORD_LATEST\} \(not shown\)\n/,
  )
})

t.test('render --offline writes the YAML with placeholders for unknown values', async (t) => {
  const out = join(dir, 'service.yaml')
  const r = await run(['render', '--offline', '--config', config, '--out', out])
  t.equal(r.code, 0, r.stderr)
  const svc = parse(readFileSync(out, 'utf8'))
  const env = svc.spec.template.spec.containers[0].env
  t.same(
    env.find((e: { name: string }) => e.name === 'IAP_AUDIENCE'),
    {
      name: 'IAP_AUDIENCE',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the deploy's own ${NAME} placeholder, not a template
      value: '/projects/${PROJECT_NUMBER}/global/backendServices/${BACKEND_SERVICE_ID}',
    },
  )
  const printed = await run(['render', '--offline', '--config', config])
  t.equal(printed.stdout, readFileSync(out, 'utf8'))
})

t.test('destroy asks first: without a terminal it needs --yes', async (t) => {
  const r = await run(['destroy', '--config', config], { isTTY: false })
  t.equal(r.code, 2)
  t.match(r.stderr, /DEPLOY_ERR_USAGE: destroy needs --yes when standard input is not a terminal/)
})

t.test('destroy on a terminal asks, and only "y" or "yes" goes on', async (t) => {
  const terminal = (answer: string) => Object.assign(Readable.from([`${answer}\n`]), { isTTY: true })
  for (const answer of ['', 'n', 'no thanks']) {
    const r = await run(['destroy', '--config', config], terminal(answer))
    t.equal(r.code, 1, JSON.stringify(answer))
    t.match(
      r.stderr,
      /Destroy everything except data of flowise in demo-project\? \[y\/N\] Nothing destroyed\.\n$/,
    )
  }
  for (const [answer, flags] of [
    ['y', []],
    ['YES', ['--delete-data']],
  ] as const) {
    const r = await run(
      ['destroy', ...flags, '--config', config, '--gcloud', join(dir, 'no-gcloud')],
      terminal(answer),
    )
    t.notMatch(r.stderr, /Nothing destroyed/, `${answer}: confirmed`)
    t.match(r.stderr, /DEPLOY_ERR_GCLOUD: cannot run .*no-gcloud/, 'and it went on to gcloud')
  }
  const all = await run(['destroy', '--delete-data', '--config', config], terminal('n'))
  t.match(all.stderr, /Destroy everything, including the database, bucket and secrets of flowise/)
})

t.test('a missing gcloud stops with a clear error', async (t) => {
  const r = await run(['apply', '--config', config, '--gcloud', join(dir, 'no-gcloud')])
  t.equal(r.code, 1)
  t.match(r.stderr, /DEPLOY_ERR_GCLOUD: cannot run .*no-gcloud: spawn .* ENOENT/)
})

t.test('plan without a usable gcloud falls back to an offline plan', async (t) => {
  const r = await run(['plan', '--config', config, '--gcloud', join(dir, 'no-gcloud')])
  t.equal(r.code, 0)
  t.match(
    r.stderr,
    /gcloud cannot read the project \(DEPLOY_ERR_GCLOUD|cannot run .*no-gcloud.*\): planning offline/,
  )
  t.match(r.stdout, /create +Cloud Run service flowise/)
})

t.test('the entry point runs as a process', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, [
    join(import.meta.dirname, '../../deploy/main.ts'),
    'plan',
    '--offline',
    '--format',
    'sh',
    '--config',
    config,
  ])
  t.match(stdout, /^#!\/usr\/bin\/env bash\n/)
})

t.test('rotate-db-password needs a database, and one whose password was applied', async (t) => {
  const custom = join(dir, 'custom.yaml')
  writeFileSync(
    custom,
    stringify({
      ...parse(readFileSync(config, 'utf8')),
      app: { preset: 'custom', image: 'docker.io/a/b:1' },
    }),
  )
  const none = await run(['rotate-db-password', '--config', custom])
  t.equal(none.code, 2)
  t.match(none.stderr, /DEPLOY_ERR_USAGE: rotate-db-password: this config has no database/)
  // A project where nothing was applied yet (gcloud finds nothing).
  const empty = join(dir, 'gcloud-empty')
  writeFileSync(empty, '#!/bin/bash\necho "ERROR: (gcloud) NOT_FOUND: nothing" >&2\nexit 1\n')
  chmodSync(empty, 0o755)
  const never = await run(['rotate-db-password', '--config', config, '--gcloud', empty])
  t.equal(never.code, 1)
  t.match(
    never.stderr,
    /DEPLOY_ERR_REFUSED: rotate-db-password: flowise-db-password was never applied to the SQL user flowise: run apply first/,
  )
})

// The runner against stand-in executables (shell scripts): timeouts, IAM retries, stdin, redaction.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Gcloud, isNotFound } from '../../deploy/gcloud.ts'

const dir = mkdtempSync(join(tmpdir(), 'deploy-gcloud-'))

function script(name: string, body: string): string {
  const file = join(dir, name)
  writeFileSync(file, `#!/usr/bin/env bash\n${body}\n`)
  chmodSync(file, 0o755)
  return file
}

t.test(
  'argv: --project, --format=json, --quiet (not for prompts), --async for polled builds, files',
  async (t) => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's ${@: -4:1}, not a template
    const echo = script('echo', 'printf "%s\\n" "$@"; cat "${@: -4:1}" 2>/dev/null || true')
    const g = new Gcloud({ project: 'demo-project', gcloud: echo })
    const r = await g.run({ argv: ['x', '--source={file:data}'], files: { data: 'hello' } })
    const lines = r.stdout.split('\n')
    t.match(lines[1], /^--source=\/.*\/data$/)
    t.same(lines.slice(2, 5), ['--project=demo-project', '--format=json', '--quiet'])
    t.same(g.argv({ argv: ['y'], prompts: true }), ['y', '--project=demo-project', '--format=json'])
    t.same(
      g.argv({ argv: ['b'], poll: { describe: () => [], done: () => true, failed: () => undefined } }).at(-1),
      '--async',
    )
    t.same(g.history.at(-1)?.slice(0, 1), ['x'])
  },
)

t.test('stdin reaches the command; prompts switch CLOUDSDK_CORE_DISABLE_PROMPTS', async (t) => {
  const cat = script('cat', 'echo "prompts-off=$CLOUDSDK_CORE_DISABLE_PROMPTS"; cat')
  const g = new Gcloud({ project: 'p', gcloud: cat })
  t.equal((await g.run({ argv: [] }, 'value')).stdout, 'prompts-off=true\nvalue')
  t.equal((await g.run({ argv: [], prompts: true }, 'v')).stdout, 'prompts-off=false\nv')
})

t.test('a command past its timeout is killed with its process group and reported', async (t) => {
  const slow = script('slow', 'sleep 30 & wait')
  const g = new Gcloud({ project: 'p', gcloud: slow, timeoutMs: 300 })
  const started = Date.now()
  const r = await g.run({ argv: ['x'] })
  t.ok(Date.now() - started < 10_000)
  t.equal(r.code, 124)
  const error = g.failure({ argv: ['x'] }, r)
  t.equal(error.code, 'DEPLOY_ERR_TIMEOUT')
  t.match(
    error.message,
    /command failed \(exit 124\): gcloud x --project=p --format=json --quiet\n.*timed out after 0 s/s,
  )
})

t.test('IAM propagation errors are retried, others are not', async (t) => {
  const counter = join(dir, 'count')
  writeFileSync(counter, '0')
  const flaky = script(
    'flaky',
    `n=$(( $(cat ${counter}) + 1 )); echo $n > ${counter}; if [ $n -lt 3 ]; then echo "ERROR: Service account x does not exist." >&2; exit 1; fi; echo ok`,
  )
  const g = new Gcloud({ project: 'p', gcloud: flaky, iamRetryDelaysMs: [10, 10, 10] })
  const r = await g.must({ argv: ['grant'], retryIam: true })
  t.equal(r.stdout.trim(), 'ok')
  t.equal(readFileSync(counter, 'utf8').trim(), '3')
  writeFileSync(counter, '0')
  const once = await g.run({ argv: ['grant'] })
  t.equal(once.code, 1, 'no retry unless the command asks for it')
  const broken = script('broken', 'echo "ERROR: invalid argument" >&2; exit 2')
  const g2 = new Gcloud({ project: 'p', gcloud: broken, iamRetryDelaysMs: [10] })
  await t.rejects(g2.must({ argv: ['grant'], retryIam: true }), {
    code: 'DEPLOY_ERR_GCLOUD',
    message: /exit 2.*\nERROR: invalid argument/s,
  })
})

t.test('secrets are redacted from errors; a missing gcloud is a clear error', async (t) => {
  const leaky = script('leaky', 'echo "bad value s3cr3t-value-123 and --password=hunter22" >&2; exit 1')
  const g = new Gcloud({ project: 'p', gcloud: leaky })
  g.redactor.add('s3cr3t-value-123')
  g.redactor.add('short')
  const error = g.failure({ argv: ['x'] }, await g.run({ argv: ['x'] }))
  t.match(error.message, /bad value \[REDACTED\] and --password=\[REDACTED\]/)
  t.notMatch(error.message, /s3cr3t|hunter22/)
  const missing = new Gcloud({ project: 'p', gcloud: join(dir, 'no-such-gcloud') })
  await t.rejects(missing.run({ argv: [] }), {
    code: 'DEPLOY_ERR_GCLOUD',
    message: /cannot run .*no-such-gcloud: spawn .* ENOENT/,
  })
})

t.test('which failures mean "not found"', async (t) => {
  t.ok(isNotFound('ERROR: (gcloud.run.services.describe) Cannot find service [fw]'))
  t.ok(
    isNotFound(
      'ERROR: (gcloud.compute.addresses.describe) Could not fetch resource:\n - The resource was not found',
    ),
  )
  t.ok(isNotFound('ERROR: (gcloud.secrets.describe) NOT_FOUND: Secret [x] not found'))
  t.notOk(isNotFound('ERROR: (gcloud.compute.addresses.describe) PERMISSION_DENIED: denied'))
})

t.test('a gcloud killed by a signal (not our timeout) is a failure, exit 1', async (t) => {
  const killed = script('killed', 'echo partial >&2; kill -9 $$')
  const r = await new Gcloud({ project: 'p', gcloud: killed }).run({ argv: ['x'] })
  t.same([r.code, r.stderr], [1, 'partial\n'])
})

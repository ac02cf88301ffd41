// The engine's decisions that an apply from empty never reaches: a resource it may only read that is not
// there, and drift that cannot be updated in place. gcloud is a stand-in script answering describes.
import { execSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { validateConfig } from '../../deploy/config.ts'
import { Engine } from '../../deploy/engine.ts'
import { Gcloud } from '../../deploy/gcloud.ts'
import { formatPlan, main } from '../../deploy/main.ts'
import { Progress } from '../../deploy/progress.ts'
import { shellScript } from '../../deploy/shell.ts'
import { steps } from '../../deploy/steps/index.ts'
import type { Command, Resource, Step } from '../../deploy/steps/types.ts'

const dir = mkdtempSync(join(tmpdir(), 'deploy-engine-'))
// `describe thing` finds {"size": 1}; `describe missing` is NOT_FOUND, as gcloud reports it.
const gcloud = join(dir, 'gcloud')
writeFileSync(
  gcloud,
  `#!/usr/bin/env bash
case "$1 $2" in
  "describe thing") echo '{"size": 1}' ;;
  "describe empty") ;;
  "describe garbled") echo '{"size": ' ;;
  *) echo "ERROR: (gcloud) NOT_FOUND: $2" >&2; exit 1 ;;
esac
`,
)
chmodSync(gcloud, 0o755)

const config = validateConfig(
  {
    project: 'demo-project',
    region: 'europe-west1',
    name: 'fw',
    domain: 'a.example.com',
    allowedCidrs: ['10.0.0.0/8'],
    iapMembers: ['user:a@example.com'],
  },
  '/',
)

function engine(offline = false): Engine {
  return new Engine(config, {
    gcloud: new Gcloud({ project: 'demo-project', gcloud }),
    progress: new Progress({ write: () => true }),
    offline,
  })
}

const step = (resource: Resource): Step => ({ id: 's', title: 'Step', resources: [resource] })

t.test('a read-only resource that is not there stops the plan: nothing to create it from', async (t) => {
  const project: Resource = {
    id: 'project',
    title: 'project missing',
    readOnly: true,
    describe: () => ['describe', 'missing'],
    create: () => [],
  }
  await t.rejects(engine().plan([step(project)]), {
    code: 'DEPLOY_ERR_REFUSED',
    message: 'project missing (gcloud describe missing): not found, or this account cannot read it',
  })
  const [offline] = await engine(true).plan([step(project)])
  t.equal(offline?.action, 'read', 'offline, nothing is read and the plan goes on')
})

t.test('drift with no update in place is refused, naming every difference', async (t) => {
  const fixed: Resource<{ size: number }> = {
    id: 'thing',
    title: 'thing fw-thing',
    describe: () => ['describe', 'thing'],
    check: (json) => (json.size === 2 ? [] : [`size is ${json.size}`, 'colour differs']),
    create: () => [],
  }
  await t.rejects(engine().apply([step(fixed)]), {
    code: 'DEPLOY_ERR_DRIFT',
    message:
      'thing fw-thing differs from the config and cannot be updated in place: size is 1; colour differs',
  })
  const updatable: Resource<{ size: number }> = { ...fixed, update: () => [{ argv: ['update', 'thing'] }] }
  const e = engine()
  const planned = await e.plan([step(updatable)])
  t.same(
    [planned[0]?.action, planned[0]?.reasons, planned[0]?.commands],
    ['update', ['size is 1', 'colour differs'], [{ argv: ['update', 'thing'] }]],
  )
  // Both plan formats say why the resource will be updated.
  const gcloudRunner = new Gcloud({ project: 'demo-project', gcloud })
  t.match(formatPlan(planned, gcloudRunner), '  update    thing fw-thing (size is 1; colour differs)\n')
  t.match(shellScript(planned, e.context), '# update: thing fw-thing (size is 1; colour differs)\n')
})

t.test('a plan where every resource matches says "No changes."', async (t) => {
  const same: Resource<{ size: number }> = {
    id: 'thing',
    title: 'thing fw-thing',
    describe: () => ['describe', 'thing'],
    check: (json) => (json.size === 1 ? [] : ['size differs']),
    create: () => [],
  }
  const planned = await engine().plan([step(same)])
  t.equal(planned[0]?.action, 'unchanged')
  t.match(formatPlan(planned, new Gcloud({ project: 'demo-project', gcloud })), /\n\nNo changes\.\n$/)
})

t.test('an empty describe answer is "nothing"; a resource switched off is not looked at', async (t) => {
  const seen: unknown[] = []
  const empty: Resource = {
    id: 'empty',
    title: 'empty list',
    describe: () => ['describe', 'empty'],
    absent: (json) => {
      seen.push(json)
      return json === null
    },
    create: () => [{ argv: ['create', 'empty'] }],
  }
  const off: Resource = { ...empty, id: 'off', when: () => false, describe: () => ['describe', 'off'] }
  const planned = await engine().plan([{ id: 's', title: 'Step', resources: [empty, off] }])
  t.same(
    planned.map((p) => [p.resource.id, p.action]),
    [['empty', 'create']],
  )
  t.same(seen, [null])
})

t.test('plan: a project gcloud cannot find is an error, not an offline plan', async (t) => {
  const config = join(dir, 'deploy.config.yaml')
  writeFileSync(
    config,
    'project: demo-project\nregion: europe-west1\ndomain: a.example.com\nallowedCidrs: [10.0.0.0/8]\niapMembers: [domain:example.com]\n',
  )
  let stderr = ''
  const code = await main(['plan', '--config', config, '--gcloud', gcloud], {
    stdout: { write: () => true },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
  })
  t.equal(code, 1)
  t.match(
    stderr,
    /^DEPLOY_ERR_REFUSED: project number \(gcloud projects describe demo-project\): not found, or this account cannot read it\n$/,
  )
})

t.test('an answer gcloud garbled is a bug to see whole, not a plan', async (t) => {
  const garbled: Resource = {
    id: 'garbled',
    title: 'garbled',
    describe: () => ['describe', 'garbled'],
    create: () => [],
  }
  await t.rejects(engine().plan([step(garbled)]), SyntaxError)
})

t.test('plan --format sh refuses a script that would use a value no earlier step assigns', async (t) => {
  const e = engine(true)
  const uses: Resource = {
    id: 'uses',
    title: 'uses an unknown value',
    describe: () => ['describe', 'missing'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the deploy's own ${NAME} placeholder, not a template
    create: () => [{ argv: ['create', '--ref=${NEVER_ASSIGNED}'] }],
  }
  const planned = await e.plan([step(uses)])
  t.throws(() => shellScript(planned, e.context), {
    message:
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the deploy's own ${NAME} placeholder, not a template
      'plan --format sh: the command for uses an unknown value needs ${NEVER_ASSIGNED}, which no earlier step of the script assigns',
  })
})

// Issue 14, points 8 and 9: destroy reads everything and checks every refusal before the first delete; a
// deletion Google holds is pending, what waits for it is pending too, and the rest is deleted.
t.test('destroy: refusals before any delete; held deletions pending, the rest done', async (t) => {
  const calls = join(dir, 'calls.log')
  writeFileSync(calls, '')
  const standIn = join(dir, 'gcloud-destroy')
  writeFileSync(
    standIn,
    `#!/usr/bin/env bash
echo "$1 $2" >> ${JSON.stringify(calls)}
case "$1 $2" in
  describe*) echo '{"protected": '"$([ "$2" = locked ] && echo true || echo false)"'}' ;;
  "delete held") echo "ERROR: Producer services (e.g. CloudSQL) are still using this connection." >&2; exit 1 ;;
  "delete broken") echo "ERROR: INTERNAL" >&2; exit 1 ;;
esac
`,
  )
  chmodSync(standIn, 0o755)
  const e = () =>
    new Engine(config, {
      gcloud: new Gcloud({ project: 'demo-project', gcloud: standIn }),
      progress: new Progress({ write: () => true }),
    })
  const resource = (
    id: string,
    extra: Partial<Resource<{ protected?: boolean }>> = {},
  ): Resource<{ protected?: boolean }> => ({
    id,
    title: id,
    describe: () => ['describe', id],
    create: () => [],
    delete: () => [
      { argv: ['delete', id], pending: { when: /still using this connection/, reason: 'held for days' } },
    ],
    refuseDelete: (_x, json) => (json.protected ? `${id} is protected` : undefined),
    ...extra,
  })
  const deletes = () =>
    readFileSync(calls, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('delete'))
  // Deleted last (destroy walks backwards), yet refused before the others are touched.
  await t.rejects(e().destroy([step(resource('locked')), step(resource('free'))], true), {
    code: 'DEPLOY_ERR_REFUSED',
    message: 'nothing was deleted: locked is protected',
  })
  t.same(deletes(), [], 'not one delete ran')

  const done = await e().destroy(
    [step(resource('range', { heldBy: ['held'] })), step(resource('held')), step(resource('later'))],
    true,
  )
  t.same(
    done.map((p) => [p.resource.id, p.action, p.reasons]),
    [
      ['later', 'delete', []],
      ['held', 'pending', ['held for days']],
      ['range', 'pending', ['waits for held']],
    ],
  )
  t.same(deletes(), ['delete later', 'delete held'], 'the range was not tried while the peering holds it')
  await t.rejects(e().destroy([step(resource('broken'))], true), {
    code: 'DEPLOY_ERR_GCLOUD',
    message: /INTERNAL/,
  })
})

// A failure Google documents as temporary (Command.pending: a metric Monitoring does not know yet) is
// recorded as pending during apply, and the resources after it are still made.
t.test('apply: a command Google holds is pending, and the rest of the apply goes on', async (t) => {
  const standIn = join(dir, 'gcloud-held')
  writeFileSync(
    standIn,
    `#!/usr/bin/env bash
case "$1 $2" in
  describe*) echo "ERROR: (gcloud) NOT_FOUND: $2" >&2; exit 1 ;;
  "create policy") echo "ERROR: NOT_FOUND: Cannot find metric(s) that match type" >&2; exit 1 ;;
  "create later") echo '{}' ;;
  *) echo "ERROR: unexpected $*" >&2; exit 1 ;;
esac
`,
  )
  chmodSync(standIn, 0o755)
  let out = ''
  const e = new Engine(config, {
    gcloud: new Gcloud({ project: 'demo-project', gcloud: standIn }),
    progress: new Progress({ write: (s: string) => (out += s) }),
  })
  const made = (id: string, pending?: Command['pending']): Resource => ({
    id,
    title: id,
    describe: () => ['describe', id],
    create: () => [{ argv: ['create', id], ...(pending ? { pending } : {}) }],
  })
  const done = await e.apply([
    step(made('policy', { when: /Cannot find metric/, reason: 'Monitoring learns it within 10 minutes' })),
    step(made('later')),
  ])
  t.same(
    done.map((p) => [p.resource.id, p.action, p.reasons]),
    [
      ['policy', 'pending', ['Monitoring learns it within 10 minutes']],
      ['later', 'create', []],
    ],
  )
  t.match(out, 'pending   policy (Monitoring learns it within 10 minutes)\n')
})

t.test(
  'plan --format sh reads a secret the user keeps (the OAuth client) at its latest version',
  async (t) => {
    const withClient = validateConfig(
      {
        project: 'demo-project',
        region: 'europe-west1',
        domain: 'a.example.com',
        allowedCidrs: ['10.0.0.0/8'],
        iapMembers: ['user:a@example.com'],
        iapOAuthClient: { clientId: '1-a.apps.googleusercontent.com', secret: 'iap-oauth' },
      },
      '/',
    )
    const e = new Engine(withClient, {
      gcloud: new Gcloud({ project: 'demo-project', gcloud }),
      progress: new Progress({ write: () => true }),
      offline: true,
    })
    const planned = await e.plan(steps(withClient))
    // The text plan names the secret and its version, never a value.
    t.match(
      formatPlan(planned, new Gcloud({ project: 'demo-project', gcloud })),
      '        iap-flags: --oauth2-client-secret = secret iap-oauth version latest (not shown)\n',
    )
    const script = shellScript(planned, e.context)
    t.match(
      script,
      `{ printf '%s: |-\\n  ' --oauth2-client-secret; gcloud secrets versions access latest --secret=iap-oauth --project=demo-project; printf '\\n'; } > "$tmp/iap-flags"\nCLOUDSDK_CORE_DISABLE_FILE_LOGGING=true gcloud iap web enable --resource-type=backend-services --service=flowise-backend --oauth2-client-id=1-a.apps.googleusercontent.com --flags-file="$tmp/iap-flags"`,
    )
  },
)

// Issue 17: `fact()` answers `${NAME}` while a value is unread, which `plan` shows; a command that runs
// must never carry one to Google (an IAP audience of `${BACKEND_SERVICE_ID}` matches no token).
t.test('a placeholder never reaches a command that runs; plan still shows it', async (t) => {
  const needsId: Resource = {
    id: 'wired',
    title: 'wired to the backend',
    describe: () => ['describe', 'wired'],
    create: (x) => [
      {
        argv: ['create', 'wired'],
        files: { spec: `audience: /backendServices/${x.fact('BACKEND_SERVICE_ID')}\n` },
      },
    ],
  }
  const [planned] = await engine().plan([step(needsId)])
  t.match(planned?.commands[0]?.files?.spec, /\$\{BACKEND_SERVICE_ID\}/, 'the plan shows what it will read')
  const runner = new Gcloud({ project: 'demo-project', gcloud })
  const e = new Engine(config, { gcloud: runner, progress: new Progress({ write: () => true }) })
  await t.rejects(e.apply([step(needsId)]), {
    code: 'DEPLOY_ERR_REFUSED',
    message:
      'gcloud create wired: needs BACKEND_SERVICE_ID, which nothing has read yet: not run with a placeholder',
  })
  t.same(
    runner.history.filter((argv) => argv[0] === 'create'),
    [],
    'the command did not run',
  )
  const known = engine()
  known.context.facts.set('BACKEND_SERVICE_ID', '7')
  await t.rejects(known.apply([step(needsId)]), { code: 'DEPLOY_ERR_GCLOUD' }, 'with the value read, it runs')
})

// A change forgets the reads it can have made stale and keeps the rest. The stand-in keeps state in
// files: `create parent` also makes the parent's policy (as a new secret gets an IAM policy), and each
// call is logged, so the test sees which describes ran again.
t.test('a change reads again what it affects, not the whole step; the next step afresh', async (t) => {
  const state = mkdtempSync(join(dir, 'state-'))
  const calls = join(state, 'calls.log')
  const standIn = join(dir, 'gcloud-stateful')
  writeFileSync(
    standIn,
    `#!/usr/bin/env bash
cd ${JSON.stringify(state)}
echo "$1 $2" >> calls.log
case "$1" in
  describe) [ -e "$2" ] && echo '{}' || { echo "ERROR: (gcloud) NOT_FOUND: $2" >&2; exit 1; } ;;
  create) [ -e "$2" ] && { echo "ERROR: (gcloud) ALREADY_EXISTS: $2" >&2; exit 1; }
    touch "$2"; [ "$2" = parent ] && touch policy; true ;;
esac
`,
  )
  chmodSync(standIn, 0o755)
  const made = (id: string, extra: Partial<Resource> = {}): Resource => ({
    id,
    title: id,
    describe: () => ['describe', id],
    create: () => [{ argv: ['create', id] }],
    ...extra,
  })
  const run = (affects?: string[]) => {
    execSync('rm -f parent policy other later calls.log', { cwd: state })
    writeFileSync(join(state, 'other'), '')
    const e = new Engine(config, {
      gcloud: new Gcloud({ project: 'demo-project', gcloud: standIn }),
      progress: new Progress({ write: () => true }),
    })
    const first: Step = {
      id: 'first',
      title: 'First',
      resources: [made('parent', affects ? { affects } : {}), made('policy'), made('other')],
    }
    const second: Step = { id: 'second', title: 'Second', resources: [made('policy'), made('later')] }
    return { apply: e.apply([first, second]), calls: () => readFileSync(calls, 'utf8').split('\n') }
  }
  const declared = run(['policy'])
  const done = await declared.apply
  t.same(
    done.map((p) => [p.resource.id, p.action]),
    [
      ['parent', 'create'],
      ['policy', 'unchanged'],
      ['other', 'unchanged'],
      ['policy', 'unchanged'],
      ['later', 'create'],
    ],
  )
  const count = (id: string) => declared.calls().filter((c) => c === `describe ${id}`).length
  t.same(
    [count('parent'), count('policy'), count('other'), count('later')],
    [1, 3, 1, 1],
    'policy read again after its parent changed and afresh in the next step; other read once',
  )
  // Without the declaration the policy's read from before the change is used, and its create fails:
  // the stale read the declaration prevents.
  await t.rejects(run().apply, { message: /ALREADY_EXISTS: policy/ })
})

// Two resources that read one thing (the project's IAM policy, read by each identity's roles): the
// first one's change makes the second's read stale too, without any declaration.
t.test('a change reads again what another resource reads with the same command', async (t) => {
  const state = mkdtempSync(join(dir, 'shared-'))
  const standIn = join(dir, 'gcloud-shared')
  writeFileSync(
    standIn,
    `#!/usr/bin/env bash
cd ${JSON.stringify(state)}
case "$1" in
  describe) [ -e shared ] && echo '{}' || { echo "ERROR: (gcloud) NOT_FOUND: shared" >&2; exit 1; } ;;
  create) [ -e shared ] && { echo "ERROR: (gcloud) ALREADY_EXISTS: shared" >&2; exit 1; }; touch shared ;;
esac
`,
  )
  chmodSync(standIn, 0o755)
  const reader = (id: string): Resource => ({
    id,
    title: id,
    describe: () => ['describe', 'shared'],
    create: () => [{ argv: ['create', 'shared'] }],
  })
  const e = new Engine(config, {
    gcloud: new Gcloud({ project: 'demo-project', gcloud: standIn }),
    progress: new Progress({ write: () => true }),
  })
  const done = await e.apply([{ id: 's', title: 'Step', resources: [reader('first'), reader('second')] }])
  t.same(
    done.map((p) => [p.resource.id, p.action]),
    [
      ['first', 'create'],
      ['second', 'unchanged'],
    ],
  )
})

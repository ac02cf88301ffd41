// The upgrade around apply, over gcloud's answers: a live service it cannot read stops everything before
// the first step; an upgrade without a database says no backup was taken, and a revision that fails says
// where traffic stays. apply-upgrade.test.ts runs the database case against the fake through gcloud.
import t from 'tap'
import { Engine } from '../../deploy/engine.ts'
import type { GcloudResult } from '../../deploy/gcloud.ts'
import { Progress } from '../../deploy/progress.ts'
import type { Step } from '../../deploy/steps/types.ts'
import { applyWithUpgrade, wantedImages } from '../../deploy/upgrade.ts'
import { type Answers, CannedGcloud, cannedConfig, denied, json, notFound } from './canned-gcloud.ts'

const SERVICE = 'run services describe fw --region=europe-west1'
const noDatabase = cannedConfig({ database: { enabled: false } })

// Two steps standing in for the deploy's: one before the service (kept as it is), and the service itself.
const steps: Step[] = [
  {
    id: 'images',
    title: 'Images',
    resources: [{ id: 'image', title: 'image', describe: () => ['describe', 'image'], create: () => [] }],
  },
  {
    id: 'run',
    title: 'Service',
    resources: [
      {
        id: 'svc',
        title: 'service fw',
        describe: () => ['describe', 'svc'],
        create: () => [{ argv: ['replace', 'svc'] }],
      },
    ],
  },
]

/** The live service running the config's images, except the app's at an older tag. */
function olderApp(c = noDatabase) {
  const want = wantedImages(c)
  return json({
    metadata: { name: 'fw' },
    spec: {
      template: {
        spec: {
          containers: [
            { name: 'gateway', image: want.gateway },
            { name: 'flowise', image: String(want.flowise).replace(/:[^:]+$/, ':3.1.3') },
          ],
        },
      },
    },
    status: { latestReadyRevisionName: 'fw-00001-abc' },
  })
}

async function upgrade(answers: Answers, c = noDatabase) {
  const gcloud = new CannedGcloud(answers)
  let out = ''
  const progress = new Progress({ write: (s: string) => (out += s) })
  const engine = new Engine(c, { gcloud, progress })
  const result = await applyWithUpgrade(engine, gcloud, c, steps, progress).then(
    (r) => ({ ok: r }),
    (e: Error & { code?: string }) => ({ error: e }),
  )
  return { result, out, asked: gcloud.asked }
}

t.test('the first apply (no service yet) is a plain apply: no upgrade, no backup', async (t) => {
  const r = await upgrade(
    {
      [SERVICE]: notFound('fw'),
      'describe image': json({}),
      'describe svc': notFound('svc'),
      'replace svc': json({}),
    },
    cannedConfig(),
  )
  t.match(r.result, { ok: { done: [{ action: 'unchanged' }, { action: 'create' }] } })
  t.notOk('upgrade' in (r.result as { ok: object }).ok)
  t.notMatch(r.out, /Upgrade|backup/i)
  t.notOk(
    r.asked.some((a) => a.startsWith('sql ')),
    'no Cloud SQL command',
  )
})

t.test('a live service gcloud cannot read stops the apply before any step, naming the command', async (t) => {
  const r = await upgrade({ [SERVICE]: denied('run.services.get') })
  t.match(r.result, {
    error: {
      code: 'DEPLOY_ERR_GCLOUD',
      message:
        /^command failed \(exit 1\): gcloud run services describe fw --region=europe-west1 --project=demo-project/,
    },
  })
  t.same(r.asked, [SERVICE], 'nothing else was read or run')
})

t.test(
  'an upgrade without a database takes no backup, says so, and a failed revision leaves traffic',
  async (t) => {
    const r = await upgrade({
      [SERVICE]: olderApp(),
      'describe image': json({}),
      'describe svc': notFound('svc'),
      'replace svc': { code: 1, stdout: '', stderr: 'ERROR: Revision fw-00002-abc is not ready\n' },
    })
    t.match(r.result, { error: { code: 'DEPLOY_ERR_GCLOUD', message: /is not ready/ } })
    t.match(r.out, /== Upgrade from revision fw-00001-abc: flowise: .*:3\.1\.3 -> .*:3\.1\.4\n/)
    t.match(r.out, 'No database in this config: no backup taken.\n')
    t.match(r.out, 'The new revision did not become ready: traffic stays on fw-00001-abc.\n')
    t.notMatch(r.out, /Backup/)
    t.notOk(
      r.asked.some((a) => a.startsWith('sql ')),
      'no Cloud SQL command',
    )
  },
)

const DESCRIPTION = 'iap-gateway: before the upgrade from revision fw-00001-abc'

/** An upgrade with the database: the backup made and listed as `backups`, then the service `replace`d. */
function withBackup(backups: unknown[], replace: GcloudResult): Answers {
  return {
    [SERVICE]: olderApp(cannedConfig()),
    'describe image': json({}),
    [`sql backups create --instance=fw-db --description=${DESCRIPTION}`]: json({}),
    'sql backups list --instance=fw-db': json(backups),
    'describe svc': notFound('svc'),
    'replace svc': replace,
  }
}

t.test('an upgrade with a database: the backup is taken and found before the service changes', async (t) => {
  // Cloud SQL Admin BackupRun: ids are int64 strings; an older backup with the same description stays.
  const backups = [
    {
      id: '1700000000002',
      description: DESCRIPTION,
      status: 'SUCCESSFUL',
      windowStartTime: '2025-01-02T00:00:00Z',
    },
    {
      id: '1700000000001',
      description: DESCRIPTION,
      status: 'SUCCESSFUL',
      windowStartTime: '2025-01-01T00:00:00Z',
    },
    {
      id: '1700000000003',
      description: DESCRIPTION,
      status: 'RUNNING',
      windowStartTime: '2025-01-03T00:00:00Z',
    },
  ]
  const r = await upgrade(withBackup(backups, json({})), cannedConfig())
  t.match(r.result, {
    ok: { upgrade: { previousRevision: 'fw-00001-abc', backupId: '1700000000002', changed: [/^flowise: /] } },
  })
  t.match(r.out, 'Backup 1700000000002 of fw-db taken before the upgrade.\n')
  const backupAt = r.asked.findIndex((a) => a.startsWith('sql backups create'))
  t.ok(backupAt > 0 && backupAt < r.asked.indexOf('replace svc'), 'the backup comes before the service')
})

t.test('a failed revision after a backup names the backup to restore from', async (t) => {
  const notReady = { code: 1, stdout: '', stderr: 'ERROR: Revision fw-00002-abc is not ready\n' }
  const backups = [{ id: '1700000000002', description: DESCRIPTION, status: 'SUCCESSFUL' }]
  const r = await upgrade(withBackup(backups, notReady), cannedConfig())
  t.match(r.result, { error: { code: 'DEPLOY_ERR_GCLOUD' } })
  t.match(r.out, 'traffic stays on fw-00001-abc. Backup: 1700000000002.\n')
})

// rollback's decisions over gcloud's answers (Knative v1 Service and Revision as `run services describe` and
// `run revisions list` print them): what it refuses, which revision it picks, what it says about the
// database. apply-upgrade.test.ts runs it against the fake through the real gcloud.
import t from 'tap'
import { Progress } from '../../deploy/progress.ts'
import { rollback } from '../../deploy/rollback.ts'
import { type Answers, CannedGcloud, cannedConfig, json, notFound } from './canned-gcloud.ts'

const SERVICE = 'run services describe fw --region=europe-west1'
const REVISIONS = 'run revisions list --service=fw --region=europe-west1'
const BACKUPS = 'sql backups list --instance=fw-db'
const move = (to: string) => `run services update-traffic fw --to-revisions=${to}=100 --region=europe-west1`

const serving = (revisionName: string) => ({
  metadata: { name: 'fw' },
  status: { traffic: [{ revisionName, percent: 100 }] },
})
/** `unreconciled`: listed before Cloud Run has written its status (no conditions yet). */
function revision(name: string, generation: number | undefined, ready: boolean | 'unreconciled' = true) {
  return {
    metadata: {
      name,
      labels:
        generation === undefined ? {} : { 'serving.knative.dev/configurationGeneration': String(generation) },
    },
    spec: { containers: [{ name: 'flowise', image: `flowise:${name}` }] },
    ...(ready === 'unreconciled'
      ? {}
      : { status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } }),
  }
}

async function run(answers: Answers, c = cannedConfig()) {
  const gcloud = new CannedGcloud(answers)
  let out = ''
  const progress = new Progress({ write: (s: string) => (out += s) })
  const error = await rollback(gcloud, c, progress).then(
    () => undefined,
    (e: Error & { code?: string }) => e,
  )
  return { error, out, moved: gcloud.asked.filter((a) => a.includes('update-traffic')) }
}

t.test('rollback refuses a service that does not exist, and moves nothing', async (t) => {
  const r = await run({ [SERVICE]: notFound('fw') })
  t.match(r.error, { code: 'DEPLOY_ERR_REFUSED', message: 'rollback: service fw does not exist' })
  t.same(r.moved, [])
})

t.test(
  'rollback refuses when the status names no serving revision, instead of picking the newest',
  async (t) => {
    const r = await run({
      [SERVICE]: json({ metadata: { name: 'fw' }, status: {} }),
      [REVISIONS]: json([revision('fw-00002-abc', 2), revision('fw-00001-abc', 1)]),
    })
    t.match(r.error, {
      code: 'DEPLOY_ERR_REFUSED',
      message: 'rollback: cannot tell which revision of fw serves now (traffic: none)',
    })
    t.same(r.moved, [])
  },
)

t.test(
  'rollback skips revisions that are not ready, or not yet reconciled, for the older ready one',
  async (t) => {
    const r = await run({
      [SERVICE]: json(serving('fw-00004-abc')),
      [REVISIONS]: json([
        revision('fw-00001-abc', 1),
        revision('fw-00003-abc', 3, false),
        revision('fw-00004-abc', 4),
        revision('fw-00002-abc', 2, 'unreconciled'),
      ]),
      [move('fw-00001-abc')]: json({}),
      [BACKUPS]: json([{ id: '1700000000001', type: 'AUTOMATED', status: 'SUCCESSFUL' }]),
    })
    t.equal(r.error, undefined)
    t.same(r.moved, [move('fw-00001-abc')])
    t.match(
      r.out,
      /Traffic: 100% to fw-00001-abc \(was fw-00004-abc\)\. It runs flowise flowise:fw-00001-abc\./,
    )
    // No backup an upgrade took from this revision: where to find the others, never a restore of the wrong one.
    t.match(
      r.out,
      'No backup taken by an upgrade from fw-00001-abc was found on fw-db: list them with gcloud sql backups list --instance=fw-db --project=demo-project',
    )
    t.notMatch(r.out, /backups restore/)
  },
)

t.test('revisions without a generation label are never taken as older', async (t) => {
  const r = await run({
    [SERVICE]: json(serving('fw-00002-abc')),
    [REVISIONS]: json([revision('fw-00002-abc', 2), revision('fw-00001-abc', undefined)]),
  })
  t.match(r.error, {
    code: 'DEPLOY_ERR_REFUSED',
    message: 'rollback: no ready revision of fw older than fw-00002-abc',
  })
  t.same(r.moved, [])
})

t.test('without a database, rollback says nothing about backups', async (t) => {
  const c = cannedConfig({ database: { enabled: false } })
  const r = await run(
    {
      [SERVICE]: json(serving('fw-00002-abc')),
      [REVISIONS]: json([revision('fw-00002-abc', 2), revision('fw-00001-abc', 1)]),
      [move('fw-00001-abc')]: json({}),
    },
    c,
  )
  t.equal(r.error, undefined)
  t.notMatch(r.out, /backup/i)
})

t.test(
  'rollback prints the restore command for the backup the upgrade from that revision took',
  async (t) => {
    const r = await run({
      [SERVICE]: json(serving('fw-00002-abc')),
      [REVISIONS]: json([revision('fw-00002-abc', 2), revision('fw-00001-abc', 1)]),
      [move('fw-00001-abc')]: json({}),
      [BACKUPS]: json([
        { id: '1700000000001', type: 'AUTOMATED', status: 'SUCCESSFUL' },
        {
          id: '1700000000002',
          type: 'ON_DEMAND',
          description: 'iap-gateway: before the upgrade from revision fw-00001-abc',
          status: 'SUCCESSFUL',
        },
      ]),
    })
    t.equal(r.error, undefined)
    t.match(
      r.out,
      'this loses everything written since): gcloud sql backups restore 1700000000002 --restore-instance=fw-db --backup-instance=fw-db --project=demo-project\n',
    )
  },
)

// doctor as a whole over gcloud's answers: which invariants a config turns on, and the report that says
// ok only when every one passed. apply-doctor.test.ts runs it through the CLI against the fake.
import t from 'tap'
import { doctor, formatFindings } from '../../deploy/doctor.ts'
import { CannedGcloud, cannedConfig } from './canned-gcloud.ts'
import { live } from './doctor/live.ts'

// Port 9 is one fetch refuses itself: the outside checks end at once as could-not-check.
const nowhere = { http: 'http://127.0.0.1:9/', https: 'http://127.0.0.1:9/', runApp: 'http://127.0.0.1:9/' }

t.test(
  'a correct deployment read from here: 21 pass, the outside three could not be checked, not ok',
  async (t) => {
    const findings = await doctor(new CannedGcloud(live()), cannedConfig(), nowhere)
    t.equal(findings.length, 24)
    t.same(
      findings.filter((f) => f.verdict !== 'pass').map((f) => [f.id, f.verdict]),
      [
        ['outside-http-redirect', 'could-not-check'],
        ['outside-sign-in', 'could-not-check'],
        ['outside-run-app', 'could-not-check'],
      ],
    )
    const json = JSON.parse(formatFindings(findings, 'json'))
    t.match(json, { ok: false, passed: 21, failed: 0, couldNotCheck: 3 })
    t.match(
      formatFindings(findings, 'text'),
      /^\?\?\?\? {2}outside-run-app: .*\n\n21 passed, 0 failed, 3 could not be checked \(\?\?\?\? above\)\n$/m,
    )
  },
)

t.test('without a database or monitoring, their invariants are not run (nor their reads)', async (t) => {
  const gcloud = new CannedGcloud(live())
  const c = cannedConfig({ database: { enabled: false }, monitoring: { enabled: false } })
  const ids = (await doctor(gcloud, c, nowhere)).map((f) => f.id)
  t.equal(ids.length, 18)
  t.notOk(ids.some((id) => /^(sql-|log-metrics|alert-policy)/.test(id)))
  t.notOk(gcloud.asked.some((a) => /^(sql |logging |alpha monitoring )/.test(a)))
})

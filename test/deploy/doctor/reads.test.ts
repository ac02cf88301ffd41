// doctor's reads: each gcloud answer ends as the resource, "not found", or an error the checks report as
// could-not-check; each read runs once however many checks ask, a few at a time.
import t from 'tap'
import { Reads } from '../../../deploy/doctor/reads.ts'
import { CannedGcloud, cannedConfig, denied, json, notFound } from '../canned-gcloud.ts'

const config = cannedConfig()
const SERVICE = 'run services describe fw --region=europe-west1'

t.test('a resource gcloud cannot find is "not found", not an error', async (t) => {
  const reads = new Reads(new CannedGcloud({ [SERVICE]: notFound('fw') }), config)
  t.same(await reads.service(), { found: false })
})

t.test("a read that fails otherwise is an error carrying gcloud's last line, not a guess", async (t) => {
  const reads = new Reads(new CannedGcloud({ [SERVICE]: denied('run.services.get') }), config)
  t.same(await reads.service(), {
    error: " - Required 'run.services.get' permission for 'projects/demo-project'",
  })
})

t.test('an empty answer is null, not a JSON error', async (t) => {
  const list = 'alpha monitoring policies list'
  const reads = new Reads(new CannedGcloud({ [list]: { code: 0, stdout: '\n', stderr: '' } }), config)
  t.same(await reads.alertPolicies(), { found: true, json: null })
})

t.test('each read runs once however many checks ask for it', async (t) => {
  const gcloud = new CannedGcloud({ [SERVICE]: json({ metadata: {} }) })
  const reads = new Reads(gcloud, config)
  const [a, b] = await Promise.all([reads.service(), reads.service()])
  t.same(a, { found: true, json: { metadata: {} } })
  t.equal(a, b)
  t.same(gcloud.asked, [SERVICE])
})

t.test('no more reads at once than the limit', async (t) => {
  let running = 0
  let most = 0
  class Slow extends CannedGcloud {
    override async run(...args: Parameters<CannedGcloud['run']>) {
      running += 1
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 5))
      running -= 1
      return super.run(...args)
    }
  }
  const reads = new Reads(new Slow({}), config, 2)
  const all = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((s) => reads.secretPolicy(s)))
  t.equal(most, 2)
  t.equal(all.length, 5)
  t.match(all[4], { error: /no answer for: secrets get-iam-policy e$/ })
})

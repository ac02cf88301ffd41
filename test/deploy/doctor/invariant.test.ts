// How one invariant ends: its own verdict, or could-not-check when a read fails or the check itself
// throws, so one broken check never hides the others nor passes.
import t from 'tap'
import { CouldNotRead, evaluate, type Invariant, one, sameSet } from '../../../deploy/doctor/invariant.ts'
import { Reads } from '../../../deploy/doctor/reads.ts'
import { CannedGcloud } from '../canned-gcloud.ts'
import { config } from './live.ts'

const reads = new Reads(new CannedGcloud({}), config)
const invariant = (check: Invariant['check']): Invariant => ({ id: 'x', title: 'x holds', check })

t.test('a read the check cannot do is could-not-check with its reason', async (t) => {
  const r = await evaluate(
    invariant(async () => {
      throw new CouldNotRead('cannot read thing: denied')
    }),
    reads,
  )
  t.same(r, { verdict: 'could-not-check', reason: 'cannot read thing: denied' })
})

t.test('a check that throws (a bug) is could-not-check, never a pass, and says so', async (t) => {
  const r = await evaluate(
    invariant(async () => JSON.parse('{') as never),
    reads,
  )
  t.match(r, { verdict: 'could-not-check', reason: /^check failed: / })
})

t.test('one() reads a describe printed as one object or as a one-element list alike', async (t) => {
  t.same(one([{ a: 1 }]), { a: 1 })
  t.same(one({ a: 1 }), { a: 1 })
  t.equal(one(undefined), undefined)
})

t.test('sameSet: order does not matter, duplicates and extras do', async (t) => {
  t.ok(sameSet(['b', 'a'], ['a', 'b']))
  t.notOk(sameSet(['a', 'a'], ['a', 'b']))
  t.notOk(sameSet(['a'], ['a', 'b']))
})

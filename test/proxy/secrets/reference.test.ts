import t from 'tap'
import { isReference, parseReference, resourceName } from '../../../proxy/secrets/reference.ts'

t.test('every reference form names one secret version', async (t) => {
  const cases: [string, string][] = [
    ['sm://db-password', 'projects/dflt-project/secrets/db-password/versions/latest'],
    ['sm://db-password#3', 'projects/dflt-project/secrets/db-password/versions/3'],
    ['sm://db-password#prod_alias', 'projects/dflt-project/secrets/db-password/versions/prod_alias'],
    ['sm://other-project/db_password', 'projects/other-project/secrets/db_password/versions/latest'],
    ['sm://123456789012/DB#latest', 'projects/123456789012/secrets/DB/versions/latest'],
    ['sm://projects/other-project/secrets/s1/versions/7', 'projects/other-project/secrets/s1/versions/7'],
    ['sm://projects/other-project/secrets/s1', 'projects/other-project/secrets/s1/versions/latest'],
  ]
  for (const [value, expected] of cases) {
    const parsed = parseReference(value)
    t.type(parsed, 'object', value)
    if (typeof parsed !== 'string') t.equal(resourceName(parsed, 'dflt-project'), expected, value)
  }
  t.same(parseReference('sm://s#2'), { project: undefined, secret: 's', version: '2' })
})

t.test('only values that start with sm:// are references', async (t) => {
  t.equal(isReference('sm://x'), true)
  t.equal(isReference(' sm://x'), false)
  t.equal(isReference('SM://x'), false)
  t.equal(isReference('postgres://u@h/db'), false)
  t.equal(isReference(undefined), false)
  t.equal(parseReference('plain'), 'does not start with sm://')
})

t.test('a malformed reference says what is wrong', async (t) => {
  const cases: [string, RegExp][] = [
    ['sm://', /"" is not a secret id/],
    ['sm://a/b/c', /expected sm:\/\/SECRET/],
    ['sm://projects/p-proj1/keys/s', /expected projects\/PROJECT\/secrets/],
    ['sm://projects/p-proj1/secrets/s/aliases/v', /expected projects\/PROJECT\/secrets/],
    ['sm://projects/s', /expected projects\/PROJECT\/secrets/],
    ['sm://projects/p-proj1/secrets/s#2', /"s#2" is not a secret id/],
    ['sm://Bad_Project/s', /"Bad_Project" is not a project id/],
    ['sm://se cret', /"se cret" is not a secret id/],
    ['sm://s#', /"" is not a version/],
    ['sm://s#0', /"0" is not a version/],
    ['sm://s#1.5', /"1.5" is not a version/],
    [`sm://${'a'.repeat(256)}`, /is not a secret id/],
  ]
  for (const [value, reason] of cases) t.match(parseReference(value), reason, value)
})

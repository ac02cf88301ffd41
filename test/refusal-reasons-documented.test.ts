// Every refusal's `reason` is a closed set (proxy/errors.ts), and the README's table is where an operator
// reading a log line looks it up: a reason added without a row would leave them guessing. Also every
// refusal status the gateway answers with has a generic body of its own.
import { readFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import t from 'tap'
import { DENIALS, REFUSAL_REASONS } from '../proxy/errors.ts'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
/** The first column of the README's reason table: every `reason` named there. */
const documented = new Set(
  [...readme.matchAll(/^\| (`[^|]+`) \| [^|]+ \| [^|]+ \|$/gm)].flatMap((row) =>
    [...(row[1] as string).matchAll(/`([^`]+)`/g)].map((name) => name[1] as string),
  ),
)

t.test('every refusal reason is in the README’s table, and the table names no other', async (t) => {
  for (const reason of REFUSAL_REASONS) t.ok(documented.has(reason), `${reason} is documented`)
  const known = new Set<string>(REFUSAL_REASONS)
  for (const name of documented) {
    if (/^[a-z_]+(:[a-z_*]+)?$/.test(name) && name.includes('_')) t.ok(known.has(name), `${name} exists`)
  }
})

t.test('every denial answers with its status’s own words', async (t) => {
  for (const [name, denial] of Object.entries(DENIALS)) {
    t.equal(denial.message, STATUS_CODES[denial.status], name)
  }
})

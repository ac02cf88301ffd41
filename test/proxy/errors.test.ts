// One table of coded errors and refusal reasons (proxy/errors.ts, dev/errors.ts), each documented where
// an operator looks it up, as fastify's test/internals/errors.test.js holds lib/errors.js to its docs:
// a code or reason added without a row would leave them guessing, and a row without a code lies.
import { readdirSync, readFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import t, { type Test } from 'tap'
import * as devErrors from '../../dev/errors.ts'
import * as gatewayErrors from '../../proxy/errors.ts'

const { CODED_REFUSALS, DENIALS, IAP_DENIALS, REFUSAL_REASONS } = gatewayErrors
const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
const readme = read('README.md')

/** The rows of the markdown tables in `text` whose first column names codes: each code, with its row. */
function tableRows(text: string): Map<string, string[]> {
  const rows = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const cells = line.startsWith('| `') ? line.split('|').map((cell) => cell.trim()) : []
    if (cells.length < 4) continue
    for (const name of (cells[1] as string).matchAll(/`([^`]+)`/g))
      rows.set(name[1] as string, cells.slice(2))
  }
  return rows
}

/** The @fastify/error constructors a module exports, by code. */
function codesOf(t: Test, module: Record<string, unknown>): string[] {
  return Object.entries(module)
    .filter(([, value]) => typeof value === 'function' && 'prototype' in (value as object))
    .map(([name, value]) => {
      t.equal(
        new (value as new (...args: string[]) => { code: string })('a', 'b').code,
        name,
        `${name}'s code`,
      )
      return name
    })
}

t.test('every gateway error code is in the README’s table, and the table names no other', async (t) => {
  const documented = [...tableRows(readme).keys()].filter((name) => name.startsWith('GW_ERR_'))
  const codes = codesOf(t, gatewayErrors)
  t.ok(codes.length > 0)
  t.same(documented.sort(), codes.sort())
})

t.test('every dev tool error code is in docs/local-development.md, and no other', async (t) => {
  const documented = [...tableRows(read('docs/local-development.md')).keys()].filter((name) =>
    name.startsWith('DEV_ERR_'),
  )
  t.same(documented.sort(), codesOf(t, devErrors).sort())
})

t.test('no other file creates coded errors', async (t) => {
  const creating = ['proxy', 'dev', 'bench'].flatMap((dir) =>
    readdirSync(new URL(`../../${dir}`, import.meta.url), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && read(`${dir}/${file}`).includes("from '@fastify/error'"))
      .map((file) => `${dir}/${file}`),
  )
  t.same(creating.sort(), ['dev/errors.ts', 'proxy/errors.ts'])
})

t.test(
  'every refusal reason is in the README’s table with its status, and the table names no other',
  async (t) => {
    const rows = tableRows(readme)
    for (const reason of REFUSAL_REASONS) t.ok(rows.has(reason), `${reason} is documented`)
    for (const [reason, denial] of Object.entries(IAP_DENIALS)) {
      t.match(rows.get(`iap_${reason}`)?.[0], String(denial.status), `iap_${reason} answers ${denial.status}`)
    }
    const known = new Set<string>(REFUSAL_REASONS)
    for (const name of rows.keys()) {
      if (/^[a-z_]+(:[a-z_*]+)?$/.test(name) && name.includes('_') && !name.includes('.')) {
        t.ok(known.has(name), `${name} exists`)
      }
    }
    for (const prefix of CODED_REFUSALS) t.ok(known.has(`${prefix}:*`), `${prefix}:* is a coded reason`)
  },
)

t.test('the README’s IAP section names every failure reason', async (t) => {
  const section = readme.slice(readme.indexOf('## The IAP assertion'), readme.indexOf('## Secrets'))
  for (const reason of Object.keys(IAP_DENIALS)) t.match(section, `\`${reason}\``, reason)
})

t.test('every denial answers with its status’s own words', async (t) => {
  for (const [name, denial] of Object.entries(DENIALS)) {
    t.equal(denial.message, STATUS_CODES[denial.status], name)
  }
})

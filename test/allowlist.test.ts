import ipaddr from 'ipaddr.js'
import t from 'tap'
import { createAllowlist, parseNetwork } from '../proxy/allowlist.ts'

function allowlist(...entries: string[]) {
  const ranges = entries.map((entry) => {
    const parsed = parseNetwork(entry)
    if (typeof parsed === 'string') throw new Error(parsed)
    return parsed
  })
  return createAllowlist(entries, ranges)
}
const allows = (list: ReturnType<typeof allowlist>, address: string) => list.allows(ipaddr.process(address))

t.test('IPv4 ranges and single addresses', async (t) => {
  const list = allowlist('10.0.0.0/8', '192.0.2.7')
  t.ok(allows(list, '10.200.3.4'))
  t.ok(allows(list, '192.0.2.7'))
  t.notOk(allows(list, '192.0.2.8'))
  t.notOk(allows(list, '11.0.0.1'))
  t.notOk(allows(list, '2001:db8::1'), 'an IPv6 address never matches an IPv4 range')
})

t.test('IPv6 ranges', async (t) => {
  const list = allowlist('2001:db8::/32', '::1')
  t.ok(allows(list, '2001:db8:1::5'))
  t.ok(allows(list, '::1'))
  t.notOk(allows(list, '2001:db9::1'))
  t.notOk(allows(list, '10.0.0.1'))
})

t.test('IPv4-mapped entries and clients meet as IPv4', async (t) => {
  const list = allowlist('::ffff:10.0.0.0/104')
  t.ok(allows(list, '10.1.2.3'))
  t.ok(allows(list, '::ffff:10.1.2.3'))
  t.notOk(allows(list, '11.1.2.3'))
})

t.test('0.0.0.0/0 and ::/0 admit all', async (t) => {
  const list = allowlist('0.0.0.0/0', '::/0')
  t.ok(allows(list, '203.0.113.1'))
  t.ok(allows(list, '2001:db8::1'))
})

t.test('bad entries are named', async (t) => {
  t.equal(parseNetwork('10.0.0.0/33'), 'prefix length 33 exceeds 32 for IPv4')
  t.equal(parseNetwork('::/129'), 'prefix length 129 exceeds 128 for IPv6')
  t.equal(parseNetwork('10.0.0.0/x'), 'prefix length is not a number')
  t.equal(parseNetwork('10.0.0/8'), 'not an IPv4 or IPv6 address')
  t.equal(parseNetwork('/8'), 'not an address or CIDR')
  t.equal(parseNetwork('10.0.0.0/8/9'), 'not an address or CIDR')
})

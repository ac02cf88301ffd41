import t from 'tap'
import { isStrictAddress, resolveClientAddress } from '../../proxy/client-address.ts'

const resolve = (peer: string | undefined, xff: string | undefined, hops: number) => {
  const result = resolveClientAddress(peer, xff, hops)
  return typeof result === 'string' ? result : result.toString()
}

t.test('with no trusted hops the socket peer is the client, whatever X-Forwarded-For says', async (t) => {
  t.equal(resolve('10.1.2.3', '8.8.8.8', 0), '10.1.2.3')
  t.equal(resolve('2001:db8::1', undefined, 0), '2001:db8::1')
})

t.test('IPv4-mapped IPv6 peers are normalised to IPv4', async (t) => {
  t.equal(resolve('::ffff:10.1.2.3', undefined, 0), '10.1.2.3')
  t.equal(resolve('::ffff:127.0.0.1', undefined, 0), '127.0.0.1')
})

t.test('hops are counted from the right; spoofed left-most entries are ignored', async (t) => {
  // Google's load balancer appends "<client>,<lb>"; the peer is Google's front end.
  t.equal(resolve('169.254.1.1', '6.6.6.6, 203.0.113.7, 35.191.0.1', 2), '203.0.113.7')
  t.equal(resolve('169.254.1.1', '1.1.1.1,2.2.2.2,3.3.3.3, 203.0.113.7,35.191.0.1', 2), '203.0.113.7')
  t.equal(resolve('169.254.1.1', '203.0.113.7', 1), '203.0.113.7')
  t.equal(resolve('169.254.1.1', '::ffff:203.0.113.7, 35.191.0.1', 2), '203.0.113.7')
})

t.test('a chain shorter than the trusted hops is refused, not guessed', async (t) => {
  t.equal(resolve('169.254.1.1', undefined, 1), 'forwarded_chain_too_short')
  t.equal(resolve('169.254.1.1', '35.191.0.1', 2), 'forwarded_chain_too_short')
})

t.test('unparseable addresses are refused', async (t) => {
  t.equal(resolve(undefined, undefined, 0), 'client_address_unparseable')
  t.equal(resolve('1.2.3.4', 'not-an-ip, 35.191.0.1', 2), 'client_address_unparseable')
  t.equal(resolve('1.2.3.4', '1.2.3.4:5678, 35.191.0.1', 2), 'client_address_unparseable')
  t.equal(resolve('1.2.3.4', ', 35.191.0.1', 2), 'client_address_unparseable')
  // Forms ipaddr.js would accept but no proxy writes.
  t.equal(resolve('1.2.3.4', '127.1, 35.191.0.1', 2), 'client_address_unparseable')
  t.equal(resolve('1.2.3.4', '0x7f000001, 35.191.0.1', 2), 'client_address_unparseable')
})

t.test('isStrictAddress accepts dotted quads and IPv6 only', async (t) => {
  t.ok(isStrictAddress('10.0.0.1'))
  t.ok(isStrictAddress('::1'))
  t.notOk(isStrictAddress('010.0.0.1x'))
  t.notOk(isStrictAddress('localhost'))
})

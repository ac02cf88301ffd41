import ipaddr from 'ipaddr.js'
import { isStrictAddress } from './client-address.ts'

type Address = ipaddr.IPv4 | ipaddr.IPv6
type Range = [Address, number]

/**
 * The set of networks a client address must belong to.
 *
 * IPv4-mapped IPv6 ranges (`::ffff:10.0.0.0/104`) are stored as the IPv4 range they denote, and client
 * addresses arrive already normalised to IPv4 (see client-address.ts), so each family is only ever
 * compared with its own kind.
 */
export interface Allowlist {
  readonly entries: readonly string[]
  allows(address: Address): boolean
}

/** Parses one `ALLOWED_CIDRS` entry; returns the problem as a phrase when it is not a network. */
export function parseNetwork(entry: string): Range | string {
  const [addressPart, prefixPart, ...rest] = entry.split('/')
  if (rest.length > 0 || addressPart === undefined || addressPart === '') return 'not an address or CIDR'
  if (!isStrictAddress(addressPart)) return 'not an IPv4 or IPv6 address'
  const address = ipaddr.parse(addressPart)
  const maxBits = address.kind() === 'ipv4' ? 32 : 128
  let bits = maxBits
  if (prefixPart !== undefined) {
    if (!/^\d{1,3}$/.test(prefixPart)) return 'prefix length is not a number'
    bits = Number(prefixPart)
    if (bits > maxBits)
      return `prefix length ${bits} exceeds ${maxBits} for ${address.kind() === 'ipv4' ? 'IPv4' : 'IPv6'}`
  }
  if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() && bits >= 96) {
    return [address.toIPv4Address(), bits - 96]
  }
  return [address, bits]
}

export function createAllowlist(entries: readonly string[], ranges: readonly Range[]): Allowlist {
  const v4 = ranges.filter(([address]) => address.kind() === 'ipv4')
  const v6 = ranges.filter(([address]) => address.kind() === 'ipv6')
  return Object.freeze({
    entries: Object.freeze([...entries]),
    allows(address: Address): boolean {
      const candidates = address.kind() === 'ipv4' ? v4 : v6
      for (const range of candidates) {
        if (address.match(range)) return true
      }
      return false
    },
  })
}

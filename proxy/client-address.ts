import ipaddr from 'ipaddr.js'

export type ClientAddress = ipaddr.IPv4 | ipaddr.IPv6

/** Why no client address could be determined; each is a denial reason in the log. */
export type ClientAddressProblem = 'client_address_unparseable' | 'forwarded_chain_too_short'

/**
 * The client's address, walking `X-Forwarded-For` from the right.
 *
 * The chain is every `X-Forwarded-For` entry (all header lines, in order) followed by the socket peer.
 * With `trustedHops` = N the client is the entry N places left of the socket peer: the semantics of
 * Express/Fastify `trustProxy: N`. Everything further left was written by the client and is ignored.
 * A chain shorter than N + 1 means the request did not pass the proxies we were told about; Express
 * would fall back to the left-most entry, we refuse (fail closed).
 */
export function resolveClientAddress(
  socketPeer: string | undefined,
  forwardedFor: string | undefined,
  trustedHops: number,
): ClientAddress | ClientAddressProblem {
  let candidate = socketPeer
  if (trustedHops > 0) {
    const entries = forwardedFor === undefined ? [] : forwardedFor.split(',')
    const index = entries.length - trustedHops
    if (index < 0) return 'forwarded_chain_too_short'
    candidate = entries[index]?.trim()
  }
  if (candidate === undefined || !isStrictAddress(candidate)) return 'client_address_unparseable'
  // process() turns ::ffff:10.1.2.3 into 10.1.2.3 so IPv4 ranges match mapped addresses.
  return ipaddr.process(candidate)
}

/**
 * Dotted-quad IPv4 or IPv6 text only. ipaddr.isValid() also takes `127.1`, `0x7f000001` and octal
 * parts, which no proxy writes and which would make an allowlist entry mean something unexpected.
 */
export function isStrictAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text)
}

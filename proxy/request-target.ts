import type { IncomingMessage } from 'node:http'

/** Why a request target was not reduced to origin form; each is a `request_invalid:` reason in the log. */
export type TargetProblem = 'target_form' | 'target_authority' | 'asterisk_form'

/** Set on the raw request by `toOriginForm` when its target cannot be forwarded; the pipeline refuses it. */
export const TARGET_PROBLEM = Symbol('targetProblem')

/**
 * Set by server.ts on a request whose `Expect` is not `100-continue`: Node would answer 417 itself and
 * then read the body to its end; marked instead, it is refused by the pipeline like any other request.
 */
export const UNKNOWN_EXPECTATION = Symbol('unknownExpectation')

declare module 'node:http' {
  interface IncomingMessage {
    [TARGET_PROBLEM]?: TargetProblem
    [UNKNOWN_EXPECTATION]?: true
  }
}

/** `http://authority` then the rest, which is empty or starts with `/` or `?`. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/is

/**
 * Fastify's `rewriteUrl`: runs before routing, for plain requests and WebSocket upgrades alike, so the
 * router, every path rule, the upstream and the log only ever see origin form (`/path?query`).
 *
 * An absolute target (`GET http://host/x HTTP/1.1`, RFC 9112 3.2.2) is reduced to its path and query.
 * Its authority must be the Host header exactly (RFC 9112 3.2 requires a client to send them identical):
 * the RFC lets an origin server prefer the target's authority, but then Host, X-Forwarded-Host and the
 * WebSocket Origin check could each name a different host, so a mismatch is refused instead, as is
 * userinfo (RFC 9110 4.2.4) and any other target form. A refused target is marked and routed as `/`
 * (the router would answer some forms itself, before any hook), so the pipeline's first check refuses it.
 */
export function toOriginForm(request: IncomingMessage): string {
  const target = request.url as string // always set on a server's request
  if (target.startsWith('/')) return target
  if (target === '*' && request.method === 'OPTIONS') {
    // "OPTIONS *" asks about the server in general (RFC 9110 9.3.7); undici cannot send it on.
    request[TARGET_PROBLEM] = 'asterisk_form'
    return '/'
  }
  const absolute = ABSOLUTE_FORM.exec(target)
  if (absolute === null) {
    request[TARGET_PROBLEM] = 'target_form'
    return '/'
  }
  const [, authority, rest] = absolute as unknown as [string, string, string]
  if (authority.toLowerCase() !== request.headers.host?.toLowerCase() || authority.includes('@')) {
    request[TARGET_PROBLEM] = 'target_authority'
    return '/'
  }
  return rest.startsWith('/') ? rest : `/${rest}`
}

/**
 * A refused target as the log shows it: the client's text can hold a password (`http://user:pw@h/x`),
 * a query or a fragment, and the log must hold none of them. An absolute URI loses its userinfo (up to
 * the last `@`); a target of no known form is not shown at all (its `reason` names what it was).
 */
export function shownTarget(target: string, problem: TargetProblem): string {
  if (problem === 'asterisk_form') return '*'
  const absolute = problem === 'target_authority' ? ABSOLUTE_FORM.exec(target) : null
  if (absolute === null) return '(not shown)'
  const [, authority, rest] = absolute as unknown as [string, string, string]
  const scheme = target.slice(0, target.indexOf(':'))
  return `${scheme}://${authority.slice(authority.lastIndexOf('@') + 1)}${rest}`
}

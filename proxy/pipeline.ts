import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { type ClientAddressProblem, resolveClientAddress } from './client-address.ts'
import type { GatewayConfig } from './config.ts'
import { DENIALS, IAP_DENIALS, type RefusalReason } from './errors.ts'
import { assertionValues, type RequestFacts } from './headers.ts'
import { type Health, RESERVED_PREFIX, serveReserved } from './health.ts'
import type { IapIdentity, IapVerifier } from './iap/verify.ts'
import { originAllowed } from './origin.ts'
import { deny } from './refusal.ts'
import { TARGET_PROBLEM, UNKNOWN_EXPECTATION } from './request-target.ts'
import { tookUpgradePath } from './upgrade.ts'
import type { IdTokenSource } from './upstream-id-token.ts'

/** Where stages 1 and 2 put a client: its address and whether the allowlist admits it, or why neither. */
type Placement = { address: string; allowed: boolean } | { problem: ClientAddressProblem }

/** The IAP stage as the pipeline sees it: proxy/iap/verify.ts, less its start and stop. */
export type AssertionVerifier = Pick<IapVerifier, 'verify' | 'keysReady'>

declare module 'fastify' {
  interface FastifyRequest {
    /** Set once every stage admitted the request; the proxy builds the upstream headers from it. */
    gateway: RequestFacts | null
    /** The client address stage 1 determined, for the log. */
    clientAddress: string | null
    /** Set when a stage refused the request: the machine-readable reason for the log, never sent. */
    denialReason: RefusalReason | null
    /** The verified email of an identity ALLOWED_EMAILS / ALLOWED_DOMAINS refused, for the log. */
    refusedEmail: string | null
  }
}

/**
 * One request's path through the gateway, in order:
 *
 *   request target                  reduced to origin form before routing      400 (501 OPTIONS *)
 *   Expect other than 100-continue  (RFC 9110 10.1.1)                          417
 *   reserved paths (/_gateway/...)  exact match, answered here, never proxied
 *   1. client address               socket peer + TRUST_PROXY_HOPS            403
 *   2. allowlist                    ALLOWED_CIDRS                              403
 *      WebSocket origin             own host or ALLOWED_ORIGINS (upgrades)     403
 *   3. IAP assertion                x-goog-iap-jwt-assertion                   401 (403 identity, 503 no keys)
 *   4. upstream credential          ID token for a private upstream (optional)  503
 *   5. facts for the upstream       client address, proto, host, identity      (headers set in headers.ts)
 *
 * It runs as Fastify's first onRequest hook, which also runs for WebSocket upgrades (the proxy
 * dispatches them through the router), so both paths meet the same stages.
 */
export interface PipelineStages {
  readonly health: Health
  /** Absent when IAP_DISABLED=true. */
  readonly verifier: AssertionVerifier | undefined
  /** Present when UPSTREAM_ID_TOKEN_AUDIENCE is set. */
  readonly idTokens: IdTokenSource | undefined
}

export function createPipeline(config: GatewayConfig, { health, verifier, idTokens }: PipelineStages) {
  const { allowlist, trustProxyHops } = config
  const allowedOrigins = new Set(config.allowedOrigins)

  function judge(socketPeer: string | undefined, forwardedFor: string | undefined): Placement {
    const address = resolveClientAddress(socketPeer, forwardedFor, trustProxyHops)
    if (typeof address === 'string') return { problem: address }
    return { address: address.toString(), allowed: allowlist.allows(address) }
  }

  // Stages 1 and 2. Without trusted proxies the answer depends on the socket peer alone, which a
  // keep-alive connection cannot change: judged once per connection, not parsed again per request.
  const placements = new WeakMap<Socket, Placement>()
  function placeClient(request: FastifyRequest): Placement {
    const socket = request.raw.socket
    if (trustProxyHops > 0) {
      // Node joins repeated X-Forwarded-For lines with ', '.
      return judge(socket.remoteAddress, request.headers['x-forwarded-for'] as string | undefined)
    }
    let placement = placements.get(socket)
    if (placement === undefined) {
      placement = judge(socket.remoteAddress, undefined)
      placements.set(socket, placement)
    }
    return placement
  }

  return async function gatewayPipeline(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // A target that could not be reduced to origin form (request-target.ts) is nobody's path.
    const targetProblem = request.raw[TARGET_PROBLEM]
    if (targetProblem === 'asterisk_form') {
      return deny(request, reply, DENIALS.notImplemented, 'request_unsupported:asterisk_form')
    }
    if (targetProblem !== undefined) {
      return deny(request, reply, DENIALS.badRequest, `request_invalid:${targetProblem}`)
    }
    if (request.raw[UNKNOWN_EXPECTATION] === true) {
      return deny(request, reply, DENIALS.expectationFailed, 'request_invalid:expect')
    }
    const rawUrl = request.url // Fastify's getter for the raw, undecoded target, in origin form
    // Exact, undecoded prefix: `//_gateway/`, `/%5Fgateway/` or `/_GATEWAY/` are ordinary requests below.
    if (rawUrl.startsWith(RESERVED_PREFIX)) return serveReserved(rawUrl, request, reply, health)

    const placed = placeClient(request)
    if ('problem' in placed) return deny(request, reply, DENIALS.forbidden, placed.problem)
    request.clientAddress = placed.address
    if (!placed.allowed) return deny(request, reply, DENIALS.forbidden, 'network_not_allowed')
    const proto = forwardedProto(request.headers['x-forwarded-proto'], trustProxyHops)
    if (tookUpgradePath(request.raw) && !originAllowed(request.headers, proto, allowedOrigins)) {
      return deny(request, reply, DENIALS.forbidden, 'websocket_origin_not_allowed')
    }

    let identity: IapIdentity | undefined
    let assertion: string | undefined
    if (verifier !== undefined) {
      const assertions = assertionValues(request.raw.rawHeaders)
      const result = await verifier.verify(assertions)
      if (!result.ok) {
        // Who was refused is the operator's first question; the address only, never the assertion.
        if (result.email !== undefined) request.refusedEmail = result.email
        return deny(request, reply, IAP_DENIALS[result.reason], `iap_${result.reason}`)
      }
      identity = result.identity
      assertion = assertions[0]
    }

    let upstreamToken: string | undefined
    if (idTokens !== undefined) {
      try {
        upstreamToken = await idTokens.token()
      } catch {
        return deny(request, reply, DENIALS.unavailable, 'upstream_credential_unavailable')
      }
    }

    request.gateway = {
      clientAddress: request.clientAddress,
      proto,
      host: request.headers.host,
      identity,
      assertion,
      upstreamToken,
    }
  }
}

/** Behind trusted proxies the scheme the user typed is theirs to report; directly, it is plain HTTP. */
function forwardedProto(header: string | string[] | undefined, trustProxyHops: number): 'http' | 'https' {
  if (trustProxyHops === 0 || typeof header !== 'string') return 'http'
  const last = header.slice(header.lastIndexOf(',') + 1).trim()
  return last === 'https' ? 'https' : 'http'
}

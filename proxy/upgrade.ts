import type { IncomingMessage } from 'node:http'

/**
 * Protocol switches. Only a WebSocket handshake takes Node's 'upgrade' path to the proxy (server.ts);
 * any other `Upgrade` (h2c, the classic smuggling probe) is a plain request, forwarded without its
 * upgrade headers (RFC 9110 7.8 lets a server ignore an upgrade it does not offer).
 */

/** Node's `shouldUpgradeCallback`. RFC 6455 4.1: a GET whose Upgrade is `websocket` (ws refuses the rest). */
export function isWebSocketHandshake(request: IncomingMessage): boolean {
  return request.method === 'GET' && request.headers.upgrade?.toLowerCase() === 'websocket'
}

/** Whether Node took the request down its 'upgrade' path: a WebSocket handshake (`upgrade` is not in its types). */
export function tookUpgradePath(request: IncomingMessage): boolean {
  return (request as { upgrade?: boolean }).upgrade === true
}

/**
 * A request whose `Upgrade` the gateway ignored. Node's parser stops reading the connection at the end
 * of a request that asked to upgrade (llhttp pauses there, and with the upgrade declined nothing
 * resumes it), so a request the client pipelined behind it would never be answered and the connection
 * would idle until its timeout: the answer to this one closes the connection instead.
 */
export function ignoredUpgrade(request: IncomingMessage): boolean {
  return request.headers.upgrade !== undefined && !tookUpgradePath(request)
}

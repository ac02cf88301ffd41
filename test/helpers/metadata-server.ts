import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface MetadataServer {
  /** host:port, for GCE_METADATA_HOST. */
  readonly host: string
  /** Identity token requests served so far. */
  readonly identityRequests: () => number
  /** Verifies a token this server issued: signature, audience and expiry. */
  verify(token: string, audience: string, nowSeconds?: number): boolean
  /** Makes the next identity requests fail with 500 until set back to false. */
  failing: boolean
  /** Lifetime of the tokens it issues. */
  lifetimeSeconds: number
  /** Delay before answering an identity request. */
  delayMs: number
  /** When set, answered instead of a signed JWT (to test tokens whose expiry cannot be read). */
  tokenOverride: string | undefined
  close(): Promise<void>
}

/**
 * A stand-in for the GCE/Cloud Run metadata server's identity endpoint, as google-auth-library calls
 * it: GET /computeMetadata/v1/instance/service-accounts/default/identity?format=full&audience=A with
 * `Metadata-Flavor: Google`. Tokens are ES256 JWTs signed with a key made here, so an upstream can check
 * them for real.
 */
export async function startMetadataServer(): Promise<MetadataServer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  let identityRequests = 0
  const state = {
    failing: false,
    lifetimeSeconds: 3600,
    delayMs: 0,
    tokenOverride: undefined as string | undefined,
  }
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://metadata')
    if (req.headers['metadata-flavor'] !== 'Google') {
      res.writeHead(403).end()
      return
    }
    if (!url.pathname.endsWith('/service-accounts/default/identity')) {
      res.writeHead(404, { 'metadata-flavor': 'Google' }).end()
      return
    }
    identityRequests++
    const answer = () => {
      if (state.failing) {
        res.writeHead(500, { 'metadata-flavor': 'Google' }).end('metadata unavailable')
        return
      }
      if (state.tokenOverride !== undefined) {
        res.writeHead(200, { 'metadata-flavor': 'Google' }).end(state.tokenOverride)
        return
      }
      const now = Math.floor(Date.now() / 1000)
      const header = encode({ alg: 'ES256', typ: 'JWT' })
      const payload = encode({
        iss: 'https://accounts.google.com',
        aud: url.searchParams.get('audience'),
        sub: '1234567890',
        email: 'gateway@project.iam.gserviceaccount.com',
        iat: now,
        exp: now + state.lifetimeSeconds,
        n: identityRequests,
      })
      const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
        key: privateKey,
        dsaEncoding: 'ieee-p1363',
      }).toString('base64url')
      res
        .writeHead(200, { 'metadata-flavor': 'Google', 'content-type': 'text/plain' })
        .end(`${header}.${payload}.${signature}`)
    }
    if (state.delayMs > 0) setTimeout(answer, state.delayMs)
    else answer()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, {
    host: `127.0.0.1:${port}`,
    identityRequests: () => identityRequests,
    verify(token: string, audience: string, nowSeconds = Math.floor(Date.now() / 1000)) {
      const [header, payload, signature] = token.split('.')
      if (header === undefined || payload === undefined || signature === undefined) return false
      const signed = verify(
        'sha256',
        Buffer.from(`${header}.${payload}`),
        { key: publicKey, dsaEncoding: 'ieee-p1363' },
        Buffer.from(signature, 'base64url'),
      )
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { aud: string; exp: number }
      return signed && claims.aud === audience && claims.exp > nowSeconds
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  })
}

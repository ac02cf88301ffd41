// Valid IAP assertions for the gateway: a throwaway ES256 key, served as IAP's kid -> PEM map from a
// loopback key server, and tokens signed with it the way IAP signs them (dev/iap-signer.ts).
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createSigningKey, IAP_ISSUER, publicKeySet, type SigningKey, signJwt } from '../dev/iap-signer.ts'

export const AUDIENCE = '/projects/123456789/global/backendServices/987654321'
/** IAP's own lifetime; the harness re-signs before a section if its tokens are older than half of it. */
const LIFETIME_S = 600

export interface KeyServer {
  readonly url: string
  readonly key: SigningKey
  close(): Promise<void>
}

export async function startKeyServer(): Promise<KeyServer> {
  const key = createSigningKey()
  const body = JSON.stringify(publicKeySet(key))
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600' })
    response.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/public_key`,
    key,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** `count` distinct assertions (distinct users), one per line in `file`. */
export function writeTokens(
  key: SigningKey,
  count: number,
  file: string,
): { file: string; signedAt: number } {
  const iat = Math.floor(Date.now() / 1000)
  const lines: string[] = []
  for (let i = 0; i < count; i++) {
    lines.push(
      signJwt(key, {
        aud: AUDIENCE,
        email: `user${i}@example.com`,
        exp: iat + LIFETIME_S,
        iat,
        identity_source: 'GOOGLE',
        iss: IAP_ISSUER,
        sub: `accounts.google.com:${100000000000 + i}`,
      }),
    )
  }
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 })
  return { file, signedAt: Date.now() }
}

export class TokenFiles {
  readonly #key: SigningKey
  readonly #dir: string
  readonly #signed = new Map<number, { file: string; signedAt: number }>()

  constructor(key: SigningKey, dir: string) {
    this.#key = key
    this.#dir = dir
  }

  /** A file of `count` fresh tokens (re-signed when the last ones are past half their lifetime). */
  get(count: number): string {
    const existing = this.#signed.get(count)
    if (existing !== undefined && Date.now() - existing.signedAt < (LIFETIME_S * 1000) / 2)
      return existing.file
    const signed = writeTokens(this.#key, count, join(this.#dir, `tokens-${count}.txt`))
    this.#signed.set(count, signed)
    return signed.file
  }
}

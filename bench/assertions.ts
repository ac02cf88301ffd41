// Valid IAP assertions for the gateway: a throwaway ES256 key, served as IAP's kid -> PEM map by the
// tests' loopback key server, and tokens signed with it the way IAP signs them (dev/iap-signer.ts).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createSigningKey, IAP_ISSUER, type SigningKey, signJwt } from '../dev/iap-signer.ts'
import { startKeyServer as startTestKeyServer } from '../test/helpers/iap.ts'

export const AUDIENCE = '/projects/123456789/global/backendServices/987654321'
/** IAP's own lifetime; the harness re-signs before a section if its tokens are older than half of it. */
const LIFETIME_S = 600

export interface KeyServer {
  readonly url: string
  readonly key: SigningKey
  close(): Promise<void>
}

/** The tests' key server (test/helpers/iap.ts), serving one fresh key. */
export async function startKeyServer(): Promise<KeyServer> {
  const key = createSigningKey()
  const server = await startTestKeyServer({ keys: [key] })
  return { url: server.url, key, close: () => server.close() }
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

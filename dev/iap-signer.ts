// The emulator's signing half: one ES256 (P-256) key pair and the assertion IAP would send for one
// identity. Signing is node:crypto alone: a compact JWS is two base64url segments and one signature in
// the IEEE P1363 (r||s) form JWS requires, so no JWT library is needed on this side.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto'
import { DEV_ERR_SIGNING_KEY } from './errors.ts'

export const IAP_ISSUER = 'https://cloud.google.com/iap'

export type Identity = Readonly<{ email: string; sub: string; hd?: string | undefined }>

export type SigningKey = Readonly<{ kid: string; privateKey: KeyObject; publicKey: KeyObject }>

export type AssertionSignerOptions = Readonly<{
  key: SigningKey
  identity: Identity
  audience: string
  lifetimeSeconds: number
  /** milliseconds since the epoch; tests pass a frozen clock */
  now?: () => number
}>

export type SignedAssertion = Readonly<{ token: string; iat: number; exp: number }>

/** A fresh P-256 key pair, or the one in `privateKeyPem` (PKCS#8 or SEC1 PEM) when given. */
export function createSigningKey(privateKeyPem?: string, source = 'file'): SigningKey {
  let privateKey: KeyObject
  if (privateKeyPem === undefined) {
    privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  } else {
    try {
      privateKey = createPrivateKey(privateKeyPem)
    } catch {
      // the parser's message may quote key material: say what was expected instead
      throw new DEV_ERR_SIGNING_KEY(source, 'not a PEM private key')
    }
    const curve = privateKey.asymmetricKeyDetails?.namedCurve
    if (privateKey.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
      const found = privateKey.asymmetricKeyType === 'ec' ? `ec ${curve}` : privateKey.asymmetricKeyType
      throw new DEV_ERR_SIGNING_KEY(source, `IAP signs with ES256, which needs an EC P-256 key, not ${found}`)
    }
  }
  const publicKey = createPublicKey(privateKey)
  // A short kid derived from the public key, like Google's (e.g. "0oeLcQ"): a loaded key keeps its kid
  // across restarts, so a gateway holding the old key set does not need a refetch.
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const kid = createHash('sha256').update(spki).digest('base64url').slice(0, 8)
  return Object.freeze({ kid, privateKey, publicKey })
}

/** The key set in the format of https://www.gstatic.com/iap/verify/public_key (kid -> SPKI PEM). */
export function publicKeySet(key: SigningKey): Record<string, string> {
  return { [key.kid]: key.publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}

/** The same key set as https://www.gstatic.com/iap/verify/public_key-jwk serves it. */
export function publicJwkSet(key: SigningKey): { keys: object[] } {
  const jwk = key.publicKey.export({ format: 'jwk' })
  return { keys: [{ ...jwk, alg: 'ES256', use: 'sig', kid: key.kid }] }
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

export function signJwt(key: SigningKey, payload: object): string {
  const signingInput = `${base64url({ alg: 'ES256', typ: 'JWT', kid: key.kid })}.${base64url(payload)}`
  const signature = sign('sha256', Buffer.from(signingInput), {
    key: key.privateKey,
    dsaEncoding: 'ieee-p1363',
  })
  return `${signingInput}.${signature.toString('base64url')}`
}

/**
 * Hands out the current assertion and signs a new one before the current one gets close to `exp`, as
 * IAP does: every assertion the gateway receives has at least a quarter of its lifetime (at most a
 * minute) left, so it never arrives expired and never sits inside the gateway's clock-skew window.
 */
export function createAssertionSigner(options: AssertionSignerOptions): { current(): SignedAssertion } {
  const { key, identity, audience, lifetimeSeconds } = options
  const now = options.now ?? Date.now
  const renewMargin = Math.min(60, lifetimeSeconds / 4)
  let assertion: SignedAssertion | undefined

  function signNew(): SignedAssertion {
    const iat = Math.floor(now() / 1000)
    const exp = iat + lifetimeSeconds
    const claims: Record<string, unknown> = {
      aud: audience,
      email: identity.email,
      exp,
      iat,
      identity_source: 'GOOGLE',
      iss: IAP_ISSUER,
      sub: identity.sub,
    }
    if (identity.hd !== undefined) claims.hd = identity.hd
    return Object.freeze({ token: signJwt(key, claims), iat, exp })
  }

  return {
    current() {
      if (assertion === undefined || now() / 1000 >= assertion.exp - renewMargin) assertion = signNew()
      return assertion
    },
  }
}

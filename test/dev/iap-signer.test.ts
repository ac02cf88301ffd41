import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { OAuth2Client } from 'google-auth-library'
import t from 'tap'
import {
  createAssertionSigner,
  createSigningKey,
  IAP_ISSUER,
  publicJwkSet,
  publicKeySet,
  signJwt,
} from '../../dev/iap-signer.ts'
import { jwtParts } from './echo-upstream.ts'

const audience = '/projects/123456789012/global/backendServices/987654321'
const identity = { email: 'dev@example.com', sub: 'accounts.google.com:1234', hd: 'example.com' }

function verifyWith(pem: string, token: string): boolean {
  const [h, p, s] = token.split('.') as [string, string, string]
  return verify(
    'sha256',
    Buffer.from(`${h}.${p}`),
    { key: pem, dsaEncoding: 'ieee-p1363' },
    Buffer.from(s, 'base64url'),
  )
}

t.test('a generated key signs ES256 assertions that Google’s own client library accepts', async (t) => {
  const key = createSigningKey()
  const set = publicKeySet(key)
  t.same(Object.keys(set), [key.kid])
  t.match(key.kid, /^[A-Za-z0-9_-]{8}$/)
  t.match(set[key.kid], /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/)

  const { token, iat, exp } = createAssertionSigner({
    key,
    identity,
    audience,
    lifetimeSeconds: 600,
  }).current()
  t.equal(exp - iat, 600)
  const { header, payload } = jwtParts(token)
  t.same(header, { alg: 'ES256', typ: 'JWT', kid: key.kid })
  t.same(payload, {
    aud: audience,
    email: 'dev@example.com',
    exp,
    iat,
    identity_source: 'GOOGLE',
    iss: IAP_ISSUER,
    sub: 'accounts.google.com:1234',
    hd: 'example.com',
  })
  t.ok(verifyWith(set[key.kid] as string, token), 'signature is raw r||s, as JWS requires')

  const ticket = await new OAuth2Client().verifySignedJwtWithCertsAsync(token, set, audience, [IAP_ISSUER])
  t.equal(ticket.getPayload()?.email, 'dev@example.com')
})

t.test('the JWK form of the key set describes the same key', async (t) => {
  const key = createSigningKey()
  const { keys } = publicJwkSet(key)
  t.equal(keys.length, 1)
  t.match(keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: key.kid })
  const fromJwk = createPublicKey({ key: keys[0] as never, format: 'jwk' })
  const token = signJwt(key, { hello: 'world' })
  t.ok(verifyWith(fromJwk.export({ type: 'spki', format: 'pem' }).toString(), token))
})

t.test('a loaded key keeps its kid; keys IAP could not use are refused with the reason', async (t) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const sec1 = privateKey.export({ type: 'sec1', format: 'pem' }).toString()
  t.equal(createSigningKey(pkcs8).kid, createSigningKey(sec1).kid)
  t.not(createSigningKey(pkcs8).kid, createSigningKey().kid)

  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  })
  t.throws(() => createSigningKey(p384.toString(), 'key.pem'), {
    code: 'DEV_ERR_SIGNING_KEY',
    message: 'IAP emulator key key.pem: IAP signs with ES256, which needs an EC P-256 key, not ec secp384r1',
  })
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  })
  t.throws(() => createSigningKey(rsa.toString(), 'rsa.pem'), {
    code: 'DEV_ERR_SIGNING_KEY',
    message: 'IAP emulator key rsa.pem: IAP signs with ES256, which needs an EC P-256 key, not rsa',
  })
  t.throws(() => createSigningKey('not a key'), {
    code: 'DEV_ERR_SIGNING_KEY',
    message: 'IAP emulator key file: not a PEM private key',
  })
})

t.test('the assertion is re-signed before it expires, never after', async (t) => {
  let now = 1_800_000_000_000
  const key = createSigningKey()
  const signer = createAssertionSigner({ key, identity, audience, lifetimeSeconds: 600, now: () => now })
  const first = signer.current()
  t.same([first.iat, first.exp], [1_800_000_000, 1_800_000_600])

  now += 539_999
  t.equal(signer.current(), first, 'reused while more than a minute is left')
  now += 1
  const second = signer.current()
  t.not(second.token, first.token, 'a minute before exp a new one is signed')
  t.same([second.iat, second.exp], [1_800_000_540, 1_800_001_140])
  t.ok(second.exp > first.exp)
  t.equal(jwtParts(second.token).payload.hd, 'example.com')

  // short lifetimes renew with a quarter of their lifetime left
  const short = createAssertionSigner({
    key,
    identity: { email: 'a@b.test', sub: 'accounts.google.com:1' },
    audience,
    lifetimeSeconds: 4,
    now: () => now,
  })
  const a = short.current()
  t.notOk('hd' in jwtParts(a.token).payload, 'no hd claim for an identity without one')
  now += 2_999
  t.equal(short.current(), a)
  now += 1
  t.not(short.current(), a)
})

import t, { type Test } from 'tap'
import type { IapVerifierOptions } from '../../../proxy/iap/verify.ts'
import {
  badTokens,
  createSigningKey,
  frozenClock,
  iapClaims,
  publicKeySet,
  recordingLog,
  type SigningKey,
  signAssertion,
  signJwt,
  TEST_AUDIENCE,
  until,
} from '../../helpers/iap.ts'
import { verifierWithKeyServer } from '../../helpers/verifier.ts'

const clock = frozenClock()
const nowS = () => Math.floor(clock.ms / 1000)

async function setup(t: Test, options: Partial<IapVerifierOptions> = {}, keys = [createSigningKey()]) {
  const log = recordingLog()
  const { server, verifier } = await verifierWithKeyServer(
    t,
    { keys },
    { audiences: [TEST_AUDIENCE, '/projects/1/apps/other'], now: clock.now, log, ...options },
  )
  await until(() => verifier.keysReady, 'the first key set')
  return { server, verifier, log, key: keys[0] as SigningKey }
}

t.test('a valid assertion yields the identity in both header formats', async (t) => {
  const { verifier, key } = await setup(t)
  const token = signAssertion(key, { iat: nowS() - 5, hd: 'example.com' })
  t.same(await verifier.verify([token]), {
    ok: true,
    identity: {
      email: 'alice@example.com',
      sub: '108765432109876543210',
      hd: 'example.com',
      userEmailHeader: 'accounts.google.com:alice@example.com',
      userIdHeader: 'accounts.google.com:108765432109876543210',
    },
  })
  const other = signAssertion(key, { iat: nowS(), audience: '/projects/1/apps/other', sub: '42' })
  const result = await verifier.verify([other])
  t.ok(result.ok, 'second accepted audience; an unprefixed sub gets the Google prefix')
  if (result.ok) t.equal(result.identity.userIdHeader, 'accounts.google.com:42')
})

t.test('every claim and header check refuses with its own reason', async (t) => {
  const { verifier, key } = await setup(t)
  const iat = nowS()
  const cases: [string, string, string][] = [
    ['expired', 'expired', signAssertion(key, { iat: iat - 700, lifetime: 600 })],
    ['expired beyond the 30 s skew', 'expired', signAssertion(key, { iat: iat - 631, lifetime: 600 })],
    ['iat in the future', 'not_yet_valid', signAssertion(key, { iat: iat + 31 })],
    ['lifetime over 10 min + 2 skew', 'lifetime', signAssertion(key, { iat, lifetime: 661 })],
    ['exp before iat', 'lifetime', signAssertion(key, { iat, lifetime: -1, extra: {} })],
    ['wrong aud', 'audience', signAssertion(key, { iat, audience: '/projects/1/global/backendServices/2' })],
    ['aud as an array', 'audience', signJwt(key, { ...iapClaims({ iat }), aud: [TEST_AUDIENCE] })],
    ['wrong iss', 'issuer', signAssertion(key, { iat, issuer: 'https://accounts.google.com' })],
    ['alg none', 'alg', badTokens.algNone(key, iapClaims({ iat }))],
    ['HS256 keyed with the PEM', 'alg', badTokens.hs256WithPem(key, iapClaims({ iat }))],
    ['RS256 header', 'alg', badTokens.rs256(key, iapClaims({ iat }))],
    ['rogue key with a known kid', 'signature', badTokens.rogueKey(key, iapClaims({ iat }))],
    [
      'tampered payload',
      'signature',
      badTokens.tamperedPayload(signAssertion(key, { iat }), iapClaims({ iat, email: 'boss@example.com' })),
    ],
    [
      'ES256 with no signature',
      'malformed',
      `${signAssertion(key, { iat }).split('.').slice(0, 2).join('.')}.`,
    ],
    ['DER signature', 'malformed', badTokens.derSignature(key, iapClaims({ iat }))],
    ['garbage', 'malformed', 'not a token'],
    [
      'two tokens in one value',
      'malformed',
      `${signAssertion(key, { iat })}, ${signAssertion(key, { iat })}`,
    ],
    ['four segments', 'malformed', `${signAssertion(key, { iat })}.AAAA`],
    [
      'header not JSON',
      'malformed',
      `bm90IGpzb24.${signAssertion(key, { iat }).split('.').slice(1).join('.')}`,
    ],
    ['header a JSON array', 'malformed', `WzFd.${signAssertion(key, { iat }).split('.').slice(1).join('.')}`],
    ['non-canonical base64url', 'malformed', signAssertion(key, { iat }).replace('.', '=.')],
    ['no kid', 'malformed', badTokens.signedWith(key, { alg: 'ES256' }, iapClaims({ iat }))],
    [
      'crit header',
      'malformed',
      badTokens.signedWith(key, { alg: 'ES256', kid: key.kid, crit: ['x'] }, iapClaims({ iat })),
    ],
    ['payload an array', 'malformed', badTokens.signedWith(key, { alg: 'ES256', kid: key.kid }, [1])],
    ['exp not a number', 'malformed', signJwt(key, { ...iapClaims({ iat }), exp: String(iat + 60) })],
    ['no email', 'malformed', signJwt(key, { ...iapClaims({ iat }), email: undefined })],
    ['email not an address', 'malformed', signAssertion(key, { iat, email: 'accounts.google.com:nobody' })],
    [
      'CR LF in sub',
      'malformed',
      signAssertion(key, { iat, sub: 'a\r\nX-Forwarded-Email: boss@example.com' }),
    ],
    ['space in email', 'malformed', signAssertion(key, { iat, email: 'a b@example.com' })],
    ['hd not a string', 'malformed', signJwt(key, { ...iapClaims({ iat }), hd: 1 })],
    ['unknown kid', 'unknown_kid', signJwt({ ...key, kid: 'made-up' }, iapClaims({ iat }))],
    ['too long', 'malformed', `${'a'.repeat(17_000)}.b.c`],
  ]
  for (const [name, reason, token] of cases) {
    t.same(await verifier.verify([token]), { ok: false, reason }, name)
  }
  t.same(await verifier.verify([]), { ok: false, reason: 'missing' }, 'no header')
  t.same(await verifier.verify(['']), { ok: false, reason: 'missing' }, 'empty header')
  const good = signAssertion(key, { iat })
  t.same(await verifier.verify([good, good]), { ok: false, reason: 'malformed' }, 'two header values')
  t.ok((await verifier.verify([signAssertion(key, { iat: iat - 630, lifetime: 600 })])).ok, 'inside the skew')
  t.ok((await verifier.verify([signAssertion(key, { iat: iat + 30 })])).ok, 'iat inside the skew')
  t.ok((await verifier.verify([signAssertion(key, { iat, lifetime: 660 })])).ok, 'longest lifetime allowed')
})

t.test(
  'ALLOWED_EMAILS / ALLOWED_DOMAINS: a miss is identity (403), matched on email domain or hd',
  async (t) => {
    const { verifier, key } = await setup(t, {
      allowedEmails: ['Carol@Elsewhere.org'],
      allowedDomains: ['Example.com'],
    })
    const iat = nowS()
    const check = async (claims: Parameters<typeof signAssertion>[1]) =>
      verifier.verify([signAssertion(key, { iat, ...claims })])
    t.ok((await check({ email: 'bob@EXAMPLE.com' })).ok, 'email domain, any case')
    t.ok((await check({ email: 'bob@alias.example.net', hd: 'example.com' })).ok, 'hd')
    t.ok((await check({ email: 'carol@elsewhere.org' })).ok, 'exact email, any case')
    t.same(
      await check({ email: 'mallory@evil.example.com' }),
      {
        ok: false,
        reason: 'identity',
        email: 'mallory@evil.example.com',
      },
      'a subdomain is not the domain',
    )
    t.same(await check({ email: 'dave@elsewhere.org', hd: 'elsewhere.org' }), {
      ok: false,
      reason: 'identity',
      email: 'dave@elsewhere.org',
    })
    const denied = signAssertion(key, { iat, email: 'eve@other.org' })
    t.equal((await verifier.verify([denied])).ok, false)
    t.same(
      await verifier.verify([denied]),
      { ok: false, reason: 'identity', email: 'eve@other.org' },
      'cached denial',
    )
  },
)

t.test(
  'external identities keep their prefix in the IAP headers and lose it in the plain ones',
  async (t) => {
    const { verifier, key } = await setup(t, { allowedDomains: ['partner.example'] })
    const prefix = 'securetoken.google.com/my-project/tenant-1'
    const result = await verifier.verify([
      signAssertion(key, {
        iat: nowS(),
        sub: `${prefix}:Uq3kX9`,
        email: `${prefix}:pat@partner.example`,
        extra: { gcip: { auth_time: 1 } },
      }),
    ])
    t.same(result, {
      ok: true,
      identity: {
        email: 'pat@partner.example',
        sub: 'Uq3kX9',
        userEmailHeader: `${prefix}:pat@partner.example`,
        userIdHeader: `${prefix}:Uq3kX9`,
      },
    })
    const plainSub = await verifier.verify([
      signAssertion(key, { iat: nowS(), sub: 'Uq3kX9', email: `${prefix}:pat@partner.example` }),
    ])
    t.ok(plainSub.ok)
    if (plainSub.ok)
      t.equal(plainSub.identity.userIdHeader, `${prefix}:Uq3kX9`, 'sub borrows the email prefix')
  },
)

t.test(
  'the verified-assertion cache never outlives exp, and is dropped when its key leaves the set',
  async (t) => {
    const local = frozenClock()
    const key = createSigningKey()
    const { verifier, server } = await setup(t, { now: local.now, keys: { unknownKidCooldownMs: 0 } }, [key])
    const iat = Math.floor(local.ms / 1000)
    const token = signAssertion(key, { iat, lifetime: 600 })
    t.ok((await verifier.verify([token])).ok)
    t.ok((await verifier.verify([token])).ok, 'hit')
    local.advance(630)
    t.ok((await verifier.verify([token])).ok, 'still inside exp + skew')
    local.advance(1)
    t.same(
      await verifier.verify([token]),
      { ok: false, reason: 'expired' },
      'the hit is re-checked against exp',
    )
    local.advance(-631)

    // rotation while serving: the new kid triggers one refetch; then the cached verdict for the old key
    // is not used any more, the old kid is refetched once more (cooldown 0 here) and refused
    t.ok((await verifier.verify([token])).ok)
    const newKey = createSigningKey()
    server.setKeys(newKey)
    const before = server.requests
    t.ok((await verifier.verify([signAssertion(newKey, { iat })])).ok, 'the new kid is served')
    t.equal(server.requests, before + 1, 'one refetch for the new kid')
    t.same(await verifier.verify([token]), { ok: false, reason: 'unknown_kid' }, 'the old kid is gone')
    t.equal(server.requests, before + 2)
  },
)

t.test('cacheSize 0 verifies every time and still answers the same', async (t) => {
  const { verifier, key } = await setup(t, { cacheSize: 0 })
  const token = signAssertion(key, { iat: nowS() })
  t.ok((await verifier.verify([token])).ok)
  t.ok((await verifier.verify([token])).ok)
})

t.test(
  'before the first key set loads every well-formed assertion is no_keys, then served without restart',
  async (t) => {
    const key = createSigningKey()
    const { server, verifier } = await verifierWithKeyServer(
      t,
      { keys: [key], up: false },
      { now: clock.now, keys: { retryBaseMs: 20, retryMaxMs: 50 } },
    )
    verifier.start() // a second start (the helper made the first) does not fetch twice
    const token = signAssertion(key, { iat: nowS() })
    t.same(await verifier.verify([token]), { ok: false, reason: 'no_keys' })
    t.same(
      await verifier.verify(['garbage']),
      { ok: false, reason: 'malformed' },
      'malformed still comes first',
    )
    t.equal(verifier.keysReady, false)
    await server.up()
    await until(() => verifier.keysReady, 'keys after the server came up')
    t.ok((await verifier.verify([token])).ok)
  },
)

t.test('tokens never reach the log (and the real clock is the default)', async (t) => {
  const { verifier, key, log } = await setup(t, { now: undefined })
  const token = signAssertion(key)
  t.ok((await verifier.verify([token])).ok)
  await verifier.verify([badTokens.rogueKey(key)])
  await verifier.verify([signJwt({ ...key, kid: 'nope' }, iapClaims())])
  const text = JSON.stringify(log.lines)
  t.notMatch(text, token.split('.')[1] as string)
  t.notMatch(text, /eyJ/)
})

t.test('the test signer agrees with google-auth-library, the reference for the key-set format', async (t) => {
  const { OAuth2Client } = await import('google-auth-library')
  const key = createSigningKey()
  const certs = publicKeySet(key)
  const client = new OAuth2Client()
  const ticket = await client.verifySignedJwtWithCertsAsync(
    signAssertion(key),
    certs,
    TEST_AUDIENCE,
    ['https://cloud.google.com/iap'],
    660,
  )
  t.equal(ticket.getPayload()?.email, 'alice@example.com')
  await t.rejects(
    client.verifySignedJwtWithCertsAsync(badTokens.rogueKey(key), certs, TEST_AUDIENCE, [], 660),
    'a rogue key fails there too',
  )
})

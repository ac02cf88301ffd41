// Micro-benchmark of one IAP assertion verification (not a test; `npm run bench:verify`).
// Compares the gateway's verifier, uncached (the production path when IAP sends a fresh assertion per
// request) and cached, with google-auth-library's verifySignedJwtWithCertsAsync and with bare
// crypto.verify, with the key parsed once or per call. Runs each for --seconds on one core.
import { createPublicKey, type KeyObject, verify } from 'node:crypto'
import { parseArgs } from 'node:util'
import { joseToDer } from 'ecdsa-sig-formatter'
import { OAuth2Client } from 'google-auth-library'
import { createIapVerifier } from '../proxy/iap/verify.ts'
import {
  createSigningKey,
  IAP_ISSUER,
  publicKeySet,
  recordingLog,
  signAssertion,
  startKeyServer,
  TEST_AUDIENCE,
  until,
} from '../test/helpers/iap.ts'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } })
const seconds = Number(values.seconds)
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`)

interface Variant {
  name: string
  run: () => unknown
  samples: number[]
}
const variants: Variant[] = []
const add = (name: string, run: () => unknown) => variants.push({ name, run, samples: [] })

/**
 * CPU time per operation (process.cpuUsage), not wall time: the machine this runs on is often shared,
 * and time slices given to other processes would count against whichever variant was running. The
 * variants take turns in short rounds and the median round is reported, so drifting load hits all alike.
 */
async function measure(rounds: number): Promise<void> {
  for (const variant of variants) for (let i = 0; i < 300; i++) await variant.run() // warm-up
  const slice = (seconds * 1000) / rounds
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      const end = performance.now() + slice
      const cpu = process.cpuUsage()
      let count = 0
      while (performance.now() < end) {
        for (let i = 0; i < 50; i++) await variant.run()
        count += 50
      }
      const used = process.cpuUsage(cpu)
      variant.samples.push((used.user + used.system) / count)
    }
  }
  for (const { name, samples } of variants) {
    const median = samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)] as number
    const perSecond = Math.round(1e6 / median).toString()
    console.log(
      `${name.padEnd(60)} ${perSecond.padStart(8)}/s per core ${median.toFixed(1).padStart(7)} us CPU`,
    )
  }
}

const key = createSigningKey()
const pem = publicKeySet(key)[key.kid] as string
const server = await startKeyServer({ keys: [key] })
const token = signAssertion(key, { lifetime: 600 })
const [header, payload, signature] = token.split('.') as [string, string, string]
const signingInput = Buffer.from(`${header}.${payload}`)
const rawSignature = Buffer.from(signature, 'base64url')
const keyObject: KeyObject = createPublicKey(pem)

const verifiers = [0, 10_000].map((cacheSize) => {
  const v = createIapVerifier({
    audiences: [TEST_AUDIENCE],
    keysUrl: server.url,
    allowedEmails: [],
    allowedDomains: [],
    cacheSize,
    log: recordingLog(),
  })
  v.start()
  return v
})
await until(() => verifiers.every((v) => v.keysReady), 'keys')
const [uncached, cached] = verifiers as [
  ReturnType<typeof createIapVerifier>,
  ReturnType<typeof createIapVerifier>,
]
const must = async (result: Promise<{ ok: boolean }>) => {
  if (!(await result).ok) throw new Error('benchmark token refused')
}
const client = new OAuth2Client()
const maxExpiry = 660

console.log(`node ${process.version}, one ES256 assertion, ${seconds} s per variant in 10 rounds`)
const derSignature = joseToDer(rawSignature, 'ES256')
const check = (ok: boolean) => {
  if (!ok) throw new Error('benchmark signature refused')
}
add('crypto.verify, KeyObject parsed once, ieee-p1363 r||s', () =>
  check(verify('sha256', signingInput, { key: keyObject, dsaEncoding: 'ieee-p1363' }, rawSignature)),
)
add('crypto.verify, KeyObject parsed once, r||s -> DER', () =>
  check(verify('sha256', signingInput, keyObject, joseToDer(rawSignature, 'ES256'))),
)
add('crypto.verify, PEM parsed per call, DER', () => check(verify('sha256', signingInput, pem, derSignature)))
add('google-auth-library verifySignedJwtWithCertsAsync, PEM map', () =>
  client.verifySignedJwtWithCertsAsync(token, { [key.kid]: pem }, TEST_AUDIENCE, [IAP_ISSUER], maxExpiry),
)
add('google-auth-library, KeyObject where its types say PEM', () =>
  client.verifySignedJwtWithCertsAsync(
    token,
    { [key.kid]: keyObject as unknown as string },
    TEST_AUDIENCE,
    [IAP_ISSUER],
    maxExpiry,
  ),
)
add('gateway verifier, uncached (all checks)', () => must(uncached.verify([token])))
add('gateway verifier, cached (hash + LRU + exp/kid re-check)', () => must(cached.verify([token])))

await measure(10)
for (const v of verifiers) v.close()
await server.close()

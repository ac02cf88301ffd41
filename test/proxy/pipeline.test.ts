// proxy/pipeline.ts: the stages in their order. Each refusal is the first stage's that fails, later
// stages never run for it (an IAP check for a client outside the allowlist would be work for an
// attacker), and every IAP failure reason gets its own status. The IAP stage here is a recording
// stand-in with the verifier's interface; the verifier itself is iap/verify.test.ts and iap-stage.test.ts.
import t, { type Test } from 'tap'
import { IAP_DENIALS, type IapFailureReason } from '../../proxy/errors.ts'
import type { IapIdentity, IapResult } from '../../proxy/iap/verify.ts'
import type { AssertionVerifier } from '../../proxy/pipeline.ts'
import { gatewayInFront, rawRequest, startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

const ann: IapIdentity = {
  email: 'ann@example.com',
  sub: '42',
  userEmailHeader: 'accounts.google.com:ann@example.com',
  userIdHeader: 'accounts.google.com:42',
}

/** Answers `result` and records every call's assertions. */
function recordingVerifier(result: IapResult): AssertionVerifier & { calls: (readonly string[])[] } {
  const calls: (readonly string[])[] = []
  return {
    calls,
    keysReady: true,
    verify: async (assertions) => {
      calls.push(assertions)
      return result
    },
  }
}

async function setup(t: Test, verifier: AssertionVerifier, env: Record<string, string> = {}) {
  const upstream = await startUpstream()
  const gateway = await startGateway(
    {
      UPSTREAM_URL: upstream.url,
      ALLOWED_CIDRS: '127.0.0.1',
      IAP_AUDIENCE: '/projects/1/apps/my-app',
      ...env,
    },
    verifier,
  )
  t.teardown(async () => {
    await gateway.close()
    await upstream.close()
  })
  return { gateway, upstream }
}

const reasons = (logs: Record<string, unknown>[]) =>
  logs.flatMap((line) => (line.reason ? [line.reason] : []))

t.test('outside the allowlist: refused before the IAP stage runs', async (t) => {
  const verifier = recordingVerifier({ ok: true, identity: ann })
  const { gateway, upstream } = await setup(t, verifier, { ALLOWED_CIDRS: '10.0.0.0/8' })
  const response = await fetch(`${gateway.url}/x`, { headers: { 'x-goog-iap-jwt-assertion': 'a.b.c' } })
  t.equal(response.status, 403)
  t.same(verifier.calls, [], 'no assertion was looked at')
  t.same(reasons(gateway.logs), ['network_not_allowed'])
  t.equal(upstream.seen.length, 0)
})

t.test('the request target and Expect are judged before the client’s address', async (t) => {
  const verifier = recordingVerifier({ ok: true, identity: ann })
  const { gateway } = await setup(t, verifier, { ALLOWED_CIDRS: '10.0.0.0/8' })
  const star = await rawRequest(gateway.port, 'OPTIONS * HTTP/1.1\nHost: a\nConnection: close\n\n')
  t.match(star, /^HTTP\/1.1 501 /)
  const expect = await rawRequest(
    gateway.port,
    'GET /x HTTP/1.1\nHost: a\nExpect: magic\nConnection: close\n\n',
  )
  t.match(expect, /^HTTP\/1.1 417 /)
  t.same(reasons(gateway.logs), ['request_unsupported:asterisk_form', 'request_invalid:expect'])
})

t.test('reserved paths answer before the allowlist and IAP; unknown ones are 404', async (t) => {
  const verifier = recordingVerifier({ ok: false, reason: 'missing' })
  const { gateway } = await setup(t, verifier, { ALLOWED_CIDRS: '10.0.0.0/8' })
  t.equal((await fetch(`${gateway.url}/_gateway/healthz`)).status, 200)
  t.equal((await fetch(`${gateway.url}/_gateway/other`)).status, 404)
  t.equal((await fetch(`${gateway.url}/_GATEWAY/healthz`)).status, 403, 'only the exact prefix is reserved')
  t.same(verifier.calls, [])
  t.same(reasons(gateway.logs), ['reserved_path_unknown', 'network_not_allowed'])
})

t.test('every IAP failure reason answers its own status and is logged as iap_<reason>', async (t) => {
  for (const [reason, denial] of Object.entries(IAP_DENIALS) as [IapFailureReason, { status: number }][]) {
    const { gateway, upstream } = await setup(t, recordingVerifier({ ok: false, reason }))
    const response = await fetch(`${gateway.url}/x`)
    t.equal(response.status, denial.status, reason)
    t.same(reasons(gateway.logs), [`iap_${reason}`])
    t.equal(upstream.seen.length, 0)
  }
})

t.test('the verifier gets every assertion line as sent; the first is passed on once verified', async (t) => {
  const verifier = recordingVerifier({ ok: true, identity: ann })
  const { gateway, upstream } = await setup(t, verifier)
  const response = await rawRequest(
    gateway.port,
    'GET /x HTTP/1.1\nHost: a\nX-Goog-IAP-JWT-Assertion: one\nx-goog-iap-jwt-assertion: two\nConnection: close\n\n',
  )
  t.match(response, /^HTTP\/1.1 200 /, 'the stand-in admits it; the real verifier refuses two lines')
  t.same(verifier.calls, [['one', 'two']])
  t.match(upstream.seen[0]?.headers, {
    'x-goog-iap-jwt-assertion': 'one',
    'x-forwarded-email': 'ann@example.com',
    'x-forwarded-for': '127.0.0.1',
  })
})

t.test('IAP_DISABLED: no IAP stage, no identity set', async (t) => {
  const { gateway, upstream } = await gatewayInFront(t)
  t.equal(
    (await fetch(`${gateway.url}/x`, { headers: { 'x-forwarded-email': 'eve@evil.example' } })).status,
    200,
  )
  t.notOk('x-forwarded-email' in (upstream.seen[0]?.headers ?? {}))
})

// Scenario 1: whoever reaches the gateway without IAP cannot claim the Flowise owner account, which in
// Flowise 3.x goes to the first caller of POST /api/v1/account/register, unauthenticated.
import type { Test } from 'tap'
import { createSigningKey, IAP_ISSUER, signJwt } from '../../../dev/iap-signer.ts'
import { FlowiseClient } from '../helpers/flowise-api.ts'
import { startRenderedAllowlistGateway } from '../helpers/service.ts'
import type { Suite } from '../helpers/suite.ts'

async function usersInDatabase(suite: Suite): Promise<number> {
  const rows = await suite.postgres.query<{ count: string }>('SELECT count(*) AS count FROM "user"')
  return Number(rows[0]?.count)
}

export async function attackerCannotClaimOwner(t: Test, suite: Suite): Promise<void> {
  const { chain, owner } = suite
  t.equal(await usersInDatabase(suite), 0, 'no user before the attempts')
  const emulatorSays = suite.deployment.chain.emulator.currentAssertion().token
  const claims = JSON.parse(Buffer.from(emulatorSays.split('.')[1] as string, 'base64url').toString('utf8'))

  // a key the attacker owns, published under the emulator's key id: the signature cannot verify
  const attackerKey = createSigningKey()
  const kid = (
    JSON.parse(Buffer.from(emulatorSays.split('.')[0] as string, 'base64url').toString('utf8')) as {
      kid: string
    }
  ).kid
  const forged = signJwt(
    { ...attackerKey, kid },
    { ...claims, iss: IAP_ISSUER, email: 'attacker@example.com' },
  )

  // straight to the gateway, skipping the emulator; the X-Forwarded-For an attacker would fake so
  // that the gateway's two trusted hops look like the balancer's
  const direct = (headers: Record<string, string>) => new FlowiseClient(chain.gatewayUrl, headers)
  const attempts: [string, FlowiseClient, number[]][] = [
    ['no assertion', direct({ 'x-forwarded-for': '127.0.0.1, 127.0.0.1' }), [401]],
    [
      'a forged assertion (attacker key, emulator kid)',
      direct({ 'x-forwarded-for': '127.0.0.1, 127.0.0.1', 'x-goog-iap-jwt-assertion': forged }),
      [401],
    ],
    [
      // 198.51.100.0/24 is in none of the example config's ranges
      'a valid assertion from a refused network',
      direct({ 'x-forwarded-for': '198.51.100.9, 127.0.0.1', 'x-goog-iap-jwt-assertion': emulatorSays }),
      [403],
    ],
    [
      'a valid assertion without the balancer hop',
      direct({ 'x-goog-iap-jwt-assertion': emulatorSays }),
      [403],
    ],
  ]
  for (const [what, client, statuses] of attempts) {
    const res = await client.register(owner)
    const body = await res.text()
    t.ok(statuses.includes(res.status), `${what}: refused with ${statuses.join('/')} (got ${res.status})`)
    t.notMatch(body, /owner|organization|workspace/i, `${what}: the answer is the gateway's, not Flowise's`)
  }

  // through the emulator, to a gateway whose allowlist is exactly the deployed one (run-local adds
  // loopback to the service's): this machine is outside it
  const deployed = await startRenderedAllowlistGateway(suite.deployment, suite.outputDir)
  t.teardown(() => deployed.stop())
  const res = await new FlowiseClient(deployed.chain.url).register(owner)
  await res.arrayBuffer()
  t.equal(res.status, 403, 'through the emulator, from outside the deployed allowlist: 403')
  await deployed.stop()

  t.equal(await usersInDatabase(suite), 0, 'PostgreSQL holds no user after every attempt')
}

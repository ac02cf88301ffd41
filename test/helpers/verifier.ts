import type { Test } from 'tap'
import { createIapVerifier, type IapVerifierOptions } from '../../proxy/iap/verify.ts'
import { recordingLog, type SigningKey, startKeyServer, TEST_AUDIENCE } from './iap.ts'

/**
 * The real IAP verifier against a fresh key server serving `keys` (down at first with `up: false`),
 * started, not yet waited on; both closed when `t` ends. By default it accepts TEST_AUDIENCE, any
 * identity, and records what it logs; `options` replace any of that.
 */
export async function verifierWithKeyServer(
  t: Test,
  server: { keys: SigningKey[]; up?: boolean },
  options: Partial<IapVerifierOptions> = {},
) {
  const keyServer = await startKeyServer(server)
  t.teardown(() => keyServer.close())
  const verifier = createIapVerifier({
    audiences: [TEST_AUDIENCE],
    keysUrl: keyServer.url,
    allowedEmails: [],
    allowedDomains: [],
    log: recordingLog(),
    ...options,
  })
  t.teardown(() => verifier.close())
  verifier.start()
  return { server: keyServer, verifier }
}

// A key server that answers too much: the key set was downloaded in full before its 256 KiB cap applied
// (a 50 MB answer was read to its end, memory and all), and 10,000 junk entries wrote 9,999 warning
// lines per fetch. Reading now stops at the cap, and junk entries get one summary line.
import t, { type Test } from 'tap'
import { createKeySet, type KeySetOptions } from '../../../proxy/iap/keys.ts'
import { createSigningKey, type KeyServer, recordingLog, startKeyServer, until } from '../../helpers/iap.ts'

function keySet(t: Test, server: KeyServer, options: Partial<KeySetOptions> = {}) {
  const log = recordingLog()
  const keys = createKeySet({ url: server.url, log, retryBaseMs: 60_000, ...options })
  t.teardown(() => keys.close())
  return { keys, log }
}

t.test('a 50 MB key set is not read past the cap', async (t) => {
  const server = await startKeyServer()
  t.teardown(() => server.close())
  server.setMode('huge')
  const { keys, log } = keySet(t, server)
  keys.start()
  await until(() => log.lines.some((line) => line.msg.startsWith('IAP key set fetch failed')), 'the refusal')
  t.match(log.lines.at(-1)?.obj, { problem: 'body over 262144 bytes' })
  const huge = server.huge as NonNullable<KeyServer['huge']>
  await huge.done // the connection closed: the gateway stopped reading
  t.equal(huge.finished, false, 'the key server never got to send it all')
  // What the sockets in between buffer is all that went out beyond the cap (a few MB on loopback).
  t.ok(huge.bytesSent < 16 * 1024 * 1024, `${(huge.bytesSent / 1024 / 1024).toFixed(1)} MB sent of 50`)
  t.equal(keys.ready, false)
})

t.test('10,000 junk entries next to a good key: the key loads, and one warning says so', async (t) => {
  const key = createSigningKey()
  const server = await startKeyServer()
  t.teardown(() => server.close())
  const junk = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`junk-${i}`, i % 2 ? 'x' : 1]))
  server.setBody({ ...junk, [key.kid]: key.publicKey.export({ type: 'spki', format: 'pem' }).toString() })
  const { keys, log } = keySet(t, server)
  keys.start()
  await until(() => keys.ready, 'keys')
  const warnings = log.lines.filter((line) => line.level === 'warn')
  t.equal(warnings.length, 1)
  t.same(warnings[0]?.obj, { skipped: 10_000, kids: ['junk-0', 'junk-1', 'junk-2', 'junk-3', 'junk-4'] })
  t.ok(keys.get(key.kid))
})

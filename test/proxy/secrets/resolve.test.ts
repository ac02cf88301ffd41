import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import t, { type Test } from 'tap'
import { type SecretTable, startSecretManagerServer } from '../../../dev/secret-manager-server.ts'
import { GW_ERR_SECRET, GW_ERR_SECRET_REFERENCE } from '../../../proxy/errors.ts'
import { resolveEnvironment } from '../../../proxy/secrets/resolve.ts'

const FAST = { baseDelayMs: 5, maxDelayMs: 20, warn: () => {} }
const PROJECT = 'test-project'

async function fake(t: Test, table: SecretTable = {}) {
  const server = await startSecretManagerServer(table)
  t.teardown(() => server.close())
  const env = { GOOGLE_CLOUD_PROJECT: PROJECT, SECRET_MANAGER_ENDPOINT: server.endpoint }
  return { server, env }
}

t.test('without a reference nothing is loaded or contacted, and a new object comes back', async (t) => {
  const env = {
    PATH: '/bin',
    DATABASE_URL: 'postgres://u@h/db',
    SECRET_MANAGER_ENDPOINT: 'not even an address',
  }
  const resolved = await resolveEnvironment(env)
  t.same(resolved, env)
  t.not(resolved, env)
  // The client library is imported lazily: resolving an environment without references must not load it.
  const loaded = Object.keys(await import('node:module').then((m) => m.createRequire(import.meta.url).cache))
  t.notOk(
    loaded.some((file) => file.includes('@google-cloud/secret-manager')),
    'Secret Manager client not loaded',
  )
})

t.test('every reference form, latest and pinned versions, through the real client', async (t) => {
  const { server, env } = await fake(t, {
    [`projects/${PROJECT}/secrets/short`]: ['short-v1', 'short-v2'],
    'projects/other-project/secrets/long': ['long-v1', 'long-v2', 'long-v3'],
  })
  const warnings: string[] = []
  const resolved = await resolveEnvironment(
    {
      ...env,
      SHORT: 'sm://short',
      SHORT_PINNED: 'sm://short#1',
      PROJECT_FORM: 'sm://other-project/long',
      PROJECT_PINNED: 'sm://other-project/long#2',
      FULL: 'sm://projects/other-project/secrets/long/versions/1',
      FULL_NO_VERSION: 'sm://projects/other-project/secrets/long',
      LEFT_ALONE: 'https://example.test/sm://x',
    },
    { ...FAST, warn: (message) => warnings.push(message) },
  )
  t.match(resolved, {
    SHORT: 'short-v2',
    SHORT_PINNED: 'short-v1',
    PROJECT_FORM: 'long-v3',
    PROJECT_PINNED: 'long-v2',
    FULL: 'long-v1',
    FULL_NO_VERSION: 'long-v3',
    LEFT_ALONE: 'https://example.test/sm://x',
  })
  t.equal(warnings.length, 1)
  t.match(warnings[0], /SECRET_MANAGER_ENDPOINT=127\.0\.0\.1:\d+ .*plain-text .*development and tests only/)
  // Two variables naming the same version cost one call.
  t.equal(server.calls.length, 5)
  t.equal(
    server.calls.filter((name) => name === 'projects/other-project/secrets/long/versions/latest').length,
    1,
  )
})

t.test('several references are read in parallel', async (t) => {
  const { server, env } = await fake(t, {
    [`projects/${PROJECT}/secrets/a`]: 'A',
    [`projects/${PROJECT}/secrets/b`]: 'B',
    [`projects/${PROJECT}/secrets/c`]: 'C',
  })
  // The fake answers nobody until all three asked: sequential reads would hit the deadline instead.
  server.holdUntil(3)
  const resolved = await resolveEnvironment(
    { ...env, A: 'sm://a', B: 'sm://b', C: 'sm://c' },
    { ...FAST, maxAttempts: 1, attemptTimeoutMs: 5_000 },
  )
  t.match(resolved, { A: 'A', B: 'B', C: 'C' })
  t.equal(server.calls.length, 3)
})

t.test('NOT_FOUND and PERMISSION_DENIED name the variable and the resource, never a value', async (t) => {
  const { server, env } = await fake(t, {
    [`projects/${PROJECT}/secrets/fine`]: 'fine-value-1234',
    [`projects/${PROJECT}/secrets/locked`]: 'locked-value-5678',
  })
  server.failNext(`projects/${PROJECT}/secrets/locked`, status.PERMISSION_DENIED)
  const error = await resolveEnvironment(
    { ...env, OK: 'sm://fine', MISSING: 'sm://absent', DENIED: 'sm://locked#1' },
    FAST,
  ).catch((e: Error) => e)
  t.type(error, GW_ERR_SECRET)
  t.equal((error as { code?: string }).code, 'GW_ERR_SECRET')
  const message = (error as Error).message
  t.equal(
    message,
    'cannot resolve secret: ' +
      `MISSING (projects/${PROJECT}/secrets/absent/versions/latest): NOT_FOUND: the secret or version does ` +
      'not exist (or is disabled or destroyed); ' +
      `DENIED (projects/${PROJECT}/secrets/locked/versions/1): PERMISSION_DENIED: the service account ` +
      'lacks roles/secretmanager.secretAccessor on this secret',
  )
  t.notMatch(message, /value-/)
  t.notMatch(message, /\n/)
})

t.test('UNAVAILABLE twice, then the value', async (t) => {
  const { server, env } = await fake(t, { [`projects/${PROJECT}/secrets/flaky`]: 'third-time' })
  server.failNext(`projects/${PROJECT}/secrets/flaky`, status.UNAVAILABLE, 2)
  const resolved = await resolveEnvironment({ ...env, FLAKY: 'sm://flaky' }, FAST)
  t.equal(resolved.FLAKY, 'third-time')
  t.equal(server.calls.length, 3)
})

t.test('DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are retried too, up to the bound', async (t) => {
  const { server, env } = await fake(t, {
    [`projects/${PROJECT}/secrets/slow`]: 'slow',
    [`projects/${PROJECT}/secrets/busy`]: 'busy',
  })
  server.failNext(`projects/${PROJECT}/secrets/slow`, status.DEADLINE_EXCEEDED, 1)
  server.failNext(`projects/${PROJECT}/secrets/busy`, status.RESOURCE_EXHAUSTED, 100)
  const error = await resolveEnvironment(
    { ...env, SLOW: 'sm://slow', BUSY: 'sm://busy' },
    { ...FAST, maxAttempts: 3 },
  ).catch((e: Error) => e)
  t.equal(
    (error as Error).message,
    `cannot resolve secret: BUSY (projects/${PROJECT}/secrets/busy/versions/latest): RESOURCE_EXHAUSTED after 3 attempts`,
  )
  t.equal(server.calls.filter((name) => name.includes('/busy/')).length, 3)
  t.equal(server.calls.filter((name) => name.includes('/slow/')).length, 2)
})

t.test('other gRPC errors are not retried', async (t) => {
  const { server, env } = await fake(t, { [`projects/${PROJECT}/secrets/s`]: 'v' })
  server.failNext(`projects/${PROJECT}/secrets/s`, status.INVALID_ARGUMENT)
  server.failNext(`projects/${PROJECT}/secrets/s/versions/2`, status.DATA_LOSS)
  const error = await resolveEnvironment({ ...env, S: 'sm://s', T: 'sm://s#2' }, FAST).catch((e: Error) => e)
  t.match((error as Error).message, /S \(.*\): INVALID_ARGUMENT; T \(.*\/versions\/2\): gRPC status 15$/)
  t.equal(server.calls.length, 2)
})

t.test('a checksum mismatch is refused', async (t) => {
  const { server, env } = await fake(t, { [`projects/${PROJECT}/secrets/tampered`]: 'tampered-value' })
  server.corruptChecksum(`projects/${PROJECT}/secrets/tampered`)
  const error = await resolveEnvironment({ ...env, T: 'sm://tampered' }, FAST).catch((e: Error) => e)
  t.equal(
    (error as Error).message,
    `cannot resolve secret: T (projects/${PROJECT}/secrets/tampered/versions/latest): CRC32C checksum mismatch: payload refused`,
  )
  t.notMatch((error as Error).message, /tampered-value/)
})

t.test('a response without checksum or without payload is refused', async (t) => {
  const { server, env } = await fake(t, {
    [`projects/${PROJECT}/secrets/unsummed`]: 'unsummed-value',
    [`projects/${PROJECT}/secrets/empty`]: 'x',
  })
  server.omit(`projects/${PROJECT}/secrets/unsummed`, 'checksum')
  server.omit(`projects/${PROJECT}/secrets/empty`, 'payload')
  const error = await resolveEnvironment({ ...env, U: 'sm://unsummed', E: 'sm://empty' }, FAST).catch(
    (e: Error) => e,
  )
  t.match(
    (error as Error).message,
    /U \(.*\): the response carries no CRC32C checksum; E \(.*\): the response carries no payload$/,
  )
})

t.test('values an environment cannot hold are refused', async (t) => {
  const { server, env } = await fake(t, {
    [`projects/${PROJECT}/secrets/nul`]: 'a\0b',
    [`projects/${PROJECT}/secrets/binary`]: new Uint8Array([0xff, 0xfe, 0x41]),
  })
  const error = await resolveEnvironment({ ...env, N: 'sm://nul', B: 'sm://binary' }, FAST).catch(
    (e: Error) => e,
  )
  t.match(
    (error as Error).message,
    /N \(.*\): the value contains a NUL byte, which no environment can hold; B \(.*\): the value is not valid UTF-8 text$/,
  )
  t.equal(server.calls.length, 2)
})

t.test('malformed references are reported together before anything is contacted', async (t) => {
  const { server, env } = await fake(t)
  const error = await resolveEnvironment(
    { ...env, A: 'sm://a/b/c', B: 'sm://ok', C: 'sm://s#0' },
    FAST,
  ).catch((e: Error) => e)
  t.type(error, GW_ERR_SECRET_REFERENCE)
  t.equal((error as { code?: string }).code, 'GW_ERR_SECRET_REFERENCE')
  t.match(
    (error as Error).message,
    /^invalid secret reference: A \(sm:\/\/a\/b\/c\): expected .*; C \(sm:\/\/s#0\): "0" is not a version \(latest, a number or an alias\)$/,
  )
  t.equal(server.calls.length, 0)
})

t.test('SECRET_MANAGER_ENDPOINT must be host:port and is refused on Cloud Run', async (t) => {
  for (const endpoint of ['localhost', 'localhost:99999', 'a b:1']) {
    const error = await resolveEnvironment(
      { SECRET_MANAGER_ENDPOINT: endpoint, X: 'sm://p-proj1/s' },
      FAST,
    ).catch((e: Error) => e)
    t.equal(
      (error as Error).message,
      `cannot resolve secret: SECRET_MANAGER_ENDPOINT (${endpoint}): expected host:port`,
    )
  }
  const error = await resolveEnvironment(
    { SECRET_MANAGER_ENDPOINT: '127.0.0.1:1', K_SERVICE: 'gateway', X: 'sm://p-proj1/s' },
    FAST,
  ).catch((e: Error) => e)
  t.match(
    (error as Error).message,
    /SECRET_MANAGER_ENDPOINT \(127\.0\.0\.1:1\): a plain-text endpoint is refused on Cloud Run/,
  )
})

t.test('an IPv6 endpoint works', async (t) => {
  const server = await startSecretManagerServer({ 'projects/p-proj1/secrets/s': 'six' }, { host: '::1' })
  t.teardown(() => server.close())
  t.equal(server.endpoint, `[::1]:${server.port}`)
  const resolved = await resolveEnvironment(
    { SECRET_MANAGER_ENDPOINT: server.endpoint, X: 'sm://p-proj1/s' },
    FAST,
  )
  t.equal(resolved.X, 'six')
})

t.test(
  'the default project comes from Application Default Credentials when GOOGLE_CLOUD_PROJECT is unset',
  async (t) => {
    const { server } = await fake(t, { 'projects/adc-project/secrets/s': 'from-adc' })
    const dir = mkdtempSync(join(tmpdir(), 'adc-'))
    const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS
    t.teardown(() => {
      rmSync(dir, { recursive: true, force: true })
      if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved
    })
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const keyFile = join(dir, 'key.json')
    writeFileSync(
      keyFile,
      JSON.stringify({
        type: 'service_account',
        project_id: 'adc-project',
        client_email: 'sa@adc-project.iam.gserviceaccount.com',
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      }),
    )
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile
    const resolved = await resolveEnvironment({ SECRET_MANAGER_ENDPOINT: server.endpoint, X: 'sm://s' }, FAST)
    t.equal(resolved.X, 'from-adc')

    // Credentials that name no project: the short form cannot be resolved, and the error says what to set.
    process.env.GOOGLE_APPLICATION_CREDENTIALS = join(dir, 'missing.json')
    const error = await resolveEnvironment(
      { SECRET_MANAGER_ENDPOINT: server.endpoint, X: 'sm://s' },
      FAST,
    ).catch((e: Error) => e)
    t.match((error as Error).message, /a short sm:\/\/ reference needs a project: set GOOGLE_CLOUD_PROJECT/)
  },
)

t.test('the warning goes to stderr by default', async (t) => {
  const { env } = await fake(t, { [`projects/${PROJECT}/secrets/s`]: 'v' })
  const written: string[] = []
  const write = process.stderr.write
  process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write
  t.teardown(() => {
    process.stderr.write = write
  })
  await resolveEnvironment({ ...env, S: 'sm://s' }, { baseDelayMs: 1 })
  process.stderr.write = write
  t.match(
    written.join(''),
    /^warning: with SECRET_MANAGER_ENDPOINT=.* for local development and tests only\n$/,
  )
})

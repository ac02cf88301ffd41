// `Expect: 100-continue` (RFC 9110 10.1.1): curl sends it for request bodies over 1 kB, .NET and Java
// clients for large ones. Node's server answered `100 Continue` itself, before any check, so a client
// without an assertion was invited to send its body only to get 401; and an admitted request was then
// handed to undici, which refuses an Expect header (UND_ERR_NOT_SUPPORTED): 502, the body never arrived.
// Now 100 goes out only once the pipeline admitted the request, Expect ends at the gateway, and a refusal
// is answered without inviting the body.
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { httpHead, openRaw, verifyingGatewayInFront } from '../helpers/gateway.ts'

const setup = (t: Test) => verifyingGatewayInFront(t)

t.test('an admitted upload with Expect gets 100 Continue, and the app gets the body', async (t) => {
  const { upstream, gateway } = await setup(t)
  const body = randomBytes(64 * 1024)
  const client = openRaw(t, gateway.port)
  client.write(
    httpHead([
      'POST /api/v1/document-store/upsert HTTP/1.1',
      'Host: app.example',
      `X-Goog-IAP-JWT-Assertion: ${gateway.assertion()}`,
      'Content-Type: application/octet-stream',
      `Content-Length: ${body.length}`,
      'Expect: 100-continue',
      'Connection: close',
    ]),
  )
  await client.waitFor(/^HTTP\/1.1 100 Continue\r\n\r\n/)
  client.write(body)
  const answer = await client.waitFor(/\r\n0\r\n\r\n$/)
  t.match(answer, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 OK/)
  const seen = upstream.seen[0]
  t.equal(seen?.bodyBytes, body.length)
  t.equal(seen?.bodySha256, createHash('sha256').update(body).digest('hex'))
  t.equal(seen?.headers.expect, undefined, 'the expectation was met at the gateway, not passed on')
})

t.test('a request without an assertion is refused without being invited to send its body', async (t) => {
  const { upstream, gateway } = await setup(t)
  const client = openRaw(t, gateway.port)
  client.write(
    httpHead([
      'POST /api/v1/document-store/upsert HTTP/1.1',
      'Host: app.example',
      'Content-Length: 1048576',
      'Expect: 100-continue',
    ]),
  )
  const answer = await client.waitFor(/^HTTP\/1.1 \d{3}/)
  await sleep(200) // anything else the server would write
  t.match(answer, /^HTTP\/1.1 401 Unauthorized/)
  t.notMatch(client.received(), /100 Continue/)
  t.equal(upstream.seen.length, 0)
})

t.test('curl uploads a 1 MB document through the gateway, Expect and all', async (t) => {
  // curl asks for 100-continue when a body is over 1 MiB (lib/http.c, EXPECT_100_THRESHOLD), as 7.88 here does.
  const { upstream, gateway } = await setup(t)
  const dir = mkdtempSync(join(tmpdir(), 'gw-expect-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const document = randomBytes(1024 * 1024 + 4096)
  writeFileSync(join(dir, 'document.bin'), document)
  // The assertion goes in a header file, not on curl's command line.
  writeFileSync(join(dir, 'headers'), `x-goog-iap-jwt-assertion: ${gateway.assertion()}\n`)
  const { stdout, stderr } = await promisify(execFile)('curl', [
    '--silent',
    '--show-error',
    '--verbose',
    '--header',
    `@${join(dir, 'headers')}`,
    '--header',
    'content-type: application/pdf',
    '--data-binary',
    `@${join(dir, 'document.bin')}`,
    '--output',
    '/dev/null',
    '--write-out',
    '%{http_code}',
    `${gateway.url}/api/v1/document-store/upsert`,
  ])
  t.equal(stdout, '200')
  t.match(stderr, /> Expect: 100-continue/i, 'curl asked')
  t.match(stderr, /< HTTP\/1.1 100 Continue/, 'and was invited')
  t.equal(upstream.seen[0]?.bodyBytes, document.length)
  t.equal(upstream.seen[0]?.bodySha256, createHash('sha256').update(document).digest('hex'))
})

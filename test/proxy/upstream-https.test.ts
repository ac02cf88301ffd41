import type { IncomingHttpHeaders } from 'node:http'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { spawnGatewayBefore } from '../helpers/gateway.ts'
import { makeTestPki } from '../helpers/tls.ts'

const pki = makeTestPki()
t.teardown(() => pki.remove())

interface Seen {
  headers: IncomingHttpHeaders
  servername: string | false | null
  url: string
}

async function httpsUpstream(t: Test) {
  const seen: Seen[] = []
  const server = createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    seen.push({ headers: req.headers, servername: (req.socket as TLSSocket).servername, url: req.url ?? '' })
    res.end('over tls')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, seen }
}

/** The gateway process in front of a fresh HTTPS upstream, which it is told is https://localhost:PORT. */
async function setup(t: Test, env: Record<string, string> = {}) {
  const upstream = await httpsUpstream(t)
  return { upstream, running: await spawnGatewayBefore(t, `https://localhost:${upstream.port}`, env) }
}

t.test(
  'an HTTPS upstream whose CA is trusted is verified and reached, with SNI and its own Host',
  async (t) => {
    const { upstream, running } = await setup(t, { NODE_EXTRA_CA_CERTS: pki.caFile })
    const response = await fetch(`${running.url}/app?x=1`)
    t.equal(response.status, 200)
    t.equal(await response.text(), 'over tls')
    t.equal(upstream.seen[0]?.servername, 'localhost', 'SNI names the upstream')
    t.equal(upstream.seen[0]?.headers.host, `localhost:${upstream.port}`, 'the Host the upstream expects')
    t.equal(upstream.seen[0]?.headers['x-forwarded-host'], `127.0.0.1:${running.port}`)
  },
)

t.test('an HTTPS upstream with a certificate from an unknown CA is refused: 502, nothing sent', async (t) => {
  const { upstream, running } = await setup(t)
  const response = await fetch(`${running.url}/app`)
  t.equal(response.status, 502)
  t.equal(upstream.seen.length, 0)
  running.child.kill('SIGTERM')
  await running.exited
  const refused = running.stdout.map((line) => JSON.parse(line)).find((entry) => entry.reason)
  t.match(
    refused?.reason,
    /^upstream_error:(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO)/,
  )
})

t.test(
  'UPSTREAM_HOST_HEADER sets the Host sent upstream, and with it SNI and the name checked',
  async (t) => {
    const { upstream, running } = await setup(t, {
      UPSTREAM_HOST_HEADER: 'app.internal.example',
      NODE_EXTRA_CA_CERTS: pki.caFile,
    })
    t.equal((await fetch(`${running.url}/`)).status, 200)
    t.equal(upstream.seen[0]?.headers.host, 'app.internal.example')
    t.equal(upstream.seen[0]?.servername, 'app.internal.example', 'a virtual host is asked for by name')
  },
)

t.test('a Host the certificate does not cover is refused', async (t) => {
  const { upstream, running } = await setup(t, {
    UPSTREAM_HOST_HEADER: 'other.example',
    NODE_EXTRA_CA_CERTS: pki.caFile,
  })
  t.equal((await fetch(`${running.url}/`)).status, 502)
  t.equal(upstream.seen.length, 0)
})

import t from 'tap'
import { parseDevOptions } from '../../dev/dev-options.ts'
import { banner, type ChainAddresses, ownGatewayHint, summary } from '../../dev/dev-report.ts'

t.test(
  'the banner says development only, who everyone is signed in as, and warns off loopback',
  async (t) => {
    const loopback = banner(parseDevOptions([], {}))
    const lines = loopback.trimEnd().split('\n')
    t.equal(lines.length, 5)
    t.ok(
      lines.every((line) => line.length === (lines[0] as string).length),
      'a box',
    )
    t.match(loopback, '# IAP EMULATOR - DEVELOPMENT ONLY - NOT A SECURITY BOUNDARY')
    t.match(loopback, 'signed in as dev@example.com')
    t.notMatch(loopback, 'WARNING')

    const everywhere = banner(parseDevOptions(['--host=0.0.0.0', '--email=ada@corp.example'], {}))
    t.match(everywhere, 'signed in as ada@corp.example')
    t.match(everywhere, '# WARNING: listening on 0.0.0.0: other machines can reach it and are signed in too.')
  },
)

t.test('the summary leads with the one URL to open and says what is not ready yet', async (t) => {
  const chain: ChainAddresses = {
    url: 'http://127.0.0.1:8080',
    gatewayUrl: 'http://127.0.0.1:41000',
    children: [{ name: 'gateway', pid: 4242 }],
    gatewaySettings: {},
  }
  const options = parseDevOptions(['--hd=corp.example', '--sub=accounts.google.com:7'], {})
  const ready = summary(chain, options, true, [])
  t.match(ready, /\nOpen http:\/\/127\.0\.0\.1:8080\/\n$/, 'the URL to open is the last line')
  t.match(ready, 'identity  dev@example.com (accounts.google.com:7, hd corp.example)')
  t.match(ready, 'keys at http://127.0.0.1:8080/_iap_emulator/verify/public_key')
  t.match(ready, 'gateway   http://127.0.0.1:41000  (pid 4242; refuses anything that skips the emulator)')
  t.match(ready, /upstream {2}http:\/\/127\.0\.0\.1:3000\n {2}status {4}ready\n/)
  t.match(ready, 'Ctrl-C stops everything.')

  const notReady = summary(chain, parseDevOptions([], {}), false, ['upstream not reachable'])
  t.match(notReady, /identity {2}dev@example\.com \(accounts\.google\.com:\d+\)\n/)
  t.match(
    notReady,
    'status    not ready: upstream not reachable; start it with `npx flowise start`, or use --flowise\n',
  )
  const own = { ...chain, children: [] }
  const notAnswering = summary(own, options, false, ['gateway not answering'])
  t.match(notAnswering, 'gateway   http://127.0.0.1:41000  (yours; refuses anything that skips the emulator)')
  t.match(notAnswering, 'status    not ready: gateway not answering\n')
})

t.test('with --gateway it prints the command line that puts a gateway behind the emulator', async (t) => {
  const hint = ownGatewayHint({
    url: 'http://127.0.0.1:8080',
    gatewayUrl: 'http://127.0.0.1:8081',
    children: [],
    gatewaySettings: { PORT: '8081', TRUST_PROXY_HOPS: '2' },
  })
  t.equal(
    hint,
    "Start your gateway behind the emulator with:\n  PORT='8081' \\\n  TRUST_PROXY_HOPS='2' \\\n  node proxy/main.ts\n",
  )
})

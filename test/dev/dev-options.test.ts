import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  DEFAULT_AUDIENCE,
  defaultSub,
  isLoopbackHost,
  parseDevOptions,
  USAGE,
} from '../../dev/dev-options.ts'
import { createSigningKey } from '../../dev/iap-signer.ts'

t.test(
  'defaults: loopback, port 8080, any gateway port, a stable Google-style sub, a fresh key',
  async (t) => {
    const options = parseDevOptions([], {})
    t.match(options, {
      identity: { email: 'dev@example.com', sub: defaultSub('dev@example.com'), hd: undefined },
      audience: DEFAULT_AUDIENCE,
      allowedCidrs: '127.0.0.1/32,::1/128',
      allowedEmails: undefined,
      allowedDomains: undefined,
      host: '127.0.0.1',
      port: 8080,
      gatewayPort: 0,
      tokenLifetimeSeconds: 600,
      keyFile: undefined,
      flowise: false,
      help: false,
    })
    t.equal(options.upstream.href, 'http://127.0.0.1:3000/')
    t.match(options.identity.sub, /^accounts\.google\.com:\d{21}$/)
    t.equal(defaultSub('Dev@Example.com'), options.identity.sub, 'derived from the address, case-blind')
    t.not(defaultSub('other@example.com'), options.identity.sub)
    t.not(parseDevOptions([], {}).key.kid, options.key.kid, 'a fresh key per start')
    t.ok(Object.isFrozen(options))
    t.equal(parseDevOptions([], { UPSTREAM_URL: 'http://127.0.0.1:4000' }).upstream.port, '4000')
  },
)

t.test('every option is read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dev-options-'))
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  })
  writeFileSync(join(dir, 'key.pem'), pem)
  const options = parseDevOptions(
    [
      '--email=ada@corp.example',
      '--sub=accounts.google.com:42',
      '--hd=corp.example',
      '--audience=/projects/1/apps/my-app',
      '--token-lifetime=5',
      `--key-file=${join(dir, 'key.pem')}`,
      '--allow=10.0.0.0/8',
      '--allowed-emails=ada@corp.example',
      '--allowed-domains=corp.example',
      '--upstream=http://127.0.0.1:3001/base',
      '--host=::1',
      '--port=0',
      '--gateway-port=9001',
      '--gateway=http://127.0.0.1:9002',
      '--flowise',
      '-h',
    ],
    {},
  )
  t.match(options, {
    identity: { email: 'ada@corp.example', sub: 'accounts.google.com:42', hd: 'corp.example' },
    audience: '/projects/1/apps/my-app',
    tokenLifetimeSeconds: 5,
    allowedCidrs: '10.0.0.0/8',
    allowedEmails: 'ada@corp.example',
    allowedDomains: 'corp.example',
    host: '::1',
    port: 0,
    gatewayPort: 9001,
    flowise: true,
    help: true,
  })
  t.equal(options.upstream.href, 'http://127.0.0.1:3001/base')
  t.equal(options.gateway?.href, 'http://127.0.0.1:9002/')
  t.equal(options.key.kid, createSigningKey(pem.toString()).kid, 'signs with the given key')
})

t.test('every problem is reported at once, naming the option and the value', async (t) => {
  t.throws(
    () =>
      parseDevOptions(
        [
          '--email=nobody',
          '--sub=has space',
          '--hd=not_a_domain',
          '--audience=backendServices/1',
          '--token-lifetime=0',
          '--port=70000',
          '--gateway-port=x',
          '--host=192.168.1.10',
          '--upstream=ftp://example.test',
          '--gateway=127.0.0.1:9002',
          '--key-file=/nonexistent/key.pem',
        ],
        { K_SERVICE: 'flowise' },
      ),
    {
      code: 'DEV_ERR_OPTIONS',
      statusCode: 2,
      message:
        'invalid options: K_SERVICE (flowise): the IAP emulator never runs on Cloud Run; ' +
        '--email (nobody): not an email address; ' +
        '--sub (has space): must be non-empty without spaces; ' +
        '--hd (not_a_domain): not a domain name; ' +
        '--audience (backendServices/1): expected /projects/NUMBER/...; ' +
        '--token-lifetime (0): not an integer between 1 and 86400; ' +
        '--port (70000): not an integer between 0 and 65535; ' +
        '--gateway-port (x): not an integer between 0 and 65535; ' +
        '--host (192.168.1.10): a loopback address, or 0.0.0.0 / :: for every interface; ' +
        '--upstream (ftp://example.test): not an http(s) URL; ' +
        '--gateway (127.0.0.1:9002): not an http(s) URL; ' +
        '--key-file (/nonexistent/key.pem): unreadable (ENOENT)',
    },
  )
  t.throws(() => parseDevOptions(['--upstream=not a url'], {}), {
    message: 'invalid options: --upstream (not a url): not an http(s) URL',
  })
})

t.test('a key file IAP could not sign with is refused with the reason', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dev-options-'))
  const file = join(dir, 'rsa.pem')
  writeFileSync(
    file,
    generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
  )
  t.throws(() => parseDevOptions([`--key-file=${file}`], {}), {
    code: 'DEV_ERR_OPTIONS',
    message: `invalid options: --key-file (${file}): IAP emulator key ${file}: IAP signs with ES256, which needs an EC P-256 key, not rsa`,
  })
})

t.test('unknown options and stray arguments are refused by parseArgs, with its words', async (t) => {
  t.throws(() => parseDevOptions(['--emial=a@b.c'], {}), {
    code: 'DEV_ERR_OPTIONS',
    message: /^invalid options: Unknown option '--emial'/,
  })
  t.throws(() => parseDevOptions(['start'], {}), {
    code: 'DEV_ERR_OPTIONS',
    message: /^invalid options: Unexpected argument 'start'/,
  })
})

t.test('wildcard and loopback hosts are accepted; only loopback counts as loopback', async (t) => {
  for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost', '0.0.0.0', '::']) {
    t.equal(parseDevOptions([`--host=${host}`], {}).host, host)
  }
  t.same(['127.0.0.1', '::1', 'localhost', '0.0.0.0', '::', '10.0.0.1'].map(isLoopbackHost), [
    true,
    true,
    true,
    false,
    false,
    false,
  ])
})

t.test('the usage text names every option', async (t) => {
  for (const option of [
    '--email',
    '--sub',
    '--hd',
    '--audience',
    '--token-lifetime',
    '--key-file',
    '--allow',
    '--allowed-emails',
    '--allowed-domains',
    '--upstream',
    '--host',
    '--port',
    '--gateway-port',
    '--gateway',
    '--flowise',
    '--help',
  ]) {
    t.match(USAGE, option)
  }
})

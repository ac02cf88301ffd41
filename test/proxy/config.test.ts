import t from 'tap'
import {
  DEFAULT_CLIENT_BODY_TIMEOUT_MS,
  DEFAULT_IAP_KEYS_URL,
  DEFAULT_UPSTREAM_MAX_HEADER_BYTES,
  DEFAULT_UPSTREAM_MAX_HEADER_COUNT,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  describeConfig,
  loadConfig,
} from '../../proxy/config.ts'
import { runGateway } from '../helpers/gateway.ts'

const AUDIENCE = '/projects/123456/global/backendServices/987654'
const minimal = { ALLOWED_CIDRS: '10.0.0.0/8', IAP_AUDIENCE: AUDIENCE }

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env)
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message }
  }
  throw new Error('expected a configuration error')
}

t.test('defaults', async (t) => {
  const config = loadConfig(minimal)
  t.equal(config.port, 8080)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.upstream.origin, 'http://127.0.0.1:3000')
  t.equal(config.upstream.basePath, '')
  t.equal(config.upstream.hostHeader, undefined, 'a plain-HTTP sidecar sees the client Host')
  t.equal(config.trustProxyHops, 0)
  t.equal(config.upstreamTimeoutMs, DEFAULT_UPSTREAM_TIMEOUT_MS)
  t.equal(config.clientBodyTimeoutMs, DEFAULT_CLIENT_BODY_TIMEOUT_MS)
  t.same(config.allowedOrigins, [])
  t.equal(config.shutdownGraceMs, 8000)
  t.equal(config.logLevel, 'info')
  t.equal(config.accessLog, true)
  t.same(config.upstream.headerLimits, {
    count: DEFAULT_UPSTREAM_MAX_HEADER_COUNT,
    bytes: DEFAULT_UPSTREAM_MAX_HEADER_BYTES,
  })
  t.same(config.iap, {
    disabled: false,
    audiences: [AUDIENCE],
    keysUrl: DEFAULT_IAP_KEYS_URL,
    allowedEmails: [],
    allowedDomains: [],
    tokenCacheSize: 10_000,
  })
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.iap) && Object.isFrozen(config.upstream))
})

t.test('the configuration is frozen all the way down: nothing can change it after start', async (t) => {
  const config = loadConfig({
    ...minimal,
    ALLOWED_ORIGINS: 'https://a.example',
    ALLOWED_EMAILS: 'a@b.example',
  })
  const unfrozen: string[] = []
  const visit = (value: unknown, path: string) => {
    if (typeof value !== 'object' || value === null) return
    if (!Object.isFrozen(value)) unfrozen.push(path)
    for (const [key, inner] of Object.entries(value)) visit(inner, `${path}.${key}`)
  }
  visit(config, 'config')
  t.same(unfrozen, [])
})

t.test('every setting read', async (t) => {
  const config = loadConfig({
    PORT: '9000',
    HOST: '::',
    UPSTREAM_URL: 'https://app.internal/base/',
    ALLOWED_CIDRS: ' 10.0.0.0/8 , ::1 ,',
    TRUST_PROXY_HOPS: '2',
    UPSTREAM_TIMEOUT_MS: '5000',
    SHUTDOWN_GRACE_MS: '100',
    LOG_LEVEL: 'debug',
    ACCESS_LOG: 'false',
    IAP_AUDIENCE: `${AUDIENCE},/projects/1/locations/europe-west1/services/flowise,/projects/1/apps/my-project`,
    IAP_KEYS_URL: 'http://127.0.0.1:9999/keys',
    ALLOWED_EMAILS: 'Ann@Example.com',
    ALLOWED_DOMAINS: 'example.org',
    GOOGLE_CLOUD_PROJECT: 'my-project',
    IAP_TOKEN_CACHE_SIZE: '0',
    UPSTREAM_MAX_HEADER_COUNT: '50',
    UPSTREAM_MAX_HEADER_BYTES: '8192',
    CLIENT_BODY_TIMEOUT_MS: '1500',
    ALLOWED_ORIGINS: 'https://Console.Example.com, http://localhost:5173/, https://a.example:443',
  })
  t.same(config.allowedOrigins, ['https://console.example.com', 'http://localhost:5173', 'https://a.example'])
  t.equal(config.clientBodyTimeoutMs, 1500)
  t.equal(config.iap.tokenCacheSize, 0)
  t.equal(config.port, 9000)
  t.equal(config.host, '::')
  t.same(config.upstream, {
    origin: 'https://app.internal',
    basePath: '/base',
    tls: true,
    hostHeader: 'app.internal',
    idTokenAudience: undefined,
    headerLimits: { count: 50, bytes: 8192 },
  })
  t.same(config.allowlist.entries, ['10.0.0.0/8', '::1'])
  t.equal(config.trustProxyHops, 2)
  t.equal(config.accessLog, false)
  t.equal(config.iap.audiences.length, 3)
  t.same(config.iap.allowedEmails, ['ann@example.com'])
  t.equal(describeConfig(config).UPSTREAM_URL, 'https://app.internal/base')
})

t.test('an empty or blank value counts as unset', async (t) => {
  const config = loadConfig({ ...minimal, PORT: '', LOG_LEVEL: '  ' })
  t.equal(config.port, 8080)
  t.equal(config.logLevel, 'info')
})

t.test('IAP_DISABLED needs no audience', async (t) => {
  const config = loadConfig({ ALLOWED_CIDRS: '10.0.0.0/8', IAP_DISABLED: 'true' })
  t.equal(config.iap.disabled, true)
  t.same(config.iap.audiences, [])
})

t.test('every problem is reported at once, naming the variable and the entry', async (t) => {
  const { code, message } = problemsOf({
    PORT: 'abc',
    HOST: 'example.com',
    ALLOWED_CIDRS: '10.0.0.0/8,192.168.0.0/16,10.0.0.0/33',
    TRUST_PROXY_HOPS: '-1',
    ACCESS_LOG: 'yes',
    LOG_LEVEL: 'loud',
    IAP_AUDIENCE: '/projects/abc/global/backendServices/1',
    IAP_KEYS_URL: 'http://keys.example.com/keys',
    ALLOWED_EMAILS: 'not-an-email',
    ALLOWED_DOMAINS: 'bad_domain',
    UPSTREAM_HOST_HEADER: 'a b',
    UPSTREAM_ID_TOKEN_AUDIENCE: 'not a url',
    UPSTREAM_MAX_HEADER_COUNT: '0',
    ALLOWED_ORIGINS: 'https://ok.example,null,https://a.example/path,ftp://x,https://u:p@b.example',
  })
  t.equal(code, 'GW_ERR_CONFIG')
  t.equal(message.split('\n').length, 1, 'one line')
  for (const expected of [
    'PORT (abc): not an integer between 0 and 65535',
    'HOST (example.com): not an IP address or localhost',
    'ALLOWED_CIDRS[2] (10.0.0.0/33): prefix length 33 exceeds 32 for IPv4',
    'TRUST_PROXY_HOPS (-1): not an integer between 0 and 16',
    'ACCESS_LOG (yes): must be true or false',
    'LOG_LEVEL (loud): not one of fatal, error, warn, info, debug, trace, silent',
    'IAP_AUDIENCE[0] (/projects/abc/global/backendServices/1): expected /projects/NUMBER/global/backendServices/ID',
    'IAP_KEYS_URL (http://keys.example.com/keys): must be https',
    'ALLOWED_EMAILS[0] (not-an-email): not an email address',
    'ALLOWED_DOMAINS[0] (bad_domain): not a domain name',
    'UPSTREAM_HOST_HEADER (a b): not a host[:port]',
    'UPSTREAM_ID_TOKEN_AUDIENCE (not a url): not a URL',
    'UPSTREAM_MAX_HEADER_COUNT (0): not an integer between 1 and 1000',
    'ALLOWED_ORIGINS[1] (null): not an http(s) origin (scheme://host[:port])',
    'ALLOWED_ORIGINS[2] (https://a.example/path): not an http(s) origin',
    'ALLOWED_ORIGINS[3] (ftp://x): not an http(s) origin',
    'ALLOWED_ORIGINS[4] (https://b.example): not an http(s) origin',
  ]) {
    t.match(message, expected)
  }
  t.notMatch(message, 'u:p@', 'no credentials echoed')
})

t.test('required settings', async (t) => {
  t.match(problemsOf({}).message, /ALLOWED_CIDRS: required.*IAP_AUDIENCE: required/)
  t.match(problemsOf({ ALLOWED_CIDRS: ' , ', IAP_AUDIENCE: AUDIENCE }).message, /ALLOWED_CIDRS: required/)
})

t.test('bad upstream URLs, without echoing credentials', async (t) => {
  t.match(problemsOf({ ...minimal, UPSTREAM_URL: 'nonsense' }).message, 'UPSTREAM_URL (nonsense): not a URL')
  t.match(problemsOf({ ...minimal, UPSTREAM_URL: 'ftp://x' }).message, 'scheme must be http or https')
  const withPassword = problemsOf({ ...minimal, UPSTREAM_URL: 'http://user:hunter2@app/' }).message
  t.match(withPassword, 'UPSTREAM_URL (http://app): must not carry credentials')
  t.notMatch(withPassword, 'hunter2')
  t.match(problemsOf({ ...minimal, IAP_KEYS_URL: '::' }).message, 'IAP_KEYS_URL (::): not a URL')
})

t.test('the process stops at start with one line naming the problem', async (t) => {
  const result = await runGateway({ ALLOWED_CIDRS: '10.0.0.0/33', IAP_AUDIENCE: AUDIENCE, PORT: '0' })
  t.equal(result.code, 1)
  t.equal(
    result.stderr,
    'iap-gateway: invalid configuration: ALLOWED_CIDRS[0] (10.0.0.0/33): prefix length 33 exceeds 32 for IPv4\n',
  )
  t.equal(result.stdout, '')
})

t.test('--check-config prints the effective configuration and exits', async (t) => {
  const result = await runGateway({ ALLOWED_CIDRS: '10.0.0.0/8', IAP_AUDIENCE: AUDIENCE }, ['--check-config'])
  t.equal(result.code, 0)
  const printed = JSON.parse(result.stdout)
  t.same(printed.ALLOWED_CIDRS, ['10.0.0.0/8'])
  t.equal(printed.IAP_AUDIENCE[0], AUDIENCE)
  t.equal(printed.PORT, 8080)
})

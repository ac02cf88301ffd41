import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { readConfig, validateConfig } from '../../deploy/config.ts'

const minimal = {
  project: 'demo-project',
  region: 'europe-west1',
  domain: 'flowise.example.com',
  allowedCidrs: ['203.0.113.7/24', '2001:db8::1/32'],
  iapMembers: ['group:team@example.com'],
}

function problems(raw: unknown): string {
  try {
    validateConfig(raw, '/base')
  } catch (error) {
    t.equal((error as { code: string }).code, 'DEPLOY_ERR_CONFIG')
    return (error as Error).message
  }
  throw new Error('expected a config error')
}

t.test('Flowise is the default preset, with its secrets, database and bucket', async (t) => {
  const c = validateConfig(minimal, '/base')
  t.equal(c.app.preset, 'flowise')
  t.equal(c.name, 'flowise')
  t.same(c.allowedCidrs, ['203.0.113.0/24', '2001:db8::/32'], 'ranges normalised to their network address')
  t.equal(c.trustProxyHops, 2)
  t.equal(c.database.enabled, true)
  t.equal(c.storage.enabled, true)
  t.equal(c.storage.bucket, 'demo-project-flowise-files')
  t.equal(c.app.port, 3000)
  t.equal(c.app.healthPath, '/api/v1/ping')
  t.same(c.app.build, {
    context: '/base',
    dockerfile: 'Dockerfile.flowise',
    args: { FLOWISE_VERSION: '3.1.4' },
  })
  t.equal(c.gateway.build.dockerfile, 'Dockerfile.proxy')
  t.same(
    c.app.secrets.map((s) => `${s.env}=${s.secret}`),
    [
      'FLOWISE_SECRETKEY_OVERWRITE=flowise-secretkey-overwrite',
      'JWT_AUTH_TOKEN_SECRET=flowise-jwt-auth-token-secret',
      'JWT_REFRESH_TOKEN_SECRET=flowise-jwt-refresh-token-secret',
      'EXPRESS_SESSION_SECRET=flowise-express-session-secret',
      'TOKEN_HASH_SECRET=flowise-token-hash-secret',
    ],
  )
  t.same(c.app.projectRoles, ['roles/aiplatform.user'])
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.app.secrets[0]), 'frozen')
})

t.test('a custom app switches the Flowise parts off unless asked', async (t) => {
  const c = validateConfig(
    {
      ...minimal,
      app: {
        preset: 'custom',
        image: 'docker.io/traefik/whoami:v1.10.3',
        env: { A: 'x', N: 3 },
        secrets: { API_KEY: 'generate', OTHER: 'existing-secret' },
      },
      storage: { enabled: true },
    },
    '/base',
  )
  t.equal(c.database.enabled, false)
  t.equal(c.storage.enabled, true)
  t.equal(c.app.image, 'docker.io/traefik/whoami:v1.10.3')
  t.equal(c.app.build, undefined)
  t.equal(c.app.container, 'app')
  t.same(c.app.env, { A: 'x', N: '3' })
  t.same(c.app.secrets, [
    { env: 'API_KEY', secret: 'flowise-api-key', generate: true },
    { env: 'OTHER', secret: 'existing-secret', generate: false },
  ])
  t.same(c.app.projectRoles, [])
  const built = validateConfig(
    { ...minimal, app: { preset: 'custom', build: { context: 'app', dockerfile: 'Dockerfile' } } },
    '/base',
  )
  t.same(
    built.app.build,
    { context: '/base/app', dockerfile: 'Dockerfile', args: {} },
    'no Flowise build args for a custom build',
  )
  t.equal(built.app.tag, '1')
})

t.test('every problem is reported at once, naming the field and the bad value', async (t) => {
  const message = problems({
    project: 'Bad_Project',
    region: 'mars',
    domain: 'not a domain',
    allowedCidrs: ['10.0.0.0/33', 'nope'],
    iapMembers: ['alice@example.com'],
    trustProxyHops: 0,
    maxInstances: 1,
    minInstances: 2,
    allowedEmails: ['a,b@example.com'],
    typo: true,
    gateway: { cpu: 'lots', memory: 12, build: { args: { A: 1 } } },
    app: {
      preset: 'other',
      port: 8080,
      env: { PORT: '1', 'bad-name': 'x', LIST: [1], SECRET: 'sm://x' },
      secrets: { KEY: 'no spaces allowed' },
      flowiseVersion: '2.2.0',
      healthPath: 'health',
      args: 'x',
    },
    database: { deletionProtection: 'yes', oops: 1 },
    network: 'x',
  })
  for (const expected of [
    'project: is not a Google Cloud project id (got "Bad_Project")',
    'region: is not a region like europe-west1 (got "mars")',
    'domain: is not a DNS name (got "not a domain")',
    'allowedCidrs[0]: is not an IPv4 or IPv6 range like 203.0.113.0/24 (got "10.0.0.0/33")',
    'allowedCidrs[1]: is not an IPv4 or IPv6 range',
    'iapMembers[0]: must be user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN (got "alice@example.com")',
    'trustProxyHops: must be an integer of at least 1 (got 0)',
    'allowedEmails[0]: must not contain a comma (got "a,b@example.com")',
    'maxInstances: must be at least minInstances (2) (got 1)',
    'typo: is not a known field',
    'gateway.cpu: must be a CPU count',
    'gateway.memory: must be like 512Mi or 2Gi (got "12")',
    'gateway.build.args.A: must be a string (got 1)',
    'app.preset: must be flowise or custom (got "other")',
    "app.port: must differ from the gateway's port 8080 (got 8080)",
    'app.env.PORT: is set by the deploy or by Cloud Run',
    'app.env.bad-name: must be an environment variable name',
    'app.env.LIST: must be a string (got [1])',
    'app.env.SECRET: secret references belong in app.secrets',
    'app.secrets.KEY: must be "generate" or the id of an existing secret',
    'app.flowiseVersion: must be 3.1.3 or later',
    'app.healthPath: must be a path starting with /',
    'app.args: must be a list of strings',
    'database.deletionProtection: must be true or false (got "yes")',
    'database.oops: is not a known field (known: enabled, instance, edition, tier, version, name, user, deletionProtection, availabilityType, retainedBackups, transactionLogDays, finalBackupDays)',
    'network: must be a mapping',
  ]) {
    t.ok(message.includes(expected), expected)
  }
})

t.test('required fields and shapes', async (t) => {
  const message = problems({
    allowedCidrs: [],
    iapMembers: [],
    project: ['x'],
    app: { preset: 'custom', image: 'x y', build: {} },
  })
  t.match(message, /project: must be a string/)
  t.match(message, /region: is required/)
  t.match(message, /domain: is required/)
  t.match(message, /allowedCidrs: must list at least one range/)
  t.match(message, /iapMembers: must name at least one/)
  t.match(message, /app.image: is not a container image reference/)
  t.match(message, /app: give app.image or app.build, not both/)
  t.match(
    problems({ ...minimal, app: { preset: 'custom' } }),
    /app: a custom app needs app.image or app.build/,
  )
  t.match(
    problems({ ...minimal, app: { secrets: { 'bad-env': 'generate' } } }),
    /app.secrets.bad-env: must be an environment variable name/,
  )
  t.match(problems({ ...minimal, app: { env: ['x'] } }), /app.env: must be a mapping/)
  t.match(problems({ ...minimal, iapMembers: 'x' }), /iapMembers: must be a list of strings/)
  t.match(problems(['a list']), /config: must be a YAML mapping/)
  t.match(problems(null), /config: must be a YAML mapping/)
})

t.test('readConfig reads YAML relative to the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-config-'))
  const file = join(dir, 'deploy.config.yaml')
  writeFileSync(
    file,
    'project: demo-project\nregion: europe-west1\ndomain: a.example.com\nallowedCidrs: [10.0.0.0/8]\niapMembers: [domain:example.com]\ngateway: { build: { context: sub } }\n',
  )
  t.equal(readConfig(file).gateway.build.context, join(dir, 'sub'))
  writeFileSync(file, 'project: [unclosed\n')
  t.throws(() => readConfig(file), {
    code: 'DEPLOY_ERR_CONFIG',
    message: /cannot read config .*deploy\.config\.yaml/,
  })
  t.throws(() => readConfig(join(dir, 'missing.yaml')), {
    code: 'DEPLOY_ERR_CONFIG',
    message: /cannot read config .*missing\.yaml: ENOENT/,
  })
})

// Issue 14, point 18: the gateway's own configuration code judges the environment the deploy renders, at
// plan time, and the error names the deploy field. Before, trustProxyHops passed 1-10 against the gateway's
// 0-16 only by luck, and allowedEmails / allowedDomains were not checked at all.
t.test(
  "the gateway's own config code checks the environment it will get, naming the deploy field",
  async (t) => {
    const message = problems({
      ...minimal,
      trustProxyHops: 17,
      allowedEmails: ['not-an-email'],
      allowedDomains: ['example.com', 'Not_A_Domain'],
    })
    t.match(
      message,
      /trustProxyHops: not an integer between 0 and 16 \(the gateway's TRUST_PROXY_HOPS check\) \(got "17"\)/,
    )
    t.match(
      message,
      /allowedEmails\[0\]: not an email address \(the gateway's ALLOWED_EMAILS check\) \(got "not-an-email"\)/,
    )
    t.match(
      message,
      /allowedDomains\[1\]: not a domain name \(the gateway's ALLOWED_DOMAINS check\) \(got "not_a_domain"\)/,
    )
    t.notMatch(
      message,
      /IAP_AUDIENCE/,
      "the audience is the deploy's own, known only after the backend service exists",
    )
    // A problem the deploy reports itself is not reported twice.
    t.equal(problems({ ...minimal, allowedCidrs: ['10.0.0.0/33'] }).match(/allowedCidrs/g)?.length, 1)
    t.same(
      validateConfig({ ...minimal, trustProxyHops: 16 }, '/').trustProxyHops,
      16,
      "the gateway's bound, not a second rule",
    )
  },
)

// Issue 14, point 1: PostgreSQL 16+ defaults to Enterprise Plus, which refuses shared-core tiers.
t.test('database: the edition is named, and the tier must be one of its tiers', async (t) => {
  const c = validateConfig(minimal, '/')
  t.match(c.database, {
    edition: 'ENTERPRISE',
    tier: 'db-g1-small',
    availabilityType: 'ZONAL',
    retainedBackups: 14,
    transactionLogDays: 7,
    finalBackupDays: 30,
  })
  t.match(
    problems({ ...minimal, database: { edition: 'ENTERPRISE_PLUS' } }),
    /database\.tier: is not a tier of the ENTERPRISE_PLUS edition \(it takes db-perf-optimized-N-\*; db-f1-micro, db-g1-small or db-custom-CPUS-MEMORY_MB need database\.edition: ENTERPRISE\) \(got "db-g1-small"\)/,
  )
  t.match(
    problems({ ...minimal, database: { tier: 'db-perf-optimized-N-2' } }),
    /database\.tier: is not a tier of the ENTERPRISE edition .*need database\.edition: ENTERPRISE_PLUS/,
  )
  const plus = validateConfig(
    {
      ...minimal,
      database: { edition: 'ENTERPRISE_PLUS', tier: 'db-perf-optimized-N-2', transactionLogDays: 35 },
    },
    '/',
  )
  t.equal(plus.database.transactionLogDays, 35)
  const wrong = problems({
    ...minimal,
    database: { edition: 'STANDARD', availabilityType: 'zonal', transactionLogDays: 8, tier: 'x' },
  })
  t.match(wrong, /database\.edition: must be one of ENTERPRISE, ENTERPRISE_PLUS \(got "STANDARD"\)/)
  t.match(wrong, /database\.availabilityType: must be one of ZONAL, REGIONAL \(got "zonal"\)/)
  t.match(wrong, /database\.transactionLogDays: must be an integer from 1 to 7 \(got 8\)/)
  t.match(wrong, /database\.tier: is not a Cloud SQL tier \(got "x"\)/)
  t.notMatch(wrong, /is not a tier of the/, 'a malformed tier is reported once')
})

// Issue 14, point 17: Flowise without queue mode runs every schedule once per instance.
t.test('maxInstances defaults to 1 for Flowise, 3 for a custom app', async (t) => {
  t.equal(validateConfig(minimal, '/').maxInstances, 1)
  t.equal(
    validateConfig({ ...minimal, app: { preset: 'custom', image: 'docker.io/a/b:1' } }, '/').maxInstances,
    3,
  )
  t.equal(validateConfig({ ...minimal, maxInstances: 4 }, '/').maxInstances, 4, 'a choice, not a rule')
})

t.test('a custom IAP OAuth client: its id, and the secret holding its secret', async (t) => {
  const client = { clientId: '123-abc.apps.googleusercontent.com', secret: 'iap-oauth-secret' }
  t.same(validateConfig({ ...minimal, iapOAuthClient: client }, '/').iapOAuthClient, client)
  t.equal(validateConfig(minimal, '/').iapOAuthClient, undefined)
  const bad = problems({
    ...minimal,
    iapOAuthClient: { clientId: 'x', secret: 'GOCSPX-not a secret id', extra: 1 },
  })
  t.match(
    bad,
    /iapOAuthClient\.clientId: is not an OAuth client id like 123-abc\.apps\.googleusercontent\.com \(got "x"\)/,
  )
  t.match(
    bad,
    /iapOAuthClient\.secret: must be the id of the Secret Manager secret holding the client secret/,
  )
  t.match(bad, /iapOAuthClient\.extra: is not a known field/)
  t.match(problems({ ...minimal, iapOAuthClient: {} }), /iapOAuthClient\.clientId: is required/)
})

t.test('both example configs are valid', async (t) => {
  const flowise = readConfig(join(import.meta.dirname, '../../deploy.config.example.yaml'))
  t.equal(flowise.app.preset, 'flowise')
  const webapp = readConfig(join(import.meta.dirname, '../../deploy.config.webapp.example.yaml'))
  t.equal(webapp.app.preset, 'custom')
  t.equal(webapp.database.enabled, false)
  t.equal(webapp.storage.enabled, false)
})

// The service runs in the second generation execution environment, and Cloud Run takes less than 1 vCPU
// only in the first ("You must use the first generation execution environment":
// cloud.google.com/run/docs/configuring/services/cpu): 0.5 would be refused by Cloud Run at apply.
t.test('a CPU below 1 is refused at plan: the second generation needs 1 vCPU or more', async (t) => {
  const message = problems({ ...minimal, gateway: { cpu: '0.5' }, app: { cpu: 0.25 } })
  t.match(
    message,
    /gateway\.cpu: must be at least 1: the service runs in Cloud Run's second generation execution environment.* \(got "0\.5"\)/,
  )
  t.match(message, /app\.cpu: must be at least 1: .* \(got "0\.25"\)/)
  t.match(
    problems({ ...minimal, app: { cpu: 'lots' } }),
    /app\.cpu: must be a CPU count from 1 to 8 \(got "lots"\)/,
  )
  const whole = validateConfig({ ...minimal, gateway: { cpu: 2 }, app: { cpu: '4', memory: '8Gi' } }, '/')
  t.same([whole.gateway.cpu, whole.app.cpu], ['2', '4'])
  t.same([validateConfig(minimal, '/').gateway.cpu, validateConfig(minimal, '/').app.cpu], ['1', '1'])
})

t.test(
  'a memory or CPU Cloud Run refuses stops at plan, naming the field (not the first revision)',
  async (t) => {
    // the config's own checks pass these; Cloud Run's rules for the rendered service do not
    t.match(
      problems({ ...minimal, gateway: { memory: '16Gi' } }),
      /gateway\.memory: 16Gi with 1 vCPU: Cloud Run allows at most 4Gi \(Cloud Run's rule for spec\.template\.spec\.containers\[0\]\.resources\.limits\.memory\)/,
    )
    t.match(
      problems({ ...minimal, app: { cpu: '3' } }),
      /app\.cpu: 3 vCPU: above 1, Cloud Run allows only 2, 4, 6 or 8/,
    )
    t.equal(validateConfig({ ...minimal, app: { cpu: '2', memory: '4Gi' } }, '/base').app.cpu, '2')
  },
)

t.test(
  'too little memory in all for gen2 stops at plan, said of the rendered service (no one field)',
  async (t) => {
    const small = {
      ...minimal,
      gateway: { memory: '128Mi' },
      app: {
        preset: 'custom',
        container: 'app',
        image: 'docker.io/library/nginx:1.27',
        port: 3000,
        memory: '256Mi',
      },
    }
    t.match(
      problems(small),
      /the rendered service: spec\.template\.spec\.containers\[\*\]\.resources\.limits\.memory: 384Mi in all; the second generation execution environment needs at least 512Mi/,
    )
  },
)

t.test(
  'monitoring: a notification channel must be one of this project, named as Monitoring names it',
  async (t) => {
    const c = validateConfig(
      { ...minimal, monitoring: { notificationChannel: 'projects/demo-project/notificationChannels/42' } },
      '/base',
    )
    t.equal(c.monitoring.notificationChannel, 'projects/demo-project/notificationChannels/42')
    t.same(
      [c.monitoring.enabled, c.monitoring.refusalsPerMinute, c.monitoring.upstreamErrorsPerMinute],
      [true, 50, 5],
    )
    t.match(
      problems({ ...minimal, monitoring: { notificationChannel: 'ops@example.com' } }),
      /monitoring\.notificationChannel: must be a channel name like projects\/PROJECT\/notificationChannels\/123/,
    )
    t.match(
      problems({
        ...minimal,
        monitoring: { notificationChannel: 'projects/other-project/notificationChannels/7' },
      }),
      /monitoring\.notificationChannel: must be a channel of the project demo-project \(got "projects\/other-project\/notificationChannels\/7"\)/,
    )
    t.notOk('notificationChannel' in validateConfig(minimal, '/base').monitoring, 'none unless named')
  },
)

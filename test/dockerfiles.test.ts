import { existsSync, readdirSync, readFileSync } from 'node:fs'
import dockerignore from '@balena/dockerignore'
import { Arg, Copy, DockerfileParser, Env, From, type Instruction } from 'dockerfile-ast'
import { validate } from 'dockerfile-utils'
import t from 'tap'
import { FLOWISE_SECRET_VARIABLES } from './helpers/flowise-secrets.ts'

/**
 * What a real build cannot tell, checked in `npm test` without a builder (the images themselves are
 * built and run by `npm run test:images`, test/images/): the linter behind the Dockerfile language
 * server finds nothing, the base is pinned to a full release, the Flowise version is a build argument
 * that picks one of the project's lock folders, no secret is baked in, and .dockerignore keeps the
 * context to what the images need (never the tests or their shims).
 */
const ROOT = new URL('../', import.meta.url)
const read = (name: string) => readFileSync(new URL(name, ROOT), 'utf8')
const PINNED_NODE_24 = /^node:24\.\d+\.\d+-(bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/
const FLOWISE_MIN = [3, 1, 3]
// biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's variable, as written there
const VERSION_ARG = '${FLOWISE_VERSION}'

interface Stage {
  readonly from: From
  readonly instructions: Instruction[]
}

function stages(content: string): Stage[] {
  const result: Stage[] = []
  for (const instruction of DockerfileParser.parse(content).getInstructions()) {
    if (instruction instanceof From) result.push({ from: instruction, instructions: [] })
    else result.at(-1)?.instructions.push(instruction)
  }
  return result
}
const envOf = (stage: Stage) =>
  Object.fromEntries(
    stage.instructions
      .filter((i): i is Env => i instanceof Env)
      .flatMap((env) => env.getProperties().map((p) => [p.getName(), p.getValue()])),
  )
const atLeast = (version: string, min: number[]) => {
  const parts = version.split('.').map(Number)
  for (let i = 0; i < min.length; i += 1) if (parts[i] !== min[i]) return (parts[i] ?? 0) > (min[i] as number)
  return true
}

for (const name of ['Dockerfile.proxy', 'Dockerfile.flowise']) {
  t.test(`${name}: the linter finds nothing`, async (t) => {
    const problems = validate(read(name)).map((d) => `${d.range.start.line + 1}: ${d.message}`)
    t.same(problems, [])
  })

  t.test(`${name}: every stage starts from the same Node 24 base, pinned to a full release`, async (t) => {
    const all = stages(read(name))
    t.ok(all.length >= 2, 'multi-stage')
    for (const { from } of all) t.match(from.getImage(), PINNED_NODE_24, `FROM ${from.getImage()}`)
    t.equal(new Set(all.map(({ from }) => from.getImage())).size, 1, 'one base for every stage')
  })
}

t.test('Dockerfile.flowise: FLOWISE_VERSION picks the lock folder the install copies', async (t) => {
  const content = read('Dockerfile.flowise')
  const global = DockerfileParser.parse(content)
    .getInstructions()
    .filter((i): i is Arg => i instanceof Arg)
    .flatMap((arg) => arg.getProperties())
    .find((p) => p.getName() === 'FLOWISE_VERSION')
  const defaultVersion = global?.getValue() ?? ''
  t.match(defaultVersion, /^\d+\.\d+\.\d+$/, 'declared with a full release as its default')
  t.ok(atLeast(defaultVersion, FLOWISE_MIN), `default ${defaultVersion} >= ${FLOWISE_MIN.join('.')}`)
  const final = stages(content).at(-1) as Stage
  t.ok(
    final.instructions.some((i) => i instanceof Arg && i.getArgumentsContent() === 'FLOWISE_VERSION'),
    're-declared in the stage that installs (a stage sees no global ARG otherwise)',
  )
  const sources = final.instructions
    .filter((i): i is Copy => i instanceof Copy && i.getFromFlag() === null)
    .flatMap((copy) =>
      copy
        .getArguments()
        .slice(0, -1)
        .map((a) => a.getValue()),
    )
  t.ok(sources.includes(`flowise/${VERSION_ARG}/package-lock.json`), 'the lock of that version is copied')
  t.ok(existsSync(new URL(`flowise/${defaultVersion}/package-lock.json`, ROOT)), 'and exists for the default')
  t.notMatch(content, /flowise@\d/, 'no version written anywhere else')
})

t.test('every Flowise lock folder pins its own release, 3.1.3 or later', async (t) => {
  const versions = readdirSync(new URL('flowise/', ROOT)).filter((e) => /^\d+\.\d+\.\d+$/.test(e))
  t.ok(versions.length > 0)
  for (const version of versions) {
    const manifest = JSON.parse(read(`flowise/${version}/package.json`)) as {
      dependencies: Record<string, string>
    }
    const lock = JSON.parse(read(`flowise/${version}/package-lock.json`)) as {
      packages: Record<string, { version?: string }>
    }
    t.equal(manifest.dependencies.flowise, version, `flowise/${version}/package.json`)
    t.equal(lock.packages['node_modules/flowise']?.version, version, `flowise/${version}/package-lock.json`)
    t.ok(atLeast(version, FLOWISE_MIN), `${version} >= ${FLOWISE_MIN.join('.')}`)
  }
})

t.test('Dockerfile.flowise: no secret is baked into the image', async (t) => {
  const env = envOf(stages(read('Dockerfile.flowise')).at(-1) as Stage)
  t.match(env, { HOST: '127.0.0.1', DATABASE_TYPE: 'postgres' })
  for (const name of FLOWISE_SECRET_VARIABLES) {
    t.notOk(name in env, `${name} not set in the image`)
  }
})

t.test('no Dockerfile trusts the build machine: no CA variable or file of its own', async (t) => {
  // The stand-in base trusts this sandbox's TLS proxy (NODE_EXTRA_CA_CERTS, dev/images/stand-in-base.ts);
  // a Dockerfile that set such a variable or copied a CA would ship that trust to production.
  for (const name of ['Dockerfile.proxy', 'Dockerfile.flowise']) {
    const content = read(name)
    for (const stage of stages(content)) {
      for (const variable of [
        'NODE_EXTRA_CA_CERTS',
        'SSL_CERT_FILE',
        'SSL_CERT_DIR',
        'NODE_TLS_REJECT_UNAUTHORIZED',
      ])
        t.notOk(variable in envOf(stage), `${name}: ${variable} not set`)
    }
    t.notMatch(
      content,
      /NODE_EXTRA_CA_CERTS|stand-in-ca|share\/ca-certificates\/|update-ca-certificates/,
      name,
    )
  }
})

t.test('.dockerignore keeps node_modules, tests, shims and local state out of the context', async (t) => {
  const ignored = dockerignore.default({ ignorecase: false }).add(read('.dockerignore'))
  for (const path of [
    'node_modules/fastify/package.json',
    'test/proxy/secrets/resolve.test.ts',
    'test/e2e/helpers/offline-tiktoken.cjs',
    '.local/state.json',
    '.local/flowise-3.1.4/node_modules/flowise/package.json',
    '.env',
    'dist/proxy/main.js',
    '.git/HEAD',
    'deploy.config.example.yaml',
    'proxy/node_modules/x/index.js',
    'flowise/3.1.4/node_modules/flowise/package.json',
    'dev/dev.ts',
    'coverage/index.html',
    '.tap/processinfo/x.json',
  ]) {
    t.ok(ignored.ignores(path), `${path} left out`)
  }
  for (const path of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'proxy/main.ts',
    'proxy/secrets/with-secrets.ts',
    'flowise/3.1.4/package-lock.json',
    'flowise/stdout-logs.cjs',
  ]) {
    t.notOk(ignored.ignores(path), `${path} sent`)
  }
})

t.test('every file the Dockerfiles copy from the context gets past .dockerignore', async (t) => {
  const ignored = dockerignore.default({ ignorecase: false }).add(read('.dockerignore'))
  const sources = ['Dockerfile.proxy', 'Dockerfile.flowise'].flatMap((name) =>
    stages(read(name)).flatMap((stage) =>
      stage.instructions
        .filter((i): i is Copy => i instanceof Copy && i.getFromFlag() === null)
        .flatMap((copy) =>
          copy
            .getArguments()
            .slice(0, -1)
            .map((a) => a.getValue().replace(VERSION_ARG, '3.1.4')),
        ),
    ),
  )
  t.ok(sources.length >= 6, sources.join(' '))
  for (const source of new Set(sources))
    t.notOk(ignored.ignores(source.replace(/\/$/, '')), `${source} in the context`)
})

import { readFileSync } from 'node:fs'
import dockerignore from '@balena/dockerignore'
import { Copy, DockerfileParser, Env, From, type Instruction, JSONInstruction } from 'dockerfile-ast'
import { validate } from 'dockerfile-utils'
import t from 'tap'

/**
 * Holds both images to what they claim, read by a real Dockerfile parser (dockerfile-ast) and linted
 * by the validator behind the Dockerfile language server (dockerfile-utils). No Docker engine needed.
 */
const ROOT = new URL('../../', import.meta.url)
const read = (name: string) => readFileSync(new URL(name, ROOT), 'utf8')
const PINNED_NODE_24 = /^node:24\.\d+\.\d+-(bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/
const FLOWISE_MIN = [3, 1, 3]

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
const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.getKeyword() === keyword)
const jsonArgs = (instruction: Instruction) =>
  instruction instanceof JSONInstruction
    ? instruction.getJSONStrings().map((s) => s.getJSONValue())
    : undefined
const envOf = (stage: Stage) =>
  Object.fromEntries(
    stage.instructions
      .filter((i): i is Env => i instanceof Env)
      .flatMap((env) => env.getProperties().map((p) => [p.getName(), p.getValue()])),
  )

for (const name of ['Dockerfile.proxy', 'Dockerfile.flowise']) {
  t.test(`${name}: the linter finds nothing`, async (t) => {
    const problems = validate(read(name)).map((d) => `${d.range.start.line + 1}: ${d.message}`)
    t.same(problems, [])
  })

  t.test(`${name}: every stage starts from Node 24 pinned to a full version`, async (t) => {
    const all = stages(read(name))
    t.ok(all.length >= 2, 'multi-stage')
    for (const { from } of all) t.match(from.getImage(), PINNED_NODE_24, `FROM ${from.getImage()}`)
    t.equal(new Set(all.map(({ from }) => from.getImage())).size, 1, 'one base for every stage')
  })

  t.test(`${name}: the final stage runs as a non-root user, exec form, no npm`, async (t) => {
    const final = stages(read(name)).at(-1) as Stage
    const users = of(final, 'USER').map((u) => u.getArgumentsContent())
    t.ok(users.length > 0, 'USER set')
    t.notMatch(users.at(-1), /^(root|0)(:|$)/, 'last USER is not root')
    const entrypoint = of(final, 'ENTRYPOINT').at(-1) as Instruction
    t.ok(jsonArgs(entrypoint), 'ENTRYPOINT in exec form')
    for (const cmd of of(final, 'CMD')) t.ok(jsonArgs(cmd), 'CMD in exec form')
    const command = [...(jsonArgs(entrypoint) ?? []), ...of(final, 'CMD').flatMap((c) => jsonArgs(c) ?? [])]
    t.notOk(
      command.some((word) => /(^|\/)(npm|npx|sh|bash)$/.test(word)),
      `no npm or shell: ${command.join(' ')}`,
    )
  })
}

t.test(
  'Dockerfile.proxy: node is PID 1 on dist/proxy/main.js; only production dependencies reach the runtime',
  async (t) => {
    const all = stages(read('Dockerfile.proxy'))
    const final = all.at(-1) as Stage
    t.same(jsonArgs(of(final, 'ENTRYPOINT').at(-1) as Instruction), ['node', 'dist/proxy/main.js'])
    t.same(of(final, 'CMD'), [])
    t.match(envOf(final), { NODE_ENV: 'production', HOST: '0.0.0.0', PORT: '8080' })
    t.same(
      of(final, 'EXPOSE').map((e) => e.getArgumentsContent()),
      ['8080'],
    )
    // What the runtime copies from other stages: production node_modules and dist/proxy, nothing else.
    const copies = final.instructions
      .filter((i): i is Copy => i instanceof Copy)
      .map((copy) => `${copy.getFromFlag()?.getValue() ?? 'context'}:${copy.getArguments()[0]?.getValue()}`)
    t.same(copies, ['context:package.json', 'deps:/app/node_modules', 'build:/app/dist/proxy'])
    const deps = all.find((s) => s.from.getBuildStage() === 'deps') as Stage
    const install = of(deps, 'RUN')
      .map((r) => r.getArgumentsContent())
      .join(' ')
    t.match(install, /npm ci --omit=dev --ignore-scripts/)
    const build = all.find((s) => s.from.getBuildStage() === 'build') as Stage
    t.match(
      of(build, 'RUN')
        .map((r) => r.getArgumentsContent())
        .join(' '),
      /npm ci .*npm run build/s,
    )
    t.same(of(final, 'HEALTHCHECK'), [], 'Cloud Run probes it; no HEALTHCHECK needed')
  },
)

t.test('Dockerfile.flowise: pinned Flowise >= 3.1.3 started by the launcher on 127.0.0.1:3000', async (t) => {
  const final = stages(read('Dockerfile.flowise')).at(-1) as Stage
  const run = of(final, 'RUN')
    .map((r) => r.getArgumentsContent())
    .join(' ')
  const version = /flowise@(\d+)\.(\d+)\.(\d+)\b/.exec(run)
  t.ok(version, 'flowise installed at an exact version')
  t.match(run, /npm install -g --omit=dev --ignore-scripts .*flowise@/, 'no install script fetches binaries')
  const parts = (version?.slice(1) ?? []).map(Number)
  const atLeast =
    parts[0] !== FLOWISE_MIN[0]
      ? (parts[0] as number) > (FLOWISE_MIN[0] as number)
      : parts[1] !== FLOWISE_MIN[1]
        ? (parts[1] as number) > (FLOWISE_MIN[1] as number)
        : (parts[2] as number) >= (FLOWISE_MIN[2] as number)
  t.ok(atLeast, `flowise ${version?.slice(1).join('.')} >= ${FLOWISE_MIN.join('.')}`)
  t.same(jsonArgs(of(final, 'ENTRYPOINT').at(-1) as Instruction), [
    '/usr/bin/tini',
    '--',
    'with-secrets',
    '--',
  ])
  t.same(jsonArgs(of(final, 'CMD').at(-1) as Instruction), ['flowise', 'start'])
  t.match(envOf(final), { HOST: '127.0.0.1', PORT: '3000', DATABASE_TYPE: 'postgres' })
  // No secret is baked into the image: they come from the environment as sm:// references.
  for (const name of [
    'DATABASE_PASSWORD',
    'FLOWISE_SECRETKEY_OVERWRITE',
    'JWT_AUTH_TOKEN_SECRET',
    'JWT_REFRESH_TOKEN_SECRET',
    'EXPRESS_SESSION_SECRET',
    'TOKEN_HASH_SECRET',
  ]) {
    t.notOk(name in envOf(final), `${name} not set in the image`)
  }
  t.same(of(final, 'EXPOSE'), [], 'Flowise is not the ingress container')
})

t.test('.dockerignore keeps node_modules, tests and local state out of the context', async (t) => {
  const ignored = dockerignore.default({ ignorecase: false }).add(read('.dockerignore'))
  for (const path of [
    'node_modules/fastify/package.json',
    'test/secrets/resolve.test.ts',
    '.local/state.json',
    '.env',
    'dist/proxy/main.js',
    '.git/HEAD',
    'deploy.config.example.yaml',
    'proxy/node_modules/x/index.js',
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
            .map((a) => a.getValue()),
        ),
    ),
  )
  t.ok(sources.length >= 5, sources.join(' '))
  for (const source of new Set(sources))
    t.notOk(ignored.ignores(source.replace(/\/$/, '')), `${source} in the context`)
})

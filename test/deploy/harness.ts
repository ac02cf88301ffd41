// Shared by the deploy tests: a fake of Google's APIs, the real gcloud pointed at it through a small
// recorder (it logs each argv, then execs gcloud), and the deploy CLI run in-process with its output kept.
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { main } from '../../deploy/main.ts'
import { gcloudEnv } from '../helpers/fake-gcp/gcloud-env.ts'
import { FakeGcp } from '../helpers/fake-gcp/server.ts'

/** The real gcloud, by path: the recorder may itself be `gcloud` on PATH (the shell-script test). */
const REAL_GCLOUD = execFileSync('bash', ['-c', 'command -v gcloud'], { encoding: 'utf8' }).trim()

export const CIDRS_23 = Array.from({ length: 23 }, (_, i) =>
  i < 20 ? `198.51.${i}.0/24` : `2001:db8:${i}::/48`,
)

export interface Harness {
  fake: FakeGcp
  dir: string
  writeConfig(name: string, config: Record<string, unknown>): string
  deploy(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>
  /** Every argv gcloud was started with, in order. */
  argvLog(): string[][]
  /** The environment gcloud runs with (pointed at the fake). */
  env: NodeJS.ProcessEnv
  /** The recorder that logs each argv and execs the real gcloud. */
  recorder: string
  /** Everything gcloud wrote under its config folder (its own logs): secrets must never be there. */
  gcloudFiles(): string
  close(): Promise<void>
}

export interface HarnessOptions {
  /** The fake's caller holds exactly these project roles instead of being an Owner. */
  callerRoles?: readonly string[]
}

export async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const fake = await new FakeGcp().start()
  if (opts.callerRoles) fake.caller = { member: 'user:deployer@example.com', roles: [...opts.callerRoles] }
  const dir = mkdtempSync(join(tmpdir(), 'deploy-test-'))
  const context = join(dir, 'context')
  mkdirSync(context)
  writeFileSync(join(context, 'Dockerfile.proxy'), 'FROM scratch\n')
  writeFileSync(join(context, 'Dockerfile.flowise'), 'FROM scratch\n')
  const log = join(dir, 'argv.log')
  writeFileSync(log, '')
  const recorder = join(dir, 'gcloud-recorder')
  // One JSON line per call, so a test can look for secrets in every argument gcloud ever saw.
  writeFileSync(
    recorder,
    `#!/usr/bin/env bash\nnode_args=$(printf '%s\\0' "$@" | base64 -w0)\nprintf '%s\\n' "$node_args" >> ${JSON.stringify(log)}\nexec ${JSON.stringify(REAL_GCLOUD)} "$@"\n`,
  )
  chmodSync(recorder, 0o755)
  const env = { ...process.env, ...gcloudEnv(fake.port, dir) }
  return {
    fake,
    dir,
    env,
    recorder,
    gcloudFiles: () => [...walk(join(dir, 'config'))].map((f) => readFileSync(f, 'latin1')).join('\n'),
    writeConfig(name, config) {
      const file = join(dir, name)
      writeFileSync(file, stringify(config))
      return file
    },
    async deploy(args) {
      let stdout = ''
      let stderr = ''
      const code = await main([...args, '--gcloud', recorder], {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
        env,
        tuning: { iamRetryDelaysMs: [50, 100], pollIntervalMs: 0 },
      })
      return { code, stdout, stderr }
    },
    argvLog() {
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => Buffer.from(line, 'base64').toString('utf8').split('\0').slice(0, -1))
    },
    close: () => fake.close(),
  }
}

export function flowiseConfig(h: Harness, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const context = join(h.dir, 'context')
  return {
    project: 'demo-project',
    region: 'europe-west1',
    name: 'fw',
    domain: 'flowise.example.com',
    allowedCidrs: CIDRS_23,
    iapMembers: ['group:flowise-users@example.com', 'user:alice@example.com'],
    gateway: { tag: '0.1.0', build: { context } },
    app: { build: { context } },
    ...extra,
  }
}

/** The second example config as shipped, in the test project. */
export function webappConfig(): Record<string, unknown> {
  const example = parse(
    readFileSync(join(import.meta.dirname, '../../deploy.config.webapp.example.yaml'), 'utf8'),
  )
  return { ...example, project: 'demo-project' }
}

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) yield* walk(join(dir, e.name))
    else yield join(dir, e.name)
  }
}

/** Resources with run-specific ids, etags and operations taken out, for comparing two runs. */
export function normalised(fake: FakeGcp): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fake.snapshot())) {
    if (/^(compute-op|sql-op|build|object|lro|upload-session):/.test(k)) continue
    out[k.replace(/\d+4242/g, 'ID')] = JSON.parse(
      JSON.stringify(v)
        .replace(/\d+4242/g, 'ID')
        .replace(/127\.0\.0\.1:\d+/g, 'FAKE')
        .replace(/"etag":"[^"]*"/g, '"etag":"E"')
        .replace(/"generation":\d+/g, '"generation":0')
        .replace(/"observedGeneration":\d+/g, '"observedGeneration":0')
        .replace(/-0000\d-abc/g, '-REV'),
    )
  }
  return out
}

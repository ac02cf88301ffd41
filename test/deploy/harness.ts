// Shared by the deploy tests: a fake of Google's APIs, the real gcloud pointed at it through a small
// recorder (it logs each argv, then execs gcloud), and the deploy CLI run in-process with its output kept.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { main } from '../../deploy/main.ts'
import { gcloudEnv } from '../helpers/fake-gcp/gcloud-env.ts'
import { FakeGcp } from '../helpers/fake-gcp/server.ts'

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
  close(): Promise<void>
}

export async function harness(): Promise<Harness> {
  const fake = await new FakeGcp().start()
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
    `#!/usr/bin/env bash\nnode_args=$(printf '%s\\0' "$@" | base64 -w0)\nprintf '%s\\n' "$node_args" >> ${JSON.stringify(log)}\nexec gcloud "$@"\n`,
  )
  chmodSync(recorder, 0o755)
  const env = { ...process.env, ...gcloudEnv(fake.port, dir) }
  return {
    fake,
    dir,
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

/** Resources with run-specific ids, etags and operations taken out, for comparing two runs. */
export function normalised(fake: FakeGcp): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fake.snapshot())) {
    if (/^(compute-op|sql-op|build|object):/.test(k)) continue
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

// Flowise's own code, driven with exactly the environment the deploy renders for the Flowise container
// (issue 14): uploads go to a bucket with uniform bucket-level access, as the deploy creates it, through a
// Cloud Storage fake that refuses legacy ACLs as GCS does; and the database is reached over the Cloud SQL
// socket folder the rendered service names, the way a local runner mounts it. Needs Flowise installed
// (dev/flowise.ts, a few minutes the first time) and PostgreSQL; run with `npm run test:e2e`.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { readConfig } from '../../deploy/config.ts'
import { cloudSqlSocketDir, serviceObject } from '../../deploy/service-yaml.ts'
import { ensureFlowiseInstalled, nodeBinary } from '../../dev/flowise.ts'
import { LEGACY_ACL_REFUSED } from '../helpers/fake-gcp/storage.ts'
import { startStorageFake } from '../helpers/fake-gcp/storage-emulator.ts'
import { startPostgres } from './helpers/postgres.ts'

const PROBE = fileURLToPath(new URL('./helpers/deployed-env-probe.cjs', import.meta.url))
const config = readConfig(join(import.meta.dirname, '../../deploy.config.example.yaml'))
const service = serviceObject(config, {
  gatewayImage: 'gateway',
  appImage: 'flowise',
  serviceAccount: 'sa@example.iam.gserviceaccount.com',
  audience: '/projects/1/global/backendServices/2',
  databasePasswordVersion: '1',
})
const flowise = service.spec.template.spec.containers.find((c: any) => c.name === 'flowise')
/** The Flowise container's environment as rendered: sm:// references, the socket path and all. */
const rendered: Record<string, string> = Object.fromEntries(flowise.env.map((e: any) => [e.name, e.value]))

const install = await ensureFlowiseInstalled({ sqlite: false, onProgress: (m) => t.comment(m) })
const base = {
  PATH: process.env.PATH,
  HOME: mkdtempSync(join(tmpdir(), 'e2e-home-')),
  FLOWISE_DIR: install.dir,
}

/** The probe on Flowise's Node 24, with `env` as its whole environment. */
function probe(
  mode: 'storage' | 'database',
  env: Record<string, string | undefined>,
): { child: ChildProcess; line: Promise<any> } {
  const child = spawn(nodeBinary().path, [PROBE, mode], {
    cwd: install.dir,
    env: { ...base, LOG_PATH: join(base.HOME, 'logs'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)))
  const line = new Promise<any>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const first = out.split('\n').find((l) => l.startsWith('{'))
      if (first) resolve(JSON.parse(first))
    })
    child.on('exit', (code) => reject(new Error(`probe exited ${code}: ${err}`)))
  })
  return { child, line }
}

async function uploads(env: Record<string, string | undefined>) {
  const gcs = await startStorageFake([
    { name: rendered.GOOGLE_CLOUD_STORAGE_BUCKET_NAME as string, uniformBucketLevelAccess: true },
  ])
  const { child, line } = probe('storage', { ...env, STORAGE_EMULATOR_HOST: gcs.url })
  try {
    const { port } = await line
    const post = async (path: string, name: string, text: string) => {
      const form = new FormData()
      form.append('files', new Blob([text], { type: 'text/plain' }), name)
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: form })
      return { status: res.status, body: (await res.json()) as any }
    }
    return {
      attachment: await post('/api/v1/attachments/flow-1/chat-1', 'notes.txt', 'an attachment'),
      document: await post('/api/v1/document-store/upsert/store-1', 'doc.txt', 'a document'),
      objects: () => [...gcs.fake.media.keys()].sort(),
      requests: gcs.fake.requests,
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill()
      await once(child, 'exit')
    }
    await gcs.close()
  }
}

t.test('uploads reach a uniform-access bucket with the environment the deploy renders', async (t) => {
  t.equal(rendered.STORAGE_TYPE, 'gcs')
  t.equal(rendered.GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS, 'true')
  const r = await uploads(rendered)
  t.equal(r.attachment.status, 200, JSON.stringify(r.attachment.body))
  t.equal(r.document.status, 200, JSON.stringify(r.document.body))
  t.same(
    r.objects(),
    [
      `${rendered.GOOGLE_CLOUD_STORAGE_BUCKET_NAME}/org-1/docustore/store-1/doc.txt`,
      `${rendered.GOOGLE_CLOUD_STORAGE_BUCKET_NAME}/org-1/flow-1/chat-1/notes.txt`,
    ],
    'stored where Flowise keeps them; the multer upload under uploads/ removed',
  )
  t.notOk(
    r.requests.some((q) => 'predefinedAcl' in q.query),
    'no legacy ACL was sent',
  )
  t.ok(
    r.requests.some((q) => q.path.includes('/uploads%2F') || q.query.name?.startsWith('uploads/')),
    'through multer first',
  )
})

t.test(
  'without GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS the same uploads are refused, as GCS refuses them',
  async (t) => {
    const { GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS: _, ...without } = rendered
    const r = await uploads(without)
    for (const upload of [r.attachment, r.document]) {
      t.equal(upload.status, 500)
      t.match(upload.body, { message: 'Request failed with status code 400', response: LEGACY_ACL_REFUSED })
    }
    t.same(r.objects(), [], 'nothing stored')
    t.ok(
      r.requests.some((q) => q.query.predefinedAcl === 'private'),
      "multer-cloud-storage's predefinedAcl=private",
    )
  },
)

t.test("Flowise's DataSource reaches PostgreSQL through the rendered /cloudsql socket folder", async (t) => {
  t.equal(rendered.DATABASE_HOST, cloudSqlSocketDir(config))
  for (const name of ['DATABASE_SSL', 'DATABASE_SSL_KEY_BASE64', 'DATABASE_REJECT_UNAUTHORIZED'])
    t.notOk(name in rendered, name)
  const postgres = await startPostgres()
  t.teardown(() => postgres.stop())
  // What Cloud Run mounts at /cloudsql/PROJECT:REGION:INSTANCE, a local runner mounts from the local server:
  // a folder whose .s.PGSQL.5432 is the server's socket (the rendered DATABASE_PORT names the file).
  const [row] = await postgres.query<{ unix_socket_directories: string }>('SHOW unix_socket_directories')
  const socketDir = String(row?.unix_socket_directories).split(',')[0] as string
  const mount = mkdtempSync(join(tmpdir(), 'cloudsql-'))
  t.teardown(() => rmSync(mount, { recursive: true, force: true }))
  symlinkSync(join(socketDir, `.s.PGSQL.${postgres.port}`), join(mount, `.s.PGSQL.${rendered.DATABASE_PORT}`))
  // Without STORAGE_TYPE: Flowise's logger, which DataSource loads, would ship logs to Cloud Logging
  // (STORAGE_TYPE=gcs) and, with no Google credentials here, end the process. The database variables are
  // exactly the rendered ones but for the two a runner provides.
  const { STORAGE_TYPE: _storage, ...withoutCloudLogging } = rendered
  const env = {
    ...withoutCloudLogging,
    DATABASE_HOST: mount,
    DATABASE_NAME: postgres.database,
    DATABASE_USER: postgres.user,
    // The launcher would put the secret's value here (sm://...#1 in the rendered environment).
    DATABASE_PASSWORD: postgres.password,
  }
  const { line } = probe('database', env)
  t.same(await line, { connected: true, user: postgres.user, overSocket: true })
})

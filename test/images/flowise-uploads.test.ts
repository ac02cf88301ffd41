// Uploads from the Flowise image, with the environment the deploy renders for it (issue 14): they reach
// a bucket with uniform bucket-level access, as the deploy creates it, through a Cloud Storage fake that
// refuses legacy ACLs as GCS does (test/helpers/fake-gcp/storage.ts cites the documents). Flowise's own
// upload code runs inside the image (flowise-storage-probe.cjs), so what is proven is what ships.
// STORAGE_EMULATOR_HOST is the only variable added: @google-cloud/storage sends its calls to the fake.
import t, { type Test } from 'tap'
import { readConfig } from '../../deploy/config.ts'
import { serviceObject } from '../../deploy/service-yaml.ts'
import { FLOWISE_VERSION } from '../../dev/flowise.ts'
import { REPO_ROOT } from '../../dev/images/build.ts'
import { LEGACY_ACL_REFUSED } from '../helpers/fake-gcp/storage.ts'
import { startStorageFake } from '../helpers/fake-gcp/storage-emulator.ts'
import { buildForTest, podmanOrSkip, startForTest } from './suite.ts'

t.setTimeout(3_600_000)

const VERSION = process.env.FLOWISE_VERSION || FLOWISE_VERSION
const PROBE = `${REPO_ROOT}/test/images/flowise-storage-probe.cjs`
const PROBE_IN_IMAGE = '/test-shims/flowise-storage-probe.cjs'

type Upload = { status: number; body: { message?: string; response?: string } | unknown[] }

if (podmanOrSkip()) {
  const image = await buildForTest('flowise', { flowiseVersion: VERSION })
  const config = readConfig(`${REPO_ROOT}/deploy.config.example.yaml`)
  const rendered = Object.fromEntries(
    (
      serviceObject(config, {
        gatewayImage: 'gateway',
        appImage: image.tag,
        serviceAccount: 'flowise@example.iam.gserviceaccount.com',
        audience: '/projects/1/global/backendServices/2',
        databasePasswordVersion: '1',
      }).spec.template.spec.containers as { name: string; env: { name: string; value: string }[] }[]
    )
      .find((container) => container.name === config.app.container)
      ?.env.map(({ name, value }) => [name, value]) ?? [],
  ) as Record<string, string>
  const bucket = rendered.GOOGLE_CLOUD_STORAGE_BUCKET_NAME as string

  /** Two uploads through Flowise's own middleware in the image, against a fresh bucket fake. */
  async function uploads(test: Test, env: Record<string, string>) {
    const gcs = await startStorageFake([{ name: bucket, uniformBucketLevelAccess: true }])
    test.teardown(() => gcs.close())
    const container = await startForTest(test, {
      image: image.tag,
      purpose: 'flowise-uploads',
      env: { ...env, FLOWISE_DIR: '/opt/flowise', STORAGE_EMULATOR_HOST: gcs.url },
      entrypoint: ['node', PROBE_IN_IMAGE, 'storage'],
      mounts: [{ source: PROBE, target: PROBE_IN_IMAGE }],
    })
    const port = await probePort(container)
    const post = async (path: string, name: string, text: string): Promise<Upload> => {
      const form = new FormData()
      form.append('files', new Blob([text], { type: 'text/plain' }), name)
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: form })
      return { status: res.status, body: (await res.json()) as Upload['body'] }
    }
    return {
      attachment: await post('/api/v1/attachments/flow-1/chat-1', 'notes.txt', 'an attachment'),
      document: await post('/api/v1/document-store/upsert/store-1', 'doc.txt', 'a document'),
      objects: [...gcs.fake.media.keys()].sort(),
      requests: gcs.fake.requests,
    }
  }

  t.test('uploads reach a uniform-access bucket with the environment the deploy renders', async (t) => {
    t.equal(rendered.STORAGE_TYPE, 'gcs')
    t.equal(rendered.GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS, 'true')
    const r = await uploads(t, rendered)
    t.equal(r.attachment.status, 200, JSON.stringify(r.attachment.body))
    t.equal(r.document.status, 200, JSON.stringify(r.document.body))
    t.same(
      r.objects,
      [`${bucket}/org-1/docustore/store-1/doc.txt`, `${bucket}/org-1/flow-1/chat-1/notes.txt`],
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
      const r = await uploads(t, without)
      for (const upload of [r.attachment, r.document]) {
        t.equal(upload.status, 500)
        t.match(upload.body, { message: 'Request failed with status code 400', response: LEGACY_ACL_REFUSED })
      }
      t.same(r.objects, [], 'nothing stored')
      t.ok(
        r.requests.some((q) => q.query.predefinedAcl === 'private'),
        "multer-cloud-storage's predefinedAcl=private",
      )
    },
  )
}

/** The probe prints {"port": N} once it listens; its output is the container's. */
async function probePort(container: { logs(): string; exited: Promise<unknown> }): Promise<number> {
  let exited = false
  container.exited.then(() => (exited = true))
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline && !exited) {
    const line = /^\{"port":(\d+)\}$/m.exec(container.logs())
    if (line) return Number(line[1])
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the storage probe did not start:\n${container.logs().slice(-4000)}`)
}

// Cloud Storage JSON API: buckets, their IAM policy, objects: gcloud's multipart uploads (Cloud Build's
// sources) and @google-cloud/storage's resumable uploads and media downloads (Flowise's files, through
// STORAGE_EMULATOR_HOST), and the refusal of legacy ACLs on uniform bucket-level access buckets.
import { createHash } from 'node:crypto'
import { crc32c } from '@aws-crypto/crc32c'
import { readPolicy, writePolicy } from './iam-policy.ts'
import type { ApiJson, FakeGcp, Reply, Route } from './server.ts'
import { conflict, found, notFound } from './server.ts'

/**
 * With uniform bucket-level access "only bucket-level IAM roles grant access to the bucket and its objects,
 * and individual object ACLs no longer apply" (storage/docs/using-uniform-bucket-level-access); an upload
 * that sets one (predefinedAcl, or acl in the object's metadata) is refused with 400, reason "invalid", and
 * this message (as GCS answers: Superbalist/flysystem-google-cloud-storage#118, googleapis/nodejs-storage#1230).
 */
export const LEGACY_ACL_REFUSED =
  'Cannot insert legacy ACL for an object when uniform bucket-level access is enabled. Read more at https://cloud.google.com/storage/docs/uniform-bucket-level-access'

function legacyAclRefusal(
  fake: FakeGcp,
  bucket: string,
  query: Record<string, string>,
  metadata: ApiJson,
): Reply | undefined {
  const uniform =
    fake.resources.get(`bucket:${bucket}`)?.iamConfiguration?.uniformBucketLevelAccess?.enabled === true
  if (!uniform || (query.predefinedAcl === undefined && metadata?.acl === undefined)) return undefined
  return {
    status: 400,
    body: {
      error: {
        code: 400,
        message: LEGACY_ACL_REFUSED,
        errors: [{ message: LEGACY_ACL_REFUSED, domain: 'global', reason: 'invalid' }],
      },
    },
  }
}

function storeObject(
  fake: FakeGcp,
  bucket: string,
  name: string,
  media: Buffer,
  metadata: ApiJson = {},
): ApiJson {
  const object = {
    ...metadata,
    kind: 'storage#object',
    bucket,
    name,
    generation: fake.id(),
    size: String(media.length),
    md5Hash: createHash('md5').update(media).digest('base64'),
    crc32c: crc32cBase64(media),
  }
  delete object.acl
  fake.resources.set(`object:${bucket}/${name}`, object)
  fake.media.set(`${bucket}/${name}`, media)
  return object
}

// @google-cloud/storage with STORAGE_EMULATOR_HOST takes that host as its whole base URL (storage.js:
// `baseUrl = EMULATOR_HOST || \`${apiEndpoint}/storage/v1\``): its JSON requests come without /storage/v1.
export function storageRoutes(): Route[] {
  return [
    {
      method: 'GET',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)$/,
      handle: ({ fake, m }) => found(fake.resources.get(`bucket:${m[1]}`), `bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/(?:storage\/v1\/)?b$/,
      handle: ({ fake, query }) => {
        const items = [...fake.resources]
          .filter(([k]) => k.startsWith(`bucket:${query.prefix ?? ''}`))
          .map(([, v]) => v)
        return { status: 200, body: { kind: 'storage#buckets', items } }
      },
    },
    {
      method: 'POST',
      re: /^\/(?:storage\/v1\/)?b$/,
      handle: ({ fake, body, query }) => {
        if (fake.resources.has(`bucket:${body.name}`)) return conflict(`bucket ${body.name}`)
        const bucket = {
          ...body,
          kind: 'storage#bucket',
          id: body.name,
          projectNumber: fake.projectNumber,
          project: query.project,
        }
        fake.resources.set(`bucket:${body.name}`, bucket)
        return { status: 200, body: bucket }
      },
    },
    {
      method: 'PATCH',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)$/,
      handle: ({ fake, m, body }) => {
        const current = fake.resources.get(`bucket:${m[1]}`)
        if (!current) return notFound(`bucket ${m[1]}`)
        Object.assign(current, body)
        return { status: 200, body: current }
      },
    },
    {
      method: 'DELETE',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)$/,
      handle: ({ fake, m }) => {
        if ([...fake.resources.keys()].some((k) => k.startsWith(`object:${m[1]}/`))) {
          return {
            status: 409,
            body: { error: { code: 409, message: 'The bucket you tried to delete is not empty.' } },
          }
        }
        fake.resources.delete(`policy:bucket/${m[1]}`)
        return fake.resources.delete(`bucket:${m[1]}`)
          ? { status: 204, body: '' }
          : notFound(`bucket ${m[1]}`)
      },
    },
    {
      method: 'GET',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)\/managedFolders$/,
      handle: ({ fake, m }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? { status: 200, body: { items: [] } }
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)\/storageLayout$/,
      handle: ({ fake, m }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? { status: 200, body: { kind: 'storage#storageLayout', bucket: m[1], locationType: 'region' } }
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)\/iam$/,
      handle: ({ fake, m }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? { status: 200, body: readPolicy(fake, `bucket/${m[1]}`) }
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'PUT',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)\/iam$/,
      handle: ({ fake, m, body }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? writePolicy(fake, `bucket/${m[1]}`, body)
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)\/o$/,
      handle: ({ fake, m, query }) => {
        if (!fake.resources.has(`bucket:${m[1]}`)) return notFound(`bucket ${m[1]}`)
        const items = [...fake.resources]
          .filter(([k]) => k.startsWith(`object:${m[1]}/${query.prefix ?? ''}`))
          .map(([, v]) => v)
        return { status: 200, body: { kind: 'storage#objects', items } }
      },
    },
    {
      method: 'GET',
      // @google-cloud/storage reads media from `${STORAGE_EMULATOR_HOST}/b/B/o/NAME?alt=media`.
      re: /^\/(?:download\/)?(?:storage\/v1\/)?b\/([^/]+)\/o\/(.+)$/,
      handle: ({ fake, m, query }) => {
        const object = fake.resources.get(`object:${m[1]}/${m[2]}`)
        if (!object) return notFound(`object ${m[2]}`)
        if (query.alt !== 'media') return { status: 200, body: object }
        return { status: 200, body: null, media: fake.media.get(`${m[1]}/${m[2]}`) as Buffer }
      },
    },
    {
      method: 'DELETE',
      re: /^\/(?:storage\/v1\/)?b\/([^/]+)\/o\/(.+)$/,
      handle: ({ fake, m }) => {
        fake.media.delete(`${m[1]}/${m[2]}`)
        return fake.resources.delete(`object:${m[1]}/${m[2]}`)
          ? { status: 204, body: '' }
          : notFound(`object ${m[2]}`)
      },
    },
    {
      method: 'POST',
      re: /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/,
      handle: ({ fake, m, query, raw, body }) => {
        const bucket = m[1] as string
        if (!fake.resources.has(`bucket:${bucket}`)) return notFound(`bucket ${bucket}`)
        if (query.uploadType === 'resumable') {
          // The session: metadata now, bytes in the PUTs to the Location answered here (storage/docs/performing-resumable-uploads).
          const metadata = typeof body === 'object' && body ? body : {}
          const refused = legacyAclRefusal(fake, bucket, query, metadata)
          if (refused) return refused
          const id = `session-${fake.id()}`
          const name = query.name ?? (metadata as ApiJson).name
          fake.resources.set(`upload-session:${id}`, { bucket, name, metadata, chunks: [] as string[] })
          return {
            status: 200,
            body: {},
            headers: {
              location: `${fake.base}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&upload_id=${id}`,
            },
          }
        }
        const metadata = multipartMetadata(raw)
        const refused = legacyAclRefusal(fake, bucket, query, metadata)
        if (refused) return refused
        // gcloud compares the stored size with the file it sent before it trusts the upload.
        return {
          status: 200,
          body: storeObject(fake, bucket, query.name ?? metadata.name, multipartMedia(raw), metadata),
        }
      },
    },
    {
      method: 'PUT',
      re: /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/,
      handle: ({ fake, query, raw, headers }) => {
        const session = fake.resources.get(`upload-session:${query.upload_id}`)
        if (!session) return notFound(`upload session ${query.upload_id}`)
        session.chunks.push(raw.toString('base64'))
        // "Content-Range: bytes FIRST-LAST/TOTAL" (or "bytes */TOTAL"): the upload ends when TOTAL is known
        // and received; until then 308 with the bytes stored so far. "bytes OFFSET-*/TOTAL" is a single
        // request carrying the rest, ended by the request itself (storage/docs/performing-resumable-uploads
        // #single-chunk-upload; @google-cloud/storage 7 sends it, with "*" for an unknown TOTAL).
        const range = String(headers['content-range'] ?? '')
        const received = Buffer.concat(session.chunks.map((c: string) => Buffer.from(c, 'base64')))
        const total = /\/(\d+)$/.exec(range)?.[1]
        const rest = /^bytes \d+-\*\//.test(range)
        if (!rest && (total === undefined || received.length < Number(total))) {
          return {
            status: 308,
            body: {},
            headers: received.length ? { range: `bytes=0-${received.length - 1}` } : {},
          }
        }
        fake.resources.delete(`upload-session:${query.upload_id}`)
        return {
          status: 200,
          body: storeObject(fake, session.bucket, session.name, received, session.metadata),
        }
      },
    },
  ]
}

/**
 * The object's bytes from a multipart/related upload: the metadata part states the size, and the bytes
 * end just before the closing delimiter (gcloud compares the stored size with its file).
 */
function multipartMedia(raw: Buffer): Buffer {
  const size = Number(/"size":\s*"(\d+)"/.exec(raw.toString('latin1'))?.[1] ?? 0)
  let end = raw.lastIndexOf('\n--')
  if (raw[end - 1] === 13) end -= 1
  return raw.subarray(end - size, end)
}

/** The JSON metadata part of a multipart/related upload (the first part). */
function multipartMetadata(raw: Buffer): ApiJson {
  const text = raw.toString('latin1')
  const start = text.indexOf('{')
  const end = text.indexOf('\r\n--', start) > 0 ? text.indexOf('\r\n--', start) : text.indexOf('\n--', start)
  try {
    return JSON.parse(text.slice(start, end))
  } catch {
    return {}
  }
}

function crc32cBase64(data: Buffer): string {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc32c(data))
  return out.toString('base64')
}

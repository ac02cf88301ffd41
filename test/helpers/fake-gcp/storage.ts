// Cloud Storage JSON API: buckets, their IAM policy, objects (enough for Cloud Build's source upload).
import { createHash } from 'node:crypto'
import { crc32c } from '@aws-crypto/crc32c'
import { readPolicy, writePolicy } from './iam-policy.ts'
import type { Route } from './server.ts'
import { conflict, found, notFound } from './server.ts'

export function storageRoutes(): Route[] {
  return [
    {
      method: 'GET',
      re: /^\/storage\/v1\/b\/([^/]+)$/,
      handle: ({ fake, m }) => found(fake.resources.get(`bucket:${m[1]}`), `bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/storage\/v1\/b$/,
      handle: ({ fake, query }) => {
        const items = [...fake.resources]
          .filter(([k]) => k.startsWith(`bucket:${query.prefix ?? ''}`))
          .map(([, v]) => v)
        return { status: 200, body: { kind: 'storage#buckets', items } }
      },
    },
    {
      method: 'POST',
      re: /^\/storage\/v1\/b$/,
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
      re: /^\/storage\/v1\/b\/([^/]+)$/,
      handle: ({ fake, m, body }) => {
        const current = fake.resources.get(`bucket:${m[1]}`)
        if (!current) return notFound(`bucket ${m[1]}`)
        Object.assign(current, body)
        return { status: 200, body: current }
      },
    },
    {
      method: 'DELETE',
      re: /^\/storage\/v1\/b\/([^/]+)$/,
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
      re: /^\/storage\/v1\/b\/([^/]+)\/managedFolders$/,
      handle: ({ fake, m }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? { status: 200, body: { items: [] } }
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/storage\/v1\/b\/([^/]+)\/storageLayout$/,
      handle: ({ fake, m }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? { status: 200, body: { kind: 'storage#storageLayout', bucket: m[1], locationType: 'region' } }
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/storage\/v1\/b\/([^/]+)\/iam$/,
      handle: ({ fake, m }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? { status: 200, body: readPolicy(fake, `bucket/${m[1]}`) }
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'PUT',
      re: /^\/storage\/v1\/b\/([^/]+)\/iam$/,
      handle: ({ fake, m, body }) =>
        fake.resources.has(`bucket:${m[1]}`)
          ? writePolicy(fake, `bucket/${m[1]}`, body)
          : notFound(`bucket ${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/storage\/v1\/b\/([^/]+)\/o$/,
      handle: ({ fake, m }) => {
        if (!fake.resources.has(`bucket:${m[1]}`)) return notFound(`bucket ${m[1]}`)
        const items = [...fake.resources].filter(([k]) => k.startsWith(`object:${m[1]}/`)).map(([, v]) => v)
        return { status: 200, body: { kind: 'storage#objects', items } }
      },
    },
    {
      method: 'DELETE',
      re: /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/,
      handle: ({ fake, m }) =>
        fake.resources.delete(`object:${m[1]}/${m[2]}`)
          ? { status: 204, body: '' }
          : notFound(`object ${m[2]}`),
    },
    {
      method: 'POST',
      re: /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/,
      handle: ({ fake, m, query, raw }) => {
        if (!fake.resources.has(`bucket:${m[1]}`)) return notFound(`bucket ${m[1]}`)
        const media = multipartMedia(raw)
        // gcloud compares the stored size with the file it sent before it trusts the upload.
        const object = {
          kind: 'storage#object',
          bucket: m[1],
          name: query.name,
          generation: fake.id(),
          size: String(media.length),
          md5Hash: createHash('md5').update(media).digest('base64'),
          crc32c: crc32cBase64(media),
        }
        fake.resources.set(`object:${m[1]}/${query.name}`, object)
        return { status: 200, body: object }
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

function crc32cBase64(data: Buffer): string {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc32c(data))
  return out.toString('base64')
}

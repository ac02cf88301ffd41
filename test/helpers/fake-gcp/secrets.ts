// Secret Manager v1: secrets, versions (payload kept apart so a snapshot never shows it), IAM.
import { crc32c } from '@aws-crypto/crc32c'
import { readPolicy, writePolicy } from './iam-policy.ts'
import type { Route } from './server.ts'
import { conflict, found, notFound } from './server.ts'

const S = '^/secretmanager/v1/projects/([^/]+)/secrets'

export function secretRoutes(): Route[] {
  return [
    {
      method: 'GET',
      re: new RegExp(`${S}$`),
      handle: ({ fake, m }) => {
        const secrets = [...fake.resources].filter(([k]) => k.startsWith(`secret:${m[1]}/`)).map(([, v]) => v)
        return { status: 200, body: { secrets, totalSize: secrets.length } }
      },
    },
    {
      method: 'POST',
      re: new RegExp(`${S}$`),
      handle: ({ fake, m, body, query }) => {
        const k = `secret:${m[1]}/${query.secretId}`
        if (fake.resources.has(k))
          return conflict(`Secret [projects/${fake.projectNumber}/secrets/${query.secretId}]`)
        const secret = {
          ...body,
          name: `projects/${fake.projectNumber}/secrets/${query.secretId}`,
          createTime: '2026-01-01T00:00:00Z',
        }
        fake.resources.set(k, secret)
        return { status: 200, body: secret }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${S}/([^/:]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`secret:${m[1]}/${m[2]}`), `Secret [${m[2]}]`),
    },
    {
      method: 'PATCH',
      re: new RegExp(`${S}/([^/:]+)$`),
      handle: ({ fake, m, body }) => {
        const current = fake.resources.get(`secret:${m[1]}/${m[2]}`)
        if (!current) return notFound(`Secret [${m[2]}]`)
        Object.assign(current, { labels: body.labels ?? current.labels })
        return { status: 200, body: current }
      },
    },
    {
      method: 'DELETE',
      re: new RegExp(`${S}/([^/:]+)$`),
      handle: ({ fake, m }) => {
        if (!fake.resources.delete(`secret:${m[1]}/${m[2]}`)) return notFound(`Secret [${m[2]}]`)
        for (const k of [...fake.resources.keys()]) {
          if (k.startsWith(`secret-version:${m[1]}/${m[2]}/`) || k.startsWith(`payload:${m[1]}/${m[2]}/`)) {
            fake.resources.delete(k)
          }
        }
        fake.resources.delete(`policy:secret/${m[1]}/${m[2]}`)
        return { status: 200, body: {} }
      },
    },
    {
      method: 'POST',
      re: new RegExp(`${S}/([^/:]+):addVersion$`),
      handle: ({ fake, m, body }) => {
        if (!fake.resources.has(`secret:${m[1]}/${m[2]}`)) return notFound(`Secret [${m[2]}]`)
        const n =
          [...fake.resources.keys()].filter((k) => k.startsWith(`secret-version:${m[1]}/${m[2]}/`)).length + 1
        const data = Buffer.from(body.payload.data, 'base64')
        // gcloud sends a CRC32C and trusts the version only if the API says it checked it.
        if (
          body.payload.dataCrc32c !== undefined &&
          String(crc32c(data)) !== String(body.payload.dataCrc32c)
        ) {
          return {
            status: 400,
            body: { error: { code: 400, message: 'Checksum mismatch', status: 'INVALID_ARGUMENT' } },
          }
        }
        const version = {
          name: `projects/${fake.projectNumber}/secrets/${m[2]}/versions/${n}`,
          state: 'ENABLED',
          createTime: `2026-01-01T00:${String(n).padStart(2, '0')}:00Z`,
          ...(body.payload.dataCrc32c !== undefined ? { clientSpecifiedPayloadChecksum: true } : {}),
        }
        fake.resources.set(`secret-version:${m[1]}/${m[2]}/${n}`, version)
        fake.payloads.set(`${m[1]}/${m[2]}/${n}`, data.toString('utf8'))
        return { status: 200, body: version }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${S}/([^/:]+)/versions$`),
      handle: ({ fake, m, query }) => {
        if (!fake.resources.has(`secret:${m[1]}/${m[2]}`)) return notFound(`Secret [${m[2]}]`)
        // Newest first, as Secret Manager lists them; `filter=state:enabled` is applied by the API.
        const versions = [...fake.resources]
          .filter(([k]) => k.startsWith(`secret-version:${m[1]}/${m[2]}/`))
          .map(([, v]) => v)
          .filter((v) => !/state:enabled/i.test(query.filter ?? '') || v.state === 'ENABLED')
          .reverse()
        return { status: 200, body: { versions, totalSize: versions.length } }
      },
    },
    {
      // A version's metadata (state), never its payload. "latest" is an alias of the most recently created
      // version (secret-manager/docs/access-secret-version).
      method: 'GET',
      re: new RegExp(`${S}/([^/:]+)/versions/([^/:]+)$`),
      handle: ({ fake, m }) => {
        const all = [...fake.resources.keys()].filter((k) => k.startsWith(`secret-version:${m[1]}/${m[2]}/`))
        const n = m[3] === 'latest' ? all.length : Number(m[3])
        return found(
          fake.resources.get(`secret-version:${m[1]}/${m[2]}/${n}`),
          `Secret version [${m[2]}/${m[3]}]`,
        )
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${S}/([^/:]+)/versions/([^/:]+):access$`),
      handle: ({ fake, m }) => {
        const versions = [...fake.payloads.keys()].filter((k) => k.startsWith(`${m[1]}/${m[2]}/`))
        const n = m[3] === 'latest' ? versions.length : Number(m[3])
        const data = fake.payloads.get(`${m[1]}/${m[2]}/${n}`)
        if (data === undefined) return notFound(`Secret version [${m[2]}/${m[3]}]`)
        // A disabled version cannot be read (secret-manager/docs/disable-secret-version).
        if (fake.resources.get(`secret-version:${m[1]}/${m[2]}/${n}`)?.state === 'DISABLED') {
          return {
            status: 400,
            body: {
              error: {
                code: 400,
                message: `${m[2]} version ${n} is in DISABLED state.`,
                status: 'FAILED_PRECONDITION',
              },
            },
          }
        }
        const name = `projects/${fake.projectNumber}/secrets/${m[2]}/versions/${n}`
        return { status: 200, body: { name, payload: { data: Buffer.from(data).toString('base64') } } }
      },
    },
    {
      method: 'POST',
      re: new RegExp(`${S}/([^/:]+)/versions/([^/:]+):disable$`),
      handle: ({ fake, m }) => {
        const version = fake.resources.get(`secret-version:${m[1]}/${m[2]}/${m[3]}`)
        if (!version) return notFound(`Secret version [${m[2]}/${m[3]}]`)
        version.state = 'DISABLED'
        return { status: 200, body: version }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${S}/([^/:]+):getIamPolicy$`),
      handle: ({ fake, m }) =>
        fake.resources.has(`secret:${m[1]}/${m[2]}`)
          ? { status: 200, body: readPolicy(fake, `secret/${m[1]}/${m[2]}`) }
          : notFound(`Secret [${m[2]}]`),
    },
    {
      method: 'POST',
      re: new RegExp(`${S}/([^/:]+):setIamPolicy$`),
      handle: ({ fake, m, body }) =>
        fake.resources.has(`secret:${m[1]}/${m[2]}`)
          ? writePolicy(fake, `secret/${m[1]}/${m[2]}`, body.policy)
          : notFound(`Secret [${m[2]}]`),
    },
  ]
}

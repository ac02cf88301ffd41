// IAM policies as the real APIs keep them: read-modify-write guarded by an etag, members checked.
import type { ApiJson, FakeGcp, Reply } from './server.ts'

export function readPolicy(fake: FakeGcp, resource: string): ApiJson {
  return fake.resources.get(`policy:${resource}`) ?? { version: 1, etag: etagOf(0), bindings: [] }
}

/** Service accounts must exist when bound; an unknown one is refused as IAM does while it propagates. */
function unknownMember(fake: FakeGcp, policy: ApiJson): string | undefined {
  for (const b of policy.bindings ?? []) {
    for (const member of b.members ?? []) {
      if (!member.startsWith('serviceAccount:')) continue
      const email = member.slice('serviceAccount:'.length)
      if (!fake.resources.has(`iam-sa:${email}`)) return email
      if (fake.unpropagated.delete(email)) return email
    }
  }
  return undefined
}

export function writePolicy(fake: FakeGcp, resource: string, policy: ApiJson): Reply {
  const current = readPolicy(fake, resource)
  if (policy.etag && policy.etag !== current.etag) {
    return {
      status: 409,
      body: { error: { code: 409, message: 'There were concurrent policy changes.', status: 'ABORTED' } },
    }
  }
  const missing = unknownMember(fake, policy)
  if (missing) {
    return {
      status: 400,
      body: {
        error: {
          code: 400,
          message: `Service account ${missing} does not exist.`,
          status: 'INVALID_ARGUMENT',
        },
      },
    }
  }
  const etag = etagOf(Number(Buffer.from(current.etag, 'base64').toString('utf8').slice(1)) + 1)
  const bindings = (policy.bindings ?? []).filter((b: ApiJson) => (b.members ?? []).length > 0)
  const next = { version: policy.version ?? 1, etag, bindings }
  fake.resources.set(`policy:${resource}`, next)
  return { status: 200, body: next }
}

function etagOf(generation: number): string {
  return Buffer.from(`g${generation}`).toString('base64')
}

/**
 * Acting as a service account needs iam.serviceAccounts.actAs, which Service Account User grants. An
 * Owner (fake.caller undefined) has it; otherwise the fake looks at the caller's project roles only (it
 * keeps no per-account policies). The refusal is IAM's: "Permission 'iam.serviceaccounts.actAs' denied
 * on service account X (or it may not exist)." (run/docs/configuring/services/service-identity)
 */
export function actAsDenied(fake: FakeGcp, serviceAccount: string): Reply | undefined {
  const caller = fake.caller
  if (!caller || caller.roles.includes('roles/iam.serviceAccountUser')) return undefined
  const message = `Permission 'iam.serviceaccounts.actAs' denied on service account ${serviceAccount} (or it may not exist).`
  return { status: 403, body: { error: { code: 403, message, status: 'PERMISSION_DENIED' } } }
}

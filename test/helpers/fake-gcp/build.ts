// Artifact Registry (repositories, their IAM policy, docker tags) and Cloud Build (builds that finish at
// once and push the images they name, so the next describe of the tag finds it).
import { actAsDenied, readPolicy, writePolicy } from './iam-policy.ts'
import type { ApiJson, FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

/** The role on the resource itself or on the whole project. */
function holds(fake: FakeGcp, project: string, policyKey: string, role: string, member: string): boolean {
  const bindings = [
    ...readPolicy(fake, policyKey).bindings,
    ...readPolicy(fake, `project/${project}`).bindings,
  ]
  return bindings.some((b: ApiJson) => b.role === role && b.members?.includes(member))
}

/**
 * Why a build cannot do its work as the account it runs as, or undefined. A build without its own account
 * runs, in projects created since July 2024, as the Compute Engine default service account, which new
 * organisations no longer make an Editor (build/docs/cloud-build-service-account-updates): it lacks what
 * the build needs. A user-specified account needs logging.logWriter, artifactregistry.writer and read on the
 * staged sources (functions/docs/securing/build-custom-sa lists the three).
 */
function buildPermissionProblem(fake: FakeGcp, body: ApiJson, project: string): string | undefined {
  if (!body.serviceAccount) {
    return `the build ran as ${fake.projectNumber}-compute@developer.gserviceaccount.com, the Compute Engine default service account, which has no roles in this project: Permission 'artifactregistry.repositories.uploadArtifacts' denied`
  }
  const email = String(body.serviceAccount).split('/').pop() as string
  const member = `serviceAccount:${email}`
  if (!holds(fake, project, `project/${project}`, 'roles/logging.logWriter', member))
    return `${email} lacks roles/logging.logWriter`
  const bucket = body.source?.storageSource?.bucket
  if (bucket && !holds(fake, project, `bucket/${bucket}`, 'roles/storage.objectViewer', member))
    return `${email} does not have storage.objects.get access to gs://${bucket}`
  for (const image of body.images ?? []) {
    const m = /^([a-z0-9-]+)-docker\.pkg\.dev\/([^/]+)\/([^/]+)\//.exec(image)
    if (m && !holds(fake, project, `ar/${m[2]}/${m[1]}/${m[3]}`, 'roles/artifactregistry.writer', member))
      return `Permission 'artifactregistry.repositories.uploadArtifacts' denied on repository ${m[3]} for ${email}`
  }
  return undefined
}

/** "if 'build.service_account' is specified, the build must either (a) specify 'build.logs_bucket', (b) use
 * the REGIONAL_USER_OWNED_BUCKET build.options.default_logs_bucket_behavior option, or (c) use either
 * CLOUD_LOGGING_ONLY / NONE logging options: invalid argument" (cert-manager/cert-manager#8851,
 * GoogleCloudPlatform/terraform-google-dataplex-auto-data-quality#39). */
function loggingProblem(body: ApiJson): string | undefined {
  if (!body.serviceAccount || body.logsBucket) return undefined
  if (['CLOUD_LOGGING_ONLY', 'NONE'].includes(body.options?.logging)) return undefined
  if (body.options?.defaultLogsBucketBehavior === 'REGIONAL_USER_OWNED_BUCKET') return undefined
  return "if 'build.service_account' is specified, the build must either (a) specify 'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET build.options.default_logs_bucket_behavior option, or (c) use either CLOUD_LOGGING_ONLY / NONE logging options: invalid argument"
}

const REPO = '^/artifactregistry/v1/projects/([^/]+)/locations/([^/]+)/repositories'

function lro(fake: FakeGcp, response: unknown): Reply {
  return {
    status: 200,
    body: { name: `projects/p/locations/l/operations/op-${fake.id()}`, done: true, response },
  }
}

function pushImage(fake: FakeGcp, image: string): string | undefined {
  // REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG
  const m = /^([a-z0-9-]+)-docker\.pkg\.dev\/([^/]+)\/([^/]+)\/([^:]+):(.+)$/.exec(image)
  if (!m) return `image ${image} is not an Artifact Registry docker image`
  const repo = `ar:${m[2]}/${m[1]}/${m[3]}`
  if (!fake.resources.has(repo)) return `repository ${m[3]} does not exist in ${m[1]}`
  const pkg = `projects/${m[2]}/locations/${m[1]}/repositories/${m[3]}/packages/${m[4]}`
  fake.resources.set(`ar-tag:${m[2]}/${m[1]}/${m[3]}/${m[4]}/${m[5]}`, {
    name: `${pkg}/tags/${m[5]}`,
    version: `${pkg}/versions/sha256:${fake.id()}`,
  })
  return undefined
}

export function buildRoutes(): Route[] {
  return [
    {
      method: 'POST',
      re: new RegExp(`${REPO}$`),
      handle: ({ fake, m, body, query }) => {
        const k = `ar:${m[1]}/${m[2]}/${query.repositoryId}`
        if (fake.resources.has(k)) return conflict(`repository ${query.repositoryId}`)
        const repo = {
          ...body,
          name: `projects/${m[1]}/locations/${m[2]}/repositories/${query.repositoryId}`,
        }
        fake.resources.set(k, repo)
        return lro(fake, repo)
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${REPO}/([^/:]+):getIamPolicy$`),
      handle: ({ fake, m }) =>
        fake.resources.has(`ar:${m[1]}/${m[2]}/${m[3]}`)
          ? { status: 200, body: readPolicy(fake, `ar/${m[1]}/${m[2]}/${m[3]}`) }
          : notFound(`repository ${m[3]}`),
    },
    {
      method: 'POST',
      re: new RegExp(`${REPO}/([^/:]+):setIamPolicy$`),
      handle: ({ fake, m, body }) =>
        fake.resources.has(`ar:${m[1]}/${m[2]}/${m[3]}`)
          ? writePolicy(fake, `ar/${m[1]}/${m[2]}/${m[3]}`, body.policy)
          : notFound(`repository ${m[3]}`),
    },
    {
      method: 'GET',
      re: new RegExp(`${REPO}/([^/:]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`ar:${m[1]}/${m[2]}/${m[3]}`), `repository ${m[3]}`),
    },
    {
      method: 'DELETE',
      re: new RegExp(`${REPO}/([^/]+)$`),
      handle: ({ fake, m }) => {
        if (!fake.resources.delete(`ar:${m[1]}/${m[2]}/${m[3]}`)) return notFound(`repository ${m[3]}`)
        fake.resources.delete(`policy:ar/${m[1]}/${m[2]}/${m[3]}`)
        for (const k of [...fake.resources.keys()]) {
          if (k.startsWith(`ar-tag:${m[1]}/${m[2]}/${m[3]}/`)) fake.resources.delete(k)
        }
        return lro(fake, {})
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${REPO}/([^/]+)/packages/([^/]+)/tags$`),
      handle: ({ fake, m }) => {
        if (!fake.resources.has(`ar:${m[1]}/${m[2]}/${m[3]}`)) return notFound(`repository ${m[3]}`)
        const pkg = decodeURIComponent(m[4] as string)
        const tags = [...fake.resources]
          .filter(([k]) => k.startsWith(`ar-tag:${m[1]}/${m[2]}/${m[3]}/${pkg}/`))
          .map(([, v]) => v)
        return { status: 200, body: { tags } }
      },
    },
    {
      method: 'POST',
      re: /^\/cloudbuild\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/builds$/,
      handle: ({ fake, m, body }) => {
        const refusal = loggingProblem(body)
        if (refusal) return badRequest(refusal)
        const email = body.serviceAccount && String(body.serviceAccount).split('/').pop()
        if (email && !fake.resources.has(`iam-sa:${email}`))
          return badRequest(`service account ${email} does not exist`)
        // Running a build as an account is acting as it (build/docs/securing-builds/configure-user-specified-service-accounts).
        const denied = email && actAsDenied(fake, email)
        if (denied) return denied
        const statusDetail = buildPermissionProblem(fake, body, m[1] as string)
        // A test can script the statuses later reads report; the images are pushed only if it ends well.
        const outcome = statusDetail ? 'FAILURE' : (fake.buildStatuses.at(-1) ?? 'SUCCESS')
        for (const image of outcome === 'SUCCESS' ? (body.images ?? []) : []) {
          const problem = pushImage(fake, image)
          if (problem) return badRequest(problem)
        }
        const id = `build-${fake.id()}`
        const build = {
          ...body,
          id,
          name: `projects/${m[1]}/locations/${m[2]}/builds/${id}`,
          projectId: m[1],
          status: outcome === 'FAILURE' && statusDetail ? 'FAILURE' : 'SUCCESS',
          ...(statusDetail ? { statusDetail } : {}),
          logUrl: `https://console.cloud.google.com/cloud-build/builds/${id}`,
        }
        fake.resources.set(`build:${m[1]}/${m[2]}/${id}`, build)
        const type = 'type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata'
        const name = `projects/${m[1]}/locations/${m[2]}/operations/op-${id}`
        return {
          status: 200,
          body: {
            name,
            metadata: { '@type': type, build },
            done: true,
            response: { ...build, '@type': 'type.googleapis.com/google.devtools.cloudbuild.v1.Build' },
          },
        }
      },
    },
    {
      method: 'GET',
      re: /^\/cloudbuild\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/builds\/([^/]+)$/,
      handle: ({ fake, m }) => {
        const build = fake.resources.get(`build:${m[1]}/${m[2]}/${m[3]}`)
        if (build && fake.buildStatuses.length > 0) build.status = fake.buildStatuses.shift()
        return found(build, `build ${m[3]}`)
      },
    },
  ]
}

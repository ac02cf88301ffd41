// Artifact Registry (repositories, docker tags) and Cloud Build (builds that succeed at once and push
// the images they name, so the next describe of the tag finds it).
import type { FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

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
      re: new RegExp(`${REPO}/([^/]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`ar:${m[1]}/${m[2]}/${m[3]}`), `repository ${m[3]}`),
    },
    {
      method: 'DELETE',
      re: new RegExp(`${REPO}/([^/]+)$`),
      handle: ({ fake, m }) => {
        if (!fake.resources.delete(`ar:${m[1]}/${m[2]}/${m[3]}`)) return notFound(`repository ${m[3]}`)
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
        // A test can script the statuses later reads report; the images are pushed only if it ends well.
        const outcome = fake.buildStatuses.at(-1) ?? 'SUCCESS'
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
          status: 'SUCCESS',
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

// Cloud Run Admin API v1 (Knative services) and its IAM policy. The fake refuses what Cloud Run refuses
// for multi-container services, so a wrong service body fails the deploy tests as it would in production.
import { readPolicy, writePolicy } from './iam-policy.ts'
import type { FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

const SVC = '^/apis/serving.knative.dev/v1/namespaces/([^/]+)/services'

function invalid(spec: any): string | undefined {
  const tpl = spec?.template ?? {}
  const containers: any[] = tpl.spec?.containers ?? []
  if (containers.length === 0) return 'spec.template.spec.containers: at least one container is required'
  if (containers.filter((c) => (c.ports ?? []).length > 0).length !== 1) {
    return 'spec.template.spec.containers: exactly one container must declare ports'
  }
  if (containers.length > 1 && containers.some((c) => !c.name)) return 'every container must be named'
  for (const c of containers) {
    for (const probe of [c.startupProbe, c.livenessProbe].filter(Boolean)) {
      if ((probe.failureThreshold ?? 3) * (probe.periodSeconds ?? 10) > 240) {
        return `container ${c.name}: failureThreshold * periodSeconds must not exceed 240`
      }
    }
  }
  const deps = tpl.metadata?.annotations?.['run.googleapis.com/container-dependencies']
  if (deps) {
    for (const names of Object.values(JSON.parse(deps)) as string[][]) {
      for (const name of names) {
        const dep = containers.find((c) => c.name === name)
        if (!dep?.startupProbe) return `container dependency ${name} must exist and have a startupProbe`
      }
    }
  }
  return undefined
}

function withStatus(fake: FakeGcp, body: any, generation: number): any {
  const name = body.metadata.name
  const revision = `${name}-${String(generation).padStart(5, '0')}-abc`
  return {
    ...body,
    metadata: { ...body.metadata, generation, uid: `uid-${name}` },
    status: {
      observedGeneration: generation,
      conditions: ['Ready', 'ConfigurationsReady', 'RoutesReady'].map((type) => ({ type, status: 'True' })),
      latestReadyRevisionName: revision,
      latestCreatedRevisionName: revision,
      url: `https://${name}-${fake.projectNumber}.run.app`,
      address: { url: `https://${name}-${fake.projectNumber}.run.app` },
      traffic: [{ revisionName: revision, percent: 100, latestRevision: true }],
    },
  }
}

function save(fake: FakeGcp, project: string, body: any, existing: any): Reply {
  const problem = invalid(body.spec)
  if (problem) return badRequest(problem)
  const sa = body.spec?.template?.spec?.serviceAccountName
  if (sa && !fake.resources.has(`iam-sa:${sa}`)) return badRequest(`service account ${sa} does not exist`)
  const generation = (existing?.metadata?.generation ?? 0) + 1
  const stored = withStatus(fake, body, generation)
  fake.resources.set(`run:${project}/${body.metadata.name}`, stored)
  return { status: 200, body: stored }
}

export function runRoutes(): Route[] {
  return [
    {
      method: 'GET',
      re: new RegExp(`${SVC}/([^/]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`run:${m[1]}/${m[2]}`), `service ${m[2]}`),
    },
    {
      method: 'POST',
      re: new RegExp(`${SVC}$`),
      handle: ({ fake, m, body }) => {
        const existing = fake.resources.get(`run:${m[1]}/${body.metadata.name}`)
        return existing
          ? conflict(`service ${body.metadata.name}`)
          : save(fake, m[1] as string, body, undefined)
      },
    },
    {
      method: 'PUT',
      re: new RegExp(`${SVC}/([^/]+)$`),
      handle: ({ fake, m, body }) => {
        const existing = fake.resources.get(`run:${m[1]}/${m[2]}`)
        return existing ? save(fake, m[1] as string, body, existing) : notFound(`service ${m[2]}`)
      },
    },
    {
      method: 'DELETE',
      re: new RegExp(`${SVC}/([^/]+)$`),
      handle: ({ fake, m }) => {
        if (!fake.resources.delete(`run:${m[1]}/${m[2]}`)) return notFound(`service ${m[2]}`)
        fake.resources.delete(`policy:run/${m[1]}/${m[2]}`)
        return { status: 200, body: { kind: 'Status', status: 'Success' } }
      },
    },
    {
      method: 'GET',
      re: /^\/v1\/projects\/([^/]+)\/locations\/[^/]+\/services\/([^/:]+):getIamPolicy$/,
      handle: ({ fake, m }) =>
        fake.resources.has(`run:${m[1]}/${m[2]}`)
          ? { status: 200, body: readPolicy(fake, `run/${m[1]}/${m[2]}`) }
          : notFound(`service ${m[2]}`),
    },
    {
      method: 'POST',
      re: /^\/v1\/projects\/([^/]+)\/locations\/[^/]+\/services\/([^/:]+):setIamPolicy$/,
      handle: ({ fake, m, body }) =>
        fake.resources.has(`run:${m[1]}/${m[2]}`)
          ? writePolicy(fake, `run/${m[1]}/${m[2]}`, body.policy)
          : notFound(`service ${m[2]}`),
    },
  ]
}

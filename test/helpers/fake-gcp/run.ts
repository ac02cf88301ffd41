// Cloud Run Admin API v1 (Knative services) and its IAM policy. The fake refuses what Cloud Run refuses
// for multi-container services, so a wrong service body fails the deploy tests as it would in production.
import { actAsDenied, readPolicy, writePolicy } from './iam-policy.ts'
import type { ApiJson, FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

// Annotations of features Cloud Run had not made GA at gcloud 528 (whose GA track has no --no-default-url):
// without a launch stage of at least BETA, "The feature ... is not supported in the declared launch stage
// on resource ... The launch stage annotation should be specified at least as BETA" (the message as in
// google-github-actions/deploy-cloudrun#35 and google/exposure-notifications-verification-server#1781).
const PREVIEW_ANNOTATIONS: Record<string, string> = {
  'run.googleapis.com/default-url-disabled': 'default URL disabled',
}

function launchStageProblem(body: ApiJson): string | undefined {
  const annotations = body.metadata?.annotations ?? {}
  const stage = annotations['run.googleapis.com/launch-stage'] ?? 'GA'
  for (const [key, feature] of Object.entries(PREVIEW_ANNOTATIONS)) {
    if (key in annotations && !['BETA', 'ALPHA'].includes(stage)) {
      return `The feature '${feature}' is not supported in the declared launch stage on resource ${body.metadata.name}. The launch stage annotation should be specified at least as BETA. Please visit https://cloud.google.com/run/docs/troubleshooting#launch-stage-validation for in-depth troubleshooting documentation.`
    }
  }
  return undefined
}

const SVC = '^/apis/serving.knative.dev/v1/namespaces/([^/]+)/services'

function invalid(spec: ApiJson): string | undefined {
  const tpl = spec?.template ?? {}
  const containers: ApiJson[] = tpl.spec?.containers ?? []
  if (containers.length === 0) return 'spec.template.spec.containers: at least one container is required'
  if (containers.filter((c) => (c.ports ?? []).length > 0).length !== 1) {
    return 'spec.template.spec.containers: exactly one container must declare ports'
  }
  if (containers.length > 1 && containers.some((c) => !c.name)) return 'every container must be named'
  for (const c of containers) {
    // "Configure container health checks (services)": a startup probe's failureThreshold *
    // periodSeconds "cannot exceed 240 seconds"; no such window for liveness probes, whose periodSeconds
    // may be up to 3600 (Cloud Run Admin API v2, Probe.periodSeconds: "Maximum value for liveness probe
    // is 3600. Maximum value for startup probe is 240"). https://cloud.google.com/run/docs/configuring/healthchecks
    if (
      c.startupProbe &&
      (c.startupProbe.failureThreshold ?? 3) * (c.startupProbe.periodSeconds ?? 10) > 240
    ) {
      return `container ${c.name}: failureThreshold * periodSeconds must not exceed 240`
    }
    if ((c.livenessProbe?.periodSeconds ?? 10) > 3600) {
      return `container ${c.name}: livenessProbe.periodSeconds must not exceed 3600`
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

/**
 * The status after a write (Cloud Run Admin API v1, ServiceStatus): `latestCreatedRevisionName` "might not
 * be ready yet, for that use LatestReadyRevisionName"; Ready is "True when all underlying resources are
 * ready". A revision that fails (fake.revisionFailures, e.g. a container that never listens) leaves Ready
 * False with the revision's message ("Revision 'X' is not ready and cannot serve traffic. The
 * user-provided container failed to start and listen on the port defined provided by the PORT=8080
 * environment variable ...", as in googlecodelabs/monolith-to-microservices#110).
 *
 * "When you deploy to a service or change the configuration of a service, an immutable revision is
 * created" (run/docs/managing/revisions): a write that changes only `spec.traffic` (what `gcloud run
 * services update-traffic` sends) creates none. Traffic follows `spec.traffic`: a target with
 * `latestRevision: true` is "the latest ready Revision" (TrafficTarget, Admin API v1), so a failed new
 * revision leaves it on the last ready one; a target naming a revision pins it (a rollback, run/docs/
 * rollouts-rollbacks-traffic-migration).
 */
function withStatus(
  fake: FakeGcp,
  project: string,
  body: ApiJson,
  generation: number,
  existing: ApiJson,
): ApiJson {
  const name = body.metadata.name
  const trafficOnly =
    existing !== undefined &&
    JSON.stringify(existing.spec?.template) === JSON.stringify(body.spec?.template) &&
    JSON.stringify(existing.spec?.traffic) !== JSON.stringify(body.spec?.traffic)
  let revision: string = existing?.status?.latestCreatedRevisionName
  let lastReady: string | undefined = existing?.status?.latestReadyRevisionName
  let failure: string | undefined
  let message: string | undefined
  if (!trafficOnly) {
    revision = `${name}-${String(generation).padStart(5, '0')}-abc`
    failure = fake.revisionFailures.shift()
    if (!failure) lastReady = revision
    message = failure && `Revision '${revision}' is not ready and cannot serve traffic. ${failure}`
    fake.resources.set(`run-rev:${project}/${revision}`, {
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Revision',
      metadata: {
        name: revision,
        namespace: project,
        labels: {
          'serving.knative.dev/service': name,
          'serving.knative.dev/configuration': name,
          'serving.knative.dev/configurationGeneration': String(generation),
        },
        annotations: body.spec?.template?.metadata?.annotations ?? {},
        creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, generation)).toISOString(),
        generation: 1,
      },
      spec: body.spec?.template?.spec ?? {},
      status: {
        conditions: [
          failure
            ? { type: 'Ready', status: 'False', reason: 'HealthCheckContainerError', message }
            : { type: 'Ready', status: 'True' },
        ],
      },
    })
  } else {
    const ready = (existing.status?.conditions ?? []).find((c: ApiJson) => c.type === 'Ready')
    if (ready?.status === 'False') {
      failure = ready.message
      message = ready.message
    }
  }
  const condition = (type: string, ok: boolean) =>
    ok ? { type, status: 'True' } : { type, status: 'False', reason: 'HealthCheckContainerError', message }
  const disabled = body.metadata.annotations?.['run.googleapis.com/default-url-disabled'] === 'true'
  const url = disabled ? {} : { url: `https://${name}-${fake.projectNumber}.run.app` }
  const targets: ApiJson[] = body.spec.traffic
  const traffic = targets.flatMap((t) => {
    const to = t.latestRevision ? lastReady : t.revisionName
    return to
      ? [{ revisionName: to, percent: t.percent, ...(t.latestRevision ? { latestRevision: true } : {}) }]
      : []
  })
  return {
    ...body,
    metadata: { ...body.metadata, generation, uid: `uid-${name}` },
    status: {
      observedGeneration: generation,
      conditions: [
        condition('Ready', !failure),
        condition('ConfigurationsReady', !failure),
        condition('RoutesReady', Boolean(lastReady)),
      ],
      ...(lastReady ? { latestReadyRevisionName: lastReady } : {}),
      latestCreatedRevisionName: revision,
      ...url,
      ...(disabled ? {} : { address: url }),
      traffic,
    },
  }
}

function save(fake: FakeGcp, project: string, body: ApiJson, existing: ApiJson): Reply {
  const problem = invalid(body.spec) ?? launchStageProblem(body)
  if (problem) return badRequest(problem)
  const sa = body.spec?.template?.spec?.serviceAccountName
  if (sa && !fake.resources.has(`iam-sa:${sa}`)) return badRequest(`service account ${sa} does not exist`)
  // Deploying as a service account needs iam.serviceAccounts.actAs on it (run/docs/configuring/services/
  // service-identity: the deployer needs Service Account User on the service identity).
  const denied = sa && actAsDenied(fake, sa)
  if (denied) return denied
  // "If traffic is empty or not provided, defaults to 100% traffic to the latest Ready Revision"
  // (Cloud Run Admin API v1, ServiceSpec.traffic); gcloud's update-traffic reads it back and refuses a
  // service whose traffic does not add up to 100.
  if (!body.spec.traffic?.length) body.spec.traffic = [{ latestRevision: true, percent: 100 }]
  const generation = (existing?.metadata?.generation ?? 0) + 1
  const stored = withStatus(fake, project, body, generation, existing)
  fake.resources.set(`run:${project}/${body.metadata.name}`, stored)
  return { status: 200, body: stored }
}

const REV = '^/apis/serving.knative.dev/v1/namespaces/([^/]+)/revisions'

export function runRoutes(): Route[] {
  return [
    {
      // `gcloud run revisions list --service=S` selects by the service label (Knative labelSelector).
      method: 'GET',
      re: new RegExp(`${REV}$`),
      handle: ({ fake, m, query }) => {
        const service = /serving\.knative\.dev\/service=([^,]+)/.exec(query.labelSelector ?? '')?.[1]
        const items = [...fake.resources]
          .filter(
            ([k, v]) =>
              k.startsWith(`run-rev:${m[1]}/`) &&
              (!service || v.metadata.labels['serving.knative.dev/service'] === service),
          )
          .map(([, v]) => v)
        return {
          status: 200,
          body: { apiVersion: 'serving.knative.dev/v1', kind: 'RevisionList', metadata: {}, items },
        }
      },
    },
    {
      method: 'GET',
      re: new RegExp(`${REV}/([^/]+)$`),
      handle: ({ fake, m }) => found(fake.resources.get(`run-rev:${m[1]}/${m[2]}`), `revision ${m[2]}`),
    },
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
        // A service's revisions go with it (run/docs/managing/revisions: revisions belong to a service).
        for (const [k, v] of [...fake.resources]) {
          if (k.startsWith(`run-rev:${m[1]}/`) && v.metadata.labels['serving.knative.dev/service'] === m[2])
            fake.resources.delete(k)
        }
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

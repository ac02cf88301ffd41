// The Cloud Run multi-container service (Knative v1), built from the config and the values learned on
// the way (audience, the applied database password version). The gateway is the only container with a
// port; the app is a sidecar on 127.0.0.1 that the gateway waits for (container-dependencies + the
// app's startup probe).
import { stringify } from 'yaml'
import type { DeployConfig } from './config.ts'
import { GATEWAY_PORT, gatewayEnv } from './gateway-env.ts'

export const GATEWAY_CONTAINER = 'gateway'
export { GATEWAY_PORT }

export interface ServiceValues {
  gatewayImage: string
  appImage: string
  serviceAccount: string
  /** `/projects/NUMBER/global/backendServices/ID`: known before the service is first created (see docs/deploy.md). */
  audience: string
  /** The password secret's version the SQL user was last set to: the one the app must read. */
  databasePasswordVersion?: string
}

/** Annotations Google owns on read: never compared, so a value Google rewrites is not drift. */
export const READ_BACK_BY_GOOGLE = ['run.googleapis.com/launch-stage']

/** `PROJECT:REGION:INSTANCE`, the name Cloud Run's built-in Cloud SQL connection and its socket use. */
export function instanceConnectionName(c: DeployConfig): string {
  return `${c.project}:${c.region}:${c.database.instance}`
}

/** Where Cloud Run mounts the instance's socket folder (`.s.PGSQL.5432` inside). */
export function cloudSqlSocketDir(c: DeployConfig): string {
  return `/cloudsql/${instanceConnectionName(c)}`
}

type Env = { name: string; value: string }[]

interface HttpProbe {
  httpGet: { path: string; port: number }
  periodSeconds: number
  timeoutSeconds: number
  failureThreshold: number
}

interface Container {
  name: string
  image: string
  args?: string[]
  /** Only the ingress container has one: Cloud Run routes requests to it. */
  ports?: { name: string; containerPort: number }[]
  env: Env
  resources: { limits: { cpu: string; memory: string } }
  startupProbe: HttpProbe
  livenessProbe?: HttpProbe
}

/** The Knative v1 Service the deploy writes (`run services replace`), as far as it sets fields. */
export interface Service {
  apiVersion: 'serving.knative.dev/v1'
  kind: 'Service'
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> }
  spec: {
    template: {
      metadata: { annotations: Record<string, string> }
      spec: {
        serviceAccountName: string
        timeoutSeconds: number
        containers: [gateway: Container, app: Container]
      }
    }
  }
}

export function imageRef(c: DeployConfig, image: string, tag: string): string {
  return `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${image}:${tag}`
}

export function secretRef(c: DeployConfig, secret: string, version?: string): string {
  return `sm://${c.project}/${secret}${version ? `#${version}` : ''}`
}

function appEnv(c: DeployConfig, v: ServiceValues): Env {
  const env: Record<string, string> = {}
  if (c.app.preset === 'flowise') {
    // Flowise listens on 3000 by default; PORT is left to Cloud Run unless the config moves the app.
    env.HOST = '127.0.0.1'
    if (c.app.port !== 3000) env.PORT = String(c.app.port)
  }
  if (c.database.enabled) {
    Object.assign(env, {
      DATABASE_TYPE: 'postgres',
      // Cloud Run's built-in Cloud SQL connection: a Unix socket under /cloudsql/, served by the Cloud SQL
      // Auth Proxy inside Cloud Run, which authorises with the service account (roles/cloudsql.client)
      // and reaches the instance over mTLS that verifies the server (cloud.google.com/sql/docs/postgres/
      // connect-run; configure-ssl-instance: "connections are automatically encrypted"). node-postgres,
      // which Flowise's DataSource.js feeds DATABASE_HOST/PORT, takes a host starting with "/" as the
      // socket folder and connects to `${host}/.s.PGSQL.${port}`. No DATABASE_SSL: TLS is the proxy's job
      // (with DATABASE_SSL_KEY_BASE64 and no DATABASE_REJECT_UNAUTHORIZED Flowise verified nothing).
      DATABASE_HOST: cloudSqlSocketDir(c),
      DATABASE_PORT: '5432',
      DATABASE_NAME: c.database.name,
      DATABASE_USER: c.database.user,
      // Pinned to the version the SQL user has: a version added later is not read until it is applied.
      DATABASE_PASSWORD: secretRef(c, c.database.passwordSecret, v.databasePasswordVersion),
    })
  }
  if (c.storage.enabled) {
    Object.assign(env, {
      STORAGE_TYPE: 'gcs',
      GOOGLE_CLOUD_STORAGE_BUCKET_NAME: c.storage.bucket,
      GOOGLE_CLOUD_STORAGE_PROJ_ID: c.project,
      // Flowise 3.1.4's GCS provider passes `Boolean(process.env.GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS) ?? true`
      // to multer-cloud-storage, which is false when unset and then uploads with predefinedAcl=private; the
      // bucket has uniform bucket-level access, where GCS refuses any legacy ACL (400 "Cannot insert legacy
      // ACL for an object when uniform bucket-level access is enabled"). Any non-empty value is true there.
      GOOGLE_CLOUD_UNIFORM_BUCKET_ACCESS: 'true',
    })
  }
  for (const s of c.app.secrets) env[s.env] = secretRef(c, s.secret)
  Object.assign(env, c.app.env)
  return Object.entries(env).map(([name, value]) => ({ name, value }))
}

export function serviceObject(c: DeployConfig, v: ServiceValues): Service {
  const templateAnnotations: Record<string, string> = {
    'run.googleapis.com/container-dependencies': JSON.stringify({ [GATEWAY_CONTAINER]: [c.app.container] }),
    'autoscaling.knative.dev/maxScale': String(c.maxInstances),
    'run.googleapis.com/startup-cpu-boost': 'true',
    'run.googleapis.com/execution-environment': 'gen2',
  }
  if (c.minInstances > 0) templateAnnotations['autoscaling.knative.dev/minScale'] = String(c.minInstances)
  if (c.database.enabled) {
    // The built-in connection's proxy falls back to the private IP when the instance has no public one
    // (GoogleCloudPlatform/cloud-sql-proxy#848, a maintainer): the revision needs a path into the VPC.
    templateAnnotations['run.googleapis.com/cloudsql-instances'] = instanceConnectionName(c)
    templateAnnotations['run.googleapis.com/network-interfaces'] = JSON.stringify([
      { network: c.network.name, subnetwork: c.network.subnet },
    ])
    templateAnnotations['run.googleapis.com/vpc-access-egress'] = 'private-ranges-only'
  }
  const period = 10
  const app: Container = {
    name: c.app.container,
    image: v.appImage,
    ...(c.app.args.length > 0 ? { args: c.app.args } : {}),
    env: appEnv(c, v),
    resources: { limits: { cpu: c.app.cpu, memory: c.app.memory } },
    startupProbe: {
      httpGet: { path: c.app.healthPath, port: c.app.port },
      periodSeconds: period,
      timeoutSeconds: 5,
      failureThreshold: Math.ceil(c.app.startupSeconds / period),
    },
  }
  const gateway: Container = {
    name: GATEWAY_CONTAINER,
    image: v.gatewayImage,
    ports: [{ name: 'http1', containerPort: GATEWAY_PORT }],
    env: Object.entries(gatewayEnv(c, v.audience)).map(([name, value]) => ({ name, value })),
    resources: { limits: { cpu: c.gateway.cpu, memory: c.gateway.memory } },
    startupProbe: {
      httpGet: { path: '/_gateway/healthz', port: GATEWAY_PORT },
      periodSeconds: 2,
      timeoutSeconds: 2,
      failureThreshold: 30,
    },
    livenessProbe: {
      httpGet: { path: '/_gateway/healthz', port: GATEWAY_PORT },
      periodSeconds: 15,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
  }
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: {
      name: c.name,
      labels: { 'managed-by': 'iap-gateway-deploy' },
      annotations: {
        // Only the load balancer (and so IAP and Cloud Armor) can reach the service.
        'run.googleapis.com/ingress': 'internal-and-cloud-load-balancing',
        // No run.app URL at all (cloud.google.com/run/docs/triggering/https-request#disable-url). gcloud 528
        // offers --no-default-url only in its beta track, which also declares the BETA launch stage; Cloud
        // Run refuses a preview feature without it ("The feature ... is not supported in the declared launch
        // stage ... should be specified at least as BETA", google-github-actions/deploy-cloudrun#35).
        'run.googleapis.com/default-url-disabled': 'true',
        'run.googleapis.com/launch-stage': 'BETA',
      },
    },
    spec: {
      template: {
        metadata: { annotations: templateAnnotations },
        spec: {
          serviceAccountName: v.serviceAccount,
          timeoutSeconds: c.timeoutSeconds,
          containers: [gateway, app],
        },
      },
    },
  }
}

export function serviceYaml(c: DeployConfig, v: ServiceValues): string {
  return stringify(serviceObject(c, v), { lineWidth: 0 })
}

/** A variable's value is never shown in a drift reason: one set by hand may be a secret. */
const ENV_VALUE = /(^|\.)env\[\d+\]\.value$/

const entries = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'}`

function shown(value: unknown): string {
  if (value === undefined) return 'unset'
  if (Array.isArray(value)) return entries(value.length)
  return typeof value === 'object' && value !== null ? 'a mapping' : String(value)
}

/**
 * Where `actual` lacks or differs from what `wanted` sets, each as `path: live X, config Y` (fields
 * only in `actual` are Google's defaults, not drift).
 */
export function differences(wanted: unknown, actual: unknown, path = ''): string[] {
  if (READ_BACK_BY_GOOGLE.some((key) => path.endsWith(`.${key}`))) return []
  const at = path || '(value)'
  if (wanted === null || typeof wanted !== 'object') {
    if (String(wanted) === String(actual)) return []
    if (ENV_VALUE.test(path)) return [`${at}: live and config differ (values not shown)`]
    return [`${at}: live ${shown(actual)}, config ${String(wanted)}`]
  }
  if (Array.isArray(wanted)) {
    if (!Array.isArray(actual) || actual.length !== wanted.length)
      return [`${at}: live ${shown(actual)}, config ${entries(wanted.length)}`]
    return wanted.flatMap((w, i) => differences(w, actual[i], `${path}[${i}]`))
  }
  if (actual === null || typeof actual !== 'object') return [`${at}: live ${shown(actual)}, config a mapping`]
  return Object.entries(wanted).flatMap(([k, w]) =>
    differences(w, (actual as Record<string, unknown>)[k], path ? `${path}.${k}` : k),
  )
}

/** What the service YAML does, in the few lines a reviewer needs (`plan` prints them under the command). */
export function serviceReview(svc: Service): string[] {
  const meta = svc.metadata.annotations
  const tpl = svc.spec.template
  const a = tpl.metadata.annotations
  const lines = [
    `ingress ${meta['run.googleapis.com/ingress']}, run.app URL ${meta['run.googleapis.com/default-url-disabled'] === 'true' ? 'disabled' : 'enabled'}`,
    `runs as ${tpl.spec.serviceAccountName}, at most ${a['autoscaling.knative.dev/maxScale']} instance(s), requests up to ${tpl.spec.timeoutSeconds} s`,
  ]
  for (const c of tpl.spec.containers) {
    const port = c.ports?.[0]?.containerPort
    const secrets = c.env.filter((e) => e.value.startsWith('sm://')).map((e) => `${e.name}=${e.value}`)
    lines.push(
      `container ${c.name}: ${c.image}${port ? ` (the only port: ${port})` : ''}${secrets.length ? `; secrets ${secrets.join(', ')}` : ''}`,
    )
  }
  if (a['run.googleapis.com/cloudsql-instances'])
    lines.push(`Cloud SQL ${a['run.googleapis.com/cloudsql-instances']} through /cloudsql/ (IAM + mTLS)`)
  return lines.map((l) => `service-yaml: ${l}`)
}

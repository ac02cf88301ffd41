// The Cloud Run multi-container service (Knative v1), built from the config and the values learned on
// the way (audience, database address). The gateway is the only container with a port; the app is a
// sidecar on 127.0.0.1 that the gateway waits for (container-dependencies + the app's startup probe).
import { stringify } from 'yaml'
import type { DeployConfig } from './config.ts'

export const GATEWAY_CONTAINER = 'gateway'
export const GATEWAY_PORT = 8080

export interface ServiceValues {
  gatewayImage: string
  appImage: string
  serviceAccount: string
  /** `/projects/NUMBER/global/backendServices/ID`: known before the service is first created (see docs/deploy.md). */
  audience: string
  databaseHost?: string
  /** The instance's server CA (public), base64, for Flowise's DATABASE_SSL_KEY_BASE64. */
  databaseCaBase64?: string
}

type Env = { name: string; value: string }[]

export function imageRef(c: DeployConfig, image: string, tag: string): string {
  return `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${image}:${tag}`
}

export function secretRef(c: DeployConfig, secret: string): string {
  return `sm://${c.project}/${secret}`
}

function gatewayEnv(c: DeployConfig, v: ServiceValues): Env {
  const env: Record<string, string> = {
    HOST: '0.0.0.0',
    UPSTREAM_URL: `http://127.0.0.1:${c.app.port}`,
    ALLOWED_CIDRS: c.allowedCidrs.join(','),
    TRUST_PROXY_HOPS: String(c.trustProxyHops),
    UPSTREAM_TIMEOUT_MS: String(c.gateway.upstreamTimeoutMs),
    SHUTDOWN_GRACE_MS: String(c.gateway.shutdownGraceMs),
    LOG_LEVEL: c.gateway.logLevel,
    ACCESS_LOG: 'true',
    IAP_AUDIENCE: v.audience,
    GOOGLE_CLOUD_PROJECT: c.project,
  }
  if (c.allowedEmails.length > 0) env.ALLOWED_EMAILS = c.allowedEmails.join(',')
  if (c.allowedDomains.length > 0) env.ALLOWED_DOMAINS = c.allowedDomains.join(',')
  return Object.entries(env).map(([name, value]) => ({ name, value }))
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
      DATABASE_HOST: v.databaseHost ?? '',
      DATABASE_PORT: '5432',
      DATABASE_NAME: c.database.name,
      DATABASE_USER: c.database.user,
      DATABASE_PASSWORD: secretRef(c, c.database.passwordSecret),
      // Cloud SQL enforces TLS (ENCRYPTED_ONLY). Flowise takes the instance CA here; see docs/deploy.md.
      DATABASE_SSL: 'true',
      DATABASE_SSL_KEY_BASE64: v.databaseCaBase64 ?? '',
    })
  }
  if (c.storage.enabled) {
    Object.assign(env, {
      STORAGE_TYPE: 'gcs',
      GOOGLE_CLOUD_STORAGE_BUCKET_NAME: c.storage.bucket,
      GOOGLE_CLOUD_STORAGE_PROJ_ID: c.project,
    })
  }
  for (const s of c.app.secrets) env[s.env] = secretRef(c, s.secret)
  Object.assign(env, c.app.env)
  return Object.entries(env).map(([name, value]) => ({ name, value }))
}

export function serviceObject(c: DeployConfig, v: ServiceValues): Record<string, any> {
  const templateAnnotations: Record<string, string> = {
    'run.googleapis.com/container-dependencies': JSON.stringify({ [GATEWAY_CONTAINER]: [c.app.container] }),
    'autoscaling.knative.dev/maxScale': String(c.maxInstances),
    'run.googleapis.com/startup-cpu-boost': 'true',
    'run.googleapis.com/execution-environment': 'gen2',
  }
  if (c.minInstances > 0) templateAnnotations['autoscaling.knative.dev/minScale'] = String(c.minInstances)
  if (c.database.enabled) {
    templateAnnotations['run.googleapis.com/network-interfaces'] = JSON.stringify([
      { network: c.network.name, subnetwork: c.network.subnet },
    ])
    templateAnnotations['run.googleapis.com/vpc-access-egress'] = 'private-ranges-only'
  }
  const period = 10
  const app: Record<string, any> = {
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
  const gateway = {
    name: GATEWAY_CONTAINER,
    image: v.gatewayImage,
    ports: [{ name: 'http1', containerPort: GATEWAY_PORT }],
    env: gatewayEnv(c, v),
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

/** Paths where `actual` lacks or differs from what `wanted` sets (extra fields in `actual` are Google's defaults). */
export function differences(wanted: unknown, actual: unknown, path = ''): string[] {
  if (wanted === null || typeof wanted !== 'object') {
    return String(wanted) === String(actual) ? [] : [path || '(value)']
  }
  if (Array.isArray(wanted)) {
    if (!Array.isArray(actual) || actual.length !== wanted.length) return [path]
    return wanted.flatMap((w, i) => differences(w, actual[i], `${path}[${i}]`))
  }
  if (actual === null || typeof actual !== 'object') return [path]
  return Object.entries(wanted).flatMap(([k, w]) =>
    differences(w, (actual as Record<string, unknown>)[k], path ? `${path}.${k}` : k),
  )
}

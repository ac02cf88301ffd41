// A correct deployment of cannedConfig() as gcloud prints it (--format=json): each check's test changes
// one answer. The shapes are Google's resources (Knative v1 Service as Cloud Run Admin API v1 returns it,
// compute v1 BackendService / SecurityPolicy / TargetHttpsProxy / SslPolicy / SslCertificate, Cloud SQL
// Admin DatabaseInstance, Secret Manager SecretVersion, IAM Policy, Logging v2 LogMetric, Monitoring v3
// AlertPolicy), with the fields deploy/doctor/reads.ts declares; docs/fake-gcp.md cites the same sources.
import type { GcloudResult } from '../../../deploy/gcloud.ts'
import { alertPolicyName, logMetrics } from '../../../deploy/steps/monitoring.ts'
import { type Answers, cannedConfig, json } from '../canned-gcloud.ts'

export const config = cannedConfig()
export const NUMBER = '123456789012'
const SA = 'fw-run@demo-project.iam.gserviceaccount.com'
export const IAP_AGENT = `serviceAccount:service-${NUMBER}@gcp-sa-iap.iam.gserviceaccount.com`
const COMPUTE = 'https://www.googleapis.com/compute/v1/projects/demo-project/global'
const SECRET = 'fw-jwt-auth-token-secret'

/** The argv of each read, as deploy/doctor/reads.ts builds it (without the runner's flags). */
export const READ = {
  project: 'projects describe demo-project',
  projectPolicy: 'projects get-iam-policy demo-project',
  service: 'run services describe fw --region=europe-west1',
  servicePolicy: 'run services get-iam-policy fw --region=europe-west1',
  backend: 'compute backend-services describe fw-backend --global',
  iapPolicy: 'iap web get-iam-policy --resource-type=backend-services --service=fw-backend',
  armor: 'compute security-policies describe fw-armor',
  httpsProxy: 'compute target-https-proxies describe fw-https-proxy --global',
  sslPolicy: 'compute ssl-policies describe fw-ssl-policy --global',
  certificate: 'compute ssl-certificates describe fw-cert --global',
  sql: 'sql instances describe fw-db',
  secretVersion: `secrets versions describe 1 --secret=${SECRET}`,
  secretPolicy: `secrets get-iam-policy ${SECRET}`,
  alertPolicies: 'alpha monitoring policies list',
  metric: (name: string) => `logging metrics describe ${name}`,
} as const

export interface Env {
  name: string
  value?: string
}

export function service(gatewayEnv: Env[] = gateway(), appEnv: Env[] = app()) {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: {
      name: 'fw',
      annotations: {
        'run.googleapis.com/ingress': 'internal-and-cloud-load-balancing',
        'run.googleapis.com/default-url-disabled': 'true',
      },
    },
    spec: {
      template: {
        spec: {
          serviceAccountName: SA,
          containers: [
            {
              name: 'gateway',
              image: 'europe-west1-docker.pkg.dev/demo-project/fw/gateway:0.1.0',
              env: gatewayEnv,
            },
            {
              name: 'flowise',
              image: 'europe-west1-docker.pkg.dev/demo-project/fw/flowise:3.1.4',
              env: appEnv,
            },
          ],
        },
      },
    },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      latestCreatedRevisionName: 'fw-00001-abc',
      latestReadyRevisionName: 'fw-00001-abc',
      traffic: [{ revisionName: 'fw-00001-abc', percent: 100, latestRevision: true }],
    },
  }
}

export function gateway(): Env[] {
  return [
    { name: 'IAP_AUDIENCE', value: `/projects/${NUMBER}/global/backendServices/4242` },
    { name: 'ALLOWED_CIDRS', value: '198.51.100.0/24' },
    { name: 'TRUST_PROXY_HOPS', value: '2' },
  ]
}

export function app(): Env[] {
  return [
    { name: 'JWT_AUTH_TOKEN_SECRET', value: `sm://demo-project/${SECRET}#1` },
    { name: 'DATABASE_TYPE', value: 'postgres' },
  ]
}

const policy = (role: string, members: string[]) => ({
  bindings: [{ role, members }],
  etag: 'BwYAAA==',
  version: 1,
})

export function sql() {
  return {
    name: 'fw-db',
    ipAddresses: [{ type: 'PRIVATE', ipAddress: '10.20.0.3' }],
    settings: {
      ipConfiguration: { ipv4Enabled: false, sslMode: 'ENCRYPTED_ONLY' },
      backupConfiguration: {
        enabled: true,
        pointInTimeRecoveryEnabled: true,
        backupRetentionSettings: { retainedBackups: 14 },
        transactionLogRetentionDays: 7,
      },
      deletionProtectionEnabled: true,
    },
  }
}

/** Every read a correct deployment answers, with `changes` in place of some. */
export function live(changes: Partial<Answers> = {}): Answers {
  const answers: Answers = {
    [READ.project]: json({ projectId: 'demo-project', projectNumber: NUMBER, lifecycleState: 'ACTIVE' }),
    [READ.projectPolicy]: json({
      bindings: [
        { role: 'roles/logging.logWriter', members: [`serviceAccount:${SA}`] },
        { role: 'roles/cloudsql.client', members: [`serviceAccount:${SA}`] },
        { role: 'roles/aiplatform.user', members: [`serviceAccount:${SA}`] },
        { role: 'roles/owner', members: ['user:owner@example.com'] },
      ],
    }),
    [READ.service]: json(service()),
    [READ.servicePolicy]: json(policy('roles/run.invoker', [IAP_AGENT])),
    [READ.backend]: json({
      id: '4242',
      name: 'fw-backend',
      securityPolicy: `${COMPUTE}/securityPolicies/fw-armor`,
      iap: { enabled: true },
    }),
    [READ.iapPolicy]: json(policy('roles/iap.httpsResourceAccessor', ['user:alice@example.com'])),
    // gcloud 528 prints this describe as a one-element list (deploy/doctor/invariant.ts, one()).
    [READ.armor]: json([
      {
        name: 'fw-armor',
        rules: [
          { priority: 1000, action: 'allow', match: { config: { srcIpRanges: ['198.51.100.0/24'] } } },
          { priority: 2147483647, action: 'deny(403)', match: { config: { srcIpRanges: ['*'] } } },
        ],
      },
    ]),
    [READ.httpsProxy]: json({ name: 'fw-https-proxy', sslPolicy: `${COMPUTE}/sslPolicies/fw-ssl-policy` }),
    [READ.sslPolicy]: json({ name: 'fw-ssl-policy', profile: 'MODERN', minTlsVersion: 'TLS_1_2' }),
    [READ.certificate]: json({
      name: 'fw-cert',
      type: 'MANAGED',
      managed: {
        status: 'ACTIVE',
        domains: ['flowise.example.com'],
        domainStatus: { 'flowise.example.com': 'ACTIVE' },
      },
    }),
    [READ.sql]: json(sql()),
    [READ.secretVersion]: json({ name: `projects/${NUMBER}/secrets/${SECRET}/versions/1`, state: 'ENABLED' }),
    [READ.secretPolicy]: json(policy('roles/secretmanager.secretAccessor', [`serviceAccount:${SA}`])),
    [READ.alertPolicies]: json([
      { name: 'projects/demo-project/alertPolicies/77', displayName: alertPolicyName(config), enabled: true },
    ]),
  }
  for (const m of logMetrics(config)) answers[READ.metric(m.name)] = json({ ...m, metricDescriptor: {} })
  for (const [key, value] of Object.entries(changes)) answers[key] = value as GcloudResult
  return answers
}

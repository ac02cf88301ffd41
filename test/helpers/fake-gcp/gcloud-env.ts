// The environment that points the real gcloud at the fake: a scratch config folder, a dummy token,
// per-API endpoint overrides, and gcloud's proxy setting for Cloud Run's region-prefixed host.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testCa } from './tls-mitm.ts'

// gcloud appends the API version to most overrides itself; Compute and Storage want it in the base.
const BASES: Record<string, string> = {
  COMPUTE: 'compute/v1/',
  SECRETMANAGER: 'secretmanager/',
  SQL: '',
  IAP: 'iap/',
  SERVICEUSAGE: 'serviceusage/',
  SERVICENETWORKING: 'servicenetworking/',
  IAM: 'iam/',
  CLOUDRESOURCEMANAGER: 'cloudresourcemanager/',
  ARTIFACTREGISTRY: 'artifactregistry/',
  STORAGE: 'storage/v1/',
  CLOUDBUILD: 'cloudbuild/',
  LOGGING: 'logging/',
  MONITORING: 'monitoring/',
}

export function gcloudEnv(
  port: number,
  dir = mkdtempSync(join(tmpdir(), 'fake-gcloud-')),
): Record<string, string> {
  const tokenFile = join(dir, 'token')
  writeFileSync(tokenFile, 'fake-access-token')
  const env: Record<string, string> = {
    CLOUDSDK_CONFIG: join(dir, 'config'),
    CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: tokenFile,
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: 'http://run.fake/',
    CLOUDSDK_PROXY_TYPE: 'http',
    CLOUDSDK_PROXY_ADDRESS: '127.0.0.1',
    CLOUDSDK_PROXY_PORT: String(port),
    CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE: testCa().caFile,
  }
  for (const [api, path] of Object.entries(BASES)) {
    env[`CLOUDSDK_API_ENDPOINT_OVERRIDES_${api}`] = `http://127.0.0.1:${port}/${path}`
  }
  return env
}

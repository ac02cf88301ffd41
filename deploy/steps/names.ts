// Every resource name derived from the config's `name`, in one place so steps and docs agree.
import type { DeployConfig } from '../config.ts'

export function names(c: DeployConfig) {
  const n = c.name
  return {
    serviceAccount: `${n}-run@${c.project}.iam.gserviceaccount.com`,
    serviceAccountId: `${n}-run`,
    buildServiceAccount: `${n}-build@${c.project}.iam.gserviceaccount.com`,
    buildServiceAccountId: `${n}-build`,
    /** Where `gcloud builds submit` stages the sources the build service account reads. */
    sourceBucket: `${c.project}-${n}-build-src`,
    service: n,
    psaRange: `${n}-psa-range`,
    armor: `${n}-armor`,
    backend: `${n}-backend`,
    neg: `${n}-neg`,
    address: `${n}-ip`,
    cert: `${n}-cert`,
    urlMap: `${n}-urlmap`,
    redirectMap: `${n}-http-redirect`,
    httpsProxy: `${n}-https-proxy`,
    httpProxy: `${n}-http-proxy`,
    httpsRule: `${n}-https-rule`,
    httpRule: `${n}-http-rule`,
    addressV6: `${n}-ipv6`,
    httpsRuleV6: `${n}-https-rule-v6`,
    httpRuleV6: `${n}-http-rule-v6`,
    sslPolicy: `${n}-ssl-policy`,
  }
}

export function member(c: DeployConfig): string {
  return `serviceAccount:${names(c).serviceAccount}`
}

export function buildMember(c: DeployConfig): string {
  return `serviceAccount:${names(c).buildServiceAccount}`
}

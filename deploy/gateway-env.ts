// The one contract between the deploy and the gateway: the environment the deploy writes into the
// gateway container, checked with the gateway's own configuration code (proxy/config.ts) at plan time.
// A value the gateway would refuse at start stops `plan` instead, and the error names the deploy field
// the value came from, not the environment variable the user never wrote.
import { loadConfig } from '../proxy/config.ts'
import type { DeployConfig } from './config.ts'

export const GATEWAY_PORT = 8080

/** Which deploy field each gateway variable comes from (or that the deploy sets it itself). */
export const GATEWAY_ENV_FIELDS: Readonly<Record<string, string>> = Object.freeze({
  HOST: 'the deploy (HOST)',
  ACCESS_LOG: 'the deploy (ACCESS_LOG)',
  IAP_AUDIENCE: 'the deploy (IAP_AUDIENCE)',
  UPSTREAM_URL: 'app.port',
  ALLOWED_CIDRS: 'allowedCidrs',
  TRUST_PROXY_HOPS: 'trustProxyHops',
  UPSTREAM_TIMEOUT_MS: 'gateway.upstreamTimeoutMs',
  SHUTDOWN_GRACE_MS: 'gateway.shutdownGraceMs',
  LOG_LEVEL: 'gateway.logLevel',
  GOOGLE_CLOUD_PROJECT: 'project',
  ALLOWED_EMAILS: 'allowedEmails',
  ALLOWED_DOMAINS: 'allowedDomains',
})

/** The gateway's environment, in the order it appears in the service YAML. */
export function gatewayEnv(c: DeployConfig, audience: string): Record<string, string> {
  const env: Record<string, string> = {
    HOST: '0.0.0.0',
    UPSTREAM_URL: `http://127.0.0.1:${c.app.port}`,
    ALLOWED_CIDRS: c.allowedCidrs.join(','),
    TRUST_PROXY_HOPS: String(c.trustProxyHops),
    UPSTREAM_TIMEOUT_MS: String(c.gateway.upstreamTimeoutMs),
    SHUTDOWN_GRACE_MS: String(c.gateway.shutdownGraceMs),
    LOG_LEVEL: c.gateway.logLevel,
    ACCESS_LOG: 'true',
    IAP_AUDIENCE: audience,
    GOOGLE_CLOUD_PROJECT: c.project,
  }
  if (c.allowedEmails.length > 0) env.ALLOWED_EMAILS = c.allowedEmails.join(',')
  if (c.allowedDomains.length > 0) env.ALLOWED_DOMAINS = c.allowedDomains.join(',')
  return env
}

// The audience is only known once the backend service exists; its shape is what the gateway checks.
const AUDIENCE_STAND_IN = '/projects/1/global/backendServices/1'

/**
 * The gateway's verdict on the environment this config renders, as deploy-config problems
 * (`trustProxyHops: not an integer between 0 and 16 (the gateway's TRUST_PROXY_HOPS check) (got "17")`).
 */
export function gatewayEnvProblems(c: DeployConfig): string[] {
  const env = gatewayEnv(c, AUDIENCE_STAND_IN)
  try {
    loadConfig(env)
    return []
  } catch (error) {
    const text = String((error as Error).message).replace(/^invalid configuration: /, '')
    // The gateway joins its problems with "; ", each starting with the variable it names.
    const names = Object.keys(env).join('|')
    return text.split(new RegExp(`; (?=(?:${names})(?:\\[\\d+\\])? ?[(:])`)).map((part) => {
      const m = /^([A-Z_]+)(\[\d+\])?(?: \((.*?)\))?: (.*)$/s.exec(part)
      /* c8 ignore next -- every problem the gateway reports has this shape (proxy/config.ts) */
      if (!m) return `gateway: ${part}`
      const [, name, index = '', value, why] = m as unknown as [
        string,
        string,
        string | undefined,
        string | undefined,
        string,
      ]
      const field = GATEWAY_ENV_FIELDS[name as string] as string
      return `${field}${index}: ${why} (the gateway's ${name} check)${value === undefined ? '' : ` (got ${JSON.stringify(value)})`}`
    })
  }
}

// Who and where: the project, region and names, the public domain, and who may reach the app (the
// network allowlist, IAP members, the gateway's own identity filters, a custom IAP OAuth client).
import ipaddr from 'ipaddr.js'
import { NAME, NAME_HINT, type Reader } from './config-reader.ts'
import type { DeployConfig, IapOAuthClient } from './config-schema.ts'

export type Access = Pick<
  DeployConfig,
  | 'project'
  | 'region'
  | 'name'
  | 'domain'
  | 'allowedCidrs'
  | 'iapMembers'
  | 'trustProxyHops'
  | 'allowedEmails'
  | 'allowedDomains'
>

const MEMBER = /^(user|group|serviceAccount):[^@\s]+@[^@\s]+\.[a-z]+$|^domain:[a-z0-9.-]+\.[a-z]+$/

function cidrs(r: Reader): string[] {
  const list = r.list('allowedCidrs')
  if (list.length === 0)
    r.problem('allowedCidrs', 'must list at least one range (an empty allowlist admits nobody)')
  return list.map((c, i) => {
    try {
      const [addr, bits] = ipaddr.parseCIDR(c)
      // Cloud Armor and the gateway both want the network address, not a host inside it.
      const network =
        addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(c) : ipaddr.IPv6.networkAddressFromCIDR(c)
      return `${network.toString()}/${bits}`
    } catch {
      r.problem(`allowedCidrs[${i}]`, 'is not an IPv4 or IPv6 range like 203.0.113.0/24', c)
      return c
    }
  })
}

function iapMembers(r: Reader): string[] {
  const members = r.list('iapMembers')
  if (members.length === 0) r.problem('iapMembers', 'must name at least one user:, group: or domain: member')
  members.forEach((m, i) => {
    if (!MEMBER.test(m)) {
      r.problem(
        `iapMembers[${i}]`,
        'must be user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN',
        m,
      )
    }
  })
  return members
}

/** The gateway reads these lists comma-separated: a comma inside one entry would split it in two. */
function commaFree(r: Reader, path: string): string[] {
  const list = r.list(path)
  list.forEach((v, i) => {
    if (v.includes(',')) r.problem(`${path}[${i}]`, 'must not contain a comma', v)
  })
  return list
}

export function access(r: Reader): Access {
  return {
    project: r.string(
      'project',
      undefined,
      /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/,
      'is not a Google Cloud project id',
    ),
    region: r.string('region', undefined, /^[a-z]+-[a-z]+[0-9]+$/, 'is not a region like europe-west1'),
    name: r.string('name', 'flowise', NAME, NAME_HINT),
    domain: r.string(
      'domain',
      undefined,
      /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/,
      'is not a DNS name',
    ),
    allowedCidrs: cidrs(r),
    iapMembers: iapMembers(r),
    // The load balancer appends "<client>,<lb>" to X-Forwarded-For (docs/deploy.md, "First login"): verify on a live
    // deployment. The upper bound is the gateway's (config.ts checks it with the gateway's own code); 0
    // would judge the address of Google's front end instead of the client's, so it is refused here.
    trustProxyHops: r.int('trustProxyHops', 2, 1, Number.MAX_SAFE_INTEGER),
    allowedEmails: commaFree(r, 'allowedEmails'),
    allowedDomains: commaFree(r, 'allowedDomains'),
  }
}

export function iapOAuthClient(r: Reader): IapOAuthClient | undefined {
  if (!r.has('iapOAuthClient')) return undefined
  return {
    clientId: r.string(
      'iapOAuthClient.clientId',
      undefined,
      /^[0-9]+-[a-z0-9]+\.apps\.googleusercontent\.com$/,
      'is not an OAuth client id like 123-abc.apps.googleusercontent.com',
    ),
    secret: r.string(
      'iapOAuthClient.secret',
      undefined,
      /^[A-Za-z0-9_-]{1,255}$/,
      'must be the id of the Secret Manager secret holding the client secret',
    ),
  }
}

// Steps 8 and 12: the rest of the external Application Load Balancer in front of the service:
// serverless NEG, reserved address (and an IPv6 one when the allowlist has IPv6 ranges), managed
// certificate, a MODERN/TLS 1.2 SSL policy, URL map, HTTPS proxy and rules, and the HTTP->HTTPS
// redirect on the same addresses.
import ipaddr from 'ipaddr.js'
import { stringify } from 'yaml'
import type { DeployConfig } from '../config.ts'
import type { BackendService } from './edge.ts'
import { names } from './names.ts'
import { cmd, type Resource, type Step } from './types.ts'

/** `compute addresses describe`: the reserved address. */
interface Address {
  address: string
}

/** `compute ssl-policies describe`. */
interface SslPolicy {
  profile?: string
  minTlsVersion?: string
}

/** `compute target-https-proxies describe`: the attached SSL policy's URL, ending /sslPolicies/NAME. */
interface HttpsProxy {
  sslPolicy?: string
}

/** `compute ssl-certificates describe` of a Google-managed certificate. */
interface ManagedCertificate {
  managed?: { status?: string; domains?: string[] }
}

/** IPv6 clients reach the load balancer only on an IPv6 address of its own (an IPv4 one serves IPv4 only). */
export function hasIpv6(c: DeployConfig): boolean {
  return c.allowedCidrs.some((range) => ipaddr.parseCIDR(range)[0].kind() === 'ipv6')
}

function compute<J = unknown>(
  id: string,
  title: string,
  kind: string,
  name: string,
  scope: string[],
  create: string[],
): Resource<J> {
  return {
    id,
    title,
    describe: () => ['compute', kind, 'describe', name, ...scope],
    create: () => [cmd(['compute', kind, 'create', name, ...scope, ...create])],
    delete: () => [cmd(['compute', kind, 'delete', name, ...scope])],
  }
}

export function redirectMapYaml(name: string): string {
  return stringify({
    name,
    defaultUrlRedirect: { httpsRedirect: true, redirectResponseCode: 'MOVED_PERMANENTLY_DEFAULT' },
  })
}

export function frontendStep(c: DeployConfig): Step {
  const n = names(c)
  const g = ['--global']
  const lb = ['--load-balancing-scheme=EXTERNAL_MANAGED']
  const neg = compute(
    'neg',
    `serverless NEG ${n.neg}`,
    'network-endpoint-groups',
    n.neg,
    [`--region=${c.region}`],
    ['--network-endpoint-type=serverless', `--cloud-run-service=${n.service}`],
  )
  const attach = [
    '--global',
    `--network-endpoint-group=${n.neg}`,
    `--network-endpoint-group-region=${c.region}`,
  ]
  const address = compute<Address>('address', `address ${n.address}`, 'addresses', n.address, g, [
    '--ip-version=IPV4',
    '--network-tier=PREMIUM',
  ])
  address.learn = (json, x) => x.facts.set('ADDRESS', String(json.address))
  address.exports = { ADDRESS: 'value(address)' }
  const addressV6 = compute<Address>(
    'address-v6',
    `IPv6 address ${n.addressV6}`,
    'addresses',
    n.addressV6,
    g,
    ['--ip-version=IPV6', '--network-tier=PREMIUM'],
  )
  addressV6.learn = (json, x) => x.facts.set('ADDRESS_V6', String(json.address))
  addressV6.exports = { ADDRESS_V6: 'value(address)' }
  addressV6.when = hasIpv6
  // Without a policy the HTTPS proxy uses Google's default, the COMPATIBLE profile with TLS 1.0 allowed
  // (load-balancing/docs/ssl-policies-concepts; CIS GCP 3.9). MODERN with at least TLS 1.2 drops 1.0/1.1.
  const sslPolicy: Resource<SslPolicy> = {
    ...compute<SslPolicy>(
      'ssl-policy',
      `SSL policy ${n.sslPolicy} (MODERN, TLS 1.2+)`,
      'ssl-policies',
      n.sslPolicy,
      g,
      ['--profile=MODERN', '--min-tls-version=1.2'],
    ),
    check: (json) => [
      ...(json.profile === 'MODERN' ? [] : [`profile: live ${json.profile ?? 'none'}, config MODERN`]),
      ...(json.minTlsVersion === 'TLS_1_2'
        ? []
        : [`minimum TLS version: live ${json.minTlsVersion ?? 'none'}, config TLS_1_2`]),
    ],
    update: () => [
      cmd([
        'compute',
        'ssl-policies',
        'update',
        n.sslPolicy,
        '--global',
        '--profile=MODERN',
        '--min-tls-version=1.2',
      ]),
    ],
  }
  const httpsProxy: Resource<HttpsProxy> = {
    ...compute<HttpsProxy>(
      'https-proxy',
      `HTTPS proxy ${n.httpsProxy}`,
      'target-https-proxies',
      n.httpsProxy,
      g,
      [`--url-map=${n.urlMap}`, `--ssl-certificates=${n.cert}`, `--ssl-policy=${n.sslPolicy}`],
    ),
    check: (json) =>
      json.sslPolicy?.endsWith(`/sslPolicies/${n.sslPolicy}`)
        ? []
        : [`SSL policy: live ${json.sslPolicy?.split('/').pop() ?? 'none'}, config ${n.sslPolicy}`],
    update: () => [
      cmd([
        'compute',
        'target-https-proxies',
        'update',
        n.httpsProxy,
        '--global',
        `--ssl-policy=${n.sslPolicy}`,
      ]),
    ],
  }
  const rule = (id: string, title: string, name: string, address: string, target: string, port: string) =>
    compute(id, title, 'forwarding-rules', name, g, [
      ...lb,
      `--address=${address}`,
      target,
      `--ports=${port}`,
    ])
  const v6 = (r: Resource) => ({ ...r, when: hasIpv6 })
  const cert = compute<ManagedCertificate>(
    'certificate',
    `managed certificate ${n.cert}`,
    'ssl-certificates',
    n.cert,
    g,
    [`--domains=${c.domain}`],
  )
  cert.learn = (json, x) => x.facts.set('CERTIFICATE_STATUS', String(json.managed?.status ?? 'unknown'))
  // A managed certificate's domains cannot change; a new domain needs a new certificate (see docs).
  cert.check = (json) => {
    const domains = json.managed?.domains ?? []
    return domains.includes(c.domain)
      ? []
      : [
          `domains: live ${domains.join(', ') || 'none'}, config ${c.domain} (a new domain needs a new certificate)`,
        ]
  }
  return {
    id: 'frontend',
    title: 'Load balancer',
    resources: [
      neg,
      {
        id: 'backend-neg',
        title: `${n.neg} as the backend of ${n.backend}`,
        describe: () => ['compute', 'backend-services', 'describe', n.backend, '--global'],
        absent: (json) =>
          !(json.backends ?? []).some((b) => b.group.endsWith(`/networkEndpointGroups/${n.neg}`)),
        create: () => [cmd(['compute', 'backend-services', 'add-backend', n.backend, ...attach])],
        delete: () => [cmd(['compute', 'backend-services', 'remove-backend', n.backend, ...attach])],
      } satisfies Resource<BackendService>,
      address,
      addressV6,
      cert,
      sslPolicy,
      compute('url-map', `URL map ${n.urlMap}`, 'url-maps', n.urlMap, g, [`--default-service=${n.backend}`]),
      httpsProxy,
      rule(
        'https-rule',
        `forwarding rule ${n.httpsRule} (443)`,
        n.httpsRule,
        n.address,
        `--target-https-proxy=${n.httpsProxy}`,
        '443',
      ),
      v6(
        rule(
          'https-rule-v6',
          `forwarding rule ${n.httpsRuleV6} (IPv6, 443)`,
          n.httpsRuleV6,
          n.addressV6,
          `--target-https-proxy=${n.httpsProxy}`,
          '443',
        ),
      ),
      {
        ...compute('redirect-map', `HTTP->HTTPS redirect ${n.redirectMap}`, 'url-maps', n.redirectMap, g, []),
        create: () => [
          cmd(['compute', 'url-maps', 'import', n.redirectMap, '--global', '--source={file:redirect-yaml}'], {
            files: { 'redirect-yaml': redirectMapYaml(n.redirectMap) },
            review: ['redirect-yaml: every request -> 301 to https:// on the same host and path'],
          }),
        ],
      },
      compute('http-proxy', `HTTP proxy ${n.httpProxy}`, 'target-http-proxies', n.httpProxy, g, [
        `--url-map=${n.redirectMap}`,
      ]),
      rule(
        'http-rule',
        `forwarding rule ${n.httpRule} (80)`,
        n.httpRule,
        n.address,
        `--target-http-proxy=${n.httpProxy}`,
        '80',
      ),
      v6(
        rule(
          'http-rule-v6',
          `forwarding rule ${n.httpRuleV6} (IPv6, 80)`,
          n.httpRuleV6,
          n.addressV6,
          `--target-http-proxy=${n.httpProxy}`,
          '80',
        ),
      ),
    ],
  }
}

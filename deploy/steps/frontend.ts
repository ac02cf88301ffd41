// Steps 8 and 12: the rest of the external Application Load Balancer in front of the service:
// serverless NEG, reserved address, managed certificate, URL map, HTTPS proxy and rule, and the
// HTTP->HTTPS redirect on the same address.
import { stringify } from 'yaml'
import type { DeployConfig } from '../config.ts'
import { names } from './names.ts'
import { cmd, type Resource, type Step } from './types.ts'

function compute(
  id: string,
  title: string,
  kind: string,
  name: string,
  scope: string[],
  create: string[],
): Resource {
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
  const address = compute('address', `address ${n.address}`, 'addresses', n.address, g, [
    '--ip-version=IPV4',
    '--network-tier=PREMIUM',
  ])
  address.learn = (json, x) => x.facts.set('ADDRESS', String(json.address))
  address.exports = { ADDRESS: 'value(address)' }
  const cert = compute('certificate', `managed certificate ${n.cert}`, 'ssl-certificates', n.cert, g, [
    `--domains=${c.domain}`,
  ])
  cert.learn = (json, x) => x.facts.set('CERTIFICATE_STATUS', String(json.managed?.status ?? 'unknown'))
  // A managed certificate's domains cannot change; a new domain needs a new certificate (see docs).
  cert.check = (json) => {
    const domains: string[] = json.managed?.domains ?? []
    return domains.includes(c.domain) ? [] : [`certificate is for ${domains.join(', ') || 'no domain'}`]
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
          !(json.backends ?? []).some((b: any) =>
            String(b.group).endsWith(`/networkEndpointGroups/${n.neg}`),
          ),
        create: () => [cmd(['compute', 'backend-services', 'add-backend', n.backend, ...attach])],
        delete: () => [cmd(['compute', 'backend-services', 'remove-backend', n.backend, ...attach])],
      },
      address,
      cert,
      compute('url-map', `URL map ${n.urlMap}`, 'url-maps', n.urlMap, g, [`--default-service=${n.backend}`]),
      compute('https-proxy', `HTTPS proxy ${n.httpsProxy}`, 'target-https-proxies', n.httpsProxy, g, [
        `--url-map=${n.urlMap}`,
        `--ssl-certificates=${n.cert}`,
      ]),
      compute('https-rule', `forwarding rule ${n.httpsRule} (443)`, 'forwarding-rules', n.httpsRule, g, [
        ...lb,
        `--address=${n.address}`,
        `--target-https-proxy=${n.httpsProxy}`,
        '--ports=443',
      ]),
      {
        ...compute('redirect-map', `HTTP->HTTPS redirect ${n.redirectMap}`, 'url-maps', n.redirectMap, g, []),
        create: () => [
          cmd(['compute', 'url-maps', 'import', n.redirectMap, '--global', '--source={file:redirect-yaml}'], {
            files: { 'redirect-yaml': redirectMapYaml(n.redirectMap) },
          }),
        ],
      },
      compute('http-proxy', `HTTP proxy ${n.httpProxy}`, 'target-http-proxies', n.httpProxy, g, [
        `--url-map=${n.redirectMap}`,
      ]),
      compute('http-rule', `forwarding rule ${n.httpRule} (80)`, 'forwarding-rules', n.httpRule, g, [
        ...lb,
        `--address=${n.address}`,
        `--target-http-proxy=${n.httpProxy}`,
        '--ports=80',
      ]),
    ],
  }
}

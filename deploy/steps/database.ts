// Step 5: private services access and Cloud SQL for PostgreSQL on a private IP with TLS enforced.
// The user's password comes from the database secret on stdin (`--prompt-for-password`), never argv;
// a label on the secret records that it was applied, so an interrupted run sets it again.
import type { DeployConfig } from '../config.ts'
import { DeployError } from '../errors.ts'
import { names } from './names.ts'
import { cmd, type Step } from './types.ts'

const APPLIED_LABEL = 'applied-to-sql-user'

function instanceFlags(c: DeployConfig): string[] {
  return [
    `--tier=${c.database.tier}`,
    '--ssl-mode=ENCRYPTED_ONLY',
    c.database.deletionProtection ? '--deletion-protection' : '--no-deletion-protection',
  ]
}

export function databaseStep(c: DeployConfig): Step {
  const n = names(c)
  const db = c.database
  return {
    id: 'database',
    title: 'Network and Cloud SQL',
    when: (cfg) => cfg.database.enabled,
    resources: [
      {
        id: 'network',
        title: `VPC network ${c.network.name}`,
        describe: () => ['compute', 'networks', 'describe', c.network.name],
        create: () => [cmd(['compute', 'networks', 'create', c.network.name, '--subnet-mode=custom'])],
        // Networks are often shared (default): never deleted by this tool.
      },
      {
        id: 'subnet',
        title: `subnet ${c.network.subnet}`,
        describe: () => [
          'compute',
          'networks',
          'subnets',
          'describe',
          c.network.subnet,
          `--region=${c.region}`,
        ],
        create: () => [
          cmd([
            'compute',
            'networks',
            'subnets',
            'create',
            c.network.subnet,
            `--network=${c.network.name}`,
            `--region=${c.region}`,
            `--range=${c.network.subnetRange}`,
          ]),
        ],
      },
      {
        id: 'psa-range',
        title: `private services range ${n.psaRange}`,
        data: true,
        describe: () => ['compute', 'addresses', 'describe', n.psaRange, '--global'],
        create: () => [
          cmd([
            'compute',
            'addresses',
            'create',
            n.psaRange,
            '--global',
            '--purpose=VPC_PEERING',
            '--prefix-length=16',
            `--network=${c.network.name}`,
          ]),
        ],
        delete: () => [cmd(['compute', 'addresses', 'delete', n.psaRange, '--global'])],
      },
      {
        id: 'psa-peering',
        title: 'private services access peering',
        data: true,
        describe: () => ['services', 'vpc-peerings', 'list', `--network=${c.network.name}`],
        absent: (json) => (json as any[]).length === 0,
        check: (json) =>
          (json as any[])[0]?.reservedPeeringRanges?.includes(n.psaRange)
            ? []
            : [`range ${n.psaRange} not peered`],
        create: () => [
          cmd(
            [
              'services',
              'vpc-peerings',
              'connect',
              '--service=servicenetworking.googleapis.com',
              `--ranges=${n.psaRange}`,
              `--network=${c.network.name}`,
            ],
            { long: true },
          ),
        ],
        update: (_x, json) => [
          cmd(
            [
              'services',
              'vpc-peerings',
              'update',
              '--service=servicenetworking.googleapis.com',
              `--ranges=${[...((json as any[])[0]?.reservedPeeringRanges ?? []), n.psaRange].join(',')}`,
              `--network=${c.network.name}`,
            ],
            { long: true },
          ),
        ],
        // A peering that also serves other ranges is shared with something else: leave it.
        delete: (_x, json) =>
          (json as any[])[0]?.reservedPeeringRanges?.length === 1
            ? [
                cmd(
                  [
                    'services',
                    'vpc-peerings',
                    'delete',
                    '--service=servicenetworking.googleapis.com',
                    `--network=${c.network.name}`,
                  ],
                  { long: true },
                ),
              ]
            : [],
      },
      {
        id: 'sql-instance',
        title: `Cloud SQL instance ${db.instance}`,
        data: true,
        describe: () => ['sql', 'instances', 'describe', db.instance],
        learn: (json, x) => {
          const ip = (json.ipAddresses ?? []).find((a: any) => a.type === 'PRIVATE')?.ipAddress
          if (ip) x.facts.set('DATABASE_HOST', ip)
          if (json.serverCaCert?.cert)
            x.facts.set('DATABASE_CA_BASE64', Buffer.from(json.serverCaCert.cert).toString('base64'))
        },
        exports: { DATABASE_HOST: 'value(ipAddresses[0].ipAddress)' },
        check: (json) => {
          const s = json.settings ?? {}
          const out: string[] = []
          if (s.tier !== db.tier) out.push(`tier is ${s.tier}`)
          if (s.ipConfiguration?.sslMode !== 'ENCRYPTED_ONLY') out.push('TLS is not enforced')
          if (Boolean(s.deletionProtectionEnabled) !== db.deletionProtection)
            out.push('deletion protection differs')
          return out
        },
        create: () => [
          cmd(
            [
              'sql',
              'instances',
              'create',
              db.instance,
              `--database-version=${db.version}`,
              `--region=${c.region}`,
              `--network=projects/${c.project}/global/networks/${c.network.name}`,
              '--no-assign-ip',
              ...instanceFlags(c),
            ],
            { long: true },
          ),
        ],
        update: () => [cmd(['sql', 'instances', 'patch', db.instance, ...instanceFlags(c)], { long: true })],
        delete: (_x, json) => {
          if (json.settings?.deletionProtectionEnabled) {
            throw new DeployError(
              'DEPLOY_ERR_REFUSED',
              `Cloud SQL instance ${db.instance} has deletion protection: set database.deletionProtection: false, run apply, then destroy --delete-data`,
            )
          }
          return [cmd(['sql', 'instances', 'delete', db.instance], { long: true })]
        },
      },
      {
        id: 'sql-database',
        title: `database ${db.name}`,
        describe: () => ['sql', 'databases', 'describe', db.name, `--instance=${db.instance}`],
        create: () => [cmd(['sql', 'databases', 'create', db.name, `--instance=${db.instance}`])],
      },
      {
        id: 'sql-user',
        title: `database user ${db.user}`,
        describe: () => ['sql', 'users', 'list', `--instance=${db.instance}`],
        absent: (json) => !(json as any[]).some((u) => u.name === db.user),
        // Created without a password; the next resource sets it from the secret.
        create: () => [cmd(['sql', 'users', 'create', db.user, `--instance=${db.instance}`])],
      },
      {
        id: 'sql-user-password',
        title: `password of ${db.user} from ${db.passwordSecret}`,
        describe: () => ['secrets', 'describe', db.passwordSecret],
        absent: (json) => json.labels?.[APPLIED_LABEL] !== db.instance,
        create: () => [
          cmd(
            ['sql', 'users', 'set-password', db.user, `--instance=${db.instance}`, '--prompt-for-password'],
            {
              stdin: { kind: 'secret', secret: db.passwordSecret },
              prompts: true,
            },
          ),
          cmd(['secrets', 'update', db.passwordSecret, `--update-labels=${APPLIED_LABEL}=${db.instance}`]),
        ],
      },
    ],
  }
}

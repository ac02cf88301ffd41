// Step 3: Secret Manager. Managed secrets are generated (CSPRNG) when absent and never overwritten;
// values reach gcloud on stdin only. The runtime service account gets secretAccessor on each secret.
import type { DeployConfig } from '../config.ts'
import { DeployError } from '../errors.ts'
import { membersOf, type Policy } from './iam.ts'
import { member } from './names.ts'
import { type Context, cmd, type Resource, type Step } from './types.ts'

const ACCESSOR = 'roles/secretmanager.secretAccessor'

export interface SecretSpec {
  secret: string
  generate: boolean
  /** The fact that carries the newest enabled version's number. */
  fact?: string
}

export function secretSpecs(c: DeployConfig): SecretSpec[] {
  const list: SecretSpec[] = []
  if (c.database.enabled)
    list.push({ secret: c.database.passwordSecret, generate: true, fact: 'DATABASE_PASSWORD_LATEST' })
  for (const s of c.app.secrets) list.push({ secret: s.secret, generate: s.generate })
  return list
}

/** One entry of `secrets versions list` (Secret Manager SecretVersion). */
interface SecretVersion {
  /** `projects/N/secrets/S/versions/3` */
  name: string
}

/** `projects/N/secrets/S/versions/3` -> `3`. */
export function versionNumber(name: string): string {
  return name.split('/').pop() as string
}

function secretResource(s: SecretSpec): Resource<SecretVersion[]> {
  return {
    id: `secret/${s.secret}`,
    title: `secret ${s.secret}`,
    data: true,
    // A secret that did not exist had no IAM policy to read; once created it has an empty one.
    affects: [`secret-access/${s.secret}`],
    // The newest enabled version only: it is the one a rotation applies (gcloud sorts, then limits).
    describe: () => [
      'secrets',
      'versions',
      'list',
      s.secret,
      '--filter=state:enabled',
      '--sort-by=~createTime',
      '--limit=1',
    ],
    // A secret without an enabled version (an interrupted create) gets one added; an existing value stays.
    check: (versions) => (versions.length === 0 ? ['no enabled version'] : []),
    ...(s.fact
      ? {
          learn: (versions: SecretVersion[], x: Context) => {
            const [newest] = versions
            if (newest) x.facts.set(s.fact as string, versionNumber(newest.name))
          },
          exports: { [s.fact]: 'value(name.basename())' },
        }
      : {}),
    create: () => {
      if (!s.generate) {
        throw new DeployError(
          'DEPLOY_ERR_REFUSED',
          `secret ${s.secret} (named in app.secrets) does not exist: create it first`,
        )
      }
      return [
        cmd(['secrets', 'create', s.secret, '--replication-policy=automatic', '--data-file=-'], {
          stdin: { kind: 'secret', secret: s.secret, generate: true },
        }),
      ]
    },
    update: () =>
      s.generate
        ? [
            cmd(['secrets', 'versions', 'add', s.secret, '--data-file=-'], {
              stdin: { kind: 'secret', secret: s.secret, generate: true },
            }),
          ]
        : [],
    delete: () => (s.generate ? [cmd(['secrets', 'delete', s.secret])] : []),
  }
}

function accessResource(s: SecretSpec): Resource<Policy> {
  return {
    id: `secret-access/${s.secret}`,
    title: `secretAccessor on ${s.secret}`,
    describe: () => ['secrets', 'get-iam-policy', s.secret],
    check: (json, x) =>
      membersOf(json, ACCESSOR).includes(member(x.config)) ? [] : ['runtime service account lacks access'],
    create: ({ config }) => [grant(config, s.secret)],
    update: ({ config }) => [grant(config, s.secret)],
  }
}

function grant(config: DeployConfig, secret: string) {
  return cmd(
    [
      'secrets',
      'add-iam-policy-binding',
      secret,
      `--member=${member(config)}`,
      `--role=${ACCESSOR}`,
      '--condition=None',
    ],
    {
      retryIam: true,
    },
  )
}

/** The custom IAP OAuth client's secret: made by the user (docs/deploy.md), only read by the deploy. */
function oauthClientSecret(secret: string): Resource<SecretVersion[]> {
  return {
    id: `oauth-client-secret/${secret}`,
    title: `IAP OAuth client secret ${secret} (iapOAuthClient.secret)`,
    readOnly: true,
    describe: () => ['secrets', 'versions', 'list', secret, '--filter=state:enabled', '--limit=1'],
    absent: (versions) => versions.length === 0,
    create: () => [],
  }
}

export function secretsStep(c: DeployConfig): Step {
  return {
    id: 'secrets',
    title: 'Secrets',
    resources: [
      ...secretSpecs(c).flatMap((s) => [secretResource(s), accessResource(s)]),
      ...(c.iapOAuthClient ? [oauthClientSecret(c.iapOAuthClient.secret)] : []),
    ],
  }
}

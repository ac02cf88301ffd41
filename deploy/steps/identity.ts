// Step 2: the two service accounts and their project-level roles. The runtime account runs the Cloud Run
// service (log writer, and the app's own roles, e.g. Vertex AI user for Flowise); the build account runs
// the Cloud Build builds. Secret, bucket and repository access is granted per resource in their steps.
//
// Why a build account of our own: since July 2024, builds in new projects may run as the Compute Engine
// default service account, which new organisations no longer make an Editor, so builds lack permissions
// (cloud.google.com/build/docs/cloud-build-service-account-updates; functions/docs/securing/build-custom-sa).
// A user-specified build account needs exactly: logging.logWriter (logs in Cloud Logging), write on the
// repository it pushes to, and read on the bucket its sources are staged in.
import type { DeployConfig } from '../config.ts'
import { membersOf, type Policy } from './iam.ts'
import { buildMember, member, names } from './names.ts'
import { cmd, type Resource, type Step } from './types.ts'

const LOG_WRITER = 'roles/logging.logWriter'

interface Identity {
  key: 'run' | 'build'
  title: string
  email: (c: DeployConfig) => string
  accountId: (c: DeployConfig) => string
  member: (c: DeployConfig) => string
  displayName: (c: DeployConfig) => string
  roles: (c: DeployConfig) => string[]
}

const RUNTIME: Identity = {
  key: 'run',
  title: 'runtime service account',
  email: (c) => names(c).serviceAccount,
  accountId: (c) => names(c).serviceAccountId,
  member,
  displayName: (c) => `${c.name} Cloud Run runtime (iap-gateway deploy)`,
  roles: (c) => runtimeRoles(c),
}

/** Every project role the runtime account holds, and `doctor` checks it holds no other. */
export function runtimeRoles(c: DeployConfig): string[] {
  // The built-in Cloud SQL connection authorises as the runtime account (sql/docs/postgres/connect-run).
  return [LOG_WRITER, ...(c.database.enabled ? ['roles/cloudsql.client'] : []), ...c.app.projectRoles]
}

const BUILD: Identity = {
  key: 'build',
  title: 'build service account',
  email: (c) => names(c).buildServiceAccount,
  accountId: (c) => names(c).buildServiceAccountId,
  member: buildMember,
  displayName: (c) => `${c.name} Cloud Build (iap-gateway deploy)`,
  roles: () => [LOG_WRITER],
}

function missingRoles(policy: Policy, c: DeployConfig, who: Identity): string[] {
  return who.roles(c).filter((r) => !membersOf(policy, r).includes(who.member(c)))
}

function grant(config: DeployConfig, who: Identity, role: string) {
  return cmd(
    [
      'projects',
      'add-iam-policy-binding',
      config.project,
      `--member=${who.member(config)}`,
      `--role=${role}`,
      '--condition=None',
    ],
    { retryIam: true },
  )
}

function identityResources(who: Identity): Resource[] {
  return [
    {
      id: who.key === 'run' ? 'service-account' : 'build-service-account',
      title: who.title,
      describe: ({ config }) => ['iam', 'service-accounts', 'describe', who.email(config)],
      create: ({ config }) => [
        cmd([
          'iam',
          'service-accounts',
          'create',
          who.accountId(config),
          `--display-name=${who.displayName(config)}`,
        ]),
      ],
      delete: ({ config }) => [cmd(['iam', 'service-accounts', 'delete', who.email(config)])],
    },
    {
      id: who.key === 'run' ? 'project-roles' : 'build-project-roles',
      title: `project roles of the ${who.title}`,
      describe: ({ config }) => ['projects', 'get-iam-policy', config.project],
      absent: (json, x) => missingRoles(json, x.config, who).length === who.roles(x.config).length,
      check: (json, x) => missingRoles(json, x.config, who).map((r) => `${r} not granted`),
      create: ({ config }) => who.roles(config).map((r) => grant(config, who, r)),
      update: ({ config }, json) => missingRoles(json, config, who).map((r) => grant(config, who, r)),
      delete: ({ config }, json) =>
        who
          .roles(config)
          .filter((r) => membersOf(json, r).includes(who.member(config)))
          .map((r) =>
            cmd([
              'projects',
              'remove-iam-policy-binding',
              config.project,
              `--member=${who.member(config)}`,
              `--role=${r}`,
              '--condition=None',
            ]),
          ),
    } satisfies Resource<Policy>,
  ]
}

export const identityStep: Step = {
  id: 'identity',
  title: 'Service accounts',
  resources: [...identityResources(RUNTIME), ...identityResources(BUILD)],
}

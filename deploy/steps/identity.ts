// Step 2: the runtime service account and its project-level roles (log writer, and the app's own,
// e.g. Vertex AI user for Flowise). Secret and bucket access are granted per resource in their steps.
import { member, membersOf, names } from './names.ts'
import { cmd, type Step } from './types.ts'

const LOG_WRITER = 'roles/logging.logWriter'

function roles(c: Parameters<typeof names>[0]): string[] {
  return [LOG_WRITER, ...c.app.projectRoles]
}

function missingRoles(policy: any, c: Parameters<typeof names>[0]): string[] {
  return roles(c).filter((r) => !membersOf(policy, r).includes(member(c)))
}

export const identityStep: Step = {
  id: 'identity',
  title: 'Runtime service account',
  resources: [
    {
      id: 'service-account',
      title: 'runtime service account',
      describe: ({ config }) => ['iam', 'service-accounts', 'describe', names(config).serviceAccount],
      create: ({ config }) => [
        cmd([
          'iam',
          'service-accounts',
          'create',
          names(config).serviceAccountId,
          `--display-name=${config.name} Cloud Run runtime (iap-gateway deploy)`,
        ]),
      ],
      delete: ({ config }) => [cmd(['iam', 'service-accounts', 'delete', names(config).serviceAccount])],
    },
    {
      id: 'project-roles',
      title: 'project roles of the service account',
      describe: ({ config }) => ['projects', 'get-iam-policy', config.project],
      absent: (json, x) => missingRoles(json, x.config).length === roles(x.config).length,
      check: (json, x) => missingRoles(json, x.config).map((r) => `${r} not granted`),
      create: ({ config }) => roles(config).map((r) => grant(config, r)),
      update: ({ config }, json) => missingRoles(json, config).map((r) => grant(config, r)),
      delete: ({ config }, json) =>
        roles(config)
          .filter((r) => membersOf(json, r).includes(member(config)))
          .map((r) =>
            cmd([
              'projects',
              'remove-iam-policy-binding',
              config.project,
              `--member=${member(config)}`,
              `--role=${r}`,
              '--condition=None',
            ]),
          ),
    },
  ],
}

function grant(config: Parameters<typeof names>[0], role: string) {
  return cmd(
    [
      'projects',
      'add-iam-policy-binding',
      config.project,
      `--member=${member(config)}`,
      `--role=${role}`,
      '--condition=None',
    ],
    { retryIam: true },
  )
}

// Step 1: the project, and the APIs every later step calls.
import type { DeployConfig } from '../config.ts'
import { cmd, type Resource, type Step } from './types.ts'

/** `projects describe`: the number is a string in gcloud's JSON. */
interface Project {
  projectNumber: string
}

/** One entry of `services list --enabled` (Service Usage API: `name` is projects/N/services/API). */
interface EnabledService {
  name: string
  config?: { name?: string }
}

export function requiredApis(c: DeployConfig): string[] {
  const apis = [
    'run.googleapis.com',
    'compute.googleapis.com',
    'iap.googleapis.com',
    'secretmanager.googleapis.com',
    'artifactregistry.googleapis.com',
    'cloudbuild.googleapis.com',
    'iam.googleapis.com',
    'cloudresourcemanager.googleapis.com',
  ]
  if (c.monitoring.enabled) apis.push('logging.googleapis.com', 'monitoring.googleapis.com')
  if (c.database.enabled) apis.push('sqladmin.googleapis.com', 'servicenetworking.googleapis.com')
  if (c.storage.enabled) apis.push('storage.googleapis.com')
  if (c.app.projectRoles.includes('roles/aiplatform.user')) apis.push('aiplatform.googleapis.com')
  return apis
}

function missing(list: EnabledService[], c: DeployConfig): string[] {
  const enabled = new Set(list.map((s) => s.config?.name ?? s.name.split('/').pop()))
  return requiredApis(c).filter((a) => !enabled.has(a))
}

export const apisStep: Step = {
  id: 'apis',
  title: 'Project and APIs',
  resources: [
    {
      id: 'project',
      title: 'project number',
      describe: ({ config }) => ['projects', 'describe', config.project],
      learn: (json, x) => x.facts.set('PROJECT_NUMBER', String(json.projectNumber)),
      exports: { PROJECT_NUMBER: 'value(projectNumber)' },
      // The project must exist already: creating projects (billing, organisation) is out of scope.
      readOnly: true,
      create: () => [],
    } satisfies Resource<Project>,
    {
      id: 'apis',
      title: 'enabled APIs',
      describe: () => ['services', 'list', '--enabled'],
      absent: (json, x) => missing(json, x.config).length === requiredApis(x.config).length,
      check: (json, x) => missing(json, x.config).map((a) => `${a} is not enabled`),
      create: ({ config }) => [cmd(['services', 'enable', ...requiredApis(config)], { long: true })],
      update: ({ config }, json) => [cmd(['services', 'enable', ...missing(json, config)], { long: true })],
    } satisfies Resource<EnabledService[]>,
  ],
}

import { stringify } from 'yaml'

/** The YAML of a Knative Service (`s`) with these containers and nothing else. */
export function serviceWithContainers(containers: readonly Record<string, unknown>[]): string {
  return stringify({
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: 's' },
    spec: { template: { spec: { containers } } },
  })
}

// Cloud Run's documented rules for a service (deploy/run-local/service.ts and limits.ts, each rule with
// its source), applied to the service this config renders, at `plan`: a CPU, memory or probe Cloud Run
// would refuse stops the plan, naming the deploy field it came from, instead of failing `run services
// replace` halfway through an apply. The same code checks the YAML `run-local` runs.
import type { DeployConfig } from './config.ts'
import { RunLocalError } from './run-local/errors.ts'
import { renderLocal } from './run-local/render-local.ts'
import { readService } from './run-local/service.ts'

/** The deploy field a rendered YAML field comes from, where there is one. */
function configField(field: string): string | undefined {
  const m = /^spec\.template\.spec\.containers\[(\d)\]\.resources\.limits\.(cpu|memory)$/.exec(field)
  if (!m) return undefined
  // service-yaml.ts renders the gateway first, the app second
  return `${m[1] === '0' ? 'gateway' : 'app'}.${m[2]}`
}

/** Each rule the rendered service breaks, as a deploy-config problem (`app.cpu: ... (the rendered ...)`). */
export function serviceRuleProblems(c: DeployConfig): string[] {
  try {
    readService(renderLocal(c))
    return []
  } catch (error) {
    /* c8 ignore next -- renderLocal and readService throw nothing else */
    if (!(error instanceof RunLocalError)) throw error
    return error.problems.map((problem) => {
      const colon = problem.indexOf(': ')
      const field = problem.slice(0, colon)
      const mapped = configField(field)
      return mapped
        ? `${mapped}: ${problem.slice(colon + 2)} (Cloud Run's rule for ${field})`
        : `the rendered service: ${problem}`
    })
  }
}

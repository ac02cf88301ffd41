// Cloud Run's CPU and memory limits, as its documentation states them. Quantities are Kubernetes
// quantities (the service YAML is Knative's): "1", "1000m", "0.5" for CPU; "512Mi", "2Gi", "1G" for
// memory (Cloud Run YAML reference, https://cloud.google.com/run/docs/reference/yaml/v1).
//
// Sources, read 2026-12 (docs corpus):
// - "Configure CPU limits for services", https://cloud.google.com/run/docs/configuring/services/cpu:
//   the CPU-to-memory table (.08 vCPU up to 512 MiB, .5 up to 1 GiB, 1 up to 4 GiB, 2 up to 8 GiB,
//   4: 2 to 16 GiB, 6: 4 to 24 GiB, 8: 4 to 32 GiB); "any value between 0.08 and 1, in increments of
//   0.001. Values greater than 1 must be integer values"; below 1 vCPU "a minimum of 0.5 vCPU is needed
//   to set a memory limit greater than 512MiB, a minimum of 1 vCPU ... greater than 1GiB", maximum
//   concurrency 1, request-based billing, and the first generation execution environment; at most 8.
// - "Configure memory limits for services", https://cloud.google.com/run/docs/configuring/memory-limits:
//   at most 32 GiB; "the minimum amount of memory you can configure in the second generation execution
//   environment is 512 MiB"; default 512 MiB. gcloud's own wording of the same rule, seen in
//   MarkEdmondson1234/googleCloudRunner#137: "Invalid value specified for memory with gen2 execution
//   environment. For 1.0 CPU, memory must be between 512Mi and 4Gi inclusive."
// - Whole CPUs allowed: 1, 2, 4, 6 and 8 (the table above; Firebase App Hosting's RunConfig says the
//   same: "CPU can be set to value 1, 2, 4, 6, or 8 CPUs").
//
// Assumption, named: the documents state these rules per instance and say nothing of how they apply
// to each container of a multi-container instance. Here the CPU-to-memory table and the rules below
// 1 vCPU are applied to each container's own limits (Cloud Run names the field it refuses,
// spec.template.spec.containers.resources.limits.memory, in the error of googlecodelabs/feedback#1210),
// and the second generation's 512 MiB minimum to the instance's total, so that nothing is refused that
// might be valid.

export const DEFAULT_CPU = 1
export const DEFAULT_MEMORY = 512 * 2 ** 20
const MIB = 2 ** 20
const GIB = 2 ** 30

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: MIB,
  Gi: GIB,
  Ti: 2 ** 40,
}

/** CPUs from a quantity ("2", "0.5", "500m"), or undefined when it is not one. */
export function parseCpu(value: unknown): number | undefined {
  const text = typeof value === 'number' ? String(value) : value
  if (typeof text !== 'string') return undefined
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(text.trim())
  if (!match) return undefined
  return Number(match[1]) / (match[2] === 'm' ? 1000 : 1)
}

/** Bytes from a quantity ("512Mi", "2Gi", "1G", "1073741824"), or undefined when it is not one. */
export function parseMemory(value: unknown): number | undefined {
  const text = typeof value === 'number' ? String(value) : value
  if (typeof text !== 'string') return undefined
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(text.trim())
  if (!match) return undefined
  return Math.round(Number(match[1]) * (MEMORY_UNITS[match[2] ?? ''] as number))
}

export function formatMemory(bytes: number): string {
  if (bytes % GIB === 0) return `${bytes / GIB}Gi`
  if (bytes % MIB === 0) return `${bytes / MIB}Mi`
  return `${bytes} bytes`
}

/** The memory a CPU count allows, [min, max] in bytes (the CPU table above). */
function memoryRange(cpus: number): [number, number] {
  if (cpus < 0.5) return [0, 512 * MIB]
  if (cpus < 1) return [0, GIB]
  if (cpus === 1) return [0, 4 * GIB]
  if (cpus === 2) return [0, 8 * GIB]
  if (cpus === 4) return [2 * GIB, 16 * GIB]
  if (cpus === 6) return [4 * GIB, 24 * GIB]
  return [4 * GIB, 32 * GIB]
}

export type InstanceSettings = {
  /** run.googleapis.com/execution-environment: gen1, gen2, or unset (Cloud Run chooses) */
  executionEnvironment: string | undefined
  /** spec.template.spec.containerConcurrency (unset: Cloud Run's default of 80) */
  containerConcurrency: number | undefined
  /** run.googleapis.com/cpu-throttling: "false" means instance-based billing (CPU always allocated) */
  cpuThrottling: string | undefined
}

/** What is wrong with one container's limits; `field` is its resources.limits path. */
export function limitProblems(
  field: string,
  cpus: number,
  memory: number,
  instance: InstanceSettings,
): string[] {
  const problems: string[] = []
  const cpu = `${field}.cpu`
  if (cpus < 0.08 || cpus > 8) problems.push(`${cpu}: ${cpus} vCPU is outside Cloud Run's 0.08 to 8`)
  else if (cpus > 1 && ![2, 4, 6, 8].includes(cpus)) {
    problems.push(`${cpu}: ${cpus} vCPU: above 1, Cloud Run allows only 2, 4, 6 or 8`)
  } else if (cpus < 1 && Math.round(cpus * 1000) !== cpus * 1000) {
    problems.push(`${cpu}: ${cpus} vCPU: below 1, Cloud Run allows steps of 0.001`)
  }
  // against a CPU count Cloud Run refuses, a memory range would only add noise
  const cpuRefused = problems.length > 0
  if (cpus < 1) {
    // unset, Cloud Run chooses the environment; only an explicit gen2 contradicts the rule
    if (instance.executionEnvironment === 'gen2') {
      problems.push(
        `${cpu}: below 1 vCPU needs the first generation execution environment ` +
          '(run.googleapis.com/execution-environment is gen2)',
      )
    }
    if (instance.containerConcurrency !== 1) {
      problems.push(
        `${cpu}: below 1 vCPU needs spec.template.spec.containerConcurrency 1 ` +
          `(it is ${instance.containerConcurrency ?? 'unset, so 80'})`,
      )
    }
    if (instance.cpuThrottling === 'false') {
      problems.push(
        `${cpu}: below 1 vCPU needs request-based billing (run.googleapis.com/cpu-throttling is "false")`,
      )
    }
  }
  const [min, max] = memoryRange(cpus)
  const mem = `${field}.memory`
  if (memory > 32 * GIB) problems.push(`${mem}: ${formatMemory(memory)} is over Cloud Run's 32Gi`)
  else if (!cpuRefused && (memory > max || memory < min)) {
    const range = min > 0 ? `${formatMemory(min)} to ${formatMemory(max)}` : `at most ${formatMemory(max)}`
    problems.push(`${mem}: ${formatMemory(memory)} with ${cpus} vCPU: Cloud Run allows ${range}`)
  }
  return problems
}

/** The instance's total: the second generation's minimum memory (explicit gen2 only: unset, Cloud Run
 * chooses the environment). */
export function instanceProblems(totalMemory: number, instance: InstanceSettings): string[] {
  if (instance.executionEnvironment !== 'gen2' || totalMemory >= 512 * MIB) return []
  return [
    `spec.template.spec.containers[*].resources.limits.memory: ${formatMemory(totalMemory)} in all; ` +
      'the second generation execution environment needs at least 512Mi',
  ]
}

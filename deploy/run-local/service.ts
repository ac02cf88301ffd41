// A Cloud Run service YAML (Knative serving.knative.dev/v1, as `deploy render` writes it and as Cloud
// Run documents it) read into what a local run needs, refusing what Cloud Run would refuse: every
// problem is collected and reported together, each naming its YAML field. Pure: no podman, no network.
// Over 300 lines on purpose: one reader for the whole service schema keeps each rule beside its source.
//
// Sources (docs corpus, read 2026-12), besides those in limits.ts and probes-spec.ts:
// - Cloud Run service YAML, https://cloud.google.com/run/docs/reference/yaml/v1: the fields, and the
//   revision annotations run.googleapis.com/container-dependencies, .../cloudsql-instances,
//   .../execution-environment, .../cpu-throttling; spec.template.spec.containerConcurrency and
//   timeoutSeconds.
// - Container runtime contract, https://cloud.google.com/run/docs/reference/container-contract: "a
//   Cloud Run instance always has a single ingress container and optionally one or more sidecar
//   containers"; PORT is injected into the ingress container, which must listen on 0.0.0.0.
// - "Configure environment variables": "the environment variables defined in the container runtime
//   contract are reserved and cannot be set. In particular, the PORT environment variable is injected
//   inside your container by Cloud Run" (PORT, K_SERVICE, K_REVISION, K_CONFIGURATION). PORT is
//   refused here only on the ingress container: Knative allows it in a sidecar (knative/serving#8438,
//   "Allow PORT in sidecar"), and Cloud Run's documents do not say it refuses it there.
// - Container v2 reference: "Only a single port can be specified"; port names http1 or h2c.
// - Multi-container services (project facts, section 3, and the fake in test/helpers/fake-gcp/run.ts):
//   up to 10 containers, every one named; exactly one declares ports; every container named as a
//   dependency in container-dependencies needs a startupProbe.
// - "Configure secrets for services": an environment secret (valueFrom.secretKeyRef: name = the secret,
//   or an alias from run.googleapis.com/secrets; key = its version) "is retrieved prior to starting
//   the instance ... if the secret retrieval process fails, the instance doesn't start".
// - Cloud SQL, https://cloud.google.com/sql/docs/postgres/connect-run: the built-in connection gives
//   the container a Unix socket at /cloudsql/INSTANCE_CONNECTION_NAME (PROJECT:REGION:INSTANCE).
import { parse } from 'yaml'
import { RunLocalError } from './errors.ts'
import {
  DEFAULT_CPU,
  DEFAULT_MEMORY,
  instanceProblems,
  limitProblems,
  parseCpu,
  parseMemory,
} from './limits.ts'
import { defaultStartupProbe, type Probe, readProbe } from './probes-spec.ts'
import { Reader } from './yaml-reader.ts'

export type EnvEntry =
  | Readonly<{ name: string; value: string }>
  | Readonly<{ name: string; secret: SecretKeyRef }>
/** A secret Cloud Run resolves itself: `name` is a secret id of the service's project or a full name. */
export type SecretKeyRef = Readonly<{ name: string; version: string; field: string }>

export type VolumeMount = Readonly<{ volume: string; mountPath: string; readOnly: boolean }>

export type Volume = Readonly<
  | { name: string; kind: 'emptyDir'; field: string }
  | {
      name: string
      kind: 'secret'
      field: string
      secret: string
      items: readonly { key: string; path: string }[]
    }
  | { name: string; kind: 'cloudSql'; field: string; instances: readonly string[] }
  /** Cloud Run has it (Cloud Storage FUSE, NFS); run-local has no stand-in */
  | { name: string; kind: 'unsupported'; field: string; what: string }
>

export type ServiceContainer = Readonly<{
  index: number
  field: string
  name: string
  image: string
  command: readonly string[] | undefined
  args: readonly string[] | undefined
  workingDir: string | undefined
  env: readonly EnvEntry[]
  ingress: boolean
  /** where requests go: the ingress container's containerPort (8080 unless the YAML says otherwise) */
  port: number | undefined
  startupProbe: Probe | undefined
  livenessProbe: Probe | undefined
  cpus: number
  memoryBytes: number
  mounts: readonly VolumeMount[]
  /** containers that must pass their startup probes before this one starts */
  dependsOn: readonly string[]
}>

export type LocalService = Readonly<{
  name: string
  containers: readonly ServiceContainer[]
  ingress: ServiceContainer
  volumes: readonly Volume[]
  /** run.googleapis.com/cloudsql-instances: sockets under /cloudsql/ in every container */
  cloudSqlInstances: readonly string[]
  /** containers by start wave: each wave starts once the waves before it passed their startup probes */
  startOrder: readonly (readonly string[])[]
  timeoutSeconds: number
}>

const SPEC = 'spec.template.spec'
const ANNOTATIONS = 'spec.template.metadata.annotations'
const DEPENDENCIES = `${ANNOTATIONS}["run.googleapis.com/container-dependencies"]`
const CLOUD_SQL = `${ANNOTATIONS}["run.googleapis.com/cloudsql-instances"]`
const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/
const CONNECTION_NAME = /^[a-z][a-z0-9-.:]*:[a-z]+-[a-z]+[0-9]+:[a-z][a-z0-9-]*$/
const RESERVED_EVERYWHERE = new Set(['K_SERVICE', 'K_REVISION', 'K_CONFIGURATION'])
const MAX_CONTAINERS = 10
const DEFAULT_PORT = 8080

/** Parses and checks a service YAML; throws a RunLocalError listing every problem. */
export function readService(yamlText: string): LocalService {
  let raw: unknown
  try {
    raw = parse(yamlText)
  } catch (error) {
    throw new RunLocalError('RUN_LOCAL_ERR_SERVICE', [`not YAML: ${(error as Error).message}`])
  }
  return checkService(raw)
}

export function checkService(raw: unknown): LocalService {
  const r = new Reader(raw)
  if (r.string('apiVersion') !== 'serving.knative.dev/v1')
    r.problem('apiVersion', 'must be serving.knative.dev/v1')
  if (r.string('kind') !== 'Service') r.problem('kind', 'must be Service')
  const name = r.string('metadata.name')
  r.object(ANNOTATIONS)
  const annotation = (key: string) => r.string(`${ANNOTATIONS}["${key}"]`, '') || undefined
  const instance = {
    executionEnvironment: annotation('run.googleapis.com/execution-environment'),
    containerConcurrency: r.has(`${SPEC}.containerConcurrency`)
      ? r.integer(`${SPEC}.containerConcurrency`, 80, 1, 1000)
      : undefined,
    cpuThrottling: annotation('run.googleapis.com/cpu-throttling'),
  }
  const timeoutSeconds = r.integer(`${SPEC}.timeoutSeconds`, 300, 1, 3600)
  const secretAliases = aliases(r, annotation('run.googleapis.com/secrets'))
  const volumes = readVolumes(r)

  const list = r.list(`${SPEC}.containers`)
  if (list.length === 0 || list.length > MAX_CONTAINERS) {
    r.problem(`${SPEC}.containers`, `Cloud Run runs 1 to ${MAX_CONTAINERS} containers (got ${list.length})`)
  }
  const withPorts = list.map((_, i) => i).filter((i) => r.list(`${SPEC}.containers[${i}].ports`).length > 0)
  if (list.length > 1 && withPorts.length !== 1) {
    r.problem(
      `${SPEC}.containers`,
      withPorts.length === 0
        ? 'one container must declare ports: it is the ingress container'
        : `only one container may declare ports (the ingress container); ${withPorts
            .map((i) => `containers[${i}]`)
            .join(' and ')} do`,
    )
  }
  const ingressIndex = withPorts[0] ?? 0
  const dependencies = readDependencies(r)
  const containers = list.map((_, i) =>
    readContainer(r, i, i === ingressIndex, dependencies.get(i) ?? [], volumes, secretAliases),
  )
  const names = containers.map((c) => c.name)
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) r.problem(`${SPEC}.containers[${i}].name`, `"${n}" is used twice`)
  })
  const startOrder = order(r, containers, dependencies.names)
  const memory = containers.reduce((sum, c) => sum + c.memoryBytes, 0)
  containers.forEach((c) => {
    r.problems.push(...limitProblems(`${c.field}.resources.limits`, c.cpus, c.memoryBytes, instance))
  })
  r.problems.push(...instanceProblems(memory, instance))
  const cloudSqlInstances = (annotation('run.googleapis.com/cloudsql-instances') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const connection of cloudSqlInstances) {
    if (!CONNECTION_NAME.test(connection)) {
      r.problem(CLOUD_SQL, 'expected PROJECT:REGION:INSTANCE connection names, comma-separated', connection)
    }
  }
  if (r.problems.length > 0) throw new RunLocalError('RUN_LOCAL_ERR_SERVICE', r.problems)
  return deepFreeze({
    name,
    containers,
    ingress: containers[ingressIndex] as ServiceContainer,
    volumes,
    cloudSqlInstances,
    startOrder,
    timeoutSeconds,
  })
}

function readContainer(
  r: Reader,
  index: number,
  ingress: boolean,
  dependsOn: string[],
  volumes: readonly Volume[],
  secretAliases: Map<string, string>,
): ServiceContainer {
  const field = `${SPEC}.containers[${index}]`
  const name = r.string(`${field}.name`, r.list(`${SPEC}.containers`).length > 1 ? undefined : 'app')
  if (name && !DNS_LABEL.test(name)) r.problem(`${field}.name`, 'must be a DNS label (a-z, 0-9, -)', name)
  const image = r.string(`${field}.image`)
  const ports = r.list(`${field}.ports`)
  if (ports.length > 1) r.problem(`${field}.ports`, 'Cloud Run takes a single port', ports.length)
  const portName = r.string(`${field}.ports[0].name`, 'http1')
  if (ports.length > 0 && !['http1', 'h2c'].includes(portName)) {
    r.problem(`${field}.ports[0].name`, 'must be http1 or h2c', portName)
  }
  const port = ingress ? r.integer(`${field}.ports[0].containerPort`, DEFAULT_PORT, 1, 65535) : undefined
  const env = r.list(`${field}.env`).map((_, j) => readEnv(r, `${field}.env[${j}]`, ingress, secretAliases))
  const limits = `${field}.resources.limits`
  const cpus = r.has(`${limits}.cpu`) ? parseCpu(r.value(`${limits}.cpu`)) : DEFAULT_CPU
  if (cpus === undefined)
    r.problem(`${limits}.cpu`, 'is not a CPU quantity like 1, 2 or 500m', r.value(`${limits}.cpu`))
  const memoryBytes = r.has(`${limits}.memory`) ? parseMemory(r.value(`${limits}.memory`)) : DEFAULT_MEMORY
  if (memoryBytes === undefined) {
    r.problem(`${limits}.memory`, 'is not a memory quantity like 512Mi or 2Gi', r.value(`${limits}.memory`))
  }
  const startup = readProbe(r, `${field}.startupProbe`, 'startup', port)
  const mounts = r.list(`${field}.volumeMounts`).map((_, j) => {
    const at = `${field}.volumeMounts[${j}]`
    const volume = r.string(`${at}.name`)
    const mountPath = r.string(`${at}.mountPath`)
    if (!mountPath.startsWith('/')) r.problem(`${at}.mountPath`, 'must be an absolute path', mountPath)
    if (volume && !volumes.some((v) => v.name === volume)) {
      r.problem(`${at}.name`, `names no volume in ${SPEC}.volumes`, volume)
    }
    return { volume, mountPath, readOnly: r.value(`${at}.readOnly`) === true }
  })
  return {
    index,
    field,
    name,
    image,
    command: r.has(`${field}.command`) ? r.strings(`${field}.command`) : undefined,
    args: r.has(`${field}.args`) ? r.strings(`${field}.args`) : undefined,
    workingDir: r.has(`${field}.workingDir`) ? r.string(`${field}.workingDir`) : undefined,
    env,
    ingress,
    port,
    startupProbe: startup ?? (ingress && port !== undefined ? defaultStartupProbe(field, port) : undefined),
    livenessProbe: readProbe(r, `${field}.livenessProbe`, 'liveness', port),
    cpus: cpus ?? DEFAULT_CPU,
    memoryBytes: memoryBytes ?? DEFAULT_MEMORY,
    mounts,
    dependsOn,
  }
}

function readEnv(r: Reader, at: string, ingress: boolean, secretAliases: Map<string, string>): EnvEntry {
  const name = r.string(`${at}.name`)
  if (name === '' || name.includes('=')) r.problem(`${at}.name`, 'must be a non-empty name without "="', name)
  if (RESERVED_EVERYWHERE.has(name) || (ingress && name === 'PORT')) {
    r.problem(`${at}.name`, `${name} is reserved: Cloud Run sets it (container runtime contract)`)
  }
  if (r.has(`${at}.valueFrom`)) {
    if (r.has(`${at}.value`)) r.problem(at, 'has both value and valueFrom')
    const ref = `${at}.valueFrom.secretKeyRef`
    if (!r.has(ref)) r.problem(`${at}.valueFrom`, 'Cloud Run supports secretKeyRef only')
    const secret = r.string(`${ref}.name`, r.has(ref) ? undefined : '')
    const version = r.string(`${ref}.key`, r.has(ref) ? undefined : '')
    return { name, secret: { name: secretAliases.get(secret) ?? secret, version, field: ref } }
  }
  return { name, value: r.string(`${at}.value`, '') }
}

/** run.googleapis.com/secrets: "ALIAS:projects/NUMBER/secrets/SECRET,..." (secrets of other projects) */
function aliases(r: Reader, annotation: string | undefined): Map<string, string> {
  const map = new Map<string, string>()
  for (const entry of (annotation ?? '').split(',').filter((s) => s.trim())) {
    const [alias, full] = entry.trim().split(/:(.*)/s)
    if (!alias || !full || !/^projects\/[^/]+\/secrets\/[^/]+$/.test(full)) {
      r.problem(`${ANNOTATIONS}["run.googleapis.com/secrets"]`, 'expected ALIAS:projects/P/secrets/S', entry)
    } else map.set(alias, full)
  }
  return map
}

function readVolumes(r: Reader): Volume[] {
  return r.list(`${SPEC}.volumes`).flatMap((_, i): Volume[] => {
    const field = `${SPEC}.volumes[${i}]`
    const name = r.string(`${field}.name`)
    if (r.has(`${field}.emptyDir`)) return [{ name, kind: 'emptyDir', field }]
    if (r.has(`${field}.secret`)) {
      const items = r.list(`${field}.secret.items`).map((_, j) => ({
        key: r.string(`${field}.secret.items[${j}].key`),
        path: r.string(`${field}.secret.items[${j}].path`),
      }))
      return [{ name, kind: 'secret', field, secret: r.string(`${field}.secret.secretName`), items }]
    }
    if (r.has(`${field}.cloudSqlInstance`)) {
      return [{ name, kind: 'cloudSql', field, instances: r.strings(`${field}.cloudSqlInstance.instances`) }]
    }
    for (const what of ['csi', 'nfs'])
      if (r.has(`${field}.${what}`)) return [{ name, kind: 'unsupported', field, what }]
    r.problem(field, 'needs one of emptyDir, secret, cloudSqlInstance, csi or nfs')
    return []
  })
}

type Dependencies = Map<number, string[]> & { names: Map<string, string[]> }

function readDependencies(r: Reader): Dependencies {
  const byIndex = new Map<number, string[]>() as Dependencies
  byIndex.names = new Map()
  const text = r.string(DEPENDENCIES, '')
  if (!text) return byIndex
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    r.problem(DEPENDENCIES, 'is not JSON like {"gateway":["flowise"]}', text)
    return byIndex
  }
  const ok =
    typeof parsed === 'object' &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every((v) => Array.isArray(v) && v.every((n) => typeof n === 'string'))
  if (!ok) {
    r.problem(DEPENDENCIES, 'must map container names to lists of container names', text)
    return byIndex
  }
  const names = r.list(`${SPEC}.containers`).map((_, i) => r.value(`${SPEC}.containers[${i}].name`))
  for (const [container, needs] of Object.entries(parsed as Record<string, string[]>)) {
    const index = names.indexOf(container)
    if (index === -1) r.problem(`${DEPENDENCIES}.${container}`, `names no container (${names.join(', ')})`)
    else byIndex.set(index, needs)
    byIndex.names.set(container, needs)
  }
  return byIndex
}

/** Start waves from the dependencies; every dependency must exist and have a startup probe. */
function order(r: Reader, containers: ServiceContainer[], dependencies: Map<string, string[]>): string[][] {
  for (const [container, needs] of dependencies) {
    needs.forEach((need, i) => {
      const at = `${DEPENDENCIES}.${container}[${i}]`
      const target = containers.find((c) => c.name === need)
      if (need === container) r.problem(at, `${container} cannot depend on itself`)
      else if (!target) r.problem(at, `names no container: ${need}`)
      else if (!target.startupProbe || target.startupProbe.implicit) {
        r.problem(at, `${need} is a dependency, so it needs a startupProbe (${target.field}.startupProbe)`)
      }
    })
  }
  const waves: string[][] = []
  const started = new Set<string>()
  let left = containers.map((c) => c.name)
  while (left.length > 0) {
    const wave = left.filter((n) =>
      (dependencies.get(n) ?? []).every((d) => started.has(d) || !left.includes(d)),
    )
    if (wave.length === 0) {
      r.problem(DEPENDENCIES, `the dependencies form a cycle (${left.join(', ')})`)
      return waves
    }
    waves.push(wave)
    for (const n of wave) started.add(n)
    left = left.filter((n) => !wave.includes(n))
  }
  return waves
}

/** What Cloud Run accepts but run-local cannot run: gRPC probes, volumes without a local stand-in. */
export function localProblems(service: LocalService): string[] {
  const problems: string[] = []
  for (const c of service.containers) {
    for (const probe of [c.startupProbe, c.livenessProbe]) {
      if (probe?.kind === 'grpc') problems.push(`${probe.field}.grpc: run-local has no gRPC health client`)
    }
  }
  for (const v of service.volumes) {
    if (v.kind === 'unsupported')
      problems.push(`${v.field}.${v.what}: run-local has no local stand-in for it`)
  }
  return problems
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

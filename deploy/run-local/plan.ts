// From a checked service to what each container gets here, the way Cloud Run would give it: the
// rendered environment, the secretKeyRef values Cloud Run resolves before an instance starts, PORT in
// the ingress container only, its volumes and Cloud SQL sockets, its limits; then the local
// stand-ins layered on top. Pure: the runner does the I/O.
//
// The containers share this machine's network (podman --network=host), as the containers of one
// Cloud Run instance share one network namespace. Unlike an instance's, this network is the whole
// machine's: the ingress container listens on a free port of the host (PORT says which, as Cloud Run's
// PORT says where requests arrive), and a sidecar's ports are ports of this machine, so the runner
// checks they are free before it starts anything.
//
// Not given, on purpose: K_SERVICE, K_REVISION and K_CONFIGURATION, which Cloud Run sets in every
// container (container runtime contract). The gateway and the launcher read K_SERVICE as "running on
// Cloud Run" and then refuse the plain-text local Secret Manager (docs/secrets.md).
import type { LocalService, ServiceContainer } from './service.ts'

export type HostMount = Readonly<{ source: string; target: string; readOnly?: boolean }>

export type ContainerPlan = Readonly<{
  name: string
  field: string
  image: string
  env: Readonly<Record<string, string>>
  entrypoint: readonly string[] | undefined
  args: readonly string[] | undefined
  workdir: string | undefined
  resources: Readonly<{ cpus: number; memoryBytes: number }>
  mounts: readonly HostMount[]
  /** where this container's probes reach it on this machine (the ingress port is remapped) */
  probePort: (port: number) => number
}>

export type PlanInputs = Readonly<{
  /** the YAML's image references and the local images standing in for them */
  images: Readonly<Record<string, string>>
  /** the host port the ingress container listens on (its PORT) */
  ingressPort: number
  /** secretKeyRef values by field (spec.template.spec.containers[i].env[j].valueFrom.secretKeyRef) */
  secrets: Readonly<Record<string, string>>
  /** host folders standing in for the YAML's volumes, by volume name */
  volumes: Readonly<Record<string, string>>
  /** the local socket folder for a Cloud SQL connection name (PROJECT:REGION:INSTANCE) */
  cloudSqlSocket: (connection: string) => string | undefined
  /** local stand-ins over the rendered environment, by container name ('*': every container) */
  overrides: Readonly<Record<string, Readonly<Record<string, string>>>>
  /** extra mounts by container name (test shims) */
  mounts: Readonly<Record<string, readonly HostMount[]>>
}>

/** A secret version's full name: `name` is a secret id of `project`, or already projects/P/secrets/S. */
export function versionName(project: string, name: string, version: string): string {
  return `${name.startsWith('projects/') ? name : `projects/${project}/secrets/${name}`}/versions/${version}`
}

/** The secretKeyRef values to resolve before anything starts: field -> full version name. */
export function secretVersions(service: LocalService, project: string): Map<string, string> {
  const versions = new Map<string, string>()
  for (const c of service.containers) {
    for (const entry of c.env) {
      if ('secret' in entry)
        versions.set(entry.secret.field, versionName(project, entry.secret.name, entry.secret.version))
    }
  }
  for (const v of service.volumes) {
    if (v.kind !== 'secret') continue
    const items = v.items.length > 0 ? v.items : [{ key: 'latest', path: v.secret }]
    items.forEach((item, i) => {
      versions.set(`${v.field}.secret.items[${i}]`, versionName(project, v.secret, item.key))
    })
  }
  return versions
}

/** The files of the secret volumes: volume name -> [path inside the volume, field of its value]. */
export function secretFiles(service: LocalService): Map<string, { path: string; field: string }[]> {
  const files = new Map<string, { path: string; field: string }[]>()
  for (const v of service.volumes) {
    if (v.kind !== 'secret') continue
    const items = v.items.length > 0 ? v.items : [{ key: 'latest', path: v.secret }]
    files.set(
      v.name,
      items.map((item, i) => ({ path: item.path, field: `${v.field}.secret.items[${i}]` })),
    )
  }
  return files
}

export function planService(
  service: LocalService,
  inputs: PlanInputs,
): { plans: ContainerPlan[]; problems: string[] } {
  const problems: string[] = []
  const socket = (connection: string, field: string): string => {
    const dir = inputs.cloudSqlSocket(connection)
    if (dir === undefined)
      problems.push(`${field}: no local database stands in for Cloud SQL instance ${connection}`)
    return dir ?? ''
  }
  // run.googleapis.com/cloudsql-instances: the sockets appear under /cloudsql/ (assumed: in every container)
  const annotated = service.cloudSqlInstances.map((connection) => ({
    source: socket(connection, 'spec.template.metadata.annotations["run.googleapis.com/cloudsql-instances"]'),
    target: `/cloudsql/${connection}`,
    readOnly: false,
  }))
  const plans = service.containers.map((c): ContainerPlan => {
    const mounts: HostMount[] = [...annotated]
    for (const m of c.mounts) {
      const volume = service.volumes.find((v) => v.name === m.volume)
      if (volume?.kind === 'cloudSql') {
        for (const connection of volume.instances) {
          mounts.push({
            source: socket(connection, volume.field),
            target: `${m.mountPath}/${connection}`,
            readOnly: false,
          })
        }
      } else {
        mounts.push({
          source: inputs.volumes[m.volume] ?? '',
          target: m.mountPath,
          readOnly: m.readOnly || volume?.kind === 'secret',
        })
      }
    }
    mounts.push(...(inputs.mounts[c.name] ?? []))
    return Object.freeze({
      name: c.name,
      field: c.field,
      image: inputs.images[c.image] ?? c.image,
      env: Object.freeze(environment(c, inputs)),
      entrypoint: c.command,
      args: c.args,
      workdir: c.workingDir,
      resources: { cpus: c.cpus, memoryBytes: c.memoryBytes },
      mounts,
      probePort: (port: number) => (c.ingress && port === c.port ? inputs.ingressPort : port),
    })
  })
  return { plans, problems }
}

function environment(c: ServiceContainer, inputs: PlanInputs): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of c.env)
    env[entry.name] = 'secret' in entry ? (inputs.secrets[entry.secret.field] ?? '') : entry.value
  // Cloud Run injects PORT into the ingress container only (container runtime contract)
  if (c.ingress) env.PORT = String(inputs.ingressPort)
  return { ...env, ...inputs.overrides['*'], ...inputs.overrides[c.name] }
}

/** The host ports the containers will listen on (from their probes), which must be free before a start. */
export function hostPorts(
  service: LocalService,
  plans: readonly ContainerPlan[],
): { port: number; field: string }[] {
  const ports: { port: number; field: string }[] = []
  service.containers.forEach((c, i) => {
    const plan = plans[i] as ContainerPlan
    for (const probe of [c.startupProbe, c.livenessProbe]) {
      if (!probe) continue
      const port = plan.probePort(probe.port)
      if (!ports.some((p) => p.port === port))
        ports.push({ port, field: `${probe.field} (port ${probe.port})` })
    }
  })
  return ports
}

// `npm run deploy -- run-local --config FILE`: the service `apply` would deploy, run on this machine
// from its images before anyone applies it. The YAML is rendered by the deploy's own code with local
// stand-ins for what it learns from gcloud, checked against Cloud Run's rules (every problem at once,
// by field), then run by podman behind the IAP emulator, with a local PostgreSQL and Secret Manager.
// `--check` stops after the check and needs neither podman nor anything else.
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type DeployConfig, readConfig } from '../config.ts'
import { reportError } from '../errors.ts'
import type { Io } from '../main.ts'
import { RunLocalError } from './errors.ts'
import { localImages, renderLocal } from './render-local.ts'
import { type LocalService, localProblems, readService } from './service.ts'

export const USAGE = `usage: deploy run-local --config FILE [options]
Runs the Cloud Run service that apply would deploy on this machine, from its images (podman),
behind the IAP emulator, with a local PostgreSQL and a local Secret Manager. DEVELOPMENT ONLY.
  --check                render and check the service against Cloud Run's rules; run nothing
  --out FILE             also write the service YAML rendered with the local stand-ins
  --port N               the IAP emulator's port, the URL to open (default 8080; 0: any free port)
  --gateway-port N       the ingress container's port on this machine (default 0: any free port)
  --email EMAIL          the identity the emulator signs in (default dev@example.com)
  --env CONTAINER.NAME=VALUE
                         a local stand-in for one variable of one container (repeatable), e.g.
                         --env flowise.STORAGE_EMULATOR_HOST=http://127.0.0.1:4443; printed by name only
  --image REF=LOCAL      run the local image LOCAL where the YAML names REF (repeatable)
  --no-build             use the images in podman's store instead of building them (cached) first`

export type RunLocalOptions = Readonly<{
  config: string
  check: boolean
  out: string | undefined
  port: number
  gatewayPort: number
  email: string
  env: Readonly<Record<string, Readonly<Record<string, string>>>>
  images: Readonly<Record<string, string>>
  build: boolean
  help: boolean
}>

const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export function parseRunLocal(argv: readonly string[]): RunLocalOptions {
  let values: Record<string, string | string[] | boolean | undefined>
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', default: 'deploy.config.yaml' },
        check: { type: 'boolean', default: false },
        out: { type: 'string' },
        port: { type: 'string', default: '8080' },
        'gateway-port': { type: 'string', default: '0' },
        email: { type: 'string', default: 'dev@example.com' },
        env: { type: 'string', multiple: true, default: [] },
        image: { type: 'string', multiple: true, default: [] },
        'no-build': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (error) {
    throw new RunLocalError('RUN_LOCAL_ERR_USAGE', [(error as Error).message])
  }
  const problems: string[] = []
  const port = (name: string): number => {
    const text = values[name] as string
    if (/^\d{1,5}$/.test(text) && Number(text) <= 65535) return Number(text)
    problems.push(`--${name} (${text}): not a port number (0 to 65535)`)
    return 0
  }
  const env: Record<string, Record<string, string>> = {}
  for (const entry of values.env as string[]) {
    const match = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(entry)
    if (!match || !NAME.test(match[1] as string) || !ENV_NAME.test(match[2] as string)) {
      // the value may be a secret: name the option's shape, never echo the entry
      problems.push(`--env: expected CONTAINER.NAME=VALUE (got one starting "${entry.split('=')[0]}")`)
      continue
    }
    const container = match[1] as string
    env[container] = { ...env[container], [match[2] as string]: match[3] as string }
  }
  const images: Record<string, string> = {}
  for (const entry of values.image as string[]) {
    const [ref, local] = entry.split('=')
    if (!ref || !local || entry.split('=').length !== 2)
      problems.push(`--image (${entry}): expected REF=LOCAL`)
    else images[ref] = local
  }
  const email = values.email as string
  if (!/^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/.test(email)) problems.push(`--email (${email}): not an email address`)
  const options = {
    config: values.config as string,
    check: values.check as boolean,
    out: values.out as string | undefined,
    port: port('port'),
    gatewayPort: port('gateway-port'),
    email,
    env,
    images,
    build: !(values['no-build'] as boolean),
    help: values.help as boolean,
  }
  if (problems.length > 0) throw new RunLocalError('RUN_LOCAL_ERR_USAGE', problems)
  return Object.freeze(options)
}

/** The rendered, checked service, with the local stand-ins for what the deploy learns from gcloud. */
export function prepare(config: DeployConfig): { yaml: string; service: LocalService } {
  const yaml = renderLocal(config)
  const service = readService(yaml)
  const unsupported = localProblems(service)
  // the deploy renders neither gRPC probes nor FUSE or NFS volumes today; the runner refuses them too
  /* c8 ignore next */
  if (unsupported.length > 0) throw new RunLocalError('RUN_LOCAL_ERR_UNSUPPORTED', unsupported)
  return { yaml, service }
}

/** What a check (or a start) shows of the service: order, images, ports, probes, limits, secrets. */
export function describe(
  config: DeployConfig,
  service: LocalService,
  images: Readonly<Record<string, string>>,
): string {
  const mapped: Record<string, string> = {
    ...Object.fromEntries(localImages(config).map((i) => [i.ref, i.local])),
    ...images,
  }
  const local = (image: string) => mapped[image] ?? image
  const lines = [
    `service ${service.name}: containers start in this order: ${service.startOrder.map((w) => w.join(' + ')).join(', then ')}`,
  ]
  for (const c of service.containers) {
    const probe = c.startupProbe
    const window = probe ? `${probe.failureThreshold * probe.periodSeconds} s` : ''
    lines.push(
      `  ${c.name}${c.ingress ? ` (ingress, port ${c.port}, PORT set here)` : ''}: ${c.cpus} vCPU, ` +
        `${Math.round(c.memoryBytes / 2 ** 20)}Mi`,
      `    image ${c.image}${local(c.image) !== c.image ? ` -> ${local(c.image)}` : ''}`,
      probe
        ? `    startup probe: ${probe.kind} port ${probe.port}${probe.path}, every ${probe.periodSeconds} s, window ${window}${probe.implicit ? " (Cloud Run's default)" : ''}`
        : '    no startup probe: started once running',
    )
    const secrets = c.env
      .filter((e) => ('value' in e ? e.value.startsWith('sm://') : true))
      .map((e) => e.name)
    if (secrets.length > 0) lines.push(`    secrets (from the local Secret Manager): ${secrets.join(', ')}`)
  }
  return `${lines.join('\n')}\n`
}

export async function runLocal(argv: readonly string[], io: Io): Promise<number> {
  try {
    const options = parseRunLocal(argv)
    if (options.help) {
      io.stdout.write(`${USAGE}\n`)
      return 0
    }
    const config = readConfig(options.config)
    if (options.check) {
      const { yaml, service } = prepare(config)
      if (options.out) writeFileSync(options.out, yaml)
      io.stdout.write(describe(config, service, options.images))
      io.stdout.write(
        'Cloud Run would accept this service (as far as its documented rules go; see docs/run-local.md).\n',
      )
      return 0
    }
    /* c8 ignore next 2 -- runs the images: proven by npm run test:images and npm run test:e2e */
    const { runLocalUntilStopped } = await import('./start.ts')
    return await runLocalUntilStopped(config, options, io)
  } catch (error) {
    return reportError(error, io.stderr)
  }
}

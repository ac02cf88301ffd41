// The service the deploy would apply, run from its two images by run-local (deploy/run-local/start.ts)
// exactly as `npm run deploy -- run-local` runs it: the example config, rendered by the deploy's own
// code, behind the IAP emulator, with a local PostgreSQL and Secret Manager. What the suite adds, and
// why, is TEST_ONLY below; none of it is in an image.
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { type DeployConfig, validateConfig } from '../../../deploy/config.ts'
import { type LocalDeployment, startLocal } from '../../../deploy/run-local/start.ts'
import { type DevChain, startDevChain } from '../../../dev/dev-chain.ts'
import { parseDevOptions } from '../../../dev/dev-options.ts'
import { freePort } from '../../../dev/free-port.ts'
import { REPO_ROOT } from '../../../dev/images/build.ts'
import { type Container, startContainer, waitForHttp } from '../../../dev/images/container.ts'
import { podman } from '../../../dev/images/podman.ts'
import { isReference, parseReference, resourceName } from '../../../proxy/secrets/reference.ts'

const OFFLINE_TIKTOKEN = fileURLToPath(new URL('./offline-tiktoken.cjs', import.meta.url))
const SHIM = '/test-shims/offline-tiktoken.cjs'

/**
 * deploy.config.example.yaml as a team would deploy it. Two changes, both for a shared test machine:
 * the app listens on a free port (on the host network 3000 may be taken; the deploy passes a
 * non-default app port to the container as PORT), and the build context is named absolutely.
 */
export async function e2eConfig(): Promise<DeployConfig> {
  const raw = parse(readFileSync(join(REPO_ROOT, 'deploy.config.example.yaml'), 'utf8'))
  raw.app.port = await freePort()
  return validateConfig(raw, REPO_ROOT)
}

/** What only the tests add to the Flowise container, each for a reason that does not exist on Cloud Run. */
const TEST_ONLY = {
  overrides: {
    // offline, LangChain fetches tiktoken tables from tiktoken.pages.dev; the shim answers them from
    // the js-tiktoken package inside the image. Mounted read-only at run time, never built in.
    flowise: { NODE_OPTIONS: `--require=${SHIM}`, OFFLINE_TIKTOKEN_FROM: '/opt/flowise' },
  },
  mounts: { flowise: [{ source: OFFLINE_TIKTOKEN, target: SHIM }] },
}

export async function startService(options: {
  config: DeployConfig
  outputDir: string
  email: string
  onEvent: (line: string) => void
}): Promise<LocalDeployment & { logs: Map<string, WriteStream> }> {
  const logs = new Map<string, WriteStream>()
  const log = (container: string) => {
    if (!logs.has(container))
      logs.set(container, createWriteStream(join(options.outputDir, `${container}.log`)))
    return logs.get(container) as WriteStream
  }
  const deployment = await startLocal({
    config: options.config,
    email: options.email,
    testOnly: TEST_ONLY,
    onOutput: (container, chunk) => log(container).write(chunk),
    onEvent: options.onEvent,
    out: join(options.outputDir, 'service.yaml'),
  })
  return Object.assign(Object.create(null), deployment, { logs })
}

/** A rendered variable of a container, as the YAML carries it. */
export function rendered(deployment: LocalDeployment, container: string, name: string): string {
  const entry = deployment.service.containers
    .find((c) => c.name === container)
    ?.env.find((e) => e.name === name)
  if (!entry || !('value' in entry)) throw new Error(`${container} has no rendered ${name}`)
  return entry.value
}

/** The Secret Manager version names the Flowise container's sm:// references resolve to. */
export function flowiseSecretVersions(deployment: LocalDeployment, project: string): string[] {
  const flowise = deployment.service.containers.find((c) => c.name === 'flowise')
  return (flowise?.env ?? []).flatMap((e) => {
    const reference = 'value' in e && isReference(e.value) ? parseReference(e.value) : undefined
    return reference && typeof reference !== 'string' ? [resourceName(reference, project)] : []
  })
}

/** One of Flowise's own marketplace templates, read from inside the Flowise image. */
export async function marketplaceTemplate(deployment: LocalDeployment, name: string): Promise<string> {
  const file = `/opt/flowise/node_modules/flowise/marketplaces/chatflows/${name}.json`
  const { stdout } = await podman(['exec', deployment.running.container('flowise').name, 'cat', file])
  return stdout
}

/**
 * A second gateway container from the same image, with the service's gateway environment except its
 * allowlist, which is exactly what the deploy renders (run-local adds loopback to the service's), and
 * an emulator of its own in front: what a client outside the deployed ranges meets.
 */
export async function startRenderedAllowlistGateway(
  deployment: LocalDeployment,
  outputDir: string,
): Promise<{ chain: DevChain; gateway: Container; stop(): Promise<void> }> {
  const port = await freePort()
  const audience = rendered(deployment, 'gateway', 'IAP_AUDIENCE')
  const chain = await startDevChain(
    parseDevOptions([`--port=0`, `--gateway=http://127.0.0.1:${port}`, `--audience=${audience}`], {}),
    { stdout: process.stderr, stderr: process.stderr, env: {} },
  )
  const log = createWriteStream(join(outputDir, 'gateway-rendered-allowlist.log'))
  const gateway = await startContainer({
    image: 'localhost/iap-gateway/gateway:local',
    purpose: 'e2e-rendered-allowlist',
    env: {
      ...deployment.running.environment('gateway'),
      PORT: String(port),
      ALLOWED_CIDRS: rendered(deployment, 'gateway', 'ALLOWED_CIDRS'),
      IAP_KEYS_URL: chain.gatewaySettings.IAP_KEYS_URL as string,
    },
    onOutput: (chunk) => log.write(chunk),
  })
  const stop = async () => {
    await gateway.stop(10_000)
    await chain.stop()
    log.end()
  }
  try {
    await waitForHttp(`http://127.0.0.1:${port}/_gateway/readyz`, {
      timeoutMs: 60_000,
      exited: gateway.exited,
    })
  } catch (error) {
    await stop()
    throw error
  }
  return { chain, gateway, stop }
}

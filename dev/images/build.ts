// Builds the two images with a real builder (podman), as Cloud Build builds them on deploy: the
// repository root as the context (.dockerignore applies), the Dockerfile as shipped, the build
// arguments the deploy passes. The base is made first when absent (stand-in-base.ts); everything after
// it is podman's layer cache, so a second build with nothing changed takes seconds.
//
//   npm run images:build                       both images
//   npm run images:build -- gateway            one of them (gateway | flowise)
//   npm run images:build -- flowise --flowise-version=3.1.4
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { FLOWISE_VERSION } from '../flowise.ts'
import { BUILD_FLAGS, inspectImage, podman } from './podman.ts'
import { BASE_IMAGE, ensureBaseImage, STAND_IN_LABEL } from './stand-in-base.ts'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export type ImageName = 'gateway' | 'flowise'

export const DOCKERFILES: Readonly<Record<ImageName, string>> = {
  gateway: 'Dockerfile.proxy',
  flowise: 'Dockerfile.flowise',
}

/** Local tags: the deploy's image names under localhost/iap-gateway/, the Flowise one per version. */
export function imageTag(name: ImageName, flowiseVersion = FLOWISE_VERSION): string {
  return name === 'gateway'
    ? 'localhost/iap-gateway/gateway:local'
    : `localhost/iap-gateway/flowise:${flowiseVersion}`
}

export type BuildOptions = {
  /** default: the pinned version; passed as --build-arg FLOWISE_VERSION, as the deploy does */
  flowiseVersion?: string
  /** a tag other than imageTag()'s (tests that build a deliberately broken variant) */
  tag?: string
  /** a Dockerfile other than the shipped one, relative to the context or absolute */
  dockerfile?: string
  /** a build context other than the repository root (a deploy config's build.context) */
  context?: string
  /** build arguments (a deploy config's build.args; FLOWISE_VERSION is set for the Flowise image) */
  buildArgs?: Readonly<Record<string, string>>
  onOutput?: (chunk: string) => void
  timeoutMs?: number
}

export type BuildResult = { tag: string; id: string; size: number; seconds: number }

export async function buildImage(name: ImageName, options: BuildOptions = {}): Promise<BuildResult> {
  const flowiseVersion = options.flowiseVersion ?? FLOWISE_VERSION
  return buildDockerfile({
    ...options,
    tag: options.tag ?? imageTag(name, flowiseVersion),
    dockerfile: options.dockerfile ?? DOCKERFILES[name],
    buildArgs: { ...(name === 'flowise' ? { FLOWISE_VERSION: flowiseVersion } : {}), ...options.buildArgs },
  })
}

/** Any Dockerfile, as Cloud Build runs it: `-f DOCKERFILE` (relative to the context) and the context. */
export async function buildDockerfile(
  options: Omit<BuildOptions, 'flowiseVersion'> & { tag: string; dockerfile: string },
): Promise<BuildResult> {
  const started = Date.now()
  await refuseRegistryTagOnStandIn(options.tag)
  const context = options.context ?? REPO_ROOT
  const args = Object.entries(options.buildArgs ?? {}).flatMap(([key, value]) => [
    '--build-arg',
    `${key}=${value}`,
  ])
  await podman(
    [
      'build',
      ...BUILD_FLAGS,
      ...args,
      '-f',
      resolve(context, options.dockerfile),
      '-t',
      options.tag,
      context,
    ],
    {
      // the Flowise install is minutes long and prints little: keep the whole log for the error
      ...(options.onOutput ? { onOutput: options.onOutput } : {}),
      timeoutMs: options.timeoutMs ?? 3_600_000,
    },
  )
  const { id, size } = await inspectImage(options.tag)
  return { tag: options.tag, id, size, seconds: Math.round((Date.now() - started) / 1000) }
}

/**
 * An image built on the stand-in base carries this machine's TLS-proxy CA (NODE_EXTRA_CA_CERTS) and a
 * base that is not the official one: it must never look like something to push. Only `localhost/`
 * tags are built on it; a registry's name is refused before the build starts.
 */
async function refuseRegistryTagOnStandIn(tag: string): Promise<void> {
  if (tag.startsWith('localhost/')) return
  const { labels } = await inspectImage(BASE_IMAGE)
  if (labels[STAND_IN_LABEL] === undefined) return
  throw new Error(
    `images:build: ${tag} is a registry's name, but ${BASE_IMAGE} here is the local stand-in ` +
      "(it trusts this machine's TLS proxy): build under localhost/ only, and let Cloud Build build what is pushed",
  )
}

/* c8 ignore start: the command-line entry (`npm run images:build`) builds for real */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    options: { 'flowise-version': { type: 'string' }, quiet: { type: 'boolean' } },
    allowPositionals: true,
  })
  const wanted = (positionals.length > 0 ? positionals : ['gateway', 'flowise']) as ImageName[]
  for (const name of wanted) {
    if (!(name in DOCKERFILES)) {
      console.error(`images:build: unknown image "${name}" (gateway or flowise)`)
      process.exit(2)
    }
  }
  const base = await ensureBaseImage((message) => console.error(`base: ${message}`))
  console.error(`base: ${base.ref} (${base.made}, ${base.seconds} s)`)
  for (const name of wanted) {
    const result = await buildImage(name, {
      ...(values['flowise-version'] ? { flowiseVersion: values['flowise-version'] } : {}),
      ...(values.quiet ? {} : { onOutput: (chunk: string) => process.stderr.write(chunk) }),
    })
    console.log(`${name}: ${result.tag} ${(result.size / 1e6).toFixed(0)} MB, ${result.seconds} s`)
  }
}
/* c8 ignore stop */

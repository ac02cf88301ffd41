// What every image test file shares: podman or a clear skip (a failure in CI, where .ci/run installs
// it), the base and the image built once per run (podman's layer cache makes the second build seconds),
// and the numbers docs/images.md reports, as tap comments. Containers run without the stand-in base's
// TLS-proxy CA (NODE_EXTRA_CA_CERTS), as production has none: only builds need it, to reach npm.
import { readdirSync, readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { type BuildOptions, type BuildResult, buildImage, type ImageName } from '../../dev/images/build.ts'
import {
  type Container,
  type ContainerOptions,
  runToExit,
  startContainer,
} from '../../dev/images/container.ts'
import { inspectImage, podman, podmanMissing } from '../../dev/images/podman.ts'
import { BASE_IMAGE, CA_BUNDLE, ensureBaseImage, STAND_IN_LABEL } from '../../dev/images/stand-in-base.ts'

/** false (with the reason shown, and the file skipped) when images cannot be built here. */
export function podmanOrSkip(): boolean {
  const missing = podmanMissing()
  if (!missing) return true
  // CI installs podman (.ci/run): there, a missing builder is a failure, not a skip
  if (process.env.CI) t.fail(`image tests need podman in CI: ${missing}`)
  else t.plan(0, `image tests skipped: ${missing}`)
  return false
}

/** The base (made when absent), then the image; the build's output goes to the test's comments. */
export async function buildForTest(name: ImageName, options: BuildOptions = {}): Promise<BuildResult> {
  const base = await ensureBaseImage((message) => t.comment(`base: ${message}`))
  t.comment(`base ${base.ref}: ${base.made} (${base.seconds} s)`)
  const result = await buildImage(name, options)
  t.comment(`built ${result.tag}: ${(result.size / 1e6).toFixed(0)} MB in ${result.seconds} s`)
  return result
}

/** What the stand-in base sets for builds and production does not have: left out of every container. */
const BUILD_ONLY_ENV = ['NODE_EXTRA_CA_CERTS']

/** A container that is stopped (SIGKILL after 5 s) at the end of the test that started it. */
export async function startForTest(test: Test, options: ContainerOptions): Promise<Container> {
  const container = await startContainer({ unsetEnv: BUILD_ONLY_ENV, ...options })
  test.teardown(async () => {
    await container.stop(5_000)
  })
  return container
}

/** Every process of a container (PID 1 and its descendants) with its uid and gid as the kernel sees
 * them: rootful podman without a user namespace, so the numbers are the container's own. */
export async function containerProcesses(
  container: Container,
): Promise<{ pid: number; uid: number; gid: number; command: string }[]> {
  const { stdout } = await podman(['inspect', '--format', '{{.State.Pid}}', container.name])
  const found: { pid: number; uid: number; gid: number; command: string }[] = []
  const visit = (pid: number) => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1])
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
    found.push({ pid, uid: field('Uid'), gid: field('Gid'), command })
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
      for (const child of children ? children.split(/\s+/) : []) visit(Number(child))
    }
  }
  visit(Number(stdout.trim()))
  return found
}

/** uid and gid of a container's PID 1. */
export async function pid1Owner(container: Container): Promise<{ uid: number; gid: number }> {
  const [first] = await containerProcesses(container)
  return { uid: first?.uid ?? Number.NaN, gid: first?.gid ?? Number.NaN }
}

/** The paths a container added or changed on top of its image (`podman diff`): what it wrote. */
export async function writtenPaths(container: Container): Promise<string[]> {
  const { stdout } = await podman(['diff', '--format', 'json', container.name])
  const diff = JSON.parse(stdout) as { changed?: string[]; added?: string[] }
  return [...(diff.added ?? []), ...(diff.changed ?? [])].sort()
}

/** A one-off command in an image, as startForTest runs containers. */
export function runForTest(options: ContainerOptions): Promise<{ code: number | null; output: string }> {
  return runToExit({ unsetEnv: BUILD_ONLY_ENV, ...options })
}

async function imageEnv(ref: string): Promise<Record<string, string>> {
  const { stdout } = await podman(['image', 'inspect', '--format', '{{json .Config.Env}}', ref])
  const lines = (JSON.parse(stdout) as string[] | null) ?? []
  return Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  )
}

/**
 * The stand-in base's TLS-proxy CA reaches an image only by inheritance: its NODE_EXTRA_CA_CERTS is the
 * base's (none on the real base), no layer the Dockerfile built adds or changes the CA file or anything
 * in the trust folders it could be copied to, and the image carries the stand-in's label whenever its
 * base does, so it can be told apart. What it inherits never reaches a container (BUILD_ONLY_ENV) nor a
 * registry (build.ts builds stand-in images under localhost/ only).
 */
export async function trustOnlyFromBase(test: Test, image: string): Promise<void> {
  const base = await inspectImage(BASE_IMAGE)
  const built = await inspectImage(image)
  const standIn = base.labels[STAND_IN_LABEL] !== undefined
  test.equal(built.labels[STAND_IN_LABEL], base.labels[STAND_IN_LABEL], 'labelled as its base is')
  test.equal(
    (await imageEnv(image)).NODE_EXTRA_CA_CERTS,
    (await imageEnv(BASE_IMAGE)).NODE_EXTRA_CA_CERTS,
    standIn ? 'NODE_EXTRA_CA_CERTS as the stand-in base has it, not set again' : 'no NODE_EXTRA_CA_CERTS',
  )
  // what each layer the Dockerfile built was made by (newest first; the base's own come last)
  const history = async (ref: string) =>
    (await podman(['history', '--no-trunc', '--format', '{{.CreatedBy}}', ref])).stdout.trim().split('\n')
  const steps = (await history(image)).slice(0, -(await history(BASE_IMAGE)).length)
  test.same(
    steps.filter((step) => /NODE_EXTRA_CA_CERTS|SSL_CERT_|stand-in-ca|share\/ca-certificates\//.test(step)),
    [],
    'no build step sets a trust variable or touches a CA file',
  )
  const { stdout } = await podman(['image', 'diff', '--format', 'json', image, BASE_IMAGE])
  const diff = JSON.parse(stdout) as { changed?: string[]; added?: string[] }
  const caDir = CA_BUNDLE.slice(0, CA_BUNDLE.lastIndexOf('/') + 1)
  test.same(
    [...(diff.added ?? []), ...(diff.changed ?? [])].filter(
      // the folder itself comes with Debian's ca-certificates package (Dockerfile.flowise installs it)
      (path) => path.startsWith(caDir) || path.startsWith('/usr/local/share/ca-certificates/'),
    ),
    [],
    'no layer of the Dockerfile adds or changes a CA of its own',
  )
  // nor did a build step copy its text into the system's trust store (update-ca-certificates would)
  const found = await runForTest({
    image,
    purpose: 'trust-store',
    entrypoint: [
      'sh',
      '-c',
      `[ -f ${CA_BUNDLE} ] || exit 0; line=$(sed -n 2p ${CA_BUNDLE}); ` +
        'grep -rlF -- "$line" /etc /usr/local/share/ca-certificates /usr/share/ca-certificates /usr/lib/ssl 2>/dev/null; true',
    ],
  })
  test.equal(found.output.trim(), '', "the CA's certificate is in no trust store of the image")
}

/** Paths under `roots` that uid 1000 could change: not root:root, or writable by others (at most five). */
export async function changeableFiles(container: Container, roots: readonly string[]): Promise<string> {
  const found = await container.exec([
    'sh',
    '-c',
    `find ${roots.join(' ')} \\( ! -user 0 -o ! -group 0 -o \\( -perm -0002 ! -type l \\) \\) -print | head -5`,
  ])
  return found.output.trim()
}

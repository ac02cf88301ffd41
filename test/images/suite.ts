// What every image test file shares: podman or a clear skip (a failure in CI, where .ci/run installs
// it), the base and the image built once per run (podman's layer cache makes the second build seconds),
// and the numbers docs/images.md reports, as tap comments.
import { readdirSync, readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { type BuildOptions, type BuildResult, buildImage, type ImageName } from '../../dev/images/build.ts'
import { type Container, type ContainerOptions, startContainer } from '../../dev/images/container.ts'
import { podman, podmanMissing } from '../../dev/images/podman.ts'
import { ensureBaseImage } from '../../dev/images/stand-in-base.ts'

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

/** A container that is stopped (SIGKILL after 5 s) at the end of the test that started it. */
export async function startForTest(test: Test, options: ContainerOptions): Promise<Container> {
  const container = await startContainer(options)
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

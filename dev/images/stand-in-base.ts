// The base both Dockerfiles start from, `node:24.21.0-bookworm-slim`, made locally when no image
// registry is reachable (docs/images.md, "Building here: podman and the stand-in base"): Debian 12
// from debootstrap, the Node binary of the `node` devDependency (the same 24.21.0 the tests run on), and what the official image puts
// beside it (nodejs/docker-node, 24/bookworm-slim/Dockerfile, read in its repository): npm and corepack
// as Node's release tarball carries them, yarn 1.22.22 under /opt with its links in /usr/local/bin, the
// user `node` (1000:1000), docker-entrypoint.sh as the ENTRYPOINT. Package managers are there so the
// image tests can tell when a Dockerfile leaves one in an image. Tagged with the real name so the
// Dockerfiles stay as they ship. Where a registry is reachable, the real image is pulled instead.
//
// The stand-in carries one thing the real image does not: the CA of the TLS proxy these machines reach
// the npm registry through (NODE_EXTRA_CA_CERTS), or every `npm` inside a build fails with
// SELF_SIGNED_CERT_IN_CHAIN. It lives in the stand-in only, never in the project's Dockerfiles, and the
// label below marks the image (and every image built on it) as a stand-in.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { copyFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { nodeBinary } from '../flowise.ts'
import { imageExists, inspectImage, podman, runCommand } from './podman.ts'

export const BASE_IMAGE = 'docker.io/library/node:24.21.0-bookworm-slim'
/** The npm that Node 24.21.0 bundles (24.20.0's changelog: "deps: upgrade npm to 11.19.0"; 24.21.0 kept it). */
export const STAND_IN_NPM = '11.19.0'
/** The corepack that Node 24.21.0 bundles (its changelog: "deps: update corepack to 0.36.0"). */
export const STAND_IN_COREPACK = '0.36.0'
/** The official image's yarn (ENV YARN_VERSION=1.22.22), here from the npm registry's `yarn` package. */
export const STAND_IN_YARN = '1.22.22'
export const STAND_IN_LABEL = 'org.iap-gateway.stand-in-base'
/**
 * The stand-in is made once and kept while its tag exists; a stand-in made by an older recipe is made
 * again. Raise this whenever what buildStandInBase puts in the image changes.
 */
export const STAND_IN_RECIPE = 2
export const STAND_IN_RECIPE_LABEL = 'org.iap-gateway.stand-in-recipe'
const DEBIAN_MIRROR = 'http://deb.debian.org/debian'
// Where the official image has them: /usr/local/bin/node, /usr/local/lib/node_modules/npm.
export const CA_BUNDLE = '/usr/local/share/stand-in-ca/extra-ca.pem'
const SYSTEM_EXTRA_CAS = '/usr/local/share/ca-certificates'

export type BaseResult = { ref: string; made: 'present' | 'pulled' | 'stand-in'; seconds: number }

/**
 * The base image, made only when absent (or a stand-in of an older recipe): pulled when a registry
 * answers, else the stand-in.
 */
export async function ensureBaseImage(onProgress: (message: string) => void = () => {}): Promise<BaseResult> {
  const started = Date.now()
  const seconds = () => Math.round((Date.now() - started) / 1000)
  if (await imageExists(BASE_IMAGE)) {
    const { labels } = await inspectImage(BASE_IMAGE)
    const recipe = labels[STAND_IN_RECIPE_LABEL] ?? '1'
    if (labels[STAND_IN_LABEL] === undefined || recipe === String(STAND_IN_RECIPE)) {
      return { ref: BASE_IMAGE, made: 'present', seconds: seconds() }
    }
    onProgress(`the stand-in is of recipe ${recipe}, this one is ${STAND_IN_RECIPE}: making it again`)
    await buildStandInBase(onProgress)
    return { ref: BASE_IMAGE, made: 'stand-in', seconds: seconds() }
  }
  const pull = await podman(['pull', '--quiet', BASE_IMAGE], { allowFailure: true, timeoutMs: 300_000 })
  if (pull.code === 0) return { ref: BASE_IMAGE, made: 'pulled', seconds: seconds() }
  onProgress(`no registry for ${BASE_IMAGE} (${pull.output.trim().split('\n').at(-1)}): making a stand-in`)
  await buildStandInBase(onProgress)
  return { ref: BASE_IMAGE, made: 'stand-in', seconds: seconds() }
}

/** The extra CAs of this machine's trust store (the TLS proxy's), or none where there are none. */
function extraCas(): string {
  if (!existsSync(SYSTEM_EXTRA_CAS)) return ''
  return readdirSync(SYSTEM_EXTRA_CAS, { recursive: true })
    .map(String)
    .filter((name) => name.endsWith('.crt'))
    .sort()
    .map((name) => readFileSync(join(SYSTEM_EXTRA_CAS, name), 'utf8').trim())
    .join('\n')
}

// The official image's apt sources (bookworm, its updates and security), so `apt-get install` in a
// Dockerfile gets the same packages it would on the real base.
const DEBIAN_SOURCES = `Types: deb
URIs: ${DEBIAN_MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

export async function buildStandInBase(onProgress: (message: string) => void = () => {}): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'stand-in-base-'))
  const root = join(work, 'root')
  try {
    onProgress('debootstrap --variant=minbase bookworm (about 1.5 min)')
    await runCommand('debootstrap', ['--variant=minbase', 'bookworm', root, DEBIAN_MIRROR], {
      timeoutMs: 900_000,
    })
    await rm(join(root, 'etc/apt/sources.list'), { force: true })
    await writeFile(join(root, 'etc/apt/sources.list.d/debian.sources'), DEBIAN_SOURCES)
    // debootstrap leaves its downloads and the package lists behind; the official slim image has neither
    await runCommand('chroot', [root, 'apt-get', 'clean'])
    await rm(join(root, 'var/lib/apt/lists'), { recursive: true, force: true })
    mkdirSync(join(root, 'var/lib/apt/lists/partial'), { recursive: true })

    const node = nodeBinary()
    onProgress(
      `node ${node.version} from the node devDependency; npm ${STAND_IN_NPM}, corepack ${STAND_IN_COREPACK} and yarn ${STAND_IN_YARN} from the registry`,
    )
    const nodeDir = dirname(dirname(realNodeBinary(node.path)))
    await copyFile(join(nodeDir, 'bin', 'node'), join(root, 'usr/local/bin/node'))
    await runCommand('chmod', ['0755', join(root, 'usr/local/bin/node')])
    if (existsSync(join(nodeDir, 'include')))
      await runCommand('cp', ['-a', join(nodeDir, 'include', '.'), join(root, 'usr/local/include')])
    // Node's release tarball: bin/npm, bin/npx and bin/corepack are links into lib/node_modules.
    await unpackPackage(`npm@${STAND_IN_NPM}`, join(root, 'usr/local/lib/node_modules/npm'), work)
    await unpackPackage(
      `corepack@${STAND_IN_COREPACK}`,
      join(root, 'usr/local/lib/node_modules/corepack'),
      work,
    )
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'))
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'))
    await symlink('../lib/node_modules/corepack/dist/corepack.js', join(root, 'usr/local/bin/corepack'))
    // The official Dockerfile: ln -s /usr/local/bin/node /usr/local/bin/nodejs; yarn's release under
    // /opt/yarn-v$YARN_VERSION, linked as /usr/local/bin/yarn and yarnpkg.
    await symlink('/usr/local/bin/node', join(root, 'usr/local/bin/nodejs'))
    const yarnDir = `/opt/yarn-v${STAND_IN_YARN}`
    await unpackPackage(`yarn@${STAND_IN_YARN}`, join(root, yarnDir), work)
    await symlink(`${yarnDir}/bin/yarn`, join(root, 'usr/local/bin/yarn'))
    await symlink(`${yarnDir}/bin/yarnpkg`, join(root, 'usr/local/bin/yarnpkg'))
    // Its ENTRYPOINT: runs the command given, or node with it when it is an option or no command.
    await writeFile(join(root, 'usr/local/bin/docker-entrypoint.sh'), ENTRYPOINT_SCRIPT, { mode: 0o755 })

    // As the official Dockerfile does: groupadd --gid 1000 node && useradd --uid 1000 --gid node
    // --shell /bin/bash --create-home node
    await runCommand('chroot', [root, 'groupadd', '--gid', '1000', 'node'])
    await runCommand('chroot', [
      root,
      'useradd',
      '--uid',
      '1000',
      '--gid',
      'node',
      '--shell',
      '/bin/bash',
      '--create-home',
      'node',
    ])

    const changes = [
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `ENV NODE_VERSION=${node.version}`,
      `ENV YARN_VERSION=${STAND_IN_YARN}`,
      `LABEL ${STAND_IN_LABEL}=debootstrap-bookworm+node-${node.version}+npm-${STAND_IN_NPM}`,
      `LABEL ${STAND_IN_RECIPE_LABEL}=${STAND_IN_RECIPE}`,
      'ENTRYPOINT ["docker-entrypoint.sh"]',
      'CMD ["node"]',
    ]
    const cas = extraCas()
    if (cas) {
      mkdirSync(join(root, dirname(CA_BUNDLE)), { recursive: true })
      await writeFile(join(root, CA_BUNDLE), `${cas}\n`)
      changes.push(`ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`)
    }
    onProgress(`podman import as ${BASE_IMAGE}`)
    const tar = spawn('tar', ['--numeric-owner', '-C', root, '-c', '.'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    await podman(['import', ...changes.flatMap((c) => ['--change', c]), '-', BASE_IMAGE], {
      input: tar.stdout,
      timeoutMs: 600_000,
    })
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** Unpacks a package from the npm registry (npm pack) into `target`, files owned by root. */
async function unpackPackage(spec: string, target: string, work: string): Promise<void> {
  mkdirSync(target, { recursive: true })
  const packed = await runCommand('npm', ['pack', '--json', '--pack-destination', work, spec], {
    timeoutMs: 300_000,
  })
  const tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]?.filename as string)
  await runCommand('tar', ['-xzf', tarball, '-C', target, '--strip-components=1', '--no-same-owner'])
  await rm(tarball, { force: true })
}

/** The stand-in's docker-entrypoint.sh, written for it to behave as the official image's does. */
const ENTRYPOINT_SCRIPT = `#!/bin/sh
# Stand-in for the official node image's entrypoint: an option (-e, --version), a word that is no
# command, or a file that is not executable is handed to node; anything else runs as it is.
set -e
case "$1" in
  -*) set -- node "$@" ;;
  *)
    if ! command -v "$1" >/dev/null 2>&1 || { [ -f "$1" ] && [ ! -x "$1" ]; }; then
      set -- node "$@"
    fi
    ;;
esac
exec "$@"
`

/** node_modules/node/bin/node is a launcher script in some versions: find the real binary beside it. */
function realNodeBinary(path: string): string {
  const arch = `node-${process.platform}-${process.arch}`
  const beside = join(dirname(dirname(path)), 'node_modules', arch, 'bin', 'node')
  return existsSync(beside) ? beside : path
}

// wrk and nginx come from Debian. When they are missing and we are root with apt-get, they are
// installed (the only thing the harness installs); otherwise it says what to run and stops.
import { spawnSync } from 'node:child_process'

const PACKAGES = ['wrk', 'nginx'] as const

function missing(): string[] {
  return PACKAGES.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
}

export async function ensureTools(log: (line: string) => void): Promise<void> {
  const absent = missing()
  if (absent.length === 0) return
  const command = `apt-get update && apt-get install -y ${absent.join(' ')}`
  const root = process.getuid?.() === 0
  const apt = spawnSync('sh', ['-c', 'command -v apt-get']).status === 0
  if (!root || !apt) {
    throw new Error(
      `the benchmark needs ${absent.join(' and ')}: install with \`sudo ${command}\` (Debian/Ubuntu)`,
    )
  }
  log(`installing ${absent.join(', ')} from Debian: ${command}`)
  const result = spawnSync('sh', ['-c', `${command} >/dev/null`], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  if (result.status !== 0 || missing().length > 0) throw new Error(`could not install ${absent.join(', ')}`)
}

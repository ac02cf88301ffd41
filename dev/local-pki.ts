// A throwaway certificate authority and one server certificate, made by the openssl CLI: for local
// peers that speak TLS as their Google counterparts do (PostgreSQL like Cloud SQL, an upstream over
// https). Development and tests only; the key never leaves the temporary folder's process.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface LocalPki {
  readonly dir: string
  /** the CA certificate (public), PEM */
  readonly caFile: string
  /** the server's private key and certificate, PEM */
  readonly key: string
  readonly cert: string
  remove(): void
}

export type PkiOptions = {
  /** subjectAltName entries, e.g. ['DNS:localhost', 'IP:127.0.0.1'] */
  readonly altNames: readonly string[]
  readonly caName: string
}

export function makePki(options: PkiOptions): LocalPki {
  const dir = mkdtempSync(join(tmpdir(), 'local-pki-'))
  // two days: long enough for any run, short enough to be worthless if a key leaked
  const days = '2'
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  const caName = `/CN=${options.caName}`
  run('req', '-x509', ...ec, '-days', days, '-subj', caName, '-keyout', 'ca.key', '-out', 'ca.pem')
  run('req', ...ec, '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr')
  writeFileSync(join(dir, 'san.ext'), `subjectAltName=${options.altNames.join(',')}\n`)
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    days,
    '-extfile',
    'san.ext',
    '-out',
    'server.pem',
  )
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
    cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

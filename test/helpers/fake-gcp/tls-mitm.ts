// gcloud 528 has no endpoint override for some APIs (Service Networking): it sends those through its
// HTTP proxy setting as CONNECT tunnels to the real host. The fake terminates such tunnels with a
// certificate for *.googleapis.com issued by a CA made here, which gcloud is told to trust through
// core/custom_ca_certs_file, and then serves the requests like any other.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCa {
  caFile: string
  key: string
  cert: string
}

let cached: TestCa | undefined

export function testCa(): TestCa {
  if (cached) return cached
  const dir = mkdtempSync(join(tmpdir(), 'fake-gcp-ca-'))
  const f = (name: string) => join(dir, name)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })
  openssl(
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'],
    ...['-subj', '/CN=fake-gcp test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')],
  )
  openssl(
    ...[
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=googleapis.com',
    ],
    ...['-keyout', f('leaf.key'), '-out', f('leaf.csr')],
  )
  writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:*.googleapis.com,DNS:googleapis.com\n')
  openssl(
    ...['x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial'],
    ...['-days', '2', '-extfile', f('ext.cnf'), '-out', f('leaf.pem')],
  )
  cached = {
    caFile: f('ca.pem'),
    key: readFileSync(f('leaf.key'), 'utf8'),
    cert: readFileSync(f('leaf.pem'), 'utf8'),
  }
  return cached
}

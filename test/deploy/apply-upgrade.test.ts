// An upgrade against the fake: changing app.flowiseVersion takes an on-demand Cloud SQL backup before the
// new revision is created, and apply prints its id and the previous revision; a new revision that fails
// leaves traffic on the previous one. Then rollback moves traffic back, says migrations stay, and prints
// the restore command for the backup that upgrade took.
import net from 'node:net'
import t from 'tap'
import { flowiseConfig, type Harness, harness } from './harness.ts'

t.setTimeout(1_800_000)
const SLOW = { timeout: 900_000 }

let h: Harness
const cfg = (version: string, gatewayTag = '0.1.0') => {
  const base = flowiseConfig(h, { allowedCidrs: ['198.51.100.0/24'] }) as Record<string, unknown> & {
    gateway: Record<string, unknown>
    app: Record<string, unknown>
  }
  return h.writeConfig(`upgrade-${version}-${gatewayTag}.yaml`, {
    ...base,
    gateway: { ...base.gateway, tag: gatewayTag },
    app: { ...base.app, flowiseVersion: version },
  })
}
const service = () => h.fake.resources.get('run:demo-project/fw')
const backups = () => [...h.fake.resources.keys()].filter((k) => k.startsWith('sql-run:'))

t.before(async () => {
  h = await harness()
  const first = await h.deploy(['apply', '--config', cfg('3.1.4')])
  if (first.code !== 0) throw new Error(first.stderr)
})
t.teardown(() => h?.close())

t.test('a Flowise upgrade: backup first, then the new revision, and both ids printed', SLOW, async (t) => {
  const from = service().status.latestReadyRevisionName
  const r = await h.deploy(['apply', '--config', cfg('3.1.5')])
  t.equal(r.code, 0, r.stderr)
  t.equal(backups().length, 1)
  const id = backups()[0]?.split('/').pop()
  const backupAt = h.fake.requests.findIndex((q) => q.method === 'POST' && q.path.endsWith('/backupRuns'))
  const replaceAt = h.fake.requests.findLastIndex(
    (q) => q.method === 'PUT' && q.path.endsWith('/services/fw'),
  )
  t.ok(backupAt > 0 && backupAt < replaceAt, 'the backup is taken before the service changes')
  t.match(h.fake.requests[backupAt]?.body, {
    description: `iap-gateway: before the upgrade from revision ${from}`,
  })
  t.match(r.stdout, new RegExp(`Backup ${id} of fw-db taken before the upgrade`))
  t.match(r.stdout, new RegExp(`previous revision: ${from}`))
  t.match(
    r.stdout,
    new RegExp(`gcloud sql backups restore ${id} --restore-instance=fw-db --backup-instance=fw-db`),
  )
  t.match(r.stdout, /flowise: .*flowise:3\.1\.4 -> .*flowise:3\.1\.5/)
  t.not(service().status.latestReadyRevisionName, from)
})

t.test('a gateway upgrade whose revision fails leaves traffic on the previous revision', SLOW, async (t) => {
  const serving = service().status.latestReadyRevisionName
  h.fake.revisionFailures.push('The user-provided container failed to start and listen on the port.')
  const r = await h.deploy(['apply', '--config', cfg('3.1.5', '0.2.0')])
  t.equal(r.code, 1)
  t.equal(backups().length, 2, 'a backup before this upgrade too')
  t.match(r.stdout, new RegExp(`did not become ready: traffic stays on ${serving}\\. Backup: \\d+`))
  t.same(service().status.traffic, [{ revisionName: serving, percent: 100, latestRevision: true }])
})

t.test(
  'rollback moves traffic to the previous ready revision and prints the restore command',
  SLOW,
  async (t) => {
    // The failed gateway revision is behind us: the config goes back to the gateway that served.
    const fixed = await h.deploy(['apply', '--config', cfg('3.1.5')])
    t.equal(fixed.code, 0, fixed.stderr)
    t.equal(service().status.latestReadyRevisionName, 'fw-00004-abc')
    // Back past the revision that never became ready (00003), to 3.1.5 on the old gateway (00002).
    const r = await h.deploy(['rollback', '--config', cfg('3.1.5')])
    t.equal(r.code, 0, r.stderr)
    t.same(service().status.traffic, [{ revisionName: 'fw-00002-abc', percent: 100 }])
    t.match(r.stdout, /Traffic: 100% to fw-00002-abc \(was fw-00004-abc\)\. It runs .*flowise:3\.1\.5/)
    t.match(r.stdout, /Database migrations are NOT undone/)
    t.match(r.stdout, /gcloud sql backups restore \d+ --restore-instance=fw-db --backup-instance=fw-db/)

    // Once more: to the 3.1.4 revision, with the backup the Flowise upgrade took before leaving it.
    const again = await h.deploy(['rollback', '--config', cfg('3.1.5')])
    t.equal(again.code, 0, again.stderr)
    t.same(service().status.traffic, [{ revisionName: 'fw-00001-abc', percent: 100 }])
    t.match(again.stdout, /It runs .*flowise:3\.1\.4/)
    const first = backups()[0]?.split('/').pop()
    t.match(again.stdout, new RegExp(`gcloud sql backups restore ${first} --restore-instance=fw-db`))

    // doctor sees the rollback for what it is; unreachable outside checks say where they ran.
    const { main } = await import('../../deploy/main.ts')
    // A port nobody listens on (port 9 would be refused by fetch itself, a "bad port").
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo
        server.close(() => resolve(port))
      })
    })
    const nobody = `http://127.0.0.1:${closed}/`
    let out = ''
    await main(['doctor', '--config', cfg('3.1.5'), '--gcloud', h.recorder], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: () => true },
      env: h.env,
      outside: { http: nobody, https: nobody, runApp: nobody, timeoutMs: 2000 },
    })
    t.match(out, /^FAIL {2}revision-serving: .*serves 0%/m)
    t.match(
      out,
      /^\?\?\?\? {2}outside-sign-in: .*127\.0\.0\.1:\d+ is not reachable from here \(ECONNREFUSED\)/m,
    )
  },
)

t.test('rollback with nothing to go back to says so', SLOW, async (t) => {
  const r = await h.deploy(['rollback', '--config', cfg('3.1.5')])
  t.equal(r.code, 1)
  t.match(r.stderr, /DEPLOY_ERR_REFUSED: rollback: no ready revision of fw older than fw-00001-abc/)
})

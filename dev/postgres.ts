// PostgreSQL from the Debian package (`postgresql`), in a temporary data directory, on a loopback
// address and port (a free port unless told), password-authenticated (scram) as on Cloud SQL, and
// stopped at the end. It also listens on a Unix socket in a folder of its own, which holds nothing
// else: the folder Cloud Run's built-in Cloud SQL connection would mount under /cloudsql/ (the socket's
// name, .s.PGSQL.PORT, carries the port). PostgreSQL refuses to run as root: run as root (CI
// containers), the server runs as the `postgres` user the package creates.
// Used by the end-to-end and image suites and by `npm run deploy -- run-local` (development only).
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { onExit } from 'signal-exit'
import { freePort } from './free-port.ts'

export { freePort }

export type Postgres = {
  host: string
  port: number
  /** the folder that holds the server's Unix socket (`.s.PGSQL.<port>`) and nothing else */
  socketDir: string
  user: string
  password: string
  database: string
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  stop(): Promise<void>
  /** last resort when the test process exits without its teardown (a timeout's signal) */
  kill(): void
}

function postgresBin(): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : []
  const found = versions.map((v) => join(root, v, 'bin')).find((dir) => existsSync(join(dir, 'postgres')))
  if (!found) throw new Error('PostgreSQL not found under /usr/lib/postgresql: apt-get install -y postgresql')
  return found
}

function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim())
  return { uid: id('-u'), gid: id('-g') }
}

export type PostgresOptions = {
  /** the loopback address to listen on (default 127.0.0.1) */
  host?: string
  /** the port (default: a free one) */
  port?: number
  /** the login role, created with a random password (default flowise) */
  user?: string
  /** the database created for it (default flowise) */
  database?: string
}

export async function startPostgres(options: PostgresOptions = {}): Promise<Postgres> {
  const bin = postgresBin()
  const as = runAs()
  const base = mkdtempSync(join(tmpdir(), 'e2e-pg-'))
  const data = join(base, 'data')
  const password = randomBytes(18).toString('base64url')
  const pwfile = join(base, 'pwfile')
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 })
  if (as) {
    chmodSync(base, 0o700)
    chownSync(base, as.uid, as.gid)
    chownSync(pwfile, as.uid, as.gid)
  }
  const user = options.user ?? 'flowise'
  const database = options.database ?? 'flowise'
  const host = options.host ?? '127.0.0.1'
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', user, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync'],
    { encoding: 'utf8', ...as },
  )
  rmSync(pwfile)
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`)
  // initdb admits TCP clients from 127.0.0.1/32 and ::1/128 only; the server may listen on any
  // loopback address (127.0.0.0/8), still with a password
  appendFileSync(join(data, 'pg_hba.conf'), 'host all all 127.0.0.0/8 scram-sha-256\n')
  const port = options.port ?? (await freePort(host))
  // the socket's folder holds only the socket (and its lock file), so it can be mounted into a
  // container without the data directory or the key; searchable by the container's user
  const socketDir = join(base, 'socket')
  mkdirSync(socketDir, { mode: 0o755 })
  chmodSync(socketDir, 0o755)
  if (as) chownSync(socketDir, as.uid, as.gid)
  const server = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-h', host, '-k', socketDir, '-c', 'fsync=off'],
    // its own process group: a Ctrl-C in the terminal must not stop the database under its clients
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true, ...as },
  )
  let log = ''
  server.stderr.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-4000)
  })
  const exited = once(server, 'exit')
  // tap's timeout (SIGALRM) ends the test process without its teardown: leave no server behind
  const killOnExit = () => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
  }
  const removeExitHook = onExit(killOnExit)
  exited.then(removeExitHook)
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGINT') // fast shutdown
      await exited
    }
    rmSync(base, { recursive: true, force: true })
  }
  const admin = { host, port, user, password, database: 'postgres' }
  const deadline = Date.now() + 60_000
  for (;;) {
    const client = new pg.Client(admin)
    try {
      await client.connect()
      await client.query(`CREATE DATABASE "${database}"`)
      await client.end()
      break
    } catch (error) {
      await client.end().catch(() => {})
      if (Date.now() > deadline || server.exitCode !== null) {
        await stop()
        throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${log}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  return {
    host,
    port,
    socketDir,
    user,
    password,
    database,
    async query(sql, params) {
      const client = new pg.Client({ ...admin, database })
      await client.connect()
      try {
        return (await client.query(sql, params)).rows
      } finally {
        await client.end()
      }
    },
    stop,
    kill: killOnExit,
  }
}

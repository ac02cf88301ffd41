import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { crc32c } from '@aws-crypto/crc32c'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

/**
 * A stand-in for Secret Manager's gRPC API (google.cloud.secretmanager.v1.SecretManagerService,
 * AccessSecretVersion only), built from the .proto files that ship inside the client library, so the
 * real SecretManagerServiceClient talks to it unchanged through SECRET_MANAGER_ENDPOINT.
 *
 * In-process: `startSecretManagerServer({ 'projects/p/secrets/s': ['v1', 'v2'] })`.
 * As a process: `node test/helpers/secret-manager-server.ts --port 0 --secrets-file F` (F a JSON object
 * like the one above, or `-` for stdin; never values on the command line) prints one JSON line
 * `{"endpoint":"127.0.0.1:PORT","port":PORT}` once it listens, and stops on SIGTERM/SIGINT.
 */

/** Secret name (`projects/P/secrets/S`) -> its versions' values, version 1 first; a string is one version. */
export type SecretTable = Record<string, SecretValue | readonly SecretValue[]>
/** Text, or raw bytes (to serve values that are not UTF-8). */
export type SecretValue = string | Uint8Array

export interface SecretManagerServer {
  /** host:port, for SECRET_MANAGER_ENDPOINT. */
  readonly endpoint: string
  readonly port: number
  /** Every requested version name, in arrival order. */
  readonly calls: string[]
  /** Adds (or replaces) a secret's versions. */
  setSecret(name: string, versions: SecretValue | readonly SecretValue[]): void
  /** The next `times` calls for `name` (a secret or a version name) fail with the gRPC `code`. */
  failNext(name: string, code: grpc.status, times?: number): void
  /** Responses for `name` carry a checksum that does not match their data. */
  corruptChecksum(name: string): void
  /** Responses for `name` leave out the checksum, or the whole payload (what a broken server might do). */
  omit(name: string, part: 'checksum' | 'payload'): void
  /** Holds every response until `count` calls have arrived (proves the client asks in parallel). */
  holdUntil(count: number): void
  close(): Promise<void>
}

const require = createRequire(import.meta.url)
const CLIENT_PROTOS = join(
  dirname(require.resolve('@google-cloud/secret-manager/package.json')),
  'build/protos',
)
// google-gax exports no package.json; its main file sits in build/src.
const GAX_PROTOS = join(dirname(require.resolve('google-gax')), '../protos')
const VERSION_NAME = /^(projects\/[^/]+\/secrets\/[^/]+)\/versions\/([^/]+)$/

export async function startSecretManagerServer(
  table: SecretTable = {},
  { host = '127.0.0.1', port: wantedPort = 0 }: { host?: string; port?: number } = {},
): Promise<SecretManagerServer> {
  const definition = protoLoader.loadSync('google/cloud/secretmanager/v1/service.proto', {
    includeDirs: [CLIENT_PROTOS, GAX_PROTOS],
    keepCase: false,
    longs: String,
  })
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: {
      cloud: { secretmanager: { v1: { SecretManagerService: { service: grpc.ServiceDefinition } } } }
    }
  }
  const secrets = new Map<string, readonly SecretValue[]>()
  const failures = new Map<string, { code: grpc.status; times: number }>()
  const corrupt = new Set<string>()
  const omitted = new Map<string, 'checksum' | 'payload'>()
  const calls: string[] = []
  let hold = 0
  let waiting: (() => void)[] = []

  const setSecret = (name: string, versions: SecretValue | readonly SecretValue[]) => {
    secrets.set(name, Array.isArray(versions) ? [...versions] : [versions as SecretValue])
  }
  for (const [name, versions] of Object.entries(table)) setSecret(name, versions)

  const answer = (name: string): { error: grpc.ServiceError | null; response?: unknown } => {
    const match = VERSION_NAME.exec(name)
    const secretName = match?.[1] ?? name
    for (const key of [name, secretName]) {
      const failure = failures.get(key)
      if (failure !== undefined && failure.times > 0) {
        failure.times--
        return { error: serviceError(failure.code, `injected failure for ${key}`) }
      }
    }
    const versions = secrets.get(secretName)
    const version = match?.[2]
    const index = version === 'latest' ? (versions?.length ?? 0) : Number(version)
    const value = versions?.[index - 1]
    if (match === null || value === undefined) {
      return { error: serviceError(grpc.status.NOT_FOUND, `Secret Version [${name}] not found.`) }
    }
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value)
    const checksum = crc32c(data) + (corrupt.has(name) || corrupt.has(secretName) ? 1 : 0)
    const omit = omitted.get(name) ?? omitted.get(secretName)
    const payload = omit === 'checksum' ? { data } : { data, dataCrc32c: String(checksum) }
    return {
      error: null,
      response: { name: `${secretName}/versions/${index}`, ...(omit === 'payload' ? {} : { payload }) },
    }
  }

  const server = new grpc.Server()
  server.addService(loaded.google.cloud.secretmanager.v1.SecretManagerService.service, {
    accessSecretVersion(
      call: grpc.ServerUnaryCall<{ name: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      calls.push(call.request.name)
      const reply = () => {
        const { error, response } = answer(call.request.name)
        callback(error, response)
      }
      if (calls.length >= hold) {
        for (const release of waiting) release()
        waiting = []
        reply()
      } else {
        waiting.push(reply)
      }
    },
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${host.includes(':') ? `[${host}]` : host}:${wantedPort}`,
      grpc.ServerCredentials.createInsecure(),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    ),
  )
  return {
    endpoint: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    calls,
    setSecret,
    failNext(name, code, times = 1) {
      failures.set(name, { code, times })
    },
    corruptChecksum(name) {
      corrupt.add(name)
    },
    omit(name, part) {
      omitted.set(name, part)
    },
    holdUntil(count) {
      hold = count
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const release of waiting) release()
        server.tryShutdown(() => resolve())
        // A client still connected would hold tryShutdown open; tests want the port gone now.
        setTimeout(() => server.forceShutdown(), 1_000).unref()
      }),
  }
}

function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() })
}

async function cli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'secrets-file': { type: 'string' },
    },
  })
  const file = values['secrets-file']
  const table: SecretTable =
    file === undefined ? {} : JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'))
  if (!/^\d{1,5}$/.test(values.port)) throw new Error(`--port (${values.port}): not a port number`)
  const server = await startSecretManagerServer(table, { host: values.host, port: Number(values.port) })
  process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint, port: server.port })}\n`)
  const stop = () => void server.close().then(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

if (import.meta.main) {
  cli(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`secret-manager-server: ${error.message}\n`)
    process.exit(1)
  })
}

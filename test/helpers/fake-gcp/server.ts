// A stateful fake of the Google Cloud REST APIs the deploy touches. The real gcloud is pointed at it
// (see gcloud-env.ts), so what is faked is only Google's side: resources live in one map keyed by their
// REST path, every request is recorded with its parsed body, and faults can be injected per route.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { TLSSocket } from 'node:tls'
import { buildRoutes } from './routes.ts'
import { testCa } from './tls-mitm.ts'

/**
 * A JSON document of one of Google's APIs, as gcloud sends it or the fake stores it. Google's schemas are
 * far larger than what the fake models; each route reads the fields its cited documents describe and
 * keeps the rest as sent, so the fake types them loosely, in this one place, on purpose.
 */
// biome-ignore lint/suspicious/noExplicitAny: free-form API JSON, read field by field by each route
export type ApiJson = any

export interface Recorded {
  method: string
  path: string
  query: Record<string, string>
  body: unknown
  raw: string
  status: number
}

export interface Reply {
  status: number
  body: unknown
  headers?: Record<string, string>
  /** Bytes to answer with instead of the JSON body (an object's media). */
  media?: Buffer
}

export interface RouteContext {
  fake: FakeGcp
  m: string[]
  query: Record<string, string>
  body: ApiJson
  base: string
  raw: Buffer
  headers: http.IncomingHttpHeaders
}

export interface Route {
  method: string
  re: RegExp
  handle: (c: RouteContext) => Reply
}

export interface Fault {
  method: string
  pathIncludes: string
  status: number
  times: number
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
// Reads that travel as POST in Google's APIs (policy reads, CRM getIamPolicy).
const READ_POSTS = [/:getIamPolicy$/, /:testIamPermissions$/, /\/operations\/[^/]+\/wait$/]

export function isMutation(r: Pick<Recorded, 'method' | 'path'>): boolean {
  return MUTATING.has(r.method) && !READ_POSTS.some((re) => re.test(r.path))
}

export function notFound(what: string): Reply {
  return { status: 404, body: { error: { code: 404, message: `${what} not found`, status: 'NOT_FOUND' } } }
}

/** The stored resource, or the API's 404 when there is none. */
export function found(resource: unknown, what: string): Reply {
  return resource === undefined ? notFound(what) : { status: 200, body: resource }
}

export function conflict(what: string): Reply {
  return {
    status: 409,
    body: { error: { code: 409, message: `${what} already exists`, status: 'ALREADY_EXISTS' } },
  }
}

export function badRequest(message: string): Reply {
  return { status: 400, body: { error: { code: 400, message, status: 'FAILED_PRECONDITION' } } }
}

export class FakeGcp {
  readonly resources = new Map<string, ApiJson>()
  readonly requests: Recorded[] = []
  readonly faults: Fault[] = []
  readonly projectNumber = '123456789012'
  /** Secret payloads and passwords, kept out of `resources` so snapshots never hold them. */
  readonly payloads = new Map<string, string>()
  /** Cloud Storage object bytes, by `BUCKET/NAME`. */
  readonly media = new Map<string, Buffer>()
  /** Service accounts that the next policy write naming them refuses, as IAM does while they propagate. */
  readonly unpropagated = new Set<string>()
  simulatePropagation = false
  /** Statuses successive reads of a build report (Cloud Build); empty means SUCCESS at once. */
  buildStatuses: string[] = []
  /** Networks whose peering a deleted Cloud SQL instance still holds (see sql.ts). */
  readonly producerHolds = new Set<string>()
  /** Log-based metrics created while this is set stay unknown to Monitoring until metricsArrived(). */
  metricsArriveLate = false
  readonly lateMetrics = new Set<string>()
  /** The minutes have passed: Monitoring knows every log-based metric (see observability.ts). */
  metricsArrived(): void {
    this.lateMetrics.clear()
  }
  /** Failure messages for the next revisions Cloud Run creates, one each (see run.ts). */
  revisionFailures: string[] = []
  /**
   * Who calls, when not an Owner: the member and the roles it holds on the project. Undefined is an Owner,
   * for whom every permission check passes.
   */
  caller: { member: string; roles: string[] } | undefined

  /** The days after an instance's deletion have passed: Service Networking lets go of the peering. */
  releaseProducerHolds(): void {
    this.producerHolds.clear()
  }
  private nextId = 1000
  private server: http.Server | undefined
  private routes: Route[] = []
  private readonly tunnels = new Set<TLSSocket>()
  port = 0

  async start(): Promise<this> {
    this.routes = buildRoutes()
    this.server = http.createServer((req, res) => this.handle(req, res))
    // APIs without an endpoint override reach the fake as CONNECT tunnels to their real host (tls-mitm.ts).
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
      const ca = testCa()
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      const tlsSocket = new TLSSocket(socket, { isServer: true, key: ca.key, cert: ca.cert })
      this.tunnels.add(tlsSocket)
      tlsSocket.on('close', () => this.tunnels.delete(tlsSocket))
      this.server?.emit('connection', tlsSocket)
      void req
    })
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
    return this
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections()
    for (const t of this.tunnels) t.destroy()
    await new Promise<void>((resolve) => this.server?.close(() => resolve()))
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`
  }

  id(): string {
    this.nextId += 1
    return `${this.nextId}4242`
  }

  /** Answers the next `times` requests matching method and path fragment with `status`. */
  inject(fault: Omit<Fault, 'times'> & { times?: number }): void {
    this.faults.push({ times: 1, ...fault })
  }

  mutations(): Recorded[] {
    return this.requests.filter((r) => isMutation(r) && r.status < 400)
  }

  /** A stable, comparable picture of every resource (ids and timestamps included: both are deterministic). */
  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (const key of [...this.resources.keys()].sort()) out[key] = this.resources.get(key)
    return out
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      // gcloud sends absolute-form requests through its proxy setting; the host carries the region for Cloud Run.
      const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`)
      const rawBuffer = Buffer.concat(chunks)
      const raw = rawBuffer.toString('utf8')
      const query = Object.fromEntries(url.searchParams)
      // A tunnelled request names its API only in the host (servicenetworking.googleapis.com).
      const api = /^([a-z]+)\.googleapis\.com$/.exec(url.hostname)?.[1]
      const path = (api ? `/${api}` : '') + decodeURIComponent(url.pathname)
      let body: unknown = raw
      if ((req.headers['content-type'] ?? '').includes('json') && raw) body = JSON.parse(raw)
      let reply: Reply
      try {
        reply = this.dispatch(req.method ?? 'GET', path, query, body, rawBuffer, req.headers)
      } catch (error) {
        /* c8 ignore next 2 -- a bug in the fake itself: answer it visibly instead of crashing */
        reply = { status: 500, body: { error: { code: 500, message: `fake crashed: ${String(error)}` } } }
      }
      this.requests.push({ method: req.method ?? 'GET', path, query, body, raw, status: reply.status })
      if (reply.media) {
        res.writeHead(reply.status, { 'content-type': 'application/octet-stream', ...reply.headers })
        res.end(reply.media)
        return
      }
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
      res.end(JSON.stringify(reply.body ?? {}))
    })
  }

  private dispatch(
    method: string,
    path: string,
    query: Record<string, string>,
    body: unknown,
    raw: Buffer,
    headers: http.IncomingHttpHeaders,
  ): Reply {
    const fault = this.faults.find((f) => f.times > 0 && f.method === method && path.includes(f.pathIncludes))
    if (fault) {
      fault.times -= 1
      return {
        status: fault.status,
        body: { error: { code: fault.status, message: `injected ${fault.status}`, status: 'INJECTED' } },
      }
    }
    for (const route of this.routes) {
      if (route.method !== method) continue
      const m = route.re.exec(path)
      if (!m) continue
      return route.handle({ fake: this, m: [...m], query, body, base: this.base, raw, headers })
    }
    return { status: 501, body: { error: { code: 501, message: `fake has no route for ${method} ${path}` } } }
  }
}

// Probes as Cloud Run runs them, against real sockets: the first attempt after the initial delay, one
// per period, each bounded by its timeout; 200-399 passes, anything else counts as a failure, and
// failureThreshold consecutive failures end a startup probe. Periods are fractions of a second here
// so the file runs fast; the YAML's are whole seconds.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { type AddressInfo, createServer as createTcpServer } from 'node:net'
import t from 'tap'
import { attempt, livenessProbe, ProbeFailure, startupProbe } from '../../../deploy/run-local/probe.ts'
import { defaultStartupProbe, type Probe } from '../../../deploy/run-local/probes-spec.ts'
import { freePort } from '../../../dev/free-port.ts'

const probe = (overrides: Partial<Probe>): Probe => ({
  field: 'spec.template.spec.containers[1].startupProbe',
  kind: 'http',
  port: 1,
  path: '/ready',
  headers: [],
  initialDelaySeconds: 0,
  periodSeconds: 0.05,
  timeoutSeconds: 0.05,
  failureThreshold: 3,
  implicit: false,
  ...overrides,
})

async function serve(
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; port: number; hits: number[] }> {
  const hits: number[] = []
  const server = createServer((req, res) => {
    hits.push(performance.now())
    handler?.(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { server, port: (server.address() as AddressInfo).port, hits }
}

t.test(
  'an HTTP startup probe passes once the container answers 2xx, after the failures before',
  async (t) => {
    let ready = false
    setTimeout(() => (ready = true), 120)
    const { port } = await serve((req, res) => {
      res.statusCode = ready && req.headers['x-probe'] === 'yes' ? 204 : 503
      res.end()
    })
    const outcome = await startupProbe(probe({ port, failureThreshold: 20, headers: [['x-probe', 'yes']] }))
    t.ok(outcome.attempts > 1, `passed on attempt ${outcome.attempts}, after ${outcome.ms} ms`)
    t.ok(outcome.ms >= 100)
  },
)

t.test('a redirect passes (not followed); a 404 fails', async (t) => {
  const { port } = await serve((req, res) => {
    res.writeHead(req.url === '/ready' ? 302 : 404, { location: '/elsewhere' }).end()
  })
  t.equal(await attempt(probe({ port })), undefined, '302: passed')
  t.equal(await attempt(probe({ port, path: '/other' })), 'answered 404')
})

t.test(
  'a startup probe that never passes fails after failureThreshold attempts, naming its field and window',
  async (t) => {
    const { port, hits } = await serve((_req, res) => {
      res.statusCode = 500
      res.end()
    })
    const started = performance.now()
    const error = await startupProbe(probe({ port, failureThreshold: 4, periodSeconds: 0.1 })).catch((e) => e)
    const elapsed = performance.now() - started
    t.type(error, ProbeFailure)
    t.match(
      error.message,
      /^spec\.template\.spec\.containers\[1\]\.startupProbe: http 127\.0\.0\.1:\d+\/ready failed 4 times in a row over its 0\.4 s window \(failureThreshold 4 × periodSeconds 0\.1\); last: answered 500$/,
    )
    t.equal(hits.length, 4, 'exactly failureThreshold attempts')
    t.ok(elapsed >= 290, `one attempt per period: ${Math.round(elapsed)} ms for 4 attempts 100 ms apart`)
    const gaps = hits.slice(1).map((hit, i) => hit - (hits[i] as number))
    t.ok(
      gaps.every((gap) => gap >= 80),
      `attempts a period apart: ${gaps.map(Math.round).join(', ')} ms`,
    )
  },
)

t.test('an attempt that gets no answer within timeoutSeconds fails', async (t) => {
  const { port } = await serve(() => {}) // never answers
  const failure = await attempt(probe({ port, timeoutSeconds: 0.1 }))
  t.equal(failure, 'no answer within 0.1 s')
  const closed = await freePort()
  t.equal(await attempt(probe({ port: closed })), 'ECONNREFUSED', 'nothing listening: refused')
})

t.test('no attempt before initialDelaySeconds', async (t) => {
  const { port, hits } = await serve((_req, res) => res.end('ok'))
  const started = performance.now()
  await startupProbe(probe({ port, initialDelaySeconds: 0.2 }))
  t.ok(
    (hits[0] as number) - started >= 190,
    `first attempt after ${Math.round((hits[0] as number) - started)} ms`,
  )
})

t.test(
  'TCP probes: an open connection passes; an explicit probe gets one connection per attempt',
  async (t) => {
    const port = await freePort()
    const tcp = probe({ kind: 'tcp', port, path: '', failureThreshold: 2 })
    const error = await startupProbe(tcp).catch((e) => e)
    t.match(error.message, /tcp 127\.0\.0\.1:\d+ failed 2 times in a row .* last: ECONNREFUSED/)
    const server = createTcpServer((socket) => socket.end()).listen(port, '127.0.0.1')
    await once(server, 'listening')
    t.teardown(() => server.close())
    t.match(await startupProbe(tcp), { attempts: 1 })
  },
)

t.test("Cloud Run's default TCP probe keeps connecting until its timeout, then fails", async (t) => {
  const port = await freePort()
  const implicit = { ...defaultStartupProbe('spec.template.spec.containers[0]', port), timeoutSeconds: 0.4 }
  const server = createTcpServer((socket) => socket.end())
  setTimeout(() => server.listen(port, '127.0.0.1'), 150)
  t.teardown(() => server.close())
  const outcome = await startupProbe(implicit)
  t.equal(outcome.attempts, 1, 'one attempt, failureThreshold 1')
  t.ok(outcome.ms >= 140, `it waited for the port: ${outcome.ms} ms`)
  server.close()
  await once(server, 'close')
  const started = performance.now()
  const error = await startupProbe({ ...implicit, timeoutSeconds: 0.3 }).catch((e) => e)
  t.match(
    error.message,
    /\(Cloud Run's default TCP probe\): tcp .* failed 1 times in a row over its 240 s window/,
  )
  t.ok(performance.now() - started >= 290, 'after its whole timeout')
})

t.test('a container that exits stops its startup probe at once', async (t) => {
  const port = await freePort()
  const exit = Promise.withResolvers<void>()
  setTimeout(exit.resolve, 100)
  const started = performance.now()
  const error = await startupProbe(probe({ port, failureThreshold: 1000 }), { exited: exit.promise }).catch(
    (e) => e,
  )
  t.match(error.message, /startupProbe: the container exited before the probe passed/)
  t.ok(performance.now() - started < 1000)
  const stopped = new AbortController()
  stopped.abort()
  t.match(await startupProbe(probe({ port }), { signal: stopped.signal }).catch((e) => e), {
    message: /stopped/,
  })
  const late = Promise.withResolvers<void>()
  const { port: slow } = await serve((_req, res) => {
    late.resolve()
    setTimeout(() => res.writeHead(500).end(), 20)
  })
  const error2 = await startupProbe(probe({ port: slow, timeoutSeconds: 1 }), { exited: late.promise }).catch(
    (e) => e,
  )
  t.match(error2.message, /exited before the probe passed/, 'an exit during an attempt ends the probe too')
})

t.test(
  'a liveness probe reports each run of failureThreshold consecutive failures, and a pass resets the count',
  async (t) => {
    let answers = [200, 500, 500, 200, 500, 500, 500, 500, 500, 500]
    const { port } = await serve((_req, res) => {
      res.statusCode = answers.shift() ?? 200
      res.end()
    })
    const stop = new AbortController()
    const failures: string[] = []
    const watching = livenessProbe(
      probe({ port, field: 'x.livenessProbe' }),
      { signal: stop.signal, port },
      (reason) => failures.push(reason),
    )
    while (answers.length > 0) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => setTimeout(resolve, 120))
    stop.abort()
    await watching
    t.same(failures, [
      'x.livenessProbe: failed 3 times in a row; last: answered 500',
      'x.livenessProbe: failed 3 times in a row; last: answered 500',
    ])
    answers = []
  },
)

t.test('a liveness probe stopped during an attempt reports nothing', async (t) => {
  const answering = Promise.withResolvers<void>()
  const { port } = await serve((_req, res) => {
    answering.resolve()
    setTimeout(() => res.writeHead(500).end(), 100)
  })
  const stop = new AbortController()
  const failures: string[] = []
  const watching = livenessProbe(
    probe({ port, failureThreshold: 1, timeoutSeconds: 1 }),
    { signal: stop.signal, port },
    (r) => failures.push(r),
  )
  await answering.promise
  stop.abort()
  await watching
  t.same(failures, [], 'the failing answer came after the stop')
})

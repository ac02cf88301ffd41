// Runs a container's probes the way Cloud Run describes them (probes-spec.ts has the sources): the
// first attempt after initialDelaySeconds, then one every periodSeconds, each with timeoutSeconds to
// answer; an HTTP probe passes on a status from 200 to 399 (redirects are not followed), a TCP probe
// when the connection opens. A startup probe fails after failureThreshold consecutive failures; a
// liveness probe reports each run of failureThreshold failures and keeps watching.
//
// Cloud Run's default TCP startup probe (failureThreshold 1, timeoutSeconds 240) is the one exception:
// its single attempt keeps connecting until its timeout, since a container cannot have bound its port
// at the instant it starts, and Cloud Run does not fail every such container.
import { connect } from 'node:net'
import type { Probe } from './probes-spec.ts'

export type ProbeOutcome = { ms: number; attempts: number }

export type ProbeRun = {
  /** where the probe's port is on this machine (the ingress container's may be remapped) */
  host?: string
  port?: number
  /** resolves when the container exits: the probe fails at once */
  exited?: Promise<unknown>
  signal?: AbortSignal
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    })
  })

/** One attempt: undefined when it passed, else why it failed. */
export async function attempt(probe: Probe, run: ProbeRun = {}): Promise<string | undefined> {
  const host = run.host ?? '127.0.0.1'
  const port = run.port ?? probe.port
  const timeoutMs = probe.timeoutSeconds * 1000
  if (probe.kind === 'http') {
    try {
      const response = await fetch(`http://${host}:${port}${probe.path}`, {
        headers: Object.fromEntries(probe.headers),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      })
      await response.body?.cancel()
      return response.status >= 200 && response.status < 400 ? undefined : `answered ${response.status}`
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') return `no answer within ${probe.timeoutSeconds} s`
      // undici names the cause of every failed exchange (ECONNREFUSED, UND_ERR_SOCKET, ...)
      /* c8 ignore next */
      return (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message
    }
  }
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const failure = await new Promise<string | undefined>((resolve) => {
      const socket = connect({ host, port, timeout: Math.max(1, deadline - performance.now()) })
      socket.once('connect', () => {
        socket.destroy()
        resolve(undefined)
      })
      // a failed connection always has its errno code
      /* c8 ignore next */
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
      /* c8 ignore start: a connection that neither opens nor fails needs a black-holed address, which a
         test cannot count on having */
      socket.once('timeout', () => {
        socket.destroy()
        resolve(`no connection within ${probe.timeoutSeconds} s`)
      })
      /* c8 ignore stop */
    })
    // an explicit probe's attempt is one connection; the default probe's keeps trying until its timeout
    if (failure === undefined || !probe.implicit || performance.now() >= deadline || run.signal?.aborted) {
      return failure
    }
    await sleep(Math.min(250, deadline - performance.now()), run.signal)
  }
}

export class ProbeFailure extends Error {
  override name = 'ProbeFailure'
}

/** Resolves once the startup probe passes; rejects when it fails its window or the container exits. */
export async function startupProbe(probe: Probe, run: ProbeRun = {}): Promise<ProbeOutcome> {
  const started = performance.now()
  let exited = false
  run.exited?.then(() => {
    exited = true
  })
  const stop = new AbortController()
  run.exited?.then(() => stop.abort())
  run.signal?.addEventListener('abort', () => stop.abort())
  const where = `${run.host ?? '127.0.0.1'}:${run.port ?? probe.port}${probe.kind === 'http' ? probe.path : ''}`
  await sleep(probe.initialDelaySeconds * 1000, stop.signal)
  let last = ''
  for (let attempts = 1; attempts <= probe.failureThreshold; attempts++) {
    const began = performance.now()
    if (exited) throw new ProbeFailure(`${probe.field}: the container exited before the probe passed`)
    if (run.signal?.aborted) throw new ProbeFailure(`${probe.field}: stopped`)
    const failure = await attempt(probe, { ...run, signal: stop.signal })
    if (failure === undefined) return { ms: Math.round(performance.now() - started), attempts }
    if (exited) throw new ProbeFailure(`${probe.field}: the container exited before the probe passed`)
    last = failure
    if (attempts < probe.failureThreshold) {
      await sleep(Math.max(0, probe.periodSeconds * 1000 - (performance.now() - began)), stop.signal)
    }
  }
  const window = probe.failureThreshold * probe.periodSeconds
  throw new ProbeFailure(
    `${probe.field}: ${probe.kind} ${where} failed ${probe.failureThreshold} times in a row over its ${window} s ` +
      `window (failureThreshold ${probe.failureThreshold} × periodSeconds ${probe.periodSeconds}); last: ${last}`,
  )
}

/**
 * Watches a liveness probe until `signal` aborts; `onFailure` is called after each run of
 * failureThreshold consecutive failures (Cloud Run then restarts the container).
 */
export function livenessProbe(
  probe: Probe,
  run: ProbeRun & { signal: AbortSignal },
  onFailure: (reason: string) => void,
): Promise<void> {
  return (async () => {
    await sleep(probe.initialDelaySeconds * 1000, run.signal)
    let failures = 0
    while (!run.signal.aborted) {
      const began = performance.now()
      const failure = await attempt(probe, run)
      if (run.signal.aborted) return
      failures = failure === undefined ? 0 : failures + 1
      if (failures >= probe.failureThreshold) {
        failures = 0
        onFailure(`${probe.field}: failed ${probe.failureThreshold} times in a row; last: ${failure}`)
      }
      await sleep(Math.max(0, probe.periodSeconds * 1000 - (performance.now() - began)), run.signal)
    }
  })()
}

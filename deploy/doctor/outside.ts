// The checks from outside: what a browser meets at the domain and at the run.app URL. Each request has a
// timeout and follows no redirect. Where the doctor runs matters: Cloud Armor answers 403 to an address
// outside allowedCidrs, so from there the sign-in check cannot tell, and says so.
import type { DeployConfig } from '../config.ts'
import { names } from '../steps/names.ts'
import { fail, type Invariant, type Outcome, pass, projectNumber } from './invariant.ts'
import type { Reads } from './reads.ts'

/** Where the outside checks go; tests point them at local servers. */
export interface OutsideTargets {
  http?: string
  https?: string
  runApp?: string
  timeoutMs?: number
}

type Answer = { status: number; location: string } | { unreachable: string }

async function ask(url: string, timeoutMs: number): Promise<Answer> {
  try {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    await res.body?.cancel()
    return { status: res.status, location: res.headers.get('location') ?? '' }
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } }
    const why =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.message)
    return { unreachable: why }
  }
}

const notFromHere = (url: string, why: string): Outcome => ({
  verdict: 'could-not-check',
  reason: `${new URL(url).host} is not reachable from here (${why}); run doctor where DNS points at the load balancer`,
})

async function runAppUrl(r: Reads): Promise<string> {
  // A disabled default URL is absent from the status; its name is SERVICE-PROJECT_NUMBER.REGION.run.app.
  return `https://${names(r.config).service}-${await projectNumber(r)}.${r.config.region}.run.app/`
}

export function outsideInvariants(c: DeployConfig, t: OutsideTargets = {}): Invariant[] {
  const timeoutMs = t.timeoutMs ?? 10_000
  const http = t.http ?? `http://${c.domain}/`
  const https = t.https ?? `https://${c.domain}/`
  return [
    {
      id: 'outside-http-redirect',
      title: 'HTTP redirects to HTTPS',
      check: async () => {
        const a = await ask(http, timeoutMs)
        if ('unreachable' in a) return notFromHere(http, a.unreachable)
        return [301, 302, 307, 308].includes(a.status) && a.location.startsWith(`https://${c.domain}`)
          ? pass(`${a.status} to ${new URL(a.location).origin}`)
          : fail(
              `${http} answered ${a.status}${a.location ? ` to ${a.location}` : ''}, not a redirect to https://${c.domain}`,
            )
      },
    },
    {
      id: 'outside-sign-in',
      title: 'HTTPS without sign-in goes to Google sign-in, not to the app',
      check: async () => {
        const a = await ask(https, timeoutMs)
        if ('unreachable' in a) return notFromHere(https, a.unreachable)
        if (a.status === 403)
          return {
            verdict: 'could-not-check',
            reason: '403: Cloud Armor refused this machine (its address is not in allowedCidrs), or IAP did',
          }
        const host = a.location ? new URL(a.location, https).host : ''
        return a.status >= 300 && a.status < 400 && host === 'accounts.google.com'
          ? pass(`${a.status} to accounts.google.com`)
          : fail(
              `${https} answered ${a.status}${host ? ` to ${host}` : ''} without sign-in: IAP is not in front of the app`,
            )
      },
    },
    {
      id: 'outside-run-app',
      title: 'the run.app URL does not serve the app',
      check: async (r) => {
        const url = t.runApp ?? (await runAppUrl(r))
        const a = await ask(url, timeoutMs)
        // No such name, or Google's 404 for a disabled URL or an ingress that refuses the internet.
        if ('unreachable' in a)
          return a.unreachable === 'ENOTFOUND'
            ? pass(`${new URL(url).host} does not resolve`)
            : notFromHere(url, a.unreachable)
        return a.status === 404
          ? pass(`${new URL(url).host} answers 404`)
          : fail(`${url} answered ${a.status}: the service is reachable without the load balancer`)
      },
    },
  ]
}

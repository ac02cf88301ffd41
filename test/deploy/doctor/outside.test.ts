// doctor's checks from outside, against local servers standing in for the load balancer and the run.app
// URL: what each answer means, and where an answer does not come. A name that does not resolve is a
// resolver stand-in (undici's connect lookup), so nothing leaves this machine.
import http from 'node:http'
import type { AddressInfo, LookupFunction } from 'node:net'
import t from 'tap'
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici'
import { evaluate, type Outcome } from '../../../deploy/doctor/invariant.ts'
import { type OutsideTargets, outsideInvariants } from '../../../deploy/doctor/outside.ts'
import { Reads } from '../../../deploy/doctor/reads.ts'
import { CannedGcloud } from '../canned-gcloud.ts'
import { config, live } from './live.ts'

type Answer = { status: number; location?: string } | 'never'
let answer: Answer = { status: 200 }
const server = http.createServer((_req, res) => {
  if (answer === 'never') return // holds the request open: the doctor's timeout ends it
  res.writeHead(answer.status, answer.location ? { location: answer.location } : {})
  res.end('hello from the app')
})
let url = ''
t.before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
})
t.teardown(() => {
  server.closeAllConnections()
  server.close()
})

async function check(
  id: string,
  a: Answer,
  targets: OutsideTargets = { http: url, https: url, runApp: url },
) {
  answer = a
  const inv = outsideInvariants(config, { timeoutMs: 500, ...targets }).find((i) => i.id === id)
  if (!inv) throw new Error(`no invariant ${id}`)
  return evaluate(inv, new Reads(new CannedGcloud(live()), config))
}
const host = () => new URL(url).host

t.test('HTTP that answers, but not with a redirect to the domain over HTTPS, fails', async (t) => {
  t.same(await check('outside-http-redirect', { status: 200 }), {
    verdict: 'fail',
    reason: `${url} answered 200, not a redirect to https://flowise.example.com`,
  })
  t.same(await check('outside-http-redirect', { status: 301, location: 'http://flowise.example.com/' }), {
    verdict: 'fail',
    reason: `${url} answered 301 to http://flowise.example.com/, not a redirect to https://flowise.example.com`,
  })
  t.same(await check('outside-http-redirect', { status: 308, location: 'https://flowise.example.com/x' }), {
    verdict: 'pass',
    reason: '308 to https://flowise.example.com',
  })
})

t.test('HTTPS without sign-in: a redirect to Google sign-in passes; the app answering fails', async (t) => {
  const google = { status: 302, location: 'https://accounts.google.com/o/oauth2/v2/auth?client_id=x' }
  t.same(await check('outside-sign-in', google), { verdict: 'pass', reason: '302 to accounts.google.com' })
  t.same(await check('outside-sign-in', { status: 200 }), {
    verdict: 'fail',
    reason: `${url} answered 200 without sign-in: IAP is not in front of the app`,
  })
})

t.test(
  "the run.app URL: Google's 404 passes, the app answering fails, no connection is could-not-check",
  async (t) => {
    t.same(await check('outside-run-app', { status: 404 }), {
      verdict: 'pass',
      reason: `${host()} answers 404`,
    })
    t.same(await check('outside-run-app', { status: 200 }), {
      verdict: 'fail',
      reason: `${url} answered 200: the service is reachable without the load balancer`,
    })
    t.match(await check('outside-run-app', { status: 200 }, { runApp: 'http://127.0.0.1:9/' }), {
      verdict: 'could-not-check',
      reason: /^127\.0\.0\.1:9 is not reachable from here/,
    })
  },
)

t.test('a 403 at the domain is could-not-check: Cloud Armor refusing this machine is no proof', async (t) => {
  t.same(await check('outside-sign-in', { status: 403 }), {
    verdict: 'could-not-check',
    reason: '403: Cloud Armor refused this machine (its address is not in allowedCidrs), or IAP did',
  })
})

t.test('a redirect somewhere other than Google sign-in is a FAIL naming where', async (t) => {
  t.same(await check('outside-sign-in', { status: 302, location: 'https://login.example.net/' }), {
    verdict: 'fail',
    reason: `${url} answered 302 to login.example.net without sign-in: IAP is not in front of the app`,
  })
})

t.test('a server that never answers is could-not-check after the timeout, not a hang', async (t) => {
  const r: Outcome = await check('outside-sign-in', 'never')
  t.same(r, {
    verdict: 'could-not-check',
    reason: `${host()} is not reachable from here (no answer within 0.5 s); run doctor where DNS points at the load balancer`,
  })
})

t.test('a connection fetch refuses itself is could-not-check with its words', async (t) => {
  // Port 9 is on the Fetch standard's "bad port" list: undici refuses it without a system error code.
  const bad = 'http://127.0.0.1:9/'
  t.same(await check('outside-http-redirect', { status: 200 }, { http: bad }), {
    verdict: 'could-not-check',
    reason:
      '127.0.0.1:9 is not reachable from here (fetch failed); run doctor where DNS points at the load balancer',
  })
})

t.test(
  'without targets: the domain over HTTP and HTTPS, and the run.app name the project number makes',
  async (t) => {
    const asked: string[] = []
    const before = getGlobalDispatcher()
    setGlobalDispatcher(
      new Agent({
        connect: {
          lookup: ((name, _options, done) => {
            asked.push(name)
            done(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' }), '', 4)
          }) as LookupFunction,
        },
      }),
    )
    t.teardown(() => setGlobalDispatcher(before))
    const reads = new Reads(new CannedGcloud(live()), config)
    const outcomes = await Promise.all(outsideInvariants(config).map((inv) => evaluate(inv, reads)))
    t.same(outcomes, [
      {
        verdict: 'could-not-check',
        reason:
          'flowise.example.com is not reachable from here (ENOTFOUND); run doctor where DNS points at the load balancer',
      },
      {
        verdict: 'could-not-check',
        reason:
          'flowise.example.com is not reachable from here (ENOTFOUND); run doctor where DNS points at the load balancer',
      },
      // No such name: nothing serves the app at the run.app URL.
      { verdict: 'pass', reason: 'fw-123456789012.europe-west1.run.app does not resolve' },
    ])
    t.same(asked.sort(), [
      'flowise.example.com',
      'flowise.example.com',
      'fw-123456789012.europe-west1.run.app',
    ])
  },
)

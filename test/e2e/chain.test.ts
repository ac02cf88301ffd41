// The whole chain, from the two built images, as the deploy would run it (issue 7, then issue 13):
//   IAP emulator -> gateway container -> Flowise container (through with-secrets, sm:// from a local
//   Secret Manager) -> PostgreSQL with TLS, with a local OpenAI-compatible model behind the chatflow.
// The service is the one `deploy render` writes for deploy.config.example.yaml, started by run-local
// (deploy/run-local/) exactly as `npm run deploy -- run-local` starts it. One file, because every
// scenario needs the same minute-long setup and builds on the one before.
// Run with `npm run test:e2e` (podman, PostgreSQL and Chromium needed); see docs/e2e.md.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { podmanOrSkip } from '../images/suite.ts'
import { startLlmServer } from './helpers/llm-server.ts'
import { e2eConfig, startService } from './helpers/service.ts'
import { newOwner, outputFolder, type Suite } from './helpers/suite.ts'
import { attackerCannotClaimOwner } from './scenarios/attacker.ts'
import { browserThroughChain } from './scenarios/browser.ts'
import { restartKeepsState } from './scenarios/restart.ts'
import { sigtermDuringStream } from './scenarios/shutdown.ts'
import { throughIap } from './scenarios/through-iap.ts'

t.setTimeout(1_800_000)

// the local model's pause between tokens: 13 tokens make a 5 s answer, long enough to tell a stream
// from a buffered reply and to send SIGTERM in the middle of one
const TOKEN_PAUSE_MS = 400

const timings: Record<string, number> = {}
async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now()
  try {
    return await work()
  } finally {
    timings[name] = Math.round(performance.now() - started)
    t.comment(`${name}: ${timings[name]} ms`)
  }
}

if (podmanOrSkip()) {
  const { outputDir } = outputFolder()
  t.comment(`output folder: ${outputDir}`)
  const stops: (() => Promise<unknown>)[] = []
  t.teardown(async () => {
    // last started, first stopped; one failing stop does not keep the others running
    for (const stop of stops.reverse()) await stop().catch((error) => t.comment(`teardown: ${error}`))
    writeFileSync(join(outputDir, 'timings.json'), `${JSON.stringify(timings, null, 2)}\n`)
  })

  const llm = await startLlmServer({ tokenPauseMs: TOKEN_PAUSE_MS })
  stops.push(() => llm.close())
  const owner = newOwner()
  const config = await e2eConfig()
  const deployment = await timed('images (podman, cached) + PostgreSQL + service start', () =>
    startService({ config, outputDir, email: owner.email, onEvent: (line) => t.comment(line) }),
  )
  stops.push(async () => {
    await deployment.stop()
    for (const log of deployment.logs.values()) log.end()
  })
  for (const line of deployment.standIns) t.comment(`stand-in: ${line}`)
  const suite: Suite = {
    outputDir,
    config,
    deployment,
    postgres: deployment.postgres as NonNullable<typeof deployment.postgres>,
    llm,
    chain: { url: deployment.chain.url, gatewayUrl: deployment.running.url },
    owner,
    apiKey: `sk-e2e-${randomBytes(12).toString('hex')}`,
    made: {},
  }

  const needsChatflow = () => (suite.made.chatflowId ? {} : { skip: 'scenario 2 created no chatflow' })

  await t.test('1. an attacker without IAP cannot claim the Flowise owner', (t) =>
    timed('scenario 1', () => attackerCannotClaimOwner(t, suite)),
  )
  await t.test('2. through the emulated IAP: owner, chatflow, streamed prediction', (t) =>
    timed('scenario 2', () => throughIap(t, suite, TOKEN_PAUSE_MS)),
  )
  await t.test('3. the Flowise UI through the chain in headless Chromium', needsChatflow(), (t) =>
    timed('scenario 3', () => browserThroughChain(t, suite)),
  )
  await t.test(
    '4. the Flowise container replaced, as a new instance starts it, keeps state and secrets',
    needsChatflow(),
    (t) => timed('scenario 4', () => restartKeepsState(t, suite, TOKEN_PAUSE_MS)),
  )
  await t.test('5. SIGTERM to the gateway container during a streamed prediction', needsChatflow(), (t) =>
    timed('scenario 5', () => sigtermDuringStream(t, suite)),
  )
}

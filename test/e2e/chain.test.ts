// The whole chain against a real Flowise, a real PostgreSQL and a real browser (issue 7):
//   IAP emulator -> gateway -> Flowise (through with-secrets, sm:// from a local Secret Manager)
//   -> PostgreSQL, with a local OpenAI-compatible model behind the chatflow.
// One file, because every scenario needs the same minute-long setup and builds on the one before:
// the owner no attacker could claim is the owner scenario 2 registers, and so on.
// Run with `npm run test:e2e`; see docs/e2e.md for what each scenario proves, time and disk use.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { onExit } from 'signal-exit'
import t from 'tap'
import { ensureFlowiseInstalled, flowiseCacheDir } from '../../dev/flowise.ts'
import { startPostgres } from '../../dev/postgres.ts'
import { startChain } from './helpers/chain.ts'
import { startFlowise, startSecrets } from './helpers/flowise.ts'
import { startLlmServer } from './helpers/llm-server.ts'
import { newOwner, outputFolder, type Suite } from './helpers/suite.ts'
import { attackerCannotClaimOwner } from './scenarios/attacker.ts'
import { browserThroughChain } from './scenarios/browser.ts'
import { restartKeepsState } from './scenarios/restart.ts'
import { sigtermDuringStream } from './scenarios/shutdown.ts'
import { throughIap } from './scenarios/through-iap.ts'

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

const { outputDir, dataDir } = outputFolder()
t.comment(`output folder: ${outputDir}`)
const stops: (() => Promise<unknown>)[] = []
t.teardown(async () => {
  // last started, first stopped; one failing stop does not keep the others running
  for (const stop of stops.reverse()) await stop().catch((error) => t.comment(`teardown: ${error}`))
  writeFileSync(join(outputDir, 'timings.json'), `${JSON.stringify(timings, null, 2)}\n`)
})

const install = await timed('flowise install (or cache check)', () =>
  ensureFlowiseInstalled({ sqlite: false, onProgress: (message) => t.comment(message) }),
)
const postgres = await timed('postgresql start', () => startPostgres())
stops.push(() => postgres.stop())
const secrets = await startSecrets(postgres)
stops.push(() => secrets.close())
const llm = await startLlmServer({ tokenPauseMs: TOKEN_PAUSE_MS })
stops.push(() => llm.close())
const flowise = await timed('flowise first start (migrations)', () =>
  startFlowise({ postgres, secrets, outputDir, dataDir, logName: 'flowise' }),
)
const suite: Suite = {
  outputDir,
  dataDir,
  flowiseDir: install.dir ?? flowiseCacheDir(),
  postgres,
  secrets,
  llm,
  flowise,
  chain: undefined as unknown as Suite['chain'],
  owner: newOwner(),
  apiKey: `sk-e2e-${randomBytes(12).toString('hex')}`,
  made: {},
}
// the current instance: scenario 4 replaces it
stops.push(() => suite.flowise.stop())
// tap's timeout (SIGALRM) ends this process without the teardown: leave no gateway behind
// (PostgreSQL and Flowise see to their own)
onExit(() => suite.chain?.kill())
suite.chain = await timed('emulator + gateway start', () =>
  startChain({ upstream: flowise.url, outputDir, logName: 'chain', email: suite.owner.email }),
)
stops.push(() => suite.chain.stop())

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
await t.test('4. Flowise restarted through the launcher keeps its state and secrets', needsChatflow(), (t) =>
  timed('scenario 4', () => restartKeepsState(t, suite, TOKEN_PAUSE_MS)),
)
await t.test('5. SIGTERM to the gateway during a streamed prediction', needsChatflow(), (t) =>
  timed('scenario 5', () => sigtermDuringStream(t, suite)),
)

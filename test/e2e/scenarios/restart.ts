// Scenario 4: Flowise is killed and started again through the launcher. The chatflow is still there
// (PostgreSQL), sessions survive (the JWT secrets are the same), and the stored OpenAI credential still
// decrypts (FLOWISE_SECRETKEY_OVERWRITE is the same): the local model receives the same API key.
// All of them came from Secret Manager on both starts, none from a file Flowise generated.
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { FLOWISE_SECRETS, PROJECT, startFlowise } from '../helpers/flowise.ts'
import { FlowiseClient } from '../helpers/flowise-api.ts'
import type { Suite } from '../helpers/suite.ts'
import { checkStream } from './through-iap.ts'

export async function restartKeepsState(t: Test, suite: Suite, tokenPauseMs: number): Promise<void> {
  const before = new FlowiseClient(suite.chain.url)
  await before.login(suite.owner)
  const callsBefore = suite.secrets.calls.length

  const stopping = performance.now()
  await suite.flowise.stop()
  t.comment(`Flowise stopped in ${Math.round(performance.now() - stopping)} ms`)
  const starting = performance.now()
  suite.flowise = await startFlowise({
    postgres: suite.postgres,
    secrets: suite.secrets,
    outputDir: suite.outputDir,
    dataDir: suite.dataDir,
    port: suite.flowise.port, // the gateway's UPSTREAM_URL
    logName: 'flowise-restarted',
  })
  t.comment(`Flowise started again in ${Math.round(performance.now() - starting)} ms`)

  const read = suite.secrets.calls.slice(callsBefore)
  for (const secret of Object.values(FLOWISE_SECRETS)) {
    t.ok(
      read.includes(`projects/${PROJECT}/secrets/${secret}/versions/latest`),
      `the launcher read ${secret} from Secret Manager again`,
    )
  }
  // unset, JWT_ISSUER and JWT_AUDIENCE are written as files holding `flowise` (not secret); every
  // secret must have come from the environment, never from a file Flowise generated
  const keyFiles = existsSync(join(suite.dataDir, 'keys')) ? readdirSync(join(suite.dataDir, 'keys')) : []
  t.same(
    keyFiles.filter((file) => !['jwt_issuer.key', 'jwt_audience.key'].includes(file)),
    [],
    `Flowise generated no secret files of its own (${keyFiles.join(', ') || 'none'})`,
  )

  const chatflows = await before.listChatflows()
  t.ok(
    chatflows.some((flow) => flow.id === suite.made.chatflowId),
    'the session from before the restart is still valid, and the chatflow is still there',
  )
  const fresh = new FlowiseClient(suite.chain.url)
  await fresh.login(suite.owner)
  t.ok(
    (await fresh.listChatflows()).some((flow) => flow.id === suite.made.chatflowId),
    'a fresh sign-in sees it too',
  )

  const requests = suite.llm.requests.length
  const { status, events } = await fresh.predictStream(suite.made.chatflowId as string, 'Still there?')
  t.equal(status, 200, 'the chatflow answers after the restart')
  checkStream(t, events, tokenPauseMs, 'streamed prediction after the restart')
  const call = suite.llm.requests.slice(requests).find((request) => request.path === '/v1/chat/completions')
  t.equal(
    call?.authorization,
    `Bearer ${suite.apiKey}`,
    'the stored credential still decrypts: the local model received the same API key',
  )
}

// Scenario 4: the Flowise container is replaced by a new one from its image, as Cloud Run starts a
// new instance (SIGTERM, 10 s, SIGKILL; a fresh container file system; secrets read at start; the
// startup probe again). The chatflow is still there (PostgreSQL), sessions survive (the JWT secrets
// are the same), and the stored OpenAI credential still decrypts (FLOWISE_SECRETKEY_OVERWRITE is the
// same): the local model receives the same API key. All of them came from Secret Manager on both
// starts, none from a file Flowise generated.
import type { Test } from 'tap'
import { FlowiseClient } from '../helpers/flowise-api.ts'
import { flowiseSecretVersions } from '../helpers/service.ts'
import type { Suite } from '../helpers/suite.ts'
import { checkStream } from './through-iap.ts'

export async function restartKeepsState(t: Test, suite: Suite, tokenPauseMs: number): Promise<void> {
  const before = new FlowiseClient(suite.chain.url)
  await before.login(suite.owner)
  const callsBefore = suite.deployment.secretManager.calls.length
  const oldContainer = suite.deployment.running.container('flowise').name

  const replacing = performance.now()
  await suite.deployment.running.restart('flowise')
  t.comment(
    `Flowise container replaced and its startup probe passed in ${Math.round(performance.now() - replacing)} ms`,
  )
  const container = suite.deployment.running.container('flowise')
  t.not(container.name, oldContainer, 'a new container')

  const read = suite.deployment.secretManager.calls.slice(callsBefore)
  const wanted = flowiseSecretVersions(suite.deployment, suite.config.project)
  t.equal(wanted.length, 6, 'the database password and the five instance-stable secrets')
  for (const version of wanted)
    t.ok(read.includes(version), `the launcher read ${version} from Secret Manager again`)
  // every secret must have come from the environment, never from a file Flowise generated
  const files = await container.exec(['sh', '-c', 'find /home/node/.flowise -type f -name "*.key"'])
  t.same(
    files.output.trim(),
    '',
    `Flowise generated no secret file of its own (${files.output.trim() || 'none'})`,
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

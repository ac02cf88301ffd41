// Scenario 2: through the emulated IAP and the gateway, the owner registers, logs in, stores an OpenAI
// credential, creates a chatflow (OpenAI chat model node against the local model), lists it, and runs a
// streamed prediction whose SSE events arrive one by one through the whole chain.
import type { Test } from 'tap'
import { conversationFlow, FlowiseClient, type Timed } from '../helpers/flowise-api.ts'
import { REPLY, REPLY_TOKENS } from '../helpers/llm-server.ts'
import { marketplaceTemplate } from '../helpers/service.ts'
import { ms, type Suite } from '../helpers/suite.ts'

/** What a streamed answer proves: the text, and how spread out in time its tokens arrived. */
export function checkStream(t: Test, events: Timed[], tokenPauseMs: number, label: string): void {
  const tokens = events.filter((event) => event.event === 'token')
  const text = tokens.map((event) => String(event.data)).join('')
  t.equal(text, REPLY, `${label}: the streamed text is what the local model sent`)
  t.ok(tokens.length >= REPLY_TOKENS.length - 1, `${label}: one event per token (${tokens.length})`)
  const first = tokens[0]?.at ?? Number.NaN
  const last = tokens.at(-1)?.at ?? Number.NaN
  // the model spaces its tokens tokenPauseMs apart: a buffering hop would deliver them together
  const spread = (REPLY_TOKENS.length - 1) * tokenPauseMs
  t.ok(
    last - first >= spread * 0.6,
    `${label}: first token ${ms(first)} ms, last ${ms(last)} ms after the request`,
  )
  t.comment(
    `${label}: first token at ${ms(first)} ms, last at ${ms(last)} ms, ${tokens.length} token events, ` +
      `${events.length} events in all`,
  )
}

export async function throughIap(t: Test, suite: Suite, tokenPauseMs: number): Promise<void> {
  const client = new FlowiseClient(suite.chain.url)
  const registered = await client.register(suite.owner)
  const body = await registered.text()
  t.equal(
    registered.status,
    201,
    `the owner registers through the chain (${registered.status} ${body.slice(0, 200)})`,
  )
  const users = await suite.postgres.query<{ email: string }>('SELECT email FROM "user"')
  t.same(
    users.map((user) => user.email),
    [suite.owner.email],
    'PostgreSQL holds the one owner',
  )

  const again = await new FlowiseClient(suite.chain.url).register({
    ...suite.owner,
    email: 'second@example.com',
  })
  await again.arrayBuffer()
  t.not(again.status, 201, 'a second registration does not create another owner')

  const user = await client.login(suite.owner)
  t.equal(user.email, suite.owner.email, 'the owner logs in through the chain')
  t.ok(client.cookies.has('token'), 'the session cookie came back through the gateway')

  const credential = await client.createOpenAiCredential('local model key', suite.apiKey)
  suite.made.credentialId = credential.id
  const template = await marketplaceTemplate(suite.deployment, 'Conversation Chain')
  const flow = conversationFlow(template, suite.llm.baseUrl, credential.id)
  const chatflow = await client.createChatflow('E2E chatflow via the gateway', flow)
  suite.made.chatflowId = chatflow.id
  suite.made.chatflowName = chatflow.name

  const listed = await client.listChatflows()
  t.ok(
    listed.some((item) => item.id === chatflow.id),
    'the new chatflow is listed',
  )

  const before = suite.llm.requests.length
  const { status, events } = await client.predictStream(chatflow.id, 'Say hello')
  t.equal(status, 200, 'the streamed prediction is answered')
  checkStream(t, events, tokenPauseMs, 'streamed prediction through the chain')
  const call = suite.llm.requests.slice(before).find((request) => request.path === '/v1/chat/completions')
  t.equal(call?.body.stream, true, 'Flowise asked the local model for a stream')
  t.equal(call?.authorization, `Bearer ${suite.apiKey}`, 'with the stored credential, decrypted')
}

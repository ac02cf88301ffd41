// Scenario 5: Cloud Run sends SIGTERM to the gateway while an answer is streaming. The gateway stops
// taking new requests but lets the stream finish (up to SHUTDOWN_GRACE_MS), then exits.
import type { Test } from 'tap'
import { SHUTDOWN_GRACE_MS } from '../helpers/chain.ts'
import { FlowiseClient } from '../helpers/flowise-api.ts'
import { REPLY } from '../helpers/llm-server.ts'
import type { Suite } from '../helpers/suite.ts'

export async function sigtermDuringStream(t: Test, suite: Suite): Promise<void> {
  const client = new FlowiseClient(suite.chain.url)
  const { gateway } = suite.chain
  let signalledAt = Number.NaN
  let exitedAt = Number.NaN
  const started = performance.now()
  gateway.exited.then(() => {
    exitedAt = performance.now() - started
  })

  const { status, events } = await client.predictStream(
    suite.made.chatflowId as string,
    'One more',
    (event) => {
      if (event.event === 'token' && Number.isNaN(signalledAt)) {
        signalledAt = performance.now() - started
        process.kill(gateway.pid, 'SIGTERM')
      }
    },
  )
  const streamEndedAt = performance.now() - started
  t.equal(status, 200, 'the prediction was answered')
  t.ok(signalledAt > 0, `SIGTERM reached the gateway at ${Math.round(signalledAt)} ms, after the first token`)
  const text = events
    .filter((event) => event.event === 'token')
    .map((event) => String(event.data))
    .join('')
  t.equal(text, REPLY, 'the stream completed with the whole answer')
  const lastToken = events.filter((event) => event.event === 'token').at(-1)?.at ?? 0
  t.ok(lastToken - signalledAt > 1000, 'tokens kept arriving for more than a second after SIGTERM')

  const { code, signal } = await gateway.exited
  t.equal(code, 0, `the gateway exited cleanly (${code ?? signal})`)
  t.ok(exitedAt >= lastToken, 'and only after the last token')
  t.ok(
    exitedAt - signalledAt <= SHUTDOWN_GRACE_MS + 5000,
    `within the drain period of SIGTERM (${Math.round(exitedAt - signalledAt)} ms, SHUTDOWN_GRACE_MS=${SHUTDOWN_GRACE_MS})`,
  )
  t.comment(
    `SIGTERM at ${Math.round(signalledAt)} ms, last token at ${Math.round(lastToken)} ms, stream closed at ` +
      `${Math.round(streamEndedAt)} ms, gateway exited at ${Math.round(exitedAt)} ms`,
  )
}

// Scenario 5: Cloud Run sends SIGTERM to the gateway container while an answer is streaming. The
// gateway stops taking new requests but lets the stream finish (up to the SHUTDOWN_GRACE_MS the
// deploy renders, 8 s by default; Cloud Run sends SIGKILL 10 s after SIGTERM), then exits 0.
import type { Test } from 'tap'
import { FlowiseClient } from '../helpers/flowise-api.ts'
import { REPLY } from '../helpers/llm-server.ts'
import { rendered } from '../helpers/service.ts'
import type { Suite } from '../helpers/suite.ts'

export async function sigtermDuringStream(t: Test, suite: Suite): Promise<void> {
  const client = new FlowiseClient(suite.chain.url)
  const gateway = suite.deployment.running.container('gateway')
  const graceMs = Number(rendered(suite.deployment, 'gateway', 'SHUTDOWN_GRACE_MS'))
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
        // as Cloud Run does: SIGTERM to the container (podman kill), nothing to the process directly
        gateway.signal('SIGTERM')
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

  const { code } = await gateway.exited
  t.equal(code, 0, `the gateway container exited cleanly (${code})`)
  t.ok(exitedAt >= lastToken, 'and only after the last token')
  t.ok(
    exitedAt - signalledAt <= graceMs + 2000,
    `within the drain period of SIGTERM (${Math.round(exitedAt - signalledAt)} ms, SHUTDOWN_GRACE_MS=${graceMs} as rendered)`,
  )
  t.match(gateway.logs(), /"signal":"SIGTERM"/, 'the gateway saw SIGTERM')
  t.comment(
    `SIGTERM at ${Math.round(signalledAt)} ms, last token at ${Math.round(lastToken)} ms, stream closed at ` +
      `${Math.round(streamEndedAt)} ms, gateway exited at ${Math.round(exitedAt)} ms`,
  )
}

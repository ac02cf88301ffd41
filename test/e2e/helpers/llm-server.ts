// A local OpenAI-compatible chat completions server, so a Flowise chatflow with an OpenAI chat model
// node (custom base path) can answer without the internet. It streams one known reply token by token
// with a pause between tokens, so a test can tell incremental delivery from a buffered one.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export const REPLY_TOKENS: readonly string[] = [
  'Hello',
  ' from',
  ' the',
  ' local',
  ' model',
  ':',
  ' every',
  ' token',
  ' arrives',
  ' on',
  ' its',
  ' own',
  '.',
]
export const REPLY = REPLY_TOKENS.join('')

export type LlmRequest = { path: string; authorization: string | undefined; body: Record<string, unknown> }

export type LlmServer = {
  /** the base path for the OpenAI node: http://127.0.0.1:PORT/v1 */
  baseUrl: string
  requests: LlmRequest[]
  close(): Promise<void>
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  return text ? (JSON.parse(text) as Record<string, unknown>) : {}
}

export async function startLlmServer({ tokenPauseMs = 400 } = {}): Promise<LlmServer> {
  const requests: LlmRequest[] = []
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const body = req.method === 'POST' ? await readJson(req) : {}
    requests.push({ path, authorization: req.headers.authorization, body })
    if (path === '/v1/models') {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model' }] }))
      return
    }
    if (path !== '/v1/chat/completions' || req.method !== 'POST') {
      res.statusCode = 404
      res.end(JSON.stringify({ error: { message: `no ${req.method} ${path} here` } }))
      return
    }
    const id = `chatcmpl-${requests.length}`
    const model = String(body.model ?? 'gpt-4o-mini')
    const created = Math.floor(Date.now() / 1000)
    if (body.stream !== true) {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: REPLY }, finish_reason: 'stop' }],
          usage: {
            prompt_tokens: 1,
            completion_tokens: REPLY_TOKENS.length,
            total_tokens: 1 + REPLY_TOKENS.length,
          },
        }),
      )
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
    res.write(chunk({ role: 'assistant', content: '' }, null))
    for (const token of REPLY_TOKENS) {
      await new Promise((resolve) => setTimeout(resolve, tokenPauseMs))
      if (res.destroyed) return
      res.write(chunk({ content: token }, null))
    }
    res.write(chunk({}, 'stop'))
    // the usage chunk OpenAI sends for stream_options.include_usage: without it LangChain estimates
    // the token counts itself with tiktoken, whose tables it fetches from the internet (retrying
    // with back-off for about a minute when offline)
    const usage = {
      prompt_tokens: 1,
      completion_tokens: REPLY_TOKENS.length,
      total_tokens: 1 + REPLY_TOKENS.length,
    }
    res.write(
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`,
    )
    res.end('data: [DONE]\n\n')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

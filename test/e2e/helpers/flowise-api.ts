// The few Flowise 3.1 API calls the scenarios make, as the UI makes them: cookie session after
// POST /api/v1/auth/login, and `x-request-from: internal` (without it Flowise expects an API key).

export type Owner = { name: string; email: string; password: string }

export type Timed = { at: number; event: string; data: unknown }

export class FlowiseClient {
  readonly base: string
  readonly headers: Record<string, string>
  cookies = new Map<string, string>()

  /** base: where the client sends requests (the emulator, the gateway, or Flowise itself) */
  constructor(base: string, headers: Record<string, string> = {}) {
    this.base = base
    this.headers = headers
  }

  async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, 'x-request-from': 'internal' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.cookies.size > 0) {
      headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    }
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
    })
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = (pair ?? '').indexOf('=')
      if (eq > 0) this.cookies.set((pair as string).slice(0, eq), (pair as string).slice(eq + 1))
    }
    return res
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body)
    const text = await res.text()
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`)
    return JSON.parse(text) as T
  }

  register(owner: Owner): Promise<Response> {
    return this.request('POST', '/api/v1/account/register', {
      user: { name: owner.name, email: owner.email, credential: owner.password },
    })
  }

  login(owner: Owner): Promise<{ id: string; email: string }> {
    return this.json('POST', '/api/v1/auth/login', { email: owner.email, password: owner.password })
  }

  createOpenAiCredential(name: string, apiKey: string): Promise<{ id: string }> {
    return this.json('POST', '/api/v1/credentials', {
      name,
      credentialName: 'openAIApi',
      plainDataObj: { openAIApiKey: apiKey },
    })
  }

  createChatflow(name: string, flowData: unknown): Promise<{ id: string; name: string }> {
    return this.json('POST', '/api/v1/chatflows', {
      name,
      type: 'CHATFLOW',
      flowData: JSON.stringify(flowData),
    })
  }

  async listChatflows(): Promise<{ id: string; name: string }[]> {
    const body = await this.json<{ data?: { id: string; name: string }[] } | { id: string; name: string }[]>(
      'GET',
      '/api/v1/chatflows?type=CHATFLOW',
    )
    return Array.isArray(body) ? body : (body.data ?? [])
  }

  /** A streamed prediction: every SSE event with the time it arrived (ms since the request). */
  async predictStream(
    chatflowId: string,
    question: string,
    onEvent: (event: Timed) => void = () => {},
  ): Promise<{ status: number; events: Timed[] }> {
    const started = performance.now()
    const res = await this.request('POST', `/api/v1/prediction/${chatflowId}`, { question, streaming: true })
    const events: Timed[] = []
    if (res.status !== 200 || res.body === null) {
      events.push({ at: performance.now() - started, event: 'http', data: await res.text() })
      return { status: res.status, events }
    }
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true })
      let split = buffer.indexOf('\n\n')
      while (split !== -1) {
        const block = buffer.slice(0, split)
        buffer = buffer.slice(split + 2)
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5))
          .join('\n')
        if (data) {
          const parsed = JSON.parse(data) as { event: string; data: unknown }
          const event = { at: performance.now() - started, event: parsed.event, data: parsed.data }
          events.push(event)
          onEvent(event)
        }
        split = buffer.indexOf('\n\n')
      }
    }
    return { status: res.status, events }
  }
}

/**
 * Flowise's own "Conversation Chain" marketplace template (ChatOpenAI + buffer memory + conversation
 * chain), given as the template file's text, with the OpenAI node pointed at the local model server
 * and the stored credential.
 */
export function conversationFlow(template: string, baseUrl: string, credentialId: string): unknown {
  const flow = JSON.parse(template) as {
    nodes: { data: { name: string; credential?: string; inputs: Record<string, unknown> } }[]
    edges: unknown[]
  }
  const model = flow.nodes.find((node) => node.data.name === 'chatOpenAI')
  if (!model) throw new Error('no chatOpenAI node in the Conversation Chain template')
  model.data.credential = credentialId
  Object.assign(model.data.inputs, {
    credential: credentialId,
    modelName: 'gpt-4o-mini',
    basepath: baseUrl,
    streaming: true,
    allowImageUploads: false,
  })
  return { nodes: flow.nodes, edges: flow.edges }
}

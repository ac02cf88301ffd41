// Preloaded into Flowise by the end-to-end suite only (NODE_OPTIONS=--require), because the suite runs
// offline. After every streamed answer, LangChain's ChatOpenAI estimates token counts with tiktoken
// and fetches the encoding tables from https://tiktoken.pages.dev; offline that fetch is retried with
// back-off for about a minute before LangChain falls back, which holds the SSE stream open. The same
// tables ship inside the js-tiktoken package Flowise installs: answer those URLs from it, and leave
// every other request alone.
'use strict'
const { createRequire } = require('node:module')
const { join } = require('node:path')

const PREFIX = 'https://tiktoken.pages.dev/js/'
// the Flowise install folder, where js-tiktoken is
const fromFlowise = createRequire(join(process.env.OFFLINE_TIKTOKEN_FROM || process.cwd(), 'package.json'))
const originalFetch = globalThis.fetch

globalThis.fetch = async function fetchWithLocalTiktoken(input, init) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input?.url
  const match =
    typeof url === 'string' && url.startsWith(PREFIX)
      ? /^([a-z0-9_]+)\.json$/.exec(url.slice(PREFIX.length))
      : null
  if (!match) return originalFetch(input, init)
  try {
    const ranks = fromFlowise(`js-tiktoken/ranks/${match[1]}`)
    return new Response(JSON.stringify(ranks), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    })
  } catch {
    // an encoding js-tiktoken lacks: a 404 is not retried, LangChain falls back to its estimate at once
    return new Response('not found', { status: 404 })
  }
}

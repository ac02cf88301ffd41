import t from 'tap'
import { createLogger, traceFields } from '../../proxy/logging.ts'
import { rawRequest, spawnGatewayInFront } from '../helpers/gateway.ts'

const SECRETS = [
  'Bearer-sekrit-api-key',
  'session=cookie-sekrit',
  'assertion-sekrit',
  'query-sekrit',
  'basic-sekrit',
]

t.test('log lines are Cloud Logging JSON and never hold credentials', async (t) => {
  const { gateway } = await spawnGatewayInFront(t, { GOOGLE_CLOUD_PROJECT: 'my-project' })
  await rawRequest(
    gateway.port,
    [
      'GET /api/v1/chatflows?token=query-sekrit HTTP/1.1',
      'Host: a',
      'Authorization: Bearer-sekrit-api-key',
      'Proxy-Authorization: basic-sekrit',
      'Cookie: session=cookie-sekrit',
      'X-Goog-IAP-JWT-Assertion: assertion-sekrit',
      'X-Cloud-Trace-Context: 0123456789abcdef0123456789abcdef/123;o=1',
      'User-Agent: test-agent',
      'Connection: close',
      '',
      '',
    ].join('\n'),
  )
  gateway.child.kill('SIGTERM')
  await gateway.exited
  const entries = gateway.stdout.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.ok(entries.length >= 3)
  for (const entry of entries) {
    t.type(entry.severity, 'string')
    t.type(entry.message, 'string')
    t.notOk('level' in entry || 'msg' in entry, 'no pino-native level/msg fields')
  }
  const access = entries.find((entry) => entry.message === 'request proxied')
  t.match(access, {
    severity: 'INFO',
    'logging.googleapis.com/trace': 'projects/my-project/traces/0123456789abcdef0123456789abcdef',
    'logging.googleapis.com/spanId': '123',
    httpRequest: {
      requestMethod: 'GET',
      requestUrl: '/api/v1/chatflows',
      status: 200,
      latency: /^\d+\.\d{6}s$/,
      remoteIp: '127.0.0.1',
      userAgent: 'test-agent',
    },
  })
  const everything = gateway.stdout.join('\n') + gateway.stderr.join('')
  for (const secret of SECRETS) t.notMatch(everything, secret, `log does not contain ${secret}`)
})

t.test('ACCESS_LOG=false keeps denials but drops admitted requests', async (t) => {
  const { gateway } = await spawnGatewayInFront(t, { ACCESS_LOG: 'false' })
  await fetch(`${gateway.url}/ok`)
  await fetch(`${gateway.url}/_gateway/nope`)
  gateway.child.kill('SIGTERM')
  await gateway.exited
  const messages = gateway.stdout.map((line) => JSON.parse(line).message)
  t.notOk(messages.includes('request proxied'))
  t.ok(messages.includes('request refused'))
  t.ok(
    gateway.stdout.some((line) => line.includes('IAP_DISABLED=true')),
    'a warning says verification is off',
  )
})

t.test('trace fields from traceparent, and none without a project', async (t) => {
  t.same(traceFields('p', undefined, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'), {
    'logging.googleapis.com/trace': 'projects/p/traces/0af7651916cd43dd8448eb211c80319c',
    'logging.googleapis.com/spanId': 'b7ad6b7169203331',
  })
  t.same(traceFields('p', '0af7651916cd43dd8448eb211c80319c', undefined), {
    'logging.googleapis.com/trace': 'projects/p/traces/0af7651916cd43dd8448eb211c80319c',
  })
  t.equal(traceFields(undefined, '0af7651916cd43dd8448eb211c80319c/1', undefined), undefined)
  t.equal(traceFields('p', 'garbage', 'garbage'), undefined)
  t.equal(traceFields('p', undefined, undefined), undefined)
})

t.test('a library’s URL fields lose their query strings, whatever their type', async (t) => {
  const lines: Record<string, unknown>[] = []
  const logger = createLogger('trace', { write: (line: string) => lines.push(JSON.parse(line)) })
  logger.debug({ url: 'ws://127.0.0.1:3000/ws?token=sekrit' }, 'proxy websocket')
  logger.warn({ target: new URL('ws://127.0.0.1:3000/ws?token=sekrit#frag') }, 'proxy ws reconnect')
  logger.info({ url: 'https://www.gstatic.com/iap/verify/public_key', kids: ['a'] }, 'IAP key set loaded')
  t.same(
    lines.map((line) => line.url ?? line.target),
    ['ws://127.0.0.1:3000/ws', 'ws://127.0.0.1:3000/ws', 'https://www.gstatic.com/iap/verify/public_key'],
  )
  t.same(lines[2]?.kids, ['a'], 'the rest of the line as it was')
  t.notMatch(JSON.stringify(lines), 'sekrit')
})

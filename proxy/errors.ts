import createError from '@fastify/error'

/**
 * Every error the gateway raises itself, in one table.
 *
 * Start-up errors stop the process; their message is one line naming the setting and the bad value.
 * Run-time refusals are not thrown (a stack per denied request would be wasted work): they are the
 * `DENIALS` below, answered with a generic body while the precise `reason` goes to the log only.
 */
export const GW_ERR_CONFIG = createError<'GW_ERR_CONFIG', [string]>(
  'GW_ERR_CONFIG',
  'invalid configuration: %s',
)
export const GW_ERR_UPSTREAM_UNAVAILABLE = createError('GW_ERR_UPSTREAM_UNAVAILABLE', 'Bad Gateway', 502)
export const GW_ERR_UPSTREAM_TIMEOUT = createError('GW_ERR_UPSTREAM_TIMEOUT', 'Gateway Timeout', 504)

/** A refusal the pipeline answers itself: the status, and the only words the client sees. */
export interface Denial {
  readonly status: number
  readonly message: string
}

export const DENIALS = Object.freeze({
  badRequest: { status: 400, message: 'Bad Request' },
  unauthenticated: { status: 401, message: 'Unauthorized' },
  forbidden: { status: 403, message: 'Forbidden' },
  notFound: { status: 404, message: 'Not Found' },
  requestTimeout: { status: 408, message: 'Request Timeout' },
  expectationFailed: { status: 417, message: 'Expectation Failed' },
  headersTooLarge: { status: 431, message: 'Request Header Fields Too Large' },
  notImplemented: { status: 501, message: 'Not Implemented' },
  badGateway: { status: 502, message: 'Bad Gateway' },
  unavailable: { status: 503, message: 'Service Unavailable' },
  gatewayTimeout: { status: 504, message: 'Gateway Timeout' },
} satisfies Record<string, Denial>)

/**
 * Every `reason` a refusal's log line can carry, as the README's table lists them (a test holds the two
 * together). A trailing `*` stands for a code: an IAP failure reason (`iap_expired`), an undici or
 * Fastify error code, a Node parser code.
 */
export const REFUSAL_REASONS = Object.freeze([
  'request_invalid:target_form',
  'request_invalid:target_authority',
  'request_unsupported:asterisk_form',
  'request_invalid:expect',
  'reserved_path_unknown',
  'client_address_unparseable',
  'forwarded_chain_too_short',
  'network_not_allowed',
  'websocket_origin_not_allowed',
  'iap_*',
  'upstream_credential_unavailable',
  'request_invalid:path',
  'upstream_headers_too_large:count',
  'upstream_headers_too_large:bytes',
  'websocket_handshake_invalid',
  'client_body_timeout',
  'upstream_timeout',
  'upstream_error:*',
  'request_invalid:*',
  'internal_error:*',
  'client_error:*',
] as const)

type Expanded<T extends string> = T extends `${infer Prefix}*` ? `${Prefix}${string}` : T
/** A refusal reason: the closed set above, codes filled in. */
export type RefusalReason = Expanded<(typeof REFUSAL_REASONS)[number]>

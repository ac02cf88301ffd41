import createError from '@fastify/error'

/**
 * Every error code and refusal reason the gateway has, in one file: the coded errors it throws (the
 * README's "Error codes" table documents each, a test holds the two together), the generic answers of a
 * refusal, and the closed set of reasons a refusal's log line can carry.
 *
 * Start-up errors stop the process; their message is one line naming the setting and the bad value,
 * never a secret. Run-time refusals are not thrown (a stack per denied request would be wasted work):
 * they are the `DENIALS` below, answered with a generic body while the precise reason goes to the log.
 */

/** A setting the gateway cannot run with (proxy/config.ts); every problem in one message. */
export const GW_ERR_CONFIG = createError<'GW_ERR_CONFIG', [string]>(
  'GW_ERR_CONFIG',
  'invalid configuration: %s',
)
/** A value starts with sm:// but is not a reference (proxy/secrets/); names the variable and value. */
export const GW_ERR_SECRET_REFERENCE = createError<'GW_ERR_SECRET_REFERENCE', [string]>(
  'GW_ERR_SECRET_REFERENCE',
  'invalid secret reference: %s',
)
/** A secret could not be read (proxy/secrets/); names the variable and the resource, never a value. */
export const GW_ERR_SECRET = createError<'GW_ERR_SECRET', [string]>(
  'GW_ERR_SECRET',
  'cannot resolve secret: %s',
)

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
 * Why the IAP verifier (proxy/iap/verify.ts) refused an assertion, and the answer each gets: a
 * credential that is missing or wrong is 401, a verified identity outside ALLOWED_EMAILS /
 * ALLOWED_DOMAINS is 403, no key set loaded yet is 503 (the client may retry).
 */
export const IAP_DENIALS = Object.freeze({
  missing: DENIALS.unauthenticated,
  malformed: DENIALS.unauthenticated,
  alg: DENIALS.unauthenticated,
  unknown_kid: DENIALS.unauthenticated,
  signature: DENIALS.unauthenticated,
  issuer: DENIALS.unauthenticated,
  audience: DENIALS.unauthenticated,
  expired: DENIALS.unauthenticated,
  not_yet_valid: DENIALS.unauthenticated,
  lifetime: DENIALS.unauthenticated,
  identity: DENIALS.forbidden,
  no_keys: DENIALS.unavailable,
} satisfies Record<string, Denial>)

export type IapFailureReason = keyof typeof IAP_DENIALS

/** Reasons whose tail is someone else's code: undici's, Fastify's, Node's parser's, a thrown error's. */
export const CODED_REFUSALS = Object.freeze([
  'upstream_error',
  'request_invalid',
  'internal_error',
  'client_error',
] as const)

/**
 * Every `reason` a refusal's log line can carry, in the order a request meets the stages, as the
 * README's table lists them (a test holds the two together). A `:*` entry stands for one of
 * CODED_REFUSALS followed by its code.
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
  ...(Object.keys(IAP_DENIALS) as IapFailureReason[]).map((reason) => `iap_${reason}` as const),
  'upstream_credential_unavailable',
  'request_invalid:path',
  'upstream_headers_too_large:count',
  'upstream_headers_too_large:bytes',
  'websocket_handshake_invalid',
  'client_body_timeout',
  'upstream_timeout',
  ...CODED_REFUSALS.map((prefix) => `${prefix}:*` as const),
])

/** A refusal reason: one of the closed set above, a coded one with its code filled in. */
export type RefusalReason =
  | Exclude<(typeof REFUSAL_REASONS)[number], `${string}:*`>
  | `${(typeof CODED_REFUSALS)[number]}:${string}`

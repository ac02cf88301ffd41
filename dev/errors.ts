import createError from '@fastify/error'

/**
 * Every coded error of the development tools (`npm run dev` and the IAP emulator), in one table, as
 * proxy/errors.ts is the gateway's; docs/local-development.md lists each (a test holds the two together).
 * Kept apart from the gateway's because dev/ never ships.
 */

/** An `npm run dev` option is unknown or its value unusable; every problem in one message. */
export const DEV_ERR_OPTIONS = createError<'DEV_ERR_OPTIONS', [string]>(
  'DEV_ERR_OPTIONS',
  'invalid options: %s',
  2,
)
/** The emulator's signing key (--key-file) is not an EC P-256 private key PEM. */
export const DEV_ERR_SIGNING_KEY = createError<'DEV_ERR_SIGNING_KEY', [string, string]>(
  'DEV_ERR_SIGNING_KEY',
  'IAP emulator key %s: %s',
  500,
)

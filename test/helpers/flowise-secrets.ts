/**
 * The variables that carry Flowise's secrets, in the order the rendered service lists them: the
 * database password, then the five the deploy generates per service (deploy/config-app.ts). Written
 * out here, not imported from there, so the tests check the deploy's list instead of repeating it.
 */
export const FLOWISE_SECRET_VARIABLES = [
  'DATABASE_PASSWORD',
  'FLOWISE_SECRETKEY_OVERWRITE',
  'JWT_AUTH_TOKEN_SECRET',
  'JWT_REFRESH_TOKEN_SECRET',
  'EXPRESS_SESSION_SECRET',
  'TOKEN_HASH_SECRET',
] as const

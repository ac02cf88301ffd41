/**
 * The `sm://` grammar: an environment value that names a Secret Manager secret version.
 *
 *   sm://SECRET                               project from GOOGLE_CLOUD_PROJECT / ADC, version latest
 *   sm://SECRET#VERSION
 *   sm://PROJECT/SECRET[#VERSION]
 *   sm://projects/PROJECT/secrets/SECRET[/versions/VERSION]
 *
 * Only values that start with `sm://` are references; every other value is left alone. A value that
 * starts with `sm://` but does not parse is an error (never silently passed through as a literal).
 */
export const REFERENCE_PREFIX = 'sm://'

export interface SecretReference {
  /** undefined for the short forms: the default project is filled in at resolution. */
  readonly project: string | undefined
  readonly secret: string
  /** `latest`, a version number or an alias. */
  readonly version: string
}

// Secret ids: letters, digits, `_` and `-`, up to 255 (Secret Manager's own rule).
const SECRET = /^[A-Za-z0-9_-]{1,255}$/
// Project ids (6-30, lower case, start with a letter, no trailing hyphen) or project numbers.
const PROJECT = /^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|\d{1,20})$/
// `latest`, a version number, or a version alias.
const VERSION = /^(?:latest|[1-9]\d{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62})$/

const FULL_NAME = /^projects\/([^/]*)\/secrets\/([^/]*)(?:\/versions\/([^/]*))?$/
const FULL_FORM_EXPECTED = 'expected projects/PROJECT/secrets/SECRET[/versions/VERSION]'

export function isReference(value: string | undefined): value is string {
  return value?.startsWith(REFERENCE_PREFIX) === true
}

/** Parses one reference; returns the reason it is not one instead of throwing, so callers can collect. */
export function parseReference(value: string): SecretReference | string {
  if (!isReference(value)) return `does not start with ${REFERENCE_PREFIX}`
  const body = value.slice(REFERENCE_PREFIX.length)
  // `projects/...` always means the full form (a project cannot be called `projects`).
  if (body.startsWith('projects/')) {
    const full = FULL_NAME.exec(body)
    return full ? check(full[1], full[2] as string, full[3] ?? 'latest') : FULL_FORM_EXPECTED
  }
  const hash = body.indexOf('#')
  const path = hash === -1 ? body : body.slice(0, hash)
  const version = hash === -1 ? 'latest' : body.slice(hash + 1)
  const parts = path.split('/')
  if (parts.length === 1) return check(undefined, parts[0] as string, version)
  if (parts.length === 2) return check(parts[0] as string, parts[1] as string, version)
  return 'expected sm://SECRET[#VERSION], sm://PROJECT/SECRET[#VERSION] or sm://projects/P/secrets/S/versions/V'
}

function check(project: string | undefined, secret: string, version: string): SecretReference | string {
  if (project !== undefined && !PROJECT.test(project)) return `"${project}" is not a project id or number`
  if (!SECRET.test(secret)) return `"${secret}" is not a secret id (letters, digits, _ and -, up to 255)`
  if (!VERSION.test(version)) return `"${version}" is not a version (latest, a number or an alias)`
  return Object.freeze({ project, secret, version })
}

/** The resource name Secret Manager's AccessSecretVersion takes. */
export function resourceName(reference: SecretReference, defaultProject: string): string {
  return `projects/${reference.project ?? defaultProject}/secrets/${reference.secret}/versions/${reference.version}`
}

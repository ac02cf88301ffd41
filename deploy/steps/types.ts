// The shape every step file exports: resources as data. A resource says how to read what exists
// (describe), how to tell whether it matches the config (check), and which gcloud commands create,
// update or delete it. The engine (../engine.ts) runs them; `plan` prints them.
import type { DeployConfig } from '../config.ts'

/**
 * A secret value a command needs: a version of a Secret Manager secret, read with `secrets versions
 * access` (stdout only, never shown), or made here (32 random bytes) when `generate` is set: the create
 * or add-version of a managed secret. A value made earlier in the same run is that secret's newest version.
 */
export type SecretValue = { kind: 'secret'; secret: string; version?: string; generate?: boolean }
/** Where a command's standard input comes from. Secrets travel on stdin or in a flags file, never in argv. */
export type Stdin = SecretValue

/** A flag whose value is a secret, written to a 0600 flags file that `--flags-file={file:NAME}` names. */
export interface SecretFlag extends Omit<SecretValue, 'kind' | 'generate'> {
  file: string
  flag: string
}

export interface Command {
  /** gcloud arguments; `--project`, `--quiet` and `--format=json` are added by the runner. */
  argv: string[]
  /** Files the command reads, by name; `{file:NAME}` inside argv becomes the file's path. */
  files?: Record<string, string>
  stdin?: Stdin
  secretFlags?: SecretFlag
  /** Retry while a just-created identity propagates through IAM. */
  retryIam?: boolean
  /** Long operations (Cloud SQL, builds) get a longer timeout and a progress line with elapsed time. */
  long?: boolean
  /** gcloud reads a password prompt from stdin: prompts stay enabled and --quiet is left out. */
  prompts?: boolean
  /**
   * A failure whose stderr matches `when` is not an error but something Google still holds (a peering a
   * deleted instance keeps for days): `destroy` records it as pending, goes on, and a later run finishes.
   */
  pending?: { when: RegExp; reason: string }
  /** What the plan shows for each file it passes, so the plan alone can be reviewed (what it grants, routes, runs). */
  review?: string[]
  /** Submit with --async, then poll until done (Cloud Build); the shell script waits instead. */
  poll?: Poll
}

/**
 * How a command submitted with --async is followed: `S` is what the submit prints, `B` what the
 * describe of the operation prints (as Resource's `J`, declared rather than checked).
 */
export interface Poll<S = unknown, B = unknown> {
  describe(submitted: S): string[]
  done(status: B): boolean
  /** Why the finished operation failed, or undefined when it succeeded. */
  failed(status: B): string | undefined
}

export interface Context {
  config: DeployConfig
  /** Values learned from describes (project number, backend service id, IP addresses). */
  facts: Map<string, string>
  /** A learned value, or a `${NAME}` placeholder while it is not known yet (plan, or before creation). */
  fact(name: string): string
}

/**
 * One resource. `J` is what its describe prints with --format=json, declared next to the step with
 * only the fields it reads (a policy is `Policy`, ./iam.ts). gcloud's output is parsed, not checked
 * against `J`: the callbacks are methods, so a `Resource<J>` fits in a step's `Resource[]` while each
 * resource reads its own shape; fields gcloud may leave out are optional in `J`.
 */
export interface Resource<J = unknown> {
  id: string
  title: string
  /** Data that outlives a destroy unless --delete-data is given (database, bucket, secrets). */
  data?: boolean
  when?: (c: DeployConfig) => boolean
  /** Only read for its facts (the project): never created or deleted here. */
  readOnly?: boolean
  describe: (x: Context) => string[]
  /** Some reads answer "nothing" with success (an empty list): say when that means absent. */
  absent?(json: J, x: Context): boolean
  /** Differences between what exists and the config, each naming the field (`cpu: live 1, config 2`). */
  check?(json: J, x: Context): string[]
  /** Record facts other resources need; runs after every describe that found the resource. */
  learn?(json: J, x: Context): void
  /** Facts this resource provides, with the `value(...)` projection a shell script can read them with. */
  exports?: Record<string, string>
  create: (x: Context) => Command[]
  update?(x: Context, json: J): Command[]
  delete?(x: Context, json: J): Command[]
  /** Why this resource must not be deleted as it stands; every refusal is checked before the first delete. */
  refuseDelete?(x: Context, json: J): string | undefined
  /** Resources that must be gone before this one is deleted: while one is pending, so is this. */
  heldBy?: string[]
  /**
   * Later resources of the same step whose describe can answer differently once this one's commands have
   * run (a secret's create makes its IAM policy readable). The engine reads those again and keeps the
   * step's other reads, so a missing name here is a stale read: name each one whose answer can change,
   * even where the decision would come out the same. Other steps are always read afresh after a change.
   */
  affects?: string[]
}

export interface Step {
  id: string
  title: string
  when?: (c: DeployConfig) => boolean
  resources: Resource[]
}

export function cmd(argv: string[], extra: Omit<Command, 'argv'> = {}): Command {
  return { argv, ...extra }
}

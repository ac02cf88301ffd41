// The shape every step file exports: resources as data. A resource says how to read what exists
// (describe), how to tell whether it matches the config (check), and which gcloud commands create,
// update or delete it. The engine (../engine.ts) runs them; `plan` prints them.
import type { DeployConfig } from '../config.ts'

/** Where a command's standard input comes from. Secrets travel only this way, never in argv. */
export type Stdin = { kind: 'secret'; secret: string } // the value of a managed secret (generated when new)

export interface Command {
  /** gcloud arguments; `--project`, `--quiet` and `--format=json` are added by the runner. */
  argv: string[]
  /** Files the command reads, by name; `{file:NAME}` inside argv becomes the file's path. */
  files?: Record<string, string>
  stdin?: Stdin
  /** Retry while a just-created identity propagates through IAM. */
  retryIam?: boolean
  /** Long operations (Cloud SQL, builds) get a longer timeout and a progress line with elapsed time. */
  long?: boolean
  /** gcloud reads a password prompt from stdin: prompts stay enabled and --quiet is left out. */
  prompts?: boolean
  /** Submit with --async, then poll until done (Cloud Build); the shell script waits instead. */
  poll?: {
    describe: (submitted: any) => string[]
    done: (build: any) => boolean
    failed: (build: any) => string | undefined
  }
}

export interface Context {
  config: DeployConfig
  /** Values learned from describes (project number, backend service id, IP addresses). */
  facts: Map<string, string>
  /** A learned value, or a `${NAME}` placeholder while it is not known yet (plan, or before creation). */
  fact(name: string): string
}

export interface Resource {
  id: string
  title: string
  /** Data that outlives a destroy unless --delete-data is given (database, bucket, secrets). */
  data?: boolean
  when?: (c: DeployConfig) => boolean
  /** Only read for its facts (the project): never created or deleted here. */
  readOnly?: boolean
  describe: (x: Context) => string[]
  /** Some reads answer "nothing" with success (an empty list): say when that means absent. */
  absent?: (json: any, x: Context) => boolean
  /** Differences between what exists and the config; none means unchanged. */
  check?: (json: any, x: Context) => string[]
  /** Record facts other resources need; runs after every describe that found the resource. */
  learn?: (json: any, x: Context) => void
  /** Facts this resource provides, with the `value(...)` projection a shell script can read them with. */
  exports?: Record<string, string>
  create: (x: Context) => Command[]
  update?: (x: Context, json: any) => Command[]
  delete?: (x: Context, json: any) => Command[]
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

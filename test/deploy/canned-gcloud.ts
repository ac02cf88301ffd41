// A stand-in for gcloud, in-process: each command (its argv, without the flags the runner adds) gets the
// answer a test gave it, as gcloud would exit: JSON on stdout, or an error on stderr. The real runner's
// own handling (failure(), --project and --format flags) stays; only the process is not started. For the
// code that reads gcloud's answers (doctor's checks, upgrade, rollback) without Google or the fake.

import type { DeployConfig } from '../../deploy/config.ts'
import { validateConfig } from '../../deploy/config.ts'
import { Gcloud, type GcloudResult } from '../../deploy/gcloud.ts'
import type { Command } from '../../deploy/steps/types.ts'

export type Answers = Record<string, GcloudResult>

/** What `--format=json` prints for a resource or a list. */
export const json = (value: unknown): GcloudResult => ({ code: 0, stdout: JSON.stringify(value), stderr: '' })

/** gcloud's answer to a describe of something absent (compute's wording; the runner's isNotFound reads it). */
export const notFound = (what: string): GcloudResult => ({
  code: 1,
  stdout: '',
  stderr: `ERROR: (gcloud) Could not fetch resource:\n - The resource '${what}' was not found\n`,
})

/** gcloud's answer when the account may not read: compute's wording for an HTTP 403. */
export const denied = (permission: string): GcloudResult => ({
  code: 1,
  stdout: '',
  stderr: `ERROR: (gcloud) Could not fetch resource:\n - Required '${permission}' permission for 'projects/demo-project'\n`,
})

export class CannedGcloud extends Gcloud {
  /** Every command asked, as its argv joined by spaces. */
  readonly asked: string[] = []
  private readonly answers: Answers

  constructor(answers: Answers) {
    super({ project: 'demo-project', gcloud: '/nonexistent/gcloud' })
    this.answers = answers
  }

  override async run(command: Command): Promise<GcloudResult> {
    const key = command.argv.join(' ')
    this.asked.push(key)
    // A command the test did not expect fails loudly, naming itself, instead of passing for anything.
    return (
      this.answers[key] ?? { code: 1, stdout: '', stderr: `ERROR: canned gcloud has no answer for: ${key}\n` }
    )
  }
}

/** The Flowise preset in the test project: database and monitoring on, service `fw`. */
export function cannedConfig(extra: Record<string, unknown> = {}): DeployConfig {
  return validateConfig(
    {
      project: 'demo-project',
      region: 'europe-west1',
      name: 'fw',
      domain: 'flowise.example.com',
      allowedCidrs: ['198.51.100.0/24'],
      iapMembers: ['user:alice@example.com'],
      ...extra,
    },
    '/',
  )
}

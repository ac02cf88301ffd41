#!/usr/bin/env node
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { resolveEnvironment } from './resolve.ts'

/**
 * `with-secrets -- <command> [args...]`: resolves every sm:// value in the environment, then runs the
 * command with the result. stdio is inherited, SIGTERM/SIGINT/SIGHUP are passed on, and the child's
 * exit code (or signal) becomes the launcher's own, so it can sit in front of any program as an
 * entrypoint. Failing to resolve ends it with status 1 and one line on stderr, before the command runs.
 */
const USAGE = 'usage: with-secrets -- <command> [args...]'
const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP']

async function main(argv: string[]): Promise<void> {
  const command = argv[0] === '--' ? argv.slice(1) : argv
  const [file, ...args] = command
  if (file === undefined || file === '') return fail(USAGE, 64)

  // Signals that arrive while secrets are being read end the launcher the way they would end the child.
  /* c8 ignore next -- tested, but a process that dies by a signal never writes its coverage */
  const early = (signal: NodeJS.Signals) => exitLike(null, signal)
  for (const signal of FORWARDED) process.on(signal, early)
  let env: Record<string, string | undefined>
  try {
    env = await resolveEnvironment(process.env)
  } catch (error) {
    return fail((error as Error).message, 1)
  }
  for (const signal of FORWARDED) process.off(signal, early)

  const child = spawn(file, args, { env, stdio: 'inherit' })
  const forward = (signal: NodeJS.Signals) => child.kill(signal)
  for (const signal of FORWARDED) process.on(signal, forward)
  child.once('error', (error: NodeJS.ErrnoException) => {
    // What a shell answers: 127 when the command does not exist, 126 when it cannot be run.
    fail(`cannot run ${file}: ${error.code}`, error.code === 'ENOENT' ? 127 : 126)
  })
  child.once('exit', exitLike)
}

/** Ends this process the way the child ended: same code, or killed by the same signal. */
function exitLike(code: number | null, signal: NodeJS.Signals | null): void {
  /* c8 ignore start -- tested (with-secrets.test.ts), but a process that dies by a signal never writes
     its coverage, so the branch into the signal path cannot be seen as taken */
  if (signal === null) process.exit(code as number) // Node gives a code whenever no signal
  for (const name of FORWARDED) process.removeAllListeners(name)
  process.kill(process.pid, signal)
  // As PID 1 in a container the kernel ignores a signal without a handler; fall back to the
  // shell's convention so the status still tells which signal it was.
  setImmediate(() => process.exit(128 + (constants.signals[signal] ?? 0)))
}
/* c8 ignore stop */

function fail(message: string, status: number): void {
  process.stderr.write(`with-secrets: ${message}\n`)
  process.exit(status)
}

main(process.argv.slice(2))

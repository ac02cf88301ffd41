import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { basename } from 'node:path'
import type { Test } from 'tap'

export interface NodeProcess {
  readonly child: ChildProcessWithoutNullStreams
  /** Resolves with the exit code once the process has ended and its pipes have closed. */
  readonly exited: Promise<number | null>
  /** Everything written so far. */
  stdout(): string
  stderr(): string
  /**
   * Resolves with what `find` makes of stdout as soon as that is not undefined (checked as output
   * arrives); rejects, with stderr, if the process ends first.
   */
  waitForStdout<T>(find: (stdout: string) => T | undefined): Promise<T>
}

/**
 * `node FILE ...args` as a real process, its output collected, SIGKILLed when `t` ends if it is still
 * running. Its stdin is closed at once, after `stdin` when given. This file loads
 * nothing of the project, so a test of one entry point counts only what that entry point loads.
 */
export function spawnNode(
  t: Test,
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string } = {},
): NodeProcess {
  const child = spawn(process.execPath, [file, ...args], {
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  child.stdin.end(options.stdin)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  return {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForStdout: (find) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = find(stdout)
          if (found === undefined) return
          child.stdout.off('data', check)
          resolve(found)
        }
        child.stdout.on('data', check)
        check()
        exited.then((code) => reject(new Error(`${basename(file)} exited (${code}): ${stderr}`)))
      }),
  }
}

// Progress for long commands: a spinner with elapsed seconds on a terminal (yocto-spinner: tiny, kept up
// by sindresorhus, no dependency tree), plain start/finish lines with durations everywhere else (CI logs).
import yoctoSpinner from 'yocto-spinner'

export interface Output {
  write(chunk: string): unknown
  isTTY?: boolean
}

export class Progress {
  private readonly out: Output
  private readonly now: () => number

  constructor(out: Output, now: () => number = Date.now) {
    this.out = out
    this.now = now
  }

  line(text: string): void {
    this.out.write(`${text}\n`)
  }

  async track<T>(label: string, work: () => Promise<T>): Promise<T> {
    const started = this.now()
    const elapsed = () => `${Math.round((this.now() - started) / 1000)} s`
    /* c8 ignore start -- terminal-only rendering; tests write to pipes */
    if (this.out.isTTY) {
      const spinner = yoctoSpinner({ text: label, stream: this.out as NodeJS.WriteStream }).start()
      const timer = setInterval(() => {
        spinner.text = `${label} (${elapsed()})`
      }, 1000)
      try {
        const result = await work()
        spinner.success(`${label} (${elapsed()})`)
        return result
      } catch (error) {
        spinner.error(`${label} (${elapsed()})`)
        throw error
      } finally {
        clearInterval(timer)
      }
    }
    /* c8 ignore stop */
    this.line(`${label} ...`)
    const result = await work()
    this.line(`${label}: done in ${elapsed()}`)
    return result
  }
}

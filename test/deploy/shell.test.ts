import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { shellWord } from '../../deploy/shell.ts'

const dir = mkdtempSync(join(tmpdir(), 'deploy-shell-'))

function echo(word: string): string {
  const file = join(dir, 'echo.sh')
  writeFileSync(file, `X=1\nprintf '%s' ${word}\n`)
  return execFileSync('bash', [file], { encoding: 'utf8' })
}

t.test('shell words survive bash unchanged, placeholders stay live', async (t) => {
  for (const s of ['plain', "it's", 'a b', '$HOME `x` "q" \\ !', '--display-name=fw Cloud Run']) {
    t.equal(echo(shellWord(s)), s, s)
  }
  t.equal(shellWord('--network=default'), '--network=default', 'simple words stay bare')
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the deploy's own ${NAME} placeholder, not a template
  t.equal(echo(shellWord('/p/${X}/$HOME "q" `b` \\')), '/p/1/$HOME "q" `b` \\')
})

// biome-ignore lint/suspicious/noTemplateCurlyInString: the deploy's own ${NAME} placeholder, not a template
t.test('placeholders with digits stay live (${ADDRESS_V6}, once ${DATABASE_CA_BASE64})', async (t) => {
  const file = join(dir, 'digits.sh')
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the deploy's own ${NAME} placeholder, not a template
  writeFileSync(file, `ADDRESS_V6=2600::1\nprintf '%s' ${shellWord('[${ADDRESS_V6}] $HOME')}\n`)
  t.equal(execFileSync('bash', [file], { encoding: 'utf8' }), '[2600::1] $HOME')
})

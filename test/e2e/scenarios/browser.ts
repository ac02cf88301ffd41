// Scenario 3: the Flowise UI through the chain in headless Debian Chromium (playwright-core drives the
// system browser; no browser download): the sign-in page renders, the owner signs in, the chatflow list
// shows the flow. Straight to the gateway, without the emulator, the same page is refused.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import type { Test } from 'tap'
import type { Suite } from '../helpers/suite.ts'

export const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium'

// playwright adds --headless itself; the rest keeps a CI browser quiet and offline
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export async function browserThroughChain(t: Test, suite: Suite): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), 'e2e-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
  })
  t.teardown(async () => {
    await context.close().catch(() => {})
    rmSync(profile, { recursive: true, force: true })
  })
  const page = await context.newPage()
  page.setDefaultTimeout(60_000)

  const started = performance.now()
  const signin = await page.goto(`${suite.chain.url}/signin`)
  t.equal(signin?.status(), 200, 'the sign-in page is served through the chain')
  await page.getByRole('heading', { name: 'Sign In' }).waitFor()
  await page.screenshot({ path: join(suite.outputDir, 'signin.png') })
  t.comment(`sign-in page rendered after ${Math.round(performance.now() - started)} ms`)

  await page.locator('input[type=email]').fill(suite.owner.email)
  await page.locator('input[type=password]').fill(suite.owner.password)
  await page.getByRole('button', { name: 'Login' }).click()
  await page.waitForURL((url) => !url.pathname.startsWith('/signin'))
  await page.goto(`${suite.chain.url}/chatflows`)
  const name = suite.made.chatflowName as string
  await page.getByText(name).first().waitFor()
  t.pass(`the owner signed in and the chatflow list shows "${name}"`)
  await page.screenshot({ path: join(suite.outputDir, 'chatflows.png') })

  // the same page, straight to the gateway: no IAP assertion, no page
  const direct = await context.newPage()
  const refused = await direct.goto(`${suite.chain.gatewayUrl}/signin`)
  // no balancer hop in X-Forwarded-For: the gateway cannot tell the client's address, so 403 before IAP
  t.equal(refused?.status(), 403, 'without the emulator in front the sign-in page is refused (403)')
  t.notMatch(await direct.content(), /Sign In/, 'and nothing of Flowise is in the answer')
  await direct.screenshot({ path: join(suite.outputDir, 'refused.png') })
}

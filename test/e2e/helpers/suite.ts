// What every scenario shares: the output folder, the started pieces, and what earlier scenarios made.
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Postgres } from '../../../dev/postgres.ts'
import type { SecretManagerServer } from '../../../dev/secret-manager-server.ts'
import type { Chain } from './chain.ts'
import type { FlowiseInstance } from './flowise.ts'
import type { Owner } from './flowise-api.ts'
import type { LlmServer } from './llm-server.ts'

export type Suite = {
  outputDir: string
  /** Flowise's HOME, logs and blob storage for this run */
  dataDir: string
  flowiseDir: string
  postgres: Postgres
  secrets: SecretManagerServer
  llm: LlmServer
  flowise: FlowiseInstance
  chain: Chain
  owner: Owner
  /** the OpenAI API key stored (encrypted) as a Flowise credential */
  apiKey: string
  made: { chatflowId?: string; chatflowName?: string; credentialId?: string }
}

/** .local/e2e (ignored by git) unless E2E_OUTPUT_DIR says otherwise; one run per subfolder. */
export function outputFolder(): { outputDir: string; dataDir: string } {
  const root = process.env.E2E_OUTPUT_DIR || fileURLToPath(new URL('../../../.local/e2e', import.meta.url))
  mkdirSync(root, { recursive: true })
  const outputDir = mkdtempSync(join(root, `run-${new Date().toISOString().replace(/[:.]/g, '-')}-`))
  const dataDir = join(outputDir, 'flowise-home')
  mkdirSync(dataDir, { recursive: true })
  return { outputDir, dataDir }
}

export function newOwner(): Owner {
  // Flowise's rule: 8+ characters with lower and upper case, a digit and a special character
  return {
    name: 'E2E Owner',
    email: 'owner@example.com',
    password: `Aa1!${randomBytes(12).toString('base64url')}`,
  }
}

/** ms between two moments, rounded, for the measurements the suite prints */
export const ms = (value: number) => Math.round(value)

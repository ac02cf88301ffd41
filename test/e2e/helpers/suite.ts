// What every scenario shares: the output folder, the started pieces, and what earlier scenarios made.
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DeployConfig } from '../../../deploy/config.ts'
import type { LocalDeployment } from '../../../deploy/run-local/start.ts'
import type { Postgres } from '../../../dev/postgres.ts'
import type { Owner } from './flowise-api.ts'
import type { LlmServer } from './llm-server.ts'

export type Suite = {
  outputDir: string
  config: DeployConfig
  /** the service from its images, the emulator in front, PostgreSQL and Secret Manager behind */
  deployment: LocalDeployment
  postgres: Postgres
  llm: LlmServer
  /** the emulator's URL (what a browser opens) and the ingress container's (what skips IAP) */
  chain: { url: string; gatewayUrl: string }
  owner: Owner
  /** the OpenAI API key stored (encrypted) as a Flowise credential */
  apiKey: string
  made: { chatflowId?: string; chatflowName?: string; credentialId?: string }
}

/** .local/e2e (ignored by git) unless E2E_OUTPUT_DIR says otherwise; one run per subfolder. */
export function outputFolder(): { outputDir: string } {
  const root = process.env.E2E_OUTPUT_DIR || fileURLToPath(new URL('../../../.local/e2e', import.meta.url))
  mkdirSync(root, { recursive: true })
  return { outputDir: mkdtempSync(join(root, `run-${new Date().toISOString().replace(/[:.]/g, '-')}-`)) }
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

// The deploy config: YAML -> one typed, frozen object (config-schema.ts documents every field). Each
// block is checked by its own validator through one Reader, which collects every problem; they are
// reported at once, each naming the field and the bad value, before anything runs.
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parse } from 'yaml'
import { access, iapOAuthClient } from './config-access.ts'
import { appConfig, isFlowise, storageConfig } from './config-app.ts'
import { databaseConfig, networkConfig } from './config-database.ts'
import { monitoringConfig } from './config-monitoring.ts'
import { type Raw, Reader } from './config-reader.ts'
import { type DeployConfig, KNOWN_FIELDS } from './config-schema.ts'
import { gatewayConfig, repository, scaling } from './config-service.ts'
import { DeployError } from './errors.ts'
import { gatewayEnvProblems } from './gateway-env.ts'
import { serviceRuleProblems } from './service-rules.ts'

export type { AppSecret, Build, DeployConfig } from './config-schema.ts'

export function readConfig(file: string): DeployConfig {
  let raw: unknown
  try {
    raw = parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new DeployError('DEPLOY_ERR_CONFIG', `cannot read config ${file}: ${(error as Error).message}`)
  }
  return validateConfig(raw, dirname(resolve(file)))
}

export function validateConfig(raw: unknown, baseDir: string): DeployConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DeployError('DEPLOY_ERR_CONFIG', 'config: must be a YAML mapping')
  }
  const r = new Reader(raw as Raw)
  for (const [block, fields] of Object.entries(KNOWN_FIELDS)) {
    if (block === 'build') continue
    if (block) r.map(block)
    r.known(block, fields)
  }
  for (const path of ['gateway.build', 'app.build']) r.known(path, KNOWN_FIELDS.build)

  const who = access(r)
  const flowise = isFlowise(r)
  const app = appConfig(r, who.name, baseDir, flowise)
  const config: DeployConfig = {
    ...who,
    ...scaling(r, flowise),
    repository: repository(r, who.name),
    gateway: gatewayConfig(r, baseDir),
    app,
    network: networkConfig(r),
    database: databaseConfig(r, who.name, flowise),
    storage: storageConfig(r, who.project, who.name, flowise),
    monitoring: monitoringConfig(r, who.project),
  }
  const client = iapOAuthClient(r)
  if (client) config.iapOAuthClient = client
  // The gateway's own configuration code judges the environment this config gives it.
  for (const p of gatewayEnvProblems(config)) {
    if (!r.reported(p.slice(0, p.indexOf(':')).replace(/\[\d+\]$/, ''))) r.problems.push(p)
  }
  // Cloud Run's documented rules judge the service it renders (only a config without other problems
  // renders a service worth checking).
  if (r.problems.length === 0) r.problems.push(...serviceRuleProblems(config))
  if (r.problems.length > 0) throw new DeployError('DEPLOY_ERR_CONFIG', r.problems)
  return deepFreeze(config)
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

// `deploy render` without Google: the service YAML the deploy would apply, rendered by its own code
// (service-yaml.ts with steps/run.ts's serviceValues), where only the values the deploy learns from
// gcloud get local stand-ins, and the images the YAML names are mapped to local builds. Pure.
import type { DeployConfig } from '../config.ts'
import { imageRef, serviceYaml } from '../service-yaml.ts'
import { serviceValues } from '../steps/run.ts'
import type { Context } from '../steps/types.ts'
import { RunLocalError } from './errors.ts'

/**
 * What `deploy render` reads from gcloud, and what stands in for it here. The audience the gateway
 * checks is built from the first two (so the IAP emulator signs for /projects/000000000000/...). The
 * database password is pinned to the secret version the deploy applied: here version 1 of the local
 * Secret Manager's secret, which holds the local PostgreSQL's password. The database itself needs no
 * fact: the YAML names the Cloud SQL socket folder (/cloudsql/PROJECT:REGION:INSTANCE), which the
 * runner mounts from the local PostgreSQL's socket folder.
 */
export type LocalFacts = Readonly<{
  PROJECT_NUMBER: string
  BACKEND_SERVICE_ID: string
  DATABASE_PASSWORD_VERSION: string
}>

export const LOCAL_PROJECT_NUMBER = '000000000000'
export const LOCAL_BACKEND_SERVICE_ID = '0000000000000000000'
export const LOCAL_DATABASE_PASSWORD_VERSION = '1'

export const LOCAL_FACTS: LocalFacts = Object.freeze({
  PROJECT_NUMBER: LOCAL_PROJECT_NUMBER,
  BACKEND_SERVICE_ID: LOCAL_BACKEND_SERVICE_ID,
  DATABASE_PASSWORD_VERSION: LOCAL_DATABASE_PASSWORD_VERSION,
})

/** The service YAML as `deploy render` writes it, with the local facts; refuses a fact it lacks. */
export function renderLocal(config: DeployConfig, facts: LocalFacts = LOCAL_FACTS): string {
  const known = new Map<string, string>(Object.entries(facts))
  const context: Context = { config, facts: known, fact: (name) => known.get(name) ?? `\${${name}}` }
  const yaml = serviceYaml(config, serviceValues(context))
  // a fact the deploy learned to need after this file was written: say which, rather than run "${X}"
  const missing = [...new Set([...yaml.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1] as string))]
  if (missing.length > 0) {
    throw new RunLocalError(
      'RUN_LOCAL_ERR_USAGE',
      missing.map((name) => `the rendered service needs ${name}, which run-local has no local stand-in for`),
    )
  }
  return yaml
}

export type LocalImage = Readonly<{
  /** what the YAML names (Artifact Registry) */
  ref: string
  /** the local tag standing in for it */
  local: string
  /** how to build it: the config's build section (absent for an app.image pulled as is) */
  build?: Readonly<{ context: string; dockerfile: string; args: Readonly<Record<string, string>> }>
  /** the Flowise release of the Flowise preset's image */
  flowiseVersion?: string
}>

/**
 * The images the deploy builds with Cloud Build, built here with podman from the same build sections:
 * REGION-docker.pkg.dev/PROJECT/REPOSITORY/NAME:TAG runs localhost/iap-gateway/NAME:TAG, except the
 * gateway, which `npm run images:build` tags localhost/iap-gateway/gateway:local. An app.image (a
 * public image Cloud Run pulls as is) is run under its own name, from podman's store.
 */
export function localImages(config: DeployConfig): LocalImage[] {
  const images: LocalImage[] = [
    {
      ref: imageRef(config, 'gateway', config.gateway.tag),
      local: 'localhost/iap-gateway/gateway:local',
      build: config.gateway.build,
    },
  ]
  if (config.app.build) {
    images.push({
      ref: imageRef(config, config.app.container, config.app.tag),
      local: `localhost/iap-gateway/${config.app.container}:${config.app.tag}`,
      build: config.app.build,
      ...(config.app.preset === 'flowise' ? { flowiseVersion: config.app.build.args.FLOWISE_VERSION } : {}),
    })
  } else if (config.app.image) {
    images.push({ ref: config.app.image, local: config.app.image })
  }
  return images.map((image) => Object.freeze(image))
}

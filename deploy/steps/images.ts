// Step 4: the Artifact Registry repository and the images, built by Cloud Build from the Dockerfiles at
// the repository root. A tag that exists is not rebuilt: bump the tag to ship a change.
import { stringify } from 'yaml'
import type { Build, DeployConfig } from '../config.ts'
import { imageRef } from '../service-yaml.ts'
import { cmd, type Resource, type Step } from './types.ts'

export function cloudbuildYaml(image: string, build: Build): string {
  const args = ['build', '-f', build.dockerfile, '-t', image]
  for (const [k, v] of Object.entries(build.args)) args.push('--build-arg', `${k}=${v}`)
  args.push('.')
  return stringify({
    steps: [{ name: 'gcr.io/cloud-builders/docker', args }],
    images: [image],
    timeout: '3600s',
  })
}

function imageResource(c: DeployConfig, image: string, tag: string, build: Build): Resource {
  const ref = imageRef(c, image, tag)
  const pkg = `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${image}`
  return {
    id: `image/${image}`,
    title: `image ${image}:${tag}`,
    describe: () => ['artifacts', 'docker', 'tags', 'list', pkg],
    absent: (json) => !(json as any[]).some((t) => String(t.tag).endsWith(`/tags/${tag}`)),
    create: () => [
      cmd(['builds', 'submit', build.context, '--config={file:cloudbuild-yaml}', `--region=${c.region}`], {
        files: { 'cloudbuild-yaml': cloudbuildYaml(ref, build) },
        long: true,
        poll: {
          describe: (submitted) => [
            'builds',
            'describe',
            String(submitted.metadata?.build?.id ?? submitted.id),
            `--region=${c.region}`,
          ],
          done: (b) =>
            ['SUCCESS', 'FAILURE', 'INTERNAL_ERROR', 'TIMEOUT', 'CANCELLED', 'EXPIRED'].includes(b.status),
          failed: (b) =>
            b.status === 'SUCCESS' ? undefined : `build ${b.id} ended ${b.status}: ${b.logUrl ?? ''}`,
        },
      }),
    ],
  }
}

export function imagesStep(c: DeployConfig): Step {
  const resources: Resource[] = [
    {
      id: 'repository',
      title: `Artifact Registry repository ${c.repository}`,
      describe: () => ['artifacts', 'repositories', 'describe', c.repository, `--location=${c.region}`],
      create: () => [
        cmd([
          'artifacts',
          'repositories',
          'create',
          c.repository,
          '--repository-format=docker',
          `--location=${c.region}`,
        ]),
      ],
      delete: () => [cmd(['artifacts', 'repositories', 'delete', c.repository, `--location=${c.region}`])],
    },
    imageResource(c, 'gateway', c.gateway.tag, c.gateway.build),
  ]
  if (c.app.build) resources.push(imageResource(c, c.app.container, c.app.tag, c.app.build))
  return { id: 'images', title: 'Images', resources }
}

// Step 4: the Artifact Registry repository and the images, built by Cloud Build from the Dockerfiles at
// the repository root, as the deploy's own build service account (identity.ts says why). A tag that
// exists is not rebuilt: bump the tag to ship a change.
import { stringify } from 'yaml'
import type { Build, DeployConfig } from '../config.ts'
import { imageRef } from '../service-yaml.ts'
import { membersOf, type Policy } from './iam.ts'
import { buildMember, names } from './names.ts'
import { privateBucket } from './storage.ts'
import { cmd, type Poll, type Resource, type Step } from './types.ts'

const REPOSITORY_WRITER = 'roles/artifactregistry.writer'
const OBJECT_VIEWER = 'roles/storage.objectViewer'

export function cloudbuildYaml(c: DeployConfig, image: string, build: Build): string {
  const args = ['build', '-f', build.dockerfile, '-t', image]
  for (const [k, v] of Object.entries(build.args)) args.push('--build-arg', `${k}=${v}`)
  args.push('.')
  return stringify({
    steps: [{ name: 'gcr.io/cloud-builders/docker', args }],
    images: [image],
    timeout: '3600s',
    serviceAccount: `projects/${c.project}/serviceAccounts/${names(c).buildServiceAccount}`,
    // A build with its own service account must log to Cloud Logging or a bucket of its own: "if
    // 'build.service_account' is specified, the build must either (a) specify 'build.logs_bucket', (b) ...,
    // or (c) use either CLOUD_LOGGING_ONLY / NONE logging options" (build/docs/securing-builds/
    // configure-user-specified-service-accounts; the error as in cert-manager/cert-manager#8851).
    options: { logging: 'CLOUD_LOGGING_ONLY' },
  })
}

/** One entry of `artifacts docker tags list`: `tag` is the full resource name, ending /tags/TAG. */
interface DockerTag {
  tag: string
}

/** What `builds submit --async` prints: the build, or (by region) the operation that carries it. */
interface BuildSubmission {
  id?: string
  metadata?: { build?: { id?: string } }
}

/** `builds describe` (Cloud Build v1 Build). */
interface CloudBuild {
  id: string
  status: string
  statusDetail?: string
  logUrl?: string
}

// Cloud Build's Build.Status values that end a build; only SUCCESS is a success.
const FINISHED = ['SUCCESS', 'FAILURE', 'INTERNAL_ERROR', 'TIMEOUT', 'CANCELLED', 'EXPIRED']

function buildPoll(region: string): Poll<BuildSubmission, CloudBuild> {
  return {
    describe: (submitted) => [
      'builds',
      'describe',
      String(submitted.metadata?.build?.id ?? submitted.id),
      `--region=${region}`,
    ],
    done: (b) => FINISHED.includes(b.status),
    failed: (b) =>
      b.status === 'SUCCESS'
        ? undefined
        : `build ${b.id} ended ${b.status}${b.statusDetail ? ` (${b.statusDetail})` : ''}: ${b.logUrl ?? ''}`,
  }
}

function imageResource(c: DeployConfig, image: string, tag: string, build: Build): Resource<DockerTag[]> {
  const ref = imageRef(c, image, tag)
  const pkg = `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${image}`
  return {
    id: `image/${image}`,
    title: `image ${image}:${tag}`,
    describe: () => ['artifacts', 'docker', 'tags', 'list', pkg],
    absent: (tags) => !tags.some((t) => t.tag.endsWith(`/tags/${tag}`)),
    create: () => [
      cmd(
        [
          'builds',
          'submit',
          build.context,
          '--config={file:cloudbuild-yaml}',
          `--region=${c.region}`,
          `--gcs-source-staging-dir=gs://${names(c).sourceBucket}/source`,
        ],
        {
          files: { 'cloudbuild-yaml': cloudbuildYaml(c, ref, build) },
          review: [
            `cloudbuild-yaml: docker build -f ${build.dockerfile} ${Object.entries(build.args)
              .map(([k, v]) => `--build-arg ${k}=${v} `)
              .join('')}(context ${build.context}) -> ${ref}`,
            `cloudbuild-yaml: runs as ${names(c).buildServiceAccount}, logs to Cloud Logging only`,
          ],
          long: true,
          poll: buildPoll(c.region),
        },
      ),
    ],
  }
}

/** A role for the build service account on one resource, granted with that resource's IAM command. */
function buildAccess(id: string, title: string, role: string, target: string[]): Resource<Policy> {
  const grant = (c: DeployConfig) =>
    cmd(
      [
        ...target.slice(0, 2),
        'add-iam-policy-binding',
        ...target.slice(2),
        `--member=${buildMember(c)}`,
        `--role=${role}`,
      ],
      {
        retryIam: true,
      },
    )
  return {
    id,
    title,
    describe: () => [...target.slice(0, 2), 'get-iam-policy', ...target.slice(2)],
    check: (json, x) =>
      membersOf(json, role).includes(buildMember(x.config)) ? [] : ['build service account lacks access'],
    create: (x) => [grant(x.config)],
    update: (x) => [grant(x.config)],
  }
}

export function imagesStep(c: DeployConfig): Step {
  const n = names(c)
  const bucket = `gs://${n.sourceBucket}`
  const resources: Resource[] = [
    {
      id: 'repository',
      title: `Artifact Registry repository ${c.repository}`,
      // Its IAM policy and its images' tag lists are NOT_FOUND until the repository exists.
      affects: ['repository-access', 'image/gateway', ...(c.app.build ? [`image/${c.app.container}`] : [])],
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
    buildAccess(
      `repository-access`,
      `${REPOSITORY_WRITER} on ${c.repository} for the build account`,
      REPOSITORY_WRITER,
      ['artifacts', 'repositories', c.repository, `--location=${c.region}`],
    ),
    {
      id: 'source-bucket',
      title: `build source bucket ${bucket}`,
      affects: ['source-access'],
      // Only staged build sources: not data.
      ...privateBucket(bucket, c.region),
    },
    buildAccess('source-access', `${OBJECT_VIEWER} on ${bucket} for the build account`, OBJECT_VIEWER, [
      'storage',
      'buckets',
      bucket,
    ]),
    imageResource(c, 'gateway', c.gateway.tag, c.gateway.build),
  ]
  if (c.app.build) resources.push(imageResource(c, c.app.container, c.app.tag, c.app.build))
  return { id: 'images', title: 'Images', resources }
}

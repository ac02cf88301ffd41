// Step 6: the bucket Flowise keeps its files in (STORAGE_TYPE=gcs), with object admin for the runtime
// service account on this bucket only.
import type { DeployConfig } from '../config.ts'
import { membersOf, type Policy } from './iam.ts'
import { member } from './names.ts'
import { cmd, type Resource, type Step } from './types.ts'

const OBJECT_ADMIN = 'roles/storage.objectAdmin'

/** A bucket that only IAM opens (uniform bucket-level access, public access prevented), and emptied on delete. */
export function privateBucket(url: string, region: string): Pick<Resource, 'describe' | 'create' | 'delete'> {
  return {
    describe: () => ['storage', 'buckets', 'describe', url],
    create: () => [
      cmd([
        'storage',
        'buckets',
        'create',
        url,
        `--location=${region}`,
        '--uniform-bucket-level-access',
        '--public-access-prevention',
      ]),
    ],
    delete: () => [cmd(['storage', 'rm', '--recursive', url], { long: true })],
  }
}

export function storageStep(c: DeployConfig): Step {
  const url = `gs://${c.storage.bucket}`
  const grant = cmd(
    ['storage', 'buckets', 'add-iam-policy-binding', url, `--member=${member(c)}`, `--role=${OBJECT_ADMIN}`],
    {
      retryIam: true,
    },
  )
  return {
    id: 'storage',
    title: 'File storage',
    when: (cfg) => cfg.storage.enabled,
    resources: [
      {
        id: 'bucket',
        title: `bucket ${url}`,
        data: true,
        affects: ['bucket-access'],
        ...privateBucket(url, c.region),
      },
      {
        id: 'bucket-access',
        title: `objectAdmin on ${url}`,
        describe: () => ['storage', 'buckets', 'get-iam-policy', url],
        check: (json) =>
          membersOf(json, OBJECT_ADMIN).includes(member(c)) ? [] : ['runtime service account lacks access'],
        create: () => [grant],
        update: () => [grant],
      } satisfies Resource<Policy>,
    ],
  }
}

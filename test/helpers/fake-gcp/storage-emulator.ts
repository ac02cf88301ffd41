// A Cloud Storage JSON API on a local port for @google-cloud/storage (set STORAGE_EMULATOR_HOST to `url`):
// the fake's storage routes, with the given buckets made as the deploy makes them. No globals: each call
// is its own server, so a test (or the image-based e2e suite) can start as many as it needs.
import { FakeGcp } from './server.ts'

export interface StorageFake {
  url: string
  fake: FakeGcp
  close(): Promise<void>
}

export async function startStorageFake(
  buckets: { name: string; uniformBucketLevelAccess: boolean }[],
): Promise<StorageFake> {
  const fake = await new FakeGcp().start()
  for (const b of buckets) {
    fake.resources.set(`bucket:${b.name}`, {
      kind: 'storage#bucket',
      name: b.name,
      id: b.name,
      iamConfiguration: { uniformBucketLevelAccess: { enabled: b.uniformBucketLevelAccess } },
    })
  }
  return { url: fake.base, fake, close: () => fake.close() }
}

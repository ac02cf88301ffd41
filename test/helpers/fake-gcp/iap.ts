// Identity-Aware Proxy: IAM policies on IAP-secured web resources.
import { readPolicy, writePolicy } from './iam-policy.ts'
import type { Route } from './server.ts'

export function iapRoutes(): Route[] {
  return [
    {
      method: 'POST',
      re: /^\/iap\/v1\/(.+):getIamPolicy$/,
      handle: ({ fake, m }) => ({ status: 200, body: readPolicy(fake, `iap/${m[1]}`) }),
    },
    {
      method: 'POST',
      re: /^\/iap\/v1\/(.+):setIamPolicy$/,
      handle: ({ fake, m, body }) => writePolicy(fake, `iap/${m[1]}`, body.policy),
    },
  ]
}

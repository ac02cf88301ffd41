// Project-level APIs: Resource Manager (project, IAM policy), IAM service accounts, Service Usage
// (enabled APIs, service identities) and Service Networking (private services access).
import { readPolicy, writePolicy } from './iam-policy.ts'
import type { FakeGcp, Reply, Route } from './server.ts'
import { badRequest, conflict, found, notFound } from './server.ts'

/** A long-running operation, already done, kept so that gcloud's wait reads the same outcome back. */
function lro(fake: FakeGcp, outcome: { response?: unknown; error?: unknown } = { response: {} }): Reply {
  const op = { name: `operations/op-${fake.id()}`, done: true, ...outcome }
  fake.resources.set(`lro:${op.name}`, op)
  return { status: 200, body: op }
}

export function projectRoutes(): Route[] {
  return [
    {
      method: 'GET',
      re: /^\/cloudresourcemanager\/v1\/projects\/([^/:]+)$/,
      handle: ({ fake, m }) => ({
        status: 200,
        body: { projectId: m[1], projectNumber: fake.projectNumber, lifecycleState: 'ACTIVE', name: m[1] },
      }),
    },
    {
      method: 'POST',
      re: /^\/cloudresourcemanager\/v1\/projects\/([^/:]+):getIamPolicy$/,
      handle: ({ fake, m }) => ({ status: 200, body: readPolicy(fake, `project/${m[1]}`) }),
    },
    {
      method: 'POST',
      re: /^\/cloudresourcemanager\/v1\/projects\/([^/:]+):setIamPolicy$/,
      handle: ({ fake, m, body }) => writePolicy(fake, `project/${m[1]}`, body.policy),
    },
    {
      method: 'GET',
      re: /^\/iam\/v1\/projects\/[^/]+\/serviceAccounts\/([^/:]+)$/,
      handle: ({ fake, m }) => found(fake.resources.get(`iam-sa:${m[1]}`), `serviceAccounts/${m[1]}`),
    },
    {
      method: 'POST',
      re: /^\/iam\/v1\/projects\/([^/]+)\/serviceAccounts$/,
      handle: ({ fake, m, body }) => {
        const email = `${body.accountId}@${m[1]}.iam.gserviceaccount.com`
        if (fake.resources.has(`iam-sa:${email}`)) return conflict(`Service account ${email}`)
        const sa = {
          name: `projects/${m[1]}/serviceAccounts/${email}`,
          projectId: m[1],
          uniqueId: fake.id(),
          email,
          displayName: body.serviceAccount?.displayName,
        }
        fake.resources.set(`iam-sa:${email}`, sa)
        if (fake.simulatePropagation) fake.unpropagated.add(email)
        return { status: 200, body: sa }
      },
    },
    {
      method: 'DELETE',
      re: /^\/iam\/v1\/projects\/[^/]+\/serviceAccounts\/([^/:]+)$/,
      handle: ({ fake, m }) =>
        fake.resources.delete(`iam-sa:${m[1]}`)
          ? { status: 200, body: {} }
          : notFound(`serviceAccounts/${m[1]}`),
    },
    {
      method: 'GET',
      re: /^\/serviceusage\/v1\/projects\/([^/]+)\/services$/,
      handle: ({ fake, m }) => {
        const services = [...fake.resources].filter(([k]) => k.startsWith(`api:${m[1]}/`)).map(([, v]) => v)
        return { status: 200, body: { services } }
      },
    },
    {
      method: 'POST',
      re: /^\/serviceusage\/v1\/projects\/([^/]+)\/services:batchEnable$/,
      handle: ({ fake, m, body }) => {
        for (const id of body.serviceIds) {
          fake.resources.set(`api:${m[1]}/${id}`, {
            name: `projects/${fake.projectNumber}/services/${id}`,
            config: { name: id },
            state: 'ENABLED',
          })
        }
        return lro(fake)
      },
    },
    {
      method: 'GET',
      re: /^\/(serviceusage|servicenetworking)\/v1(beta1)?\/operations\/([^/]+)$/,
      handle: ({ fake, m }) => found(fake.resources.get(`lro:operations/${m[3]}`), `operations/${m[3]}`),
    },
    {
      method: 'POST',
      re: /^\/serviceusage\/v1beta1\/projects\/([^/]+)\/services\/([^/:]+):generateServiceIdentity$/,
      handle: ({ fake, m }) => {
        const agent = (m[2] as string).split('.')[0]
        const email = `service-${fake.projectNumber}@gcp-sa-${agent}.iam.gserviceaccount.com`
        fake.resources.set(`iam-sa:${email}`, { email, managed: true })
        return lro(fake, {
          response: { '@type': 'type.googleapis.com/google.api.serviceusage.v1beta1.ServiceIdentity', email },
        })
      },
    },
    {
      method: 'GET',
      re: /^\/servicenetworking\/v1\/services\/([^/]+)\/connections$/,
      handle: ({ fake, query }) => {
        const connections = [...fake.resources]
          .filter(([k]) => k === `peering:${query.network}`)
          .map(([, v]) => v)
        return { status: 200, body: { connections } }
      },
    },
    {
      method: 'POST',
      re: /^\/servicenetworking\/v1\/services\/([^/]+)\/connections$/,
      handle: ({ fake, m, body }) => {
        for (const range of body.reservedPeeringRanges ?? []) {
          const project = (body.network as string).split('/')[1]
          const found = [...fake.resources].some(
            ([k, v]) =>
              k.endsWith(`/global/addresses/${range}`) && v.purpose === 'VPC_PEERING' && k.includes(`/`),
          )
          if (!found) return badRequest(`reserved range ${range} not found in project ${project}`)
        }
        fake.resources.set(`peering:${body.network}`, {
          network: body.network,
          peering: 'servicenetworking-googleapis-com',
          reservedPeeringRanges: body.reservedPeeringRanges,
          service: `services/${m[1]}`,
        })
        return lro(fake)
      },
    },
    {
      method: 'POST',
      // gcloud 528 posts to `connections/-` (the verb is not in the path it sends).
      re: /^\/servicenetworking\/v1\/services\/[^/]+\/connections\/[^/:]+(:deleteConnection)?$/,
      handle: ({ fake, body }) => {
        const network = (body.consumerNetwork as string).replace(/^.*?(projects\/)/, '$1')
        const name = network.split('/').pop() as string
        // While an instance (or a deleted one, for days after) holds the peering, the delete operation ends
        // in error code 9: "Failed to delete connection; Producer services (e.g. CloudSQL, Cloud Memstore,
        // etc.) are still using this connection." (hashicorp/terraform-provider-google#18834, #19908;
        // magic-modules#18476: "Cloud SQL retains them so that a deleted instance can still be restored").
        const inUse = [...fake.resources].some(
          ([k, v]) =>
            k.startsWith('sql:') && String(v.settings?.ipConfiguration?.privateNetwork).endsWith(`/${name}`),
        )
        if (inUse || fake.producerHolds.has(name)) {
          return lro(fake, {
            error: {
              code: 9,
              message:
                'Failed to delete connection; Producer services (e.g. CloudSQL, Cloud Memstore, etc.) are still using this connection.',
            },
          })
        }
        return fake.resources.delete(`peering:${network}`) ? lro(fake) : notFound(`connection for ${network}`)
      },
    },
  ]
}

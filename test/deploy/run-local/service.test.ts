// The run-local reader refuses what Cloud Run refuses, each problem named by its YAML field, all of
// them at once; and it reads the YAML `deploy render` writes into the start order, ports, probes and
// limits Cloud Run would use. Pure: no podman.
import t from 'tap'
import { parse } from 'yaml'
import { readConfig } from '../../../deploy/config.ts'
import { RunLocalError } from '../../../deploy/run-local/errors.ts'
import { formatMemory, parseCpu, parseMemory } from '../../../deploy/run-local/limits.ts'
import { checkService, localProblems, readService } from '../../../deploy/run-local/service.ts'
import { serviceYaml } from '../../../deploy/service-yaml.ts'
import { FLOWISE_SECRET_VARIABLES } from '../../helpers/flowise-secrets.ts'
import { serviceWithContainers } from '../../helpers/knative-service.ts'

const ROOT = new URL('../../../', import.meta.url).pathname
const VALUES = {
  gatewayImage: 'europe-west1-docker.pkg.dev/p/r/gateway:0.1.0',
  appImage: 'europe-west1-docker.pkg.dev/p/r/flowise:3.1.4',
  serviceAccount: 'sa@p.iam.gserviceaccount.com',
  audience: '/projects/1/global/backendServices/2',
  databaseHost: '10.0.0.5',
  databaseCaBase64: 'Q0E=',
}
const flowiseYaml = () => serviceYaml(readConfig(`${ROOT}deploy.config.example.yaml`), VALUES)
const webappYaml = () => serviceYaml(readConfig(`${ROOT}deploy.config.webapp.example.yaml`), VALUES)

// biome-ignore lint/suspicious/noExplicitAny: the tests edit the YAML as a free-form document
type Doc = any
const containersOf = (doc: Doc) => doc.spec.template.spec.containers
const annotationsOf = (doc: Doc) => doc.spec.template.metadata.annotations

/** The problems Cloud Run would have with the rendered Flowise service after `edit`. */
function problems(edit: (doc: Doc) => void, yaml = flowiseYaml()): string[] {
  const doc = parse(yaml)
  edit(doc)
  try {
    checkService(doc)
  } catch (error) {
    if (error instanceof RunLocalError && error.code === 'RUN_LOCAL_ERR_SERVICE') return [...error.problems]
    throw error
  }
  return []
}

t.test(
  'the rendered Flowise service: start order, the ingress port, probes and limits as Cloud Run reads them',
  async (t) => {
    const service = readService(flowiseYaml())
    t.same(service.startOrder, [['flowise'], ['gateway']], 'Flowise first: the gateway depends on it')
    t.equal(service.ingress.name, 'gateway')
    t.equal(service.ingress.port, 8080)
    const flowise = service.containers[1]
    t.equal(flowise?.port, undefined, 'a sidecar has no port of its own: PORT is not injected there')
    t.match(flowise?.startupProbe, {
      kind: 'http',
      port: 3000,
      path: '/api/v1/ping',
      periodSeconds: 10,
      failureThreshold: 24,
    })
    t.match(service.ingress.livenessProbe, { kind: 'http', path: '/_gateway/healthz', timeoutSeconds: 3 })
    t.same([service.ingress.cpus, service.ingress.memoryBytes], [1, 512 * 2 ** 20])
    t.same([flowise?.cpus, flowise?.memoryBytes], [1, 2 * 2 ** 30])
    t.same(
      flowise?.env.filter((e) => 'value' in e && e.value.startsWith('sm://')).map((e) => e.name),
      FLOWISE_SECRET_VARIABLES,
      'sm:// references stay values: the launcher resolves them, not Cloud Run',
    )
    t.equal(service.timeoutSeconds, 3600)
    t.same(localProblems(service), [], 'nothing run-local cannot run')
    t.ok(Object.isFrozen(service.containers[0]), 'frozen')
  },
)

t.test('the rendered webapp service (a public image, 256Mi sidecar) is accepted', async (t) => {
  const service = readService(webappYaml())
  t.same(service.startOrder, [['whoami'], ['gateway']])
  t.equal(
    service.containers[1]?.memoryBytes,
    256 * 2 ** 20,
    'gen2 minimum applies to the instance total (768Mi)',
  )
})

t.test('two containers with ports: refused, naming both', async (t) => {
  const found = problems((doc) => {
    containersOf(doc)[1].ports = [{ containerPort: 3000 }]
  })
  t.same(found, [
    'spec.template.spec.containers: only one container may declare ports (the ingress container); containers[0] and containers[1] do',
  ])
})

t.test('no container with ports in a multi-container service: refused', async (t) => {
  const found = problems((doc) => {
    delete containersOf(doc)[0].ports
  })
  t.match(found, [/containers: one container must declare ports: it is the ingress container/])
})

t.test(
  'a dependency without a startup probe: refused, naming the annotation and the probe it lacks',
  async (t) => {
    const found = problems((doc) => {
      delete containersOf(doc)[1].startupProbe
    })
    t.same(found, [
      'spec.template.metadata.annotations["run.googleapis.com/container-dependencies"].gateway[0]: flowise is a dependency, so it needs a startupProbe (spec.template.spec.containers[1].startupProbe)',
    ])
  },
)

t.test('the ingress default TCP probe does not count as a dependency probe', async (t) => {
  const found = problems((doc) => {
    delete containersOf(doc)[0].startupProbe
    annotationsOf(doc)['run.googleapis.com/container-dependencies'] = JSON.stringify({ flowise: ['gateway'] })
  })
  t.match(found, [/flowise\[0\]: gateway is a dependency, so it needs a startupProbe/])
})

t.test('dependencies that name nothing, the container itself, or form a cycle: refused', async (t) => {
  const deps = (value: string) =>
    problems((doc) => {
      annotationsOf(doc)['run.googleapis.com/container-dependencies'] = value
    })
  t.match(deps(JSON.stringify({ gateway: ['flowize'] })), [/gateway\[0\]: names no container: flowize/])
  t.match(deps(JSON.stringify({ gatway: ['flowise'] })), [
    /\.gatway: names no container \(gateway, flowise\)/,
  ])
  t.match(deps(JSON.stringify({ flowise: ['flowise'] })), [/flowise\[0\]: flowise cannot depend on itself/])
  t.match(deps(JSON.stringify({ gateway: ['flowise'], flowise: ['gateway'] })), [
    /gateway is a dependency, so it needs a startupProbe|the dependencies form a cycle/,
  ])
  t.match(
    deps(JSON.stringify({ gateway: ['flowise'], flowise: ['gateway'] })).join('\n'),
    /the dependencies form a cycle \(gateway, flowise\)/,
  )
  t.match(deps('{gateway: flowise}'), [/is not JSON like \{"gateway":\["flowise"\]\}/])
  t.match(deps('{"gateway":"flowise"}'), [/must map container names to lists of container names/])
})

t.test('a startup probe window over 240 s: refused with the arithmetic', async (t) => {
  const found = problems((doc) => {
    containersOf(doc)[1].startupProbe.failureThreshold = 25
  })
  t.same(found, [
    'spec.template.spec.containers[1].startupProbe: failureThreshold × periodSeconds is 25 × 10 = 250 s, over the 240 s Cloud Run allows',
  ])
})

t.test('probe fields outside Cloud Run bounds, each named', async (t) => {
  const found = problems((doc) => {
    const [gateway, flowise] = containersOf(doc)
    flowise.startupProbe.periodSeconds = 241
    flowise.startupProbe.failureThreshold = 1
    gateway.startupProbe.timeoutSeconds = 5 // period 2
    gateway.livenessProbe = { tcpSocket: { port: 8080 } }
  })
  t.same(found, [
    'spec.template.spec.containers[0].startupProbe.timeoutSeconds: 5 s is longer than periodSeconds (2 s); Cloud Run refuses that',
    'spec.template.spec.containers[0].livenessProbe.tcpSocket: Cloud Run has HTTP and gRPC liveness probes, no TCP one',
    'spec.template.spec.containers[1].startupProbe.periodSeconds: must be an integer from 1 to 240 (got 241)',
  ])
  const handlers = problems((doc) => {
    const flowise = containersOf(doc)[1]
    flowise.startupProbe = { periodSeconds: 10 }
    containersOf(doc)[0].livenessProbe = { httpGet: { path: 'healthz' }, tcpSocket: { port: 1 } }
  })
  t.match(handlers, [
    /containers\[0\]\.livenessProbe: needs exactly one of httpGet, tcpSocket or grpc \(has httpGet, tcpSocket\)/,
    /containers\[1\]\.startupProbe: needs exactly one of httpGet, tcpSocket or grpc \(has none\)/,
  ])
  const portless = problems((doc) => {
    containersOf(doc)[1].startupProbe = { tcpSocket: {} }
    containersOf(doc)[0].livenessProbe = { httpGet: { path: 'healthz' } }
  })
  t.same(portless, [
    'spec.template.spec.containers[0].livenessProbe.httpGet.path: must start with / (got "healthz")',
    'spec.template.spec.containers[1].startupProbe.tcpSocket.port: is required: the container declares no port for the probe to default to',
  ])
})

t.test(
  "an ingress container without a startup probe gets Cloud Run's default TCP probe on its port",
  async (t) => {
    const doc = parse(flowiseYaml())
    delete containersOf(doc)[0].startupProbe
    const service = checkService(doc)
    t.match(service.ingress.startupProbe, {
      kind: 'tcp',
      port: 8080,
      periodSeconds: 240,
      failureThreshold: 1,
      implicit: true,
    })
  },
)

t.test('CPU and memory outside the combinations Cloud Run allows, each named', async (t) => {
  const limits = (cpu: unknown, memory: unknown, edit: (doc: Doc) => void = () => {}) =>
    problems((doc) => {
      containersOf(doc)[1].resources.limits = { cpu, memory }
      edit(doc)
    })
  const at = 'spec.template.spec.containers[1].resources.limits'
  t.same(limits('1', '8Gi'), [`${at}.memory: 8Gi with 1 vCPU: Cloud Run allows at most 4Gi`])
  t.same(limits('3', '2Gi'), [`${at}.cpu: 3 vCPU: above 1, Cloud Run allows only 2, 4, 6 or 8`])
  t.same(limits('2', '16Gi'), [`${at}.memory: 16Gi with 2 vCPU: Cloud Run allows at most 8Gi`])
  t.same(limits('6', '2Gi'), [`${at}.memory: 2Gi with 6 vCPU: Cloud Run allows 4Gi to 24Gi`])
  t.same(limits('8', '32Gi'), [], '8 vCPU with 32Gi: the largest instance')
  t.same(limits('4', '1Gi'), [`${at}.memory: 1Gi with 4 vCPU: Cloud Run allows 2Gi to 16Gi`])
  t.same(limits('16', '8Gi'), [`${at}.cpu: 16 vCPU is outside Cloud Run's 0.08 to 8`])
  t.same(limits('8', '64Gi'), [`${at}.memory: 64Gi is over Cloud Run's 32Gi`])
  t.same(limits('0.0005', '128Mi'), [
    `${at}.cpu: 0.0005 vCPU is outside Cloud Run's 0.08 to 8`,
    `${at}.cpu: below 1 vCPU needs the first generation execution environment (run.googleapis.com/execution-environment is gen2)`,
    `${at}.cpu: below 1 vCPU needs spec.template.spec.containerConcurrency 1 (it is unset, so 80)`,
  ])
  t.same(
    limits('0.5', '2Gi'),
    [
      `${at}.cpu: below 1 vCPU needs the first generation execution environment (run.googleapis.com/execution-environment is gen2)`,
      `${at}.cpu: below 1 vCPU needs spec.template.spec.containerConcurrency 1 (it is unset, so 80)`,
      `${at}.memory: 2Gi with 0.5 vCPU: Cloud Run allows at most 1Gi`,
    ],
    'the config allows cpu 0.5, but the deploy renders gen2, which Cloud Run refuses below 1 vCPU',
  )
  const gen1 = (doc: Doc) => {
    annotationsOf(doc)['run.googleapis.com/execution-environment'] = 'gen1'
    doc.spec.template.spec.containerConcurrency = 1
  }
  t.same(limits('500m', '1Gi', gen1), [], 'half a vCPU with 1Gi, gen1, concurrency 1: accepted')
  t.same(limits('0.25', '1Gi', gen1), [`${at}.memory: 1Gi with 0.25 vCPU: Cloud Run allows at most 512Mi`])
  t.same(limits('0.1234', '256Mi', gen1), [
    `${at}.cpu: 0.1234 vCPU: below 1, Cloud Run allows steps of 0.001`,
  ])
  t.same(
    limits('0.5', '512Mi', (doc) => {
      gen1(doc)
      annotationsOf(doc)['run.googleapis.com/cpu-throttling'] = 'false'
    }),
    [`${at}.cpu: below 1 vCPU needs request-based billing (run.googleapis.com/cpu-throttling is "false")`],
  )
  t.same(limits('one', '2 GB'), [
    `${at}.cpu: is not a CPU quantity like 1, 2 or 500m (got "one")`,
    `${at}.memory: is not a memory quantity like 512Mi or 2Gi (got "2 GB")`,
  ])
  const tiny = problems((doc) => {
    containersOf(doc)[0].resources.limits.memory = '128Mi'
    containersOf(doc)[1].resources.limits.memory = '128Mi'
  })
  t.same(tiny, [
    'spec.template.spec.containers[*].resources.limits.memory: 256Mi in all; the second generation execution environment needs at least 512Mi',
  ])
})

t.test(
  'reserved environment names: PORT on the ingress container, K_* anywhere; PORT on a sidecar is left alone',
  async (t) => {
    let at = [0, 0]
    const found = problems((doc) => {
      at = [containersOf(doc)[0].env.length, containersOf(doc)[1].env.length + 1]
      containersOf(doc)[0].env.push({ name: 'PORT', value: '9000' })
      containersOf(doc)[1].env.push({ name: 'PORT', value: '3001' }, { name: 'K_SERVICE', value: 'x' })
    })
    t.same(found, [
      `spec.template.spec.containers[0].env[${at[0]}].name: PORT is reserved: Cloud Run sets it (container runtime contract)`,
      `spec.template.spec.containers[1].env[${at[1]}].name: K_SERVICE is reserved: Cloud Run sets it (container runtime contract)`,
    ])
  },
)

t.test(
  'secretKeyRef values (resolved by Cloud Run itself), with aliases; malformed env entries named',
  async (t) => {
    const doc = parse(flowiseYaml())
    const n = containersOf(doc)[1].env.length
    const env1 = `spec.template.spec.containers[1].env`
    annotationsOf(doc)['run.googleapis.com/secrets'] = 'shared:projects/123/secrets/api-key'
    containersOf(doc)[1].env.push(
      { name: 'PINNED', valueFrom: { secretKeyRef: { name: 'flowise-db-password', key: '3' } } },
      { name: 'OTHER', valueFrom: { secretKeyRef: { name: 'shared', key: 'latest' } } },
    )
    const env = checkService(doc).containers[1]?.env ?? []
    t.same(env.slice(-2), [
      {
        name: 'PINNED',
        secret: { name: 'flowise-db-password', version: '3', field: `${env1}[${n}].valueFrom.secretKeyRef` },
      },
      {
        name: 'OTHER',
        secret: {
          name: 'projects/123/secrets/api-key',
          version: 'latest',
          field: `${env1}[${n + 1}].valueFrom.secretKeyRef`,
        },
      },
    ])
    const found = problems((doc) => {
      annotationsOf(doc)['run.googleapis.com/secrets'] = 'nocolon'
      containersOf(doc)[1].env.push(
        { name: 'A', value: 'x', valueFrom: { secretKeyRef: { name: 's', key: '1' } } },
        { name: 'B', valueFrom: { configMapKeyRef: { name: 'c', key: 'k' } } },
        { name: 'C', valueFrom: { secretKeyRef: { name: 's' } } },
        { name: 'D=E', value: 'x' },
        { name: 'F', value: 5432 },
      )
    })
    t.same(found, [
      'spec.template.metadata.annotations["run.googleapis.com/secrets"]: expected ALIAS:projects/P/secrets/S (got "nocolon")',
      `${env1}[${n}]: has both value and valueFrom`,
      `${env1}[${n + 1}].valueFrom: Cloud Run supports secretKeyRef only`,
      `${env1}[${n + 2}].valueFrom.secretKeyRef.key: is required`,
      `${env1}[${n + 3}].name: must be a non-empty name without "=" (got "D=E")`,
      `${env1}[${n + 4}].value: must be a string (quote it in the YAML) (got 5432)`,
    ])
  },
)

t.test('containers: count, names, images and ports as Cloud Run requires', async (t) => {
  t.match(
    problems((doc) => (doc.spec.template.spec.containers = [])),
    [/Cloud Run runs 1 to 10 containers \(got 0\)/],
  )
  t.match(
    problems((doc) => {
      const sidecar = containersOf(doc)[1]
      for (let i = 0; i < 10; i++)
        containersOf(doc).push({ ...sidecar, name: `extra${i}`, startupProbe: undefined })
    }),
    [/Cloud Run runs 1 to 10 containers \(got 12\)/],
  )
  const found = problems((doc) => {
    const [gateway, flowise] = containersOf(doc)
    delete flowise.name
    delete gateway.image
    gateway.ports.push({ containerPort: 8081 })
    gateway.ports[0].name = 'http'
  })
  t.match(found, [
    /containers\[0\]\.image: is required/,
    /containers\[0\]\.ports: Cloud Run takes a single port \(got 2\)/,
    /containers\[0\]\.ports\[0\]\.name: must be http1 or h2c \(got "http"\)/,
    /containers\[1\]\.name: is required/,
    /annotations\["run.googleapis.com\/container-dependencies"\]\.gateway\[0\]: names no container: flowise/,
  ])
  const names = problems((doc) => {
    containersOf(doc)[1].name = 'Flowise_1'
    containersOf(doc)[0].name = 'Flowise_1'
    annotationsOf(doc)['run.googleapis.com/container-dependencies'] = '{}'
  })
  t.match(names, [
    /containers\[0\]\.name: must be a DNS label/,
    /containers\[1\]\.name: must be a DNS label/,
    /containers\[1\]\.name: "Flowise_1" is used twice/,
  ])
  const overridden = readService(
    serviceWithContainers([
      {
        image: 'i',
        command: ['node'],
        args: ['server.js'],
        workingDir: '/srv',
        startupProbe: { httpGet: { path: '/', httpHeaders: [{ name: 'x-probe', value: '1' }] } },
      },
    ]),
  )
  t.match(overridden.ingress, {
    command: ['node'],
    args: ['server.js'],
    workingDir: '/srv',
    startupProbe: { kind: 'http', port: 8080, headers: [['x-probe', '1']] },
  })
  const single = readService(serviceWithContainers([{ image: 'i' }]))
  t.match(
    single.ingress,
    { name: 'app', port: 8080, startupProbe: { kind: 'tcp', implicit: true } },
    'one unnamed container: the ingress on 8080',
  )
})

t.test(
  'volumes and mounts: named volumes only, absolute paths; Cloud SQL sockets; what run-local cannot stand in for',
  async (t) => {
    const doc = parse(flowiseYaml())
    doc.spec.template.spec.volumes = [
      { name: 'cloudsql', cloudSqlInstance: { instances: ['p:europe-west1:db'] } },
      { name: 'scratch', emptyDir: { medium: 'Memory' } },
      { name: 'cert', secret: { secretName: 'tls', items: [{ key: 'latest', path: 'cert.pem' }] } },
      { name: 'files', csi: { driver: 'gcsfuse.run.googleapis.com' } },
    ]
    annotationsOf(doc)['run.googleapis.com/cloudsql-instances'] = 'p:europe-west1:db'
    containersOf(doc)[1].volumeMounts = [
      { name: 'cloudsql', mountPath: '/cloudsql' },
      { name: 'cert', mountPath: '/certs', readOnly: true },
    ]
    containersOf(doc)[1].startupProbe = { grpc: { port: 3000 } }
    const service = checkService(doc)
    t.same(service.cloudSqlInstances, ['p:europe-west1:db'])
    t.same(service.containers[1]?.mounts, [
      { volume: 'cloudsql', mountPath: '/cloudsql', readOnly: false },
      { volume: 'cert', mountPath: '/certs', readOnly: true },
    ])
    t.match(service.volumes[2], {
      kind: 'secret',
      secret: 'tls',
      items: [{ key: 'latest', path: 'cert.pem' }],
    })
    t.same(localProblems(service), [
      'spec.template.spec.containers[1].startupProbe.grpc: run-local has no gRPC health client',
      'spec.template.spec.volumes[3].csi: run-local has no local stand-in for it',
    ])
    const found = problems((doc) => {
      doc.spec.template.spec.volumes = [{ name: 'nothing' }]
      annotationsOf(doc)['run.googleapis.com/cloudsql-instances'] = 'db-only'
      containersOf(doc)[1].volumeMounts = [{ name: 'missing', mountPath: 'relative' }]
    })
    t.same(found, [
      'spec.template.spec.volumes[0]: needs one of emptyDir, secret, cloudSqlInstance, csi or nfs',
      'spec.template.spec.containers[1].volumeMounts[0].mountPath: must be an absolute path (got "relative")',
      'spec.template.spec.containers[1].volumeMounts[0].name: names no volume in spec.template.spec.volumes (got "missing")',
      'spec.template.metadata.annotations["run.googleapis.com/cloudsql-instances"]: expected PROJECT:REGION:INSTANCE connection names, comma-separated (got "db-only")',
    ])
  },
)

t.test('every problem at once, and the document itself', async (t) => {
  const found = problems((doc) => {
    doc.apiVersion = 'serving.knative.dev/v2'
    doc.kind = 'Job'
    delete doc.metadata.name
    doc.spec.template.spec.timeoutSeconds = 7200
    doc.spec.template.spec.containerConcurrency = 0
    containersOf(doc)[1].ports = [{ containerPort: 3000 }]
    containersOf(doc)[1].startupProbe.failureThreshold = 30
    containersOf(doc)[1].env = 'none'
    containersOf(doc)[0].image = 42
  })
  t.same(found, [
    'apiVersion: must be serving.knative.dev/v1',
    'kind: must be Service',
    'metadata.name: is required',
    'spec.template.spec.containerConcurrency: must be an integer from 1 to 1000 (got 0)',
    'spec.template.spec.timeoutSeconds: must be an integer from 1 to 3600 (got 7200)',
    'spec.template.spec.containers: only one container may declare ports (the ingress container); containers[0] and containers[1] do',
    'spec.template.spec.containers[0].image: must be a string (quote it in the YAML) (got 42)',
    'spec.template.spec.containers[1].env: must be a list (got "none")',
    'spec.template.spec.containers[1].startupProbe: failureThreshold × periodSeconds is 30 × 10 = 300 s, over the 240 s Cloud Run allows',
  ])
  t.throws(() => readService('a: [b'), { code: 'RUN_LOCAL_ERR_SERVICE', message: /not YAML/ })
  t.throws(() => readService('- a list'), {
    code: 'RUN_LOCAL_ERR_SERVICE',
    message: /apiVersion: is required/,
  })
  const doc = parse(flowiseYaml())
  doc.spec.template.metadata.annotations = ['x']
  t.throws(() => checkService(doc), { message: /spec\.template\.metadata\.annotations: must be a mapping/ })
})

t.test('quantities: Kubernetes notation', async (t) => {
  t.equal(parseCpu('500m'), 0.5)
  t.equal(parseCpu(2), 2)
  t.equal(parseCpu({}), undefined)
  t.equal(parseMemory('1G'), 1e9)
  t.equal(parseMemory('1.5Gi'), 1.5 * 2 ** 30)
  t.equal(parseMemory(1024), 1024)
  t.equal(parseMemory('1Zi'), undefined)
  t.equal(parseMemory(null), undefined)
  t.equal(formatMemory(1e9), '1000000000 bytes')
})

// More than one gateway process on one port, for the CPU-scaling measurement: node:cluster forks
// `workers` copies of the gateway's main module; the primary hands each new connection to a worker.
// Usage: node bench/cluster.ts WORKERS path/to/main.js   (environment passed through)
import cluster from 'node:cluster'

const [workersText, main] = process.argv.slice(2)
const workers = Number(workersText)
if (!Number.isInteger(workers) || workers < 1 || main === undefined) {
  process.stderr.write('usage: node bench/cluster.ts WORKERS MAIN\n')
  process.exit(2)
}
cluster.setupPrimary({ exec: main, args: [] })
for (let i = 0; i < workers; i++) cluster.fork()
let alive = workers
cluster.on('exit', () => {
  alive -= 1
  if (alive === 0) process.exit(0)
})
process.on('SIGTERM', () => {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
})

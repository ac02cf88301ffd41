// A free TCP port on loopback, taken from the OS and handed over (listen(0), close, return the port).
// Another process may take it in between; callers that cannot tolerate that race retry.
import { once } from 'node:events'
import { type AddressInfo, createServer } from 'node:net'

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer().listen(0, host)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

import { type LocalPki, makePki } from '../../dev/local-pki.ts'

export type TestPki = LocalPki

/** A throwaway CA and a server certificate for localhost, app.internal.example, 127.0.0.1 and ::1. */
export function makeTestPki(): TestPki {
  return makePki({
    caName: 'gateway test CA',
    altNames: ['DNS:localhost', 'DNS:app.internal.example', 'IP:127.0.0.1', 'IP:::1'],
  })
}

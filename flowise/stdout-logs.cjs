// Preloaded into Flowise by the image's CMD (node --require): every Flowise log goes to stdout, none to
// a file or to an API. Cloud Run hands a container's stdout to Cloud Logging, and its disk is memory.
//
// What Flowise 3.1.4 does on its own (read in the installed package):
//   - dist/utils/logger.js builds four winston loggers (server, error, requests, audit) and takes each
//     one's transports from the storage provider: StorageProviderFactory.getProvider()
//     .getLoggerTransports(type). The server logger also has a Console transport; the other three
//     have one only with DEBUG=true.
//   - flowise-components' LocalStorageProvider (STORAGE_TYPE unset or local) returns files in LOG_PATH
//     (default: the package's own folder, root-owned in the image): server.log rotated at 20 MB with no
//     limit on the number of files, server-requests.log.jsonl, audit-<date>.log.jsonl.
//   - GCSStorageProvider (STORAGE_TYPE=gcs, as the deploy sets for uploads) returns LoggingWinston
//     transports: the server, error, request and audit logs are sent to the Cloud Logging API (the
//     server log a second time beside stdout), which needs roles/logging.logWriter and network access.
// Here the provider's logger transports are replaced, whatever the storage type, by:
//   server: none (its Console transport is the one output); error: none (as the local provider does:
//   an uncaught exception ends the process, and Cloud Run starts a new one); audit: Console, so the
//   audit trail (logins, changes) reaches Cloud Logging; requests: a silent Console (the gateway's access
//   log records every request, without query strings; Flowise's request log has them in its URLs).
// Flowise still creates LOG_PATH at start (logger.js: mkdirSync when missing), so the image points it at
// a folder its user owns, where nothing is written. The image tests check that no file is written at all.
//
// The Flowise patched is the one installed beside this file (/opt/flowise/node_modules/flowise), and no
// setting points it elsewhere: a FLOWISE_INSTALL_DIR variable once did, so that set in a service's
// environment the patch went to another copy and Flowise silently went back to files and the Cloud
// Logging API.
'use strict'
const { dirname } = require('node:path')

const flowiseDir = dirname(require.resolve('flowise/package.json', { paths: [__dirname] }))
const fromFlowise = (id) => require(require.resolve(id, { paths: [flowiseDir] }))
// The package as Flowise loads it (its index: its storage modules import each other in a cycle that
// only the index's order resolves), so Flowise gets this very class from the module cache.
const { StorageProviderFactory } = fromFlowise('flowise-components')
const { transports } = fromFlowise('winston')

const STDOUT_ONLY = {
  server: () => [],
  error: () => [],
  audit: () => [new transports.Console()],
  requests: () => [new transports.Console({ silent: true })],
}

if (typeof StorageProviderFactory?.getProvider !== 'function') {
  throw new Error('stdout-logs: flowise-components has no StorageProviderFactory.getProvider to wrap')
}
const getProvider = StorageProviderFactory.getProvider
const wrapped = new WeakSet()
StorageProviderFactory.getProvider = function getProviderWithStdoutLogs(...args) {
  const provider = getProvider.apply(this, args)
  if (!wrapped.has(provider)) {
    provider.getLoggerTransports = (type) => {
      const make = STDOUT_ONLY[type]
      if (!make) throw new Error(`stdout-logs: unknown Flowise log type "${type}"`)
      return make()
    }
    wrapped.add(provider)
  }
  return provider
}

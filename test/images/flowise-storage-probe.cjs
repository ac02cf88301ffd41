// Runs inside the Flowise image (mounted read-only; FLOWISE_DIR=/opt/flowise), with exactly the
// environment a test gives it, and exercises Flowise's own code, not a copy of it:
//   storage  an Express app with Flowise's own upload middleware on the attachment and document-store
//            upsert routes, followed by the flowise-components calls Flowise makes next (utils/
//            createAttachment.js and services/documentstore: getFileFromUpload, addArrayFilesToStorage,
//            removeSpecificFileFromUpload); prints {"port": N} and serves until killed. The middleware is
//            the body of flowise/dist/utils getMulterStorage(): StorageProviderFactory.getProvider()
//            .getMulterStorage(). flowise/dist/utils itself is not loaded: it starts Flowise's logger,
//            which with STORAGE_TYPE=gcs ships logs to Cloud Logging and, without Google credentials,
//            ends the process on the transport's first unhandled rejection (seen with 3.1.4).
// CommonJS on purpose: Flowise's packages are CommonJS and are resolved from FLOWISE_DIR.
'use strict'
const { createRequire } = require('node:module')
const { join } = require('node:path')

const dir = process.env.FLOWISE_DIR
if (!dir) throw new Error('FLOWISE_DIR is required')
const load = createRequire(join(dir, 'package.json'))

function serveStorage() {
  const express = load('express')
  const components = load('flowise-components')
  const getMulterStorage = () => components.StorageProviderFactory.getProvider().getMulterStorage()
  // flowise/dist/utils/constants.js: DOCUMENT_STORE_BASE_FOLDER = 'docustore'
  const DOCUMENT_STORE_BASE_FOLDER = 'docustore'
  const orgId = 'org-1'
  const store = async (files, paths) => {
    const stored = []
    for (const file of files) {
      const buffer = await components.getFileFromUpload(file.path ?? file.key)
      const names = []
      const { path } = await components.addArrayFilesToStorage(
        file.mimetype,
        buffer,
        file.originalname,
        names,
        ...paths,
      )
      await components.removeSpecificFileFromUpload(file.path ?? file.key)
      stored.push({ upload: file.path ?? file.key, path })
    }
    return stored
  }
  const app = express()
  app.post('/api/v1/attachments/:chatflowId/:chatId', getMulterStorage().array('files'), (req, res, next) => {
    store(req.files, [orgId, req.params.chatflowId, req.params.chatId]).then((s) => res.json(s), next)
  })
  app.post('/api/v1/document-store/upsert/:id', getMulterStorage().array('files'), (req, res, next) => {
    store(req.files, [orgId, DOCUMENT_STORE_BASE_FOLDER, req.params.id]).then((s) => res.json(s), next)
  })
  // Multer hands a storage engine's error to next(): answer with it and what GCS said (a gaxios error
  // keeps the response body apart from its message).
  app.use((error, _req, res, _next) => {
    const data = error.response?.data
    res.status(500).json({
      message: String(error.message),
      response: typeof data === 'string' ? data : JSON.stringify(data ?? null),
    })
  })
  const server = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`)
  })
}

if (process.argv[2] === 'storage') serveStorage()
else throw new Error('usage: flowise-storage-probe.cjs storage')

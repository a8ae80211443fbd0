// Starts kinesalite on 127.0.0.1 only (its own command line listens on every
// interface), for tests/support/kinesalite.hpp:
//   node kinesalite.js NODE_MODULES PORT [LEVELDB_DIR]
// Streams are created, deleted and updated at once; 100 shards per account.
// With LEVELDB_DIR the data lives there (and survives a restart), else in memory.
'use strict'
const path = require('path')
const kinesalite = require(path.join(process.argv[2], 'kinesalite'))
const port = Number(process.argv[3])
const options = {createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100}
if (process.argv[4]) options.path = process.argv[4]
const server = kinesalite(options)
server.on('error', (error) => {
  console.error('kinesalite: ' + (error.code || error.message))
  process.exit(1)
})
server.listen(port, '127.0.0.1', () => {
  console.log('kinesalite listening on 127.0.0.1:' + port + ' pid ' + process.pid)
})
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

// Deaggregates Kinesis records with the official aws-kinesis-agg package
// (checksums verified), for the cross-tests of filebuilder's KPL aggregator.
//
//   node deaggregate.js [<dir>/node_modules] < records.txt
//
// Input: one Kinesis record's data per line, base64. Output: one line per
// user record, {"record":N,"sub":S,"partitionKey":"...","explicitHashKey":"...",
// "data":"<base64>"}, N counting input lines from 0; sub and the keys are
// absent for a record that is not an aggregate. A record the package fails
// on gives {"record":N,"error":"..."} and exit status 1.
'use strict';
const readline = require('readline');
const path = require('path');
// The package from the node_modules directory given as the first argument, if any.
const agg = require(process.argv[2] ? path.join(path.resolve(process.argv[2]), 'aws-kinesis-agg')
                                    : 'aws-kinesis-agg');

const out = [];
let failed = false;
let index = 0;
const input = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
input.on('line', (line) => {
  if (line.trim() === '') return;
  const record = index++;
  const kinesisRecord = {data: line.trim(), sequenceNumber: String(record), partitionKey: 'outer'};
  let reported = false;
  agg.deaggregateSync(kinesisRecord, true, (error, userRecords) => {
    if (reported) return;  // the package may call back again after an error
    reported = true;
    if (error) {
      out.push(JSON.stringify({record: record, error: String(error)}));
      failed = true;
      return;
    }
    for (const user of userRecords) {
      const entry = {record: record};
      if (user.subSequenceNumber !== undefined) {
        entry.sub = user.subSequenceNumber;
        entry.partitionKey = user.partitionKey;
        if (user.explicitPartitionKey !== undefined) {
          entry.explicitHashKey = user.explicitPartitionKey;
        }
      }
      entry.data = user.data;
      out.push(JSON.stringify(entry));
    }
  });
});
input.on('close', () => {
  process.stdout.write(out.map((line) => line + '\n').join(''));
  process.exitCode = failed ? 1 : 0;
});

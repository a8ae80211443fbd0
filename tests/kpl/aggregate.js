// Aggregates user records with the official aws-kinesis-agg package, for the
// cross-tests of filebuilder's KPL deaggregator.
//
//   node aggregate.js [<dir>/node_modules] < records.jsonl
//
// Input: one user record per line, {"partitionKey":"...","explicitHashKey":"..."
// (optional),"data":"<base64>"}. Output: each aggregated Kinesis record's data,
// base64, one per line, in the order the package emits them. Exit status 1 on
// any error the package reports.
'use strict';
const readline = require('readline');
const path = require('path');
// The package from the node_modules directory given as the first argument, if any.
const agg = require(process.argv[2] ? path.join(path.resolve(process.argv[2]), 'aws-kinesis-agg')
                                    : 'aws-kinesis-agg');

const records = [];
const input = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
input.on('line', (line) => {
  if (line.trim() === '') return;
  const parsed = JSON.parse(line);
  const record = {partitionKey: parsed.partitionKey, data: Buffer.from(parsed.data, 'base64')};
  if (parsed.explicitHashKey) record.explicitHashKey = parsed.explicitHashKey;
  records.push(record);
});
input.on('close', () => {
  const lines = [];
  let failed = false;
  agg.aggregate(
      records,
      (encoded, done) => {
        lines.push(Buffer.from(encoded.data).toString('base64'));
        done();
      },
      () => {
        process.stdout.write(lines.map((line) => line + '\n').join(''));
        process.exitCode = failed ? 1 : 0;
      },
      (error) => {
        process.stderr.write('aws-kinesis-agg: ' + error + '\n');
        failed = true;
      });
});

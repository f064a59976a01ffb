#!/usr/bin/env node
// Official-SDK KV driver: the KV half of npm @0gfoundation/0g-ts-sdk (kv/: StreamData, StreamDataBuilder,
// Batcher, KvClient, KvIterator), unmodified, against deaios. Used by tests/kv (byte-compatibility of the
// stream data encoding, and round trips in both directions through a running stack).
//
//   node scripts/zg_sdk_kv.js encode SPEC_JSON
//       SPEC = {version, reads: [{stream, key}], writes: [{stream, key, data}],
//               controls: [{type, stream, key?, account?}]}   (keys, data as 0x-hex; version a decimal string)
//       -> {"data": "0x…" (StreamData.encode()), "tags": "0x…" (StreamDataBuilder.buildTags() of the writes)}
//       (SPEC may be a list of specs: then a list of results)
//   node scripts/zg_sdk_kv.js write INDEXER_URL CHAIN_RPC PRIVATE_KEY SPEC_JSON
//       SPEC = {version?, writes: [{stream, key, data}]}: one Batcher transaction through the indexer's nodes
//       -> {"txSeq", "root", "txHash"}
//   node scripts/zg_sdk_kv.js read KV_URL SPEC_JSON
//       SPEC = {stream, keys: ["0x…"], version?, txSeqs?: [n], account?}
//       -> {"values": {key: {data (hex), size, version}|null}, "iterated": [[key, data]…] (KvIterator forward),
//           "reversed": […] (KvIterator backward), "first", "last", "results": {seq: result}, "holding",
//           "isAdmin", "isWriterOfStream", "hasWritePermission": {key: bool}}
//
// A SPEC_JSON of "-" is read from stdin. Prints one JSON line on stdout (SDK chatter goes to stderr); exits non-zero on any error.
'use strict';
const { Batcher, KvClient, StreamData, StreamDataBuilder, Indexer, getFlowContract } = require('@0gfoundation/0g-ts-sdk');
const { ethers } = require('ethers');

console.log = (...args) => console.error(...args); // keep stdout for our one JSON line
console.info = console.log;

const bytes = (hex) => ethers.getBytes(hex);
const hex = (b64) => (b64 ? '0x' + Buffer.from(b64, 'base64').toString('hex') : '0x');

function encode(spec) {
  const data = new StreamData(spec.version ?? '18446744073709551615');
  data.Reads = (spec.reads || []).map((r) => ({ StreamId: r.stream, Key: bytes(r.key) }));
  data.Writes = (spec.writes || []).map((w) => ({ StreamId: w.stream, Key: bytes(w.key), Data: bytes(w.data) }));
  data.Controls = (spec.controls || []).map((c) => {
    const control = { Type: c.type, StreamId: c.stream };
    if (c.key !== undefined && c.key !== null) control.Key = bytes(c.key);
    if (c.account !== undefined && c.account !== null) control.Account = c.account;
    return control;
  });
  const builder = new StreamDataBuilder(0);
  for (const w of spec.writes || []) builder.set(w.stream, bytes(w.key), bytes(w.data));
  return { data: ethers.hexlify(data.encode()), tags: ethers.hexlify(builder.buildTags()) };
}

async function write(indexerUrl, rpc, key, spec) {
  const provider = new ethers.JsonRpcProvider(rpc);
  const signer = new ethers.Wallet(key, provider);
  const indexer = new Indexer(indexerUrl);
  const [nodes, err] = await indexer.selectNodes(1);
  if (err !== null) throw new Error(`selectNodes: ${err.message || err}`);
  const status = await nodes[0].getStatus();
  const flow = getFlowContract(status.networkIdentity.flowAddress, signer);
  const batcher = new Batcher(spec.version ?? '18446744073709551615', nodes, flow, rpc);
  for (const w of spec.writes) batcher.streamDataBuilder.set(w.stream, bytes(w.key), bytes(w.data));
  const [tx, execErr] = await batcher.exec();
  if (execErr !== null) throw new Error(`Batcher.exec: ${execErr.message || execErr}`);
  return { txSeq: Number(tx.txSeq), root: tx.rootHash, txHash: tx.txHash };
}

async function read(kvUrl, spec) {
  const kv = new KvClient(kvUrl);
  const out = { values: {}, iterated: [], reversed: [], results: {}, hasWritePermission: {} };
  for (const key of spec.keys || []) {
    const value = await kv.getValue(spec.stream, bytes(key), spec.version);
    out.values[key] = value === null ? null : { data: hex(value.data), size: value.size, version: value.version };
    if (spec.account) {
      out.hasWritePermission[key] = await kv.hasWritePermission(spec.account, spec.stream, bytes(key));
    }
  }
  const forward = kv.newIterator(spec.stream, spec.version);
  let err = await forward.seekToFirst();
  while (err === null && forward.valid()) {
    const pair = forward.getCurrentPair();
    out.iterated.push([ethers.hexlify(pair.key), hex(pair.data)]);
    err = await forward.next();
  }
  if (err !== null) throw err;
  const backward = kv.newIterator(spec.stream, spec.version);
  err = await backward.seekToLast();
  while (err === null && backward.valid()) {
    out.reversed.push(ethers.hexlify(backward.getCurrentPair().key));
    err = await backward.prev();
  }
  if (err !== null) throw err;
  const first = await kv.getFirst(spec.stream, 0, 1024, spec.version);
  const last = await kv.getLast(spec.stream, 0, 1024, spec.version);
  out.first = first ? hex(first.key) : null;
  out.last = last ? hex(last.key) : null;
  for (const seq of spec.txSeqs || []) out.results[seq] = await kv.getTransactionResult(seq);
  out.holding = await kv.getHoldingStreamIds();
  if (spec.account) {
    out.isAdmin = await kv.isAdmin(spec.account, spec.stream);
    out.isWriterOfStream = await kv.isWriterOfStream(spec.account, spec.stream);
  }
  return out;
}

// A SPEC_JSON argument "-" is read from stdin (large specs exceed the command line's limit).
const parseSpec = (arg) => JSON.parse(arg === '-' ? require('fs').readFileSync(0, 'utf8') : arg);

async function main() {
  const [command, ...args] = process.argv.slice(2);
  let out;
  if (command === 'encode' && args.length === 1) {
    const spec = parseSpec(args[0]);
    out = Array.isArray(spec) ? spec.map(encode) : encode(spec);
  }
  else if (command === 'write' && args.length === 4) out = await write(args[0], args[1], args[2], parseSpec(args[3]));
  else if (command === 'read' && args.length === 2) out = await read(args[0], parseSpec(args[1]));
  else throw new Error('usage: zg_sdk_kv.js encode SPEC | write INDEXER RPC KEY SPEC | read KV_URL SPEC');
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
}

main().then(() => process.exit(0)).catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});

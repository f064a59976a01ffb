#!/usr/bin/env node
// Official-SDK compatibility driver: uploads a file to a deaios stack with the official 0G TypeScript SDK
// (npm @0gfoundation/0g-ts-sdk), unmodified, through our indexer, then downloads it back.
//
//   node zg_sdk_transfer.js INDEXER_URL CHAIN_RPC PRIVATE_KEY FILE OUT [--proof] [--node URL]
//
// Prints one JSON line on stdout: {"root", "txSeq", "txHash", "uploadMs", "downloadMs"} (the SDK's own
// chatter goes to stderr). With --node URL it also reads the file info and the first segment (with its
// proof) straight from that storage node with the SDK's StorageNode client and adds them as "node".
// Exits non-zero on any error.
'use strict';
const { Indexer, StorageNode, ZgFile } = require('@0gfoundation/0g-ts-sdk');
const { ethers } = require('ethers');

console.log = (...args) => console.error(...args); // keep stdout for our one JSON line
console.info = console.log;

async function main() {
  const argv = process.argv.slice(2);
  const flags = new Set(argv.filter((a) => a === '--proof'));
  const nodeAt = argv.indexOf('--node');
  const nodeUrl = nodeAt >= 0 ? argv[nodeAt + 1] : null;
  const positional = argv.filter((a, i) => !a.startsWith('--') && (nodeAt < 0 || i !== nodeAt + 1));
  if (positional.length !== 5) {
    throw new Error('usage: zg_sdk_transfer.js INDEXER_URL CHAIN_RPC PRIVATE_KEY FILE OUT [--proof] [--node URL]');
  }
  const [indexerUrl, rpc, key, filePath, outPath] = positional;

  const provider = new ethers.JsonRpcProvider(rpc);
  const signer = new ethers.Wallet(key, provider);
  const indexer = new Indexer(indexerUrl);

  const file = await ZgFile.fromFilePath(filePath);
  let result;
  const t0 = Date.now();
  try {
    const [tx, err] = await indexer.upload(file, rpc, signer);
    if (err !== null) throw new Error(`upload failed: ${err.message || err}`);
    result = tx;
  } finally {
    await file.close();
  }
  const t1 = Date.now();
  const downloadErr = await indexer.download(result.rootHash, outPath, flags.has('--proof'));
  if (downloadErr !== null) throw new Error(`download failed: ${downloadErr.message || downloadErr}`);
  const t2 = Date.now();

  const out = {
    root: result.rootHash, txSeq: Number(result.txSeq), txHash: result.txHash,
    uploadMs: t1 - t0, downloadMs: t2 - t1,
  };
  if (nodeUrl) {
    const node = new StorageNode(nodeUrl);
    const info = await node.getFileInfo(result.rootHash, true);
    const byTxSeq = await node.getFileInfoByTxSeq(Number(result.txSeq));
    const segment = await node.downloadSegmentWithProof(result.rootHash, 0);
    const status = await node.getStatus();
    const shard = await node.getShardConfig();
    out.node = { info, byTxSeq, segment, status, shard };
  }
  // exit only once the (possibly large) line is flushed: stdout to a pipe is asynchronous in node
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
}

main().then(() => process.exit(0)).catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});

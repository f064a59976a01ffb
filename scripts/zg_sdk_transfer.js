#!/usr/bin/env node
// Official-SDK compatibility driver: uploads a file to a deaios stack with the official 0G TypeScript SDK
// (npm @0gfoundation/0g-ts-sdk), unmodified, through our indexer, then downloads it back. Used by the
// SDK compatibility tests and by `deaios bench storage` (deaios.stack.process.sdk_transfer runs it).
//
//   node scripts/zg_sdk_transfer.js INDEXER_URL CHAIN_RPC PRIVATE_KEY FILE OUT [--proof] [--node URL]
//        [--upload-only | --download-only ROOT]
//
// Prints one JSON line on stdout: {"root", "txSeq", "txHash", "uploadMs", "downloadMs"}: the upload
// (merkle tree, submission, segments, waiting until the nodes report the file finalized) and the
// download are timed separately (the SDK's own chatter goes to stderr). --proof makes the SDK verify
// every segment's merkle proof on download. --upload-only skips the download (OUT is ignored);
// --download-only ROOT skips the upload and downloads ROOT (FILE is ignored): the output then holds
// only the part that ran. With --node URL (not with --download-only) it also reads the file info and
// the first segment (with its proof) straight from that storage node with the SDK's StorageNode
// client and adds them as "node".
// Exits non-zero on any error.
'use strict';
const { Indexer, StorageNode, ZgFile } = require('@0gfoundation/0g-ts-sdk');
const { ethers } = require('ethers');

console.log = (...args) => console.error(...args); // keep stdout for our one JSON line
console.info = console.log;

async function main() {
  const argv = process.argv.slice(2);
  const valueOf = (name) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : null);
  const nodeUrl = valueOf('--node');
  const downloadRoot = valueOf('--download-only');
  const uploadOnly = argv.includes('--upload-only');
  const values = new Set(['--node', '--download-only'].map((f) => argv.indexOf(f)).filter((i) => i >= 0)
    .map((i) => i + 1));
  const positional = argv.filter((a, i) => !a.startsWith('--') && !values.has(i));
  if (positional.length !== 5 || (uploadOnly && downloadRoot) || (nodeUrl && downloadRoot)) {
    throw new Error('usage: zg_sdk_transfer.js INDEXER_URL CHAIN_RPC PRIVATE_KEY FILE OUT [--proof] [--node URL] '
      + '[--upload-only | --download-only ROOT]');
  }
  const [indexerUrl, rpc, key, filePath, outPath] = positional;

  const provider = new ethers.JsonRpcProvider(rpc);
  const signer = new ethers.Wallet(key, provider);
  const indexer = new Indexer(indexerUrl);

  const out = {};
  let result = null;
  if (downloadRoot === null) {
    const file = await ZgFile.fromFilePath(filePath);
    const t0 = Date.now();
    try {
      const [tx, err] = await indexer.upload(file, rpc, signer);
      if (err !== null) throw new Error(`upload failed: ${err.message || err}`);
      result = tx;
    } finally {
      await file.close();
    }
    Object.assign(out, { root: result.rootHash, txSeq: Number(result.txSeq), txHash: result.txHash,
      uploadMs: Date.now() - t0 });
  } else {
    out.root = downloadRoot;
  }
  if (!uploadOnly) {
    const t1 = Date.now();
    const downloadErr = await indexer.download(out.root, outPath, argv.includes('--proof'));
    if (downloadErr !== null) throw new Error(`download failed: ${downloadErr.message || downloadErr}`);
    out.downloadMs = Date.now() - t1;
  }
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

#!/usr/bin/env node
// Test oracle: the official 0G TypeScript SDK (npm @0gfoundation/0g-ts-sdk) computes, for each file
// path given on the command line, its file root, its submission and its segment proofs, and prints one
// JSON line per file. tests/storage/test_merkle_sdk.py compares deaios.storage.merkle against it.
'use strict';
const { ZgFile } = require('@0gfoundation/0g-ts-sdk');

async function describe(path) {
  const file = await ZgFile.fromFilePath(path);
  try {
    const [tree, treeErr] = await file.merkleTree();
    if (treeErr !== null) throw treeErr;
    const [submission, subErr] = await file.createSubmission('0x');
    if (subErr !== null) throw subErr;
    const root = tree === null ? null : tree.rootHash();
    const proofs = [];
    const numSegments = tree === null ? 0 : tree.leaves.length;
    for (let i = 0; i < numSegments; i++) {
      const proof = tree.proofAt(i);
      proofs.push({ lemma: proof.lemma, path: proof.path });
    }
    return {
      path,
      size: file.size(),
      root,
      numSegmentsPadded: file.size() === 0 ? 0 : file.numSegmentsPadded(),
      submission: {
        length: Number(submission.data.length),
        nodes: submission.data.nodes.map((n) => ({ root: n.root, height: Number(n.height) })),
      },
      segmentProofs: proofs,
    };
  } finally {
    await file.close();
  }
}

(async () => {
  for (const path of process.argv.slice(2)) {
    process.stdout.write(JSON.stringify(await describe(path)) + '\n');
  }
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});

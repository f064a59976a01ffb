#!/usr/bin/env node
/*
 * solc_shim.js: the official solc-js (npm `solc`, wasm) behind the command-line surface of a native
 * solc that py-solc-x and ape-solidity use: `--version` and `--standard-json` with optional
 * `--base-path`, `--include-path` and `--allow-paths`. Imports resolve against the base path, the
 * include paths and `node_modules` of the base path and of this repository (so `@openzeppelin/...`
 * resolves without remappings). Installed by scripts/install_solc.py.
 */
"use strict";
const fs = require("fs");
const path = require("path");

const REPO = path.resolve(__dirname, "..");
const solc = require(path.join(REPO, "node_modules", "solc"));

function versionLine() {
  // solc-js reports e.g. "0.8.30+commit.73712a01.Emscripten.clang"; native solc prints ".Linux.g++".
  const v = solc.version().replace(/\.Emscripten\.clang$/, ".Linux.g++");
  return `Version: ${v}`;
}

function parseArgs(argv) {
  const opts = { standardJson: false, version: false, basePath: null, includePaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--version") opts.version = true;
    else if (a === "--standard-json") opts.standardJson = true;
    else if (a === "--base-path") opts.basePath = argv[++i];
    else if (a === "--include-path") opts.includePaths.push(argv[++i]);
    else if (a === "--allow-paths") i++; // solc-js reads through our callback only; nothing to allow
    else if (a.startsWith("--base-path=")) opts.basePath = a.slice("--base-path=".length);
    else if (a.startsWith("--include-path=")) opts.includePaths.push(a.slice("--include-path=".length));
    else if (a.startsWith("--allow-paths=")) continue;
    else if (a === "-") continue;
    else {
      process.stderr.write(`solc_shim: unsupported argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

function makeImportCallback(opts) {
  const roots = [];
  const base = opts.basePath ? path.resolve(opts.basePath) : process.cwd();
  roots.push(base, ...opts.includePaths.map((p) => path.resolve(p)));
  roots.push(path.join(base, "node_modules"), path.join(REPO, "node_modules"), REPO);
  return (importPath) => {
    const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.join(r, importPath));
    for (const c of candidates) {
      try {
        if (fs.statSync(c).isFile()) return { contents: fs.readFileSync(c, "utf8") };
      } catch (_) {
        /* try the next root */
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\n${versionLine()}\n`);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write("solc_shim: only --version and --standard-json are supported\n");
    process.exit(2);
  }
  const input = fs.readFileSync(0, "utf8");
  process.stdout.write(solc.compile(input, { import: makeImportCallback(opts) }));
}

main();

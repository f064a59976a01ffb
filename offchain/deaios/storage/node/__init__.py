"""The storage node: 0G's zgs_* JSON-RPC, log sync from the Flow contract, erasure-coded shares on disk."""

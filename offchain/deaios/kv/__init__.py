"""deaios KV: 0G's key-value layer over the storage log (docs/kv.md).

Stream transactions are ordinary log files (codec), replayed in tx-seq order into an lmdb index (replay,
store) by the KV node process (node), which serves 0G's kv_* JSON-RPC (rpc). `deaios.kv.Client` writes
and reads from scripts; `deaios kv …` from the shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deaios.kv.client import Client, stream_id

__all__ = ["Client", "stream_id"]


def __getattr__(name: str) -> Any:  # the client imports web3: only when asked for
    if name in __all__:
        from deaios.kv import client

        return getattr(client, name)
    raise AttributeError(name)

"""The local chain's clock: block timestamps follow the wall clock even when nothing happens.

Anvil mines a block per transaction (automine) and otherwise none, so on an idle stack the latest block's
timestamp stands still: a refund lock, a governance timelock or a supervision epoch never ends until some
unrelated transaction is sent (estimates and calls run against the latest block). The launcher therefore
mines an empty block (`evm_mine`) whenever the latest block is `block_time` seconds old.

Anvil's own interval mining (`--block-time`, even with `--mixed-mining`) would do the same, but it makes
`anvil_getAutomine` answer false, and ape then treats every transaction as unmined (its deployments fail
with "did not create a contract"); keeping automine on and ticking from outside avoids that. An idle stack
adds one block every `block_time` seconds (≈ 1.2 kB of chain state each).

With `block_time` 0 (`deaios up --block-time 0`) nothing is mined while the chain is idle; clients and services
cope by looking at the next block rather than the latest one (deaios.chain_time), so time-gated steps still happen
on time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from deaios.procs import rpc_call


class ChainClock:
    """Call `tick()` often (the launcher's supervision loop does); it mines when the chain has been idle."""

    def __init__(self, rpc: str, block_time: float, log: Callable[[str], None] | None = None) -> None:
        self.rpc = rpc
        self.block_time = block_time
        self.log = log
        self._next_check = 0.0
        self._failing = False

    def tick(self) -> bool:
        """Mine an empty block if the latest one is `block_time` s old; whether a block was mined."""
        now = time.time()
        if self.block_time <= 0 or now < self._next_check:
            return False
        try:
            latest = int(rpc_call(self.rpc, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
            if now - latest < self.block_time:
                self._next_check = latest + self.block_time
                mined = False
            else:
                rpc_call(self.rpc, "evm_mine", [])
                self._next_check = now + self.block_time
                mined = True
        except Exception as exc:  # the chain is down or busy: try again later, say so once
            if not self._failing and self.log:
                self.log(f"cannot advance the chain's clock: {exc}")
            self._failing = True
            self._next_check = now + self.block_time
            return False
        self._failing = False
        return mined

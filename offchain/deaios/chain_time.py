"""Chain time for clients and services, on an interval-mining and an on-demand chain alike.

A chain's clock is its latest block's timestamp, and it only moves when a block is mined. `deaios up` mines an
empty block when the chain has been idle for `--block-time` s (deaios.stack.clock), so its timestamps follow
the wall clock; with `--block-time 0`, and on chains that mine only when there are transactions, the latest
block may be minutes old. A transaction sent now, though, is mined in a new block stamped with the current time.
So everything that asks "is this time-gated action due?" or shows time-dependent state must look at the
*next* block, not the latest one:

* `connect(rpc)` — the Web3 every area's client uses: its calls and gas estimates run against the pending block
  (`NEXT_BLOCK`, which Anvil and geth stamp with the current time), so `currentEpoch()`, a governor's
  `state()`, a refund's lock or a timelock are what a transaction sent now would see (reads of state are the
  same as at the latest block: automine leaves nothing pending);
* `chain_now(w3)` — the later of the next block's timestamp and the wall clock: the time to compare
  deadlines with, or to derive a deadline from (a request's `deadline = chain_now + ttl`);
* `clock_lag(w3)` / `lag_note(lag)` — how far the latest block is behind the wall clock, and a line that says so
  (views print it on stderr, so a reader knows the chain's own clock is behind what they are shown).

Block-number clocks (DA epochs count `epochBlocks` blocks, as 0G's DASigners do) are not time: on an on-demand
chain they advance with the transactions, which is what the contract defines.
"""

from __future__ import annotations

import time

from web3 import Web3

#: The block identifier of "now": the block a transaction sent now is mined in.
NEXT_BLOCK = "pending"
#: A latest block older than this is worth a note (an interval-mining stack mines every 2 s).
LAG_NOTE_SECONDS = 10


def connect(rpc: str, timeout: float = 60) -> Web3:
    """A Web3 on `rpc` whose calls and gas estimates see the next block (`NEXT_BLOCK`)."""
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": timeout}))
    w3.eth.default_block = NEXT_BLOCK
    return w3


def latest_timestamp(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def chain_now(w3: Web3) -> int:
    """The time a transaction sent now is mined at (at least): the later of the next block's timestamp (Anvil
    stamps it with its own clock, which `evm_increaseTime` may have moved on; a node without a pending block:
    the latest block's) and the wall clock."""
    try:
        stamp = int(w3.eth.get_block(NEXT_BLOCK)["timestamp"])
    except Exception:  # noqa: BLE001  (a node that serves no pending block)
        stamp = latest_timestamp(w3)
    return max(stamp, int(time.time()))


def clock_lag(w3: Web3) -> int:
    """Seconds the latest block's timestamp is behind the wall clock (0 when it is not)."""
    return max(0, int(time.time()) - latest_timestamp(w3))


def lag_note(lag: int) -> str | None:
    """A one-line note for views when the chain's clock is behind, else None."""
    if lag < LAG_NOTE_SECONDS:
        return None
    return (f"note: the chain's latest block is {lag} s old (no blocks are mined while it is idle); "
            "times and states shown are what a transaction sent now would see")

"""DA under faults, on a real stack (`deaios up --nodes 1 --da-nodes 6`): blobs dispersed through the stack's
disperser (`deaios da put`, as a user runs it) and retrieved with `deaios da get` (through the disperser and
directly from the DA nodes), while DA nodes are SIGKILLed and one answers garbage cells.

* One third of the DA nodes (2 of 6) SIGKILLed before a dispersal, and 2 others SIGKILLed while a dispersal is
  in flight (as soon as the disperser has paid the blob fee, while it collects signatures): each blob is still
  verified on chain (the 4 signers hold exactly 2/3 of the quorum's rows).
* One third of the DA nodes down during retrieval: the blob comes back byte-exact from the other four; the
  killed nodes restart from their data directory and serve what they stored.
* A DA node answering garbage cells (restarted with `--fault garbage`): its cells fail their KZG proofs (checked
  here), the retriever skips them and returns the exact bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_case_helpers import WallTime, cli_lines, wait_for

from deaios.da import bls, launch
from deaios.da.blobref import BlobRef
from deaios.da.chain import DAChain
from deaios.da.encoding import BlobHeader, Column, columns_of_rows, verify_columns
from deaios.procs import rpc_call
from deaios.stack.config import DEV_KEY_ROLES, dev_address
from deaios.stack.process import RunningStack, running_stack, stack_env
from web3 import Web3

DA_NODES = 6
DISPERSER = dev_address(DEV_KEY_ROLES["DA disperser"])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("chaos-da")
    with running_stack(base / "data", nodes=1, home=base / "home", args=("--da-nodes", str(DA_NODES))) as running:
        yield running


@pytest.fixture(scope="module")
def chain(run: RunningStack) -> DAChain:
    return DAChain(run.stack.rpc, run.stack.contracts["da_entrance"], run.stack.private_key)


def put(run: RunningStack, path: Path) -> BlobRef:
    """`deaios da put FILE --stack …` (through the stack's disperser): the blob reference it printed."""
    return BlobRef.parse(cli_lines(run, "da", "put", str(path))[-1])


def get(run: RunningStack, ref: BlobRef, out: Path, *extra: str) -> bytes:
    cli_lines(run, "da", "get", str(ref), "-o", str(out), *extra)
    return out.read_bytes()


def verified(chain: DAChain, ref: BlobRef) -> bool:
    return chain.verified_commitment(ref.data_root, ref.epoch, ref.quorum_id) == bls.hash_to_g1(ref.data_root)


def kill(run: RunningStack, *indexes: int) -> None:
    for i in indexes:
        launch.kill(run.stack, i)  # SIGKILL, as a crash


def relaunch(run: RunningStack, *indexes: int, extra: tuple[str, ...] = ()) -> None:
    for i in indexes:
        entry = launch.da_nodes_of(run.stack)[i]
        cmd = list(entry["cmd"])
        entry["cmd"] = cmd + list(extra)
        try:
            launch.relaunch(run.stack, i)
        finally:
            entry["cmd"] = cmd  # stack.json keeps the honest command line
    for i in indexes:
        url = launch.da_nodes_of(run.stack)[i]["url"]
        wait_for(lambda url=url: launch.status(url, timeout=5).get("ready"), f"DA node {i} ready again")


def blob(tmp: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    (tmp / name).write_bytes(data)
    return tmp / name, data


def test_a_third_of_the_da_nodes_killed_during_dispersal_and_retrieval(run: RunningStack, chain: DAChain,
                                                                      tmp_path: Path) -> None:
    timer = WallTime("DA: 2 of 6 nodes SIGKILLed during dispersal and during retrieval")
    path_a, data_a = blob(tmp_path, "a.bin", 300_000)
    ref_a = put(run, path_a)  # every node up
    assert verified(chain, ref_a)

    # down before the dispersal: nodes 0 and 1
    kill(run, 0, 1)
    path_b, data_b = blob(tmp_path, "b.bin", 250_001)
    ref_b = put(run, path_b)
    assert verified(chain, ref_b)
    # retrieval with the same third down: blob A from the four others, byte-exact (direct and via the disperser)
    assert get(run, ref_a, tmp_path / "a.direct", "--direct") == data_a
    assert get(run, ref_a, tmp_path / "a.grpc") == data_a

    # nodes 0 and 1 restart from their data directories; nodes 2 and 3 are SIGKILLed while blob C is dispersed
    relaunch(run, 0, 1)
    path_c, data_c = blob(tmp_path, "c.bin", 200_003)
    env = stack_env(run.home)
    w3 = Web3(Web3.HTTPProvider(run.stack.rpc))
    paid = w3.eth.get_transaction_count(DISPERSER, "pending")
    proc = subprocess.Popen([sys.executable, "-m", "deaios.cli", "da", "put", str(path_c), "--stack",
                             str(run.stack.path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while w3.eth.get_transaction_count(DISPERSER, "pending") == paid:  # until the disperser paid the blob fee
        assert proc.poll() is None and time.monotonic() < deadline, "the disperser never paid for blob C"
        time.sleep(0.01)
    kill(run, 2, 3)  # while it collects the quorum's signatures
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    ref_c = BlobRef.parse(out.strip().splitlines()[-1])
    assert verified(chain, ref_c)

    # retrieval with nodes 2 and 3 down: A and C (C was signed by nodes 0, 1, 4, 5 at least) byte-exact
    assert get(run, ref_a, tmp_path / "a2.direct", "--direct") == data_a
    assert get(run, ref_c, tmp_path / "c.direct", "--direct") == data_c
    # nodes 2 and 3 restart; B (held by nodes 2..5 only) comes back from what they kept on disk
    relaunch(run, 2, 3)
    assert get(run, ref_b, tmp_path / "b.direct", "--direct") == data_b
    assert get(run, ref_c, tmp_path / "c.grpc") == data_c
    timer.done()


def test_a_da_node_serving_garbage_cells_is_skipped(run: RunningStack, chain: DAChain, tmp_path: Path) -> None:
    timer = WallTime("DA: one node serving garbage cells (and another SIGKILLed)")
    path, data = blob(tmp_path, "g.bin", 300_000)
    ref = put(run, path)
    assert verified(chain, ref)
    bad, down = DA_NODES - 1, DA_NODES - 2
    kill(run, bad)
    relaunch(run, bad, extra=("--fault", "garbage"))
    kill(run, down)  # the four honest nodes left hold 2/3 of the rows: every garbage column must be replaced
    try:
        # the fault is real: the node's columns do not match their KZG proofs
        entry = launch.da_nodes_of(run.stack)[bad]
        quorum = chain.quorum(ref.epoch, ref.quorum_id)
        cols = columns_of_rows(quorum.rows_of(entry["address"]), quorum.rows)
        reply = rpc_call(entry["url"], "da_retrieve", ["0x" + ref.data_root.hex(), ref.epoch, ref.quorum_id, cols],
                         timeout=60, max_reply=64 << 20)
        header = BlobHeader.from_json(reply["header"])
        served = [Column.from_bytes(int(c), bytes.fromhex(raw[2:]), len(header.commitments))
                  for c, raw in reply["columns"].items()]
        assert served and not any(verify_columns(header, [c]) for c in served)
        for attempt in range(3):  # whichever nodes answer first, the bytes are exact
            assert get(run, ref, tmp_path / f"g{attempt}.direct", "--direct") == data
        assert get(run, ref, tmp_path / "g.grpc") == data
    finally:
        kill(run, bad)
        relaunch(run, bad, down)
    timer.done()

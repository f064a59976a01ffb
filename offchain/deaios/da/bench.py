"""`deaios bench da`: DA encoding throughput vs raw ckzg, and end-to-end dispersal on a local DA network.

1. ckzg alone per core: ``blob_to_kzg_commitment`` + ``compute_cells_and_kzg_proofs`` per 126,976-byte ckzg
   blob (the default trusted setup, no precomputation), one process per core all running at once — the
   reference;
2. deaios's encoder (`deaios.da.encoding.Encoder`, a process pool over all cores, warm) on a SIZE blob:
   throughput, per core, and the ratio to (1) per core (target >= 0.8);
3. end to end on a stack of its own (`deaios up --nodes 1`, 4 DA nodes): `DAClient.put` of SIZE fresh random
   bytes — encode + `submitOriginalData` (fee) + signatures of the quorum (each checked with the pairing
   precompile) + `submitVerifiedCommitRoots` verified on chain — after one warm-up dispersal (the DA nodes
   load their KZG setup on their first blob); best and median of ROUNDS (target: 1 MiB in <= 3 s).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import ckzg
import click

from deaios.bench import emit
from deaios.da.encoding import BLOB_PAYLOAD, Encoder, blobs_needed, pack, trusted_setup


_barrier: Any = None


def _init_raw(barrier: Any) -> None:
    global _barrier
    _barrier = barrier
    trusted_setup()


def _raw_ckzg(blobs: int) -> float:
    """In a worker, once every worker is ready: best seconds per ckzg blob (commitment + cells + proofs)."""
    ts = trusted_setup()
    data = pack(os.urandom(blobs * BLOB_PAYLOAD))
    _barrier.wait()
    best = float("inf")
    for blob in data:
        started = time.perf_counter()
        ckzg.blob_to_kzg_commitment(blob, ts)
        ckzg.compute_cells_and_kzg_proofs(blob, ts)
        best = min(best, time.perf_counter() - started)
    return best


def raw_ckzg_seconds_per_blob(workers: int, blobs: int) -> float:
    """Seconds per ckzg blob of plain ckzg (default setup) running on `workers` cores at once, one process
    each: the reference "ckzg alone per core" under the same core count (and machine load) as the encoder."""
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_raw,
                             initargs=(ctx.Barrier(workers),)) as pool:
        return statistics.median(pool.map(_raw_ckzg, [blobs] * workers))


@click.command("da")
@click.option("--size-mib", default=1.0, show_default=True, type=click.FloatRange(0.001, 3.875),
              help="Blob size (MiB) for the encoder and the dispersal.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1), help="Dispersals measured.")
@click.option("--workers", default=None, type=click.IntRange(1), help="Encoding processes (default: all cores).")
@click.option("--no-network", is_flag=True, help="Only the encoding figures (no stack).")
def da(size_mib: float, rounds: int, workers: int | None, no_network: bool) -> None:
    """DA encoding throughput (vs ckzg alone per core) and end-to-end dispersal time on a local DA network."""
    size = int(size_mib * (1 << 20))
    blobs = blobs_needed(size)
    params = {"size_bytes": size, "ckzg_blobs": blobs}
    with Encoder(workers) as encoder:
        encoder.warm_up()
        data = os.urandom(size)
        per_blob = raw_ckzg_seconds_per_blob(encoder.workers, 3)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            encoder.encode(data)
            times.append(time.perf_counter() - started)
        best = min(times)
        rate, raw_rate = size / best, BLOB_PAYLOAD / per_blob
        emit("da.encode.ckzg_per_core", raw_rate / 1e6, "MB/s", ms_per_ckzg_blob=round(per_blob * 1e3, 1),
             cores_busy=encoder.workers)
        emit("da.encode.deaios", rate / 1e6, "MB/s", **params, workers=encoder.workers, seconds=round(best, 3))
        emit("da.encode.per_core_ratio_vs_ckzg", rate / encoder.workers / raw_rate, "x", **params,
             workers=encoder.workers, target=0.8)
        if not no_network:
            _dispersal(encoder, size, rounds, params)


def _dispersal(encoder: Encoder, size: int, rounds: int, params: dict) -> None:
    from deaios.da.chain import DAChain
    from deaios.da.client import DAClient
    from deaios.stack.process import running_stack

    with tempfile.TemporaryDirectory(prefix="deaios-bench-da-") as tmp:
        base = Path(tmp)
        with running_stack(base / "data", nodes=1, home=base / "home") as run:
            stack = run.stack
            nodes = len(stack.extra.get("da_nodes") or [])
            client = DAClient(DAChain(stack.rpc, stack.contracts["da_entrance"], stack.private_key), encoder)
            asyncio.run(client.put(os.urandom(size)))  # warm-up: the nodes load their KZG setup
            results = [asyncio.run(client.put(os.urandom(size))) for _ in range(rounds)]
    totals = [r.seconds["total"] for r in results]
    best = min(results, key=lambda r: r.seconds["total"])
    emit("da.disperse.verified_on_chain", best.seconds["total"], "s", **params, da_nodes=nodes,
         median=round(statistics.median(totals), 3), phases={k: round(v, 3) for k, v in best.seconds.items()},
         signers=best.signers, target=3.0)
    emit("da.disperse.throughput", size / best.seconds["total"] / 1e6, "MB/s", **params, da_nodes=nodes)

"""`deaios bench da`: DA encoding throughput vs raw ckzg, and end-to-end dispersal on a local DA network.

1. ckzg alone per core: ``blob_to_kzg_commitment`` + ``compute_cells_and_kzg_proofs`` per 126,976-byte ckzg
   blob (the default trusted setup, no precomputation), one process per core all running at once — the
   reference;
2. deaios's encoder (`deaios.da.encoding.Encoder`, a process pool over all cores, warm) on a SIZE blob:
   throughput, per core, and the ratio to (1) per core (target >= 0.8);
3. end to end on a stack of its own (`deaios up --nodes 1`, 4 DA nodes, the disperser, the OP alt-DA server and
   the Nitro DA provider), the stack idle between requests:
   a. **the user's path**: `deaios da put` of SIZE fresh random bytes run as a subprocess (interpreter start,
      imports, the disperser's gRPC API, until the blob is verified on chain), ROUNDS times: p50 (target <= 3 s,
      stretch 1.5 s on 2 cores);
   b. `POST /put` of the OP alt-DA server and `daprovider_store` of the Nitro provider, SIZE bytes, ROUNDS times
      each, timed by an HTTP client as op-batcher / Nitro's batch poster wait for them: p50;
   c. throughput of the disperser for 8 MiB and 31 MiB blobs (`--large`), one each, MB/s end to end;
   d. in-process `DAClient.put` (this process's own warm encoder): best and median of ROUNDS, with phases.
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
from deaios.da.encoding import BLOB_PAYLOAD, MAX_DATA, Encoder, blobs_needed, pack, trusted_setup


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
@click.option("--size-mib", default=1.0, show_default=True, type=click.FloatRange(0.001, 31.0),
              help="Blob size (MiB) for the encoder and the dispersals.")
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1), help="Dispersals measured per path.")
@click.option("--workers", default=None, type=click.IntRange(1), help="Encoding processes (default: all cores).")
@click.option("--large/--no-large", default=True, show_default=True,
              help="Also the 8 MiB and 31 MiB throughput figures (about a minute more).")
@click.option("--no-network", is_flag=True, help="Only the encoding figures (no stack).")
def da(size_mib: float, rounds: int, workers: int | None, large: bool, no_network: bool) -> None:
    """DA encoding throughput (vs ckzg alone per core) and end-to-end dispersal time on a local DA network."""
    size = min(int(size_mib * (1 << 20)), MAX_DATA)
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
            _dispersal(encoder, size, rounds, params, large)


def _p50(values: list[float]) -> float:
    return statistics.median(values)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _dispersal(encoder: Encoder, size: int, rounds: int, params: dict, large: bool) -> None:
    import urllib.request

    from deaios.da.chain import DAChain
    from deaios.da.client import DAClient
    from deaios.da.disperser_client import DisperserClient
    from deaios.da.nitro_client import NitroDAClient
    from deaios.stack.process import deaios, running_stack

    with tempfile.TemporaryDirectory(prefix="deaios-bench-da-") as tmp:
        base = Path(tmp)
        with running_stack(base / "data", nodes=1, home=base / "home") as run:
            stack = run.stack
            nodes = len(stack.extra.get("da_nodes") or [])
            time.sleep(5)  # let the stack settle (idle) before the user's path

            def cli_put() -> None:
                blob = base / "blob.bin"
                blob.write_bytes(os.urandom(size))
                out = deaios("da", "put", str(blob), "--stack", str(run.dir), home=run.home)
                if out.returncode != 0:
                    raise click.ClickException(f"deaios da put failed: {out.stderr}")

            user = [_timed(cli_put) for _ in range(rounds)]
            emit("da.user_path.cli_put_p50", _p50(user), "s", **params, rounds=rounds, da_nodes=nodes,
                 all=[round(t, 3) for t in user], target=3.0, stretch=1.5)

            def http_put() -> None:
                req = urllib.request.Request(f"{stack.extra['da_altda']['url']}/put", data=os.urandom(size),
                                             method="POST", headers={"Content-Type": "application/octet-stream"})
                with urllib.request.urlopen(req, timeout=300) as resp:
                    resp.read()

            op = [_timed(http_put) for _ in range(rounds)]
            emit("da.user_path.op_altda_put_p50", _p50(op), "s", **params, rounds=rounds,
                 all=[round(t, 3) for t in op], target=3.0)
            nitro = NitroDAClient(stack.extra["da_nitro"]["url"])
            arb = [_timed(lambda: nitro.store(os.urandom(size), 3600)) for _ in range(rounds)]
            emit("da.user_path.nitro_store_p50", _p50(arb), "s", **params, rounds=rounds,
                 all=[round(t, 3) for t in arb], target=3.0)

            if large:
                async def through_disperser(n: int) -> float:
                    async with DisperserClient(stack.extra["da_disperser"]["grpc"]) as client:
                        data = os.urandom(n)
                        started = time.perf_counter()
                        await client.disperse(data)
                        return time.perf_counter() - started

                for mib in (8, 31):
                    n = min(mib << 20, 31 * 1024 * 1024 - 4)
                    seconds = asyncio.run(through_disperser(n))
                    emit(f"da.disperse.throughput_{mib}mib", n / seconds / 1e6, "MB/s", size_bytes=n,
                         seconds=round(seconds, 2), ckzg_blobs=blobs_needed(n), path="disperser gRPC")

            client = DAClient(DAChain(stack.rpc, stack.contracts["da_entrance"], stack.private_key), encoder)
            asyncio.run(client.put(os.urandom(size)))  # warm-up of this process's chain connection
            results = [asyncio.run(client.put(os.urandom(size))) for _ in range(rounds)]
    totals = [r.seconds["total"] for r in results]
    best = min(results, key=lambda r: r.seconds["total"])
    emit("da.disperse.verified_on_chain", best.seconds["total"], "s", **params, da_nodes=nodes,
         median=round(statistics.median(totals), 3), phases={k: round(v, 3) for k, v in best.seconds.items()},
         signers=best.signers, target=3.0, path="in-process DAClient")
    emit("da.disperse.throughput", size / best.seconds["total"] / 1e6, "MB/s", **params, da_nodes=nodes)

"""Storage benchmarks.

`deaios bench merkle`: file root + submission throughput of deaios.storage.merkle.

`deaios bench storage`: the storage network end to end on this machine, in one run (issue 4, "Speed"):
erasure encode/decode against raw zfec on the same segments, then a fresh local stack (`deaios up` as a
subprocess in a temp dir, stopped with `deaios down`) on which the deaios client and the official TS SDK
(scripts/zg_sdk_transfer.js) each upload and download a random file of the same size (two different
files: the second upload of one root would find it already stored). Throughput is file bytes / 1e6 /
seconds; every download is checked byte-exact.
"""

from __future__ import annotations

import asyncio
import cProfile
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

from deaios.bench import emit
from deaios.storage.merkle import FileMerkleTree


@click.command("merkle")
@click.option("--size-mib", default=64, show_default=True, help="File size in MiB.")
@click.option("--repeat", default=3, show_default=True, help="Runs; the best one is reported.")
def merkle(size_mib: int, repeat: int) -> None:
    """Root + submission of a random file read from disk, on one core and on every core."""
    size = size_mib << 20
    with tempfile.NamedTemporaryFile(prefix="deaios-bench-") as f:
        f.write(os.urandom(size))
        f.flush()
        for workers, label in ((1, "one_core"), (os.cpu_count() or 1, "all_cores")):
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                FileMerkleTree.from_path(f.name, workers=workers).submission()
                best = min(best, time.perf_counter() - start)
            emit(f"merkle.root_and_submission.{label}", size / best / 1e6, "MB/s", size_bytes=size,
                 threads=workers, seconds=round(best, 4), target_one_core=200)


# -- deaios bench storage ------------------------------------------------------------------------------------
MISSING_DATA_SHARES = 3  # decode without shares 0..2, so zfec really reconstructs


def _say(message: str) -> None:
    click.echo(f"{time.strftime('%H:%M:%S')} bench storage: {message}", err=True)


def _random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            step = min(left, 16 << 20)
            f.write(os.urandom(step))
            left -= step


def _digest(path: Path) -> bytes:
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.digest()


def _best(repeat: int, runs: list[tuple[str, Callable[[], None]]]) -> dict[str, float]:
    """Best time of each run over `repeat` interleaved rounds (so drift hits all of them alike)."""
    best = {name: float("inf") for name, _ in runs}
    for _ in range(repeat):
        for name, run in runs:
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def coding_figures(data: bytes, nodes: int, repeat: int) -> None:
    """ErasureCode.encode/decode vs raw zfec.Encoder/Decoder on the same segments of `data`."""
    import zfec

    from deaios.storage.erasure import ErasureCode
    from deaios.storage.merkle import SEGMENT_SIZE

    code = ErasureCode.for_nodes(nodes)
    k, n = code.k, code.n
    segments = [data[i:i + SEGMENT_SIZE].ljust(SEGMENT_SIZE, b"\0")
                for i in range(0, len(data), SEGMENT_SIZE)]
    size = code.share_size(SEGMENT_SIZE)
    encoder, decoder = zfec.Encoder(k, n), zfec.Decoder(k, n)
    blocks = [[s[i * size:(i + 1) * size].ljust(size, b"\0") for i in range(k)] for s in segments]
    encoded = [code.encode(s) for s in segments]
    missing = min(MISSING_DATA_SHARES, n - k)
    numbers = list(range(missing, missing + k))  # data shares missing..k-1, then parity shares
    ours_in = [{s: shares[s] for s in numbers} for shares in encoded]
    raw_in = [[shares[s] for s in numbers] for shares in encoded]
    assert all(code.decode(ours_in[i], SEGMENT_SIZE) == segments[i] for i in (0, len(segments) - 1))
    del encoded

    def ours_encode() -> None:
        for s in segments:
            code.encode(s)

    def raw_encode() -> None:  # the blocks are cut and padded beforehand: zfec's work only
        for b in blocks:
            encoder.encode(b)

    def ours_decode() -> None:
        for shares in ours_in:
            code.decode(shares, SEGMENT_SIZE)

    def raw_decode() -> None:  # zfec's work only: the k blocks, not joined into the segment
        for shares in raw_in:
            decoder.decode(shares, numbers)

    best = _best(repeat, [("encode.deaios", ours_encode), ("encode.zfec", raw_encode),
                          ("decode.deaios", ours_decode), ("decode.zfec", raw_decode)])
    nbytes = len(segments) * SEGMENT_SIZE
    params = {"size_bytes": nbytes, "segments": len(segments), "nodes": nodes, "k": k, "n": n}
    for op in ("encode", "decode"):
        extra = {"shares_used": numbers} if op == "decode" else {}
        for impl in ("deaios", "zfec"):
            seconds = best[f"{op}.{impl}"]
            emit(f"erasure.{op}.{impl}", nbytes / seconds / 1e6, "MB/s", **params, **extra,
                 seconds=round(seconds, 4))
        emit(f"erasure.{op}.ratio_vs_zfec", best[f"{op}.zfec"] / best[f"{op}.deaios"], "x", **params,
             target=0.8)


async def _deaios_transfer(stack, src: Path, out: Path) -> tuple[float, float, float, str]:
    """(upload s, until every node verified and finalized it s, download s, root)."""
    import aiohttp

    from deaios.jsonrpc import RpcCallError, rpc_call
    from deaios.storage.client import StorageClient

    async def finalized_everywhere(root: str) -> bool:
        async def one(url: str) -> bool:
            try:
                info = await rpc_call(session, url, "zgs_getFileInfo", root, False, timeout=10)
            except RpcCallError:
                return False
            return isinstance(info, dict) and bool(info.get("finalized"))
        return all(await asyncio.gather(*(one(url) for url in stack.node_urls)))

    async with aiohttp.ClientSession() as session:
        client = StorageClient(session, stack.node_urls, stack.rpc, stack.flow, stack.private_key)
        start = time.perf_counter()
        result = await client.upload(src, on_stage=lambda message: _say(f"deaios upload: {message}"))
        upload = time.perf_counter() - start
        _say(f"deaios upload done in {upload:.2f} s; waiting until every node verified its shares")
        while not await finalized_everywhere(result.root):
            await asyncio.sleep(0.05)
        verified = time.perf_counter() - start
        _say(f"verified and finalized on every node {verified:.2f} s after the upload started; downloading")
        start = time.perf_counter()
        await client.download(result.root, out)
        download = time.perf_counter() - start
    return upload, verified, download, result.root


def _profiled(profile_dir: Path | None, name: str, func: Callable[[], object]) -> object:
    if profile_dir is None:
        return func()
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(func)
    finally:
        profiler.dump_stats(profile_dir / f"{name}.prof")


@click.command("storage")
@click.option("--size-mib", default=256, show_default=True, type=click.IntRange(1), help="File size in MiB.")
@click.option("--nodes", default=10, show_default=True, type=click.IntRange(1, 256), help="Storage nodes.")
@click.option("--skip-sdk", is_flag=True, help="Leave out the official TS SDK transfer.")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1),
              help="Encode/decode rounds; the best one is reported.")
@click.option("--profile", "profile_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write cProfile stats of the deaios client (client.prof) into this directory.")
def storage(size_mib: int, nodes: int, skip_sdk: bool, repeat: int, profile_dir: Path | None) -> None:
    """Upload + download of a random file through a fresh local stack (deaios client and official SDK)
    and erasure encode/decode vs raw zfec. Progress on stderr, one JSON line per figure on stdout."""
    from deaios.stack.process import running_stack, sdk_transfer
    from deaios.storage.erasure import ErasureCode

    size = size_mib << 20
    code = ErasureCode.for_nodes(nodes)
    params = {"size_bytes": size, "nodes": nodes, "k": code.k, "n": code.n}
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deaios-bench-storage-") as tmp:
        base = Path(tmp)
        ours_src, sdk_src = base / "deaios.bin", base / "sdk.bin"
        _say(f"writing two random files of {size_mib} MiB in {base}")
        _random_file(ours_src, size)
        if not skip_sdk:
            _random_file(sdk_src, size)

        _say(f"erasure coding: {size_mib} MiB of segments, k={code.k} n={code.n}, best of {repeat}")
        coding_figures(ours_src.read_bytes(), nodes, repeat)

        _say(f"starting a {nodes}-node stack (deaios up)")
        with running_stack(base / "data", nodes=nodes, home=base / "home") as run:
            stack = run.stack
            _say(f"stack up (indexer {stack.indexer}); deaios client upload of {size_mib} MiB")
            out = base / "deaios.out"
            upload, verified, download, root = _profiled(  # type: ignore[misc]
                profile_dir, "client", lambda: asyncio.run(_deaios_transfer(stack, ours_src, out)))
            if _digest(out) != _digest(ours_src):
                raise click.ClickException(f"deaios download of {root} is not byte-exact")
            out.unlink()
            _say(f"deaios: upload {upload:.2f} s, download {download:.2f} s (byte-exact)")
            emit("storage.upload.deaios", size / upload / 1e6, "MB/s", **params, seconds=round(upload, 3),
                 target=100)
            emit("storage.upload.deaios_verified", size / verified / 1e6, "MB/s", **params,
                 seconds=round(verified, 3))
            emit("storage.download.deaios", size / download / 1e6, "MB/s", **params,
                 seconds=round(download, 3), target=100)
            if skip_sdk:
                return
            _say("official TS SDK: upload through the indexer, then download")
            out = base / "sdk.out"
            result = sdk_transfer(stack, sdk_src, out, timeout=3600)
            if _digest(out) != _digest(sdk_src):
                raise click.ClickException(f"SDK download of {result['root']} is not byte-exact")
            sdk_upload, sdk_download = result["uploadMs"] / 1e3, result["downloadMs"] / 1e3
            _say(f"SDK: upload {sdk_upload:.2f} s, download {sdk_download:.2f} s (byte-exact)")
            emit("storage.upload.sdk", size / sdk_upload / 1e6, "MB/s", **params,
                 seconds=round(sdk_upload, 3))
            emit("storage.download.sdk", size / sdk_download / 1e6, "MB/s", **params,
                 seconds=round(sdk_download, 3))
            emit("storage.upload.ratio_vs_sdk", sdk_upload / upload, "x", **params, target=5)
            emit("storage.download.ratio_vs_sdk", sdk_download / download, "x", **params, target=5)
            # the deaios client always verifies every segment's merkle proof; the SDK only with proof=true
            _say("official TS SDK: download again, verifying every segment's proof (--proof)")
            out.unlink()
            result = sdk_transfer(stack, sdk_src, out, "--download-only", result["root"], "--proof",
                                  timeout=3600)
            if _digest(out) != _digest(sdk_src):
                raise click.ClickException(f"SDK download of {result['root']} is not byte-exact")
            sdk_proof = result["downloadMs"] / 1e3
            _say(f"SDK: download with proofs {sdk_proof:.2f} s (byte-exact)")
            emit("storage.download.sdk_proof", size / sdk_proof / 1e6, "MB/s", **params,
                 seconds=round(sdk_proof, 3))
            emit("storage.download.ratio_vs_sdk_proof", sdk_proof / download, "x", **params)
            _say("stopping the stack (deaios down)")
        _say("done")

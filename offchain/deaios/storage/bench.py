"""`deaios bench merkle`: file root + submission throughput of deaios.storage.merkle."""

from __future__ import annotations

import os
import tempfile
import time

import click

from deaios.bench import emit
from deaios.storage.merkle import FileMerkleTree


@click.command("merkle")
@click.option("--size-mib", default=64, show_default=True, help="File size in MiB.")
@click.option("--repeat", default=3, show_default=True, help="Runs; the best one is reported.")
def merkle(size_mib: int, repeat: int) -> None:
    """Root + submission of a random file read from disk (one core)."""
    size = size_mib << 20
    with tempfile.NamedTemporaryFile(prefix="deaios-bench-") as f:
        f.write(os.urandom(size))
        f.flush()
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            FileMerkleTree.from_path(f.name).submission()
            best = min(best, time.perf_counter() - start)
    emit("merkle.root_and_submission", size / best / 1e6, "MB/s", size_bytes=size, seconds=round(best, 4))

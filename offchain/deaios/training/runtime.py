"""JAX process settings for training commands: the persistent compilation cache and XLA's thread count.

Compiling the training step is most of a small worker's start-up (seconds on 2 cores). Every training
command points JAX's persistent compilation cache at `$DEAIOS_JAX_CACHE`, default
`$DEAIOS_HOME/jax-cache` (`~/.deaios/jax-cache`), so the workers of one machine, a restarted worker and
`deaios train sample` compile each program once. `single_thread()` (several workers on one machine) must
run before JAX starts its CPU backend.
"""

from __future__ import annotations

import os
from pathlib import Path

from deaios.stack.config import deaios_home


def cache_dir() -> Path:
    return Path(os.environ.get("DEAIOS_JAX_CACHE") or deaios_home() / "jax-cache")


def single_thread() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


def configure() -> None:
    import jax

    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: compile every time
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

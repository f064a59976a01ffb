"""The training area's session: XLA on one thread and one JAX compilation cache, both shared through the
environment with the worker processes the end-to-end test starts. A program is then compiled once per
session (the test process compiles the workers' programs while the stack starts), and the in-process
reference trajectory runs with the workers' exact XLA settings, so it matches them bit for bit."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from deaios.training import runtime

runtime.single_thread()
if not os.environ.get("DEAIOS_JAX_CACHE"):
    _cache = tempfile.mkdtemp(prefix="deaios-jax-cache-")
    os.environ["DEAIOS_JAX_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, True)
runtime.configure()

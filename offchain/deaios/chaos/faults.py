"""Fault injection against a running local stack, with real processes and real files: what the fault matrix
(tests/chaos/, `make chaos`) does to a stack, and the waits that follow a fault.

* processes: `kill` (SIGKILL, as a crash; waits until the process is gone), `kill_storage_nodes` /
  `restart_storage_nodes` (the recorded command line again, data kept; waits until it answers);
  other services restart through their area's `relaunch` (`deaios.kv.launch.relaunch`, …, and
  `deaios.stack.launcher.relaunch_anvil`), which records the new pid in stack.json so `deaios down` stops it;
* disks: `damage_share_pack` (bit flips or a truncation of one node's share pack of a file) and `SmallDisk`
  (a small tmpfs mounted over one storage node's data directory: it fills up; `grow` gives space back);
* waits: `missing_shares` (what each reachable node still lacks), `wait_repaired`.

Everything here works on the stack.json of a stack started by `deaios up` (see `deaios.stack.process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp

from deaios.procs import pid_alive, rpc_call
from deaios.stack.config import Stack
from deaios.storage.launch import relaunch_node
from deaios.storage.share_transport import ShareClient

KILL_TIMEOUT = 10.0


class FaultError(RuntimeError):
    """A fault could not be injected, or the stack did not recover within its deadline."""


def current(stack: Stack | Path) -> Stack:
    """The stack as stack.json says now (relaunches change pids)."""
    path = stack if isinstance(stack, Path) else stack.path
    if path is None:
        raise FaultError("the stack has no stack.json path")
    return Stack.load(path)


def kill(pid: int | None, sig: int = signal.SIGKILL, timeout: float = KILL_TIMEOUT) -> None:
    """Send `sig` (default SIGKILL: a crash, no clean-up) to `pid` and wait until it is gone (or a zombie)."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), sig)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise FaultError(f"pid {pid} still alive {timeout:.0f} s after signal {sig}")
        time.sleep(0.02)


def wait_answering(url: str, method: str, timeout: float, what: str) -> None:
    """Poll a JSON-RPC method until it answers without an error object."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            rpc_call(url, method, timeout=2.0)
            return
        except Exception as exc:  # noqa: BLE001  (not up yet)
            if time.monotonic() > deadline:
                raise FaultError(f"{what} did not answer {method} within {timeout:.0f} s: {exc}") from None
            time.sleep(0.1)


# -- storage nodes ---------------------------------------------------------------------------------------------
def kill_storage_nodes(stack: Stack | Path, indices: list[int]) -> None:
    """SIGKILL storage nodes `indices` at once, then wait until each is gone."""
    nodes = current(stack).storage_nodes
    for i in indices:
        with contextlib.suppress(ProcessLookupError):
            if pid_alive(nodes[i]["pid"]):
                os.kill(int(nodes[i]["pid"]), signal.SIGKILL)
    for i in indices:
        kill(nodes[i]["pid"])


def restart_storage_nodes(stack: Stack | Path, indices: list[int], timeout: float = 90.0) -> None:
    """Start storage nodes `indices` again (recorded command line, data kept) and wait until they answer."""
    for i in indices:
        relaunch_node(current(stack), i)
    nodes = current(stack).storage_nodes
    for i in indices:
        wait_answering(nodes[i]["url"], "zgs_getStatus", timeout, f"storage node {i}")


async def missing_shares(stack: Stack | Path, roots: list[str]) -> dict[int, int]:
    """Shares each reachable storage node lacks, summed over `roots` (an unknown root counts 10^6; unreachable
    nodes are left out)."""
    urls = current(stack).node_urls
    out: dict[int, int] = {}
    async with aiohttp.ClientSession() as session:
        client = ShareClient(session, urls, timeout=10)

        async def one(node: int) -> None:
            try:
                lists = [await client.missing(node, bytes.fromhex(r.removeprefix("0x"))) for r in roots]
            except Exception:  # noqa: BLE001  (down, or still starting)
                return
            out[node] = sum(len(m) if m is not None else 1_000_000 for m in lists)

        await asyncio.gather(*(one(node) for node in range(len(urls))))
    return dict(sorted(out.items()))


def wait_repaired(stack: Stack | Path, roots: list[str], nodes: list[int] | None = None,
                  timeout: float = 120.0) -> float:
    """Wait until `nodes` (default: all) hold every share of `roots`; the seconds it took."""
    started = time.monotonic()
    wanted = nodes if nodes is not None else list(range(len(current(stack).storage_nodes)))
    while True:
        missing = asyncio.run(missing_shares(stack, roots))
        if all(missing.get(n) == 0 for n in wanted):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise FaultError(f"storage nodes {wanted} not repaired within {timeout:.0f} s: missing {missing}")
        time.sleep(0.3)


def share_packs(stack: Stack | Path, node: int, root: str) -> list[Path]:
    """The share pack files node `node` keeps of file `root` (one per compaction generation on disk)."""
    folder = Path(current(stack).storage_nodes[node]["dir"]) / "data" / root.removeprefix("0x")
    return sorted(folder.glob("shares*.pack"))


def damage_share_pack(stack: Stack | Path, node: int, root: str, how: str) -> int:
    """Damage node `node`'s share pack of `root` on disk, behind the node's back: "flip" XORs one byte in every
    KiB, "truncate" cuts the pack to a third. Returns the bytes damaged (or cut)."""
    packs = share_packs(stack, node, root)
    if not packs:
        raise FaultError(f"node {node} has no share pack of {root}")
    damaged = 0
    for pack in packs:
        raw = bytearray(pack.read_bytes())
        if how == "flip":
            for offset in range(0, len(raw), 1024):
                raw[offset] ^= 0x5A
                damaged += 1
            pack.write_bytes(bytes(raw))
        elif how == "truncate":
            keep = len(raw) // 3
            damaged += len(raw) - keep
            with open(pack, "r+b") as fh:
                fh.truncate(keep)
        else:
            raise ValueError(f"unknown damage {how!r}")
    return damaged


# -- a small disk -------------------------------------------------------------------------------------------------
class SmallDisk:
    """A tmpfs of `free` bytes more than a storage node uses now, mounted over the node's data directory (needs
    root). Entering stops the node, copies its data onto the tmpfs and starts it again; `grow(bytes)` makes the
    tmpfs larger while the node runs (space returns); leaving stops the node, copies its data back to the real
    disk, unmounts and starts the node again. Its data is the node's own at every step: nothing is re-created."""

    def __init__(self, stack: Stack | Path, node: int, free: int) -> None:
        self.stack = stack
        self.node = node
        self.free = free
        self.dir = Path(current(stack).storage_nodes[node]["dir"])
        self.aside = self.dir.with_name(self.dir.name + ".disk")
        self.size = 0
        self.mounted = False

    def __enter__(self) -> SmallDisk:
        kill(current(self.stack).storage_nodes[self.node]["pid"], signal.SIGTERM, timeout=30)
        used = sum(f.stat().st_size for f in self.dir.rglob("*") if f.is_file())
        self.size = _round_up(used + self.free, 4096)
        self.dir.rename(self.aside)
        self.dir.mkdir()
        try:
            _run("mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.dir))
        except FaultError:
            self.dir.rmdir()
            self.aside.rename(self.dir)
            raise
        self.mounted = True
        shutil.copytree(self.aside, self.dir, dirs_exist_ok=True)
        restart_storage_nodes(self.stack, [self.node])
        return self

    def usage(self) -> tuple[int, int]:
        """(bytes used, bytes total) of the tmpfs."""
        st = os.statvfs(self.dir)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize

    def grow(self, extra: int) -> None:
        """Give the node `extra` more bytes of space, while it runs."""
        self.size = _round_up(self.size + extra, 4096)
        _run("mount", "-o", f"remount,size={self.size}", str(self.dir))

    def __exit__(self, *exc: object) -> None:
        if not self.mounted:
            return
        kill(current(self.stack).storage_nodes[self.node]["pid"], signal.SIGTERM, timeout=30)
        shutil.rmtree(self.aside)
        shutil.copytree(self.dir, self.aside)
        _run("umount", str(self.dir))
        self.mounted = False
        self.dir.rmdir()
        self.aside.rename(self.dir)
        restart_storage_nodes(self.stack, [self.node])


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def _run(*cmd: str) -> None:
    result = subprocess.run(list(cmd), capture_output=True, text=True)
    if result.returncode != 0:
        raise FaultError(f"{' '.join(cmd)}: {result.stderr.strip() or result.returncode}")

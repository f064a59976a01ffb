"""Processes and readiness probes: the one lower module every area's launch code and the stack launcher use.

Starting a service: `spawn` runs a command in its own session with stdout+stderr appended to a log file and,
by default, PR_SET_PDEATHSIG so that it goes away with its parent. Stopping: `stop_pids` (SIGTERM, a grace
period, then SIGKILL) for many at once, `stop_pid` for one. Pids read back from an old stack.json are checked
with `looks_like_ours` before they are signalled (a pid may have been reused).

Readiness: `wait_until` polls a probe until it answers true or a deadline passes (a probe that raises is
"not yet"); `rpc_call` (a synchronous JSON-RPC call) and `http_get_json` go through one urllib opener that
ignores proxy settings — services listen on the stack's own interfaces, never behind a proxy. Both read at most
`max_reply` bytes, so a hostile endpoint cannot exhaust the caller's memory.

This module imports nothing from deaios but `errors`: areas and the launcher depend on it, never the reverse.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from deaios.errors import UserError

GRACE = 10.0  # seconds between SIGTERM and SIGKILL
POLL = 0.2  # seconds between readiness probes
MAX_REPLY = 64 << 20  # bytes a probe or sync JSON-RPC call reads at most

_PR_SET_PDEATHSIG = 1
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LaunchError(click.ClickException):
    """A service did not come up; exit code 1, the message names the log to read."""

    def show(self, file: IO[Any] | None = None) -> None:  # type: ignore[override]
        click.echo(f"error: {self.format_message()}", err=True, file=file)


# -- where things are ----------------------------------------------------------------------------------------
def project_root() -> Path:
    """The deaios source tree (ape-config.yaml + scripts/deploy.py), needed to deploy the contracts."""
    candidates: list[Path] = []
    if os.environ.get("DEAIOS_PROJECT"):
        candidates.append(Path(os.environ["DEAIOS_PROJECT"]))
    candidates += list(Path(__file__).resolve().parents)
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents]
    for candidate in candidates:
        if (candidate / "ape-config.yaml").is_file() and (candidate / "scripts" / "deploy.py").is_file():
            return candidate
    raise UserError("cannot find the deaios source tree (ape-config.yaml, scripts/deploy.py) to deploy the "
                    "contracts from; run inside it or set DEAIOS_PROJECT")


def find_tool(name: str, root: Path | None = None) -> str:
    """An executable from the project's node_modules/.bin, the virtualenv, or PATH."""
    root = root or project_root()
    for candidate in (root / "node_modules" / ".bin" / name, Path(sys.executable).with_name(name)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise UserError(f"`{name}` not found (run `make setup`)")
    return found


#: Listening ports are drawn from here: below the kernel's ephemeral range, so that the port of an outgoing
#: connection (of any process) never takes a port between our check and the service's bind.
LISTEN_PORTS = range(20000, 32768)


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


#: Ports handed out recently, shared by every deaios process of this user: a port is free when we check it but
#: its service binds it only seconds later (minutes on a loaded machine), so two stacks starting side by side
#: (parallel test areas) could otherwise both be given it. An entry expires after PORT_HOLD seconds; by then the
#: service listens and the bind check sees it.
PORT_LEDGER = Path(os.environ.get("TMPDIR", "/tmp")) / f"deaios-ports-{os.getuid()}.json"
PORT_HOLD = 600.0


@contextlib.contextmanager
def _port_ledger() -> Iterator[dict[str, float]]:
    """The ledger of recently handed-out ports (port -> time), locked for the block and saved after it."""
    with open(PORT_LEDGER.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            held = json.loads(PORT_LEDGER.read_text())
        except (OSError, ValueError):
            held = {}
        now = time.time()
        held = {port: at for port, at in held.items() if isinstance(at, (int, float)) and now - at < PORT_HOLD}
        yield held
        tmp = PORT_LEDGER.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(held))
        tmp.replace(PORT_LEDGER)


def free_ports(host: str, count: int) -> list[int]:
    """`count` distinct ports that are free on `host` right now and were not handed out to another service in
    the last PORT_HOLD seconds (by this or any other deaios process), chosen at random below the ephemeral range
    (a port the kernel handed out with bind(0) could be reused at once for some outgoing connection, and the
    service that was to listen there would fail with "address already in use")."""
    candidates = [port for port in LISTEN_PORTS if port < _ephemeral_start()] or list(LISTEN_PORTS)
    chosen: list[int] = []
    socks = []
    with _port_ledger() as held:
        try:
            for port in random.sample(candidates, len(candidates)):
                if len(chosen) == count:
                    break
                if str(port) in held:
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    continue
                socks.append(sock)
                chosen.append(port)
            if len(chosen) < count:
                raise OSError(f"fewer than {count} free ports on {host}")
        finally:
            for sock in socks:
                sock.close()
        now = time.time()
        held.update({str(port): now for port in chosen})
    return chosen


# -- pids --------------------------------------------------------------------------------------------------
def pid_alive(pid: int | None) -> bool:
    """Whether process `pid` exists and is not a zombie (an exited child nobody has reaped)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> str | None:
    """The command line of `pid` (None without /proc access)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def looks_like_ours(name: str, pid: int) -> bool:
    """Guard against pid reuse before signalling a pid read from an old stack.json."""
    if not pid_alive(pid):
        return False
    line = cmdline(pid)
    if line is None:
        return True
    return ("anvil" in line) if name == "anvil" else ("deaios" in line)


# -- starting and stopping -----------------------------------------------------------------------------------
def child_env(extra: dict[str, str] | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a service process: ours (or `base`), unbuffered Python output, plus `extra`."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
          die_with_parent: bool = True) -> subprocess.Popen:
    """Start `cmd` in its own session with stdout+stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env if env is not None else child_env(), cwd=cwd, start_new_session=True,
                                preexec_fn=_set_pdeathsig if die_with_parent else None)


def _alive(name: str, pid: int, procs: dict[str, subprocess.Popen]) -> bool:
    proc = procs.get(name)
    if proc is not None and proc.pid == pid:
        return proc.poll() is None  # our child: poll() also reaps it
    return pid_alive(pid)


def stop_pids(pids: dict[str, int], grace: float = GRACE, log: Callable[[str], None] | None = None,
              procs: dict[str, subprocess.Popen] | None = None) -> list[str]:
    """SIGTERM every live pid, wait up to `grace` s, SIGKILL the rest; returns the names that were killed."""
    procs = procs or {}
    live = {name: pid for name, pid in pids.items() if _alive(name, pid, procs)}
    for pid in live.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = {name: pid for name, pid in live.items() if _alive(name, pid, procs)}
    for name, pid in live.items():
        if log:
            log(f"{name} (pid {pid}) ignored SIGTERM for {grace:.0f} s: killing it")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_alive(n, p, procs) for n, p in live.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(live)


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Send `sig` to `pid` (if it is alive and one of ours) and wait until it is gone; SIGKILL after `timeout`."""
    if not looks_like_ours("", pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.05)


# -- readiness -----------------------------------------------------------------------------------------------
def _read_capped(resp: Any, max_reply: int) -> bytes:
    data = resp.read(max_reply + 1)
    if len(data) > max_reply:
        raise RuntimeError(f"reply larger than {max_reply} bytes")
    return data


def rpc_call(url: str, method: str, params: Iterable[object] = (), timeout: float = 2.0,
             max_reply: int = MAX_REPLY) -> Any:
    """A synchronous JSON-RPC call; raises on transport errors and on JSON-RPC error objects."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=timeout) as resp:
        reply = json.loads(_read_capped(resp, max_reply))
    if not isinstance(reply, dict):
        raise RuntimeError(f"{method}: malformed reply")
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply.get("result")


def http_get_json(url: str, timeout: float = 2.0, max_reply: int = MAX_REPLY) -> Any:
    """GET `url` and decode its JSON body (raises on HTTP errors and transport errors)."""
    with _OPENER.open(url, timeout=timeout) as resp:
        return json.loads(_read_capped(resp, max_reply))


def http_get(url: str, timeout: float = 2.0, max_reply: int = MAX_REPLY) -> bytes:
    """GET `url` and return its body (raises on HTTP errors and transport errors)."""
    with _OPENER.open(url, timeout=timeout) as resp:
        return _read_capped(resp, max_reply)


def wait_until(probe: Callable[[], bool], timeout: float, what: str, log: Path | None = None,
               check: Callable[[], None] | None = None, poll: float = POLL) -> None:
    """Poll `probe` until it returns true; a probe that raises counts as "not yet". `check` runs before each
    try (e.g. to fail fast when a child exited). LaunchError after `timeout` s, with the tail of `log`."""
    deadline = time.monotonic() + timeout
    last_error: object = None
    while True:
        if check is not None:
            check()
        try:
            if probe():
                return
        except Exception as exc:  # not up yet
            last_error = exc
        if time.monotonic() > deadline:
            raise LaunchError(f"{what} did not become ready within {timeout:.0f} s (last error: {last_error})"
                              + (f"; see {log}:\n{tail(log)}" if log else ""))
        time.sleep(poll)


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log, indented, for error messages."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])

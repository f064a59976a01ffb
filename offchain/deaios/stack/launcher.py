"""The process supervisor behind `deaios up`: Anvil, the storage contracts, N storage nodes, the indexer,
the KV node.

Start-up, in order (every step's output goes to DATA/logs/):

1. take DATA/.launcher.lock (a second `deaios up` on the same DATA fails with a clear message);
2. Anvil (chain id 31337, instant mining) on a free port, its state kept in DATA/chain/anvil-state.json;
3. the storage contracts, deployed by the project's own deploy script: `ape run deploy --network
   ethereum:local:foundry --out-dir DATA/deployments` with `APE_FOUNDRY_HOST` pointing ape-foundry at
   our Anvil (ape then connects to it instead of starting its own), deployer = ape test account 0 =
   Anvil dev key 0 — skipped when DATA holds a previous stack whose chain state still has the contracts
   (a restart: same chain, node data kept);
4. N storage nodes (`python -m deaios.cli storage node …`, data in DATA/nodes/<i>) and the indexer
   (`python -m deaios.cli storage indexer …`), each on a free port, then the KV node (`python -m
   deaios.cli kv node …`, data in DATA/kv, see deaios.kv.launch) and `--da-nodes` DA nodes (`deaios da
   node …`, Anvil dev keys 2…, data in DATA/da/<i>; each registers itself, then the admin starts the first
   DA epoch with `forceMakeEpoch`, see deaios.da.launch);
5. waits until every node answers `zgs_getStatus` (log sync past the deploy block), the indexer lists
   all of them and the KV node's log sync is past the deploy block, then writes DATA/stack.json,
   records it as the last stack started and prints it as one JSON line on stdout.

Then it supervises until SIGINT/SIGTERM (`deaios down` sends SIGTERM): a child that dies is logged, not
restarted (tests kill nodes on purpose). Shutdown: SIGTERM to the indexer and the nodes (also those a
test relaunched with `relaunch_node`, and a KV node `deaios kv rebuild` restarted, found through
stack.json), then to Anvil (which saves its state);
SIGKILL whatever is still alive after a grace period. Children get PR_SET_PDEATHSIG, so they also go
away if the launcher itself is killed hard.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from deaios.alignment import launch as alignment_launch
from deaios.compute import launch as compute_launch
from deaios.da import launch as da_launch
from deaios.errors import UserError
from deaios.inft import launch as inft_launch
from deaios.kv import launch as kv_launch
from deaios.kv.replay import StreamConfig
from deaios.stack.config import (
    ANVIL_KEY_0, DEV_ACCOUNTS, PRIVATE_KEY_NOTE, STACK_FILE, Stack, pid_alive, record_last_stack,
)

CHAIN_ID = 31337
ANVIL_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEFAULT_DIR = Path("deaios-data")
LOCK_FILE = ".launcher.lock"
GRACE = 10.0  # seconds between SIGTERM and SIGKILL
POLL = 0.2

_PR_SET_PDEATHSIG = 1


class LaunchError(click.ClickException):
    """Start-up failed (a service did not come up); exit code 1, the message names the log to read."""

    def show(self, file: IO[Any] | None = None) -> None:  # type: ignore[override]
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class _Stop(BaseException):
    """Raised by the signal handler to abort start-up."""


# -- small helpers ---------------------------------------------------------------------------------------
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rpc_call(url: str, method: str, params: Iterable[object] = (), timeout: float = 2.0) -> Any:
    """A synchronous JSON-RPC call; raises on transport errors and on JSON-RPC error objects."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=timeout) as resp:
        reply = json.load(resp)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply.get("result")


def free_ports(host: str, count: int) -> list[int]:
    """`count` distinct ports that are free on `host` right now."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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


def find_tool(name: str, root: Path) -> str:
    for candidate in (root / "node_modules" / ".bin" / name, Path(sys.executable).with_name(name)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise UserError(f"`{name}` not found (run `make setup`)")
    return found


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def looks_like_ours(name: str, pid: int) -> bool:
    """Guard against pid reuse before signalling a pid read from an old stack.json."""
    if not pid_alive(pid):
        return False
    cmdline = _cmdline(pid)
    if cmdline is None:
        return True
    return ("anvil" in cmdline) if name == "anvil" else ("deaios" in cmdline)


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
          die_with_parent: bool = True) -> subprocess.Popen:
    """Start `cmd` in its own session with stdout+stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, start_new_session=True,
                                preexec_fn=_set_pdeathsig if die_with_parent else None)


def stop_pids(pids: dict[str, int], grace: float = GRACE, log: Callable[[str], None] | None = None,
              procs: dict[str, subprocess.Popen] | None = None) -> list[str]:
    """SIGTERM every live pid, wait up to `grace` s, SIGKILL the rest; returns the names that were killed."""
    procs = procs or {}
    live = {name: pid for name, pid in pids.items() if _alive(name, pid, procs)}
    for name, pid in live.items():
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


def _alive(name: str, pid: int, procs: dict[str, subprocess.Popen]) -> bool:
    proc = procs.get(name)
    if proc is not None and proc.pid == pid:
        return proc.poll() is None  # our child: poll() also reaps it
    return pid_alive(pid)


def relaunch_node(stack: Stack, index: int) -> subprocess.Popen:
    """Start storage node `index` again with its recorded command line (for tests that killed it) and
    record its new pid in stack.json, so that `deaios down` stops it too."""
    node = stack.storage_nodes[index]
    proc = spawn(list(node["cmd"]), Path(node.get("log") or Path(stack.dir) / "logs" / f"node-{index}.log"),
                 env=_child_env(), die_with_parent=False)
    node["pid"] = proc.pid
    if stack.path is not None:
        current = Stack.load(stack.path)  # keep what others wrote since `stack` was loaded
        current.storage_nodes[index]["pid"] = proc.pid
        current.save()
    return proc


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- the launcher ----------------------------------------------------------------------------------------
@dataclass
class LaunchOptions:
    data_dir: Path = DEFAULT_DIR
    nodes: int = 10
    host: str = "127.0.0.1"
    startup_timeout: float = 120.0
    kv_streams: str = "all"  # what the KV node serves: "all" or comma-separated stream ids
    da_nodes: int = da_launch.DEFAULT_DA_NODES  # DA nodes (signers) to start; 0 = none


class Launcher:
    def __init__(self, options: LaunchOptions, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.opts = options
        self.dir = options.data_dir.expanduser().resolve()
        self.logs = self.dir / "logs"
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.procs: dict[str, subprocess.Popen] = {}  # name -> child
        self.reported: set[str] = set()
        self.stack: Stack | None = None
        self._lock_fd: int | None = None
        self._stopping = False
        self._in_startup = False

    # -- logging ---------------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} deaios up: {message}"
        with contextlib.suppress(Exception):
            print(line, file=self.err, flush=True)
        with contextlib.suppress(OSError), open(self.logs / "launcher.log", "a") as fh:
            fh.write(line + "\n")

    # -- signals ---------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._in_startup:
            raise _Stop()

    # -- main ------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, print stack.json, supervise until a signal, shut down. Returns an exit code."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        previous = signal.signal(signal.SIGINT, self._on_signal), signal.signal(signal.SIGTERM, self._on_signal)
        try:
            self._in_startup = True
            try:
                self.start()
            finally:
                self._in_startup = False
            if not self._stopping:
                self.supervise()
            return 0
        except _Stop:
            self.say("interrupted during start-up")
            return 130
        finally:
            self._stopping = True
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                self.shutdown()
            finally:
                signal.signal(signal.SIGINT, previous[0])
                signal.signal(signal.SIGTERM, previous[1])
                self._release_lock()

    def _take_lock(self) -> None:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = None
            with contextlib.suppress(Exception):
                pid = Stack.load(self.dir / STACK_FILE).launcher_pid
            raise UserError(f"a stack is already running in {self.dir}"
                            + (f" (launcher pid {pid})" if pid else "")
                            + f"; stop it with `deaios down --stack {self.dir / STACK_FILE}` or use another --dir")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None

    # -- start-up --------------------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        root = project_root()
        host = self.opts.host
        if not _is_loopback(host):
            self.say(f"WARNING: --host {host} makes every service of this stack reachable from the network, and "
                     "the stack runs on Anvil's dev keys, which are public (the chain's funded accounts, the "
                     "compute provider's, the DA nodes' and the INFT oracle's keys): anyone who can reach it can "
                     "spend and sign as them. Use it only on a network you trust, never for real value.")
        previous = self._previous_stack()
        nodes_dir = self.dir / "nodes"
        if previous is not None and len(previous.storage_nodes) != self.opts.nodes and nodes_dir.is_dir() \
                and any(nodes_dir.iterdir()):
            raise UserError(f"{self.dir} holds a network of {len(previous.storage_nodes)} storage nodes (its data is "
                            f"erasure-coded across that many); restart it with --nodes {len(previous.storage_nodes)} "
                            "or use another --dir")
        state_file = self.dir / "chain" / "anvil-state.json"
        state_file.parent.mkdir(parents=True, exist_ok=True)

        # 1. Anvil
        anvil_port = free_ports(host, 1)[0]
        rpc = f"http://{host}:{anvil_port}"
        anvil_cmd = [find_tool("anvil", root), "--host", host, "--port", str(anvil_port), "--chain-id",
                     str(CHAIN_ID), "--accounts", str(DEV_ACCOUNTS), "--silent", "--state", str(state_file), "--state-interval", "2"]
        self._spawn("anvil", anvil_cmd, self.logs / "anvil.log")
        self._wait("anvil", lambda: int(rpc_call(rpc, "eth_chainId", timeout=1.0), 16) == CHAIN_ID,
                   self.logs / "anvil.log", timeout=30)
        self.say(f"anvil up at {rpc} (pid {self.procs['anvil'].pid})")

        # 2. contracts: reuse the previous stack's when the restored chain still has them
        contracts = None
        if previous is not None:
            flow, market = previous.contracts.get("flow"), previous.contracts.get("market")
            if flow and market and all(rpc_call(rpc, "eth_getCode", [a, "latest"]) not in (None, "0x", "0x0")
                                       for a in (flow, market)):
                contracts = {"contracts": dict(previous.contracts), "deploy_block": previous.deploy_block}
                self.say(f"restarting the stack in {self.dir}: chain state restored, contracts kept "
                         f"(flow {flow})")
        if contracts is None:
            self._set_aside_stale_node_data(previous)
            contracts = self._deploy(root, rpc)

        # 3. storage nodes and indexer
        n = self.opts.nodes
        ports = free_ports(host, n + 2)
        urls = [f"http://{host}:{port}" for port in ports[:n]]
        indexer_url = f"http://{host}:{ports[n]}"
        nodes = []
        for i, url in enumerate(urls):
            node_dir = self.dir / "nodes" / str(i)
            cmd = [sys.executable, "-m", "deaios.cli", "storage", "node", "--dir", str(node_dir), "--host", host,
                   "--port", str(ports[i]), "--chain-rpc", rpc, "--flow", contracts["contracts"]["flow"],
                   "--index", str(i), "--peers", ",".join(urls), "--start-block", str(contracts["deploy_block"])]
            log = self.logs / f"node-{i}.log"
            proc = self._spawn(f"node-{i}", cmd, log)
            nodes.append({"index": i, "url": url, "pid": proc.pid, "dir": str(node_dir), "log": str(log),
                          "cmd": cmd})
        indexer_cmd = [sys.executable, "-m", "deaios.cli", "storage", "indexer", "--host", host, "--port",
                       str(ports[n]), "--nodes", ",".join(urls)]
        indexer_proc = self._spawn("indexer", indexer_cmd, self.logs / "indexer.log")
        kv_streams = StreamConfig.parse(self.opts.kv_streams)
        kv_url, kv_log = f"http://{host}:{ports[n + 1]}", self.logs / "kv.log"
        kv_cmd = kv_launch.node_command(self.dir / "kv", host, ports[n + 1], rpc, contracts["contracts"]["flow"],
                                        urls, contracts["deploy_block"], kv_streams)
        kv_proc = self._spawn("kv", kv_cmd, kv_log)
        compute_entry = self._start_compute_provider(rpc)
        oracle_url, oracle_proc = self._start_inft_oracle(rpc, urls, contracts["contracts"])
        da_specs = self._start_da_nodes(rpc, contracts["contracts"])

        deploy_block = contracts["deploy_block"]
        for node in nodes:
            def ready(url: str = node["url"]) -> bool:
                status = rpc_call(url, "zgs_getStatus", timeout=1.0)
                return isinstance(status, dict) and status.get("logSyncHeight", -1) >= deploy_block
            self._wait(f"node-{node['index']}", ready, Path(node["log"]), timeout=self.opts.startup_timeout)
        self._wait("indexer", lambda: len(rpc_call(indexer_url, "indexer_getShardedNodes", timeout=3.0)
                                          .get("trusted", [])) == n,
                   self.logs / "indexer.log", timeout=self.opts.startup_timeout)
        self._wait("kv", lambda: (rpc_call(kv_url, "deaios_kvStatus", timeout=1.0)["logSyncHeight"] or -1)
                   >= deploy_block, kv_log, timeout=self.opts.startup_timeout)
        self._wait("compute-provider", lambda: compute_launch.ready(compute_entry["url"], rpc,
                                                                   self.dir / "deployments" / "local.json"),
                   Path(compute_entry["log"]), timeout=self.opts.startup_timeout)
        da_entries = self._wait_da_nodes(rpc, contracts["contracts"], da_specs)
        if contracts["contracts"].get("alignment_supervision"):
            supervised = alignment_launch.register_stack_nodes(
                rpc, contracts["contracts"]["alignment_supervision"], ANVIL_KEY_0, urls, da_entries, ANVIL_ACCOUNT_0)
            self.say(f"{supervised} nodes under alignment supervision")
        if oracle_proc is not None:
            self._wait("inft-oracle", lambda: inft_launch.ready(oracle_url), self.logs / "inft-oracle.log",
                       timeout=self.opts.startup_timeout)

        # 4. stack.json
        self.stack = Stack(
            rpc=rpc, chain_id=CHAIN_ID, contracts=contracts["contracts"], deploy_block=deploy_block,
            indexer=indexer_url, indexer_pid=indexer_proc.pid, storage_nodes=nodes,
            anvil_pid=self.procs["anvil"].pid, launcher_pid=os.getpid(), private_key=ANVIL_KEY_0,
            private_key_note=PRIVATE_KEY_NOTE, dir=str(self.dir),
            extra={"account": ANVIL_ACCOUNT_0, "anvil_cmd": anvil_cmd, "indexer_cmd": indexer_cmd,
                   "kv": kv_launch.stack_entry(self.dir / "kv", kv_url, kv_proc.pid, kv_log, kv_cmd, kv_streams),
                   "compute_provider": compute_entry, "da_nodes": da_entries,
                   **({"inft_oracle": oracle_url, "inft_oracle_pid": oracle_proc.pid} if oracle_proc else {}),
                   "logs": str(self.logs), "started_at": int(time.time())})
        path = self.stack.save(self.dir / STACK_FILE)
        record_last_stack(path)
        try:
            print(json.dumps(self.stack.to_json(), separators=(",", ":")), file=self.out, flush=True)
        except (BrokenPipeError, ValueError):  # nobody reads stdout (any more): stack.json has it all
            pass
        self.say(f"stack up in {time.monotonic() - started:.1f} s: {n} storage nodes, indexer {indexer_url}, "
                 f"KV node {kv_url}, chain {rpc}; stack file {path}. Stop with Ctrl-C or `deaios down`.")

    def _start_inft_oracle(self, rpc: str, node_urls: list[str], contracts: dict
                           ) -> tuple[str, subprocess.Popen | None]:
        """Spawn the INFT re-encryption oracle (Anvil dev key 15); its URL and process."""
        port = free_ports(self.opts.host, 1)[0]
        url = f"http://{self.opts.host}:{port}"
        if not contracts.get("inft_nft"):
            self.say("no INFT contracts in this stack (restarted from an older version): no INFT oracle")
            return url, None
        cmd = inft_launch.oracle_command(self.opts.host, port, rpc, node_urls, contracts["flow"],
                                         self.dir / "deployments" / "local.json")
        return url, self._spawn("inft-oracle", cmd, self.logs / "inft-oracle.log",
                                env=inft_launch.oracle_env(_child_env()))

    def _start_compute_provider(self, rpc: str) -> dict:
        """Spawn the compute provider broker (Anvil dev key 1); its stack.json entry."""
        port = free_ports(self.opts.host, 1)[0]
        data_dir, log = self.dir / "compute" / "provider", self.logs / "compute-provider.log"
        cmd = compute_launch.provider_command(data_dir, self.opts.host, port, rpc,
                                              self.dir / "deployments" / "local.json")
        proc = self._spawn("compute-provider", cmd, log, env=compute_launch.provider_env(_child_env()))
        return compute_launch.stack_entry(data_dir, f"http://{self.opts.host}:{port}", proc.pid, log, cmd)

    def _start_da_nodes(self, rpc: str, contracts: dict) -> list[da_launch.DANodeSpec]:
        """Spawn the DA nodes (Anvil dev keys 2…); each registers itself, so they start in parallel."""
        if not self.opts.da_nodes:
            return []
        if not contracts.get("da_entrance"):
            self.say("no DA contracts in this stack (restarted from an older version): no DA nodes")
            return []
        specs = da_launch.plan(self.opts.da_nodes, self.dir, self.logs, self.opts.host,
                               free_ports(self.opts.host, self.opts.da_nodes), rpc, contracts["da_entrance"],
                               _child_env())
        for spec in specs:
            self._spawn(spec.name, spec.cmd, spec.log, env=spec.env)
        return specs

    def _wait_da_nodes(self, rpc: str, contracts: dict, specs: list[da_launch.DANodeSpec]) -> list[dict]:
        """Wait until every DA node is registered, start the first epoch (forceMakeEpoch) if the current one
        has no quorum; their stack.json entries."""
        for spec in specs:
            self._wait(spec.name, lambda url=spec.url: da_launch.is_ready(url), spec.log,
                       timeout=self.opts.startup_timeout)
        if specs:
            epoch = da_launch.activate_epoch(rpc, contracts["da_entrance"])
            self.say(f"{len(specs)} DA nodes registered; DA epoch {epoch} active")
        return [da_launch.stack_entry(spec, self.procs[spec.name].pid, da_launch.status(spec.url)["address"])
                for spec in specs]

    def _previous_stack(self) -> Stack | None:
        path = self.dir / STACK_FILE
        if not path.exists():
            return None
        try:
            previous = Stack.load(path)
        except UserError as exc:
            self.say(f"ignoring unreadable {path}: {exc.format_message()}")
            return None
        leftovers = {name: pid for name, pid in service_pids(previous).items()
                     if name != "launcher" and looks_like_ours(name, pid)}
        if leftovers:
            self.say(f"stopping processes left over from the previous stack: {sorted(leftovers)}")
            stop_pids(leftovers, log=self.say)
        return previous

    def _set_aside_stale_node_data(self, previous: Stack | None) -> None:
        """Node data of another chain (the chain state was lost) would be wrong: move it aside."""
        for name in ("nodes", "kv", "compute", "da"):
            nodes_dir = self.dir / name
            if nodes_dir.is_dir() and any(nodes_dir.iterdir()):
                target = self.dir / f"{name}.stale-{time.strftime('%Y%m%d-%H%M%S')}"
                nodes_dir.rename(target)
                self.say(f"the previous chain state is gone, so its {name} data no longer applies: moved "
                         f"{nodes_dir} to {target}")

    def _deploy(self, root: Path, rpc: str) -> dict:
        out_dir = self.dir / "deployments"
        out_dir.mkdir(parents=True, exist_ok=True)
        result_file = out_dir / "local.json"
        result_file.unlink(missing_ok=True)
        env = _child_env()
        env["APE_FOUNDRY_HOST"] = rpc
        env.setdefault("APE_DATA_FOLDER", str(root / ".ape"))
        env["PATH"] = os.pathsep.join([str(root / "node_modules" / ".bin"), str(Path(sys.executable).parent),
                                       env.get("PATH", "")])
        cmd = [find_tool("ape", root), "run", "deploy", "--network", "ethereum:local:foundry", "--all-areas",
               "--out-dir", str(out_dir)]
        log = self.logs / "deploy.log"
        self.say("deploying the contracts of every area (ape run deploy --all-areas)")
        proc = self._spawn("deploy", cmd, log, env=env, cwd=root)
        deadline = time.monotonic() + 600
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise LaunchError(f"contract deployment timed out; see {log}")
            self._check_children(exclude={"deploy"})
            time.sleep(POLL)
        del self.procs["deploy"]
        if proc.returncode != 0 or not result_file.is_file():
            raise LaunchError(f"contract deployment failed (exit {proc.returncode}); see {log}:\n"
                              + _tail(log))
        deployed = json.loads(result_file.read_text())
        if str(deployed.get("deployer", "")).lower() != ANVIL_ACCOUNT_0.lower():
            raise LaunchError(f"deploy used {deployed.get('deployer')} instead of Anvil account 0 "
                              f"{ANVIL_ACCOUNT_0}; check the test mnemonic in ape-config.yaml")
        self.say(f"deployed Flow {deployed['flow']} and market {deployed['market']} at block "
                 f"{deployed['block_number']}")
        contracts = {key: deployed[key] for key in ("flow", "market")}
        for key, value in deployed.items():  # any further contract a later deploy script adds
            if key not in contracts and key not in ("deployer", "admin") and isinstance(value, str) \
                    and value.startswith("0x") and len(value) == 42:
                contracts[key] = value
        return {"contracts": contracts, "deploy_block": int(deployed["block_number"])}

    def _spawn(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.Popen:
        proc = spawn(cmd, log, env=env or _child_env(), cwd=cwd)
        self.procs[name] = proc
        return proc

    def _check_children(self, exclude: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        for name, proc in self.procs.items():
            if name not in exclude and proc.poll() is not None:
                log = self.logs / (f"{name}.log" if name != "deploy" else "deploy.log")
                raise LaunchError(f"{name} exited during start-up (exit code {proc.returncode}); see {log}:\n"
                                  + _tail(log))

    def _wait(self, name: str, probe: Callable[[], bool], log: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: object = None
        while True:
            self._check_children()
            try:
                if probe():
                    return
            except Exception as exc:  # not up yet
                last_error = exc
            if time.monotonic() > deadline:
                raise LaunchError(f"{name} did not become ready within {timeout:.0f} s "
                                  f"(last error: {last_error}); see {log}:\n" + _tail(log))
            time.sleep(POLL)

    # -- supervision -----------------------------------------------------------------------------------
    def supervise(self) -> None:
        while not self._stopping:
            for name, proc in self.procs.items():
                if name not in self.reported and proc.poll() is not None:
                    self.reported.add(name)
                    self.say(f"{name} (pid {proc.pid}) exited with code {proc.returncode}; not restarting it")
            time.sleep(POLL)

    # -- shutdown --------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        if not self.procs:
            return
        self.say("shutting down")
        current = self.stack
        if self.stack is not None and self.stack.path is not None:
            with contextlib.suppress(UserError):
                current = Stack.load(self.stack.path)  # a test may have relaunched nodes (new pids)
        services: dict[str, int] = {name: proc.pid for name, proc in self.procs.items() if name != "anvil"}
        if current is not None:
            for name, pid in service_pids(current).items():
                if name not in ("launcher", "anvil") and (name not in services or services[name] != pid):
                    if looks_like_ours(name, pid):
                        services[f"{name}@{pid}"] = pid
        stop_pids(services, log=self.say, procs=self.procs)
        if "anvil" in self.procs:
            stop_pids({"anvil": self.procs["anvil"].pid}, log=self.say, procs=self.procs)
        if current is not None and current.path is not None:
            current.extra["stopped_at"] = int(time.time())
            with contextlib.suppress(OSError):
                current.save()
        self.say("stopped")
        self.procs.clear()


def service_pids(stack: Stack) -> dict[str, int]:
    """stack.pids() plus the services stack.json lists as {"pid": …} objects (the KV node: "kv") or as lists of
    them (the DA nodes: "da_nodes", named by their "name", else "<key>-<i>")."""
    out = stack.pids()
    for name, value in stack.extra.items():
        if isinstance(value, dict) and isinstance(value.get("pid"), int) and value["pid"] > 0:
            out.setdefault(name, value["pid"])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and isinstance(item.get("pid"), int) and item["pid"] > 0:
                    out.setdefault(str(item.get("name") or f"{name}-{i}"), item["pid"])
    return out


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


# -- deaios down -----------------------------------------------------------------------------------------
def stop_stack(stack: Stack, timeout: float = 60.0, log: Callable[[str], None] | None = None) -> bool:
    """Ask the launcher to shut the stack down and wait until every process in stack.json is gone.

    If the launcher is gone (killed hard) its leftovers are stopped directly. Returns whether anything
    was still running.
    """
    pids = {name: pid for name, pid in service_pids(stack).items() if looks_like_ours(name, pid)}
    if not pids:
        return False
    launcher = pids.get("launcher")
    if launcher:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(launcher, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = {name: pid for name, pid in pids.items() if pid_alive(pid)}
        if not pids:
            return True
        if "launcher" not in pids:  # the launcher is done (or was never there): stop what it left behind
            time.sleep(0.5)
            rest = {name: pid for name, pid in pids.items() if looks_like_ours(name, pid)}
            if rest:
                if log:
                    log(f"stopping leftover processes: {', '.join(sorted(rest))}")
                stop_pids(rest, log=log)
            return True
        time.sleep(0.1)
    raise click.ClickException(f"the stack did not stop within {timeout:.0f} s; still running: "
                               + ", ".join(f"{name} (pid {pid})" for name, pid in pids.items()))

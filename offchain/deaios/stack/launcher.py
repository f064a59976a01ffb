"""The process supervisor behind `deaios up`: the chain and the contracts, then every area's services.

The launcher owns the chain part; every other process belongs to an area, which contributes a
`deaios.stack.service.StackService` (in the area's `launch.py`): `services()` below lists them in start order.
Processes are spawned, probed and stopped with `deaios.procs`. The chain part comes one of two ways:

* **local** (`deaios up`): Anvil and the contracts, deployed here (below); services sign with Anvil's dev keys;
* **existing chain** (`deaios up --chain RPC_URL --deployment FILE`): no Anvil and no deployment — the contracts
  are the deployment record's (checked: same chain id, code at the Flow address), nodes sync from its
  `block_number`, and services sign with the operator's keys (`--keys FILE`, $DEAIOS_KEY_<ROLE>, `--key`; see
  `deaios.stack.keys`); a service without its key is not started. `--host 0.0.0.0 --advertise HOST` makes the
  services reachable from other machines under HOST (the URLs in stack.json and on chain); `--join NODE_URL`
  uses an existing storage network instead of starting storage nodes (deaios.storage.launch).

Start-up of a local stack, in order (every step's output goes to DATA/logs/):

1. take DATA/.launcher.lock (a second `deaios up` on the same DATA fails with a clear message);
2. Anvil (chain id 31337, instant mining) on a free port, its state kept in DATA/chain/anvil-state.json
   (dumped every STATE_INTERVAL s and at shutdown); once the stack is up, the launcher mines an empty block
   whenever the chain has been idle for `--block-time` s (deaios.stack.clock), so that block timestamps
   follow the wall clock (a refund lock or a governance timelock expires on an idle stack too);
3. the storage contracts, deployed by the project's own deploy script: `ape run deploy --network
   ethereum:local:foundry --out-dir DATA/deployments` with `APE_FOUNDRY_HOST` pointing ape-foundry at
   our Anvil (ape then connects to it instead of starting its own), deployer = ape test account 0 =
   Anvil dev key 0 — skipped when DATA holds a previous stack whose chain state still has the contracts
   (a restart: same chain, node data kept);
4. every area's services, each on free ports (`services()`): N storage nodes and the indexer
   (deaios.storage.launch), the KV node (deaios.kv.launch), the compute provider (deaios.compute.launch),
   the INFT oracle (deaios.inft.launch), `--da-nodes` DA nodes (deaios.da.launch: each registers itself,
   then the admin starts the first DA epoch), the DA disperser, OP alt-DA server and Nitro DA provider
   (deaios.da.rollup_launch), the alignment supervision registration of the storage and DA nodes
   (deaios.alignment.launch), and last the web dashboard (deaios.dashboard.launch) — all started first,
   then each waited for in that order;
5. writes DATA/stack.json (the launcher's keys plus every service's entries), records it as the last stack
   started and prints it as one JSON line on stdout.

Then it supervises until SIGINT/SIGTERM (`deaios down` sends SIGTERM): a child that dies is logged, not
restarted (tests kill nodes on purpose). Shutdown: SIGTERM to the indexer and the nodes (also those a
test relaunched with `relaunch_node`, and a KV node `deaios kv rebuild` restarted, found through
stack.json), then to Anvil (which saves its state; also an Anvil restarted with `relaunch_anvil`);
SIGKILL whatever is still alive after a grace period. Children get PR_SET_PDEATHSIG, so they also go
away if the launcher itself is killed hard.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click

from deaios.alignment.launch import SupervisionRegistration
from deaios.deployment_record import DeploymentRecord, RecordError
from deaios.compute.launch import ComputeProviderService
from deaios.da import launch as da_launch
from deaios.da import rollup_launch
from deaios.dashboard.launch import DashboardService
from deaios.errors import UserError
from deaios.inft.launch import InftOracleService
from deaios.kv.launch import KVService
from deaios.procs import (  # noqa: F401  (LaunchError, relaunch_node: re-exported for tests and scripts)
    POLL, LaunchError, child_env, find_tool, free_ports, looks_like_ours, project_root, rpc_call, spawn, stop_pids,
    tail, wait_until,
)
from deaios.progress import activity
from deaios.stack.clock import ChainClock
from deaios.stack.config import (
    DEV_ACCOUNTS, PRIVATE_KEY_NOTE, STACK_FILE, Stack, pid_alive, record_last_stack,
)
from deaios.stack.keys import ServiceKeys, address_of
from deaios.stack.service import LaunchContext, StackService
from deaios.storage.launch import StorageService, relaunch_node  # noqa: F401

CHAIN_ID = 31337
ANVIL_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEFAULT_DIR = Path("deaios-data")
LOCK_FILE = ".launcher.lock"
#: An idle chain mines an empty block this often, so block timestamps follow the wall clock (time locks,
#: governance deadlines, supervision epochs); see deaios.stack.clock.
DEFAULT_BLOCK_TIME = 2
#: Seconds between Anvil's state dumps (and at shutdown); what a SIGKILLed Anvil may lose at most.
STATE_INTERVAL = 5
OPERATOR_KEY_NOTE = "the operator's key (deaios up --key / --keys): keep stack.json private"


class _Stop(BaseException):
    """Raised by the signal handler to abort start-up."""


# -- the launcher ----------------------------------------------------------------------------------------
@dataclass
class LaunchOptions:
    data_dir: Path = DEFAULT_DIR
    nodes: int = 10
    host: str = "127.0.0.1"
    startup_timeout: float = 120.0
    kv_streams: str = "all"  # what the KV node serves: "all" or comma-separated stream ids
    da_nodes: int | None = None  # DA nodes (signers) to start; 0 = none; None = 4 locally, one per DA key otherwise
    chain: str | None = None  # an existing chain's RPC URL (with `deployment`): no Anvil, no deploy
    deployment: Path | None = None  # its deployment record
    keys: ServiceKeys | None = None  # the operator's keys (existing chain); None: Anvil dev keys
    advertise: str | None = None  # host in published URLs; default: `host`, or this machine's address for 0.0.0.0
    join: str | None = None  # a storage node URL of an existing storage network to use instead of our own nodes
    block_time: int = DEFAULT_BLOCK_TIME  # local chain: seconds between empty blocks when idle; 0 = none


@dataclass
class ChainPart:
    """What the services need to know about the chain and the contracts."""

    rpc: str
    chain_id: int
    contracts: dict[str, str]
    deploy_block: int
    deployment_file: Path
    local: bool


def services(opts: LaunchOptions) -> list[StackService]:
    """Every area's services, in start order (a service may use what an earlier one published)."""
    return [StorageService(opts.nodes, opts.join), KVService(opts.kv_streams), ComputeProviderService(),
            InftOracleService(), da_launch.DANodesService(opts.da_nodes), *rollup_launch.services(),
            SupervisionRegistration(), DashboardService()]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def advertised_host(host: str, advertise: str | None) -> str:
    """The host name others reach this stack's services at."""
    if advertise:
        return advertise
    if host not in ("0.0.0.0", "::", ""):
        return host
    import socket

    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        return probe.getsockname()[0]
    return socket.gethostname()


def contracts_of(record: dict) -> dict[str, str]:
    """The contract addresses of a deployment record (its flat `name: address` keys)."""
    return DeploymentRecord(Path("."), dict(record)).addresses()


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
        self.clock: ChainClock | None = None
        self._lock_fd: int | None = None
        self._stopping = False
        self._in_startup = False
        self._anvil_cmd: list[str] = []

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
        previous = self._previous_stack()
        nodes_dir = self.dir / "nodes"
        if previous is not None and not self.opts.join and len(previous.storage_nodes) != self.opts.nodes \
                and nodes_dir.is_dir() and any(nodes_dir.iterdir()):
            raise UserError(f"{self.dir} holds a network of {len(previous.storage_nodes)} storage nodes (its data is "
                            f"erasure-coded across that many); restart it with --nodes {len(previous.storage_nodes)} "
                            "or use another --dir")
        local = self.opts.chain is None
        if local and not _is_loopback(self.opts.host):
            self.say(f"WARNING: --host {self.opts.host} makes every service of this stack reachable from the network, "
                     "and a local stack runs on Anvil's dev keys, which are public (the chain's funded accounts, the "
                     "compute provider's, the DA nodes' and the INFT oracle's keys): anyone who can reach it can "
                     "spend and sign as them. Use it only on a network you trust, never for real value.")
        chain = self._local_chain(previous) if local else self._existing_chain(previous)
        keys = ServiceKeys.dev() if local else (self.opts.keys or ServiceKeys())
        user_key = keys.one("user")
        user = address_of(user_key) if user_key else None

        # every area's services: start them all, then wait for each in order
        ctx = LaunchContext(
            data_dir=self.dir, logs=self.logs, host=self.opts.host, rpc=chain.rpc, chain_id=chain.chain_id,
            contracts=chain.contracts, deploy_block=chain.deploy_block, deployment_file=chain.deployment_file,
            admin_key=keys.one("admin"), admin_address=keys.address("admin"),
            startup_timeout=self.opts.startup_timeout, spawn=self._spawn, check=self._check_children, say=self.say,
            options=self.opts, keys=keys, advertise=advertised_host(self.opts.host, self.opts.advertise),
            local=local)
        stack_services = services(self.opts)
        for service in stack_services:
            service.start(ctx)
        for service in stack_services:
            service.wait(ctx)
            ctx.stack.update(service.entries())

        # stack.json
        published = dict(ctx.stack)
        extra = {"account": user, **published, "logs": str(self.logs), "started_at": int(time.time()),
                 "chain_mode": "local" if local else "existing", "deployment": str(chain.deployment_file)}
        if local:
            extra["anvil_cmd"] = self._anvil_cmd
        self.stack = Stack(
            rpc=chain.rpc, chain_id=chain.chain_id, contracts=chain.contracts, deploy_block=chain.deploy_block,
            indexer=published.pop("indexer"), indexer_pid=published.pop("indexer_pid"),
            storage_nodes=published.pop("storage_nodes"),
            anvil_pid=self.procs["anvil"].pid if "anvil" in self.procs else None,
            launcher_pid=os.getpid(), private_key=user_key or "",
            private_key_note=PRIVATE_KEY_NOTE if local else OPERATOR_KEY_NOTE, dir=str(self.dir),
            extra={k: v for k, v in extra.items() if k not in ("indexer", "indexer_pid", "storage_nodes")})
        path = self.stack.save(self.dir / STACK_FILE)
        if not local:
            with contextlib.suppress(OSError):
                path.chmod(0o600)  # it holds the operator's user key
        record_last_stack(path)
        try:
            print(json.dumps(self.stack.to_json(), separators=(",", ":")), file=self.out, flush=True)
        except (BrokenPipeError, ValueError):  # nobody reads stdout (any more): stack.json has it all
            pass
        self.say(f"stack up in {time.monotonic() - started:.1f} s: {len(self.stack.storage_nodes)} storage nodes, "
                 f"indexer {self.stack.indexer}, KV node {published.get('kv', {}).get('url')}, chain {chain.rpc}, "
                 f"dashboard {published.get('dashboard', {}).get('url')}; stack file {path}. Stop with Ctrl-C or "
                 "`deaios down`.")

    def _local_chain(self, previous: Stack | None) -> ChainPart:
        """Anvil with its state in DATA/chain/, and the contracts (kept from the previous stack if still there)."""
        root = project_root()
        host = self.opts.host
        state_file = self.dir / "chain" / "anvil-state.json"
        state_file.parent.mkdir(parents=True, exist_ok=True)
        anvil_port = free_ports(host, 1)[0]
        rpc = f"http://{host}:{anvil_port}"
        self._anvil_cmd = [find_tool("anvil", root), "--host", host, "--port", str(anvil_port), "--chain-id",
                           str(CHAIN_ID), "--accounts", str(DEV_ACCOUNTS), "--silent", "--state", str(state_file),
                           "--state-interval", str(STATE_INTERVAL)]
        self._spawn("anvil", self._anvil_cmd, self.logs / "anvil.log")
        wait_until(lambda: int(rpc_call(rpc, "eth_chainId", timeout=1.0), 16) == CHAIN_ID, 30, "anvil",
                   log=self.logs / "anvil.log", check=self._check_children)
        self.say(f"anvil up at {rpc} (pid {self.procs['anvil'].pid})")
        self.clock = ChainClock(rpc, self.opts.block_time, log=self.say)
        deployment_file = self.dir / "deployments" / "local.json"
        if previous is not None:
            flow, market = previous.contracts.get("flow"), previous.contracts.get("market")
            if flow and market and all(rpc_call(rpc, "eth_getCode", [a, "latest"]) not in (None, "0x", "0x0")
                                       for a in (flow, market)):
                self.say(f"restarting the stack in {self.dir}: chain state restored, contracts kept (flow {flow})")
                return ChainPart(rpc, CHAIN_ID, dict(previous.contracts), previous.deploy_block, deployment_file, True)
        self._set_aside_stale_node_data(previous)
        deployed = self._deploy(root, rpc)
        return ChainPart(rpc, CHAIN_ID, deployed["contracts"], deployed["deploy_block"], deployment_file, True)

    def _existing_chain(self, previous: Stack | None) -> ChainPart:
        """The chain at --chain with the contracts of --deployment, checked against each other."""
        rpc, path = str(self.opts.chain), Path(str(self.opts.deployment)).expanduser().resolve()
        try:
            record = DeploymentRecord.load(path)
        except RecordError as exc:
            raise UserError(str(exc)) from None
        try:
            chain_id = int(rpc_call(rpc, "eth_chainId", timeout=10.0), 16)
        except Exception as exc:  # noqa: BLE001  (unreachable, not JSON-RPC, …)
            raise UserError(f"--chain {rpc}: no answer to eth_chainId ({exc})") from None
        if record.chain_id is not None and record.chain_id != chain_id:
            raise UserError(f"{path} is a deployment on chain {record.chain_id}, but {rpc} is chain {chain_id}")
        if "format" in record.data and not record.complete:
            raise UserError(f"{path}: the deployment is not complete (status {record.data.get('status')!r}); "
                            "finish it with `ape run deploy` first")
        contracts = contracts_of(record.data)
        flow = contracts.get("flow")
        if not flow or rpc_call(rpc, "eth_getCode", [flow, "latest"], timeout=10.0) in (None, "0x", "0x0"):
            raise UserError(f"{path}: no Flow contract at {flow} on {rpc}")
        if previous is not None and previous.contracts.get("flow") != flow:
            self._set_aside_stale_node_data(previous)
        deploy_block = int(record.data.get("block_number") or 0)
        self.say(f"using the contracts of {path} on {rpc} (chain {chain_id}; flow {flow}, deployed at block "
                 f"{deploy_block}); service keys: {(self.opts.keys or ServiceKeys()).source}")
        return ChainPart(rpc, chain_id, contracts, deploy_block, path, False)

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
        """Node data of another chain (the chain state was lost, or other contracts) would be wrong: move it
        aside."""
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
        env = child_env()
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
        with activity("deploying the contracts", file=self.err) as update:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise LaunchError(f"contract deployment timed out; see {log}")
                self._check_children(exclude={"deploy"})
                with contextlib.suppress(OSError):  # ape reports each contract it deployed
                    update(description=f"deploying the contracts: {log.read_text().count(' deployed to')} deployed")
                time.sleep(POLL)
        del self.procs["deploy"]
        if proc.returncode != 0 or not result_file.is_file():
            raise LaunchError(f"contract deployment failed (exit {proc.returncode}); see {log}:\n"
                              + tail(log))
        deployed = json.loads(result_file.read_text())
        if str(deployed.get("deployer", "")).lower() != ANVIL_ACCOUNT_0.lower():
            raise LaunchError(f"deploy used {deployed.get('deployer')} instead of Anvil account 0 "
                              f"{ANVIL_ACCOUNT_0}; check the test mnemonic in ape-config.yaml")
        self.say(f"deployed Flow {deployed['flow']} and market {deployed['market']} at block "
                 f"{deployed['block_number']}")
        return {"contracts": contracts_of(deployed), "deploy_block": int(deployed["block_number"])}

    def _spawn(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.Popen:
        proc = spawn(cmd, log, env=env or child_env(), cwd=cwd)
        self.procs[name] = proc
        return proc

    def _check_children(self, exclude: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        for name, proc in self.procs.items():
            if name not in exclude and proc.poll() is not None:
                log = self.logs / (f"{name}.log" if name != "deploy" else "deploy.log")
                raise LaunchError(f"{name} exited during start-up (exit code {proc.returncode}); see {log}:\n"
                                  + tail(log))

    # -- supervision -----------------------------------------------------------------------------------
    def supervise(self) -> None:
        while not self._stopping:
            if self.clock is not None:
                self.clock.tick()
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
        chain = {"anvil": self.procs["anvil"].pid} if "anvil" in self.procs else {}
        if current is not None and current.anvil_pid and current.anvil_pid != chain.get("anvil") \
                and looks_like_ours("anvil", current.anvil_pid):
            chain[f"anvil@{current.anvil_pid}"] = current.anvil_pid  # restarted by `relaunch_anvil`
        stop_pids(chain, log=self.say, procs=self.procs)  # SIGTERM: Anvil saves its state
        if current is not None and current.path is not None:
            current.extra["stopped_at"] = int(time.time())
            with contextlib.suppress(OSError):
                current.save()
        self.say("stopped")
        self.procs.clear()


def relaunch_anvil(stack: Stack, timeout: float = 60.0) -> subprocess.Popen:
    """Start a local stack's Anvil again after it stopped, with its recorded command line: the same port, and the
    chain as its state file holds it (Anvil saves it when stopped with SIGTERM, and every STATE_INTERVAL s).
    Records the new pid in stack.json, so that `deaios down` stops it (and it saves its state again)."""
    cmd = stack.extra.get("anvil_cmd")
    if not cmd:
        raise UserError(f"the stack in {stack.dir} runs against an existing chain (no anvil_cmd in its stack.json)")
    if pid_alive(stack.anvil_pid):
        raise UserError(f"Anvil (pid {stack.anvil_pid}) is still running")
    proc = spawn(list(cmd), Path(stack.dir) / "logs" / "anvil.log", die_with_parent=False)
    rpc = stack.rpc
    wait_until(lambda: int(rpc_call(rpc, "eth_chainId", timeout=1.0), 16) == stack.chain_id, timeout, "anvil",
               log=Path(stack.dir) / "logs" / "anvil.log")
    stack.anvil_pid = proc.pid
    if stack.path is not None:
        current = Stack.load(stack.path)  # keep what others wrote since `stack` was loaded
        current.anvil_pid = proc.pid
        current.save()
    return proc


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

"""`stack.json`: every endpoint of a running local stack, and how a client command finds it.

`deaios up` writes `DATA/stack.json` and records its absolute path as the last stack started in
`$DEAIOS_HOME/last-stack` (default `~/.deaios/last-stack`). A client command resolves the stack file as
(first match wins):

1. `--stack PATH` (a stack.json, or the data directory holding one);
2. `./deaios-data/stack.json`: a stack started in the current directory with the default `--dir`;
3. the environment variable `DEAIOS_STACK` (same forms as --stack);
4. the last stack started (by anyone running as this user, anywhere).

When the stack was not given with --stack, the command says on stderr which one it used and why, so that
another `deaios up` elsewhere never redirects a command silently.

Any failure (nothing to resolve, a missing or unreadable file, a stack whose launcher has exited) is a
UserError: a one-line message and exit code 2. Client commands take `--stack` through the one CLI context
helper, `deaios.cli_context` (`@client_options(stack_arg="stack")` passes the loaded `Stack`).

stack.json (keys other than these are kept as they are, so later areas can add their services):

    {"rpc": "http://127.0.0.1:PORT", "chain_id": 31337,
     "contracts": {"flow": "0x…", "market": "0x…"}, "deploy_block": N,
     "indexer": "http://127.0.0.1:PORT", "indexer_pid": PID,
     "storage_nodes": [{"index": i, "url": "http://127.0.0.1:PORT", "pid": PID, "dir": "…",
                        "log": "…", "cmd": [argv…]}, …],
     "anvil_pid": PID, "launcher_pid": PID,
     "private_key": "0x…", "private_key_note": "Anvil dev key: public, for local use only",
     "dir": "DATA", "started_at": UNIX, "stopped_at": UNIX (only once shut down)}
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from deaios.errors import UserError
from deaios.procs import pid_alive  # noqa: F401  (re-exported: clients check stack pids)

STACK_FILE = "stack.json"
LAST_STACK_FILE = "last-stack"
ENV_STACK = "DEAIOS_STACK"
ENV_HOME = "DEAIOS_HOME"
#: Anvil's first dev account (mnemonic "test test … junk", m/44'/60'/0'/0/0): 0xf39F…2266.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
PRIVATE_KEY_NOTE = "Anvil dev key: public, for local use only"
#: Anvil's dev mnemonic; `deaios up` starts Anvil with DEV_ACCOUNTS funded accounts derived from it.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 30
#: Who uses which dev key in a local stack (index into the mnemonic's m/44'/60'/0'/0/i keys).
DEV_KEY_ROLES = {"deployer/user": 0, "compute provider": 1, "DA nodes": range(2, 10),
                 "alignment operators": range(10, 15), "INFT oracle": 15, "demo users": range(16, 20),
                 "DA disperser": 20, "training workers": range(21, 30)}

_REQUIRED = ("rpc", "chain_id", "contracts", "indexer", "storage_nodes", "private_key")


def dev_key(index: int) -> str:
    """Anvil dev key `index` (0x-hex): public knowledge, for local stacks only."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return "0x" + Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key.hex().removeprefix("0x")


def dev_address(index: int) -> str:
    """The address of Anvil dev key `index`."""
    from eth_account import Account

    return Account.from_key(dev_key(index)).address


def deaios_home() -> Path:
    """Per-user deaios state: `$DEAIOS_HOME`, else `~/.deaios`."""
    home = os.environ.get(ENV_HOME)
    return Path(home).expanduser() if home else Path.home() / ".deaios"


def last_stack_file() -> Path:
    return deaios_home() / LAST_STACK_FILE


def record_last_stack(stack_path: Path) -> None:
    """Remember `stack_path` as the last stack started (best effort: a read-only home is not fatal)."""
    target = last_stack_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, str(stack_path.resolve()) + "\n")
    except OSError:
        pass


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Stack:
    """A local stack as described by its stack.json."""

    rpc: str
    chain_id: int
    contracts: dict[str, str]
    indexer: str
    storage_nodes: list[dict[str, Any]]
    private_key: str
    dir: str = ""
    deploy_block: int = 0
    anvil_pid: int | None = None
    launcher_pid: int | None = None
    indexer_pid: int | None = None
    private_key_note: str = PRIVATE_KEY_NOTE
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know; kept on save
    path: Path | None = field(default=None, compare=False)  # where it was loaded from / saved to

    _FIELDS = ("rpc", "chain_id", "contracts", "deploy_block", "indexer", "indexer_pid", "storage_nodes",
               "anvil_pid", "launcher_pid", "private_key", "private_key_note", "dir")

    # -- views -------------------------------------------------------------------------------------------
    @property
    def flow(self) -> str:
        return self.contracts["flow"]

    @property
    def market(self) -> str:
        return self.contracts["market"]

    @property
    def node_urls(self) -> list[str]:
        return [node["url"] for node in self.storage_nodes]

    def pids(self) -> dict[str, int]:
        """Every process of the stack by name (launcher, anvil, indexer, node-<i>)."""
        out: dict[str, int] = {}
        if self.launcher_pid:
            out["launcher"] = self.launcher_pid
        if self.anvil_pid:
            out["anvil"] = self.anvil_pid
        if self.indexer_pid:
            out["indexer"] = self.indexer_pid
        for i, node in enumerate(self.storage_nodes):
            if node.get("pid"):
                out[f"node-{node.get('index', i)}"] = int(node["pid"])
        for name, value in self.extra.items():  # services added by later areas: "<name>_pid"
            if name.endswith("_pid") and isinstance(value, int) and value > 0:
                out.setdefault(name[:-4], value)
        return out

    def is_running(self) -> bool:
        return pid_alive(self.launcher_pid)

    # -- (de)serialization -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in self._FIELDS}
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path | None = None) -> "Stack":
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise ValueError(f"missing keys: {', '.join(missing)}")
        if not isinstance(data["storage_nodes"], list) or not all(
                isinstance(n, dict) and "url" in n for n in data["storage_nodes"]):
            raise ValueError("storage_nodes must be a list of {url, …} objects")
        if not isinstance(data["contracts"], dict):
            raise ValueError("contracts must be an object")
        known = {name: data[name] for name in cls._FIELDS if name in data}
        extra = {key: value for key, value in data.items() if key not in cls._FIELDS}
        return cls(**known, extra=extra, path=path)

    @classmethod
    def load(cls, path: Path) -> "Stack":
        """Read a stack.json; a UserError if it is missing, unreadable or not a stack file."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise UserError(f"stack file {path} does not exist (start a stack with `deaios up`)") from None
        except OSError as exc:
            raise UserError(f"cannot read stack file {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return cls.from_json(data, path)
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path} is not a deaios stack file ({exc})") from None

    def save(self, path: Path | None = None) -> Path:
        """Write stack.json atomically (to `path`, else where it came from, else DIR/stack.json)."""
        target = path or self.path or Path(self.dir) / STACK_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, json.dumps(self.to_json(), indent=2) + "\n")
        self.path = target
        return target


# -- which stack does a client command use? -------------------------------------------------------------
def _as_stack_file(path: Path) -> Path:
    path = path.expanduser()
    return path / STACK_FILE if path.is_dir() else path


#: the data directory `deaios up` uses by default, looked for in the current directory
DEFAULT_DATA_DIR = "deaios-data"


def resolve_stack_path(explicit: str | os.PathLike[str] | None = None,
                       announce: Callable[[str], None] | None = None) -> Path:
    """The stack.json a client command should use: --stack, then ./deaios-data, then $DEAIOS_STACK, then the
    last stack started. `announce` is told which one (and why) when it was not given explicitly."""
    if explicit:
        path = _as_stack_file(Path(explicit))
        if not path.exists():
            raise UserError(f"--stack {explicit}: no such stack file (start a stack with `deaios up`, "
                            f"or pass the stack.json it wrote)")
        return path
    chosen, why = _implicit_stack_path()
    if announce is not None:
        announce(f"using the stack in {chosen.parent} ({why}; choose another with --stack)")
    return chosen


def _implicit_stack_path() -> tuple[Path, str]:
    local = Path.cwd() / DEFAULT_DATA_DIR / STACK_FILE
    if local.is_file():
        return local, f"./{DEFAULT_DATA_DIR} in the current directory"
    env = os.environ.get(ENV_STACK)
    if env:
        path = _as_stack_file(Path(env))
        if not path.exists():
            raise UserError(f"{ENV_STACK}={env}: no such stack file")
        return path, f"${ENV_STACK}"
    record = last_stack_file()
    try:
        recorded = record.read_text().strip()
    except FileNotFoundError:
        recorded = ""
    except OSError as exc:
        raise UserError(f"cannot read {record}: {exc.strerror or exc}") from None
    if not recorded:
        raise UserError("no stack: start one with `deaios up` (or pass --stack PATH/stack.json, "
                        f"or set {ENV_STACK})")
    path = Path(recorded)
    if not path.exists():
        raise UserError(f"the last stack started ({path}, recorded in {record}) no longer exists; "
                        "start one with `deaios up` or pass --stack PATH/stack.json")
    return path, f"the last stack started, recorded in {record}"


def announce_on_stderr(message: str) -> None:
    """How client commands announce an implicitly chosen stack."""
    click.echo(message, err=True)


def load_stack(explicit: str | os.PathLike[str] | None = None, require_running: bool = True,
               announce: Callable[[str], None] | None = announce_on_stderr) -> Stack:
    """Resolve and read the stack; with `require_running`, a UserError if its launcher has exited. An implicitly
    chosen stack is announced (on stderr by default; `announce=None` for silence)."""
    stack = Stack.load(resolve_stack_path(explicit, announce))
    if require_running and not stack.is_running():
        where = stack.dir or (stack.path.parent if stack.path else "?")
        raise UserError(f"the stack in {where} is not running (its launcher, pid {stack.launcher_pid}, "
                        f"has exited); start it with `deaios up --dir {where}`")
    return stack

"""`deaios up` / `deaios down` and stack resolution, with real processes on loopback."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from eth_account import Account
from stack_harness import wait_until

from deaios.cli import main
from deaios.procs import rpc_call
from deaios.stack.config import (
    PRIVATE_KEY_NOTE, Stack, load_stack, pid_alive, record_last_stack, resolve_stack_path,
)
from deaios.stack.launcher import DEFAULT_BLOCK_TIME


def test_up_writes_a_complete_stack_json(stack_run) -> None:
    stack = stack_run.stack
    on_disk = json.loads((stack_run.dir / "stack.json").read_text())
    assert stack_run.line == on_disk  # the printed line is stack.json
    for key in ("rpc", "chain_id", "contracts", "deploy_block", "indexer", "storage_nodes", "anvil_pid",
                "launcher_pid", "private_key", "private_key_note", "dir"):
        assert key in on_disk, key
    assert on_disk["private_key_note"] == PRIVATE_KEY_NOTE
    assert on_disk["dir"] == str(stack_run.dir.resolve())
    assert stack.launcher_pid == stack_run.proc.pid
    assert (stack_run.home / "last-stack").read_text().strip() == str((stack_run.dir / "stack.json").resolve())

    # the chain, the deployed contracts, the funded key
    assert stack.chain_id == 31337
    assert int(rpc_call(stack.rpc, "eth_chainId"), 16) == 31337
    for name in ("flow", "market"):
        assert rpc_call(stack.rpc, "eth_getCode", [stack.contracts[name], "latest"]) not in ("0x", None)
    account = Account.from_key(stack.private_key).address
    assert int(rpc_call(stack.rpc, "eth_getBalance", [account, "latest"]), 16) > 10**18
    assert stack.deploy_block >= 1

    # every process is alive and every service answers
    assert len(stack.storage_nodes) == 10
    for name, pid in stack.pids().items():
        assert pid_alive(pid), name
    for i, node in enumerate(stack.storage_nodes):
        assert node["index"] == i
        assert Path(node["dir"]).is_dir()
        assert node["cmd"][node["cmd"].index("--index") + 1] == str(i)
        status = rpc_call(node["url"], "zgs_getStatus")
        assert status["networkIdentity"]["flowAddress"].lower() == stack.flow.lower()
        assert status["networkIdentity"]["chainId"] == 31337
    sharded = rpc_call(stack.indexer, "indexer_getShardedNodes")
    assert sorted(n["url"] for n in sharded["trusted"]) == sorted(stack.node_urls)
    assert sharded["discovered"] == []
    assert all(n["config"] == {"shardId": 0, "numShard": 1} and n["since"] > 0 for n in sharded["trusted"])
    assert sorted(rpc_call(stack.indexer, "indexer_getNodeLocations")) == sorted(stack.node_urls)
    assert rpc_call(stack.indexer, "indexer_getFileLocations", ["0x" + "ab" * 32]) == []
    with pytest.raises(RuntimeError, match="-32602"):
        rpc_call(stack.indexer, "indexer_getFileLocations", ["0x1234"])

    # client resolution: explicit path, data dir, and the last stack started (DEAIOS_HOME)
    assert load_stack(stack_run.dir / "stack.json").rpc == stack.rpc
    assert load_stack(stack_run.dir).rpc == stack.rpc


def test_an_idle_chain_keeps_its_clock(stack_run) -> None:
    """With nothing sent, block timestamps still follow the wall clock (time locks expire on an idle stack)."""
    def latest() -> dict:
        return rpc_call(stack_run.stack.rpc, "eth_getBlockByNumber", ["latest", False])

    before = latest()
    time.sleep(3 * DEFAULT_BLOCK_TIME + 0.5)
    after = latest()
    assert int(after["number"], 16) >= int(before["number"], 16) + 2
    assert time.time() - int(after["timestamp"], 16) <= DEFAULT_BLOCK_TIME + 1.5


def test_second_up_on_a_running_dir_is_refused(stack_run, run_deaios) -> None:
    result = run_deaios("up", "--dir", str(stack_run.dir), "--nodes", "2", home=stack_run.home, timeout=60)
    assert result.returncode == 2
    assert "already running" in result.stderr and str(stack_run.dir.resolve()) in result.stderr
    assert stack_run.proc.poll() is None  # the running stack is untouched


# -- stack resolution and bad --stack paths (no processes needed) ----------------------------------------
def _stack_commands() -> list[tuple[str, ...]]:
    """Every `deaios …` command that takes --stack, with placeholder values for its required arguments."""
    found: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    walk(sub, (*path, name))
        elif any("--stack" in getattr(p, "opts", []) for p in command.params):
            def value(p: click.Parameter) -> str:
                if isinstance(p.type, click.Choice):
                    return str(p.type.choices[0])
                from deaios.units import AmountType

                if isinstance(p.type, click.Path):  # an existing file or directory: only the stack is wrong
                    return str(Path(__file__).parent) if not p.type.file_okay else __file__
                numeric = isinstance(p.type, (click.types.IntParamType, AmountType))
                return "1" if numeric else "0x" + "11" * 20

            arguments = [value(p) for p in command.params
                         if isinstance(p, click.Argument) and (p.required or p.nargs == -1)]
            options = [x for p in command.params if isinstance(p, click.Option) and p.required
                       for x in (p.opts[0], value(p))]
            found.append((*path, *arguments, *options))

    walk(main, ())
    return found


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DEAIOS_HOME", str(home))
    monkeypatch.delenv("DEAIOS_STACK", raising=False)
    return home


def _write_stack(path: Path, launcher_pid: int | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "rpc": "http://127.0.0.1:1", "chain_id": 31337, "contracts": {"flow": "0x" + "11" * 20,
                                                                   "market": "0x" + "22" * 20},
        "deploy_block": 1, "indexer": "http://127.0.0.1:2", "storage_nodes": [{"url": "http://127.0.0.1:3"}],
        "anvil_pid": None, "launcher_pid": launcher_pid, "private_key": "0x" + "33" * 32,
        "dir": str(path.parent), "future_service": {"url": "http://127.0.0.1:4"}}))
    return path


def test_stack_commands_reject_a_bad_stack_path(tmp_path: Path, isolated_home: Path) -> None:
    commands = _stack_commands()
    assert ("down",) in commands
    missing = tmp_path / "nowhere" / "stack.json"
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    stopped = _write_stack(tmp_path / "stopped" / "stack.json", launcher_pid=None)
    runner = CliRunner()
    for command in commands:
        for bad, message in ((missing, "no such stack file"), (garbage, "not a deaios stack file")):
            result = runner.invoke(main, [*command, "--stack", str(bad)])
            assert result.exit_code == 2, (command, result.output)
            assert message in result.output and str(bad) in result.output, (command, result.output)
        if command != ("down",):
            result = runner.invoke(main, [*command, "--stack", str(stopped)])
            assert result.exit_code == 2 and "not running" in result.output, (command, result.output)


def test_down_with_a_bad_stack_path_exits_2(run_deaios, tmp_path: Path) -> None:
    result = run_deaios("down", "--stack", str(tmp_path / "missing.json"), home=tmp_path / "home", timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "missing.json" in result.stderr


def test_resolution_order(tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(click.ClickException, match="no stack: start one with `deaios up`"):
        resolve_stack_path()
    last = _write_stack(tmp_path / "last" / "stack.json", os.getpid())
    env = _write_stack(tmp_path / "env" / "stack.json", os.getpid())
    explicit = _write_stack(tmp_path / "explicit" / "stack.json", os.getpid())
    record_last_stack(last)
    assert (isolated_home / "last-stack").read_text().strip() == str(last.resolve())
    assert resolve_stack_path() == last.resolve()
    monkeypatch.setenv("DEAIOS_STACK", str(env.parent))  # a data dir works too
    assert resolve_stack_path() == env
    assert resolve_stack_path(explicit) == explicit
    stack = load_stack(explicit)
    assert stack.extra == {"future_service": {"url": "http://127.0.0.1:4"}}  # unknown keys survive
    stack.save()
    assert json.loads(explicit.read_text())["future_service"] == {"url": "http://127.0.0.1:4"}
    monkeypatch.setenv("DEAIOS_STACK", str(tmp_path / "gone"))
    with pytest.raises(click.ClickException, match="DEAIOS_STACK"):
        resolve_stack_path()
    monkeypatch.delenv("DEAIOS_STACK")
    last.unlink()
    with pytest.raises(click.ClickException, match="no longer exists"):
        resolve_stack_path()


def test_a_stack_in_the_current_directory_wins_and_is_announced(tmp_path: Path, isolated_home: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Another `deaios up` elsewhere (the last started, or $DEAIOS_STACK) never redirects a command run next to
    ./deaios-data, and an implicit choice is always said."""
    elsewhere = _write_stack(tmp_path / "elsewhere" / "stack.json", os.getpid())
    record_last_stack(elsewhere)
    monkeypatch.setenv("DEAIOS_STACK", str(elsewhere))
    here = _write_stack(tmp_path / "project" / "deaios-data" / "stack.json", os.getpid())
    monkeypatch.chdir(here.parent.parent)
    told: list[str] = []
    assert resolve_stack_path(announce=told.append) == here.resolve()
    assert len(told) == 1 and str(here.parent) in told[0] and "current directory" in told[0]
    told.clear()
    assert resolve_stack_path(elsewhere, announce=told.append) == elsewhere and told == []  # explicit: silent
    monkeypatch.chdir(tmp_path)
    assert resolve_stack_path(announce=told.append) == elsewhere and "DEAIOS_STACK" in told[0]


def test_stack_option_passes_the_loaded_stack(tmp_path: Path, isolated_home: Path) -> None:
    from deaios.cli_context import client_options

    @click.command()
    @client_options(stack_arg="stack")
    def show(stack: Stack) -> None:
        click.echo(stack.rpc)

    path = _write_stack(tmp_path / "s" / "stack.json", os.getpid())
    record_last_stack(path)
    result = CliRunner(mix_stderr=False).invoke(show, [])
    assert result.exit_code == 0 and result.stdout.strip() == "http://127.0.0.1:1"
    assert "using the stack in" in result.stderr and "last stack started" in result.stderr
    result = CliRunner().invoke(show, ["--stack", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "no such stack file" in result.output


def test_up_runs_a_compute_provider_that_bills_and_settles(stack_run, run_deaios) -> None:
    """The stack's provider broker is registered on chain; a user deposits, is matched to it, calls it twice
    and the broker settles the signed cumulative fee on chain by itself."""
    from deaios.stack.config import dev_key

    provider = stack_run.stack.extra["compute_provider"]
    assert pid_alive(provider["pid"])
    user = ["compute", "--stack", str(stack_run.dir), "--key", dev_key(19)]

    def ok(*args: str) -> dict:
        result = run_deaios(*user, *args, home=stack_run.home, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    services = run_deaios("compute", "--stack", str(stack_run.dir), "services", home=stack_run.home)
    assert provider["address"] in services.stdout and provider["url"] in services.stdout
    ok("deposit", "0.5ether")
    matched = ok("match", "--model", provider["model"], "--deposit", "0.1ether", "--wait", "20")
    assert (matched["provider"], matched["status"]) == (provider["address"], "Accepted")
    state = str(stack_run.dir / "receipts-test.json")
    total = [ok("chat", "--state-file", state, provider["address"], f"call {i}")["totalFee"] for i in (1, 2)][-1]
    assert total > 0
    assert wait_until(lambda: ok("balance", "--state-file", state)["accounts"][provider["address"]]["charged"]
                      == total, timeout=20)
    refused = run_deaios(*user, "refund", "collect", provider["address"], home=stack_run.home)
    assert refused.returncode == 2 and "error" in refused.stderr.lower()


def test_up_runs_da_nodes_and_a_blob_survives_one_killed(stack_run, tmp_path: Path) -> None:
    """`deaios up` starts 4 registered DA nodes in an active epoch; `deaios da put --stack` disperses a blob,
    one DA node is SIGKILLed, `deaios da get --stack` still returns it byte-exact."""
    from deaios.da import launch as da_launch
    from deaios.stack.launcher import service_pids

    stack = Stack.load(stack_run.dir / "stack.json")
    da_nodes = stack.extra["da_nodes"]
    assert [n["name"] for n in da_nodes] == [f"da-node-{i}" for i in range(4)]
    assert {n["name"]: n["pid"] for n in da_nodes}.items() <= service_pids(stack).items()  # `deaios down` stops them
    for node in da_nodes:
        status = rpc_call(node["url"], "da_status")
        assert status["ready"] and status["address"] == node["address"] and status["epoch"] >= 1
    src, out = tmp_path / "blob.bin", tmp_path / "copy.bin"
    data = os.urandom(150_000)
    src.write_bytes(data)
    where = ["--stack", str(stack_run.dir / "stack.json")]
    runner = CliRunner(mix_stderr=False)  # the commands in-process: one KZG setup load for both
    put = runner.invoke(main, ["da", "put", str(src), "--direct", "--workers", "1", *where])  # in-process: signers
    assert put.exit_code == 0, put.stderr
    assert json.loads(put.stdout.splitlines()[0])["signers"] == 4
    da_launch.kill(stack, 2)
    assert not pid_alive(da_nodes[2]["pid"])
    got = runner.invoke(main, ["da", "get", put.stdout.strip().splitlines()[-1], "-o", str(out), *where])
    assert got.exit_code == 0, got.stderr
    assert out.read_bytes() == data

"""The whole `deaios` command line, enumerated: every client command takes `--stack`, `--key` and `--json` after
its verb (through `deaios.cli_context`), amounts follow `deaios.units`, and bad input is one `error: …` line
with exit code 2. No stack is started: click's CliRunner, a missing stack file, a scratch home (~5 s)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from deaios.cli import main
from deaios.units import AmountType

#: Commands that are not clients of a stack: processes `deaios up` starts (with options of their own), the
#: stack itself, offline tools and benchmarks.
NOT_CLIENTS = {
    "up", "bench", "storage root", "storage node", "storage indexer", "kv node", "da node", "dashboard serve",
    "inft oracle",
}
#: A few commands each area must have as clients (so that the enumeration below cannot pass by finding none).
MUST_BE_CLIENTS = {
    "storage upload", "storage download", "kv put", "kv get", "kv ls", "da put", "da get", "compute deposit",
    "compute refund request", "compute refund collect", "market sell", "market buy", "market unlist",
    "inft mint", "inft show", "alignment buy", "alignment node", "alignment execute", "train start", "status",
    "down",
}


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every leaf command below `group` by its path, loading every lazy area."""
    ctx = click.Context(group)
    out: dict[str, click.Command] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join(prefix + (name,))} does not load"
        path = prefix + (name,)
        if " ".join(path) in NOT_CLIENTS:
            out[" ".join(path)] = command
        elif isinstance(command, click.Group):
            out.update(_walk(command, path))
        else:
            out[" ".join(path)] = command
    return out


COMMANDS = _walk(main)
CLIENTS = {path: cmd for path, cmd in COMMANDS.items() if path not in NOT_CLIENTS}


def _options(command: click.Command) -> set[str]:
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """No stack anywhere: a scratch home and working directory, no $DEAIOS_STACK/$DEAIOS_KEY."""
    monkeypatch.setenv("DEAIOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEAIOS_STACK", raising=False)
    monkeypatch.delenv("DEAIOS_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner(mix_stderr=False)


def test_the_enumeration_finds_every_area() -> None:
    missing = MUST_BE_CLIENTS - set(CLIENTS)
    assert not missing, f"not found as client commands: {missing}"
    assert len(CLIENTS) > 60


@pytest.mark.parametrize("path", sorted(CLIENTS))
def test_client_command_takes_stack_key_json_after_the_verb(path: str, runner: CliRunner) -> None:
    command = CLIENTS[path]
    assert {"--stack", "--key", "--json"} <= _options(command), f"{path}: {sorted(_options(command))}"
    result = runner.invoke(main, [*path.split(), "--stack", "x", "--key", "0x" + "11" * 32, "--json", "--help"])
    assert result.exit_code == 0, result.stderr


def _dummy_args(command: click.Command, tmp_path: Path) -> list[str]:
    """Plausible values for a command's required arguments and options (so that only the stack is wrong)."""
    some_file = tmp_path / "input.json"
    some_file.write_text("{}")
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        if isinstance(param.type, AmountType):
            value = "1ether"
        elif isinstance(param.type, (click.types.IntParamType, click.IntRange)):
            value = "1"
        elif isinstance(param.type, click.Path):
            value = str(some_file)
        elif isinstance(param.type, click.Choice):
            value = param.type.choices[0]
        else:
            value = "abc"
        if isinstance(param, click.Option):
            args += [param.opts[0], value]
        else:
            args += [value] * (1 if param.nargs == 1 else 1)
    return args


@pytest.mark.parametrize("path", sorted(CLIENTS))
def test_a_missing_stack_is_one_error_line_with_exit_2(path: str, runner: CliRunner, tmp_path: Path) -> None:
    command = CLIENTS[path]
    missing = tmp_path / "no-stack"
    result = runner.invoke(main, [*path.split(), *_dummy_args(command, tmp_path), "--stack", str(missing)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_an_unknown_option_is_one_error_line_with_exit_2(path: str, runner: CliRunner) -> None:
    result = runner.invoke(main, [*path.split(), "--no-such-option"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_client_options_do_not_collide_with_a_command_s_own_parameters() -> None:
    """`kv put STREAM KEY VALUE`: the argument KEY is not the --key option."""
    from deaios.cli_context import client_context, client_options

    seen = []

    @click.command()
    @click.argument("key")
    @client_options
    def put(key: str) -> None:
        seen.append((key, client_context().key_arg))

    assert CliRunner().invoke(put, ["AI_100"]).exit_code == 0
    assert CliRunner().invoke(put, ["AI_100", "--key", "0x12"]).exit_code == 0
    assert seen == [("AI_100", None), ("AI_100", "0x12")]


def test_options_before_the_verb_still_work(runner: CliRunner) -> None:
    """Scripts written for `deaios compute --key K deposit …` keep working; a value after the verb wins."""
    for area in ("compute", "market", "inft"):
        result = runner.invoke(main, [area, "--stack", "x", "--key", "0x" + "11" * 32, "--json",
                                      sorted(c for c in CLIENTS if c.startswith(area + " "))[0].split()[1],
                                      "--help"])
        assert result.exit_code == 0, result.stderr
    result = runner.invoke(main, ["compute", "--stack", "before", "deposit", "1ether", "--stack", "after"])
    assert result.exit_code == 2 and "after" in result.stderr and "before" not in result.stderr


AMOUNT_COMMANDS = sorted(path for path, cmd in CLIENTS.items()
                         if any(isinstance(p.type, AmountType) for p in cmd.params))


def test_every_amount_takes_units() -> None:
    """Every amount on every command is a `deaios.units` AMOUNT, and its help says what a bare number is."""
    assert {"compute deposit", "compute withdraw", "compute refund request", "market sell", "market offer",
            "market rent-out", "market bundle-list", "compute match"} <= set(AMOUNT_COMMANDS)
    for path in AMOUNT_COMMANDS:
        command = CLIENTS[path]
        for param in command.params:
            if not isinstance(param.type, AmountType):
                continue
            text = param.help if isinstance(param, click.Option) else command.help
            assert "bare number is wei" in (text or ""), f"{path} {param.name}: {text!r}"
        if any(isinstance(p, click.Argument) and isinstance(p.type, AmountType) for p in command.params):
            assert "bare number is wei" in (command.help or ""), path


@pytest.mark.parametrize("amount,message", [
    ("-1ether", "cannot be negative"), ("1.5wei", "not a whole number of wei"), ("lots", "not an amount"),
    ("2000000000ether", "not a real amount"),
])
def test_bad_amounts_are_refused_in_words(amount: str, message: str, runner: CliRunner) -> None:
    for path in ("compute deposit", "market sell 1", "compute refund request 0x" + "11" * 20):
        result = runner.invoke(main, [*path.split(), amount, "--stack", "nope"])
        assert result.exit_code == 2 and message in result.stderr, (path, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_no_area_parses_amounts_itself() -> None:
    """One parser of amounts (deaios.units): no area keeps a copy."""
    root = Path(__import__("deaios").__file__).parent
    copies = [p for p in root.rglob("*.py") if "def parse_amount" in p.read_text() and p.name != "units.py"]
    assert copies == []


def test_inft_show_writes_each_entry_under_its_file_name() -> None:
    """`inft show --decrypt -o DIR`: the description `mint` recorded (the file name by default), never a path."""
    from deaios.inft.cli import _file_names

    assert _file_names(["agent.json", "weights.bin"], 2) == ["agent.json", "weights.bin"]
    assert _file_names(["../etc/passwd", "a/b", "..", ""], 4) == ["0.bin", "1.bin", "2.bin", "3.bin"]
    assert _file_names(["same", "same"], 2) == ["same", "1-same"]

"""The KV node's configuration: which streams it serves, what happens to its index when that changes,
and bad command lines (no processes: the node objects are built, not served)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from kvutil import ALICE, S0, S1, S2, Log

from deaios.cli import main
from deaios.kv.codec import StreamData, Write
from deaios.kv.node import KvNode, KvNodeConfig
from deaios.kv.replay import StreamConfig

FLOW = "0x" + "11" * 20


def replayed(directory: Path, config: StreamConfig) -> None:
    log = Log(directory, config)
    log.index.set_config(config.to_json())
    assert log.submit(ALICE, StreamData(writes=[Write(S0, b"k", b"v")])) == "Commit"
    log.index.close()


def node(directory: Path, streams: StreamConfig, chain: bool = True) -> KvNode:
    return KvNode(KvNodeConfig(directory, "127.0.0.1", 1, "http://127.0.0.1:1" if chain else None,
                               FLOW if chain else None, ["http://127.0.0.1:2"] if chain else [], 0, streams))


def test_stream_config_parsing() -> None:
    assert StreamConfig.parse("all").ids is None and StreamConfig.parse(None).ids is None
    config = StreamConfig.parse(f"0x{S0.hex()}, 0x{S1.hex()}")
    assert config.ids == {S0, S1} and config.serves(S1) and not config.serves(S2)
    assert StreamConfig.from_json(config.to_json()) == config
    assert config.describe() == sorted(["0x" + S0.hex(), "0x" + S1.hex()])
    for bad in ("", "0x12", S0.hex(), "0x" + "zz" * 32):
        with pytest.raises(ValueError):
            StreamConfig.parse(bad)


def test_serving_a_new_stream_replays_from_the_start(tmp_path: Path) -> None:
    replayed(tmp_path / "kv", StreamConfig(frozenset({S0, S1})))
    kept = node(tmp_path / "kv", StreamConfig(frozenset({S0})))  # a subset: the index stays
    assert kept.index.progress() == 1
    kept.index.close(), kept.txlog.close()
    reset = node(tmp_path / "kv", StreamConfig(frozenset({S0, S2})))  # S2 is new: replay everything again
    assert reset.index.progress() == 0 and reset.index.config()["ids"] == sorted(["0x" + S0.hex(), "0x" + S2.hex()])
    reset.index.close(), reset.txlog.close()
    replayed(tmp_path / "all", StreamConfig())
    everything = node(tmp_path / "all", StreamConfig(frozenset({S2})))  # "all" covers any list
    assert everything.index.progress() == 1


def test_a_node_without_chain_serves_the_index_as_replayed(tmp_path: Path) -> None:
    replayed(tmp_path / "kv", StreamConfig(frozenset({S0})))
    snapshot = node(tmp_path / "kv", StreamConfig(), chain=False)  # never wipes, takes the stored streams
    assert snapshot.index.progress() == 1 and snapshot.config.streams.ids == {S0}
    assert snapshot.status()["logSyncHeight"] is None


def test_bad_command_lines_exit_2() -> None:
    runner = CliRunner()
    cases = [
        (["kv", "node", "--dir", "x", "--port", "1", "--chain-rpc", "http://h", "--flow", "0x12", "--nodes", "http://n"],
         "--flow"),
        (["kv", "node", "--dir", "x", "--port", "1", "--chain-rpc", "http://h", "--flow", FLOW], "--nodes"),
        (["kv", "node", "--dir", "x", "--port", "1", "--flow", FLOW], "need --chain-rpc"),
        (["kv", "node", "--dir", "x", "--port", "1", "--streams", "0x12"], "--streams"),
        (["kv", "node", "--dir", "x", "--port", "1", "--chain-rpc", "http://h", "--flow", FLOW, "--nodes", "ftp://n"],
         "--nodes"),
        (["up", "--kv-streams", "nope", "--dir", "never-created"], "--kv-streams"),
    ]
    for args, message in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert not Path("never-created").exists() and not Path("x").exists()

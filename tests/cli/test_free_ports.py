"""Listening ports handed to services: never the same port twice while it may still be waiting for its service to
bind, across processes (parallel test areas start stacks side by side: a kv node once lost its port this way)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from deaios import procs


@pytest.fixture
def small_range(tmp_path, monkeypatch: pytest.MonkeyPatch) -> range:
    monkeypatch.setattr(procs, "PORT_LEDGER", tmp_path / "ports.json")
    ports = range(29100, 29106)
    monkeypatch.setattr(procs, "LISTEN_PORTS", ports)
    return ports


def test_ports_handed_out_are_not_handed_out_again(small_range: range) -> None:
    first = procs.free_ports("127.0.0.1", 4)
    second = procs.free_ports("127.0.0.1", 2)
    assert len(set(first)) == 4 and not set(first) & set(second)
    assert set(first) | set(second) <= set(small_range)
    with pytest.raises(OSError, match="fewer than 1 free ports"):
        procs.free_ports("127.0.0.1", 1)  # every port is held (its service may not listen yet)


def test_another_process_sees_the_ports_held(small_range: range, tmp_path) -> None:
    mine = procs.free_ports("127.0.0.1", 3)
    code = (f"from pathlib import Path; from deaios import procs; procs.PORT_LEDGER = Path({str(procs.PORT_LEDGER)!r}); "
            f"procs.LISTEN_PORTS = range({small_range.start}, {small_range.stop}); "
            "import json; print(json.dumps(procs.free_ports('127.0.0.1', 3)))")
    theirs = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert not set(mine) & set(theirs)


def test_held_ports_expire(small_range: range, monkeypatch: pytest.MonkeyPatch) -> None:
    procs.free_ports("127.0.0.1", 6)
    monkeypatch.setattr(procs, "PORT_HOLD", 0.0)
    assert len(procs.free_ports("127.0.0.1", 6)) == 6  # expired: free again (nothing listens on them)

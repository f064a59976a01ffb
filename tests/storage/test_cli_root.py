"""`deaios storage root` as a user runs it: a real process, JSON lines on stdout, exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deaios.storage.merkle import FileMerkleTree


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deaios.cli", "storage", "root", *args],
                          capture_output=True, text=True, timeout=60)


def test_prints_one_json_line_per_file(tmp_path: Path) -> None:
    sizes = [1, 257, 262_145]
    paths = []
    for size in sizes:
        path = tmp_path / f"f{size}"
        path.write_bytes(bytes(range(256)) * (size // 256) + b"\x07" * (size % 256))
        paths.append(path)
    result = run("--tags", "0xabcd", *map(str, paths))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["size"] for line in lines] == sizes
    for path, line in zip(paths, lines):
        tree = FileMerkleTree.from_path(path)
        assert line == {"path": str(path), "size": tree.size, "root": "0x" + tree.root.hex(),
                        "submission": tree.submission(b"\xab\xcd").to_json()}
    assert [len(line["submission"]["nodes"]) for line in lines] == [1, 1, 2]


def test_missing_file_exits_2_with_message(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing.bin"))
    assert result.returncode == 2
    assert "missing.bin" in result.stderr and "No such file" in result.stderr
    assert result.stdout == ""


def test_empty_file_directory_and_bad_tags_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for args, message in [((str(empty),), "empty file"), ((str(tmp_path),), "directory"),
                          (("--tags", "0xzz", str(empty)), "--tags must be hex")]:
        result = run(*args)
        assert result.returncode == 2, args
        assert message in result.stderr


def test_no_arguments_is_a_usage_error() -> None:
    assert run().returncode == 2

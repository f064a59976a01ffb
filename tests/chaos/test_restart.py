"""Graceful shutdown and restart: `deaios down`, then `deaios up` on the same data directory, keeps what every
area stored — a file in the storage network, a KV value, a DA blob, a compute ledger, an INFT and its encrypted
data — read back byte-exact after the restart (with the CLI, as a user would).

Its own stack (it stops it): runs before the shared one starts (conftest.ORDER).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from chaos_helpers import START_TIMEOUT, Case, Chaos

from deaios.kv.client import stream_id
from deaios.stack.process import running_stack


def test_down_then_up_keeps_everything(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    data, home = tmp_path / "data", tmp_path / "home"
    file, blob, secret = tmp_path / "file.bin", tmp_path / "blob.bin", tmp_path / "agent.bin"
    file.write_bytes(rng.randbytes(3_000_000))
    blob.write_bytes(rng.randbytes(200_000))
    secret.write_bytes(rng.randbytes(50_000))
    stream = "0x" + stream_id(f"restart-{seed}").hex()
    value = rng.randbytes(4096).hex()
    with Case("restart: `deaios down`, then `deaios up` on the same directory",
              f"a graceful stop of the whole stack and a start on its data directory (seed {seed})") as case:
        with running_stack(data, nodes=10, home=home, start_timeout=START_TIMEOUT) as run:
            chaos = Chaos(run, tmp_path)
            root = chaos("storage", "upload", str(file))["root"]
            chaos("kv", "put", stream, "model", "0x" + value)
            ref = chaos.raw("da", "put", str(blob), timeout=600)
            assert ref.returncode == 0, ref.stderr[-3000:]
            ref_text = ref.stdout.strip().splitlines()[-1]  # the blob reference is the last line
            chaos("compute", "deposit", "0.25ether")
            ledger = chaos("compute", "balance")
            token = chaos("inft", "mint", str(secret), "--description", "agent weights")
            token_id = int(token.get("tokenId", token.get("token_id", -1)))
            assert token_id >= 0, token
            owner = chaos("inft", "show", str(token_id))["owner"]
            height = chaos.stack.extra.get("deploy_block")
        stopped = time.monotonic()
        with running_stack(data, nodes=10, home=home, start_timeout=START_TIMEOUT) as run:
            chaos = Chaos(run, tmp_path)
            restarted = time.monotonic() - stopped
            assert chaos.stack.extra.get("deploy_block") == height  # the same chain and contracts, not a new deploy
            out = tmp_path / "file.out"
            chaos("storage", "download", root, "-o", str(out))
            assert out.read_bytes() == file.read_bytes()
            case.checked("3 MB file", file.stat().st_size)
            got = chaos.raw("kv", "get", stream, "model")
            assert got.returncode == 0 and got.stdout.strip() == "0x" + value, got.stderr[-2000:]
            case.checked("4 KiB KV value", 4096)
            copy = tmp_path / "blob.out"
            fetched = chaos.raw("da", "get", ref_text, "-o", str(copy), timeout=600)
            assert fetched.returncode == 0, fetched.stderr[-3000:]
            assert copy.read_bytes() == blob.read_bytes()
            case.checked("200 kB DA blob", blob.stat().st_size)
            assert chaos("compute", "balance") == ledger
            case.checked("compute ledger (balance, sub-accounts) equal", 0)
            shown = chaos("inft", "show", str(token_id), "--decrypt", "-o", str(tmp_path / "plain"))
            assert shown["owner"] == owner
            assert Path(shown["files"][0]).read_bytes() == secret.read_bytes()
            case.checked(f"INFT {token_id}: owner and decrypted data", secret.stat().st_size)
        case.notes = f"the second `deaios up` took {restarted:.0f} s"

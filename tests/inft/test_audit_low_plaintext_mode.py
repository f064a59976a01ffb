"""Audit low (off-chain): `deaios inft show --decrypt -o DIR` wrote the decrypted agent data world-readable
(mode 0644 under the usual umask), so any other user of the machine could read what the token protects.

The chain and storage are replaced by stand-ins here (the end-to-end test runs the real path on a stack);
what is checked is the file the command writes."""

from __future__ import annotations

import os
import stat

from click.testing import CliRunner

OWNER = "0x" + "11" * 20


def test_decrypted_files_are_private(tmp_path, monkeypatch):
    from deaios.cli import main
    from deaios.inft import cli, flows

    class Chain:
        address = OWNER

        def token_info(self, token_id: int) -> dict:
            return {"tokenId": token_id, "owner": OWNER, "datas": []}

    async def read(*args, **kwargs) -> list[bytes]:
        return [b"the agent's secret prompt"]

    monkeypatch.setattr(cli.Ctx, "chain", lambda self, key=None: Chain())
    monkeypatch.setattr(cli.Ctx, "storage", lambda self, key=None: None)
    monkeypatch.setattr(cli.Ctx, "x25519_keys", lambda self, address, path=None: (None, None))
    monkeypatch.setattr(flows, "read", read)
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(main, ["inft", "show", "1", "--decrypt", "-o", str(tmp_path / "out")])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    written = tmp_path / "out" / "0.bin"
    assert written.read_bytes() == b"the agent's secret prompt"
    assert stat.S_IMODE(written.stat().st_mode) & 0o077 == 0, oct(written.stat().st_mode)

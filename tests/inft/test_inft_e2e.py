"""ERC-7857 end to end on a real local stack (`deaios up --nodes 4`: it deploys the INFT contracts and runs the
oracle as its own process): mint encrypted metadata through the CLI, the receiver signs access proofs, the
owner transfers through the oracle, the receiver decrypts the metadata byte-exact, and the old owner's sealed
key does not open the new ciphertext."""

from __future__ import annotations

import asyncio
import json
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from deaios.cli import main
from deaios.inft import crypto, flows
from deaios.inft.chain import InftAddresses, InftChain
from deaios.stack.config import DEV_KEY_ROLES, dev_key
from deaios.stack.process import RunningStack, running_stack
from eth_account import Account

ORACLE = Account.from_key(dev_key(DEV_KEY_ROLES["INFT oracle"]))  # type: ignore[arg-type]
RECEIVER = Account.from_key(dev_key(DEV_KEY_ROLES["demo users"][0]))  # type: ignore[index]
METADATA = json.dumps(
    {"name": "agent-007", "model": "qwen2.5-0.5b", "prompt": "be helpful", "weights": "x" * 3000}
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("inftstack")
    with running_stack(base / "data", nodes=4, home=base / "home") as running:
        yield running


@pytest.fixture(scope="module")
def oracle(run: RunningStack) -> str:
    """The stack's oracle, signing with the key the stack's DataVerifier trusts."""
    url = run.stack.extra["inft_oracle"]
    with urllib.request.urlopen(url + "/info", timeout=5) as resp:
        assert json.load(resp)["signer"] == ORACLE.address
    return url


def cli(run: RunningStack, *args: str, exit_code: int = 0) -> Any:
    """`deaios inft --stack … ARGS` in process (click's runner: no interpreter start-up); the last JSON line, or
    the result when `exit_code` is not 0."""
    result = CliRunner().invoke(
        main,
        ["inft", "--stack", str(run.stack.path), *args],
        env={"DEAIOS_HOME": str(run.home), "DEAIOS_KEY": None},
    )
    assert result.exit_code == exit_code, (result.output, result.exception)
    return json.loads(result.output.strip().splitlines()[-1]) if exit_code == 0 else result


def test_mint_transfer_decrypt(run: RunningStack, oracle: str, tmp_path: Path) -> None:
    stack = run.stack
    source = tmp_path / "agent.json"
    source.write_text(METADATA)
    minted = cli(run, "mint", str(source), "--description", "agent config")
    token = minted["tokenId"]
    old_hash = minted["datas"][0]["dataHash"]
    proof_file = tmp_path / "access.json"
    as_receiver = ("--key", RECEIVER.key.hex())
    signed = cli(run, *as_receiver, "access-proof", str(token), "-o", str(proof_file))
    keygen = cli(run, *as_receiver, "keygen")
    assert keygen["x25519PublicKey"] == signed["x25519PublicKey"] and keygen["address"] == RECEIVER.address
    moved = cli(
        run,
        "--oracle",
        oracle,
        "transfer",
        str(token),
        "--to",
        RECEIVER.address,
        "--access-proof",
        str(proof_file),
    )
    assert moved["to"] == RECEIVER.address and moved["newDataHashes"][0] != old_hash
    shown = cli(run, "--key", RECEIVER.key.hex(), "show", str(token), "--decrypt")
    assert shown["owner"] == RECEIVER.address
    assert shown["datas"][0]["dataHash"] == moved["newDataHashes"][0]
    assert shown["plaintext"] == [METADATA]

    # byte-exact, and the old owner's key no longer opens the new ciphertext
    home = run.home
    sender = Account.from_key(stack.private_key).address
    sender_keys = crypto.load_or_create_keys(crypto.default_key_path(home, sender), create=False)
    receiver_keys = crypto.load_or_create_keys(crypto.default_key_path(home, RECEIVER.address), create=False)
    chain = InftChain(stack.rpc, InftAddresses.from_mapping(stack.contracts))
    storage = flows.Storage(stack.node_urls, stack.rpc, stack.flow, None)

    async def check() -> None:
        async with aiohttp.ClientSession() as session:
            assert await flows.read(session, chain, storage, token, receiver_keys) == [METADATA.encode()]
            old_key = flows.data_keys(chain, sender, token, sender_keys)[0]
            new_blob = await storage.get(session, bytes.fromhex(moved["newDataHashes"][0][2:]))
            with pytest.raises(crypto.CryptoError):
                crypto.decrypt_data(old_key, new_blob)
            with pytest.raises(flows.InftFlowError):  # nothing was ever sealed to the sender for the new data
                await flows.read(session, chain, storage, token, sender_keys, owner=RECEIVER.address)
            # the oracle refuses a key that does not open the data (a request signed by the owner, with the
            # receiver's valid access proofs: only the key is wrong)
            oracle_pub = await flows.oracle_public_key(session, oracle, chain)
            as_owner = InftChain(stack.rpc, InftAddresses.from_mapping(stack.contracts), RECEIVER.key.hex())
            access = flows.access_proofs(as_owner, token, stack.private_key, sender_keys.public)
            new_hash = bytes.fromhex(moved["newDataHashes"][0][2:])
            bad = flows.reencrypt_request(as_owner, token, sender, sender_keys.public,
                                          [(new_hash, crypto.seal(oracle_pub, old_key))], access)
            async with session.post(oracle + "/reencrypt", json=bad) as resp:
                assert resp.status == 400 and "does not open" in (await resp.json())["error"]

    asyncio.run(check())

    # the old owner can no longer move it; the new owner authorizes a user (cleared on the next transfer)
    again = cli(
        run,
        "--oracle",
        oracle,
        "transfer",
        str(token),
        "--receiver-key",
        RECEIVER.key.hex(),
        exit_code=2,
    )
    assert "not to you" in again.output
    user = Account.from_key(dev_key(DEV_KEY_ROLES["demo users"][1])).address  # type: ignore[index]
    authorized = cli(run, "--key", RECEIVER.key.hex(), "authorize", str(token), user)
    assert authorized["authorizedUsers"] == [user]

    # clone back to the original owner: both now read the same metadata, each with its own key
    sender_key = stack.private_key
    cloned = cli(
        run,
        "--key",
        RECEIVER.key.hex(),
        "--oracle",
        oracle,
        "clone",
        str(token),
        "--receiver-key",
        sender_key,
    )
    copy = cli(run, "show", str(cloned["newTokenId"]), "--decrypt", "-o", str(tmp_path / "out"))
    assert copy["owner"] == sender and (tmp_path / "out" / "0.bin").read_bytes() == METADATA.encode()
    assert stat.S_IMODE((tmp_path / "out" / "0.bin").stat().st_mode) == 0o600  # plaintext: owner only

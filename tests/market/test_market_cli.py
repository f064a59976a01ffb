"""`deaios market …` against the contracts on ape's Anvil (through --rpc/--deployment and a local key), the
abi.json export, and the CLI's parsers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from deaios.errors import UserError
from deaios.inft.proofs import AccessProof, OwnershipProof
from deaios.market.abi import ABI_FILE, render
from deaios.market.cli import market as market_cli
from deaios.market.cli import parse_duration, proofs_from_json
from market_helpers import ORACLE_KEY, TARGET_PUBKEY, context, mint

ROOT = Path(__file__).resolve().parents[2]


def test_abi_file_is_current():
    assert ABI_FILE.read_text() == render(ROOT / ".build" / "__local__.json"), (
        "run `python -m deaios.market.abi` after `ape compile`"
    )


def test_parse_duration():
    assert [parse_duration(x) for x in ("90", "90s", "30m", "12h", "7d")] == [90, 90, 1800, 43_200, 604_800]
    for bad in ("", "0", "-5", "1.5h", "abc", "5w"):
        with pytest.raises(UserError):
            parse_duration(bad)


def _settle_components(market) -> list[dict]:
    settle = next(a for a in market.contract_type.abi if getattr(a, "name", "") == "settle")
    return settle.model_dump(mode="json")["inputs"][1]["components"]


def test_proofs_from_json_checks_shape(market):
    components = _settle_components(market)
    with pytest.raises(UserError, match="non-empty JSON list"):
        proofs_from_json({}, components)
    with pytest.raises(UserError, match="lacks"):
        proofs_from_json([{"accessProof": {}}], components)
    with pytest.raises(UserError, match="0x-hex"):
        access = {"dataHash": "zz", "targetPubkey": "0x", "nonce": "0x", "proof": "0x"}
        proofs_from_json([{"accessProof": access, "ownershipProof": {}}], components)


@pytest.fixture
def cli(deployment, chain, tmp_path):
    path = tmp_path / "local-market.json"
    path.write_text(json.dumps(deployment))
    runner = CliRunner()

    def run(key: str, *args: str, code: int = 0) -> list[dict] | str:
        """JSON lines of a successful command, else the error output."""
        result = runner.invoke(
            market_cli, ["--rpc", chain.provider.uri, "--deployment", str(path), "--key", key, *args]
        )
        assert result.exit_code == code, (result.output, result.exception)
        if code:
            return result.output
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    return run


def test_cli_sell_buy_settle_withdraw_offer(cli, nft, creator, seller, buyer, tmp_path):
    token = mint(nft, creator, seller)
    s, b = seller.private_key, buyer.private_key
    assert cli(s, "sell", str(token), "0.001ether", "--expires-in", "1h")[0]["listing"] == 1
    listed = cli(s, "list")
    shown = [(x["kind"], x["id"], x["token_id"], x["price"]) for x in listed]
    assert shown == [("listing", 1, token, 10**15)]
    bought = cli(b, "buy", "1")[0]
    assert (bought["status"], bought["buyer"], bought["price"]) == ("pending", buyer.address, 10**15)
    # the oracle's proofs for the buyer, as JSON objects
    data_hash = bytes(nft.intelligentDatasOf(token)[0].dataHash)
    ctx = context(nft, token, seller.address, buyer.address)
    access = AccessProof.create(b, ctx, data_hash, TARGET_PUBKEY)
    own = OwnershipProof.create(ORACLE_KEY, ctx, data_hash, b"\x01" * 32, b"sealed", TARGET_PUBKEY)
    proofs = tmp_path / "proofs.json"
    proofs.write_text(json.dumps([{"accessProof": access.to_json(), "ownershipProof": own.to_json()}]))
    settled = cli(s, "settle", str(bought["id"]), "--proofs", str(proofs))[0]
    assert settled["sellerProceeds"] + settled["royalty"] == 10**15
    assert nft.ownerOf(token) == buyer
    assert cli(s, "credits")[0]["credits"] == settled["sellerProceeds"]
    assert cli(s, "withdraw")[0]["withdrawn"] == settled["sellerProceeds"]
    # the buyer now owns it; the old seller bids for it back
    offer = cli(s, "offer", str(token), "5000")[0]
    assert (offer["kind"], offer["status"], offer["amount"]) == ("offer", "open", 5000)
    assert cli(s, "withdraw-offer", str(offer["id"]))[0]["status"] == "withdrawn"


def test_cli_bad_input_exits_2(cli, seller):
    cli(seller.private_key, "sell", "1", "lots", code=2)
    cli(seller.private_key, "sell", "1", "5", "--expires-in", "soon", code=2)
    assert "ListingNotActive(listingId=999)" in cli(seller.private_key, "buy", "999", code=2)
    assert "NothingToWithdraw" in cli(seller.private_key, "withdraw", code=2)

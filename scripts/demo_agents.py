"""`make demo`, AI agents step: an ERC-7857 agent whose encrypted metadata lives in the storage network is
sold on the marketplace and re-encrypted for its buyer by the oracle — driven through the `deaios` CLI, as a
user would.

creator mints the agent (metadata AES-GCM-encrypted, stored as a 0G file; the key sealed to the creator's
X25519 key) → lists it for 1 ETH → the buyer pays into the market's escrow → the buyer signs access proofs
→ the creator has the oracle re-encrypt for the buyer (`deaios inft proofs`) → anyone settles the purchase
with those proofs (the market calls iTransferFrom) → the buyer decrypts the metadata byte-exact, the
creator's old key no longer opens it; price == seller proceeds + ERC-2981 royalty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
from demo_cli import DeaiosCli
from rich.console import Console

from deaios.stack.config import DEV_KEY_ROLES, Stack, dev_key

PRICE = "1ether"


def run(stack: Stack, console: Console, show: Callable[[str, dict[str, object]], None], work: Path,
        metadata: dict[str, object], buyer_index: int = DEV_KEY_ROLES["demo users"][1]) -> None:  # type: ignore[index]
    deaios = DeaiosCli(stack, work / "home")
    buyer_key = dev_key(buyer_index)

    console.rule("ERC-7857 agent: mint → sell on the marketplace → oracle re-encryption → settle")
    source = work / "agent.json"
    source.write_text(json.dumps(metadata))
    minted = deaios("inft", "mint", str(source), "--description", "agent card")
    token = str(minted["tokenId"])
    show("deaios inft mint", {"token": token, "creator": minted["owner"],
                              "data hash (0G root of the ciphertext)": minted["datas"][0]["dataHash"]})
    listing = deaios("market", "sell", token, PRICE)
    purchase = deaios("market", "buy", str(listing["listing"]), key=buyer_key)
    show("deaios market sell / buy", {"listing": listing["listing"], "price (wei)": listing["price"],
                                      "purchase": purchase["id"], "buyer": purchase["buyer"],
                                      "status": purchase["status"] + " (price in escrow)"})
    access = work / "access-proof.json"
    deaios("inft", "access-proof", token, "-o", str(access), key=buyer_key)
    proofs = work / "proofs.json"
    deaios("inft", "proofs", token, "--access-proof", str(access), "-o", str(proofs))
    settled = deaios("market", "settle", str(purchase["id"]), "--proofs", str(proofs))
    shown = deaios("inft", "show", token, "--decrypt", "-o", str(work / "bought"), key=buyer_key)
    plain = Path(shown["files"][0]).read_bytes()
    old_owner = deaios.raw("inft", "show", token, "--decrypt", "-o", str(work / "old"))
    adds_up = settled["sellerProceeds"] + settled["royalty"] == int(listing["price"])
    show("settled through the oracle-proof path", {
        "owner now": shown["owner"], "new data hash": shown["datas"][0]["dataHash"],
        "buyer decrypts byte-exact": plain == source.read_bytes(),
        "creator's old key": f"refused (exit {old_owner.returncode})",
        "seller proceeds + royalty == price": f"{settled['sellerProceeds']} + {settled['royalty']} == "
                                             f"{listing['price']}: {adds_up}",
        "settle gas": settled["gasUsed"]})
    withdrawn = deaios("market", "withdraw")
    show("deaios market withdraw (pull payment)", {"creator/seller withdrew (wei)": withdrawn["withdrawn"]})
    if plain != source.read_bytes() or old_owner.returncode == 0 or not adds_up:
        raise click.ClickException("the agent sale did not end as it should")

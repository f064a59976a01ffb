"""`ape run demo_flow`: the storage log layer alone (no storage nodes) on a local Anvil.

Deploys the storage contracts with the project's deploy function, computes the 0G submission of a
file (FILE=..., or a generated sample), submits it paying the market fee, and prints the transaction,
the Submit event's fields and the resulting flow root. ape-foundry starts Anvil for the run and stops
it when the script returns.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from deaios.deployment import load_script
from deaios.storage.merkle import FileMerkleTree

# not `from scripts.deploy import …`: ape runs scripts.deploy with runpy, which warns (RuntimeWarning) on every
# `ape run` when another script has imported it as a module already
deploy_storage = load_script("deploy").deploy_storage

SAMPLE_SIZE = 1_000_000  # ~1 MB: a 4-segment file, so the demo shows a real merkle tree


def sample_file(directory: Path) -> Path:
    """A deterministic pseudo-random sample file (same bytes, same root, every run)."""
    path = directory / "sample.bin"
    path.write_bytes(random.Random(0x0DEA105).randbytes(SAMPLE_SIZE))
    return path


def show(title: str, fields: dict[str, object]) -> None:
    click.secho(title, bold=True)
    for key, value in fields.items():
        click.echo(f"  {key:<18} {value}")


@click.command(cls=ConnectedProviderCommand)
@click.option("--file", "file_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File to submit (default: a generated 1 MB sample).")
@click.option("--tags", default="0x", show_default=True, help="Submission tags as hex.")
def cli(file_path: Path | None, tags: str) -> None:
    """Deploy Flow + market, submit a file's 0G submission with the fee, print the result."""
    deployer = accounts.test_accounts[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = file_path or sample_file(Path(tmp))
        addresses = deploy_storage(deployer, project)
        show("Deployed storage contracts", {k: v for k, v in addresses.items() if k in ("flow", "market")})

        tree = FileMerkleTree.from_path(path)
        submission = tree.submission(bytes.fromhex(tags.removeprefix("0x")))
        show("File", {"path": path, "size": tree.size, "root": "0x" + tree.root.hex()})
        click.echo("  submission         " + json.dumps(submission.to_json()))

    flow = project.Flow.at(addresses["flow"])
    market = project.FixedPriceMarket.at(addresses["market"])
    fee = submission.sectors * market.pricePerSector()
    receipt = flow.submit(submission.as_abi(deployer.address), sender=deployer, value=fee)
    show("Transaction", {"hash": receipt.txn_hash, "block": receipt.block_number,
                         "gas used": receipt.gas_used, "fee paid (wei)": fee})

    event = next(iter(receipt.events.filter(flow.Submit)))
    data_length, _tags, data_nodes = event.submission  # ape decodes the event's struct as a sequence
    show("Submit event", {
        "sender": event.sender,
        "identity": "0x" + bytes(event.identity).hex(),
        "submissionIndex": event.submissionIndex,
        "startPos": event.startPos,
        "length (sectors)": event.length,
        "data.length": data_length,
        "data.nodes": [("0x" + bytes(root).hex(), height) for root, height in data_nodes],
    })
    show("Flow", {
        "flow root": "0x" + bytes(flow.getFlowRootByTxSeq(event.submissionIndex)).hex(),
        "submissions": flow.numSubmissions(),
        "market balance": chain.provider.get_balance(market.address),
    })

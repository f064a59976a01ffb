"""`make demo`: the storage network end to end, as a user would drive it.

1. `deaios up`: Anvil, every area's contracts (`ape run deploy --all-areas`), 10 storage nodes, the indexer,
   the KV node, 4 DA nodes, the DA disperser, the OP alt-DA server, the Nitro DA provider, a compute provider,
   the INFT oracle;
2. a file (FILE=..., or a generated 1 MB sample): its 0G root and submission;
3. upload: Flow.submit paying the market fee, then erasure shares to every node; the transaction, the
   Submit event's fields and the flow root;
4. KV: write the model record AI_100 = {name, path: "log://<root>", size} to a stream (one KV
   transaction in the log, replayed by the KV node) and read it back by key;
5. SIGKILL 30 % of the storage nodes (chosen at random);
6. download the model through the record's path from the survivors, every segment's merkle proof
   verified; compare with the original;
7. DA: disperse a 1 MB blob to the DA nodes (fee, BLS signatures, verified on chain), SIGKILL one, retrieve
   the blob byte-exact from the other three; then a rollup batch through the OP alt-DA server and one through
   the Nitro DA provider (scripts/demo_rollup.py), both read back byte-exact with that DA node down;
8. compute market (scripts/demo_compute.py): deposit → match → 3 signed inference calls → settlement →
   refund after the lock, balances at each step;
9. an ERC-7857 agent pointing at the model (scripts/demo_agents.py): minted with encrypted metadata, sold
   on the marketplace, re-encrypted for the buyer by the oracle, settled with its proofs;
10. alignment nodes (scripts/demo_alignment.py): an operator with 3 licenses challenges every storage and DA
    node for one epoch; the killed DA node is flagged on chain, the licenses earn the epoch's reward;
11. DiLoCoX training (scripts/demo_training.py): 3 workers, a few rounds through the storage log and KV, one
    worker SIGKILLed mid-run, the model registered in KV as AI_<job>, a sample generated from it;
12. `deaios status`: every process (the killed nodes down) and what the network now holds — the same
    picture as the dashboard `deaios up` serves (its URL is printed at the start: open it while the demo runs);
13. `deaios down`.

Run with `make demo` (or `.venv/bin/python scripts/demo.py [--file F] [--nodes N]`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

import demo_agents
import demo_alignment
import demo_compute
import demo_rollup
import demo_training
from deaios.kv import Client, stream_id
from deaios.stack.config import Stack
from deaios.stack.launcher import stop_stack
from deaios.storage.client import StorageClient
from deaios.storage.flow_client import FlowClient
from deaios.storage.merkle import FileMerkleTree

console = Console()
SAMPLE_SIZE = 1_000_000


def show(title: str, rows: dict[str, object]) -> None:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows.items():
        table.add_row(f"[bold]{key}[/]", str(value))
    console.print(table)


def start_stack(data_dir: Path, nodes: int) -> tuple[subprocess.Popen, Stack]:
    console.rule(f"deaios up --nodes {nodes}")
    proc = subprocess.Popen([sys.executable, "-m", "deaios.cli", "up", "--nodes", str(nodes), "--dir", str(data_dir)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        raise click.ClickException(f"`deaios up` exited with code {proc.wait()} before the stack was up")
    return proc, Stack.from_json(json.loads(line), data_dir / "stack.json")


@click.command()
@click.option("--file", "file_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File to store (default: a generated 1 MB sample).")
@click.option("--nodes", default=10, show_default=True, type=click.IntRange(4, 64))
def main(file_path: Path | None, nodes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="deaios-demo-") as tmp:
        work = Path(tmp)
        proc, stack = start_stack(work / "data", nodes)
        try:
            run_demo(stack, file_path, work)
        finally:
            console.rule("deaios down")
            stop_stack(Stack.load(work / "data" / "stack.json"), log=console.print)
            proc.wait(timeout=60)
            console.print("every process of the stack has exited")


def run_demo(stack: Stack, file_path: Path | None, work: Path) -> None:
    show("Stack", {"chain": f"{stack.rpc} (chain id {stack.chain_id})", "Flow": stack.flow,
                   "market": stack.market, "indexer": stack.indexer,
                   "storage nodes": f"{len(stack.node_urls)} ({stack.node_urls[0]} …)",
                   "KV node": stack.extra["kv"]["url"],
                   "dashboard": f"{stack.extra['dashboard']['url']} (open it in a browser while the demo runs)"})
    if file_path is None:
        file_path = work / "sample.bin"
        file_path.write_bytes(random.Random(0x0DEA105).randbytes(SAMPLE_SIZE))
    console.rule(f"file {file_path}")
    tree = FileMerkleTree.from_path(file_path)
    show("0G file", {"size": tree.size, "segments": tree.num_segments, "root": "0x" + tree.root.hex(),
                     "submission nodes": json.dumps(tree.submission().to_json()["nodes"])})

    console.rule("deaios storage upload")
    out = work / "downloaded.bin"

    async def upload_then_download() -> str:
        async with aiohttp.ClientSession() as session:
            client = StorageClient(session, stack.node_urls, stack.rpc, stack.flow, stack.private_key)
            with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          console=console) as bar:
                task = bar.add_task("upload", total=tree.size)
                uploaded = await client.upload(file_path, b"", lambda n: bar.advance(task, n), bar.console.print)
            show_submission(stack, uploaded.tx_hash)

            console.rule("deaios kv: the model record AI_100")
            kv = Client.from_stack(stack, session)
            models = stream_id("deaios/models")
            record = {"name": file_path.name, "path": f"log://{uploaded.root}", "size": tree.size}
            put = await kv.put(models, "AI_100", json.dumps(record))
            if not put.ok:
                raise click.ClickException(f"the KV write was rejected: {put.result}")
            started = time.perf_counter()
            entry = await kv.get(models, "AI_100")
            read_ms = (time.perf_counter() - started) * 1e3
            if entry is None or json.loads(entry.value) != record:
                raise click.ClickException("AI_100 did not read back as written")
            root = json.loads(entry.value)["path"].removeprefix("log://")
            show("KV", {"stream": "0x" + models.hex(), "key": "AI_100", "tx seq": put.seq, "result": put.result,
                        "read back": entry.value.decode(), "version": entry.version,
                        "kv_getValue (ms)": f"{read_ms:.2f}", "model root (from the path)": root})

            victims = sorted(random.sample(range(len(stack.node_urls)), (3 * len(stack.node_urls) + 9) // 10))
            console.rule(f"kill -9 storage nodes {victims} (30 %)")
            for i in victims:
                os.kill(stack.storage_nodes[i]["pid"], signal.SIGKILL)
            time.sleep(0.5)

            console.rule("deaios storage download")
            survivors = StorageClient(session, stack.node_urls)
            with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          console=console) as bar:
                task = bar.add_task("download", total=tree.size)
                downloaded = await survivors.download(root, out, lambda n: bar.advance(task, n))
            original, copy = file_path.read_bytes(), out.read_bytes()
            show("Download", {"from": f"{len(stack.node_urls) - len(victims)} live nodes",
                              "seconds": f"{downloaded.seconds:.3f}",
                              "sha256 original": hashlib.sha256(original).hexdigest(),
                              "sha256 downloaded": hashlib.sha256(copy).hexdigest(),
                              "byte-exact": original == copy,
                              "first bytes": copy[:24].hex()})
            if original != copy:
                raise click.ClickException("the downloaded file differs from the original")
            return root

    model_root = asyncio.run(upload_then_download())
    demo_da(stack, work)
    demo_rollup.run(stack, console, show)
    demo_compute.run(stack, console, show)
    demo_agents.run(stack, console, show, work, {"name": "AI_100 agent", "model": f"log://{model_root}",
                                                 "system prompt": "You are a helpful 0G agent."})
    demo_alignment.run(stack, console, show, work)
    demo_training.run(stack, console, show, work)
    console.rule("deaios status")
    subprocess.run([sys.executable, "-m", "deaios.cli", "status", "--stack", str(stack.path)], check=True)


def demo_da(stack: Stack, work: Path) -> None:
    """DA: disperse a 1 MB blob to the stack's DA nodes (fee, signatures, verified on chain), SIGKILL one DA
    node, retrieve the blob from the others with every cell's KZG proof checked, compare."""
    from deaios.da import launch as da_launch
    from deaios.da.chain import DAChain
    from deaios.da.client import DAClient
    from deaios.da.encoding import Encoder

    nodes = stack.extra.get("da_nodes") or []
    if not nodes:
        console.print("no DA nodes in this stack: DA step skipped")
        return
    console.rule(f"deaios da put: a 1 MB blob to {len(nodes)} DA nodes")
    blob = random.Random(0xDA).randbytes(SAMPLE_SIZE)
    chain = DAChain(stack.rpc, stack.contracts["da_entrance"], stack.private_key)
    with Encoder() as encoder:
        result = asyncio.run(DAClient(chain, encoder).put(blob))
    show("DA dispersal", {"blob reference": str(result.ref), "upload tx (submitOriginalData)": result.upload_tx,
                          "verify tx (submitVerifiedCommitRoots)": result.verify_tx,
                          "signers": f"{result.signers} of {len(nodes)} ({result.rows_signed}/{result.rows} rows)",
                          "seconds": json.dumps({k: round(v, 2) for k, v in result.seconds.items()})})
    victim = random.randrange(len(nodes))
    console.rule(f"kill -9 DA node {victim} ({nodes[victim]['url']})")
    da_launch.kill(stack, victim)
    console.rule("deaios da get")
    started = time.perf_counter()
    copy = asyncio.run(DAClient(chain, Encoder(1)).get(result.ref))
    (work / "da-copy.bin").write_bytes(copy)
    show("DA retrieval", {"from": f"{len(nodes) - 1} live DA nodes", "seconds": f"{time.perf_counter() - started:.3f}",
                          "sha256 original": hashlib.sha256(blob).hexdigest(),
                          "sha256 retrieved": hashlib.sha256(copy).hexdigest(), "byte-exact": blob == copy})
    if blob != copy:
        raise click.ClickException("the retrieved DA blob differs from the original")


def show_submission(stack: Stack, tx_hash: str | None) -> None:
    if tx_hash is None:  # the file was already on the network
        return
    flow = FlowClient(stack.rpc, stack.flow, stack.private_key)
    submit = flow.submit_events(tx_hash)[0]
    event = submit.event
    show("Submit event", {
        "tx": tx_hash, "block": event.block, "sender": submit.sender, "identity": "0x" + submit.identity.hex(),
        "submissionIndex (tx seq)": event.seq, "startPos": event.start_pos, "length (sectors)": event.sectors,
        "data.length (bytes)": event.length,
        "data.nodes (root, height)": ", ".join(f"(0x{root.hex()}, {height})" for root, height in event.nodes),
        "fee paid (wei)": event.sectors * flow.price_per_sector(),
        "flow root after it": "0x" + flow.flow_root(event.seq).hex(),
    })


if __name__ == "__main__":
    main()

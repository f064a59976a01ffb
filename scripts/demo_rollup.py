"""`make demo`, rollup step: a rollup batch through the OP Stack alt-DA server and through the Arbitrum Nitro DA
provider of the stack, read back byte-exact while a DA node is down.

OP: op-batcher's `POST /put` (the batch) → 0G's generic commitment (0x01 ‖ 0x47 ‖ epoch ‖ quorum ‖ dataRoot), what
op-batcher posts to L1 → op-node's `GET /get/0x<commitment>` → the batch. Nitro: the batch poster's
`daprovider_store` → a 0x01 certificate → the sequencer message (40-byte header ‖ certificate) a node reads from
its inbox → `daprovider_recoverPayload` → the batch; then a validator's two proof calls, the read-preimage proof
checked here against the certificate alone. Both servers write through the stack's disperser and read from the DA
nodes (every cell's KZG proof checked), never from the disperser.
"""

from __future__ import annotations

import random
import time
import urllib.request
from collections.abc import Callable

import click
from rich.console import Console

from deaios.da import altda
from deaios.da import launch as da_launch
from deaios.da import nitro_cert
from deaios.da.nitro_client import NitroDAClient
from deaios.procs import pid_alive
from deaios.stack.config import Stack

BATCH = 300_000


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=300) as resp:
        return resp.read()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as resp:
        return resp.read()


def run(stack: Stack, console: Console, show: Callable[[str, dict[str, object]], None]) -> None:
    op_url = (stack.extra.get("da_altda") or {}).get("url")
    nitro_url = (stack.extra.get("da_nitro") or {}).get("url")
    if not (op_url and nitro_url):
        console.print("no rollup DA servers in this stack: rollup step skipped")
        return
    rng = random.Random(0x0B5)
    op_batch, arb_batch = rng.randbytes(BATCH), rng.randbytes(BATCH)

    console.rule("OP Stack alt-DA: op-batcher POST /put")
    started = time.perf_counter()
    commitment = _post(f"{op_url}/put", op_batch)
    ref = altda.decode_commitment(commitment).ref
    show("alt-DA commitment (0G's format)", {"server": op_url, "seconds": f"{time.perf_counter() - started:.2f}",
                                             "commitment (posted to L1 after 0x01)": "0x" + commitment.hex(),
                                             "epoch / quorum / dataRoot": f"{ref.epoch} / {ref.quorum_id} / "
                                                                          f"0x{ref.data_root.hex()}"})

    console.rule("Arbitrum Nitro: the batch poster's daprovider_store")
    nitro = NitroDAClient(nitro_url)
    started = time.perf_counter()
    cert = nitro.store(arb_batch, 3600)
    parsed = nitro_cert.Certificate.parse(cert)
    show("Nitro certificate", {"server": nitro_url, "seconds": f"{time.perf_counter() - started:.2f}",
                               "certificate (header 0x01)": "0x" + cert.hex(),
                               "DA blobs": ", ".join(str(r) for r in parsed.refs)})

    nodes = stack.extra.get("da_nodes") or []
    down = [i for i, n in enumerate(nodes) if not pid_alive(n.get("pid"))]
    if not down:
        victim = rng.randrange(len(nodes))
        console.rule(f"kill -9 DA node {victim}")
        da_launch.kill(stack, victim)
        down = [victim]
    console.rule(f"reading back with DA node(s) {down} down")
    started = time.perf_counter()
    op_copy = _get(f"{op_url}/get/0x{commitment.hex()}")
    op_seconds = time.perf_counter() - started
    started = time.perf_counter()
    arb_copy = nitro.recover_payload(1, b"\0" * 32, nitro_cert.sequencer_message(cert))
    arb_seconds = time.perf_counter() - started
    offset = rng.randrange(0, BATCH - 32)
    proof = nitro.generate_read_preimage_proof(offset, cert)
    proven = nitro_cert.verify_read_preimage_proof(parsed, offset, proof)
    validity = nitro.generate_certificate_validity_proof(cert)
    show("rollup batches read back", {
        "op-node GET /get": f"{len(op_copy)} bytes in {op_seconds:.2f} s, byte-exact: {op_copy == op_batch}",
        "Nitro recoverPayload": f"{len(arb_copy)} bytes in {arb_seconds:.2f} s, byte-exact: {arb_copy == arb_batch}",
        f"read-preimage proof at offset {offset}": f"{len(proof)} bytes, verified: {proven == arb_batch[offset:offset + 32]}",
        "certificate validity proof": "0x" + validity.hex() + " (valid)" if validity[:1] == b"\x01" else "invalid"})
    if op_copy != op_batch or arb_copy != arb_batch or proven != arb_batch[offset:offset + 32]:
        raise click.ClickException("a rollup batch did not come back byte-exact")

"""End to end: 6 real `deaios da node` processes on the test chain; 2 of them misbehave on retrieval (one
withholds, one serves corrupted cells). Blobs are dispersed (encode, fee, signatures, on-chain check) and
retrieved byte-exact, also with an honest node down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from da_network_helpers import deaios_cli, put_blob
from deaios.cli import main as deaios_main
from deaios.da import altda, bls
from deaios.da.chain import DAChain
from deaios.da.client import BlobRef, DAClientError
from deaios.da.dispersal import in_process
from deaios.da.encoding import MAX_DATA, columns_of_rows, encode
from deaios.da.serving import serve_app
from deaios.jsonrpc import RpcCallError, rpc_call

ROOT = Path(__file__).resolve().parents[3]


def test_nodes_registered_with_pop_and_joined_epoch(net):
    members = set(net["registry"].getQuorumMembers(1, 0)[0])
    assert members == {n.address for n in net["nodes"]}
    for n in net["nodes"]:
        detail = net["registry"].getSigner([n.address])[0]
        assert n.url.endswith(detail.socket)


def test_put_get_roundtrip_with_a_third_faulty(net, client):
    data = os.urandom(300_000)
    result = asyncio.run(client.put(data))
    ref = result.ref
    assert result.signers == 6 and result.rows_signed == result.rows == 3072
    assert net["entrance"].commitmentExists(ref.data_root, ref.epoch, ref.quorum_id)
    assert tuple(net["entrance"].verifiedErasureCommitment(ref.data_root, ref.epoch, ref.quorum_id)) \
        == bls.hash_to_g1(ref.data_root)
    assert asyncio.run(client.get(ref)) == data
    # with an honest node down as well: the 3 honest nodes left hold 1536 > 63 * 24 rows, so >= 64 columns
    net["nodes"][3].stop()
    assert asyncio.run(client.get(ref)) == data


def test_put_with_a_node_down_and_cli(net, tmp_path):
    # node 3 is down since the previous test: 5 of 6 signers (2560 of 3072 rows) still sign
    src = tmp_path / "blob.bin"
    data = os.urandom(200_001)
    src.write_bytes(data)
    out = deaios_cli("da", "put", str(src), "--rpc", net["rpc"], "--entrance", net["deployment"]["da_entrance"],
                     "--key", net["key"], "--workers", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    ref = lines[-1]
    BlobRef.parse(ref)
    got = CliRunner(mix_stderr=False).invoke(deaios_main, [  # in-process: reuses this process's KZG setup
        "da", "get", ref, "-o", str(tmp_path / "copy.bin"), "--rpc", net["rpc"], "--entrance",
        net["deployment"]["da_entrance"]])
    assert got.exit_code == 0, got.stderr
    assert (tmp_path / "copy.bin").read_bytes() == data
    for bad in (["da", "get", "0x12:1:0", "-o", str(tmp_path / "x")],
                ["da", "put", str(tmp_path / "missing.bin"), "--rpc", net["rpc"], "--entrance",
                 net["deployment"]["da_entrance"], "--key", net["key"]],
                ["da", "put", str(src), "--rpc", net["rpc"], "--entrance", "0x1234", "--key", net["key"]],
                ["da", "nitro-server", "--rpc", net["rpc"], "--entrance", net["deployment"]["da_entrance"],
                 "--key", net["key"], "--max-blob-size", str(MAX_DATA + 1)],
                ["da", "altda-server", "--rpc", net["rpc"], "--entrance", net["deployment"]["da_entrance"],
                 "--dir", str(tmp_path)]):  # no disperser and not --direct
        res = CliRunner(mix_stderr=False).invoke(deaios_main, bad)  # in-process: no interpreter start-up
        assert res.exit_code == 2 and res.stderr.startswith("error:"), res.stderr


def test_node_refuses_bad_sign_requests(net):
    chain: DAChain = net["chain"]
    node = net["nodes"][0]
    data = os.urandom(10_000)
    enc = encode(data)
    (upload,) = chain.submit_original_data([enc.header.data_root])
    quorum = chain.quorum(upload.epoch, upload.quorum_id)
    cols = columns_of_rows(quorum.rows_of(node.address), quorum.rows)

    def request(**over):
        base = {"header": enc.header.to_json(), "epoch": upload.epoch, "quorumId": upload.quorum_id,
                "txHash": upload.tx_hash, "columns": {str(c): "0x" + enc.columns[c].to_bytes().hex() for c in cols}}
        base.update(over)
        return base

    async def ask(req):
        async with aiohttp.ClientSession() as s:
            return await rpc_call(s, node.url, "da_sign", req)

    tampered = dict(request()["columns"])
    raw = bytearray(enc.columns[cols[0]].to_bytes())
    raw[5] ^= 1
    tampered[str(cols[0])] = "0x" + raw.hex()
    other = encode(b"other")
    cases = [
        (request(columns=tampered), "KZG"),
        (request(columns={k: v for k, v in request()["columns"].items() if k != str(cols[0])}), "expected columns"),
        (request(quorumId=upload.quorum_id + 1), "did not upload"),
        (request(header=other.header.to_json()), "did not upload"),
        (request(txHash="0x" + "00" * 32), "no receipt"),
        ({"header": 5}, "malformed"),
    ]
    for req, msg in cases:
        with pytest.raises(RpcCallError, match=msg):
            asyncio.run(ask(req))
    reply = asyncio.run(ask(request()))
    sig = tuple(int(v, 16) for v in reply["signature"])
    digest = bls.commit_digest(enc.header.data_root, upload.epoch, upload.quorum_id, enc.header.erasure_commitment)
    info = chain.signer_infos([node.address])[0]
    assert chain.verify_signature(digest, sig, info.pk_g1, info.pk_g2)


def test_get_unknown_blob_fails_cleanly(net, client):
    with pytest.raises(DAClientError, match="no verified commitment"):
        asyncio.run(client.get(BlobRef(b"\x01" * 32, 1, 0)))


@pytest.fixture(scope="module")
def altda_url(net, client, tmp_path_factory):
    """The OP alt-DA server (--direct: dispersing in-process) on a real socket, in a thread of this process (it
    shares the client's setup). The disperser path is tested on a stack in test_rollup_da.py."""
    server = altda.AltDAServer(in_process(client), client, tmp_path_factory.mktemp("altda"))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    got: dict[str, str] = {}
    task = loop.create_task(serve_app(server.app(), "127.0.0.1", 0,
                                      lambda url: (got.update(url=url), started.set())))
    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30)
    yield got["url"]
    loop.call_soon_threadsafe(task.cancel)
    thread.join(10)
    loop.close()


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP request as op-node / op-batcher make it (octet-stream body); (status, body)."""
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_op_altda_server_generic_and_keccak_commitments(net, altda_url):
    # op-batcher (generic commitments): POST /put/ with the preimage → the commitment bytes
    data = os.urandom(40_000)
    status, commitment = http("POST", f"{altda_url}/put/", data)
    assert status == 200, commitment
    assert commitment[:2] == bytes([altda.GENERIC_COMMITMENT, altda.ZG_VERSION_BYTE]) and len(commitment) == 50
    ref = altda.decode_commitment(commitment).ref
    assert net["entrance"].commitmentExists(ref.data_root, ref.epoch, ref.quorum_id)  # verified before the reply
    # op-node: GET /get/0x<commitment>
    assert http("GET", f"{altda_url}/get/0x{commitment.hex()}") == (200, data)

    # keccak commitments (op-batcher precomputes them): PUT /put/0x00<keccak>, then GET
    other = os.urandom(1_000)
    key = altda.encode_keccak(other)
    assert http("PUT", f"{altda_url}/put/0x{altda.encode_keccak(data).hex()}", other)[0] == 400  # wrong hash
    assert http("PUT", f"{altda_url}/put/0x{key.hex()}", other) == (200, b"")
    assert http("GET", f"{altda_url}/get/0x{key.hex()}") == (200, other)


def test_op_altda_server_errors(altda_url):
    unknown = altda.encode_generic(BlobRef(os.urandom(32), 1, 0))
    assert http("GET", f"{altda_url}/get/0x{unknown.hex()}")[0] == 404
    assert http("GET", f"{altda_url}/get/0x{altda.encode_keccak(b'never stored').hex()}")[0] == 404
    for bad in ("0x02abcd", "zz", "0x", "0x0147", "0x" + unknown[:-1].hex(), "0x0131" + unknown[2:].hex(),
                "0x00" + "ab" * 31):
        status, body = http("GET", f"{altda_url}/get/{bad}")
        assert status == 400, (bad, body)
    assert http("PUT", f"{altda_url}/put", b"")[0] == 400  # empty preimage
    assert http("PUT", f"{altda_url}/put/0x{unknown.hex()}", b"x")[0] == 400  # generic commitments are the server's
    assert http("POST", f"{altda_url}/put/", b"\0" * (MAX_DATA + 1))[0] == 413
    assert http("GET", f"{altda_url}/health") == (200, b'{"status": "ok"}')


def test_expired_blobs_are_pruned(net, client):
    ref, node, col = put_blob(net, client, 5_000)

    async def retrieve():
        async with aiohttp.ClientSession() as s:
            return await rpc_call(s, node.url, "da_retrieve", "0x" + ref.data_root.hex(), ref.epoch, ref.quorum_id,
                                  [col])

    assert str(col) in asyncio.run(retrieve())["columns"]
    net["entrance"].setEpochWindowSize(0, sender=net["owner"])
    for _ in range(2):  # epoch 1 expires once epochNumber > 1 + 0 + 1
        net["registry"].forceMakeEpoch(sender=net["owner"])
    assert net["entrance"].isEpochExpired(ref.epoch)
    for _ in range(40):
        try:
            asyncio.run(retrieve())
        except RpcCallError as exc:
            assert "not stored" in str(exc)
            break
        asyncio.run(asyncio.sleep(0.25))
    else:
        pytest.fail("the node did not prune the expired blob")

"""DA for rollups on one running stack (`deaios up --nodes 1`, 4 DA nodes): the disperser's gRPC API through the
generated stubs, `deaios da put/get` as a user runs them, the OP alt-DA server, and the Nitro DA provider driven by
a client that sends what Nitro's Go client sends — then a DA node is killed and both rollup servers still return
every batch byte-exact (they read from the DA nodes, not from the disperser)."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import urllib.error
import urllib.request
import grpc
import pytest
from deaios._keccak import keccak256
from deaios.da import altda
from deaios.da import nitro_cert as N
from deaios.da.blobref import BlobRef
from deaios.da.launch import kill
from deaios.da.nitro_client import NitroDAClient, NitroRpcError
from deaios.da.proto import disperser_pb2 as pb
from deaios.da.proto import disperser_pb2_grpc as pb_grpc
from deaios.stack.config import dev_key
from deaios.stack.keys import address_of
from deaios.stack.launcher import service_pids
from deaios.stack.process import deaios, running_stack, stack_env

PIECE = 60_000  # the test Nitro provider's blob size: a 150 kB batch is 3 DA blobs


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("rollup-stack")
    with running_stack(base / "data", nodes=1, home=base / "home") as run:
        yield run


@pytest.fixture(scope="module")
def stub(stack):
    with grpc.insecure_channel(stack.stack.extra["da_disperser"]["grpc"],
                               options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        yield pb_grpc.DisperserStub(channel)


def _serve(stack, *args: str) -> tuple[subprocess.Popen, str]:
    """A `deaios da nitro-server` of the test's own (small blobs), against the stack's disperser and chain."""
    cmd = [sys.executable, "-m", "deaios.cli", "da", "nitro-server", "--stack", str(stack.dir), "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(stack.dir / f"nitro-{len(args)}.log", "w"),
                            env=stack_env(stack.home))
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    assert sel.select(60), "nitro-server did not start"
    line = proc.stdout.readline()
    assert line, f"nitro-server exited; see {stack.dir}"
    return proc, json.loads(line)["url"]


@pytest.fixture(scope="module")
def nitro(stack):
    proc, url = _serve(stack, "--max-blob-size", str(PIECE), "--max-message-size", str(4 * PIECE))
    yield NitroDAClient(url)
    proc.terminate()
    proc.wait(10)


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_stack_runs_the_rollup_services(stack):
    extra = stack.stack.extra
    assert set(extra) >= {"da_disperser", "da_altda", "da_nitro"}
    # fees are paid from the stack's `da_disperser` key (Anvil dev key 20 locally)
    assert extra["da_disperser"]["address"] == address_of(dev_key(20)) and ":" in extra["da_disperser"]["grpc"]
    pids = service_pids(stack.stack)
    for key in ("da_disperser", "da_altda", "da_nitro"):  # `deaios down` stops them
        assert pids[key] == extra[key]["pid"]


def test_grpc_api_with_the_generated_stubs(stack, stub):
    data = os.urandom(200_000)
    reply = stub.DisperseBlob(pb.DisperseBlobRequest(data=data))
    assert reply.result == pb.PROCESSING and reply.request_id
    deadline = time.monotonic() + 60
    while (status := stub.GetBlobStatus(pb.BlobStatusRequest(request_id=reply.request_id))).status == pb.PROCESSING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status.status == pb.FINALIZED  # a local stack: final once verified on chain
    header = status.info.blob_header
    assert len(header.storage_root) == 32 and header.epoch >= 1
    got = stub.RetrieveBlob(pb.RetrieveBlobRequest(storage_root=header.storage_root, epoch=header.epoch,
                                                   quorum_id=header.quorum_id))
    assert got.data == data
    refusals = [
        (stub.DisperseBlob, pb.DisperseBlobRequest(data=b""), grpc.StatusCode.INVALID_ARGUMENT, "greater than 0"),
        (stub.DisperseBlob, pb.DisperseBlobRequest(data=bytes(31 * 1024 * 1024 - 3)),
         grpc.StatusCode.INVALID_ARGUMENT, "cannot exceed"),
        (stub.GetBlobStatus, pb.BlobStatusRequest(request_id=b"unknown"), grpc.StatusCode.NOT_FOUND, "unknown"),
        (stub.RetrieveBlob, pb.RetrieveBlobRequest(storage_root=b"\1" * 31), grpc.StatusCode.INVALID_ARGUMENT, "len"),
        (stub.RetrieveBlob, pb.RetrieveBlobRequest(storage_root=b"\1" * 32, epoch=1), grpc.StatusCode.NOT_FOUND,
         "no verified commitment"),
    ]
    for method, request, code, text in refusals:
        with pytest.raises(grpc.RpcError) as err:
            method(request)
        assert err.value.code() == code and text in err.value.details()


def test_cli_put_and_get_through_the_disperser(stack, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(300_001))
    put = deaios("da", "put", str(src), "--stack", str(stack.dir), home=stack.home)
    assert put.returncode == 0, put.stderr
    line = json.loads(put.stdout.splitlines()[0])
    ref = put.stdout.strip().splitlines()[-1]
    assert line["ref"] == ref and line["status"] == "FINALIZED" and line["disperser"]
    BlobRef.parse(ref)
    got = deaios("da", "get", ref, "-o", str(tmp_path / "copy.bin"), "--stack", str(stack.dir), home=stack.home)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()


def test_op_altda_server_round_trip(stack, tmp_path):
    url = stack.stack.extra["da_altda"]["url"]
    batch = os.urandom(120_000)
    status, commitment = http("POST", f"{url}/put", batch)
    assert status == 200, commitment
    ref = altda.decode_commitment(commitment).ref
    assert commitment == altda.encode_generic(ref) and commitment[:2] == b"\x01\x47"  # 0G's format, raw bytes
    assert http("GET", f"{url}/get/0x{commitment.hex()}") == (200, batch)
    status, second = http("PUT", f"{url}/put/", b"frame")  # PUT keeps working
    assert status == 200 and http("GET", f"{url}/get/0x{second.hex()}") == (200, b"frame")
    key = altda.encode_keccak(b"keccak frame")
    assert http("POST", f"{url}/put/0x{key.hex()}", b"keccak frame") == (200, b"")
    assert http("GET", f"{url}/get/0x{key.hex()}") == (200, b"keccak frame")
    unknown = altda.encode_generic(BlobRef(os.urandom(32), 1, 0))
    assert http("GET", f"{url}/get/0x{unknown.hex()}")[0] == 404
    assert http("GET", f"{url}/get/0x0130")[0] == 400


def test_nitro_provider_as_nitros_go_client_drives_it(stack, nitro):
    assert nitro.get_supported_header_bytes() == bytes([0x01, 0x0C])
    assert nitro.get_max_message_size() == 4 * PIECE
    batch = os.urandom(2 * PIECE + 30_000)  # larger than one blob: 3 pieces
    cert = nitro.store(batch, 3600)
    parsed = N.Certificate.parse(cert)
    assert cert[0] == 0x01 and len(parsed.refs) == 3 and parsed.piece_size == PIECE
    msg = N.sequencer_message(cert, 1, 2, 3, 4, 5)
    block = os.urandom(32)
    assert nitro.recover_payload(7, block, msg) == batch
    payload, images = nitro.recover_payload_and_preimages(7, block, msg)
    assert payload == batch and images == {3: {keccak256(cert): batch}}
    assert nitro.collect_preimages(7, block, msg) == images
    for offset in (0, PIECE - 7):  # a proof inside a piece, and one across two pieces
        proof = nitro.generate_read_preimage_proof(offset, cert)
        assert N.verify_read_preimage_proof(parsed, offset, proof) == batch[offset:offset + 32]
    assert nitro.generate_certificate_validity_proof(cert) == b"\x01\x01"
    chunked = nitro.store_chunked(batch[:PIECE + 10], 3600, chunk_size=25_000)
    assert nitro.recover_payload(8, block, N.sequencer_message(chunked)) == batch[:PIECE + 10]
    # 0G's Nitro fork's certificate for the same blobs reads the same batch
    zg = N.Certificate(parsed.refs, 0, N.ZG_FORK_HEADER).to_bytes()
    payload, images = nitro.recover_payload_and_preimages(9, block, N.sequencer_message(zg))
    assert payload == batch and len(images[1]) == 3


def test_nitro_provider_errors_nitro_acts_on(stack, nitro):
    forged = N.Certificate((BlobRef(os.urandom(32), 1, 0),), PIECE).to_bytes()
    with pytest.raises(NitroRpcError, match="^certificate validation failed"):
        nitro.recover_payload(1, b"\0" * 32, N.sequencer_message(forged))
    with pytest.raises(NitroRpcError, match="^certificate validation failed"):
        nitro.recover_payload(1, b"\0" * 32, N.sequencer_message(b"\x01\x47\x01garbage"))
    assert nitro.generate_certificate_validity_proof(forged) == b"\x00\x01"
    with pytest.raises(NitroRpcError, match="^message too large for current DA backend"):
        nitro.store(bytes(4 * PIECE + 1), 3600)
    with pytest.raises(NitroRpcError, match="invalid argument"):
        nitro.call("daprovider_store", "not hex", "0x1")
    proc, url = _serve(stack, "--disperser", "127.0.0.1:1", "--fallback")  # the DA is unreachable
    try:
        with pytest.raises(NitroRpcError, match="^DA provider requests fallback to next writer"):
            NitroDAClient(url).store(b"batch", 3600)
    finally:
        proc.terminate()
        proc.wait(10)


def test_rollup_batches_survive_a_killed_da_node(stack, nitro):
    """Last: SIGKILL a DA node; 3 of 4 still hold more than half of the rows."""
    url = stack.stack.extra["da_altda"]["url"]
    batch = os.urandom(90_000)
    status, commitment = http("POST", f"{url}/put", batch)
    assert status == 200
    cert = nitro.store(batch, 3600)
    kill(stack.stack, 1)
    assert http("GET", f"{url}/get/0x{commitment.hex()}") == (200, batch)
    assert nitro.recover_payload(1, b"\0" * 32, N.sequencer_message(cert)) == batch

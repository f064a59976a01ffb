"""The rollup-facing formats, without a network: the committed gRPC stubs are what the .proto generates, 0G's
OP alt-DA commitment bytes, Nitro certificates (deaios 0x01 and 0G's fork's 0x0c RLP), read-preimage proofs
(honest ones verify, tampered ones do not), Nitro's chunked-store protocol, and the disperser's status rules."""

from __future__ import annotations

import asyncio
import filecmp
import hashlib
import importlib.util
import os
import time
from pathlib import Path

import ckzg
import grpc
import pytest
import rlp
from deaios._keccak import keccak256
from deaios.da import altda
from deaios.da import nitro_cert as N
from deaios.da.blobref import BlobRef
from deaios.da.client import PutResult
from deaios.da.disperser import Disperser, DisperserError
from deaios.da.encoding import BLOB_PAYLOAD, BlobHeader, pack, trusted_setup
from deaios.da.nitro import ChunkedStores
from deaios.da.proto import disperser_pb2 as pb
from deaios.jsonrpc import RpcError

ROOT = Path(__file__).resolve().parents[2]


def test_committed_grpc_stubs_are_what_the_proto_generates(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_grpc", ROOT / "scripts" / "gen_grpc.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    written = gen.generate(tmp_path)
    assert [p.name for p in written] == ["disperser_pb2.py", "disperser_pb2.pyi", "disperser_pb2_grpc.py"]
    committed = ROOT / "offchain" / "deaios" / "da" / "proto"
    for path in written:
        assert filecmp.cmp(path, committed / path.name, shallow=False), f"{path.name} is stale: run `make proto`"
    # 0G's wire names: package, service, methods, enum values
    service = pb.DESCRIPTOR.services_by_name["Disperser"]
    assert service.full_name == "disperser.Disperser"
    assert [m.name for m in service.methods] == ["DisperseBlob", "GetBlobStatus", "RetrieveBlob"]
    assert (pb.PROCESSING, pb.CONFIRMED, pb.FAILED, pb.FINALIZED) == (1, 2, 3, 4)
    assert pb.RetrieveBlobRequest(storage_root=b"\1" * 32, epoch=5, quorum_id=2).SerializeToString() \
        == b"\x0a\x20" + b"\1" * 32 + b"\x10\x05\x18\x02"


def test_op_altda_commitment_is_0gs():
    ref = BlobRef(bytes(range(32)), 0x0102, 7)
    raw = altda.encode_generic(ref)
    # 0g-da-op-plasma: 0x01 (generic) ‖ 0x47 ‖ epoch u64 LE ‖ quorumId u64 LE ‖ storageRoot
    assert raw == bytes([1, 0x47]) + bytes([2, 1, 0, 0, 0, 0, 0, 0]) + bytes([7] + [0] * 7) + bytes(range(32))
    assert altda.decode_commitment(raw).ref == ref
    assert altda.decode_commitment(altda.encode_keccak(b"x")).keccak == keccak256(b"x")
    for bad in (b"", b"\x02" + raw[1:], b"\x01\x30" + raw[2:], raw[:-1], raw + b"\0", b"\x00" + b"\1" * 31):
        with pytest.raises(altda.CommitmentError):
            altda.decode_commitment(bad)


def _refs(n: int) -> tuple[BlobRef, ...]:
    return tuple(BlobRef(os.urandom(32), 3 + i, i % 2) for i in range(n))


def test_nitro_certificates_both_formats():
    refs = _refs(3)
    cert = N.Certificate(refs, 1000)
    raw = cert.to_bytes()
    assert raw[:8] == bytes([0x01, 0x47, 0x01]) + (1000).to_bytes(4, "big") + b"\x03" and len(raw) == 8 + 3 * 48
    assert N.Certificate.parse(raw) == cert and cert.hash == keccak256(raw)
    # 0G's Nitro fork: 0x0c ‖ rlp([[DataRoot, Epoch, QuorumId], …]) as Go's rlp encodes the struct list
    zg = bytes([0x0C]) + rlp.encode([[r.data_root, r.epoch, r.quorum_id] for r in refs])
    parsed = N.Certificate.parse(zg)
    assert parsed.refs == refs and parsed.header == N.ZG_FORK_HEADER and parsed.to_bytes() == zg
    assert zg[1] == 0xC0 + 0x37 + 1 or zg[1] >= 0xF8  # a long RLP list
    for bad in (b"", b"\x02" + raw[1:], raw[:-1], raw[:7] + b"\x00", b"\x01\x48" + raw[2:],
                b"\x0c\x80", b"\x0c" + rlp.encode([[b"\1" * 31, 1, 0]]), b"\x0c" + rlp.encode([[b"\1" * 32, b"\0", 0]])):
        with pytest.raises(N.CertificateError):
            N.Certificate.parse(bad)
    with pytest.raises(N.CertificateError, match="certificate validation failed"):
        cert.check_lengths([1000, 999, 5])
    cert.check_lengths([1000, 1000, 5])
    msg = N.sequencer_message(raw, 1, 2, 3, 4, 5)
    assert len(msg) == 40 + len(raw) and msg[:8] == (1).to_bytes(8, "big") and N.certificate_of(msg) == raw
    images = N.preimages(parsed, zg, [b"ab", b"cd", b"e"])
    assert images[3] == {keccak256(zg): b"abcde"} and images[1][hashlib.sha256(b"cd").digest()] == b"cd"


def test_read_preimage_proofs_prove_the_payload_and_nothing_else():
    piece = BLOB_PAYLOAD + 5000  # two ckzg blobs per piece: proofs cross ckzg blob and piece boundaries
    payload = os.urandom(2 * piece + 777)
    pieces = N.split(payload, piece)
    ts = trusted_setup()
    cert = N.Certificate(tuple(BlobRef(BlobHeader(len(p), tuple(bytes(ckzg.blob_to_kzg_commitment(b, ts))
                                                                    for b in pack(p))).data_root, 1, 0)
                               for p in pieces), piece)
    for offset in (31, BLOB_PAYLOAD - 16, piece - 20, len(payload) - 5, len(payload) + 64):
        proof = N.read_preimage_proof(cert, offset, pieces)
        assert N.verify_read_preimage_proof(cert, offset, proof) == payload[offset:offset + 32], offset
    proof = N.read_preimage_proof(cert, 100, pieces)
    for i in (2 + 1, 2 + 1 + 8 + 4 + 10, len(proof) - 50, len(proof) - 70):  # length, commitment, π, y
        forged = bytearray(proof)
        forged[i] ^= 1
        with pytest.raises(N.ProofError):
            N.verify_read_preimage_proof(cert, 100, bytes(forged))
    other = N.Certificate((BlobRef(os.urandom(32), 1, 0),) + cert.refs[1:], piece)
    with pytest.raises(N.ProofError, match="does not hash"):
        N.verify_read_preimage_proof(other, 100, proof)
    with pytest.raises(N.ProofError):
        N.verify_read_preimage_proof(cert, 100 + 31 * 40, proof)  # bytes the proof does not open
    end = N.read_preimage_proof(cert, len(payload) - 5, pieces)
    with pytest.raises(N.ProofError, match="last piece"):  # hiding where the payload ends
        N.verify_read_preimage_proof(cert, len(payload) - 5, end[:1] + b"\0")


def test_chunked_store_protocol_as_nitros_receiver():
    streams = ChunkedStores(max_message=1000)
    now = int(time.time())
    sig = N.stream_commitment(b"", now, 3, 100, 250, 60)
    sid = streams.start(now, 3, 100, 250, 60, sig)
    with pytest.raises(RpcError, match="already seen"):  # a replayed start
        streams.start(now, 3, 100, 250, 60, sig)
    with pytest.raises(RpcError, match="signature"):
        streams.start(now, 3, 100, 250, 61, sig)
    with pytest.raises(RpcError, match="too much time"):
        streams.start(now - 3600, 3, 100, 250, 60, N.stream_commitment(b"", now - 3600, 3, 100, 250, 60))
    with pytest.raises(RpcError, match="message too large for current DA backend"):
        streams.start(now, 11, 100, 1001, 60, N.stream_commitment(b"", now, 11, 100, 1001, 60))
    data = os.urandom(250)
    parts = [data[:100], data[100:200], data[200:]]
    for i in (2, 0):
        streams.chunk(sid, i, parts[i], N.stream_commitment(parts[i], sid, i))
    streams.chunk(sid, 0, parts[0], N.stream_commitment(parts[0], sid, 0))  # idempotent
    with pytest.raises(RpcError, match="incorrect size"):
        streams.chunk(sid, 1, parts[1][:99], N.stream_commitment(parts[1][:99], sid, 1))
    with pytest.raises(RpcError, match="out of range"):
        streams.chunk(sid, 3, b"x", N.stream_commitment(b"x", sid, 3))
    with pytest.raises(RpcError, match="signature"):
        streams.chunk(sid, 1, parts[1], N.stream_commitment(parts[0], sid, 1))
    streams.chunk(sid, 1, parts[1], N.stream_commitment(parts[1], sid, 1))
    assert streams.commit(sid, N.stream_commitment(b"", sid)) == (data, 60)
    with pytest.raises(RpcError, match="unknown message"):
        streams.commit(sid, N.stream_commitment(b"", sid))


class _Eth:
    def __init__(self) -> None:
        self.block_number = 10

    def get_transaction_receipt(self, tx):
        return {"blockNumber": 10}

    def get_block(self, tag):
        return {"number": self.block_number - 64}


class _Client:
    """A DAClient stand-in: `put` succeeds (or fails) without a network."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.chain = type("Chain", (), {"w3": type("W3", (), {"eth": _Eth()})()})()

    async def put(self, data: bytes) -> PutResult:
        from deaios.da.client import DAClientError

        await asyncio.sleep(0)
        if self.fail:
            raise DAClientError("only 1 of 4 signers signed")
        return PutResult(BlobRef(keccak256(data), 2, 1), len(data), "0x01", "0x02", 4, 3072, 3072, {"total": 0.1})


def test_disperser_status_lifecycle_and_refusals():
    async def run() -> None:
        d = Disperser(_Client(), finality_depth=2)  # type: ignore[arg-type]
        request = d.disperse(b"blob")
        assert request.status == pb.PROCESSING and request.request_id.startswith(keccak256(b"blob").hex().encode())
        await asyncio.sleep(0.05)
        assert (await d.status(request.request_id)).status == pb.CONFIRMED  # block 10, final up to 8
        d.client.chain.w3.eth.block_number = 12
        d._finalized = (0.0, -1)
        assert (await d.status(request.request_id)).status == pb.FINALIZED
        tag = Disperser(_Client(), finality_depth=None)  # type: ignore[arg-type]
        r2 = tag.disperse(b"x")
        await asyncio.sleep(0.05)
        assert (await tag.status(r2.request_id)).status == pb.CONFIRMED  # the chain's finalized block is behind
        failing = Disperser(_Client(fail=True), finality_depth=0)  # type: ignore[arg-type]
        r3 = failing.disperse(b"y")
        await asyncio.sleep(0.05)
        assert (await failing.status(r3.request_id)).status == pb.FAILED  # never INSUFFICIENT_SIGNATURES
        for data, code in ((b"", grpc.StatusCode.INVALID_ARGUMENT),
                           (bytes(31 * 1024 * 1024 - 3), grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(DisperserError) as err:
                d.disperse(data)
            assert err.value.code == code
        with pytest.raises(DisperserError) as err:
            await d.status(b"nope")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(DisperserError) as err:
            await d.retrieve(b"short", 1, 0)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(run())

"""An Arbitrum Nitro DA provider (`deaios da nitro-server`) backed by deaios DA.

Nitro (v3.8+) reads and writes batches through an external DA provider over JSON-RPC (namespace
``daprovider``, positional params, Go's encodings: ``hexutil.Bytes`` and ``hexutil.Uint64`` as 0x-hex strings,
``common.Hash`` as 0x + 64 hex digits). Point a Nitro node's ``--node.da.external-provider.rpc.url`` at this
server (with ``--node.da.external-provider.with-writer`` on the batch poster). Methods, as Nitro's Go client
(`daprovider/daclient`) calls them:

reader
  ``daprovider_getSupportedHeaderBytes()`` → ``{"headerBytes": "0x010c"}`` (deaios 0x01 and 0G's fork 0x0c)
  ``daprovider_recoverPayload(batchNum, batchBlockHash, sequencerMsg)`` → ``{"Payload": <base64>}``
  ``daprovider_collectPreimages(…same…)`` → ``{"Preimages": {"<type>": {"0x<hash>": <base64>}}}``
  ``daprovider_recoverPayloadAndPreimages(…same…)`` → ``{"Payload", "Preimages"}``
  (Go's `PayloadResult` has no JSON tags, so field names are capitalised and bytes are base64, as Go encodes them.)
writer
  ``daprovider_getMaxMessageSize()`` → ``{"maxSize": n}``
  ``daprovider_store(message, timeout)`` → ``{"serialized-da-cert": "0x01…"}`` (an older third parameter is ignored)
  ``daprovider_startChunkedStore(timestamp, nChunks, chunkSize, totalSize, timeout, sig)`` → ``{"BatchId": id}``,
  ``daprovider_sendChunk(id, chunkId, chunk, sig)``, ``daprovider_commitChunkedStore(id, sig)`` → as store;
  ``sig`` = keccak256(bytes ‖ uint64 BE fields), Nitro's `PayloadCommiter`, checked as Nitro's own provider does
validator
  ``daprovider_generateReadPreimageProof(offset, certificate)`` → ``{"proof"}`` (an older leading certHash is
  accepted); ``daprovider_generateCertificateValidityProof(certificate)`` → ``{"proof"}`` (`deaios.da.nitro_cert`)

Store cuts the message into pieces of ``--max-blob-size`` bytes (default: a whole DA blob), disperses them in
parallel through the stack's disperser and answers once every piece is verified on chain. Reads never use the
disperser: the pieces come from the quorum's DA nodes (found on chain) with every cell's KZG proof checked.

Errors Nitro acts on: a certificate that cannot be valid (malformed, unknown header, a piece without a verified
commitment on chain, piece lengths that contradict it) → ``certificate validation failed: …`` (the batch counts
as empty); a message over ``getMaxMessageSize`` → ``message too large for current DA backend`` (the poster rebuilds
a smaller batch); with ``--fallback``, DA unavailable (too few signers, disperser down) → ``DA provider requests
fallback to next writer``. Anything else (e.g. DA nodes unreachable while reading) is a plain error Nitro retries.
The aiohttp application is built in one function, `NitroProvider.app`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from deaios import metrics
from deaios._keccak import keccak256
from deaios.da.dispersal import Disperse, DispersalError
from deaios.da.encoding import MAX_DATA
from deaios.da.nitro_cert import (
    DA_CERTIFICATE_HEADER, MAX_PIECES, ZG_FORK_HEADER, Certificate, CertificateError, certificate_of, preimages,
    read_preimage_proof, split, stream_commitment,
)
from deaios.jsonrpc import JsonRpcEndpoint, RpcError
from deaios.service_limits import OWN_LIMIT, Limits, guard

log = logging.getLogger(__name__)
#: the body limit of every daprovider_* call but store and sendChunk (certificates, proofs, chunk control)
SMALL_BODY = 1 << 20

ERR_CERTIFICATE = "certificate validation failed"
ERR_TOO_LARGE = "message too large for current DA backend"
ERR_FALLBACK = "DA provider requests fallback to next writer"
DEFAULT_PORT = 9880  # Nitro's default DA provider port
# the chunked store protocol's limits (Nitro's DataStreamReceiver defaults)
MAX_PENDING_STREAMS = 10
STREAM_EXPIRY = 60.0
REQUEST_VALIDITY = 300.0
RECENT_BATCHES = 4


# -- Go's JSON encodings ------------------------------------------------------------------------------------
def _bytes(value: object, what: str) -> bytes:
    """hexutil.Bytes: "0x" + hex."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise RpcError(f"invalid argument: {what} must be a 0x-prefixed hex string", -32602)
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise RpcError(f"invalid argument: {what} is not valid hex", -32602) from None


def _uint64(value: object, what: str) -> int:
    """hexutil.Uint64: "0x" + hex without leading zeros (plain JSON numbers are accepted too)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64:
        return value
    if isinstance(value, str) and value.startswith("0x") and len(value) > 2:
        try:
            n = int(value, 16)
            if n < 1 << 64:
                return n
        except ValueError:
            pass
    raise RpcError(f"invalid argument: {what} must be a 0x-hex uint64", -32602)


def _hash(value: object, what: str) -> bytes:
    raw = _bytes(value, what)
    if len(raw) != 32:
        raise RpcError(f"invalid argument: {what} must have 32 bytes", -32602)
    return raw


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _preimages_json(maps: dict[int, dict[bytes, bytes]]) -> dict[str, dict[str, str]]:
    return {str(kind): {_hex(h): _b64(v) for h, v in entries.items()} for kind, entries in maps.items()}


# -- the chunked store protocol (Nitro's data_streaming) ---------------------------------------------------
@dataclass
class _Stream:
    chunks: list[bytes | None]
    chunk_size: int
    total_size: int
    timeout: int
    updated: float = field(default_factory=time.monotonic)


class ChunkedStores:
    """Streams being received: start → chunks (any order, idempotent) → commit; incomplete ones expire."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self.streams: dict[int, _Stream] = {}
        self.seen: dict[bytes, float] = {}

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [s for s, st in self.streams.items() if now - st.updated > STREAM_EXPIRY]:
            del self.streams[sid]
        for key in [k for k, t in self.seen.items() if now - t > REQUEST_VALIDITY]:
            del self.seen[key]

    def start(self, timestamp: int, n_chunks: int, chunk_size: int, total_size: int, timeout: int,
              sig: bytes) -> int:
        self._expire()
        if sig != stream_commitment(b"", timestamp, n_chunks, chunk_size, total_size, timeout):
            raise RpcError("signature does not match")
        if abs(time.time() - timestamp) > REQUEST_VALIDITY:
            raise RpcError("too much time has elapsed since request was signed")
        if sig in self.seen:
            raise RpcError("we have already seen this request; aborting replayed protocol")
        if n_chunks * chunk_size * total_size == 0:
            raise RpcError("can't start collecting new message: neither number of chunks, total size or chunk size "
                           "can be zero")
        if total_size > self.max_message:
            raise RpcError(f"{ERR_TOO_LARGE}: {total_size} bytes, at most {self.max_message}")
        if -(-total_size // chunk_size) != n_chunks:
            raise RpcError(f"{n_chunks} chunks of {chunk_size} bytes cannot hold {total_size} bytes")
        if len(self.streams) >= MAX_PENDING_STREAMS:
            raise RpcError(f"can't start collecting new message: already {len(self.streams)} pending")
        self.seen[sig] = time.monotonic()
        sid = secrets.randbits(63) or 1
        self.streams[sid] = _Stream([None] * n_chunks, chunk_size, total_size, timeout)
        return sid

    def chunk(self, sid: int, chunk_id: int, data: bytes, sig: bytes) -> None:
        if sig != stream_commitment(data, sid, chunk_id):
            raise RpcError("signature does not match")
        stream = self.streams.get(sid)
        if stream is None:
            raise RpcError(f"unknown message({sid})")
        if chunk_id >= len(stream.chunks):
            raise RpcError(f"message({sid}): chunk({chunk_id}) out of range - expected {len(stream.chunks)} chunks")
        if stream.chunks[chunk_id] is not None:
            if stream.chunks[chunk_id] == data:
                return
            del self.streams[sid]
            raise RpcError("received different chunk data than previously; aborting protocol")
        last = chunk_id + 1 == len(stream.chunks)
        expected = (stream.total_size - 1) % stream.chunk_size + 1 if last else stream.chunk_size
        if len(data) != expected:
            raise RpcError(f"message({sid}): chunk({chunk_id}) has incorrect size ({len(data)} bytes) - expecting "
                           f"{expected} bytes")
        stream.chunks[chunk_id] = data
        stream.updated = time.monotonic()

    def commit(self, sid: int, sig: bytes) -> tuple[bytes, int]:
        if sig != stream_commitment(b"", sid):
            raise RpcError("signature does not match")
        stream = self.streams.pop(sid, None)
        if stream is None:
            raise RpcError(f"unknown message({sid})")
        missing = sum(1 for c in stream.chunks if c is None)
        if missing:
            raise RpcError(f"incomplete message({sid}): got {len(stream.chunks) - missing}/{len(stream.chunks)} "
                           "chunks")
        return b"".join(stream.chunks), stream.timeout  # type: ignore[arg-type]


# -- the provider -------------------------------------------------------------------------------------------
class NitroProvider:
    """The daprovider_* methods. `disperse` writes one DA blob (through the disperser); `retriever` is a
    `deaios.da.client.DAClient` used for reads (DA nodes directly) and whose `chain` checks commitments."""

    def __init__(self, disperse: Disperse, retriever, piece_size: int = MAX_DATA,
                 max_message: int | None = None, fallback: bool = False, header: int = DA_CERTIFICATE_HEADER) -> None:
        if not 0 < piece_size <= MAX_DATA:
            raise ValueError(f"the piece size must be 1..{MAX_DATA} bytes")
        self.disperse = disperse
        self.retriever = retriever
        self.piece_size = piece_size
        self.max_message = max_message or 2 * piece_size
        if self.max_message > MAX_PIECES * piece_size:
            raise ValueError(f"at most {MAX_PIECES} pieces per batch: max message ≤ {MAX_PIECES * piece_size}")
        self.fallback = fallback
        self.header = header
        self.streams = ChunkedStores(self.max_message)
        #: the pieces of the last few certificates read (validators ask for several proofs of one batch);
        #: content-addressed (each data root binds its bytes), so a hit is as good as a fresh read
        self._recent: OrderedDict[bytes, list[bytes]] = OrderedDict()

    # ------------------------------------------------------------ writer
    async def store(self, message: bytes) -> bytes:
        if len(message) > self.max_message:
            raise RpcError(f"{ERR_TOO_LARGE}: {len(message)} bytes, at most {self.max_message}")
        if not message:
            raise RpcError("empty message: nothing to store")
        pieces = split(message, self.piece_size)
        started = time.monotonic()
        try:
            refs = await asyncio.gather(*(self.disperse(p) for p in pieces))
        except DispersalError as exc:
            if exc.status == 413:
                raise RpcError(f"{ERR_TOO_LARGE}: {exc}") from None
            if exc.status == 503 and self.fallback:
                raise RpcError(f"{ERR_FALLBACK}: {exc}") from None
            raise RpcError(f"dispersal failed: {exc}") from None
        cert = Certificate(tuple(refs), self.piece_size, self.header)
        log.info("stored %d bytes as %d DA blob(s) in %.2f s", len(message), len(pieces), time.monotonic() - started)
        return cert.to_bytes()

    # ------------------------------------------------------------ reader
    def _certificate(self, raw: bytes) -> Certificate:
        try:
            return Certificate.parse(raw)
        except CertificateError as exc:
            raise RpcError(f"{ERR_CERTIFICATE}: {exc}") from None

    async def _check_on_chain(self, cert: Certificate) -> None:
        from deaios.da.chain import DAChainError

        chain = self.retriever.chain
        try:
            known = await asyncio.gather(*(asyncio.to_thread(chain.commitment_exists, r.data_root, r.epoch,
                                                             r.quorum_id) for r in cert.refs))
        except DAChainError as exc:
            raise RpcError(f"cannot check the certificate on chain: {exc}") from None
        for ref, ok in zip(cert.refs, known, strict=True):
            if not ok:
                raise RpcError(f"{ERR_CERTIFICATE}: blob {ref} has no verified commitment on chain")

    async def _pieces(self, cert: Certificate) -> list[bytes]:
        from deaios.da.client import DAClientError

        await self._check_on_chain(cert)
        key = b"".join(r.data_root + r.epoch.to_bytes(8, "big") + r.quorum_id.to_bytes(8, "big") for r in cert.refs)
        pieces = self._recent.get(key)
        if pieces is None:
            try:
                pieces = list(await asyncio.gather(*(self.retriever.get(r) for r in cert.refs)))
            except DAClientError as exc:
                raise RpcError(f"retrieval failed: {exc}") from None
            self._recent[key] = pieces
            while len(self._recent) > RECENT_BATCHES:
                self._recent.popitem(last=False)
        self._recent.move_to_end(key)
        try:
            cert.check_lengths([len(p) for p in pieces])
        except CertificateError as exc:
            raise RpcError(str(exc)) from None
        return pieces

    async def recover(self, sequencer_msg: bytes, payload: bool, images: bool) -> dict[str, Any]:
        try:
            raw = certificate_of(sequencer_msg)
        except CertificateError as exc:
            raise RpcError(f"{ERR_CERTIFICATE}: {exc}") from None
        cert = self._certificate(raw)
        pieces = await self._pieces(cert)
        out: dict[str, Any] = {}
        if payload:
            out["Payload"] = _b64(b"".join(pieces))
        if images:
            out["Preimages"] = _preimages_json(preimages(cert, raw, pieces))
        return out

    # ------------------------------------------------------------ validator
    async def read_preimage_proof(self, offset: int, raw: bytes) -> bytes:
        cert = self._certificate(raw)
        if cert.header != DA_CERTIFICATE_HEADER:
            raise RpcError("read-preimage proofs are made for 0x01 certificates only")
        pieces = await self._pieces(cert)
        return await asyncio.to_thread(read_preimage_proof, cert, offset, pieces)

    async def validity_proof(self, raw: bytes) -> bytes:
        try:
            cert = Certificate.parse(raw)
            await self._check_on_chain(cert)
        except CertificateError:
            return bytes([0, 1])
        except RpcError as exc:
            if str(exc).startswith(ERR_CERTIFICATE):
                return bytes([0, 1])
            raise
        return bytes([1, 1])

    # ------------------------------------------------------------ JSON-RPC
    def methods(self) -> dict[str, Any]:
        async def supported_header_bytes() -> dict:
            return {"headerBytes": _hex(bytes([DA_CERTIFICATE_HEADER, ZG_FORK_HEADER]))}

        async def max_message_size() -> dict:
            return {"maxSize": self.max_message}

        async def store(message: str, timeout: str, _legacy: object = None) -> dict:
            _uint64(timeout, "timeout")
            return {"serialized-da-cert": _hex(await self.store(_bytes(message, "message")))}

        async def start_chunked(timestamp: str, n_chunks: str, chunk_size: str, total_size: str, timeout: str,
                                sig: str) -> dict:
            sid = self.streams.start(_uint64(timestamp, "timestamp"), _uint64(n_chunks, "nChunks"),
                                     _uint64(chunk_size, "chunkSize"), _uint64(total_size, "totalSize"),
                                     _uint64(timeout, "timeout"), _bytes(sig, "sig"))
            return {"BatchId": hex(sid)}

        async def send_chunk(message_id: str, chunk_id: str, chunk: str, sig: str) -> None:
            self.streams.chunk(_uint64(message_id, "messageId"), _uint64(chunk_id, "chunkId"),
                               _bytes(chunk, "chunk"), _bytes(sig, "sig"))

        async def commit_chunked(message_id: str, sig: str) -> dict:
            message, _ = self.streams.commit(_uint64(message_id, "messageId"), _bytes(sig, "sig"))
            return {"serialized-da-cert": _hex(await self.store(message))}

        def reader(payload: bool, images: bool):
            async def method(batch_num: str, block_hash: str, sequencer_msg: str) -> dict:
                _uint64(batch_num, "batchNum")
                _hash(block_hash, "batchBlockHash")
                return await self.recover(_bytes(sequencer_msg, "sequencerMsg"), payload, images)
            return method

        async def read_proof(*params: object) -> dict:
            if len(params) == 3:  # Nitro before v3.9: (certHash, offset, certificate)
                cert_hash, offset, certificate = params
                raw = _bytes(certificate, "certificate")
                if _hash(cert_hash, "certHash") != keccak256(raw):
                    raise RpcError("certHash is not keccak256(certificate)", -32602)
            elif len(params) == 2:
                offset, certificate = params
                raw = _bytes(certificate, "certificate")
            else:
                raise RpcError("daprovider_generateReadPreimageProof takes (offset, certificate)", -32602)
            return {"proof": _hex(await self.read_preimage_proof(_uint64(offset, "offset"), raw))}

        async def validity(certificate: str) -> dict:
            return {"proof": _hex(await self.validity_proof(_bytes(certificate, "certificate")))}

        return {
            "daprovider_getSupportedHeaderBytes": supported_header_bytes,
            "daprovider_getMaxMessageSize": max_message_size,
            "daprovider_store": store,
            "daprovider_startChunkedStore": start_chunked,
            "daprovider_sendChunk": send_chunk,
            "daprovider_commitChunkedStore": commit_chunked,
            "daprovider_recoverPayload": reader(True, False),
            "daprovider_collectPreimages": reader(False, True),
            "daprovider_recoverPayloadAndPreimages": reader(True, True),
            "daprovider_generateReadPreimageProof": read_proof,
            "daprovider_generateCertificateValidityProof": validity,
        }

    def app(self) -> web.Application:
        """The aiohttp application: JSON-RPC on POST /. A store or chunk may carry up to twice the max message
        (hex-encoded); every other call is small. At most 4 requests are served at once, 64 wait."""
        limit = 2 * self.max_message + (1 << 20)
        app = web.Application(client_max_size=limit)
        large = {name: limit for name in ("daprovider_store", "daprovider_sendChunk")}
        app.router.add_post("/", JsonRpcEndpoint(self.methods(), max_body=SMALL_BODY, body_limits=large))
        metrics.instrument(app, "nitro")
        return guard(app, Limits(bodies={("POST", "/"): OWN_LIMIT}, active=4, waiting=64))

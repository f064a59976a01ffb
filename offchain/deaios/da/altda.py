"""An OP Stack alt-DA server (`deaios da altda-server`) backed by deaios DA.

op-batcher and op-node talk to a "DA server" over HTTP (OP's `op-alt-da` `DAClient`):

* ``POST /put`` (or ``/put/``; ``PUT`` works too) with the raw preimage as body → 200 with the **commitment
  bytes** as body (raw, as OP's reference client reads them). The commitment is 0G's own OP DA server's
  (0g-da-op-plasma): a *generic* commitment ``0x01 ‖ 0x47 ‖ uint64 epoch ‖ uint64 quorumId ‖ dataRoot (32)``,
  epoch and quorum id **little-endian** (50 bytes), so a rollup configured for 0G's server can switch to this one.
  The server answers once the blob's commitment is verified on chain (the disperser's CONFIRMED).
* ``POST /put/0x<hex commitment>`` with the preimage as body, for *keccak* commitments (type 0x00,
  ``0x00 ‖ keccak256(preimage)``, op-batcher with precomputed commitments): the server checks the hash,
  disperses the data and remembers keccak → blob reference in ``DIR/keccak/``; 200 with an empty body.
* ``GET /get/0x<hex commitment>`` → 200 with the preimage, retrieved **from the DA nodes directly** (the quorum's
  members as registered on chain) with every cell's KZG proof checked (keccak: also the hash) — reading never
  depends on the disperser. 404 when the commitment is unknown (no verified commitment on chain / no keccak
  record): op-node's ``ErrNotFound``.
* ``GET /health`` → 200 ``{"status": "ok"}``.

Writes go through the stack's disperser (`deaios.da.disperser_client`, gRPC), or, without one, through an
in-process `DAClient` (`--direct`). Errors: 400 malformed commitment or empty body, 413 body larger than a DA blob
(32,505,852 bytes, 0G's limit), 404 unknown commitment, 429 too many requests at once (at most 4 served,
64 waiting), 500 dispersal or retrieval failed (op-batcher and op-node retry). The aiohttp application is built in one function, `AltDAServer.app`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from deaios import metrics
from deaios._keccak import keccak256
from deaios.da.blobref import BlobRef
from deaios.da.dispersal import Disperse, DispersalError
from deaios.da.encoding import MAX_DATA
from deaios.service_limits import Limits, guard

log = logging.getLogger(__name__)

KECCAK_COMMITMENT = 0x00
GENERIC_COMMITMENT = 0x01
#: 0G's version byte in the generic commitment (0g-da-op-plasma `VersionByte`), in the DA-layer byte's place
ZG_VERSION_BYTE = 0x47
GENERIC_BYTES = 2 + 8 + 8 + 32

class CommitmentError(ValueError):
    """Not a commitment this server understands (HTTP 400)."""


@dataclass(frozen=True)
class Commitment:
    """A decoded commitment: a blob reference (generic) or a keccak256 hash (keccak)."""

    ref: BlobRef | None = None
    keccak: bytes | None = None


def encode_generic(ref: BlobRef) -> bytes:
    """0G's generic commitment: ``0x01 ‖ 0x47 ‖ epoch (u64 LE) ‖ quorumId (u64 LE) ‖ dataRoot``."""
    return bytes([GENERIC_COMMITMENT, ZG_VERSION_BYTE]) + ref.epoch.to_bytes(8, "little") \
        + ref.quorum_id.to_bytes(8, "little") + ref.data_root


def encode_keccak(data: bytes) -> bytes:
    return bytes([KECCAK_COMMITMENT]) + keccak256(data)


def decode_commitment(raw: bytes) -> Commitment:
    if not raw:
        raise CommitmentError("empty commitment")
    kind, body = raw[0], raw[1:]
    if kind == KECCAK_COMMITMENT:
        if len(body) != 32:
            raise CommitmentError(f"a keccak commitment has 32 bytes after its type byte, got {len(body)}")
        return Commitment(keccak=body)
    if kind != GENERIC_COMMITMENT:
        raise CommitmentError(f"unknown commitment type 0x{kind:02x}")
    if not body or body[0] != ZG_VERSION_BYTE:
        raise CommitmentError(f"generic commitment with version byte 0x{body[:1].hex() or '??'}; 0G's (and this "
                              f"server's) is 0x{ZG_VERSION_BYTE:02x}")
    if len(raw) != GENERIC_BYTES:
        raise CommitmentError(f"a generic commitment has {GENERIC_BYTES} bytes, got {len(raw)}")
    return Commitment(ref=BlobRef(raw[18:50], int.from_bytes(raw[2:10], "little"),
                                  int.from_bytes(raw[10:18], "little")))


def parse_hex(text: str) -> bytes:
    if not text.startswith("0x"):
        raise CommitmentError(f"the commitment must start with 0x, then hex digits (got {text[:20]!r})")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise CommitmentError("the commitment must be 0x followed by an even number of hex digits") from None


class KeccakIndex:
    """keccak256(preimage) → blob reference, one small file per commitment (written atomically)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "keccak"
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, digest: bytes) -> BlobRef | None:
        try:
            return BlobRef.parse((self.dir / digest.hex()).read_text())
        except (OSError, ValueError):
            return None

    def put(self, digest: bytes, ref: BlobRef) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            fh.write(str(ref))
        os.replace(tmp, self.dir / digest.hex())


class AltDAServer:
    """The HTTP handlers; `app()` builds the aiohttp application.

    `disperse` writes (through the disperser, or an in-process DAClient); `retriever` is a `DAClient` whose `get`
    reads from the DA nodes and whose `chain` answers whether a commitment is verified."""

    def __init__(self, disperse: Disperse, retriever, data_dir: Path) -> None:
        self.disperse = disperse
        self.retriever = retriever
        self.index = KeccakIndex(data_dir)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_DATA)  # larger bodies: 413
        for method in ("PUT", "POST"):
            app.router.add_route(method, "/put", self.put_generic)
            app.router.add_route(method, "/put/", self.put_generic)
            app.router.add_route(method, "/put/{commitment}", self.put_keccak)
        app.router.add_get("/get/{commitment}", self.get)
        app.router.add_get("/health", self.health)
        puts = {(method, route): MAX_DATA for method in ("PUT", "POST")
                for route in ("/put", "/put/", "/put/{commitment}")}
        return guard(metrics.instrument(app, "altda"), Limits(bodies=puts, default_body=0, active=4, waiting=64))

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_DATA:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_DATA, actual_size=request.content_length)
        data = await request.read()
        if not data:
            raise web.HTTPBadRequest(text="empty body: nothing to store")
        return data

    async def _disperse(self, data: bytes) -> BlobRef:
        try:
            ref = await self.disperse(data)
        except DispersalError as exc:
            log.error("dispersal of %d bytes failed: %s", len(data), exc)
            raise _http_error(exc.status, f"dispersal failed: {exc}") from None
        log.info("dispersed %d bytes as %s", len(data), ref)
        return ref

    async def put_generic(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        ref = await self._disperse(data)
        return web.Response(body=encode_generic(ref), content_type="application/octet-stream")

    async def put_keccak(self, request: web.Request) -> web.Response:
        try:
            commitment = decode_commitment(parse_hex(request.match_info["commitment"]))
        except CommitmentError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if commitment.keccak is None:
            raise web.HTTPBadRequest(text="POST /put/<commitment> takes keccak commitments (0x00…); generic "
                                          "commitments are made by the server: POST /put")
        data = await self._body(request)
        if keccak256(data) != commitment.keccak:
            raise web.HTTPBadRequest(text="the body does not hash to the commitment")
        if self.index.get(commitment.keccak) is None:
            self.index.put(commitment.keccak, await self._disperse(data))
        return web.Response(status=200)

    async def get(self, request: web.Request) -> web.Response:
        from deaios.da.chain import DAChainError
        from deaios.da.client import DAClientError

        try:
            commitment = decode_commitment(parse_hex(request.match_info["commitment"]))
        except CommitmentError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        ref = commitment.ref if commitment.keccak is None else self.index.get(commitment.keccak)
        if ref is None:
            raise web.HTTPNotFound(text="unknown commitment")
        chain = self.retriever.chain
        try:
            known = await asyncio.to_thread(chain.commitment_exists, ref.data_root, ref.epoch, ref.quorum_id)
        except DAChainError as exc:
            raise web.HTTPInternalServerError(text=str(exc)) from None
        if not known:
            raise web.HTTPNotFound(text=f"no verified commitment for {ref} on chain")
        try:
            data = await self.retriever.get(ref)
        except DAClientError as exc:
            log.error("retrieval of %s failed: %s", ref, exc)
            raise web.HTTPInternalServerError(text=f"retrieval failed: {exc}") from None
        if commitment.keccak is not None and keccak256(data) != commitment.keccak:
            raise web.HTTPInternalServerError(text="retrieved data does not match the keccak commitment")
        return web.Response(body=data, content_type="application/octet-stream")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})


def _http_error(status: int, text: str) -> web.HTTPException:
    if status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=MAX_DATA, actual_size=MAX_DATA + 1, text=text)
    return web.HTTPBadRequest(text=text) if status == 400 else web.HTTPInternalServerError(text=text)  # 503: 500

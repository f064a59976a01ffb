"""An OP Stack alt-DA server (`deaios da altda-server`) backed by deaios DA.

op-batcher and op-node talk to a "DA server" over HTTP (OP's `op-alt-da` `DAClient`):

* ``PUT|POST /put`` (or ``/put/``) with the raw preimage as body → 200 with the **commitment bytes** as body.
  deaios answers a *generic* commitment (``commitment_type`` 0x01): ``0x01 ‖ da_layer_byte ‖ payload``, payload
  = ``dataRoot (32) ‖ uint64 epoch ‖ uint64 quorumId`` (big-endian), i.e. the blob reference of `deaios da
  put`. The server returns it only once the blob's commitment is verified on chain (dispersal complete).
* ``PUT|POST /put/0x<hex commitment>`` with the preimage as body, for *keccak* commitments (type 0x00,
  ``0x00 ‖ keccak256(preimage)``, op-batcher with precomputed commitments): the server checks the hash,
  disperses the data and remembers keccak → blob reference in ``DIR/keccak/``; 200 with an empty body.
* ``GET /get/0x<hex commitment>`` → 200 with the preimage, retrieved from the DA nodes with every cell's KZG
  proof checked (keccak: also the hash). 404 when the commitment is unknown (no verified commitment on
  chain / no keccak record): op-node's ``ErrNotFound``.
* ``GET /health`` → 200.

Errors: 400 malformed commitment or empty body, 413 body larger than a DA blob (4,063,232 bytes), 404 unknown
commitment, 429 too many requests at once (at most 4 served, 64 waiting), 500 dispersal or retrieval failed
(op-batcher / op-node retry).

The DA layer byte is not apportioned by OP's spec (DA layers coordinate in a discussion);
deaios uses DA_LAYER_BYTE = 0x30 ("0", as in 0G) by default, `--da-layer-byte` to change it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from deaios._keccak import keccak256
from deaios.da.chain import DAChainError
from deaios.da.client import BlobRef, DAClient, DAClientError
from deaios.da.encoding import MAX_DATA
from deaios.service_limits import Limits, guard

log = logging.getLogger(__name__)

KECCAK_COMMITMENT = 0x00
GENERIC_COMMITMENT = 0x01
DA_LAYER_BYTE = 0x30
PAYLOAD_BYTES = 32 + 8 + 8


class CommitmentError(ValueError):
    """Not a commitment this server understands (HTTP 400)."""


@dataclass(frozen=True)
class Commitment:
    """A decoded commitment: a blob reference (generic) or a keccak256 hash (keccak)."""

    ref: BlobRef | None = None
    keccak: bytes | None = None


def encode_generic(ref: BlobRef, da_layer: int = DA_LAYER_BYTE) -> bytes:
    """``0x01 ‖ da_layer ‖ dataRoot ‖ uint64 epoch ‖ uint64 quorumId``."""
    return bytes([GENERIC_COMMITMENT, da_layer]) + ref.data_root + ref.epoch.to_bytes(8, "big") \
        + ref.quorum_id.to_bytes(8, "big")


def encode_keccak(data: bytes) -> bytes:
    return bytes([KECCAK_COMMITMENT]) + keccak256(data)


def decode_commitment(raw: bytes, da_layer: int = DA_LAYER_BYTE) -> Commitment:
    if not raw:
        raise CommitmentError("empty commitment")
    kind, body = raw[0], raw[1:]
    if kind == KECCAK_COMMITMENT:
        if len(body) != 32:
            raise CommitmentError(f"a keccak commitment has 32 bytes after its type byte, got {len(body)}")
        return Commitment(keccak=body)
    if kind != GENERIC_COMMITMENT:
        raise CommitmentError(f"unknown commitment type 0x{kind:02x}")
    if not body or body[0] != da_layer:
        raise CommitmentError(f"generic commitment for DA layer 0x{body[:1].hex() or '??'}, this server is "
                              f"0x{da_layer:02x}")
    payload = body[1:]
    if len(payload) != PAYLOAD_BYTES:
        raise CommitmentError(f"payload of {len(payload)} bytes, expected {PAYLOAD_BYTES}")
    return Commitment(ref=BlobRef(payload[:32], int.from_bytes(payload[32:40], "big"),
                                  int.from_bytes(payload[40:48], "big")))


def parse_hex(text: str) -> bytes:
    try:
        if not text.startswith("0x"):
            raise ValueError("no 0x prefix")
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise CommitmentError(f"the commitment must be 0x-hex ({exc})") from None


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
    """The HTTP handlers; `app()` builds the aiohttp application."""

    def __init__(self, client: DAClient, data_dir: Path, da_layer: int = DA_LAYER_BYTE) -> None:
        self.client = client
        self.index = KeccakIndex(data_dir)
        self.da_layer = da_layer

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
        return guard(app, Limits(bodies=puts, default_body=0, active=4, waiting=64))

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_DATA:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_DATA, actual_size=request.content_length)
        data = await request.read()
        if not data:
            raise web.HTTPBadRequest(text="empty body: nothing to store")
        return data

    async def _disperse(self, data: bytes) -> BlobRef:
        try:
            result = await self.client.put(data)
        except (DAClientError, DAChainError) as exc:
            log.error("dispersal of %d bytes failed: %s", len(data), exc)
            raise web.HTTPInternalServerError(text=f"dispersal failed: {exc}") from None
        log.info("dispersed %d bytes as %s in %.2f s", len(data), result.ref, result.seconds["total"])
        return result.ref

    async def put_generic(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        ref = await self._disperse(data)
        return web.Response(body=encode_generic(ref, self.da_layer), content_type="application/octet-stream")

    async def put_keccak(self, request: web.Request) -> web.Response:
        try:
            commitment = decode_commitment(parse_hex(request.match_info["commitment"]), self.da_layer)
        except CommitmentError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if commitment.keccak is None:
            raise web.HTTPBadRequest(text="PUT /put/<commitment> takes keccak commitments (0x00…); generic "
                                          "commitments are made by the server: PUT /put")
        data = await self._body(request)
        if keccak256(data) != commitment.keccak:
            raise web.HTTPBadRequest(text="the body does not hash to the commitment")
        if self.index.get(commitment.keccak) is None:
            self.index.put(commitment.keccak, await self._disperse(data))
        return web.Response(status=200)

    async def get(self, request: web.Request) -> web.Response:
        try:
            commitment = decode_commitment(parse_hex(request.match_info["commitment"]), self.da_layer)
        except CommitmentError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        ref = commitment.ref if commitment.keccak is None else self.index.get(commitment.keccak)
        if ref is None:
            raise web.HTTPNotFound(text="unknown commitment")
        chain = self.client.chain
        try:
            known = await asyncio.to_thread(chain.commitment_exists, ref.data_root, ref.epoch, ref.quorum_id)
        except DAChainError as exc:
            raise web.HTTPInternalServerError(text=str(exc)) from None
        if not known:
            raise web.HTTPNotFound(text=f"no verified commitment for {ref} on chain")
        try:
            data = await self.client.get(ref)
        except DAClientError as exc:
            log.error("retrieval of %s failed: %s", ref, exc)
            raise web.HTTPInternalServerError(text=f"retrieval failed: {exc}") from None
        if commitment.keccak is not None and keccak256(data) != commitment.keccak:
            raise web.HTTPInternalServerError(text="retrieved data does not match the keccak commitment")
        return web.Response(body=data, content_type="application/octet-stream")

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


async def serve(server: AltDAServer, host: str, port: int, ready=None) -> None:
    """Serve until cancelled; `ready(url)` is called once listening."""
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://{host}:{bound}"
    log.info("alt-DA server listening on %s", url)
    if ready is not None:
        ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()

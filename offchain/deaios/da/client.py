"""The DA client: disperser (`put`) and retriever (`get`).

put(data): encode (ckzg cells) → `submitOriginalData(dataRoot)` paying the blob fee → send each member of the
assigned quorum its columns (`da_sign`) → check each returned signature with the chain's pairing precompile →
once the signers' rows reach 2/3 of the quorum, aggregate and `submitVerifiedCommitRoots` → a `BlobRef`.

get(ref): check on chain that the blob's commitment was verified and is hash_to_g1(dataRoot) → ask the
quorum's members for their columns (`da_retrieve`) → keep the columns whose KZG proofs verify against the
header (whose hash must be the data root) → decode once 64 distinct columns are in.

A blob reference is ``0x<dataRoot>:<epoch>:<quorumId>``.

Signers are contacted at the socket each registered on chain, which any staked signer sets freely: only a
plain ``host:port`` is used (never a URL, nor loopback or private addresses unless the chain itself is
local; `deaios.da.chain.socket_url`), and a reply is read only up to what the request can legitimately
return (`SIGN_REPLY`, `retrieve_reply`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from deaios.da import bls
from deaios.da.blobref import BlobRef
from deaios.da.chain import DAChain, DAChainError
from deaios.da.encoding import (
    CELL_BYTES,
    DATA_CELLS,
    MAX_BLOBS,
    MIN_ROWS,
    PROOF_BYTES,
    BlobHeader,
    Column,
    EncodedBlob,
    Encoder,
    EncodingError,
    columns_of_rows,
    decode,
    verify_columns,
)
from deaios.jsonrpc import RpcCallError, rpc_call

log = logging.getLogger(__name__)

SIGN_REPLY = 4 << 10  # {"signer", "signature": [x, y]}


def retrieve_reply(columns: int) -> int:
    """The largest honest da_retrieve reply for `columns` columns (hex cells and proofs, and the header)."""
    return columns * MAX_BLOBS * (CELL_BYTES + PROOF_BYTES) * 2 + (64 << 10)


class DAClientError(RuntimeError):
    """Dispersal or retrieval failed (the message says why)."""


@dataclass
class PutResult:
    ref: BlobRef
    length: int
    upload_tx: str
    verify_tx: str
    signers: int
    rows_signed: int
    rows: int
    seconds: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"ref": str(self.ref), "dataRoot": "0x" + self.ref.data_root.hex(), "epoch": self.ref.epoch,
                "quorumId": self.ref.quorum_id, "length": self.length, "uploadTx": self.upload_tx,
                "verifyTx": self.verify_tx, "signers": self.signers, "rowsSigned": self.rows_signed,
                "rows": self.rows, "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


class DAClient:
    def __init__(self, chain: DAChain, encoder: Encoder | None = None, timeout: float = 60.0) -> None:
        self.chain = chain
        self.encoder = encoder or Encoder()
        self.timeout = timeout

    # ------------------------------------------------------------ put

    async def put(self, data: bytes) -> PutResult:
        t0 = time.monotonic()
        encoded = await asyncio.to_thread(self.encoder.encode, data)
        t1 = time.monotonic()
        root = encoded.header.data_root
        try:
            uploads = await asyncio.to_thread(self.chain.submit_original_data, [root])
        except DAChainError as exc:
            raise DAClientError(str(exc)) from None
        upload = uploads[0]
        t2 = time.monotonic()
        quorum = await asyncio.to_thread(self.chain.quorum, upload.epoch, upload.quorum_id)
        if quorum.rows < MIN_ROWS:
            raise DAClientError(f"the quorum has {quorum.rows} rows; this encoding needs at least {MIN_ROWS}")
        infos = await asyncio.to_thread(self.chain.signer_infos, list(quorum.members))
        async with aiohttp.ClientSession() as session:
            replies = await asyncio.gather(*(self._ask_sign(session, info, quorum, encoded, upload)
                                             for info in infos))
        t3 = time.monotonic()
        commitment = encoded.header.erasure_commitment
        digest = bls.commit_digest(root, upload.epoch, upload.quorum_id, commitment)
        checks = await asyncio.gather(*(asyncio.to_thread(self.chain.verify_signature, digest, sig, info.pk_g1,
                                                          info.pk_g2)
                                        for info, sig in zip(infos, replies, strict=True) if sig is not None))
        good = [(info, sig) for info, sig in zip(infos, replies, strict=True) if sig is not None]
        good = [pair for pair, ok in zip(good, checks, strict=True) if ok]
        signed_rows = [r for info, _ in good for r in quorum.rows_of(info.address)]
        if 3 * len(signed_rows) < 2 * quorum.rows:
            raise DAClientError(f"only {len(good)} of {len(infos)} signers ({len(signed_rows)} of {quorum.rows} "
                                f"rows) signed blob 0x{root.hex()}; 2/3 of the rows are needed")
        submission = (root, upload.epoch, upload.quorum_id, commitment,
                      bls.quorum_bitmap(signed_rows, quorum.rows),
                      bls.g2_eip197(bls.aggregate_g2(info.pk_g2 for info, _ in good)),  # type: ignore[arg-type]
                      bls.aggregate_g1(sig for _, sig in good))
        try:
            receipt = await asyncio.to_thread(self.chain.submit_verified, [submission])
        except DAChainError as exc:
            raise DAClientError(str(exc)) from None
        t4 = time.monotonic()
        return PutResult(BlobRef(root, upload.epoch, upload.quorum_id), len(data), upload.tx_hash,
                         "0x" + bytes(receipt["transactionHash"]).hex(), len(good), len(signed_rows), quorum.rows,
                         {"encode": t1 - t0, "upload": t2 - t1, "sign": t3 - t2, "verify": t4 - t3,
                          "total": t4 - t0})

    async def _ask_sign(self, session: aiohttp.ClientSession, info, quorum, encoded: EncodedBlob,
                        upload) -> bls.G1Point | None:
        cols = columns_of_rows(quorum.rows_of(info.address), quorum.rows)
        request = {"header": encoded.header.to_json(), "epoch": upload.epoch, "quorumId": upload.quorum_id,
                   "txHash": upload.tx_hash,
                   "columns": {str(c): _hex(encoded.columns[c].to_bytes()) for c in cols}}
        try:
            reply = await rpc_call(session, info.url(self.chain.local), "da_sign", request, timeout=self.timeout,
                                   max_reply=SIGN_REPLY)
            x, y = (int(v, 16) if isinstance(v, str) else int(v) for v in reply["signature"])
        except (RpcCallError, KeyError, TypeError, ValueError) as exc:
            log.info("no signature from %s: %s", info.address, str(exc)[:200])
            return None
        point = (x, y)
        return point if bls.is_on_curve_g1(point) else None

    # ------------------------------------------------------------ get

    async def get(self, ref: BlobRef) -> bytes:
        try:
            verified = await asyncio.to_thread(self.chain.verified_commitment, ref.data_root, ref.epoch,
                                               ref.quorum_id)
        except DAChainError as exc:
            raise DAClientError(f"blob {ref} has no verified commitment on chain ({exc})") from None
        if verified != bls.hash_to_g1(ref.data_root):
            raise DAClientError(f"blob {ref}: the verified commitment is not this encoding's")
        quorum = await asyncio.to_thread(self.chain.quorum, ref.epoch, ref.quorum_id)
        infos = await asyncio.to_thread(self.chain.signer_infos, list(quorum.members))
        header: BlobHeader | None = None
        columns: dict[int, Column] = {}
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(self._fetch(session, info, quorum, ref)) for info in infos]
            for fut in asyncio.as_completed(tasks):
                got = await fut
                if got is None:
                    continue
                h, cols = got
                if h.data_root != ref.data_root:
                    continue  # a header that does not hash to the root: ignore the node
                fresh = [c for c in cols if c.index not in columns]
                if fresh and await asyncio.to_thread(verify_columns, h, fresh):
                    header = h
                    columns.update((c.index, c) for c in fresh)
                elif fresh:  # some column is bad: keep the ones that verify on their own
                    for c in fresh:
                        if await asyncio.to_thread(verify_columns, h, [c]):
                            header = h
                            columns[c.index] = c
                if len(columns) >= 2 * DATA_CELLS or (header and all(c in columns for c in range(DATA_CELLS))):
                    break
            for t in tasks:
                t.cancel()
        if header is None or len(columns) < DATA_CELLS:
            raise DAClientError(f"blob {ref}: only {len(columns)} verified columns of the {DATA_CELLS} needed "
                                "could be retrieved")
        try:
            return await asyncio.to_thread(decode, header, columns)
        except EncodingError as exc:
            raise DAClientError(str(exc)) from None

    async def _fetch(self, session: aiohttp.ClientSession, info, quorum, ref: BlobRef) \
            -> tuple[BlobHeader, list[Column]] | None:
        cols = columns_of_rows(quorum.rows_of(info.address), quorum.rows)
        try:
            reply = await rpc_call(session, info.url(self.chain.local), "da_retrieve", _hex(ref.data_root), ref.epoch,
                                   ref.quorum_id, cols, timeout=self.timeout, max_reply=retrieve_reply(len(cols)))
            header = BlobHeader.from_json(reply["header"])
            out = []
            for c, raw in reply["columns"].items():
                index = int(c)
                if index in cols:
                    out.append(Column.from_bytes(index, bytes.fromhex(raw.removeprefix("0x")),
                                                 len(header.commitments)))
            return header, out
        except (RpcCallError, EncodingError, KeyError, TypeError, ValueError, AttributeError):
            return None

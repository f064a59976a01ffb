"""A DA blob reference (the blob's data root and the (epoch, quorum) it was dispersed to) and the size limit.

Its text form is ``0x<dataRoot>:<epoch>:<quorumId>`` (what `deaios da put` prints last). This module imports
nothing heavy, so light clients (the `deaios da put` path through the disperser) can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: 0G's blob size limit (0g-da-client: MaxBlobSize − 4 = 31 MiB − 4 bytes), the most one DA blob holds.
MAX_DATA = 31 * 1024 * 1024 - 4


@dataclass(frozen=True)
class BlobRef:
    data_root: bytes
    epoch: int
    quorum_id: int

    def __str__(self) -> str:
        return f"0x{self.data_root.hex()}:{self.epoch}:{self.quorum_id}"

    @classmethod
    def parse(cls, text: str) -> BlobRef:
        try:
            root, epoch, quorum = text.strip().split(":")
            data_root = bytes.fromhex(root.removeprefix("0x"))
            if len(data_root) != 32:
                raise ValueError("the data root has 32 bytes")
            return cls(data_root, int(epoch), int(quorum))
        except ValueError as exc:
            raise ValueError(f"a blob reference is 0x<64 hex digits>:<epoch>:<quorumId>, got {text!r} ({exc})") \
                from None

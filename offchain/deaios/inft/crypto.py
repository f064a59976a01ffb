"""The INFT encryption formats (all from `cryptography`):

* data: metadata encrypted with a random 256-bit key, AES-256-GCM, stored as one file in the storage network:
  `0x01 ‖ nonce(12) ‖ ciphertext‖tag`, associated data `deaios/inft/data/v1`. Its 0G merkle root is the
  token's `dataHash`.
* sealed key: ECIES over X25519: `ephemeral public key(32) ‖ nonce(12) ‖ AES-256-GCM(data key)‖tag(16)`
  (92 bytes for a 32-byte key), the AES key being HKDF-SHA256(ECDH shared secret, info = `deaios/inft/seal/v1`
  ‖ ephemeral public ‖ recipient public), associated data = ephemeral public ‖ recipient public.
* X25519 key files: the 32-byte private key as hex, mode 0600, default `$DEAIOS_HOME/inft/<address>.x25519`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

DATA_VERSION = 1
DATA_AAD = b"deaios/inft/data/v1"
SEAL_INFO = b"deaios/inft/seal/v1"
KEY_SIZE = 32
NONCE_SIZE = 12
SEALED_KEY_SIZE = 32 + NONCE_SIZE + KEY_SIZE + 16


class CryptoError(ValueError):
    """A ciphertext or sealed key does not open with the given key (wrong key, or tampered with)."""


@dataclass(frozen=True)
class X25519Keys:
    """An X25519 key pair (raw 32-byte encodings)."""

    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> X25519Keys:
        return cls.from_private(
            X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        )

    @classmethod
    def from_private(cls, private: bytes) -> X25519Keys:
        if len(private) != 32:
            raise ValueError("an X25519 private key is 32 bytes")
        pub = (
            X25519PrivateKey.from_private_bytes(private)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return cls(private, pub)

    @classmethod
    def derive(cls, secret: bytes, label: bytes) -> X25519Keys:
        """A key pair derived deterministically from another secret (the oracle's from its signing key)."""
        return cls.from_private(_hkdf(secret, label))


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt_data(key: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return bytes([DATA_VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, DATA_AAD)


def decrypt_data(key: bytes, blob: bytes) -> bytes:
    if len(blob) < 1 + NONCE_SIZE + 16 or blob[0] != DATA_VERSION:
        raise CryptoError("not an INFT data ciphertext")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE_SIZE], blob[1 + NONCE_SIZE :], DATA_AAD)
    except InvalidTag:
        raise CryptoError("the data key does not open this ciphertext") from None


def seal(recipient_public: bytes, secret: bytes) -> bytes:
    """ECIES-encrypt `secret` (a data key) to an X25519 public key."""
    ephemeral = X25519Keys.generate()
    aes_key = _seal_key(
        X25519PrivateKey.from_private_bytes(ephemeral.private),
        ephemeral.public,
        recipient_public,
        recipient_public,
    )
    nonce = os.urandom(NONCE_SIZE)
    return (
        ephemeral.public + nonce + AESGCM(aes_key).encrypt(nonce, secret, ephemeral.public + recipient_public)
    )


def unseal(keys: X25519Keys, sealed: bytes) -> bytes:
    """Open a sealed key with the recipient's key pair; CryptoError if it was not sealed to it."""
    if len(sealed) < 32 + NONCE_SIZE + 16:
        raise CryptoError("sealed key too short")
    ephemeral_public, nonce, body = sealed[:32], sealed[32 : 32 + NONCE_SIZE], sealed[32 + NONCE_SIZE :]
    aes_key = _seal_key(
        X25519PrivateKey.from_private_bytes(keys.private), ephemeral_public, keys.public, ephemeral_public
    )
    try:
        return AESGCM(aes_key).decrypt(nonce, body, ephemeral_public + keys.public)
    except InvalidTag:
        raise CryptoError("this sealed key is not for this X25519 key (or was tampered with)") from None


def _seal_key(own: X25519PrivateKey, ephemeral_public: bytes, recipient_public: bytes, peer: bytes) -> bytes:
    try:
        shared = own.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError as exc:  # a low-order point: the shared secret would be all zeros
        raise CryptoError(f"bad X25519 public key: {exc}") from None
    return _hkdf(shared, SEAL_INFO + ephemeral_public + recipient_public)


def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


# -- key files -------------------------------------------------------------------------------------------
def default_key_path(home: Path, address: str) -> Path:
    return home / "inft" / f"{address.lower()}.x25519"


def load_or_create_keys(path: Path, create: bool = True) -> X25519Keys:
    """Read an X25519 key file (hex private key); create it (mode 0600) when missing and `create`."""
    if path.exists():
        text = path.read_text().strip().removeprefix("0x")
        try:
            return X25519Keys.from_private(bytes.fromhex(text))
        except ValueError:
            raise ValueError(f"{path} is not an X25519 key file (64 hex characters)") from None
    if not create:
        raise FileNotFoundError(path)
    keys = X25519Keys.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(keys.private.hex() + "\n")
    return keys

"""The INFT formats in Python: sealing (ECIES over X25519), data encryption, key files, proofs, and the
ABI file being current."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from deaios.inft import crypto
from deaios.inft.chain import ABI_FILE, render_abis
from deaios.inft.proofs import (
    AccessProof,
    OwnershipProof,
    TransferContext,
    oracle_key_digest,
    recover_attestation,
    sign_attestation,
)
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]


@settings(max_examples=10, deadline=None)
@given(secret=st.binary(min_size=1, max_size=64), plaintext=st.binary(max_size=2000))
def test_seal_and_encrypt_round_trip(secret: bytes, plaintext: bytes) -> None:
    keys = crypto.X25519Keys.generate()
    assert crypto.unseal(keys, crypto.seal(keys.public, secret)) == secret
    key = crypto.new_data_key()
    assert crypto.decrypt_data(key, crypto.encrypt_data(key, plaintext)) == plaintext


def test_wrong_key_or_tampering_is_detected() -> None:
    alice, bob = crypto.X25519Keys.generate(), crypto.X25519Keys.generate()
    sealed = crypto.seal(alice.public, b"k" * 32)
    assert len(sealed) == crypto.SEALED_KEY_SIZE
    with pytest.raises(crypto.CryptoError):
        crypto.unseal(bob, sealed)
    for i in (0, 40, len(sealed) - 1):
        with pytest.raises(crypto.CryptoError):
            crypto.unseal(alice, sealed[:i] + bytes([sealed[i] ^ 1]) + sealed[i + 1 :])
    key = crypto.new_data_key()
    blob = crypto.encrypt_data(key, b"agent")
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt_data(crypto.new_data_key(), blob)
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt_data(key, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt_data(key, b"\x02" + blob[1:])
    with pytest.raises(crypto.CryptoError):  # a low-order point
        crypto.seal(b"\x00" * 32, b"k")


def test_key_files(tmp_path: Path) -> None:
    path = crypto.default_key_path(tmp_path, "0xABC")
    with pytest.raises(FileNotFoundError):
        crypto.load_or_create_keys(path, create=False)
    keys = crypto.load_or_create_keys(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert crypto.load_or_create_keys(path) == keys
    path.write_text("nonsense")
    with pytest.raises(ValueError):
        crypto.load_or_create_keys(path)
    assert crypto.X25519Keys.derive(b"s", b"l") == crypto.X25519Keys.derive(b"s", b"l")


def test_proofs_sign_and_serialize() -> None:
    receiver, oracle, owner = Account.create(), Account.create(), Account.create()
    verifier, token = Account.create().address, Account.create().address
    ctx = TransferContext(31337, verifier, token, 7, owner.address, receiver.address)
    assert TransferContext.from_json(ctx.to_json()) == ctx
    a = AccessProof.create(receiver.key, ctx, b"\x01" * 32, b"\x02" * 32)
    assert a.signer(ctx) == receiver.address and AccessProof.from_json(a.to_json()) == a
    o = OwnershipProof.create(oracle.key, ctx, b"\x01" * 32, b"\x03" * 32, b"sealed", b"\x02" * 32)
    assert o.signer(ctx) == oracle.address and OwnershipProof.from_json(o.to_json()) == o
    assert len(a.nonce) == 32 and a.nonce != AccessProof.create(receiver.key, ctx, b"\x01" * 32, b"").nonce
    # a proof names its transfer: under another token id, owner or receiver it is someone else's signature
    for other in (TransferContext(31337, ctx.verifier, ctx.token, 8, ctx.from_, ctx.to),
                  TransferContext(31337, ctx.verifier, ctx.token, 7, receiver.address, ctx.to),
                  TransferContext(1, ctx.verifier, ctx.token, 7, ctx.from_, ctx.to)):
        assert a.signer(other) != receiver.address and o.signer(other) != oracle.address
    digest = oracle_key_digest(b"\x05" * 32, 31337)
    assert recover_attestation(digest, sign_attestation(oracle.key, digest)) == oracle.address


def test_abi_file_is_current() -> None:
    build = ROOT / ".build" / "__local__.json"
    if not build.exists():
        pytest.skip("not compiled")
    assert ABI_FILE.read_text() == render_abis(build), "run `python -m deaios.inft.chain` after `ape compile`"

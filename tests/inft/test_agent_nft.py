"""AgentNFT + DataVerifier on a local chain: minting, transfers and clones with proofs, every custom error,
replay protection, usage authorizations, delegation, updates, royalties, admin."""

from __future__ import annotations

import dataclasses

import ape
from eth_utils import to_checksum_address
from inft_helpers import (
    ASSISTANT,
    ASSISTANT_KEY,
    ORACLE,
    OTHER_KEY,
    ROYALTY_BPS,
    ZERO_ADDRESS,
    ctx_for,
    datas,
    deploy,
    eth_pubkey,
    h,
    proofs_for,
    revert_name,
    x25519_pub,
)

A, B = h("a"), h("b")


def test_deploy_and_mint(nft, verifier, deployment, alice, token):
    assert deployment["oracle_signer"] == ORACLE
    assert verifier.oracleSigner() == ORACLE
    assert nft.verifier() == verifier.address
    assert nft.ownerOf(token) == alice
    assert nft.creatorOf(token) == alice
    assert [tuple(d) for d in nft.intelligentDatasOf(token)] == datas("a", "b")
    assert nft.royaltyInfo(token, 10_000) == (alice.address, ROYALTY_BPS)
    assert nft.nextTokenId() == 2
    assert nft.supportsInterface("0x2a55205a")  # ERC-2981
    assert nft.supportsInterface("0x80ac58cd")  # ERC-721


def test_mint_with_sealed_keys_and_counts(nft, alice, bob):
    tx = nft.mintWithSealedKeys(datas("x"), bob, [b"k1"], sender=alice)
    ev = tx.events.filter(nft.PublishedSealedKey)[0]
    assert (ev._to, ev._tokenId, list(ev._sealedKeys)) == (bob.address, 2, [b"k1"])
    assert tx.events.filter(nft.CreatorSet)[0].creator == alice.address
    with ape.reverts(nft.ERC7857SealedKeyCountMismatch, keys=2, datas=1):
        nft.mintWithSealedKeys(datas("x"), bob, [b"k1", b"k2"], sender=alice)
    with ape.reverts(nft.ERC7857InvalidDataCount, count=0):
        nft.mint([], bob, sender=alice)
    with ape.reverts(nft.ERC7857InvalidDataCount, count=17):
        nft.mint(datas(*map(str, range(17))), bob, sender=alice)
    with ape.reverts(nft.ERC721InvalidReceiver):
        nft.mint(datas("x"), ZERO_ADDRESS, sender=alice)
    with ape.reverts(nft.ERC721NonexistentToken, tokenId=99):
        nft.intelligentDatasOf(99)


def test_transfer_with_proofs(nft, verifier, alice, bob, token):
    proofs = proofs_for(ctx_for(nft, token, alice, bob), [A, B], bob.private_key)
    tx = nft.iTransferFrom(alice, bob, token, proofs, sender=alice)
    assert nft.ownerOf(token) == bob
    new = [p[1][2] for p in proofs]
    assert [bytes(d[1]) for d in nft.intelligentDatasOf(token)] == new
    assert [d[0] for d in nft.intelligentDatasOf(token)] == ["entry a", "entry b"]
    ev = tx.events.filter(nft.PublishedSealedKey)[0]
    assert ev._to == bob.address and list(ev._sealedKeys) == [b"sealed:" + n for n in new]
    upd = tx.events.filter(nft.Updated)[0]
    assert [bytes(d[1]) for d in upd._oldDatas] == [A, B] and [bytes(d[1]) for d in upd._newDatas] == new
    assert len(tx.events.filter(verifier.ProofNoncesUsed)) == 2
    # the creator (royalty receiver) does not change hands
    assert nft.royaltyInfo(token, 1000) == (alice.address, 50)


def test_operator_transfers(nft, alice, bob, carol, token):
    proofs = proofs_for(ctx_for(nft, token, alice, bob), [A, B], bob.private_key)
    with ape.reverts(nft.ERC721InsufficientApproval):
        nft.iTransferFrom(alice, bob, token, proofs, sender=carol)
    nft.setApprovalForAll(carol, True, sender=alice)
    nft.iTransferFrom(alice, bob, token, proofs, sender=carol)
    assert nft.ownerOf(token) == bob


def test_plain_transfers_disabled(nft, alice, bob, token):
    with ape.reverts(nft.ERC7857PlainTransferDisabled):
        nft.transferFrom(alice, bob, token, sender=alice)
    with ape.reverts(nft.ERC7857PlainTransferDisabled):
        nft.safeTransferFrom(alice, bob, token, sender=alice)


def test_transfer_checks(nft, w3nft, alice, bob, carol, token):
    ctx = ctx_for(nft, token, alice, bob)
    ok = proofs_for(ctx, [A, B], bob.private_key)

    def transfer(proofs: list[tuple], to=bob, frm=alice) -> str | None:
        return revert_name(
            w3nft.functions.iTransferFrom(
                frm.address, to if isinstance(to, str) else to.address, token, proofs
            ),
            alice.address,
        )

    assert transfer(ok, to=ZERO_ADDRESS) == "ERC721InvalidReceiver"
    assert transfer(ok, to=carol, frm=bob) == "ERC721IncorrectOwner"
    assert transfer([]) == "ERC7857EmptyProof"
    assert transfer(ok[:1]) == "ERC7857ProofCountMismatch"
    assert transfer(proofs_for(ctx, [A, h("other")], bob.private_key)) == "ERC7857DataHashMismatch"
    # the access proof is carol's, not bob's
    assert transfer(proofs_for(ctx, [A, B], carol.private_key)) == "ERC7857AccessAssistantMismatch"
    # sealed for another key than the one bob asked for
    assert (
        transfer(proofs_for(ctx, [A, B], bob.private_key, target=x25519_pub("evil"), wanted=x25519_pub("bob")))
        == "ERC7857TargetPubkeyMismatch"
    )
    # an empty wanted key: the target must be bob's own secp256k1 key ...
    assert (
        transfer(proofs_for(ctx, [A, B], bob.private_key, target=eth_pubkey(carol.private_key), wanted=b""))
        == "ERC7857WantedReceiverMismatch"
    )
    # proofs for this token to bob do not move it to carol, and proofs for another token do not move this one:
    # the oracle's signature names the transfer
    assert transfer(ok, to=carol) == "ERC7857InvalidOwnershipProof"
    other = ctx_for(nft, token + 1, alice, bob)
    assert transfer(proofs_for(other, [A, B], bob.private_key)) == "ERC7857InvalidOwnershipProof"
    # ... and with it the transfer goes through
    nft.iTransferFrom(
        alice,
        bob,
        token,
        proofs_for(ctx, [A, B], bob.private_key, target=eth_pubkey(bob.private_key), wanted=b""),
        sender=alice,
    )
    assert nft.ownerOf(token) == bob


def test_verifier_errors(nft, w3nft, alice, bob, token):
    ctx = ctx_for(nft, token, alice, bob)
    good = proofs_for(ctx, [A, B], bob.private_key)

    def with_field(part: int, field: int, value) -> list[tuple]:
        proof = [list(good[0][0]), list(good[0][1])]
        proof[part][field] = value
        return [(tuple(proof[0]), tuple(proof[1])), good[1]]

    def transfer(proofs: list[tuple]) -> str | None:
        return revert_name(
            w3nft.functions.iTransferFrom(alice.address, bob.address, token, proofs), alice.address
        )

    assert transfer(good) is None
    assert (
        transfer(proofs_for(ctx, [A, B], bob.private_key, oracle_key=OTHER_KEY)) == "ERC7857InvalidOwnershipProof"
    )
    assert transfer(proofs_for(ctx, [A, B], bob.private_key, oracle_type=1)) == "ERC7857UnsupportedOracleType"
    assert transfer(with_field(0, 0, h("z"))) == "ERC7857VerifierDataHashMismatch"
    assert transfer(with_field(0, 3, b"\x01" * 64)) == "ERC7857InvalidAccessProof"
    assert transfer(with_field(0, 2, b"")) == "ERC7857EmptyNonce"
    assert transfer(with_field(1, 5, b"")) == "ERC7857EmptyNonce"


def test_replayed_proof_reverts(nft, verifier, w3nft, alice, bob, carol, token):
    ctx = ctx_for(nft, token, alice, bob)
    proofs = proofs_for(ctx, [A, B], bob.private_key)
    tx = nft.iCloneFrom(alice, bob, token, proofs, sender=alice)
    key = verifier.nonceKey(0, nft.address, token, proofs[0][0][2])
    assert verifier.usedNonces(key)
    assert tx.events.filter(verifier.ProofNoncesUsed)[0].accessNonceKey == key
    f = w3nft.functions
    assert (
        revert_name(f.iCloneFrom(alice.address, bob.address, token, proofs), alice.address)
        == "ERC7857ProofAlreadyUsed"
    )
    assert (
        revert_name(f.iTransferFrom(alice.address, bob.address, token, proofs), alice.address)
        == "ERC7857ProofAlreadyUsed"
    )
    # a fresh ownership proof does not make a used access proof valid again
    again = proofs_for(ctx, [A, B], bob.private_key)
    again[0] = (proofs[0][0], again[0][1])
    assert (
        revert_name(f.iTransferFrom(alice.address, bob.address, token, again), alice.address)
        == "ERC7857ProofAlreadyUsed"
    )
    # a caller other than the token contract: the proofs name the token, so they do not verify for carol
    fresh = proofs_for(ctx, [A, B], bob.private_key)
    with ape.reverts(verifier.ERC7857InvalidOwnershipProof):
        verifier.verifyTransferValidity(token, alice, bob, fresh, sender=carol)
    # proofs made for carol as the "token" verify once for carol, and burn nothing of the real token
    mine = proofs_for(dataclasses.replace(ctx, token=carol.address), [A], bob.private_key)
    verifier.verifyTransferValidity(token, alice, bob, mine, sender=carol)
    with ape.reverts(verifier.ERC7857ProofAlreadyUsed):
        verifier.verifyTransferValidity(token, alice, bob, mine, sender=carol)
    nft.iTransferFrom(alice, bob, token, fresh, sender=alice)
    assert nft.ownerOf(token) == bob


def test_clone(nft, alice, bob, carol, token):
    proofs = proofs_for(ctx_for(nft, token, alice, bob), [A, B], bob.private_key)
    tx = nft.iCloneFrom(alice, bob, token, proofs, sender=alice)
    ev = tx.events.filter(nft.Cloned)[0]
    assert (ev._tokenId, ev._newTokenId, ev._from, ev._to) == (token, 2, alice.address, bob.address)
    assert nft.ownerOf(2) == bob and nft.ownerOf(token) == alice
    assert [bytes(d[1]) for d in nft.intelligentDatasOf(2)] == [p[1][2] for p in proofs]
    assert [bytes(d[1]) for d in nft.intelligentDatasOf(token)] == [A, B]
    assert nft.creatorOf(2) == alice and nft.royaltyInfo(2, 10_000) == (alice.address, ROYALTY_BPS)
    assert tx.events.filter(nft.PublishedSealedKey)[0]._tokenId == 2
    with ape.reverts(nft.ERC721InsufficientApproval):
        nft.iCloneFrom(alice, carol, token, proofs_for(ctx_for(nft, token, alice, carol), [A, B],
                                                       carol.private_key), sender=carol)


def test_delegated_assistant(nft, alice, bob, carol, token):
    proofs = proofs_for(ctx_for(nft, token, alice, bob), [A, B], ASSISTANT_KEY, target=x25519_pub("bob"))
    with ape.reverts(nft.ERC7857AccessAssistantMismatch):
        nft.iTransferFrom(alice, bob, token, proofs, sender=alice)
    tx = nft.delegateAccess(ASSISTANT, sender=bob)
    assert tx.events.filter(nft.DelegateAccess)[0]._assistant == ASSISTANT
    assert nft.getDelegateAccess(bob) == ASSISTANT
    nft.iTransferFrom(alice, bob, token, proofs, sender=alice)
    assert nft.ownerOf(token) == bob
    with ape.reverts(nft.ERC7857InvalidAssistant, assistant=bob.address):
        nft.delegateAccess(bob, sender=bob)
    nft.delegateAccess(ZERO_ADDRESS, sender=bob)
    assert nft.getDelegateAccess(bob) == ZERO_ADDRESS


def test_delegation_lock(chain, nft, admin, alice, bob, carol):
    """A trusted market (DELEGATION_LOCKER_ROLE) freezes a buyer's delegation until its purchase's deadline."""
    from inft_helpers import ASSISTANT

    with ape.reverts(nft.AccessControlUnauthorizedAccount):
        nft.lockDelegation(bob, 2**40, sender=carol)
    nft.grantRole(nft.DELEGATION_LOCKER_ROLE(), carol, sender=admin)
    nft.delegateAccess(ASSISTANT, sender=bob)
    until = chain.blocks.head.timestamp + 100
    tx = nft.lockDelegation(bob, until, sender=carol)
    assert tx.events.filter(nft.DelegationLocked)[0].until == until == nft.delegationLockedUntil(bob)
    nft.lockDelegation(bob, until - 50, sender=carol)  # never shortened
    assert nft.delegationLockedUntil(bob) == until
    with ape.reverts(nft.ERC7857DelegationLocked, user=bob.address, until=until):
        nft.delegateAccess(ZERO_ADDRESS, sender=bob)
    nft.delegateAccess(carol, sender=alice)  # others are free
    chain.pending_timestamp = until + 1
    chain.mine()
    nft.delegateAccess(ZERO_ADDRESS, sender=bob)
    assert nft.getDelegateAccess(bob) == ZERO_ADDRESS


def test_data_version_counts_updates_only(nft, alice, bob, token):
    assert nft.dataVersionOf(token) == 0
    nft.update(token, datas("c", "d"), sender=alice)
    assert nft.dataVersionOf(token) == 1
    nft.iTransferFrom(alice, bob, token, proofs_for(ctx_for(nft, token, alice, bob), [h("c"), h("d")],
                                                    bob.private_key), sender=alice)
    assert nft.dataVersionOf(token) == 1  # a transfer re-encrypts the same data
    assert nft.supportsInterface(_interface_id(nft, ["lockDelegation(address,uint64)",
                                                     "delegationLockedUntil(address)", "dataVersionOf(uint256)"]))


def _interface_id(nft, signatures: list[str]) -> bytes:
    from eth_utils import keccak

    value = 0
    for signature in signatures:
        value ^= int.from_bytes(keccak(text=signature)[:4], "big")
    return value.to_bytes(4, "big")


def test_authorizations(nft, alice, bob, carol, token):
    tx = nft.authorizeUsage(token, bob, sender=alice)
    ev = tx.events.filter(nft.Authorization)[0]
    assert (ev._from, ev._to, ev._tokenId) == (alice.address, bob.address, token)
    nft.authorizeUsage(token, carol, sender=alice)
    assert list(nft.authorizedUsersOf(token)) == [bob.address, carol.address]
    with ape.reverts(nft.ERC7857AlreadyAuthorized):
        nft.authorizeUsage(token, bob, sender=alice)
    with ape.reverts(nft.ERC7857InvalidAuthorizedUser, user=ZERO_ADDRESS):
        nft.authorizeUsage(token, ZERO_ADDRESS, sender=alice)
    with ape.reverts(nft.ERC7857Unauthorized, caller=bob.address, tokenId=token):
        nft.authorizeUsage(token, bob, sender=bob)
    with ape.reverts(nft.ERC7857Unauthorized):
        nft.revokeAuthorization(token, bob, sender=carol)
    tx = nft.revokeAuthorization(token, bob, sender=alice)
    assert tx.events.filter(nft.AuthorizationRevoked)[0]._to == bob.address
    assert list(nft.authorizedUsersOf(token)) == [carol.address]
    assert not nft.isAuthorizedUser(token, bob) and nft.isAuthorizedUser(token, carol)
    with ape.reverts(nft.ERC7857NotAuthorized):
        nft.revokeAuthorization(token, bob, sender=alice)
    # an approved operator (e.g. a rental market) may manage authorizations
    nft.approve(carol, token, sender=alice)
    nft.authorizeUsage(token, bob, sender=carol)
    assert nft.isAuthorizedUser(token, bob)


def test_authorizations_cleared_on_transfer(nft, alice, bob, carol, token):
    nft.authorizeUsage(token, carol, sender=alice)
    proofs = proofs_for(ctx_for(nft, token, alice, bob), [A, B], bob.private_key)
    tx = nft.iTransferFrom(alice, bob, token, proofs, sender=alice)
    assert tx.events.filter(nft.AuthorizationsCleared)[0].tokenId == token
    assert list(nft.authorizedUsersOf(token)) == []
    assert not nft.isAuthorizedUser(token, carol)
    nft.authorizeUsage(token, carol, sender=bob)  # the new owner starts from an empty list
    assert list(nft.authorizedUsersOf(token)) == [carol.address]


def test_too_many_authorized_users(nft, w3nft, alice, token):
    limit = nft.MAX_AUTHORIZED_USERS()
    for i in range(limit):  # through web3 (Anvil's unlocked dev account): 10x faster than ape here
        w3nft.functions.authorizeUsage(token, to_checksum_address(f"0x{i + 1:040x}")).transact(
            {"from": alice.address, "gas": 150_000}
        )
    with ape.reverts(nft.ERC7857TooManyAuthorizedUsers):
        nft.authorizeUsage(token, "0x" + f"{limit + 1:040x}", sender=alice)
    assert len(nft.authorizedUsersOf(token)) == limit


def test_update(nft, alice, bob, token):
    with ape.reverts(nft.ERC721IncorrectOwner):
        nft.update(token, datas("c"), sender=bob)
    with ape.reverts(nft.ERC7857InvalidDataCount, count=0):
        nft.update(token, [], sender=alice)
    tx = nft.update(token, datas("c"), sender=alice)
    ev = tx.events.filter(nft.Updated)[0]
    assert [tuple(d) for d in ev._oldDatas] == datas("a", "b") and [tuple(d) for d in ev._newDatas] == datas(
        "c"
    )
    assert [tuple(d) for d in nft.intelligentDatasOf(token)] == datas("c")
    nft.update(token, datas("d", "e", "f"), sender=alice)
    assert [tuple(d) for d in nft.intelligentDatasOf(token)] == datas("d", "e", "f")


def test_admin(nft, verifier, w3nft, admin, alice, token):
    with ape.reverts(nft.AccessControlUnauthorizedAccount):
        nft.setVerifier(alice, sender=alice)
    with ape.reverts(nft.ERC7857InvalidVerifier):
        nft.setVerifier(ZERO_ADDRESS, sender=admin)
    tx = nft.setRoyaltyBps(1000, sender=admin)
    assert tx.events.filter(nft.RoyaltyBpsUpdated)[0].newBps == 1000
    assert nft.royaltyInfo(token, 10_000)[1] == ROYALTY_BPS  # existing tokens keep theirs
    with ape.reverts(nft.ERC7857RoyaltyTooHigh, bps=2501):
        nft.setRoyaltyBps(2501, sender=admin)
    with ape.reverts(verifier.AccessControlUnauthorizedAccount):
        verifier.setOracleSigner(alice, sender=alice)
    with ape.reverts(verifier.ZeroOracleSigner):
        verifier.setOracleSigner(ZERO_ADDRESS, sender=admin)
    tx = verifier.setOracleSigner(alice, sender=admin)
    ev = tx.events.filter(verifier.OracleSignerUpdated)[0]
    assert (ev.previousSigner, ev.newSigner) == (ORACLE, alice.address)
    assert (
        revert_name(  # the old oracle's proofs stop verifying
            w3nft.functions.iTransferFrom(
                alice.address, alice.address, token,
                proofs_for(ctx_for(nft, token, alice, alice), [A, B], alice.private_key)
            ),
            alice.address,
        )
        == "ERC7857InvalidOwnershipProof"
    )
    nft.pause(sender=admin)
    with ape.reverts(nft.EnforcedPause):
        nft.mint(datas("x"), alice, sender=alice)
    nft.unpause(sender=admin)
    verifier.pause(sender=admin)
    with ape.reverts(verifier.EnforcedPause):
        verifier.verifyTransferValidity(token, alice, alice, [], sender=alice)


def test_transfer_gas(nft, alice, bob, token):
    """Gas of the main paths (reported in docs/inft.md)."""
    one = nft.mint(datas("g"), alice, sender=alice)
    two = nft.iTransferFrom(alice, bob, token, proofs_for(ctx_for(nft, token, alice, bob), [A, B],
                                                          bob.private_key), sender=alice)
    print(f"\ngas: mint(1 entry) {one.gas_used}, iTransferFrom(2 entries) {two.gas_used}")
    assert two.gas_used < 400_000


def test_deploy_with_separate_admin(admin, alice, project):
    record = deploy(admin, project, admin=alice.address)
    nft, verifier = project.AgentNFT.at(record["nft"]), project.DataVerifier.at(record["verifier"])
    role = nft.DEFAULT_ADMIN_ROLE()
    assert record["admin"] == alice.address and record["deployer"] == admin.address
    assert nft.hasRole(role, alice) and not nft.hasRole(role, admin)
    assert verifier.hasRole(role, alice) and not verifier.hasRole(role, admin)
    assert nft.hasRole(nft.PAUSER_ROLE(), alice) and verifier.oracleSigner() == ORACLE

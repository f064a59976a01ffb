// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// deaios: differences from 0G's IERC7857DataVerifier: OwnershipProof and TransferValidityProofOutput carry
// `newDataHash` (the hash of the re-encrypted ciphertext, which the token stores in place of the old one); both
// proofs are EIP-712 signatures that name the chain, the verifier, the token contract, the token id, `from` and
// `to` (audit H1: 0G's EIP-191 digests over abi.encodePacked named none of them), so
// `verifyTransferValidity` takes the transfer's token id, from and to; the verifier's custom errors are here.

/// @notice How an ownership proof was produced (0G's ERC-7857: a TEE oracle's signature, or a ZK proof).
enum OracleType {
    TEE,
    ZKP
}

/// @notice The receiver's (or its delegated access assistant's) statement that it can reach the data.
/// @dev `proof` is an EIP-712 signature (domain "deaios INFT DataVerifier" v1, chain id, the verifier) of
///      `AccessProof(address token,uint256 tokenId,address from,address to,bytes32 dataHash,bytes targetPubkey,
///      bytes nonce)`, the transfer's token contract, token id, sender and receiver included. `dataHash` is the
///      token's current (old) data hash. An empty `targetPubkey` means the receiver's own Ethereum key (64-byte
///      secp256k1 public key in the ownership proof); deaios' oracle seals to a 32-byte X25519 key given here.
struct AccessProof {
    bytes32 dataHash;
    bytes targetPubkey;
    bytes nonce;
    bytes proof;
}

/// @notice The oracle's statement that it decrypted the data at `dataHash`, re-encrypted it under a fresh key
///         (new ciphertext hash `newDataHash`) and sealed that key for `targetPubkey` as `sealedKey`.
/// @dev `proof` is the verifier's oracle signer's EIP-712 signature (same domain) of `OwnershipProof(address
///      token,uint256 tokenId,address from,address to,bytes32 dataHash,bytes32 newDataHash,bytes sealedKey,
///      bytes targetPubkey,bytes nonce)`.
struct OwnershipProof {
    OracleType oracleType;
    bytes32 dataHash;
    bytes32 newDataHash;
    bytes sealedKey;
    bytes targetPubkey;
    bytes nonce;
    bytes proof;
}

/// @notice The transfer a proof is for: signed into both proofs, so a proof moves one token of one contract
///         from one owner to one receiver (a clone names the original token id).
struct TransferContext {
    address token;
    uint256 tokenId;
    address from;
    address to;
}

/// @notice One proof per `IntelligentData` entry of the token being transferred or cloned, in order.
struct TransferValidityProof {
    AccessProof accessProof;
    OwnershipProof ownershipProof;
}

/// @notice What a verifier extracted from one valid proof.
struct TransferValidityProofOutput {
    bytes32 dataHash;
    bytes32 newDataHash;
    bytes sealedKey;
    bytes targetPubkey;
    bytes wantedKey;
    address accessAssistant;
    bytes accessProofNonce;
    bytes ownershipProofNonce;
}

/// @title ERC-7857 data verifier (0G's IERC7857DataVerifier shape, plus the new data hash)
interface IERC7857DataVerifier {
    /// @notice The access proof and the ownership proof name different data hashes.
    error ERC7857VerifierDataHashMismatch(bytes32 accessDataHash, bytes32 ownershipDataHash);
    /// @notice A signature is malformed (not 65 bytes, bad `s`/`v`) or recovers to nobody.
    error ERC7857InvalidAccessProof();
    /// @notice The ownership proof was not signed by the oracle signer (or is malformed).
    error ERC7857InvalidOwnershipProof(address recovered);
    /// @notice The oracle type has no verifier here (deaios: only TEE).
    error ERC7857UnsupportedOracleType(OracleType oracleType);
    /// @notice A proof nonce was already used for this token (replay).
    error ERC7857ProofAlreadyUsed(bytes32 nonceKey);
    /// @notice An empty proof nonce.
    error ERC7857EmptyNonce();

    /// @notice Verify every proof for moving token `tokenId` of the calling token contract from `from` to `to`,
    ///         mark its nonces used for that token, and return what each proves; reverts on any invalid or
    ///         replayed proof.
    function verifyTransferValidity(uint256 tokenId, address from, address to, TransferValidityProof[] calldata proofs)
        external
        returns (TransferValidityProofOutput[] memory);
}

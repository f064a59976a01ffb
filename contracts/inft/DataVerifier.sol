// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {
    IERC7857DataVerifier,
    OracleType,
    AccessProof,
    OwnershipProof,
    TransferContext,
    TransferValidityProof,
    TransferValidityProofOutput
} from "./interfaces/IERC7857DataVerifier.sol";

/// @title DataVerifier: ERC-7857 transfer-validity proofs signed by a trusted re-encryption oracle
/// @notice Checks, per proof, the receiver's access signature and the oracle's ownership signature and marks
///         both nonces used for the token, so a proof works once. Both are EIP-712 signatures (domain
///         "deaios INFT DataVerifier" v1, this chain, this contract) over typed data naming the token contract
///         (the caller), the token id, `from` and `to` of the transfer: a proof moves exactly one token from one
///         owner to one receiver, on one deployment.
/// @dev The oracle signer stands in for a TEE's attested key: whoever holds it can move any token's data.
///      Differences to 0G's verifier: 0G signs EIP-191 messages over abi.encodePacked(dataHash, …, nonce), which
///      name neither the chain, the contracts, the token nor the parties (audit H1: a copy token with the same
///      data hashes could spend a sale's proofs), and records nonces per caller only.
contract DataVerifier is IERC7857DataVerifier, AccessControl, Pausable, EIP712 {
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice EIP-712 type of the receiver's access proof.
    bytes32 public constant ACCESS_TYPEHASH = keccak256(
        "AccessProof(address token,uint256 tokenId,address from,address to,bytes32 dataHash,bytes targetPubkey,bytes nonce)"
    );
    /// @notice EIP-712 type of the oracle's ownership proof.
    bytes32 public constant OWNERSHIP_TYPEHASH = keccak256(
        "OwnershipProof(address token,uint256 tokenId,address from,address to,bytes32 dataHash,bytes32 newDataHash,bytes sealedKey,bytes targetPubkey,bytes nonce)"
    );

    uint8 private constant ACCESS_NONCE = 0;
    uint8 private constant OWNERSHIP_NONCE = 1;

    /// @notice The address whose signatures make ownership proofs valid (the oracle / TEE signer).
    address public oracleSigner;

    /// @notice Whether a nonce key (see nonceKey) was used.
    mapping(bytes32 nonceKey => bool used) public usedNonces;

    /// @notice The oracle signer changed.
    event OracleSignerUpdated(address indexed previousSigner, address indexed newSigner);
    /// @notice A proof's two nonces were consumed for token `tokenId` of `caller` (a token contract).
    event ProofNoncesUsed(
        address indexed caller, uint256 indexed tokenId, bytes32 accessNonceKey, bytes32 ownershipNonceKey
    );

    /// @notice The oracle signer cannot be the zero address.
    error ZeroOracleSigner();

    /// @param admin receives DEFAULT_ADMIN_ROLE (sets the oracle signer) and PAUSER_ROLE
    /// @param signer the oracle's signing address
    constructor(address admin, address signer) EIP712("deaios INFT DataVerifier", "1") {
        if (signer == address(0)) revert ZeroOracleSigner();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        oracleSigner = signer;
        emit OracleSignerUpdated(address(0), signer);
    }

    /// @notice Replace the oracle signer (e.g. a new TEE key). Proofs signed by the old one stop verifying.
    /// @param signer the new oracle signing address (non-zero)
    function setOracleSigner(address signer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (signer == address(0)) revert ZeroOracleSigner();
        emit OracleSignerUpdated(oracleSigner, signer);
        oracleSigner = signer;
    }

    /// @notice Stop (or resume) verifying proofs; every transfer and clone reverts while paused.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume verifying proofs.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @inheritdoc IERC7857DataVerifier
    /// @dev The caller is the token contract: proofs signed for another contract or token do not verify.
    function verifyTransferValidity(uint256 tokenId, address from, address to, TransferValidityProof[] calldata proofs)
        external
        whenNotPaused
        returns (TransferValidityProofOutput[] memory outputs)
    {
        TransferContext memory ctx = TransferContext(msg.sender, tokenId, from, to);
        outputs = new TransferValidityProofOutput[](proofs.length);
        for (uint256 i = 0; i < proofs.length; ++i) {
            outputs[i] = _verifyOne(ctx, proofs[i]);
        }
    }

    /// @notice The EIP-712 digest a receiver (or its assistant) signs for `ctx` (`proof.proof` is ignored).
    /// @param ctx the transfer: token contract, token id, from, to
    /// @param proof the access proof's fields
    function accessDigest(TransferContext memory ctx, AccessProof calldata proof) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    ACCESS_TYPEHASH,
                    ctx.token,
                    ctx.tokenId,
                    ctx.from,
                    ctx.to,
                    proof.dataHash,
                    keccak256(proof.targetPubkey),
                    keccak256(proof.nonce)
                )
            )
        );
    }

    /// @notice The EIP-712 digest the oracle signs for `ctx` (`proof.proof` and `proof.oracleType` are ignored).
    /// @param ctx the transfer: token contract, token id, from, to
    /// @param proof the ownership proof's fields
    function ownershipDigest(TransferContext memory ctx, OwnershipProof calldata proof) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    OWNERSHIP_TYPEHASH,
                    ctx.token,
                    ctx.tokenId,
                    ctx.from,
                    ctx.to,
                    proof.dataHash,
                    proof.newDataHash,
                    keccak256(proof.sealedKey),
                    keccak256(proof.targetPubkey),
                    keccak256(proof.nonce)
                )
            )
        );
    }

    /// @notice The key under which a nonce is recorded: kind 0 = access proof, 1 = ownership proof, per token.
    /// @param kind 0 (access) or 1 (ownership)
    /// @param token the token contract
    /// @param tokenId the token
    /// @param nonce the proof's nonce
    function nonceKey(uint8 kind, address token, uint256 tokenId, bytes calldata nonce) public pure returns (bytes32) {
        return keccak256(abi.encode(kind, token, tokenId, nonce));
    }

    function _verifyOne(TransferContext memory ctx, TransferValidityProof calldata p)
        private
        returns (TransferValidityProofOutput memory out)
    {
        AccessProof calldata access = p.accessProof;
        OwnershipProof calldata own = p.ownershipProof;
        if (access.dataHash != own.dataHash) revert ERC7857VerifierDataHashMismatch(access.dataHash, own.dataHash);
        if (own.oracleType != OracleType.TEE) revert ERC7857UnsupportedOracleType(own.oracleType);
        if (access.nonce.length == 0 || own.nonce.length == 0) revert ERC7857EmptyNonce();

        (address assistant, ECDSA.RecoverError accessErr,) = ECDSA.tryRecover(accessDigest(ctx, access), access.proof);
        if (accessErr != ECDSA.RecoverError.NoError) revert ERC7857InvalidAccessProof();

        (address signer, ECDSA.RecoverError ownErr,) = ECDSA.tryRecover(ownershipDigest(ctx, own), own.proof);
        if (ownErr != ECDSA.RecoverError.NoError || signer != oracleSigner) {
            revert ERC7857InvalidOwnershipProof(signer);
        }

        bytes32 accessKey = _useNonce(ACCESS_NONCE, ctx, access.nonce);
        bytes32 ownKey = _useNonce(OWNERSHIP_NONCE, ctx, own.nonce);
        emit ProofNoncesUsed(ctx.token, ctx.tokenId, accessKey, ownKey);

        out = TransferValidityProofOutput({
            dataHash: own.dataHash,
            newDataHash: own.newDataHash,
            sealedKey: own.sealedKey,
            targetPubkey: own.targetPubkey,
            wantedKey: access.targetPubkey,
            accessAssistant: assistant,
            accessProofNonce: access.nonce,
            ownershipProofNonce: own.nonce
        });
    }

    function _useNonce(uint8 kind, TransferContext memory ctx, bytes calldata nonce) private returns (bytes32 key) {
        key = nonceKey(kind, ctx.token, ctx.tokenId, nonce);
        if (usedNonces[key]) revert ERC7857ProofAlreadyUsed(key);
        usedNonces[key] = true;
    }
}

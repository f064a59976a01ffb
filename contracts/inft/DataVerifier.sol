// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

import {
    IERC7857DataVerifier,
    OracleType,
    AccessProof,
    OwnershipProof,
    TransferValidityProof,
    TransferValidityProofOutput
} from "./interfaces/IERC7857DataVerifier.sol";

/// @title DataVerifier: ERC-7857 transfer-validity proofs signed by a trusted re-encryption oracle
/// @notice Checks, per proof, the receiver's access signature and the oracle's ownership signature
///         (both EIP-191 personal signatures over the hex string of a keccak digest, as 0G's verifier), and
///         marks both nonces used for the calling token contract so a proof works once.
/// @dev The oracle signer stands in for a TEE's attested key: whoever holds it can move any token's data.
contract DataVerifier is IERC7857DataVerifier, AccessControl, Pausable {
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    uint8 private constant ACCESS_NONCE = 0;
    uint8 private constant OWNERSHIP_NONCE = 1;

    /// @notice The address whose signatures make ownership proofs valid (the oracle / TEE signer).
    address public oracleSigner;

    /// @notice Whether a nonce key (see nonceKey) was used.
    mapping(bytes32 nonceKey => bool used) public usedNonces;

    /// @notice The oracle signer changed.
    event OracleSignerUpdated(address indexed previousSigner, address indexed newSigner);
    /// @notice A proof's two nonces were consumed by `caller` (a token contract).
    event ProofNoncesUsed(address indexed caller, bytes32 accessNonceKey, bytes32 ownershipNonceKey);

    /// @notice The oracle signer cannot be the zero address.
    error ZeroOracleSigner();

    /// @param admin receives DEFAULT_ADMIN_ROLE (sets the oracle signer) and PAUSER_ROLE
    /// @param signer the oracle's signing address
    constructor(address admin, address signer) {
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
    function verifyTransferValidity(TransferValidityProof[] calldata proofs)
        external
        whenNotPaused
        returns (TransferValidityProofOutput[] memory outputs)
    {
        outputs = new TransferValidityProofOutput[](proofs.length);
        for (uint256 i = 0; i < proofs.length; ++i) {
            outputs[i] = _verifyOne(proofs[i]);
        }
    }

    /// @notice The digest a receiver (or its assistant) signs, EIP-191, as a 66-character hex string.
    function accessDigest(bytes32 dataHash, bytes calldata targetPubkey, bytes calldata nonce)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(dataHash, targetPubkey, nonce));
    }

    /// @notice The digest the oracle signs, EIP-191, as a 66-character hex string.
    function ownershipDigest(
        bytes32 dataHash,
        bytes32 newDataHash,
        bytes calldata sealedKey,
        bytes calldata targetPubkey,
        bytes calldata nonce
    ) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(dataHash, newDataHash, sealedKey, targetPubkey, nonce));
    }

    /// @notice The key under which a nonce is recorded: kind 0 = access proof, 1 = ownership proof.
    function nonceKey(uint8 kind, bytes calldata nonce, address caller) public pure returns (bytes32) {
        return keccak256(abi.encode(kind, nonce, caller));
    }

    function _verifyOne(TransferValidityProof calldata p)
        private
        returns (TransferValidityProofOutput memory out)
    {
        AccessProof calldata access = p.accessProof;
        OwnershipProof calldata own = p.ownershipProof;
        if (access.dataHash != own.dataHash) revert ERC7857VerifierDataHashMismatch(access.dataHash, own.dataHash);
        if (own.oracleType != OracleType.TEE) revert ERC7857UnsupportedOracleType(own.oracleType);
        if (access.nonce.length == 0 || own.nonce.length == 0) revert ERC7857EmptyNonce();

        (address assistant, ECDSA.RecoverError accessErr,) =
            ECDSA.tryRecover(_personalHash(accessDigest(access.dataHash, access.targetPubkey, access.nonce)), access.proof);
        if (accessErr != ECDSA.RecoverError.NoError) revert ERC7857InvalidAccessProof();

        bytes32 ownDigest = ownershipDigest(own.dataHash, own.newDataHash, own.sealedKey, own.targetPubkey, own.nonce);
        (address signer, ECDSA.RecoverError ownErr,) = ECDSA.tryRecover(_personalHash(ownDigest), own.proof);
        if (ownErr != ECDSA.RecoverError.NoError || signer != oracleSigner) {
            revert ERC7857InvalidOwnershipProof(signer);
        }

        bytes32 accessKey = _useNonce(ACCESS_NONCE, access.nonce);
        bytes32 ownKey = _useNonce(OWNERSHIP_NONCE, own.nonce);
        emit ProofNoncesUsed(msg.sender, accessKey, ownKey);

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

    function _useNonce(uint8 kind, bytes calldata nonce) private returns (bytes32 key) {
        key = nonceKey(kind, nonce, msg.sender);
        if (usedNonces[key]) revert ERC7857ProofAlreadyUsed(key);
        usedNonces[key] = true;
    }

    /// @dev EIP-191 hash of the digest's "0x" + 64 lowercase hex characters (0G's message format).
    function _personalHash(bytes32 digest) private pure returns (bytes32) {
        return MessageHashUtils.toEthSignedMessageHash(bytes(Strings.toHexString(uint256(digest), 32)));
    }
}

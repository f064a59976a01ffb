// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SignerKind} from "./IComputeLedger.sol";

/// @notice A provider's claim for one fine-tuning task (`settleDeliverable`).
/// @dev TEE: the acknowledged TEE signer signs `DeliverableSettlement(address user,address provider,
///      bytes32 taskId,bytes32 modelRootHash,uint256 taskFee,bytes32 secretHash)` with secretHash =
///      keccak256(encryptedSecret). USER: the user signed, when ordering the task,
///      `FineTuningTask(address user,address provider,bytes32 taskId,uint256 taskFee)`; the model root and the
///      secret are bound by the user's on-chain acknowledgement of the posted deliverable (root + committed
///      secret hash) instead.
struct DeliverableSettlement {
    address user;
    bytes32 taskId;
    uint256 taskFee;
    /// the model key encrypted for the user: required when the user acknowledged, empty otherwise
    bytes encryptedSecret;
    SignerKind signerKind;
    bytes signature;
}

/// @notice A deliverable, as returned by `getDeliverable`.
struct DeliverableInfo {
    bytes32 modelRootHash;
    uint256 postedAt;
    bool acknowledged;
    bool settled;
    uint256 feePaid;
    bytes encryptedSecret;
    /// keccak256 of the encrypted secret, committed when the deliverable was posted
    bytes32 secretHash;
    /// the user disputed it within the acknowledgement window (no penalty is due)
    bool disputed;
}

/// @title Fine-tuning deliverables: model root hash, user acknowledgement, fee or penalty, secret release
interface IFineTuningServing {
    event DeliverableAdded(
        address indexed user, address indexed provider, bytes32 indexed taskId, bytes32 modelRootHash, bytes32 secretHash
    );
    event DeliverableDisputed(address indexed user, address indexed provider, bytes32 indexed taskId);
    event DeliverableAcknowledged(address indexed user, address indexed provider, bytes32 indexed taskId);
    /// @notice The task was paid: the (rest of the) fee (acknowledged; `encryptedSecret` released) or the
    ///         penalty share.
    event DeliverableSettled(
        address indexed user,
        address indexed provider,
        bytes32 indexed taskId,
        uint256 fee,
        bool acknowledged,
        bytes encryptedSecret
    );
    event PenaltyUpdated(uint256 oldPenaltyBps, uint256 newPenaltyBps);
    event AckWindowUpdated(uint256 oldAckWindow, uint256 newAckWindow);

    function addDeliverable(address user, bytes32 taskId, bytes32 modelRootHash, bytes32 secretHash) external;
    function acknowledgeDeliverable(address provider, bytes32 taskId) external;
    function disputeDeliverable(address provider, bytes32 taskId) external;
    function settleDeliverable(DeliverableSettlement calldata s) external returns (uint256 fee);
    function getDeliverable(address user, address provider, bytes32 taskId)
        external
        view
        returns (DeliverableInfo memory);
}

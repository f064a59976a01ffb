// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {IComputeLedger, SignerKind} from "./interfaces/IComputeLedger.sol";
import {IServiceRegistry, ServiceType} from "./interfaces/IServiceRegistry.sol";
import {IFineTuningServing, DeliverableSettlement, DeliverableInfo} from "./interfaces/IFineTuningServing.sol";

/// @title FineTuningServing: fine-tuning deliverables and their settlement
/// @notice 1. The provider (a registered fine-tuning service) posts the deliverable of task `taskId` for a
///            user: the root hash of the encrypted model in 0G storage and `secretHash`, the keccak256 of the
///            encrypted secret (the model key, encrypted for the user) it will release (audit M4: the secret
///            cannot be swapped after the user's acknowledgement).
///         2. The user downloads and checks the model, then `acknowledgeDeliverable` (its acknowledgement names
///            that root and that secret hash); or, within `ackWindow`, `disputeDeliverable` when the root holds
///            nothing usable (audit M4: a disputed deliverable pays no penalty).
///         3. The provider settles with a fee authorization signed by the user (when the task was ordered) or
///            by the TEE signer the user acknowledged in the ledger:
///            - acknowledged: `encryptedSecret` must hash to the committed `secretHash`; the fee (minus any
///              penalty already paid) is charged and the secret is released on chain (event + `getDeliverable`);
///            - not acknowledged, not disputed, `ackWindow` seconds after posting: only `taskFee * penaltyBps /
///              10000` is charged, once, and no secret is released (the provider keeps a share for the compute
///              spent). The user may still acknowledge afterwards, and the provider then settles the rest with
///              the secret (audit low: a penalty settlement front-running a late acknowledgement no longer
///              closes the deliverable).
///         Fees come from the (user, provider) sub-account of the ledger (this contract needs its
///         SPENDER_ROLE).
/// @dev Differences to 0G's FineTuningServing: deliverables are keyed by (user, provider, bytes32 taskId) in a
///      mapping (no 20-slot FIFO, no serial-acknowledgement rule); the secret is committed when posting; the
///      unacknowledged penalty needs the ack window to pass (0G: at once) and a dispute-free deliverable;
///      penalty in basis points (0G: percent); user-signed fees are accepted.
contract FineTuningServing is IFineTuningServing, AccessControl, ReentrancyGuard, EIP712 {
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");

    bytes32 public constant DELIVERABLE_TYPEHASH = keccak256(
        "DeliverableSettlement(address user,address provider,bytes32 taskId,bytes32 modelRootHash,uint256 taskFee,bytes32 secretHash)"
    );
    bytes32 public constant TASK_TYPEHASH =
        keccak256("FineTuningTask(address user,address provider,bytes32 taskId,uint256 taskFee)");

    uint256 public constant MAX_PENALTY_BPS = 10_000;
    uint256 public constant MAX_ACK_WINDOW = 30 days;
    uint256 public constant MAX_SECRET_LENGTH = 1024;

    IComputeLedger public immutable ledger;
    IServiceRegistry public immutable registry;
    /// @notice Share of the task fee paid for an unacknowledged deliverable, in basis points.
    uint256 public penaltyBps;
    /// @notice Seconds the user has to acknowledge before a penalty settlement is allowed.
    uint256 public ackWindow;

    struct Deliverable {
        bytes32 modelRootHash;
        bytes32 secretHash;
        uint64 postedAt;
        bool acknowledged;
        bool disputed;
        bool settled;
        uint128 feePaid;
        bytes encryptedSecret;
    }

    mapping(bytes32 key => Deliverable) private _deliverables;

    error ZeroAddress();
    error ZeroRootHash();
    error NotFineTuningProvider(address provider);
    error DeliverableExists(address user, address provider, bytes32 taskId);
    error DeliverableNotFound(address user, address provider, bytes32 taskId);
    error AlreadyAcknowledged(bytes32 taskId);
    error AlreadySettled(bytes32 taskId);
    error ZeroSecretHash();
    /// @notice The released secret does not hash to the one committed when the deliverable was posted.
    error SecretMismatch(bytes32 committed, bytes32 given);
    /// @notice The user disputed the deliverable: no penalty is due (an acknowledgement would undo it).
    error DisputedDeliverable(bytes32 taskId);
    error AlreadyDisputed(bytes32 taskId);
    /// @notice A dispute is possible only before the acknowledgement window closes.
    error AckWindowClosed(uint256 deadline);
    error PenaltyAlreadyPaid(bytes32 taskId);
    /// @notice The signed task fee is below what was already paid (the penalty).
    error FeeBelowPaid(uint256 taskFee, uint256 paid);
    /// @notice An acknowledged deliverable settles only with the encrypted secret.
    error MissingSecret();
    /// @notice An unacknowledged deliverable releases no secret.
    error UnexpectedSecret();
    error SecretTooLong(uint256 length, uint256 max);
    /// @notice The user may still acknowledge until `deadline`.
    error AckWindowOpen(uint256 deadline);
    error SignerNotAcknowledged(address user, address provider);
    error InvalidSignature();
    error PenaltyOutOfRange(uint256 penaltyBps);
    error AckWindowOutOfRange(uint256 ackWindow);

    /// @param ledger_ the compute ledger (grant this contract its SPENDER_ROLE)
    /// @param registry_ the service registry (providers must run a fine-tuning service)
    /// @param admin receives DEFAULT_ADMIN_ROLE and PARAMS_ADMIN_ROLE
    /// @param penaltyBps_ share of the fee paid for unacknowledged deliverables (basis points)
    /// @param ackWindow_ seconds the user has to acknowledge
    constructor(address ledger_, address registry_, address admin, uint256 penaltyBps_, uint256 ackWindow_)
        EIP712("deaios Fine-Tuning", "1")
    {
        if (ledger_ == address(0) || registry_ == address(0) || admin == address(0)) revert ZeroAddress();
        ledger = IComputeLedger(ledger_);
        registry = IServiceRegistry(registry_);
        _setPenalty(penaltyBps_);
        _setAckWindow(ackWindow_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
    }

    /// @notice Post the deliverable of task `taskId` for `user` (the caller is the provider): the model's root
    ///         hash and `secretHash` = keccak256 of the encrypted secret the settlement will release.
    function addDeliverable(address user, bytes32 taskId, bytes32 modelRootHash, bytes32 secretHash) external {
        if (user == address(0)) revert ZeroAddress();
        if (modelRootHash == bytes32(0)) revert ZeroRootHash();
        if (secretHash == bytes32(0)) revert ZeroSecretHash();
        if (!registry.serviceExists(msg.sender) || registry.serviceTypeOf(msg.sender) != ServiceType.FineTuning) {
            revert NotFineTuningProvider(msg.sender);
        }
        Deliverable storage d = _deliverables[_key(user, msg.sender, taskId)];
        if (d.postedAt != 0) revert DeliverableExists(user, msg.sender, taskId);
        d.modelRootHash = modelRootHash;
        d.secretHash = secretHash;
        d.postedAt = uint64(block.timestamp);
        emit DeliverableAdded(user, msg.sender, taskId, modelRootHash, secretHash);
    }

    /// @notice The user (caller) accepts the deliverable of `provider` for `taskId` (its root and committed
    ///         secret hash), also after the window, a dispute or a penalty settlement.
    function acknowledgeDeliverable(address provider, bytes32 taskId) external {
        Deliverable storage d = _existing(msg.sender, provider, taskId);
        if (d.settled) revert AlreadySettled(taskId);
        if (d.acknowledged) revert AlreadyAcknowledged(taskId);
        d.acknowledged = true;
        emit DeliverableAcknowledged(msg.sender, provider, taskId);
    }

    /// @notice The user (caller) rejects the deliverable within the acknowledgement window (nothing usable at
    ///         its root): no penalty can be settled for it; the user may still acknowledge it later.
    function disputeDeliverable(address provider, bytes32 taskId) external {
        Deliverable storage d = _existing(msg.sender, provider, taskId);
        if (d.acknowledged) revert AlreadyAcknowledged(taskId);
        if (d.disputed) revert AlreadyDisputed(taskId);
        uint256 deadline = uint256(d.postedAt) + ackWindow;
        if (block.timestamp >= deadline) revert AckWindowClosed(deadline);
        d.disputed = true;
        emit DeliverableDisputed(msg.sender, provider, taskId);
    }

    /// @notice Settle a deliverable of the caller (the provider): if acknowledged, the fee (minus a penalty
    ///         already paid) and the release of the committed secret; else, once the ack window has passed and
    ///         unless disputed, the penalty share (once).
    /// @return fee the amount charged to the user's sub-account
    function settleDeliverable(DeliverableSettlement calldata s) external nonReentrant returns (uint256 fee) {
        Deliverable storage d = _existing(s.user, msg.sender, s.taskId);
        if (d.settled) revert AlreadySettled(s.taskId);
        if (s.encryptedSecret.length > MAX_SECRET_LENGTH) {
            revert SecretTooLong(s.encryptedSecret.length, MAX_SECRET_LENGTH);
        }
        bool acked = d.acknowledged;
        uint256 paid = d.feePaid;
        if (acked) {
            if (s.encryptedSecret.length == 0) revert MissingSecret();
            bytes32 given = keccak256(s.encryptedSecret);
            if (given != d.secretHash) revert SecretMismatch(d.secretHash, given);
            if (s.taskFee < paid) revert FeeBelowPaid(s.taskFee, paid);
            fee = s.taskFee - paid;
        } else {
            uint256 deadline = uint256(d.postedAt) + ackWindow;
            if (block.timestamp < deadline) revert AckWindowOpen(deadline);
            if (d.disputed) revert DisputedDeliverable(s.taskId);
            if (paid != 0) revert PenaltyAlreadyPaid(s.taskId);
            if (s.encryptedSecret.length != 0) revert UnexpectedSecret();
            fee = s.taskFee * penaltyBps / MAX_PENALTY_BPS;
        }
        _checkSignature(s, msg.sender, d.modelRootHash);
        d.feePaid = uint128(paid + fee); // <= a sub-account balance (uint96) plus the penalty, else charge reverts
        if (acked) {
            d.settled = true;
            d.encryptedSecret = s.encryptedSecret;
        }
        emit DeliverableSettled(s.user, msg.sender, s.taskId, fee, acked, s.encryptedSecret);
        ledger.charge(s.user, msg.sender, fee);
    }

    /// @notice A deliverable (reverts if none).
    function getDeliverable(address user, address provider, bytes32 taskId)
        external
        view
        returns (DeliverableInfo memory)
    {
        Deliverable storage d = _existing(user, provider, taskId);
        return DeliverableInfo({
            modelRootHash: d.modelRootHash,
            postedAt: d.postedAt,
            acknowledged: d.acknowledged,
            settled: d.settled,
            feePaid: d.feePaid,
            encryptedSecret: d.encryptedSecret,
            secretHash: d.secretHash,
            disputed: d.disputed
        });
    }

    /// @notice EIP-712 digest of a TEE deliverable settlement.
    function deliverableDigest(
        address user,
        address provider,
        bytes32 taskId,
        bytes32 modelRootHash,
        uint256 taskFee,
        bytes32 secretHash
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(DELIVERABLE_TYPEHASH, user, provider, taskId, modelRootHash, taskFee, secretHash))
        );
    }

    /// @notice EIP-712 digest of a user's fine-tuning task fee authorization.
    function taskDigest(address user, address provider, bytes32 taskId, uint256 taskFee) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(TASK_TYPEHASH, user, provider, taskId, taskFee)));
    }

    function setPenaltyBps(uint256 newPenaltyBps) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setPenalty(newPenaltyBps);
    }

    function setAckWindow(uint256 newAckWindow) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setAckWindow(newAckWindow);
    }

    /*=== internals ===*/

    function _key(address user, address provider, bytes32 taskId) private pure returns (bytes32) {
        return keccak256(abi.encode(user, provider, taskId));
    }

    function _existing(address user, address provider, bytes32 taskId) private view returns (Deliverable storage d) {
        d = _deliverables[_key(user, provider, taskId)];
        if (d.postedAt == 0) revert DeliverableNotFound(user, provider, taskId);
    }

    function _checkSignature(DeliverableSettlement calldata s, address provider, bytes32 modelRootHash)
        private
        view
    {
        address signer;
        bytes32 digest;
        if (s.signerKind == SignerKind.USER) {
            signer = s.user;
            digest = taskDigest(s.user, provider, s.taskId, s.taskFee);
        } else {
            signer = ledger.teeSignerOf(s.user, provider);
            if (signer == address(0)) revert SignerNotAcknowledged(s.user, provider);
            digest = deliverableDigest(
                s.user, provider, s.taskId, modelRootHash, s.taskFee, keccak256(s.encryptedSecret)
            );
        }
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, s.signature);
        if (err != ECDSA.RecoverError.NoError || recovered != signer) revert InvalidSignature();
    }

    function _setPenalty(uint256 newPenaltyBps) private {
        if (newPenaltyBps > MAX_PENALTY_BPS) revert PenaltyOutOfRange(newPenaltyBps);
        emit PenaltyUpdated(penaltyBps, newPenaltyBps);
        penaltyBps = newPenaltyBps;
    }

    function _setAckWindow(uint256 newAckWindow) private {
        if (newAckWindow == 0 || newAckWindow > MAX_ACK_WINDOW) revert AckWindowOutOfRange(newAckWindow);
        emit AckWindowUpdated(ackWindow, newAckWindow);
        ackWindow = newAckWindow;
    }
}

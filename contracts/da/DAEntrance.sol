// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IDAEntrance} from "./interfaces/IDAEntrance.sol";
import {IDASigners} from "./interfaces/IDASigners.sol";
import {BN254} from "./libraries/BN254.sol";

/// @title DAEntrance: blob fees, quorum assignment and verified erasure commitments (0G's DAEntrance ABI)
/// @notice `submitOriginalData` charges `blobPrice` per data root and assigns the call's roots to the
///         current epoch's next quorum (round robin); `submitVerifiedCommitRoots` checks each blob's BLS
///         aggregate signature with one pairing-precompile call and records its erasure commitment when
///         the signers' rows reach 2/3 of the quorum (0G: `2 * total <= 3 * hit`).
/// @dev Differences to 0G's DAEntrance: not upgradeable; the signer registry is a contract (`signers`)
///      instead of the precompile at 0x...1000; every invalid submission reverts with a custom error
///      (0G skips nothing but uses string reverts); submissions for expired or future epochs are
///      rejected; the blob fee must be paid exactly; fees are held per epoch and withdrawn by the admin
///      (0G pays them out as DA-sampling rewards, which deaios does not implement); a verified
///      commitment is stored compressed in one word (`BN254.compress`).
contract DAEntrance is IDAEntrance, AccessControl, ReentrancyGuard, Pausable {
    /// @notice Role allowed to change the blob price and the epoch window.
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    /// @notice Role allowed to pause uploads and commitment submissions.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Signed rows must reach SLICE_NUMERATOR / SLICE_DENOMINATOR of the quorum's rows.
    uint256 public constant SLICE_NUMERATOR = 2;
    uint256 public constant SLICE_DENOMINATOR = 3;

    /// @notice The signer registry (epochs, quorums, aggregate keys).
    IDASigners public immutable signers;

    /// @dev Declared first so that it shares a storage word with Pausable's flag (both are read by every
    ///      commitment submission).
    uint64 private _epochWindowSize;
    /// @inheritdoc IDAEntrance
    uint256 public blobPrice;
    /// @inheritdoc IDAEntrance
    uint256 public currentEpoch;
    /// @notice The quorum the last `submitOriginalData` was assigned to.
    uint256 public quorumIndex;
    /// @notice Blob fees received in each epoch.
    mapping(uint256 => uint256) public epochFees;
    /// @notice All fees ever withdrawn.
    uint256 public totalWithdrawn;

    /// @dev keccak256(abi.encodePacked(dataRoot, epoch, quorumId)) => BN254.compress(commitment)
    mapping(bytes32 => uint256) private _commitments;
    /// @dev signerSetKey => verified (see `verifiedSignerSet`)
    mapping(bytes32 => bool) private _verifiedSets;

    event BlobPriceUpdated(uint256 oldPrice, uint256 newPrice);
    event EpochWindowSizeUpdated(uint256 oldSize, uint256 newSize);
    event FeesWithdrawn(address indexed to, uint256 amount);
    /// @notice A signer set passed the full check and is remembered (see `verifiedSignerSet`).
    event SignerSetVerified(bytes32 indexed setKey, uint256 epoch, uint256 quorumId);

    error ZeroAddress();
    error InvalidEpochWindow(uint256 size);
    error NoDataRoots();
    /// @notice msg.value must be blobPrice * number of data roots.
    error FeeMismatch(uint256 expected, uint256 paid);
    /// @notice The current epoch has no quorum (no signer registered for it).
    error NoDASigners(uint256 epoch);
    /// @notice Data of `epoch` no longer needs to be served (`isEpochExpired`).
    error EpochExpired(uint256 epoch, uint256 currentEpoch);
    /// @notice A G1 point is not on the curve (or is the point at infinity, or has a coordinate >= p).
    error PointNotOnCurve(uint256 x, uint256 y);
    /// @notice `aggPkG2` is not a point of the G2 subgroup.
    error InvalidG2Point();
    /// @notice The signed rows are below 2/3 of the quorum's rows.
    error InsufficientSignedRows(uint256 hit, uint256 total);
    /// @notice `aggPkG2` does not match the aggregate G1 key of the bitmap's signers.
    error AggregateKeyMismatch();
    /// @notice The aggregate signature does not verify.
    error InvalidSignature();
    error CommitmentNotFound(bytes32 dataRoot, uint256 epoch, uint256 quorumId);
    error InsufficientBalance(uint256 requested, uint256 available);
    error TransferFailed();

    /// @param signers_ the signer registry
    /// @param blobPrice_ fee per data root in wei
    /// @param epochWindowSize_ epochs after its own during which a blob is served (0G: 300)
    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    constructor(IDASigners signers_, uint256 blobPrice_, uint256 epochWindowSize_, address admin) {
        if (address(signers_) == address(0) || admin == address(0)) revert ZeroAddress();
        signers = signers_;
        blobPrice = blobPrice_;
        if (epochWindowSize_ >= type(uint64).max) revert InvalidEpochWindow(epochWindowSize_);
        _epochWindowSize = uint64(epochWindowSize_);
        currentEpoch = signers_.epochNumber();
        emit BlobPriceUpdated(0, blobPrice_);
        emit EpochWindowSizeUpdated(0, epochWindowSize_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /*=== uploads ===*/

    /// @inheritdoc IDAEntrance
    function sync() public {
        signers.makeEpoch();
        currentEpoch = signers.epochNumber();
    }

    /// @inheritdoc IDAEntrance
    function submitOriginalData(bytes32[] calldata _dataRoots) external payable whenNotPaused {
        uint256 n = _dataRoots.length;
        if (n == 0) revert NoDataRoots();
        uint256 price = blobPrice;
        if (msg.value != n * price) revert FeeMismatch(n * price, msg.value);
        sync();
        uint256 epoch = currentEpoch;
        uint256 count = signers.quorumCount(epoch);
        if (count == 0) revert NoDASigners(epoch);
        uint256 quorumId = (quorumIndex + 1) % count;
        quorumIndex = quorumId;
        epochFees[epoch] += msg.value;
        for (uint256 i = 0; i < n; ++i) {
            emit DataUpload(msg.sender, _dataRoots[i], epoch, quorumId, price);
        }
    }

    /*=== verified commitments ===*/

    /// @inheritdoc IDAEntrance
    /// @dev Per submission: the on-curve checks, the expiry check, hash-to-G1, one pairing-precompile call
    ///      and one new storage word. The signer set (epoch, quorum, bitmap, aggPkG2) is checked against
    ///      the registry (`getAggPkG1`: rows >= 2/3, aggregate G1 key) the first time it is seen, and
    ///      remembered: later blobs signed by the same set skip the registry and the key-consistency
    ///      half of the check (`verifiedSignerSet`).
    function submitVerifiedCommitRoots(CommitRootSubmission[] calldata _submissions) external whenNotPaused {
        for (uint256 i = 0; i < _submissions.length; ++i) {
            CommitRootSubmission calldata s = _submissions[i];
            bytes32 key = _key(s.dataRoot, s.epoch, s.quorumId);
            if (_commitments[key] != 0) continue;
            BN254.G1Point memory commitment = s.erasureCommitment;
            BN254.G1Point memory signature = s.signature;
            _requireOnCurve(commitment);
            _requireOnCurve(signature);
            uint256 epochNow = signers.epochNumber();
            if (s.epoch < epochNow && epochNow - s.epoch > uint256(_epochWindowSize) + 1) revert EpochExpired(s.epoch, epochNow);

            BN254.G1Point memory h = BN254.hashToG1(
                keccak256(abi.encodePacked(s.dataRoot, s.epoch, s.quorumId, commitment.X, commitment.Y))
            );
            BN254.G2Point memory aggPkG2 = s.aggPkG2;
            bytes32 setKey = signerSetKey(s.epoch, s.quorumId, s.quorumBitmap, aggPkG2);
            if (_verifiedSets[setKey]) {
                // e(sig, -G2) * e(h, aggPkG2) == 1; aggPkG2 is known to be the set's key
                (bool valid,) = BN254.pairing2(signature, _negG2(), h, aggPkG2);
                if (!valid) revert InvalidSignature();
            } else {
                _verifyWithRegistry(s, h, signature, aggPkG2);
                _verifiedSets[setKey] = true;
                emit SignerSetVerified(setKey, s.epoch, s.quorumId);
            }

            _commitments[key] = BN254.compress(commitment);
            emit ErasureCommitmentVerified(s.dataRoot, s.epoch, s.quorumId);
        }
    }

    /// @dev The full check: the signers' rows and aggregate G1 key from the registry, then
    ///      e(sig + gamma * aggPkG1, -G2) * e(h + gamma * G1, aggPkG2) == 1.
    function _verifyWithRegistry(
        CommitRootSubmission calldata s,
        BN254.G1Point memory h,
        BN254.G1Point memory signature,
        BN254.G2Point memory aggPkG2
    ) private view {
        (BN254.G1Point memory aggPkG1, uint256 total, uint256 hit) =
            signers.getAggPkG1(s.epoch, s.quorumId, s.quorumBitmap);
        if (SLICE_DENOMINATOR * hit < SLICE_NUMERATOR * total) revert InsufficientSignedRows(hit, total);
        (bool valid, bool callOk) = BN254.verifyBLS(h, signature, aggPkG1, aggPkG2);
        if (!callOk) revert InvalidG2Point();
        if (!valid) _diagnose(aggPkG1, aggPkG2);
    }

    /// @notice Key under which a signer set (the signers of `bitmap` in a quorum, with aggregate G2 key
    ///         `aggPkG2`) is remembered once verified.
    function signerSetKey(uint256 epoch, uint256 quorumId, bytes calldata bitmap, BN254.G2Point memory aggPkG2)
        public
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(epoch, quorumId, keccak256(bitmap), aggPkG2.X[0], aggPkG2.X[1], aggPkG2.Y[0], aggPkG2.Y[1])
        );
    }

    /// @notice True once a submission by this signer set passed the full check: its rows reach 2/3 of
    ///         the quorum and `aggPkG2` is the sum of its G2 keys.
    function verifiedSignerSet(bytes32 setKey) external view returns (bool) {
        return _verifiedSets[setKey];
    }

    /// @dev A failed check: either the keys disagree (e(aggPkG1, -G2) * e(G1, aggPkG2) != 1) or the
    ///      signature is wrong. Only runs on the reverting path.
    function _diagnose(BN254.G1Point memory aggPkG1, BN254.G2Point memory aggPkG2) private view {
        (bool keysMatch,) = BN254.pairing2(aggPkG1, _negG2(), BN254.generatorG1(), aggPkG2);
        if (!keysMatch) revert AggregateKeyMismatch();
        revert InvalidSignature();
    }

    /// @inheritdoc IDAEntrance
    function verifiedErasureCommitment(bytes32 _dataRoot, uint256 _epoch, uint256 _quorumId)
        external
        view
        returns (BN254.G1Point memory)
    {
        uint256 word = _commitments[_key(_dataRoot, _epoch, _quorumId)];
        if (word == 0) revert CommitmentNotFound(_dataRoot, _epoch, _quorumId);
        return BN254.decompress(word);
    }

    /// @inheritdoc IDAEntrance
    function commitmentExists(bytes32 _dataRoot, uint256 _epoch, uint256 _quorumId) external view returns (bool) {
        return _commitments[_key(_dataRoot, _epoch, _quorumId)] != 0;
    }

    /// @notice True once data of `epoch` no longer needs to be served: epoch + epochWindowSize + 1 is
    ///         below the registry's current epoch (0G's DA node pruning rule). Commitments of expired
    ///         epochs are no longer accepted.
    function isEpochExpired(uint256 epoch) external view returns (bool) {
        uint256 epochNow = signers.epochNumber();
        return epoch < epochNow && epochNow - epoch > uint256(_epochWindowSize) + 1;
    }

    /// @inheritdoc IDAEntrance
    function epochWindowSize() external view returns (uint256) {
        return _epochWindowSize;
    }

    /// @notice The message digest the signers of a blob sign (hashed to G1 with `BN254.hashToG1`).
    function commitDigest(bytes32 dataRoot, uint256 epoch, uint256 quorumId, BN254.G1Point calldata commitment)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(dataRoot, epoch, quorumId, commitment.X, commitment.Y));
    }

    /// @notice `BN254.hashToG1` of a digest, for clients and tests.
    function hashToG1(bytes32 digest) external view returns (BN254.G1Point memory) {
        return BN254.hashToG1(digest);
    }

    /*=== administration ===*/

    function setBlobPrice(uint256 newPrice) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit BlobPriceUpdated(blobPrice, newPrice);
        blobPrice = newPrice;
    }

    /// @notice Change the epoch window (PARAMS_ADMIN_ROLE; below 2^64 - 1).
    function setEpochWindowSize(uint256 newSize) external onlyRole(PARAMS_ADMIN_ROLE) {
        if (newSize >= type(uint64).max) revert InvalidEpochWindow(newSize);
        emit EpochWindowSizeUpdated(_epochWindowSize, newSize);
        _epochWindowSize = uint64(newSize);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @notice Send `amount` wei of collected blob fees to `to` (DEFAULT_ADMIN_ROLE).
    function withdrawFees(address payable to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 available = address(this).balance;
        if (amount > available) revert InsufficientBalance(amount, available);
        totalWithdrawn += amount;
        emit FeesWithdrawn(to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    function _negG2() private pure returns (BN254.G2Point memory) {
        return BN254.G2Point([BN254.G2_X1, BN254.G2_X0], [BN254.NEG_G2_Y1, BN254.NEG_G2_Y0]);
    }

    function _key(bytes32 dataRoot, uint256 epoch, uint256 quorumId) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(dataRoot, epoch, quorumId));
    }

    function _requireOnCurve(BN254.G1Point memory p) private pure {
        if (!BN254.isOnCurve(p)) revert PointNotOnCurve(p.X, p.Y);
    }
}

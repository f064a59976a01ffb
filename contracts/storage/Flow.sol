// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Blockhash} from "@openzeppelin/contracts/utils/Blockhash.sol";

import {Submission} from "./interfaces/Submission.sol";
import {IFlow, EpochRange, EpochRangeWithContextDigest, MineContext} from "./interfaces/IFlow.sol";
import {IMarket} from "./interfaces/IMarket.sol";
import {SubmissionLib} from "./SubmissionLib.sol";
import {FlowTree} from "./FlowTree.sol";

/// @title Flow: the storage log of deaios, ABI-compatible with 0G's (fixed-price) Flow contract
/// @notice Files are appended as 0G submissions (up to four power-of-two subtrees of 256-byte sectors)
///         to an append-only merkle tree, the "flow". A submission is recorded for the account that sends it:
///         `submission.submitter` must be msg.sender (the `Submit` event's `sender`, which the KV layer's access
///         control trusts; 0G's SDK fills in its signer). Each submission pays
///         `size(submission) * market.pricePerSector()` wei; the fee goes to the market contract.
///         Overpayment is not forwarded: it is credited to msg.sender (`refundOf`) and can be withdrawn
///         with `withdrawRefund` (pull payment). Mining epochs (`blocksPerEpoch`) seal flow ranges with a
///         context digest = keccak256(abi.encode(blockhash(epoch start block), flow root, flow length)).
/// @dev Differences to 0G's Flow: not upgradeable (immutables instead of initializer), no root history
///      contract, `tree()` returns (currentLength, tree height), `computeFlowRoot` is a view, invalid
///      submissions revert with specific custom errors (see SubmissionLib.sol), the submitter must be the
///      sender (0G records any submitter), each submission's place and size are kept (`submissionInfo`, for
///      supervision challenges), and a submission seals at most MAX_SEALED_PER_CALL ended mining epochs one by
///      one: idle epochs beyond that are skipped in one step (0G seals them all in a loop, which an idle
///      period can make cost more than a block).
contract Flow is IFlow, AccessControl, Pausable, ReentrancyGuard {
    using FlowTree for FlowTree.Tree;

    /// @notice Role allowed to pause and unpause submissions and epoch updates.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @dev keccak256("") — the digest of an epoch whose start block hash is no longer available.
    bytes32 private constant EMPTY_HASH = 0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470;
    /// @dev Block hashes older than this many blocks are unavailable (EIP-2935 window).
    uint256 private constant BLOCKHASH_WINDOW = 8191;
    /// @notice Ended mining epochs sealed one by one per call; older idle epochs are skipped in one step.
    uint256 public constant MAX_SEALED_PER_CALL = 4;

    address payable private immutable _market;
    uint256 private immutable _blocksPerEpoch;
    uint256 private immutable _firstBlock;

    FlowTree.Tree private _tree;
    uint256 private _submissionIndex;
    uint256 private _epoch;
    uint256 private _epochStartPosition;
    MineContext private _context;
    mapping(bytes32 => EpochRange) private _epochRanges;
    EpochRangeWithContextDigest[] private _epochRangeHistory;
    mapping(uint256 => bytes32) private _rootByTxSeq;
    /// @dev txSeq => startPos (bits 0..63) | sectors (64..127) | size in bytes (128..255)
    mapping(uint256 => uint256) private _infoByTxSeq;

    /// @notice Overpaid fees each account can withdraw with `withdrawRefund`.
    mapping(address => uint256) public refundOf;

    /// @notice msg.value `paid` is below `amount` sectors times `price` wei per sector.
    error NotEnoughFee(uint256 price, uint256 amount, uint256 paid);
    /// @notice The flow accepts submissions from block `firstBlock` on.
    error NotLaunched(uint256 firstBlock);
    error ZeroAddress();
    error InvalidBlocksPerEpoch();
    /// @notice `position` is not below the flow length.
    error PositionOutOfRange(uint256 position, uint256 length);
    /// @notice No sealed epoch covers `position`.
    error NoContextForPosition(uint256 position);
    error NothingToWithdraw();
    error RefundFailed();
    /// @notice A submission must be recorded for its sender (`submitter == msg.sender`).
    error SubmitterNotSender(address submitter, address sender);

    /// @notice `amount` wei paid above the fee was credited to `account`.
    event RefundCredited(address indexed account, uint256 amount);
    /// @notice `account` withdrew `amount` wei of credited overpayment to `to`.
    event RefundWithdrawn(address indexed account, address indexed to, uint256 amount);

    /// @dev Where one submission landed in the flow.
    struct Placement {
        uint256 index;
        bytes32 digest;
        uint256 startIndex;
        uint256 beforeLength;
    }

    /// @param market_ the market contract that prices sectors and receives fees
    /// @param blocksPerEpoch_ mining epoch length in blocks (use a huge value to keep mining off)
    /// @param deployDelay_ submissions are accepted from block.number + deployDelay_ on
    /// @param admin receives DEFAULT_ADMIN_ROLE and PAUSER_ROLE
    constructor(address market_, uint256 blocksPerEpoch_, uint256 deployDelay_, address admin) {
        if (market_ == address(0) || admin == address(0)) revert ZeroAddress();
        if (blocksPerEpoch_ == 0) revert InvalidBlocksPerEpoch();
        _market = payable(market_);
        _blocksPerEpoch = blocksPerEpoch_;
        uint256 first = block.number + deployDelay_;
        _firstBlock = first;

        _tree.init();
        _context = MineContext({
            epoch: 0,
            mineStart: first,
            flowRoot: _tree.root(),
            flowLength: 1,
            blockDigest: EMPTY_HASH,
            digest: EMPTY_HASH
        });
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    modifier launched() {
        if (block.number < _firstBlock) revert NotLaunched(_firstBlock);
        _;
    }

    /*=== submissions ===*/

    /// @notice Append one submission to the flow, paying `size * pricePerSector` wei (excess is credited).
    /// @param submission the data (length, tags, nodes) and the submitter it is recorded for, which must be
    ///        msg.sender (`SubmitterNotSender`)
    /// @return index the submission's transaction sequence number
    /// @return digest keccak256 of the concatenated node roots (the event's `identity`)
    /// @return startIndex flow position of the first sector
    /// @return length sectors occupied (sum of 2^height)
    function submit(Submission calldata submission)
        external
        payable
        whenNotPaused
        nonReentrant
        launched
        returns (uint256 index, bytes32 digest, uint256 startIndex, uint256 length)
    {
        length = SubmissionLib.check(submission);
        _checkSubmitter(submission);
        uint256 price = IMarket(_market).pricePerSector();
        uint256 fee = length * price;
        if (msg.value < fee) revert NotEnoughFee(price, length, msg.value);

        _advanceEpochs();
        Placement memory p = _append(submission, length);
        _creditExcess(msg.value - fee);

        IMarket(_market).chargeFee{value: fee}(p.beforeLength, length, p.startIndex - p.beforeLength);
        return (p.index, p.digest, p.startIndex, length);
    }

    /// @notice Append several submissions in order (each one's submitter must be msg.sender); msg.value must
    ///         cover the sum of their fees.
    /// @return indexes per submission, as returned by `submit`
    /// @return digests per submission
    /// @return startIndexes per submission
    /// @return lengths per submission (sectors)
    function batchSubmit(Submission[] calldata submissions)
        external
        payable
        whenNotPaused
        nonReentrant
        launched
        returns (
            uint256[] memory indexes,
            bytes32[] memory digests,
            uint256[] memory startIndexes,
            uint256[] memory lengths
        )
    {
        uint256 n = submissions.length;
        lengths = new uint256[](n);
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            uint256 sectors = SubmissionLib.check(submissions[i]);
            _checkSubmitter(submissions[i]);
            lengths[i] = sectors;
            total += sectors;
        }
        uint256 price = IMarket(_market).pricePerSector();
        uint256 fee = total * price;
        if (msg.value < fee) revert NotEnoughFee(price, total, msg.value);

        _advanceEpochs();
        indexes = new uint256[](n);
        digests = new bytes32[](n);
        startIndexes = new uint256[](n);
        uint256[] memory befores = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            Placement memory p = _append(submissions[i], lengths[i]);
            indexes[i] = p.index;
            digests[i] = p.digest;
            startIndexes[i] = p.startIndex;
            befores[i] = p.beforeLength;
        }
        _creditExcess(msg.value - fee);

        for (uint256 i = 0; i < n; ++i) {
            IMarket(_market).chargeFee{value: lengths[i] * price}(
                befores[i], lengths[i], startIndexes[i] - befores[i]
            );
        }
    }

    /// @notice Withdraw the overpayment credited to msg.sender.
    /// @param to recipient of the funds
    function withdrawRefund(address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = refundOf[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        refundOf[msg.sender] = 0;
        emit RefundWithdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert RefundFailed();
    }

    /*=== epochs ===*/

    /// @notice Seal the mining epochs that have ended (the last MAX_SEALED_PER_CALL one by one, older idle ones
    ///         skipped in one step).
    function makeContext() public whenNotPaused launched {
        _advanceEpochs();
    }

    /// @notice Seal at most `cnt` ended epochs (bounded gas).
    function makeContextFixedTimes(uint256 cnt) external whenNotPaused launched {
        for (uint256 i = 0; i < cnt; ++i) {
            if (!_makeContext()) return;
        }
    }

    /// @notice Seal every ended epoch and return the resulting mining context.
    function makeContextWithResult() external whenNotPaused launched returns (MineContext memory) {
        _advanceEpochs();
        return _context;
    }

    /// @notice Seal ended epochs, then return the sealed epoch range containing `targetPosition`.
    function queryContextAtPosition(uint128 targetPosition)
        external
        whenNotPaused
        launched
        returns (EpochRangeWithContextDigest memory range)
    {
        _advanceEpochs();
        if (targetPosition >= _tree.length) revert PositionOutOfRange(targetPosition, _tree.length);
        uint256 lo = 0;
        uint256 hi = _epochRangeHistory.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            range = _epochRangeHistory[mid];
            if (targetPosition >= range.end) {
                lo = mid + 1;
            } else if (targetPosition >= range.start) {
                return range;
            } else {
                hi = mid;
            }
        }
        revert NoContextForPosition(targetPosition);
    }

    /*=== admin ===*/

    /// @notice Stop submissions and epoch updates (PAUSER_ROLE).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume submissions and epoch updates (PAUSER_ROLE).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== views ===*/

    /// @notice The market contract that prices sectors and receives fees.
    function market() external view returns (address payable) {
        return _market;
    }

    /// @notice Number of submissions so far (= next transaction sequence number).
    function numSubmissions() external view returns (uint256) {
        return _submissionIndex;
    }

    /// @notice Next transaction sequence number (same as `numSubmissions`).
    function submissionIndex() external view returns (uint256) {
        return _submissionIndex;
    }

    /// @notice Number of sealed mining epochs.
    function epoch() external view returns (uint256) {
        return _epoch;
    }

    /// @notice First block at which the flow accepts submissions; epochs count from it.
    function firstBlock() external view returns (uint256) {
        return _firstBlock;
    }

    /// @notice Mining epoch length in blocks.
    function blocksPerEpoch() external view returns (uint256) {
        return _blocksPerEpoch;
    }

    /// @notice Flow position where the current (unsealed) epoch's range starts.
    function epochStartPosition() external view returns (uint256) {
        return _epochStartPosition;
    }

    /// @notice Flow length in sectors (placeholder and padding included) and current tree height.
    function tree() external view returns (uint256 currentLength, uint256 height) {
        return (_tree.length, _tree.height());
    }

    /// @notice Flow root right after submission `txSeq` (zero if there is no such submission).
    function getFlowRootByTxSeq(uint256 txSeq) external view returns (bytes32) {
        return _rootByTxSeq[txSeq];
    }

    /// @notice Where submission `txSeq` lies in the flow and how big its file is (zeros if there is no such
    ///         submission).
    /// @return startPos flow position of its first sector
    /// @return sectors sectors its nodes occupy
    /// @return size the file's length in bytes
    function submissionInfo(uint256 txSeq) external view returns (uint256 startPos, uint256 sectors, uint256 size) {
        uint256 info = _infoByTxSeq[txSeq];
        return (uint64(info), uint64(info >> 64), info >> 128);
    }

    /// @notice The mining context of the last sealed epoch.
    function getContext() external view returns (MineContext memory) {
        return _context;
    }

    /// @notice The flow range sealed under context digest `digest` (zeros if unknown).
    function getEpochRange(bytes32 digest) external view returns (EpochRange memory) {
        return _epochRanges[digest];
    }

    /// @notice The `index`-th sealed epoch range (reverts if out of bounds).
    function getEpochRangeHistory(uint256 index) external view returns (EpochRangeWithContextDigest memory) {
        return _epochRangeHistory[index];
    }

    /// @notice Number of entries in the epoch range history.
    function epochRangeHistoryLength() external view returns (uint256) {
        return _epochRangeHistory.length;
    }

    /// @notice The current flow root.
    function computeFlowRoot() external view returns (bytes32) {
        return _tree.root();
    }

    /*=== internals ===*/

    /// @dev Pads, inserts the nodes, records the root and emits `Submit`. No external calls.
    function _append(Submission calldata submission, uint256 sectors) private returns (Placement memory p) {
        p.beforeLength = _tree.length;
        _tree.pad(submission.data.nodes[0].height, sectors);
        uint256 n = submission.data.nodes.length;
        for (uint256 i = 0; i < n; ++i) {
            uint256 pos = _tree.insertNode(submission.data.nodes[i].root, submission.data.nodes[i].height);
            if (i == 0) p.startIndex = pos;
        }
        p.digest = SubmissionLib.digest(submission.data);
        p.index = _submissionIndex;
        _submissionIndex = p.index + 1;
        _rootByTxSeq[p.index] = _tree.root();
        _infoByTxSeq[p.index] = uint256(uint64(p.startIndex)) | (uint256(uint64(sectors)) << 64)
            | (uint256(uint128(submission.data.length)) << 128);
        emit Submit(submission.submitter, p.digest, p.index, p.startIndex, sectors, submission.data);
    }

    function _creditExcess(uint256 excess) private {
        if (excess == 0) return;
        refundOf[msg.sender] += excess;
        emit RefundCredited(msg.sender, excess);
    }

    function _checkSubmitter(Submission calldata submission) private view {
        if (submission.submitter != msg.sender) revert SubmitterNotSender(submission.submitter, msg.sender);
    }

    /// @dev Seals up to MAX_SEALED_PER_CALL ended epochs one by one; if more have ended, the flow did not change
    ///      during them (no submission sealed them), so the last ended epoch is sealed directly: the skipped ones
    ///      would all have had the same root, length and an empty range.
    function _advanceEpochs() private {
        for (uint256 i = 0; i < MAX_SEALED_PER_CALL; ++i) {
            if (!_makeContext()) return;
        }
        uint256 ended = (block.number - 1 - _firstBlock) / _blocksPerEpoch; // epochs whose end block is past
        if (ended > _epoch + 1) _epoch = ended - 1;
        _makeContext();
    }

    /// @dev Seals the next epoch if it has ended; returns false otherwise.
    function _makeContext() private returns (bool) {
        uint256 nextEpochStart = _firstBlock + (_epoch + 1) * _blocksPerEpoch;
        if (nextEpochStart >= block.number) return false;

        bytes32 currentRoot = _tree.root();
        uint256 length = _tree.length;
        bytes32 blockDigest;
        bytes32 contextDigest;
        if (nextEpochStart + BLOCKHASH_WINDOW < block.number) {
            blockDigest = EMPTY_HASH;
            contextDigest = EMPTY_HASH;
        } else {
            blockDigest = Blockhash.blockHash(nextEpochStart);
            contextDigest = keccak256(abi.encode(blockDigest, currentRoot, length));
            uint128 start = uint128(_epochStartPosition);
            uint128 end = uint128(length);
            _epochRanges[contextDigest] = EpochRange({start: start, end: end});
            _epochRangeHistory.push(EpochRangeWithContextDigest({start: start, end: end, digest: contextDigest}));
            _epochStartPosition = length;
        }
        uint256 newEpoch = _epoch + 1;
        _epoch = newEpoch;
        _context = MineContext({
            epoch: newEpoch,
            mineStart: nextEpochStart,
            flowRoot: currentRoot,
            flowLength: length,
            blockDigest: blockDigest,
            digest: contextDigest
        });
        emit NewEpoch(msg.sender, newEpoch, currentRoot, _submissionIndex, length, contextDigest);
        return true;
    }
}

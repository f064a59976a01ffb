// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IFlow} from "../storage/interfaces/IFlow.sol";
import {IAlignmentDelegation} from "./interfaces/IAlignmentDelegation.sol";
import {IAlignmentRewards} from "./interfaces/IAlignmentRewards.sol";
import {ChunkProof} from "./libraries/ChunkProof.sol";

/// @title AlignmentSupervision: alignment operators challenge storage and DA nodes, once per epoch
/// @notice The admin registers supervised nodes (storage or DA; URL; the node operator's address). Time is cut
///         into epochs of `epochSeconds`. The first call of `openEpoch` in an epoch fixes its seed (from
///         prevrandao and the previous block hash) and the number of flow submissions; from these every
///         alignment operator derives the same challenge for every node (see docs/alignment.md, "Supervision").
///         Each active operator (`IAlignmentDelegation.isActiveOperator`) attests once per (epoch, node): pass
///         or fail. A storage "pass" must carry the challenged 256-byte chunk and its merkle path to the flow
///         root recorded on chain for the file's submission (`IFlow.getFlowRootByTxSeq`); the contract checks
///         it. After the epoch, `finalize` records each node's result: the verdict of a strict majority of the
///         attestations received (at least `minAttestations` of them); a tie is inconclusive. A failing node
///         is flagged (`NodeFlagged`) and `slashBps` of its stake goes to the slash pool; a later pass clears
///         the flag. An operator that attested every active node in an epoch did its duty: this contract
///         reports it to the rewards contract (`IAlignmentRewards.recordOperated`) once, at that attestation.
/// @dev Every function is O(1) except `finalize` (at most MAX_BATCH nodes per call) and the chunk proof (at most
///      64 hashes). Stake moves by pull payments only. The rewards admin must grant this contract the rewards'
///      SUPERVISION_ROLE; this contract holds no role anywhere else.
contract AlignmentSupervision is AccessControl, Pausable, ReentrancyGuard {
    /// @notice Registers, (de)activates and re-addresses supervised nodes.
    bytes32 public constant NODE_ADMIN_ROLE = keccak256("NODE_ADMIN_ROLE");
    /// @notice Pauses and unpauses attestations and finalization.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice At most this many supervised nodes (bounds the duty count and off-chain work).
    uint256 public constant MAX_NODES = 256;
    /// @notice At most this many nodes per `finalize` call.
    uint256 public constant MAX_BATCH = 64;
    /// @notice Longest node URL, bytes.
    uint256 public constant MAX_URL_LENGTH = 256;
    uint256 private constant BPS = 10_000;

    enum NodeKind {
        Storage,
        DA
    }

    enum Result {
        None,
        Pass,
        Fail,
        Inconclusive
    }

    /// @notice A supervised node. `unstakeEpoch` is 0 when no withdrawal was requested, else the first epoch
    ///         in which the stake may be withdrawn.
    struct Node {
        NodeKind kind;
        bool active;
        bool flagged;
        address operator;
        uint32 failures;
        uint64 unstakeEpoch;
        uint256 stake;
        string url;
    }

    /// @notice What the first `openEpoch` call of an epoch fixed.
    struct EpochInfo {
        bytes32 seed;
        uint256 submissions;
    }

    /// @notice Attestations received for one (epoch, node) and the recorded result.
    struct Tally {
        uint32 passes;
        uint32 fails;
        Result result;
    }

    /// @notice A challenged chunk: flow submission `txSeq`, flow `position` of the chunk, its 256 bytes and the
    ///         siblings of its path to `getFlowRootByTxSeq(txSeq)` (bottom-up). Empty for fail and DA attestations.
    struct StorageProof {
        uint256 txSeq;
        uint256 position;
        bytes chunk;
        bytes32[] siblings;
    }

    IAlignmentDelegation public immutable delegation;
    IAlignmentRewards public immutable rewards;
    IFlow public immutable flow;
    /// @notice Timestamp at which epoch 0 starts.
    uint256 public immutable genesis;
    /// @notice Epoch length, seconds.
    uint256 public immutable epochSeconds;

    /// @notice Share of a failing node's stake slashed per failed epoch, basis points.
    uint16 public slashBps;
    /// @notice Attestations a node needs in an epoch for its result to be recorded.
    uint32 public minAttestations;
    /// @notice Epochs between `requestUnstake` and `withdrawStake`.
    uint32 public unbondingEpochs;
    /// @notice Active nodes right now: an operator's duty in an epoch is to attest this many nodes.
    uint256 public activeNodeCount;
    /// @notice Slashed stake not yet withdrawn by the admin.
    uint256 public slashedPool;

    Node[] private _nodes;
    mapping(uint256 epoch => EpochInfo) private _epochs;
    mapping(uint256 epoch => mapping(uint256 nodeId => Tally)) private _tallies;
    mapping(uint256 epoch => mapping(uint256 nodeId => mapping(address operator => bool))) private _attested;
    mapping(uint256 epoch => mapping(address operator => uint256)) private _attestationCount;
    mapping(uint256 epoch => mapping(address operator => bool)) private _dutyRecorded;

    error ZeroAddress();
    error InvalidParams();
    error TooManyNodes(uint256 max);
    error BadUrl();
    error UnknownNode(uint256 nodeId);
    error NodeInactive(uint256 nodeId);
    error NotNodeOperator(uint256 nodeId, address account);
    error NotActiveOperator(address account);
    /// @notice Attestations are accepted only for the current epoch.
    error EpochNotCurrent(uint256 epoch, uint256 current);
    /// @notice Nobody called `openEpoch` in this epoch yet, so it has no seed.
    error EpochNotOpened(uint256 epoch);
    error EpochNotOver(uint256 epoch);
    error AlreadyAttested(uint256 epoch, uint256 nodeId, address operator);
    /// @notice The proof names a submission unknown to the flow or made after the epoch was opened.
    error UnknownSubmission(uint256 txSeq);
    error InvalidChunkProof(uint256 txSeq, uint256 position);
    error BatchTooLarge(uint256 size, uint256 max);
    error NothingToWithdraw();
    error UnstakeNotRequested(uint256 nodeId);
    error StakeLocked(uint256 nodeId, uint256 untilEpoch);
    error AmountTooLarge(uint256 amount, uint256 available);
    error TransferFailed();

    event NodeRegistered(uint256 indexed nodeId, NodeKind kind, address indexed operator, string url);
    event NodeActiveSet(uint256 indexed nodeId, bool active);
    event NodeUrlSet(uint256 indexed nodeId, string url);
    event ParamsSet(uint16 slashBps, uint32 minAttestations, uint32 unbondingEpochs);
    event EpochOpened(uint256 indexed epoch, bytes32 seed, uint256 submissions);
    /// @notice `txSeq` and `position` are those of the verified chunk (zero for fail and DA attestations).
    event Attested(
        uint256 indexed epoch,
        uint256 indexed nodeId,
        address indexed operator,
        bool passed,
        uint256 txSeq,
        uint256 position
    );
    event OperatorDutyDone(uint256 indexed epoch, address indexed operator);
    event NodeResult(uint256 indexed epoch, uint256 indexed nodeId, Result result, uint256 passes, uint256 fails);
    event NodeFlagged(uint256 indexed nodeId, uint256 indexed epoch, uint256 slashed);
    event NodeCleared(uint256 indexed nodeId, uint256 indexed epoch);
    event Staked(uint256 indexed nodeId, address indexed operator, uint256 amount, uint256 total);
    event UnstakeRequested(uint256 indexed nodeId, uint256 availableEpoch);
    event StakeWithdrawn(uint256 indexed nodeId, address indexed to, uint256 amount);
    event SlashedWithdrawn(address indexed to, uint256 amount);

    /// @param delegation_ who is an active alignment operator
    /// @param rewards_ receives `recordOperated(epoch, operator)` (grant this contract its SUPERVISION_ROLE)
    /// @param flow_ the storage Flow whose roots storage proofs are checked against
    /// @param admin receives DEFAULT_ADMIN_ROLE, NODE_ADMIN_ROLE and PAUSER_ROLE
    /// @param epochSeconds_ epoch length in seconds (> 0)
    /// @param slashBps_ share of stake slashed per failed epoch (<= 10000)
    /// @param minAttestations_ attestations needed to record a result (>= 1)
    /// @param unbondingEpochs_ epochs a stake stays slashable after `requestUnstake`
    constructor(
        address delegation_,
        address rewards_,
        address flow_,
        address admin,
        uint256 epochSeconds_,
        uint16 slashBps_,
        uint32 minAttestations_,
        uint32 unbondingEpochs_
    ) {
        if (delegation_ == address(0) || rewards_ == address(0) || flow_ == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        if (epochSeconds_ == 0) revert InvalidParams();
        delegation = IAlignmentDelegation(delegation_);
        rewards = IAlignmentRewards(rewards_);
        flow = IFlow(flow_);
        genesis = block.timestamp;
        epochSeconds = epochSeconds_;
        _setParams(slashBps_, minAttestations_, unbondingEpochs_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(NODE_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /*=== nodes (admin) ===*/

    /// @notice Register a node to supervise; it is active at once.
    /// @param kind storage or DA
    /// @param url where operators reach its JSON-RPC (http://host:port)
    /// @param operator the node's operator: the only account that may stake for it and withdraw the stake
    /// @return nodeId the node's id (its index)
    function registerNode(NodeKind kind, string calldata url, address operator)
        external
        onlyRole(NODE_ADMIN_ROLE)
        returns (uint256 nodeId)
    {
        if (operator == address(0)) revert ZeroAddress();
        _checkUrl(url);
        nodeId = _nodes.length;
        if (nodeId >= MAX_NODES) revert TooManyNodes(MAX_NODES);
        Node storage node = _nodes.push();
        node.kind = kind;
        node.active = true;
        node.operator = operator;
        node.url = url;
        activeNodeCount += 1;
        emit NodeRegistered(nodeId, kind, operator, url);
    }

    /// @notice Stop (or resume) supervising a node; its stake stays slashable for results still to finalize.
    function setNodeActive(uint256 nodeId, bool active) external onlyRole(NODE_ADMIN_ROLE) {
        Node storage node = _node(nodeId);
        if (node.active == active) return;
        node.active = active;
        if (active) activeNodeCount += 1;
        else activeNodeCount -= 1;
        emit NodeActiveSet(nodeId, active);
    }

    /// @notice Change the URL operators use to reach a node.
    function setNodeUrl(uint256 nodeId, string calldata url) external onlyRole(NODE_ADMIN_ROLE) {
        _checkUrl(url);
        _node(nodeId).url = url;
        emit NodeUrlSet(nodeId, url);
    }

    /// @notice Set the slashing share, the attestations needed for a result and the unbonding period.
    function setParams(uint16 slashBps_, uint32 minAttestations_, uint32 unbondingEpochs_)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setParams(slashBps_, minAttestations_, unbondingEpochs_);
    }

    /// @notice Stop attestations, epoch openings and finalization (PAUSER_ROLE).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume attestations, epoch openings and finalization (PAUSER_ROLE).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== epochs and attestations ===*/

    /// @notice Fix the current epoch's seed and flow submission count if nobody did yet (anyone may call).
    /// @return seed the epoch's challenge seed
    function openEpoch() external whenNotPaused returns (bytes32 seed) {
        uint256 epoch = currentEpoch();
        EpochInfo storage info = _epochs[epoch];
        seed = info.seed;
        if (seed != bytes32(0)) return seed;
        seed = keccak256(abi.encode(block.prevrandao, blockhash(block.number - 1), address(this), epoch));
        uint256 submissions = flow.numSubmissions();
        info.seed = seed;
        info.submissions = submissions;
        emit EpochOpened(epoch, seed, submissions);
    }

    /// @notice Attest the outcome of this epoch's challenge of `nodeId` (active operators only, once per node).
    /// @param epoch must be the current epoch (guards against an attestation landing in the next one)
    /// @param nodeId the challenged node
    /// @param passed whether it answered correctly
    /// @param proof for a storage pass: the chunk and its path to the flow root (ignored otherwise)
    function attest(uint256 epoch, uint256 nodeId, bool passed, StorageProof calldata proof)
        external
        whenNotPaused
        nonReentrant
    {
        uint256 current = currentEpoch();
        if (epoch != current) revert EpochNotCurrent(epoch, current);
        EpochInfo storage info = _epochs[epoch];
        if (info.seed == bytes32(0)) revert EpochNotOpened(epoch);
        Node storage node = _node(nodeId);
        if (!node.active) revert NodeInactive(nodeId);
        if (!delegation.isActiveOperator(msg.sender)) revert NotActiveOperator(msg.sender);
        if (_attested[epoch][nodeId][msg.sender]) revert AlreadyAttested(epoch, nodeId, msg.sender);

        uint256 txSeq;
        uint256 position;
        if (passed && node.kind == NodeKind.Storage) {
            txSeq = proof.txSeq;
            position = proof.position;
            _verifyStorageProof(proof, info.submissions);
        }

        _attested[epoch][nodeId][msg.sender] = true;
        Tally storage tally = _tallies[epoch][nodeId];
        if (passed) tally.passes += 1;
        else tally.fails += 1;
        uint256 count = _attestationCount[epoch][msg.sender] + 1;
        _attestationCount[epoch][msg.sender] = count;
        emit Attested(epoch, nodeId, msg.sender, passed, txSeq, position);

        if (count >= activeNodeCount && !_dutyRecorded[epoch][msg.sender]) {
            _dutyRecorded[epoch][msg.sender] = true;
            emit OperatorDutyDone(epoch, msg.sender);
            rewards.recordOperated(epoch, msg.sender);
        }
    }

    /// @notice Record the results of a past epoch for `nodeIds` (anyone; at most MAX_BATCH ids). Nodes already
    ///         finalized, or with fewer than `minAttestations` attestations, are skipped.
    function finalize(uint256 epoch, uint256[] calldata nodeIds) external whenNotPaused {
        if (epoch >= currentEpoch()) revert EpochNotOver(epoch);
        uint256 n = nodeIds.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        for (uint256 i = 0; i < n; ++i) {
            _finalizeOne(epoch, nodeIds[i]);
        }
    }

    /*=== stake (node operators) ===*/

    /// @notice Add msg.value to a node's slashable stake (the node's operator only).
    function stake(uint256 nodeId) external payable {
        Node storage node = _node(nodeId);
        if (msg.sender != node.operator) revert NotNodeOperator(nodeId, msg.sender);
        if (msg.value == 0) revert InvalidParams();
        uint256 total = node.stake + msg.value;
        node.stake = total;
        emit Staked(nodeId, msg.sender, msg.value, total);
    }

    /// @notice Start the unbonding period after which the node's stake can be withdrawn.
    function requestUnstake(uint256 nodeId) external {
        Node storage node = _node(nodeId);
        if (msg.sender != node.operator) revert NotNodeOperator(nodeId, msg.sender);
        uint256 available = currentEpoch() + unbondingEpochs + 1;
        node.unstakeEpoch = uint64(available);
        emit UnstakeRequested(nodeId, available);
    }

    /// @notice Withdraw the whole remaining stake of a node once its unbonding period is over.
    /// @param to recipient of the stake
    function withdrawStake(uint256 nodeId, address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        Node storage node = _node(nodeId);
        if (msg.sender != node.operator) revert NotNodeOperator(nodeId, msg.sender);
        uint256 available = node.unstakeEpoch;
        if (available == 0) revert UnstakeNotRequested(nodeId);
        if (currentEpoch() < available) revert StakeLocked(nodeId, available);
        uint256 amount = node.stake;
        if (amount == 0) revert NothingToWithdraw();
        node.stake = 0;
        node.unstakeEpoch = 0;
        emit StakeWithdrawn(nodeId, to, amount);
        _transfer(to, amount);
    }

    /// @notice Withdraw slashed stake from the pool (DEFAULT_ADMIN_ROLE).
    function withdrawSlashed(address payable to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 pool = slashedPool;
        if (amount == 0) revert NothingToWithdraw();
        if (amount > pool) revert AmountTooLarge(amount, pool);
        slashedPool = pool - amount;
        emit SlashedWithdrawn(to, amount);
        _transfer(to, amount);
    }

    /*=== views ===*/

    /// @notice The epoch at the current block's timestamp.
    function currentEpoch() public view returns (uint256) {
        return (block.timestamp - genesis) / epochSeconds;
    }

    /// @notice Timestamp at which `epoch` starts.
    function epochStart(uint256 epoch) external view returns (uint256) {
        return genesis + epoch * epochSeconds;
    }

    /// @notice Seed and flow submission count fixed when `epoch` was opened (zeros if not opened).
    function epochInfo(uint256 epoch) external view returns (EpochInfo memory) {
        return _epochs[epoch];
    }

    /// @notice Number of registered nodes (active or not); ids are 0 .. nodeCount() - 1.
    function nodeCount() external view returns (uint256) {
        return _nodes.length;
    }

    /// @notice One registered node.
    function getNode(uint256 nodeId) external view returns (Node memory) {
        return _node(nodeId);
    }

    /// @notice Attestations and result of `nodeId` in `epoch`.
    function tallyOf(uint256 epoch, uint256 nodeId) external view returns (Tally memory) {
        return _tallies[epoch][nodeId];
    }

    /// @notice Whether `operator` attested `nodeId` in `epoch`.
    function hasAttested(uint256 epoch, uint256 nodeId, address operator) external view returns (bool) {
        return _attested[epoch][nodeId][operator];
    }

    /// @notice How many nodes `operator` attested in `epoch`.
    function attestationCount(uint256 epoch, address operator) external view returns (uint256) {
        return _attestationCount[epoch][operator];
    }

    /// @notice Whether `operator`'s duty in `epoch` was reported to the rewards contract.
    function dutyRecorded(uint256 epoch, address operator) external view returns (bool) {
        return _dutyRecorded[epoch][operator];
    }

    /*=== internals ===*/

    function _verifyStorageProof(StorageProof calldata proof, uint256 submissions) private view {
        if (proof.txSeq >= submissions) revert UnknownSubmission(proof.txSeq);
        bytes32 root = flow.getFlowRootByTxSeq(proof.txSeq);
        if (root == bytes32(0)) revert UnknownSubmission(proof.txSeq);
        if (ChunkProof.rootOf(proof.chunk, proof.position, proof.siblings) != root) {
            revert InvalidChunkProof(proof.txSeq, proof.position);
        }
    }

    function _finalizeOne(uint256 epoch, uint256 nodeId) private {
        Node storage node = _node(nodeId);
        Tally storage tally = _tallies[epoch][nodeId];
        uint256 passes = tally.passes;
        uint256 fails = tally.fails;
        if (tally.result != Result.None || passes + fails < minAttestations) return;
        Result result = passes > fails ? Result.Pass : (fails > passes ? Result.Fail : Result.Inconclusive);
        tally.result = result;
        emit NodeResult(epoch, nodeId, result, passes, fails);
        if (result == Result.Fail) {
            uint256 slashed = node.stake * slashBps / BPS;
            node.stake -= slashed;
            slashedPool += slashed;
            node.flagged = true;
            node.failures += 1;
            emit NodeFlagged(nodeId, epoch, slashed);
        } else if (result == Result.Pass && node.flagged) {
            node.flagged = false;
            emit NodeCleared(nodeId, epoch);
        }
    }

    function _node(uint256 nodeId) private view returns (Node storage) {
        if (nodeId >= _nodes.length) revert UnknownNode(nodeId);
        return _nodes[nodeId];
    }

    function _checkUrl(string calldata url) private pure {
        uint256 length = bytes(url).length;
        if (length == 0 || length > MAX_URL_LENGTH) revert BadUrl();
    }

    function _setParams(uint16 slashBps_, uint32 minAttestations_, uint32 unbondingEpochs_) private {
        if (slashBps_ > BPS || minAttestations_ == 0) revert InvalidParams();
        slashBps = slashBps_;
        minAttestations = minAttestations_;
        unbondingEpochs = unbondingEpochs_;
        emit ParamsSet(slashBps_, minAttestations_, unbondingEpochs_);
    }

    function _transfer(address payable to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}

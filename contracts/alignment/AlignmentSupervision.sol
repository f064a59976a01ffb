// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IFlow} from "../storage/interfaces/IFlow.sol";
import {IAlignmentDelegation} from "./interfaces/IAlignmentDelegation.sol";
import {IAlignmentRewards} from "./interfaces/IAlignmentRewards.sol";
import {ChallengeMath} from "./libraries/ChallengeMath.sol";
import {ChunkProof} from "./libraries/ChunkProof.sol";

/// @title AlignmentSupervision: alignment operators challenge storage and DA nodes, once per epoch
/// @notice The admin registers supervised nodes (storage or DA; URL; the node operator's address; a storage
///         node's placement index in the erasure code `codeN`/`codeK`). Epochs are the delegation contract's
///         (`epochSeconds`, from its `genesis`). Files big enough that every storage node keeps a data share of
///         one of their full segments enter the challenge pool (`registerChallengeFile`, anyone). The first call
///         of `openEpoch` in an epoch fixes its seed (prevrandao, the previous block hash) and the pool size; from
///         these the contract and every operator derive each storage node's challenged chunk (`challengeOf`,
///         ChallengeMath) for attempts 0..MAX_ATTEMPTS-1.
///
///         An active operator (running licenses in this epoch) attests each node once per epoch, with the weight
///         of the licenses it runs in the epoch (delegation's `operatedCount`: one license weighs in one
///         operator's attestations per epoch). `attestPass` of a storage node must carry the challenged chunk of
///         one attempt and its merkle path to the flow root of its submission: the contract checks both.
///         `attestFail` must carry the operator's evidence: at least `minFailTries` tries spread over at least
///         `minFailSpan` seconds (offsets from the first try), which fit in the epoch so far, and a hash of the
///         operator's record of them (times, errors), emitted for audit. DA attestations are votes: the chain
///         cannot check a row served off chain.
///
///         After the epoch, `finalize` records each node's result: the side with the larger weight if the
///         attestations weigh at least `minWeight` (else inconclusive); a tie is inconclusive. A failing node
///         is flagged (`NodeFlagged`) and `slashBps` of its stake goes to the slash pool; a later pass clears
///         the flag. A node's stake leaves only after every past epoch with attestations for it has a result.
///
///         Rewards are paid only for attestations the chain checks: an operator that attested every active
///         storage node with a verified pass or an evidenced fail did its duty, and this contract reports it
///         to the rewards contract (`IAlignmentRewards.recordOperated`) once, at that attestation.
/// @dev Every function is O(1) except `finalize` (at most MAX_BATCH nodes), the chunk proof (at most 64 hashes)
///      and the challenge (O(codeK)). Stake moves by pull payments only. The rewards admin must grant this
///      contract the rewards' SUPERVISION_ROLE; this contract holds no role anywhere else.
contract AlignmentSupervision is AccessControl, Pausable, ReentrancyGuard {
    /// @notice Registers, (de)activates and re-addresses supervised nodes; sets the erasure code.
    bytes32 public constant NODE_ADMIN_ROLE = keccak256("NODE_ADMIN_ROLE");
    /// @notice Pauses and unpauses attestations and finalization.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice At most this many supervised nodes (bounds the duty count and off-chain work).
    uint256 public constant MAX_NODES = 256;
    /// @notice At most this many nodes per `finalize` call.
    uint256 public constant MAX_BATCH = 64;
    /// @notice Longest node URL, bytes.
    uint256 public constant MAX_URL_LENGTH = 256;
    /// @notice Attempts 0..MAX_ATTEMPTS-1 give a node's candidate challenges in an epoch (a file may not be
    ///         finalized yet on the network; honest operators take the first attempt they can check).
    uint256 public constant MAX_ATTEMPTS = 8;
    /// @notice Most tries an evidence may list.
    uint256 public constant MAX_TRIES = 64;
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
    ///         in which the stake may be withdrawn; `placement` is a storage node's index in the erasure code;
    ///         `openResults` counts epochs with attestations for it and no result yet.
    struct Node {
        NodeKind kind;
        bool active;
        bool flagged;
        address operator;
        uint32 failures;
        uint64 unstakeEpoch;
        uint16 placement;
        uint32 openResults;
        uint256 stake;
        string url;
    }

    /// @notice What the first `openEpoch` call of an epoch fixed.
    struct EpochInfo {
        bytes32 seed;
        uint256 files;
    }

    /// @notice Attestation weights (licenses) received for one (epoch, node) and the recorded result.
    struct Tally {
        uint32 passes;
        uint32 fails;
        Result result;
    }

    /// @notice A challenged chunk: the attempt whose challenge it answers, its 256 bytes and the siblings of its
    ///         path (bottom-up) to the flow root of its submission.
    struct StorageProof {
        uint256 attempt;
        bytes chunk;
        bytes32[] siblings;
    }

    /// @notice An operator's evidence that a node failed: the offsets in seconds of its tries from the first
    ///         one (0, increasing) and the hash of its record of them (times, errors).
    struct FailEvidence {
        uint32[] tries;
        bytes32 record;
    }

    /// @notice Parameters (see `setParams`).
    struct Params {
        /// @dev share of a failing node's stake slashed per failed epoch, basis points
        uint16 slashBps;
        /// @dev licenses' weight a node's attestations need in an epoch for a pass or fail result
        uint32 minWeight;
        /// @dev epochs between `requestUnstake` and `withdrawStake`
        uint32 unbondingEpochs;
        /// @dev tries a fail's evidence must list
        uint16 minFailTries;
        /// @dev seconds a fail's tries must span (< epochSeconds)
        uint32 minFailSpan;
    }

    IAlignmentDelegation public immutable delegation;
    IAlignmentRewards public immutable rewards;
    IFlow public immutable flow;
    /// @notice Timestamp at which epoch 0 starts (the delegation's).
    uint256 public immutable genesis;
    /// @notice Epoch length, seconds (the delegation's).
    uint256 public immutable epochSeconds;

    Params private _params;
    /// @notice Storage nodes and data shares of the erasure code (0 until set).
    uint16 public codeN;
    uint16 public codeK;
    /// @notice Active nodes right now.
    uint256 public activeNodeCount;
    /// @notice Active storage nodes right now: an operator's duty in an epoch is to attest this many.
    uint256 public activeStorageCount;
    /// @notice Slashed stake not yet withdrawn by the admin.
    uint256 public slashedPool;

    Node[] private _nodes;
    uint256[] private _files;
    mapping(uint256 txSeq => bool) public isChallengeFile;
    mapping(uint256 epoch => EpochInfo) private _epochs;
    mapping(uint256 epoch => mapping(uint256 nodeId => Tally)) private _tallies;
    mapping(uint256 epoch => mapping(uint256 nodeId => mapping(address operator => bool))) private _attested;
    mapping(uint256 epoch => mapping(address operator => uint256)) private _checkedCount;
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
    error InvalidChunkProof(uint256 txSeq, uint256 position);
    error BatchTooLarge(uint256 size, uint256 max);
    error NothingToWithdraw();
    error UnstakeNotRequested(uint256 nodeId);
    error StakeLocked(uint256 nodeId, uint256 untilEpoch);
    /// @notice Past epochs with attestations for the node have no result yet: finalize them first.
    error ResultsPending(uint256 nodeId, uint256 epochs);
    error AmountTooLarge(uint256 amount, uint256 available);
    error TransferFailed();
    /// @notice The erasure code (codeN, codeK) is not set.
    error NoErasureCode();
    /// @notice Attempt `attempt` gives node `nodeId` no challenge this epoch (empty pool, attempt out of range,
    ///         or a file in which the node keeps no whole chunk).
    error NoChallenge(uint256 nodeId, uint256 attempt);
    error UnknownSubmission(uint256 txSeq);
    error AlreadyChallengeFile(uint256 txSeq);
    /// @notice The file has `segments` full data segments; every node keeps a data share of one from `needed` on.
    error FileTooSmall(uint256 txSeq, uint256 segments, uint256 needed);
    /// @notice A fail needs `minFailTries` tries over `minFailSpan` seconds, fitting in the epoch so far.
    error InsufficientEvidence(uint256 tries, uint256 span);

    event NodeRegistered(uint256 indexed nodeId, NodeKind kind, address indexed operator, string url);
    event NodeActiveSet(uint256 indexed nodeId, bool active);
    event NodeUrlSet(uint256 indexed nodeId, string url);
    event ParamsSet(Params params);
    event ErasureCodeSet(uint16 n, uint16 k);
    event ChallengeFileAdded(uint256 indexed txSeq, uint256 index);
    event EpochOpened(uint256 indexed epoch, bytes32 seed, uint256 files);
    /// @notice `weight` is the operator's licenses in the epoch; `txSeq` and `position` those of the verified
    ///         chunk of a storage pass (zero otherwise).
    event Attested(
        uint256 indexed epoch,
        uint256 indexed nodeId,
        address indexed operator,
        bool passed,
        uint256 weight,
        uint256 txSeq,
        uint256 position
    );
    /// @notice The evidence of a fail attestation.
    event FailEvidenceGiven(
        uint256 indexed epoch, uint256 indexed nodeId, address indexed operator, uint32[] tries, bytes32 record
    );
    event OperatorDutyDone(uint256 indexed epoch, address indexed operator);
    event NodeResult(uint256 indexed epoch, uint256 indexed nodeId, Result result, uint256 passes, uint256 fails);
    event NodeFlagged(uint256 indexed nodeId, uint256 indexed epoch, uint256 slashed);
    event NodeCleared(uint256 indexed nodeId, uint256 indexed epoch);
    event Staked(uint256 indexed nodeId, address indexed operator, uint256 amount, uint256 total);
    event UnstakeRequested(uint256 indexed nodeId, uint256 availableEpoch);
    event StakeWithdrawn(uint256 indexed nodeId, address indexed to, uint256 amount);
    event SlashedWithdrawn(address indexed to, uint256 amount);

    /// @param delegation_ who is an active alignment operator, with which weight; the epoch clock
    /// @param rewards_ receives `recordOperated(epoch, operator)` (grant this contract its SUPERVISION_ROLE)
    /// @param flow_ the storage Flow whose roots and submissions challenges are checked against
    /// @param admin receives DEFAULT_ADMIN_ROLE, NODE_ADMIN_ROLE and PAUSER_ROLE
    /// @param params_ see `Params`
    constructor(address delegation_, address rewards_, address flow_, address admin, Params memory params_) {
        if (delegation_ == address(0) || rewards_ == address(0) || flow_ == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        delegation = IAlignmentDelegation(delegation_);
        rewards = IAlignmentRewards(rewards_);
        flow = IFlow(flow_);
        genesis = IAlignmentDelegation(delegation_).genesis();
        epochSeconds = IAlignmentDelegation(delegation_).epochSeconds();
        _setParams(params_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(NODE_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /*=== nodes (admin) ===*/

    /// @notice Register a node to supervise; it is active at once.
    /// @param kind storage or DA
    /// @param url where operators reach its JSON-RPC (http://host:port)
    /// @param operator the node's operator: the only account that may stake for it and withdraw the stake
    /// @param placement a storage node's index in the erasure code (share s of segment i on (i + s) mod codeN)
    /// @return nodeId the node's id (its index)
    function registerNode(NodeKind kind, string calldata url, address operator, uint16 placement)
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
        node.placement = placement;
        node.url = url;
        _countActive(node, true);
        emit NodeRegistered(nodeId, kind, operator, url);
    }

    /// @notice Stop (or resume) supervising a node; its stake stays slashable for results still to finalize.
    function setNodeActive(uint256 nodeId, bool active) external onlyRole(NODE_ADMIN_ROLE) {
        Node storage node = _node(nodeId);
        if (node.active == active) return;
        node.active = active;
        _countActive(node, active);
        emit NodeActiveSet(nodeId, active);
    }

    /// @notice Change the URL operators use to reach a node.
    function setNodeUrl(uint256 nodeId, string calldata url) external onlyRole(NODE_ADMIN_ROLE) {
        _checkUrl(url);
        _node(nodeId).url = url;
        emit NodeUrlSet(nodeId, url);
    }

    /// @notice Set the storage network's erasure code: `n` nodes, `k` data shares per segment (1 <= k <= n).
    function setErasureCode(uint16 n, uint16 k) external onlyRole(NODE_ADMIN_ROLE) {
        if (k == 0 || k > n) revert InvalidParams();
        codeN = n;
        codeK = k;
        emit ErasureCodeSet(n, k);
    }

    /// @notice Set the parameters (see `Params`).
    function setParams(Params calldata params_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParams(params_);
    }

    /// @notice Stop attestations, epoch openings and finalization (PAUSER_ROLE).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume attestations, epoch openings and finalization (PAUSER_ROLE).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== the challenge pool ===*/

    /// @notice Add flow submission `txSeq` to the files storage challenges pick from (anyone): its file must have
    ///         at least codeN - codeK + 1 full data segments, so that every storage node keeps a data share of
    ///         one of them. It counts from the next epoch opened.
    function registerChallengeFile(uint256 txSeq) external {
        uint256 n = codeN;
        if (n == 0) revert NoErasureCode();
        if (isChallengeFile[txSeq]) revert AlreadyChallengeFile(txSeq);
        (, uint256 sectors, uint256 size) = flow.submissionInfo(txSeq);
        if (size == 0) revert UnknownSubmission(txSeq);
        uint256 full = ChallengeMath.fullDataSegments(size, sectors);
        uint256 needed = n - codeK + 1;
        if (full < needed) revert FileTooSmall(txSeq, full, needed);
        isChallengeFile[txSeq] = true;
        emit ChallengeFileAdded(txSeq, _files.length);
        _files.push(txSeq);
    }

    /// @notice Files in the challenge pool.
    function challengeFileCount() external view returns (uint256) {
        return _files.length;
    }

    /// @notice The `index`-th file of the challenge pool (a flow tx seq).
    function challengeFile(uint256 index) external view returns (uint256) {
        return _files[index];
    }

    /// @notice The chunk storage node `nodeId` is challenged for in `epoch`, attempt `attempt`: ok false when
    ///         there is none (see ChallengeMath); else its submission, index in the file and flow position.
    function challengeOf(uint256 epoch, uint256 nodeId, uint256 attempt)
        public
        view
        returns (bool ok, uint256 txSeq, uint256 chunkIndex, uint256 position)
    {
        Node storage node = _node(nodeId);
        EpochInfo storage info = _epochs[epoch];
        uint256 files = info.files;
        if (node.kind != NodeKind.Storage || files == 0 || attempt >= MAX_ATTEMPTS || codeN == 0) {
            return (false, 0, 0, 0);
        }
        bytes32 h = ChallengeMath.attemptHash(info.seed, nodeId, attempt);
        txSeq = _files[uint256(h) % files];
        (uint256 start, uint256 sectors, uint256 size) = flow.submissionInfo(txSeq);
        (ok, chunkIndex) =
            ChallengeMath.pickChunk(h, ChallengeMath.fullDataSegments(size, sectors), node.placement, codeN, codeK);
        if (!ok) return (false, 0, 0, 0);
        position = start + chunkIndex;
    }

    /*=== epochs and attestations ===*/

    /// @notice Fix the current epoch's seed and challenge pool size if nobody did yet (anyone may call).
    /// @return seed the epoch's challenge seed
    function openEpoch() external whenNotPaused returns (bytes32 seed) {
        uint256 epoch = currentEpoch();
        EpochInfo storage info = _epochs[epoch];
        seed = info.seed;
        if (seed != bytes32(0)) return seed;
        seed = keccak256(abi.encode(block.prevrandao, blockhash(block.number - 1), address(this), epoch));
        uint256 files = _files.length;
        info.seed = seed;
        info.files = files;
        emit EpochOpened(epoch, seed, files);
    }

    /// @notice Attest that `nodeId` passed this epoch's challenge (active operators only, once per node). A
    ///         storage node's pass must carry the chunk of one attempt's challenge and its path to the flow root.
    /// @param epoch must be the current epoch (guards against an attestation landing in the next one)
    function attestPass(uint256 epoch, uint256 nodeId, StorageProof calldata proof)
        external
        whenNotPaused
        nonReentrant
    {
        (Node storage node, uint256 weight) = _precheck(epoch, nodeId);
        uint256 txSeq;
        uint256 position;
        if (node.kind == NodeKind.Storage) {
            bool ok;
            (ok, txSeq,, position) = challengeOf(epoch, nodeId, proof.attempt);
            if (!ok) revert NoChallenge(nodeId, proof.attempt);
            bytes32 root = flow.getFlowRootByTxSeq(txSeq);
            if (ChunkProof.rootOf(proof.chunk, position, proof.siblings) != root) {
                revert InvalidChunkProof(txSeq, position);
            }
        }
        _record(epoch, nodeId, node, weight, true, txSeq, position);
    }

    /// @notice Attest that `nodeId` failed this epoch's challenge, with the operator's evidence of its tries.
    /// @param epoch must be the current epoch
    function attestFail(uint256 epoch, uint256 nodeId, FailEvidence calldata evidence)
        external
        whenNotPaused
        nonReentrant
    {
        (Node storage node, uint256 weight) = _precheck(epoch, nodeId);
        _checkEvidence(epoch, evidence.tries);
        emit FailEvidenceGiven(epoch, nodeId, msg.sender, evidence.tries, evidence.record);
        _record(epoch, nodeId, node, weight, false, 0, 0);
    }

    /// @notice Record the results of a past epoch for `nodeIds` (anyone; at most MAX_BATCH ids). Nodes already
    ///         finalized or without attestations are skipped.
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
        uint256 available = currentEpoch() + _params.unbondingEpochs + 1;
        node.unstakeEpoch = uint64(available);
        emit UnstakeRequested(nodeId, available);
    }

    /// @notice Withdraw the whole remaining stake of a node once its unbonding period is over and every past
    ///         epoch with attestations for it has a result (`finalize`: a failed epoch is slashed first).
    /// @param to recipient of the stake
    function withdrawStake(uint256 nodeId, address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        Node storage node = _node(nodeId);
        if (msg.sender != node.operator) revert NotNodeOperator(nodeId, msg.sender);
        uint256 available = node.unstakeEpoch;
        if (available == 0) revert UnstakeNotRequested(nodeId);
        uint256 epoch = currentEpoch();
        if (epoch < available) revert StakeLocked(nodeId, available);
        uint256 open = node.openResults;
        Tally storage now_ = _tallies[epoch][nodeId];
        if (now_.passes + now_.fails != 0) open -= 1; // the current epoch cannot have a result yet
        if (open != 0) revert ResultsPending(nodeId, open);
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

    /// @notice The parameters.
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @notice The epoch at the current block's timestamp.
    function currentEpoch() public view returns (uint256) {
        return (block.timestamp - genesis) / epochSeconds;
    }

    /// @notice Timestamp at which `epoch` starts.
    function epochStart(uint256 epoch) public view returns (uint256) {
        return genesis + epoch * epochSeconds;
    }

    /// @notice Seed and challenge pool size fixed when `epoch` was opened (zeros if not opened).
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

    /// @notice Attestation weights and result of `nodeId` in `epoch`.
    function tallyOf(uint256 epoch, uint256 nodeId) external view returns (Tally memory) {
        return _tallies[epoch][nodeId];
    }

    /// @notice Whether `operator` attested `nodeId` in `epoch`.
    function hasAttested(uint256 epoch, uint256 nodeId, address operator) external view returns (bool) {
        return _attested[epoch][nodeId][operator];
    }

    /// @notice How many storage nodes `operator` attested in `epoch` with an attestation the chain checked.
    function checkedCount(uint256 epoch, address operator) external view returns (uint256) {
        return _checkedCount[epoch][operator];
    }

    /// @notice Whether `operator`'s duty in `epoch` was reported to the rewards contract.
    function dutyRecorded(uint256 epoch, address operator) external view returns (bool) {
        return _dutyRecorded[epoch][operator];
    }

    /*=== internals ===*/

    function _precheck(uint256 epoch, uint256 nodeId) private view returns (Node storage node, uint256 weight) {
        uint256 current = currentEpoch();
        if (epoch != current) revert EpochNotCurrent(epoch, current);
        if (_epochs[epoch].seed == bytes32(0)) revert EpochNotOpened(epoch);
        node = _node(nodeId);
        if (!node.active) revert NodeInactive(nodeId);
        weight = delegation.operatedCount(msg.sender); // licenses run in this epoch (0: not an active operator)
        if (weight == 0) revert NotActiveOperator(msg.sender);
        if (_attested[epoch][nodeId][msg.sender]) revert AlreadyAttested(epoch, nodeId, msg.sender);
    }

    function _checkEvidence(uint256 epoch, uint32[] calldata tries) private view {
        Params memory p = _params;
        uint256 n = tries.length;
        uint256 span = n == 0 ? 0 : tries[n - 1];
        bool valid = n >= p.minFailTries && n <= MAX_TRIES && tries[0] == 0 && span >= p.minFailSpan
            && block.timestamp >= epochStart(epoch) + span;
        for (uint256 i = 1; valid && i < n; ++i) {
            valid = tries[i] > tries[i - 1];
        }
        if (!valid) revert InsufficientEvidence(n, span);
    }

    function _record(
        uint256 epoch,
        uint256 nodeId,
        Node storage node,
        uint256 weight,
        bool passed,
        uint256 txSeq,
        uint256 position
    ) private {
        _attested[epoch][nodeId][msg.sender] = true;
        Tally storage tally = _tallies[epoch][nodeId];
        if (tally.passes + tally.fails == 0) node.openResults += 1;
        if (passed) tally.passes += uint32(weight);
        else tally.fails += uint32(weight);
        emit Attested(epoch, nodeId, msg.sender, passed, weight, txSeq, position);
        if (node.kind != NodeKind.Storage) return; // DA attestations are votes the chain cannot check: not paid

        uint256 count = _checkedCount[epoch][msg.sender] + 1;
        _checkedCount[epoch][msg.sender] = count;
        if (count >= activeStorageCount && !_dutyRecorded[epoch][msg.sender]) {
            _dutyRecorded[epoch][msg.sender] = true;
            emit OperatorDutyDone(epoch, msg.sender);
            rewards.recordOperated(epoch, msg.sender);
        }
    }

    function _finalizeOne(uint256 epoch, uint256 nodeId) private {
        Node storage node = _node(nodeId);
        Tally storage tally = _tallies[epoch][nodeId];
        uint256 passes = tally.passes;
        uint256 fails = tally.fails;
        if (tally.result != Result.None || passes + fails == 0) return;
        node.openResults -= 1;
        Result result;
        if (passes + fails < _params.minWeight || passes == fails) result = Result.Inconclusive;
        else result = passes > fails ? Result.Pass : Result.Fail;
        tally.result = result;
        emit NodeResult(epoch, nodeId, result, passes, fails);
        if (result == Result.Fail) {
            uint256 slashed = node.stake * _params.slashBps / BPS;
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

    function _countActive(Node storage node, bool active) private {
        if (active) {
            activeNodeCount += 1;
            if (node.kind == NodeKind.Storage) activeStorageCount += 1;
        } else {
            activeNodeCount -= 1;
            if (node.kind == NodeKind.Storage) activeStorageCount -= 1;
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

    function _setParams(Params memory p) private {
        if (p.slashBps > BPS || p.minWeight == 0 || p.minFailTries == 0 || p.minFailTries > MAX_TRIES
                || p.minFailSpan >= epochSeconds) {
            revert InvalidParams();
        }
        _params = p;
        emit ParamsSet(p);
    }

    function _transfer(address payable to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}

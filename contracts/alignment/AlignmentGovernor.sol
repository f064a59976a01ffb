// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {AlignmentLicense} from "./AlignmentLicense.sol";

/// @title AlignmentGovernor: license holders vote on parameter changes of the network's contracts
/// @notice A proposal is one call `(target, data)` whose (target, selector) pair is on the admin's allowlist
///         (e.g. `FixedPriceMarket.setPricePerSector`, `DAEntrance.setBlobPrice`; this contract must hold the
///         target's parameter role). Holders of at least `proposalThreshold` licenses propose.
///
///         Votes: one license, one vote, cast by the license's owner (a delegated license still votes for its
///         owner: delegation does not move the token). Only licenses that existed when the proposal was made
///         vote (token id <= `snapshotSupply`), and each license votes once per proposal whoever owns it later
///         (a per-(proposal, tokenId) flag), so buying or passing licenses around cannot add votes.
///
///         Lifecycle: voting is open for `votingPeriod` seconds; a proposal succeeds when the votes cast (for,
///         against and abstain) reach the quorum (`quorumBps` of `snapshotSupply`, at least one) and `for` beats
///         `against`; it can be executed by anyone `timelockDelay` seconds after voting ended (the timelock
///         lets users react to a passed change; at least MIN_TIMELOCK_DELAY), once, within GRACE_PERIOD after
///         that: a forgotten proposal expires instead of waiting to be executed at a moment of someone's choice. The admin can cancel a proposal that was not executed
///         and edits the allowlist; the voting parameters change through PARAMS_ADMIN_ROLE (which can be
///         given to this contract itself and allowlisted).
contract AlignmentGovernor is AccessControl, ReentrancyGuard {
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");

    /// @notice Basis points in 100 %.
    uint256 public constant BPS = 10_000;
    /// @notice Shortest timelock between the end of voting and execution.
    uint256 public constant MIN_TIMELOCK_DELAY = 60;
    /// @notice A passed proposal can be executed for this long after its timelock ended, then it expires.
    uint256 public constant GRACE_PERIOD = 14 days;

    enum ProposalState {
        Active,
        Defeated,
        Succeeded,
        Executed,
        Canceled,
        Expired
    }

    enum VoteType {
        Against,
        For,
        Abstain
    }

    struct Proposal {
        address proposer;
        uint64 voteEnd;
        uint64 eta;
        address target;
        uint32 snapshotSupply;
        uint32 quorum;
        uint32 forVotes;
        uint32 againstVotes;
        uint32 abstainVotes;
        bool executed;
        bool canceled;
        bytes data;
    }

    /// @notice The license NFT (votes).
    AlignmentLicense public immutable license;
    /// @notice Seconds a proposal is open for votes.
    uint256 public votingPeriod;
    /// @notice Seconds between the end of voting and the earliest execution.
    uint256 public timelockDelay;
    /// @notice Votes cast needed, in basis points of the licenses existing at proposal time.
    uint256 public quorumBps;
    /// @notice Licenses a proposer must own.
    uint256 public proposalThreshold;
    /// @notice Proposals made so far (ids 1..proposalCount).
    uint256 public proposalCount;

    /// @notice Whether proposals may call `selector` on `target`.
    mapping(address target => mapping(bytes4 selector => bool)) public isAllowed;
    /// @notice Whether license `tokenId` voted on proposal `proposalId`.
    mapping(uint256 proposalId => mapping(uint256 tokenId => bool)) public hasVoted;

    mapping(uint256 proposalId => Proposal) private _proposals;

    error ZeroAddress();
    error InvalidParameter();
    error TargetNotAllowed(address target, bytes4 selector);
    error BelowProposalThreshold(address proposer, uint256 licenses, uint256 threshold);
    error UnknownProposal(uint256 proposalId);
    error VotingClosed(uint256 proposalId);
    error InvalidVoteType(uint8 support);
    error EmptyTokenList();
    error LicenseNotEligible(uint256 proposalId, uint256 tokenId);
    error NotLicenseOwner(uint256 tokenId, address caller);
    error AlreadyVoted(uint256 proposalId, uint256 tokenId);
    error TimelockNotElapsed(uint256 proposalId, uint256 eta);
    error QuorumNotReached(uint256 proposalId, uint256 votes, uint256 quorum);
    error ProposalDefeated(uint256 proposalId, uint256 forVotes, uint256 againstVotes);
    error ProposalNotPending(uint256 proposalId);
    /// @notice The proposal could be executed until `deadline` only.
    error ProposalExpired(uint256 proposalId, uint256 deadline);
    error ExecutionFailed(uint256 proposalId, bytes returnData);

    event ProposalCreated(
        uint256 indexed proposalId,
        address indexed proposer,
        address indexed target,
        bytes data,
        string description,
        uint256 voteEnd,
        uint256 eta,
        uint256 snapshotSupply,
        uint256 quorum
    );
    event VoteCast(address indexed voter, uint256 indexed proposalId, uint8 support, uint256 votes);
    event ProposalExecuted(uint256 indexed proposalId, bytes returnData);
    event ProposalCanceled(uint256 indexed proposalId);
    event AllowlistUpdated(address indexed target, bytes4 indexed selector, bool allowed);
    event VotingParamsUpdated(
        uint256 votingPeriod, uint256 timelockDelay, uint256 quorumBps, uint256 proposalThreshold
    );

    /// @param license_ the license NFT
    /// @param admin receives DEFAULT_ADMIN_ROLE (allowlist, cancel) and PARAMS_ADMIN_ROLE (voting parameters)
    /// @param votingPeriod_ seconds a proposal is open for votes (> 0)
    /// @param timelockDelay_ seconds from the end of voting to the earliest execution (>= MIN_TIMELOCK_DELAY)
    /// @param quorumBps_ votes needed, basis points of the licenses at proposal time (1..10000)
    /// @param proposalThreshold_ licenses a proposer must own (> 0)
    constructor(
        address license_,
        address admin,
        uint256 votingPeriod_,
        uint256 timelockDelay_,
        uint256 quorumBps_,
        uint256 proposalThreshold_
    ) {
        if (license_ == address(0) || admin == address(0)) revert ZeroAddress();
        license = AlignmentLicense(license_);
        _setVotingParams(votingPeriod_, timelockDelay_, quorumBps_, proposalThreshold_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
    }

    /*=== proposals ===*/

    /// @notice Propose the call `data` on `target` (its selector must be allowlisted).
    /// @return proposalId the new proposal's id
    function propose(address target, bytes calldata data, string calldata description)
        external
        returns (uint256 proposalId)
    {
        _checkAllowed(target, data);
        uint256 owned = license.balanceOf(msg.sender);
        if (owned < proposalThreshold) revert BelowProposalThreshold(msg.sender, owned, proposalThreshold);
        uint256 supply = license.totalMinted();
        uint256 quorum_ = (supply * quorumBps + BPS - 1) / BPS;
        if (quorum_ == 0) quorum_ = 1;
        uint256 voteEnd = block.timestamp + votingPeriod;
        uint256 eta = voteEnd + timelockDelay;
        proposalId = ++proposalCount;
        Proposal storage p = _proposals[proposalId];
        p.proposer = msg.sender;
        p.voteEnd = uint64(voteEnd);
        p.eta = uint64(eta);
        p.target = target;
        p.snapshotSupply = uint32(supply);
        p.quorum = uint32(quorum_);
        p.data = data;
        emit ProposalCreated(proposalId, msg.sender, target, data, description, voteEnd, eta, supply, quorum_);
    }

    /// @notice Vote `support` (0 against, 1 for, 2 abstain) on `proposalId` with the caller's licenses
    ///         `tokenIds` (each existed at proposal time and has not voted on it yet).
    function castVote(uint256 proposalId, uint8 support, uint256[] calldata tokenIds) external {
        Proposal storage p = _proposal(proposalId);
        if (p.canceled || block.timestamp >= p.voteEnd) revert VotingClosed(proposalId);
        if (support > uint8(VoteType.Abstain)) revert InvalidVoteType(support);
        uint256 n = tokenIds.length;
        if (n == 0) revert EmptyTokenList();
        for (uint256 i = 0; i < n; ++i) {
            uint256 tokenId = tokenIds[i];
            if (tokenId > p.snapshotSupply) revert LicenseNotEligible(proposalId, tokenId);
            if (license.ownerOf(tokenId) != msg.sender) revert NotLicenseOwner(tokenId, msg.sender);
            if (hasVoted[proposalId][tokenId]) revert AlreadyVoted(proposalId, tokenId);
            hasVoted[proposalId][tokenId] = true;
        }
        if (support == uint8(VoteType.For)) p.forVotes += uint32(n);
        else if (support == uint8(VoteType.Against)) p.againstVotes += uint32(n);
        else p.abstainVotes += uint32(n);
        emit VoteCast(msg.sender, proposalId, support, n);
    }

    /// @notice Execute a succeeded proposal once its timelock has elapsed (anyone).
    function execute(uint256 proposalId) external nonReentrant returns (bytes memory returnData) {
        Proposal storage p = _proposal(proposalId);
        if (p.executed || p.canceled) revert ProposalNotPending(proposalId);
        if (block.timestamp < p.eta) revert TimelockNotElapsed(proposalId, p.eta); // eta >= voteEnd
        if (block.timestamp > uint256(p.eta) + GRACE_PERIOD) revert ProposalExpired(proposalId, p.eta + GRACE_PERIOD);
        uint256 cast = uint256(p.forVotes) + p.againstVotes + p.abstainVotes;
        if (cast < p.quorum) revert QuorumNotReached(proposalId, cast, p.quorum);
        if (p.forVotes <= p.againstVotes) revert ProposalDefeated(proposalId, p.forVotes, p.againstVotes);
        bytes memory data = p.data;
        _checkAllowed(p.target, data);
        p.executed = true;
        bool ok;
        (ok, returnData) = p.target.call(data);
        if (!ok) revert ExecutionFailed(proposalId, returnData);
        emit ProposalExecuted(proposalId, returnData);
    }

    /// @notice Cancel a proposal that was not executed (DEFAULT_ADMIN_ROLE or its proposer).
    function cancel(uint256 proposalId) external {
        Proposal storage p = _proposal(proposalId);
        if (msg.sender != p.proposer) _checkRole(DEFAULT_ADMIN_ROLE);
        if (p.executed || p.canceled) revert ProposalNotPending(proposalId);
        p.canceled = true;
        emit ProposalCanceled(proposalId);
    }

    /*=== views ===*/

    /// @notice The proposal's state now.
    function state(uint256 proposalId) public view returns (ProposalState) {
        Proposal storage p = _proposal(proposalId);
        if (p.executed) return ProposalState.Executed;
        if (p.canceled) return ProposalState.Canceled;
        if (block.timestamp < p.voteEnd) return ProposalState.Active;
        uint256 cast = uint256(p.forVotes) + p.againstVotes + p.abstainVotes;
        if (cast < p.quorum || p.forVotes <= p.againstVotes) return ProposalState.Defeated;
        if (block.timestamp > uint256(p.eta) + GRACE_PERIOD) return ProposalState.Expired;
        return ProposalState.Succeeded;
    }

    /// @notice A proposal's fields.
    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposal(proposalId);
    }

    /*=== admin ===*/

    /// @notice Allow or forbid proposals calling `selector` on `target` (DEFAULT_ADMIN_ROLE).
    function setAllowed(address target, bytes4 selector, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (target == address(0)) revert ZeroAddress();
        isAllowed[target][selector] = allowed;
        emit AllowlistUpdated(target, selector, allowed);
    }

    /// @notice Change the voting parameters of proposals made from now on (PARAMS_ADMIN_ROLE).
    function setVotingParams(uint256 votingPeriod_, uint256 timelockDelay_, uint256 quorumBps_, uint256 threshold)
        external
        onlyRole(PARAMS_ADMIN_ROLE)
    {
        _setVotingParams(votingPeriod_, timelockDelay_, quorumBps_, threshold);
    }

    /*=== internals ===*/

    function _proposal(uint256 proposalId) private view returns (Proposal storage p) {
        p = _proposals[proposalId];
        if (p.proposer == address(0)) revert UnknownProposal(proposalId);
    }

    function _checkAllowed(address target, bytes memory data) private view {
        bytes4 selector = data.length >= 4 ? bytes4(data) : bytes4(0);
        if (data.length < 4 || !isAllowed[target][selector]) revert TargetNotAllowed(target, selector);
    }

    function _setVotingParams(uint256 votingPeriod_, uint256 timelockDelay_, uint256 quorumBps_, uint256 threshold)
        private
    {
        if (
            votingPeriod_ == 0 || votingPeriod_ > 365 days || timelockDelay_ < MIN_TIMELOCK_DELAY
                || timelockDelay_ > 365 days || quorumBps_ == 0
                || quorumBps_ > BPS || threshold == 0
        ) revert InvalidParameter();
        votingPeriod = votingPeriod_;
        timelockDelay = timelockDelay_;
        quorumBps = quorumBps_;
        proposalThreshold = threshold;
        emit VotingParamsUpdated(votingPeriod_, timelockDelay_, quorumBps_, threshold);
    }
}

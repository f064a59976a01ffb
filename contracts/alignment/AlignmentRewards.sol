// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IAlignmentDelegation} from "./interfaces/IAlignmentDelegation.sol";
import {IAlignmentRewards} from "./interfaces/IAlignmentRewards.sol";
import {IOperatorChangeHook} from "./interfaces/IAlignmentHooks.sol";

/// @title AlignmentRewards: per-epoch rewards for operated licenses, paid by pull
/// @notice The admin funds the pool in ETH (`fundRewards`). Supervision (SUPERVISION_ROLE) calls
///         `recordOperated(epoch, operator)` once per (epoch, operator), during that epoch, when the operator did
///         its duty: each license the operator runs in the epoch (delegation's `operatedCount`: the licenses it
///         had when the epoch began) earns `rewardPerLicense` wei, of which the operator's commission of the epoch
///         goes to the operator and the rest to the license's owner of the time. One license has one operator per
///         epoch, so it earns at most one reward per epoch.
///
///         Accounting in O(1) per record: every operator has an accumulator `accPerLicense[operator]`, the
///         owners' share earned so far by one license it ran in every recorded epoch, and the owners' share of
///         each record (`ownerShareOf[epoch][operator]`). A license remembers the accumulator when it joined its
///         operator (`debt`); delegations take effect at the next epoch, so a record of the joining epoch made
///         after the join is not the license's (it is subtracted). A license that leaves an operator during an
///         epoch in which it ran still earns that epoch's record if it comes later: that share is kept for the
///         owner at the time it left ("trailing share") and credited when the record exists. The delegation
///         contract calls `onOperatorChange` on every change; `settle` (anyone) and `claim` credit what is due.
///
///         Conservation: `totalAllocated` (what records promised) == `totalClaimed` + credited balances +
///         pending and trailing shares, and the contract always holds `totalFunded - totalWithdrawn -
///         totalClaimed` >= what is still owed. A record the unallocated pool cannot cover reverts
///         (`InsufficientRewardFunds`): the admin tops up and supervision retries within the epoch.
contract AlignmentRewards is IAlignmentRewards, IOperatorChangeHook, AccessControl, ReentrancyGuard {
    /// @notice Role of the supervision contract that reports operated (epoch, operator) pairs.
    bytes32 public constant SUPERVISION_ROLE = keccak256("SUPERVISION_ROLE");
    bytes32 public constant FUNDER_ROLE = keccak256("FUNDER_ROLE");
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");

    /// @notice Basis points in 100 %.
    uint256 public constant BPS = 10_000;

    /// @dev Reward state of one license. It runs with `operator` from epoch `from` on (`from - 1` is the epoch
    ///      in which it joined; `joinRecorded`: that epoch's record of `operator` already existed then) and is
    ///      owed `accPerLicense[operator] - debt` (minus the joining epoch's later record). A trailing share is
    ///      the owner share of record (`trailEpoch`, `trailOperator`), owed to `trailOwner` if it is made.
    struct TokenState {
        address operator;
        uint64 from;
        bool joinRecorded;
        uint256 debt;
        address trailOperator;
        uint64 trailEpoch;
        address trailOwner;
    }

    /// @notice The license NFT (claims check ownership).
    IERC721 public immutable license;
    /// @notice The delegation contract (operators, counts, commissions, the epoch clock; the only hook caller).
    IAlignmentDelegation public immutable delegation;

    /// @notice Reward per operated license per recorded epoch, wei.
    uint256 public rewardPerLicense;
    /// @notice Owners' share earned by one license run by `operator` in every recorded epoch, summed.
    mapping(address operator => uint256) public accPerLicense;
    /// @notice The owners' share per license of the record of (epoch, operator).
    mapping(uint256 epoch => mapping(address operator => uint256)) public ownerShareOf;
    /// @notice Settled, unclaimed rewards of each account (owners' settled shares, operators' commissions).
    mapping(address account => uint256) public credited;
    /// @notice Whether (epoch, operator) was recorded.
    mapping(uint256 epoch => mapping(address operator => bool)) public recorded;

    mapping(uint256 tokenId => TokenState) private _tokens;

    /// @notice ETH put into the pool.
    uint256 public totalFunded;
    /// @notice Rewards promised by records.
    uint256 public totalAllocated;
    /// @notice Rewards paid out by claims.
    uint256 public totalClaimed;
    /// @notice Unallocated ETH taken back by the admin.
    uint256 public totalWithdrawn;

    error ZeroAddress();
    error ZeroAmount();
    error NotDelegationContract(address caller);
    error AlreadyRecorded(uint256 epoch, address operator);
    /// @notice Records are made during their epoch (the counts are those of the epoch).
    error EpochNotCurrent(uint256 epoch, uint256 current);
    error InsufficientRewardFunds(uint256 needed, uint256 available);
    error NotLicenseOwner(uint256 tokenId, address caller);
    error NothingToClaim(address account);
    error TransferFailed();

    event RewardsFunded(address indexed funder, uint256 amount);
    event UnallocatedWithdrawn(address indexed to, uint256 amount);
    event RewardPerLicenseUpdated(uint256 oldReward, uint256 newReward);
    /// @notice `licenses` licenses of `operator` earned `perLicense` wei each in `epoch`, `commissionBps` of it
    ///         for the operator.
    event OperatedRecorded(
        uint256 indexed epoch, address indexed operator, uint256 licenses, uint256 perLicense, uint256 commissionBps
    );
    /// @notice `amount` of `tokenId`'s reward (run by `operator`) was credited to `owner`.
    event RewardSettled(uint256 indexed tokenId, address indexed owner, address indexed operator, uint256 amount);
    event RewardsClaimed(address indexed account, uint256 amount);

    /// @param license_ the license NFT
    /// @param delegation_ the delegation contract
    /// @param admin receives DEFAULT_ADMIN_ROLE, FUNDER_ROLE and PARAMS_ADMIN_ROLE (SUPERVISION_ROLE is
    ///        granted later to the supervision contract)
    /// @param rewardPerLicense_ reward per operated license per epoch, wei
    constructor(address license_, address delegation_, address admin, uint256 rewardPerLicense_) {
        if (license_ == address(0) || delegation_ == address(0) || admin == address(0)) revert ZeroAddress();
        license = IERC721(license_);
        delegation = IAlignmentDelegation(delegation_);
        rewardPerLicense = rewardPerLicense_;
        emit RewardPerLicenseUpdated(0, rewardPerLicense_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(FUNDER_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
    }

    /*=== pool ===*/

    /// @notice Add msg.value to the reward pool (FUNDER_ROLE).
    function fundRewards() external payable onlyRole(FUNDER_ROLE) {
        if (msg.value == 0) revert ZeroAmount();
        totalFunded += msg.value;
        emit RewardsFunded(msg.sender, msg.value);
    }

    /// @notice Pool ETH not yet promised to anybody.
    function unallocated() public view returns (uint256) {
        return totalFunded - totalWithdrawn - totalAllocated;
    }

    /// @notice Take back `amount` wei of unallocated pool (DEFAULT_ADMIN_ROLE).
    function withdrawUnallocated(address payable to, uint256 amount)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        nonReentrant
    {
        if (to == address(0)) revert ZeroAddress();
        uint256 available = unallocated();
        if (amount > available) revert InsufficientRewardFunds(amount, available);
        totalWithdrawn += amount;
        emit UnallocatedWithdrawn(to, amount);
        _send(to, amount);
    }

    /// @notice Change the reward per operated license per epoch (PARAMS_ADMIN_ROLE; later records).
    function setRewardPerLicense(uint256 newReward) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit RewardPerLicenseUpdated(rewardPerLicense, newReward);
        rewardPerLicense = newReward;
    }

    /*=== recording ===*/

    /// @inheritdoc IAlignmentRewards
    function recordOperated(uint256 epoch, address operator) external onlyRole(SUPERVISION_ROLE) {
        uint256 current = delegation.currentEpoch();
        if (epoch != current) revert EpochNotCurrent(epoch, current);
        if (recorded[epoch][operator]) revert AlreadyRecorded(epoch, operator);
        recorded[epoch][operator] = true;
        uint256 n = delegation.operatedCount(operator);
        uint256 perLicense = rewardPerLicense;
        uint256 bps = delegation.commissionBps(operator);
        uint256 total = n * perLicense;
        uint256 available = unallocated();
        if (total > available) revert InsufficientRewardFunds(total, available);
        uint256 commission = (perLicense * bps) / BPS;
        ownerShareOf[epoch][operator] = perLicense - commission;
        accPerLicense[operator] += perLicense - commission;
        credited[operator] += commission * n;
        totalAllocated += total;
        emit OperatedRecorded(epoch, operator, n, perLicense, bps);
    }

    /// @inheritdoc IOperatorChangeHook
    /// @dev A leave settles the token's reward to `owner` and, when the token ran with `oldOperator` in this
    ///      epoch and the epoch is not recorded yet, keeps its share of that record for `owner`; a join starts
    ///      the token with `newOperator` from the next epoch.
    function onOperatorChange(uint256 tokenId, address owner, address oldOperator, address newOperator) external {
        if (msg.sender != address(delegation)) revert NotDelegationContract(msg.sender);
        TokenState storage t = _tokens[tokenId];
        uint256 epoch = delegation.currentEpoch();
        _resolveTrail(tokenId, t, epoch);
        if (oldOperator != address(0)) {
            uint256 amount = _pending(t);
            if (amount != 0) _credit(tokenId, owner, oldOperator, amount);
            if (t.from <= epoch && !recorded[epoch][oldOperator]) {
                (t.trailOperator, t.trailEpoch, t.trailOwner) = (oldOperator, uint64(epoch), owner);
            }
            t.operator = address(0);
        }
        if (newOperator != address(0)) {
            t.operator = newOperator;
            t.from = uint64(epoch + 1);
            t.joinRecorded = recorded[epoch][newOperator];
            t.debt = accPerLicense[newOperator];
        }
    }

    /*=== claims ===*/

    /// @notice The reward `tokenId` earned with its current operator and not yet settled (for its owner).
    function pendingOf(uint256 tokenId) public view returns (uint256) {
        return _pending(_tokens[tokenId]);
    }

    /// @notice The trailing share of `tokenId` (see the contract's notes): who it is for and how much is owed now
    ///         (zero until the record exists).
    function trailingOf(uint256 tokenId) public view returns (address owner, uint256 amount) {
        TokenState storage t = _tokens[tokenId];
        if (t.trailOperator == address(0)) return (address(0), 0);
        owner = t.trailOwner;
        if (recorded[t.trailEpoch][t.trailOperator]) amount = ownerShareOf[t.trailEpoch][t.trailOperator];
    }

    /// @notice What `claim(tokenIds)` would pay `account`: its credited balance, the pending rewards of the
    ///         listed licenses it owns, and the trailing shares of the listed licenses owed to it.
    function claimable(address account, uint256[] calldata tokenIds) external view returns (uint256 amount) {
        amount = credited[account];
        for (uint256 i = 0; i < tokenIds.length; ++i) {
            uint256 tokenId = tokenIds[i];
            if (license.ownerOf(tokenId) == account) amount += pendingOf(tokenId);
            (address owner, uint256 trail) = trailingOf(tokenId);
            if (owner == account) amount += trail;
        }
    }

    /// @notice Credit everything due on `tokenIds` to the accounts it is owed to (owners' pending rewards,
    ///         trailing shares); anyone may call, nothing is paid out.
    function settle(uint256[] calldata tokenIds) external {
        uint256 epoch = delegation.currentEpoch();
        for (uint256 i = 0; i < tokenIds.length; ++i) {
            uint256 tokenId = tokenIds[i];
            TokenState storage t = _tokens[tokenId];
            _resolveTrail(tokenId, t, epoch);
            _settlePending(tokenId, t, license.ownerOf(tokenId));
        }
    }

    /// @notice Settle the caller's licenses `tokenIds` (each owned by the caller, or owing it a trailing share)
    ///         and pay everything credited to the caller (owners' shares and operators' commissions).
    function claim(uint256[] calldata tokenIds) external nonReentrant returns (uint256 amount) {
        uint256 epoch = delegation.currentEpoch();
        for (uint256 i = 0; i < tokenIds.length; ++i) {
            uint256 tokenId = tokenIds[i];
            TokenState storage t = _tokens[tokenId];
            address owner = license.ownerOf(tokenId);
            if (owner != msg.sender && t.trailOwner != msg.sender) revert NotLicenseOwner(tokenId, msg.sender);
            _resolveTrail(tokenId, t, epoch);
            _settlePending(tokenId, t, owner);
        }
        amount = credited[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        credited[msg.sender] = 0;
        totalClaimed += amount;
        emit RewardsClaimed(msg.sender, amount);
        _send(payable(msg.sender), amount);
    }

    /*=== internals ===*/

    /// @dev accPerLicense[operator] - debt, less the joining epoch's record if it came after the join.
    function _pending(TokenState storage t) private view returns (uint256) {
        address operator = t.operator;
        if (operator == address(0)) return 0;
        uint256 debt = t.debt;
        uint256 joined = t.from - 1;
        if (!t.joinRecorded && recorded[joined][operator]) debt += ownerShareOf[joined][operator];
        return accPerLicense[operator] - debt;
    }

    /// @dev Credit the pending reward to `owner` and restart the count from now.
    function _settlePending(uint256 tokenId, TokenState storage t, address owner) private {
        address operator = t.operator;
        if (operator == address(0)) return;
        uint256 amount = _pending(t);
        t.debt = accPerLicense[operator];
        if (!t.joinRecorded && recorded[t.from - 1][operator]) t.joinRecorded = true; // now inside the debt
        if (amount != 0) _credit(tokenId, owner, operator, amount);
    }

    /// @dev Credit the trailing share once its record exists; drop it once its epoch is over without one.
    function _resolveTrail(uint256 tokenId, TokenState storage t, uint256 epoch) private {
        address operator = t.trailOperator;
        if (operator == address(0)) return;
        uint256 trailEpoch = t.trailEpoch;
        if (recorded[trailEpoch][operator]) {
            _credit(tokenId, t.trailOwner, operator, ownerShareOf[trailEpoch][operator]);
        } else if (epoch <= trailEpoch) {
            return; // the record may still come
        }
        (t.trailOperator, t.trailEpoch, t.trailOwner) = (address(0), 0, address(0));
    }

    function _credit(uint256 tokenId, address owner, address operator, uint256 amount) private {
        credited[owner] += amount;
        emit RewardSettled(tokenId, owner, operator, amount);
    }

    function _send(address payable to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}

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
///         `recordOperated(epoch, operator)` once per (epoch, operator) when the operator did its duty: each of
///         the `operatedCount(operator)` licenses it runs at that moment earns `rewardPerLicense` wei, of which
///         the operator's commission (`commissionBps` at that moment) is credited to the operator and the rest
///         to the license's owner.
///
///         Accounting in O(1) per record: every operator has an accumulator `accPerLicense[operator]`, the
///         owners' share earned so far by one license run by it since the start; every license remembers the
///         accumulator value when it joined its operator (`debtOf`). A license's pending reward is the
///         difference. The delegation contract calls `onOperatorChange` before a license leaves (undelegation
///         or transfer: the pending reward is credited to the owner of that moment) and when it joins (the
///         debt is reset). `claim(tokenIds)` settles the caller's listed licenses and pays everything credited
///         to the caller: claiming costs O(tokens of the caller), recording never loops over delegators.
///
///         Conservation: `totalAllocated` (what records promised) == `totalClaimed` + credited balances +
///         pending rewards of all delegated licenses, and the contract always holds `totalFunded -
///         totalWithdrawn - totalClaimed` >= what is still owed. A record that the unallocated pool cannot
///         cover reverts (`InsufficientRewardFunds`): the admin tops up and supervision retries.
contract AlignmentRewards is IAlignmentRewards, IOperatorChangeHook, AccessControl, ReentrancyGuard {
    /// @notice Role of the supervision contract that reports operated (epoch, operator) pairs.
    bytes32 public constant SUPERVISION_ROLE = keccak256("SUPERVISION_ROLE");
    bytes32 public constant FUNDER_ROLE = keccak256("FUNDER_ROLE");
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");

    /// @notice Basis points in 100 %.
    uint256 public constant BPS = 10_000;

    /// @notice The license NFT (claims check ownership).
    IERC721 public immutable license;
    /// @notice The delegation contract (operators, counts, commissions; the only caller of the hook).
    IAlignmentDelegation public immutable delegation;

    /// @notice Reward per operated license per recorded epoch, wei.
    uint256 public rewardPerLicense;
    /// @notice Owners' share earned by one license run by `operator`, accumulated since the start.
    mapping(address operator => uint256) public accPerLicense;
    /// @notice `accPerLicense` of the license's operator when the license joined it (or was last settled).
    mapping(uint256 tokenId => uint256) public debtOf;
    /// @notice Settled, unclaimed rewards of each account (owners' settled shares, operators' commissions).
    mapping(address account => uint256) public credited;
    /// @notice Whether (epoch, operator) was recorded.
    mapping(uint256 epoch => mapping(address operator => bool)) public recorded;

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
    /// @notice The pending reward of `tokenId` was credited to its owner.
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
        if (recorded[epoch][operator]) revert AlreadyRecorded(epoch, operator);
        recorded[epoch][operator] = true;
        uint256 n = delegation.operatedCount(operator);
        uint256 perLicense = rewardPerLicense;
        uint256 bps = delegation.commissionBps(operator);
        uint256 total = n * perLicense;
        uint256 available = unallocated();
        if (total > available) revert InsufficientRewardFunds(total, available);
        uint256 commission = (perLicense * bps) / BPS;
        accPerLicense[operator] += perLicense - commission;
        credited[operator] += commission * n;
        totalAllocated += total;
        emit OperatedRecorded(epoch, operator, n, perLicense, bps);
    }

    /// @inheritdoc IOperatorChangeHook
    function onOperatorChange(uint256 tokenId, address owner, address oldOperator, address newOperator) external {
        if (msg.sender != address(delegation)) revert NotDelegationContract(msg.sender);
        if (oldOperator != address(0)) {
            uint256 amount = accPerLicense[oldOperator] - debtOf[tokenId];
            if (amount != 0) {
                credited[owner] += amount;
                emit RewardSettled(tokenId, owner, oldOperator, amount);
            }
        }
        debtOf[tokenId] = newOperator == address(0) ? 0 : accPerLicense[newOperator];
    }

    /*=== claims ===*/

    /// @notice The not yet settled reward of `tokenId` (for its current owner).
    function pendingOf(uint256 tokenId) public view returns (uint256) {
        address operator = delegation.operatorOf(tokenId);
        if (operator == address(0)) return 0;
        return accPerLicense[operator] - debtOf[tokenId];
    }

    /// @notice What `claim(tokenIds)` would pay `account` (its credited balance plus the pending rewards of the
    ///         listed licenses it owns).
    function claimable(address account, uint256[] calldata tokenIds) external view returns (uint256 amount) {
        amount = credited[account];
        for (uint256 i = 0; i < tokenIds.length; ++i) {
            if (license.ownerOf(tokenIds[i]) == account) amount += pendingOf(tokenIds[i]);
        }
    }

    /// @notice Settle the pending rewards of the caller's licenses `tokenIds` and pay everything credited to
    ///         the caller (owners' shares and operators' commissions).
    function claim(uint256[] calldata tokenIds) external nonReentrant returns (uint256 amount) {
        for (uint256 i = 0; i < tokenIds.length; ++i) {
            uint256 tokenId = tokenIds[i];
            if (license.ownerOf(tokenId) != msg.sender) revert NotLicenseOwner(tokenId, msg.sender);
            address operator = delegation.operatorOf(tokenId);
            if (operator == address(0)) continue;
            uint256 acc = accPerLicense[operator];
            uint256 pending = acc - debtOf[tokenId];
            if (pending != 0) {
                debtOf[tokenId] = acc;
                emit RewardSettled(tokenId, msg.sender, operator, pending);
                amount += pending;
            }
        }
        amount += credited[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        credited[msg.sender] = 0;
        totalClaimed += amount;
        emit RewardsClaimed(msg.sender, amount);
        _send(payable(msg.sender), amount);
    }

    function _send(address payable to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}

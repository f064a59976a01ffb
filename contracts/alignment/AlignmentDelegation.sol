// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

import {IAlignmentDelegation} from "./interfaces/IAlignmentDelegation.sol";
import {ILicenseTransferHook, IOperatorChangeHook} from "./interfaces/IAlignmentHooks.sol";

/// @title AlignmentDelegation: license owners delegate their licenses to operators
/// @notice Operators register with a commission (basis points, at most `maxCommissionBps`) while owning at
///         least one license (as 0G's operators must). Owners delegate licenses with `delegateNfts(operator,
///         tokenIds)` and take them back with `undelegateNfts(operator, tokenIds, false)`; an operator may
///         hand licenses back with `undelegateNfts(owner, tokenIds, true)` (0G's manager shape). A registered
///         operator runs its own licenses by delegating them to itself. An operator runs at most
///         `maxLicensesPerOperator` licenses.
///
///         Custody (documented choice): the owner keeps the token; this contract only records the delegation.
///         The license contract reports every transfer through `onLicenseTransfer`, which clears the token's
///         delegation, so a delegation never outlives its owner's ownership. Owners need no approval, wallets
///         and governance see the real owner through `ownerOf`, and the sale's transfer lock does not get in the
///         way of delegating.
///
///         Epochs (H2 of the audit): time is cut into epochs of `epochSeconds` from the deployment
///         (`currentEpoch`); supervision and rewards use this clock. Every change — a delegation, its end, a
///         transfer, a commission — takes effect at the next epoch: in an epoch, each license has the one
///         operator it had when the epoch began, and each operator the licenses and the commission it had
///         then (`operatedCount`, `commissionBps`). So one license is counted once per epoch, for one operator,
///         whatever moves during the epoch, and owners see a commission change an epoch before it applies.
///
///         Every change of a token's operator goes through the rewards contract (`rewards`, set once), which
///         settles the token's reward for the epochs it was run so far to its owner of that time.
contract AlignmentDelegation is IAlignmentDelegation, ILicenseTransferHook, AccessControl, Pausable {
    using EnumerableSet for EnumerableSet.UintSet;

    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Basis points in 100 %.
    uint16 public constant BPS = 10_000;

    /// @dev `count` and `commissionBps` hold in epochs before `nextFrom`, `nextCount` and `nextCommissionBps`
    ///      from `nextFrom` on (the epoch after the last change).
    struct Operator {
        bool registered;
        uint16 commissionBps;
        uint16 nextCommissionBps;
        uint32 count;
        uint32 nextCount;
        uint64 nextFrom;
    }

    /// @notice The license NFT.
    IERC721 public immutable license;
    /// @notice Timestamp at which epoch 0 starts.
    uint256 public immutable genesis;
    /// @notice Epoch length, seconds.
    uint256 public immutable epochSeconds;
    /// @notice The rewards contract told about operator changes (zero until set).
    IOperatorChangeHook public rewards;
    /// @notice Most licenses one operator may run.
    uint256 public maxLicensesPerOperator;
    /// @notice Highest commission an operator may ask, basis points.
    uint16 public maxCommissionBps;
    /// @notice Licenses delegated right now (from the next epoch on), over all operators.
    uint256 public totalDelegated;

    mapping(address operator => Operator) private _operators;
    mapping(uint256 tokenId => address) private _operatorOf;
    mapping(address delegator => mapping(address operator => EnumerableSet.UintSet)) private _delegated;

    error ZeroAddress();
    error RewardsAlreadySet();
    error RewardsNotSet();
    error NotLicenseContract(address caller);
    error NoLicenseOwned(address account);
    error AlreadyRegistered(address operator);
    error OperatorNotRegistered(address operator);
    error CommissionTooHigh(uint256 commissionBps, uint256 maxBps);
    error InvalidParameter();
    error EmptyTokenList();
    error OperatorCapExceeded(address operator, uint256 requested, uint256 remaining);
    error NotLicenseOwner(uint256 tokenId, address caller);
    error AlreadyDelegated(uint256 tokenId, address operator);
    error NotDelegated(uint256 tokenId, address delegator, address operator);
    error OperatorHasLicenses(address operator, uint256 count);

    event RewardsSet(address indexed rewards);
    event OperatorRegistered(address indexed operator, uint16 commissionBps);
    event OperatorDeregistered(address indexed operator);
    event CommissionUpdated(address indexed operator, uint16 oldBps, uint16 newBps);
    event Delegated(address indexed delegator, address indexed operator, uint256 indexed tokenId);
    /// @param byTransfer true when the license was transferred (the delegation ended with the ownership)
    event Undelegated(address indexed delegator, address indexed operator, uint256 indexed tokenId, bool byTransfer);
    event MaxLicensesPerOperatorUpdated(uint256 oldMax, uint256 newMax);
    event MaxCommissionUpdated(uint16 oldBps, uint16 newBps);

    /// @param license_ the license NFT
    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    /// @param maxLicensesPerOperator_ most licenses one operator may run (> 0)
    /// @param maxCommissionBps_ highest commission, basis points (<= 10000)
    /// @param epochSeconds_ epoch length in seconds (> 0); epoch 0 starts now
    constructor(
        address license_,
        address admin,
        uint256 maxLicensesPerOperator_,
        uint16 maxCommissionBps_,
        uint256 epochSeconds_
    ) {
        if (license_ == address(0) || admin == address(0)) revert ZeroAddress();
        if (epochSeconds_ == 0) revert InvalidParameter();
        license = IERC721(license_);
        genesis = block.timestamp;
        epochSeconds = epochSeconds_;
        _setMaxLicensesPerOperator(maxLicensesPerOperator_);
        _setMaxCommission(maxCommissionBps_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /*=== operators ===*/

    /// @notice Register the caller as an operator taking `commissionBps` of its licenses' rewards; the caller
    ///         must own at least one license.
    function registerOperator(uint16 commissionBps_) external whenNotPaused {
        Operator storage op = _operators[msg.sender];
        if (op.registered) revert AlreadyRegistered(msg.sender);
        if (license.balanceOf(msg.sender) == 0) revert NoLicenseOwned(msg.sender);
        _checkCommission(commissionBps_);
        op.registered = true;
        op.commissionBps = commissionBps_; // it runs nothing yet: the commission holds at once
        op.nextCommissionBps = commissionBps_;
        emit OperatorRegistered(msg.sender, commissionBps_);
    }

    /// @notice Change the caller's commission; it applies from the next epoch (owners can react first).
    function setCommission(uint16 commissionBps_) external {
        Operator storage op = _operators[msg.sender];
        if (!op.registered) revert OperatorNotRegistered(msg.sender);
        _checkCommission(commissionBps_);
        _roll(op);
        emit CommissionUpdated(msg.sender, op.nextCommissionBps, commissionBps_);
        op.nextCommissionBps = commissionBps_;
    }

    /// @notice Stop being an operator; the caller must run no license in this epoch nor from the next one (hand
    ///         them back first and wait for the epoch to end).
    function deregisterOperator() external {
        Operator storage op = _operators[msg.sender];
        if (!op.registered) revert OperatorNotRegistered(msg.sender);
        uint256 running = _countAt(op, currentEpoch());
        if (running < op.nextCount) running = op.nextCount;
        if (running != 0) revert OperatorHasLicenses(msg.sender, running);
        delete _operators[msg.sender];
        emit OperatorDeregistered(msg.sender);
    }

    /*=== delegation ===*/

    /// @notice Delegate the caller's licenses `tokenIds` (none delegated yet) to the registered `operator`
    ///         (the caller itself to self-operate), from the next epoch on. The cap counts the operator's
    ///         licenses from the next epoch.
    function delegateNfts(address operator, uint256[] calldata tokenIds) external whenNotPaused {
        IOperatorChangeHook hook = rewards;
        if (address(hook) == address(0)) revert RewardsNotSet();
        uint256 n = tokenIds.length;
        if (n == 0) revert EmptyTokenList();
        Operator storage op = _operators[operator];
        if (!op.registered) revert OperatorNotRegistered(operator);
        _roll(op);
        uint256 count = op.nextCount;
        if (count + n > maxLicensesPerOperator) {
            revert OperatorCapExceeded(
                operator, n, maxLicensesPerOperator > count ? maxLicensesPerOperator - count : 0
            );
        }
        EnumerableSet.UintSet storage set = _delegated[msg.sender][operator];
        for (uint256 i = 0; i < n; ++i) {
            uint256 tokenId = tokenIds[i];
            if (license.ownerOf(tokenId) != msg.sender) revert NotLicenseOwner(tokenId, msg.sender);
            address current = _operatorOf[tokenId];
            if (current != address(0)) revert AlreadyDelegated(tokenId, current);
            _operatorOf[tokenId] = operator;
            set.add(tokenId);
            emit Delegated(msg.sender, operator, tokenId);
        }
        op.nextCount = uint32(count + n);
        totalDelegated += n;
        // Interactions last (checks-effects-interactions): the reward hook sees the finished delegation.
        for (uint256 i = 0; i < n; ++i) {
            hook.onOperatorChange(tokenIds[i], msg.sender, address(0), operator);
        }
    }

    /// @notice End delegations from the next epoch on: the owner calls with (operator, tokenIds, false); the
    ///         operator hands licenses back with (owner, tokenIds, true). Rewards are settled to the owner first;
    ///         a license still counts for its operator in the current epoch if it did when the epoch began.
    function undelegateNfts(address _address, uint256[] calldata tokenIds, bool byOperator) external {
        if (tokenIds.length == 0) revert EmptyTokenList();
        (address delegator, address operator) = byOperator ? (_address, msg.sender) : (msg.sender, _address);
        for (uint256 i = 0; i < tokenIds.length; ++i) {
            uint256 tokenId = tokenIds[i];
            if (_operatorOf[tokenId] != operator || license.ownerOf(tokenId) != delegator) {
                revert NotDelegated(tokenId, delegator, operator);
            }
            _clear(tokenId, delegator, operator, false);
        }
    }

    /// @inheritdoc ILicenseTransferHook
    function onLicenseTransfer(uint256 tokenId, address from, address) external {
        if (msg.sender != address(license)) revert NotLicenseContract(msg.sender);
        address operator = _operatorOf[tokenId];
        if (operator != address(0)) _clear(tokenId, from, operator, true);
    }

    /*=== views ===*/

    /// @inheritdoc IAlignmentDelegation
    function currentEpoch() public view returns (uint256) {
        return (block.timestamp - genesis) / epochSeconds;
    }

    /// @notice Timestamp at which `epoch` starts.
    function epochStart(uint256 epoch) external view returns (uint256) {
        return genesis + epoch * epochSeconds;
    }

    /// @notice The licenses `delegator` has delegated to `operator` (0G's getDelegatorInfo; from the next epoch).
    function getDelegatorInfo(address delegator, address operator) external view returns (uint256[] memory) {
        return _delegated[delegator][operator].values();
    }

    /// @inheritdoc IAlignmentDelegation
    function operatorOf(uint256 tokenId) external view returns (address) {
        return _operatorOf[tokenId];
    }

    /// @inheritdoc IAlignmentDelegation
    function operatedCount(address operator) external view returns (uint256) {
        return _countAt(_operators[operator], currentEpoch());
    }

    /// @notice How many licenses `operator` will run from the next epoch (what the cap applies to).
    function nextOperatedCount(address operator) external view returns (uint256) {
        return _operators[operator].nextCount;
    }

    /// @inheritdoc IAlignmentDelegation
    function isActiveOperator(address account) external view returns (bool) {
        Operator storage op = _operators[account];
        return op.registered && _countAt(op, currentEpoch()) > 0;
    }

    /// @inheritdoc IAlignmentDelegation
    function commissionBps(address operator) external view returns (uint16) {
        Operator storage op = _operators[operator];
        return currentEpoch() >= op.nextFrom ? op.nextCommissionBps : op.commissionBps;
    }

    /// @notice The commission `operator` takes from the next epoch.
    function nextCommissionBps(address operator) external view returns (uint16) {
        return _operators[operator].nextCommissionBps;
    }

    /// @notice Whether `account` is a registered operator.
    function isRegistered(address account) external view returns (bool) {
        return _operators[account].registered;
    }

    /*=== admin ===*/

    /// @notice Set the rewards contract (DEFAULT_ADMIN_ROLE; once, before any delegation).
    function setRewards(address rewards_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (rewards_ == address(0)) revert ZeroAddress();
        if (address(rewards) != address(0)) revert RewardsAlreadySet();
        rewards = IOperatorChangeHook(rewards_);
        emit RewardsSet(rewards_);
    }

    /// @notice Change the most licenses one operator may run (PARAMS_ADMIN_ROLE; running ones stay).
    function setMaxLicensesPerOperator(uint256 newMax) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setMaxLicensesPerOperator(newMax);
    }

    /// @notice Change the highest commission (PARAMS_ADMIN_ROLE; applies to registrations and changes).
    function setMaxCommissionBps(uint16 newBps) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setMaxCommission(newBps);
    }

    /// @notice Stop new registrations and delegations (PAUSER_ROLE); undelegation stays open.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume registrations and delegations (PAUSER_ROLE).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== internals ===*/

    function _clear(uint256 tokenId, address delegator, address operator, bool byTransfer) private {
        delete _operatorOf[tokenId];
        _delegated[delegator][operator].remove(tokenId);
        Operator storage op = _operators[operator];
        _roll(op);
        op.nextCount -= 1;
        totalDelegated -= 1;
        emit Undelegated(delegator, operator, tokenId, byTransfer);
        rewards.onOperatorChange(tokenId, delegator, operator, address(0));
    }

    /// @dev Before a change in epoch c: values due from an earlier epoch become the current ones, and the next
    ///      ones now apply from c + 1.
    function _roll(Operator storage op) private {
        uint256 epoch = currentEpoch();
        if (op.nextFrom <= epoch) {
            op.count = op.nextCount;
            op.commissionBps = op.nextCommissionBps;
            op.nextFrom = uint64(epoch + 1);
        }
    }

    function _countAt(Operator storage op, uint256 epoch) private view returns (uint256) {
        return epoch >= op.nextFrom ? op.nextCount : op.count;
    }

    function _checkCommission(uint16 bps) private view {
        if (bps > maxCommissionBps) revert CommissionTooHigh(bps, maxCommissionBps);
    }

    function _setMaxLicensesPerOperator(uint256 newMax) private {
        if (newMax == 0 || newMax > type(uint32).max) revert InvalidParameter();
        emit MaxLicensesPerOperatorUpdated(maxLicensesPerOperator, newMax);
        maxLicensesPerOperator = newMax;
    }

    function _setMaxCommission(uint16 newBps) private {
        if (newBps > BPS) revert InvalidParameter();
        emit MaxCommissionUpdated(maxCommissionBps, newBps);
        maxCommissionBps = newBps;
    }
}

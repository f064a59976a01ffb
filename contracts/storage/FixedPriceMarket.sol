// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IMarket} from "./interfaces/IMarket.sol";

/// @title FixedPriceMarket: a fixed price per 256-byte sector; holds storage fees for a reward contract
/// @notice The Flow contract forwards each submission's fee through `chargeFee`. Fees stay here and are
///         accounted per 0G "pricing chunk" (2^25 sectors = 8 GiB of flow positions): the fee of a
///         submission is attributed to the chunks its sectors occupy, in proportion to the sectors in
///         each. A reward contract, set once by the admin (so that nobody can later redirect the fees it holds),
///         pulls funds with `withdrawToReward`.
/// @dev Deploy order: market, then Flow(market, ...), then `setFlow(flow)` (can be set once).
contract FixedPriceMarket is IMarket, AccessControl, ReentrancyGuard {
    /// @notice Role allowed to change the price.
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    /// @notice Sectors per pricing chunk (2^25 sectors of 256 bytes = 8 GiB).
    uint256 public constant SECTORS_PER_PRICE = 1 << 25;

    /// @inheritdoc IMarket
    uint256 public pricePerSector;
    /// @inheritdoc IMarket
    address public flow;
    /// @notice Contract allowed to pull fees for storage rewards (zero until set).
    address public reward;

    /// @notice All fees ever received.
    uint256 public totalFees;
    /// @notice All fees ever pulled by reward contracts.
    uint256 public totalWithdrawn;
    /// @notice Fees attributed to each pricing chunk (flow positions [i * 2^25, (i + 1) * 2^25)).
    mapping(uint256 => uint256) public chunkFees;

    event PricePerSectorUpdated(uint256 oldPrice, uint256 newPrice);
    event FlowSet(address indexed flow);
    event RewardSet(address indexed previousReward, address indexed newReward);
    /// @notice A submission's fee was received; its sectors start at beforeLength + paddingSectors.
    event FeeCharged(uint256 beforeLength, uint256 uploadSectors, uint256 paddingSectors, uint256 amount);
    event RewardWithdrawn(address indexed reward, uint256 amount);

    /// @notice Only the flow contract may charge fees.
    error OnlyFlow(address caller);
    /// @notice Only the reward contract may pull fees.
    error OnlyReward(address caller);
    error FlowAlreadySet(address flow);
    /// @notice The reward contract is set once and cannot be replaced.
    error RewardAlreadySet(address reward);
    error ZeroAddress();
    /// @notice The value sent is not uploadSectors * pricePerSector.
    error FeeMismatch(uint256 expected, uint256 paid);
    error InsufficientBalance(uint256 requested, uint256 available);
    error TransferFailed();

    /// @param pricePerSector_ initial price per sector in wei
    /// @param admin receives DEFAULT_ADMIN_ROLE and PARAMS_ADMIN_ROLE
    constructor(uint256 pricePerSector_, address admin) {
        if (admin == address(0)) revert ZeroAddress();
        pricePerSector = pricePerSector_;
        emit PricePerSectorUpdated(0, pricePerSector_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
    }

    /// @notice Set the flow contract (once, DEFAULT_ADMIN_ROLE).
    function setFlow(address flow_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (flow_ == address(0)) revert ZeroAddress();
        if (flow != address(0)) revert FlowAlreadySet(flow);
        flow = flow_;
        emit FlowSet(flow_);
    }

    /// @notice Set the reward contract that may pull fees (DEFAULT_ADMIN_ROLE, once).
    function setReward(address reward_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (reward_ == address(0)) revert ZeroAddress();
        if (reward != address(0)) revert RewardAlreadySet(reward);
        emit RewardSet(reward, reward_);
        reward = reward_;
    }

    /// @notice Change the price per sector (PARAMS_ADMIN_ROLE).
    function setPricePerSector(uint256 newPrice) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit PricePerSectorUpdated(pricePerSector, newPrice);
        pricePerSector = newPrice;
    }

    /// @inheritdoc IMarket
    /// @dev msg.value must be exactly uploadSectors * pricePerSector.
    function chargeFee(uint256 beforeLength, uint256 uploadSectors, uint256 paddingSectors) external payable {
        if (msg.sender != flow) revert OnlyFlow(msg.sender);
        uint256 expected = uploadSectors * pricePerSector;
        if (msg.value != expected) revert FeeMismatch(expected, msg.value);
        totalFees += msg.value;
        if (msg.value > 0 && uploadSectors > 0) {
            _attribute(beforeLength + paddingSectors, uploadSectors, msg.value);
        }
        emit FeeCharged(beforeLength, uploadSectors, paddingSectors, msg.value);
    }

    /// @notice Funds held for rewards (fees received and not yet pulled; the market accepts no other payments).
    function rewardPool() external view returns (uint256) {
        return address(this).balance;
    }

    /// @notice Pull `amount` wei of held fees to the reward contract (only the reward contract).
    function withdrawToReward(uint256 amount) external nonReentrant {
        address reward_ = reward;
        if (msg.sender != reward_ || reward_ == address(0)) revert OnlyReward(msg.sender);
        uint256 available = address(this).balance;
        if (amount > available) revert InsufficientBalance(amount, available);
        totalWithdrawn += amount;
        emit RewardWithdrawn(reward_, amount);
        (bool ok,) = reward_.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @dev Split `amount` over the pricing chunks covering sectors [start, start + sectors).
    function _attribute(uint256 start, uint256 sectors, uint256 amount) private {
        uint256 end = start + sectors;
        uint256 first = start / SECTORS_PER_PRICE;
        uint256 last = (end - 1) / SECTORS_PER_PRICE;
        uint256 remaining = amount;
        for (uint256 i = first; i < last; ++i) {
            uint256 inChunk = (i + 1) * SECTORS_PER_PRICE - (i == first ? start : i * SECTORS_PER_PRICE);
            uint256 part = amount * inChunk / sectors;
            chunkFees[i] += part;
            remaining -= part;
        }
        chunkFees[last] += remaining;
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {ILicenseTransferHook} from "./interfaces/IAlignmentHooks.sol";

/// @title AlignmentLicense: the alignment-node license NFT (ERC-721) and its sale
/// @notice A license is the right to run (or have an operator run) one alignment node and to earn its
///         rewards. Token ids are 1, 2, 3, ... in sale order, never above `maxSupply`.
///
///         Sale: `buy(quantity)` at the tiered price (the price of a token depends on how many were sold
///         before it: tier i covers token ids up to `tiers[i].upTo` at `tiers[i].price` wei), paying the exact
///         amount, at most `walletCap` licenses bought per wallet over the whole sale.
///
///         Transfer lock (documented choice): every token is non-transferable for `transferLockPeriod`
///         seconds after it was bought (its own `unlockAt`), so a sale cannot be flipped at once; a change of
///         the period applies to later sales only. Delegation is not a transfer, so a locked license can still
///         be delegated and earn rewards.
///
///         Pause (PAUSER_ROLE): stops sales and transfers (an emergency stop); delegation, rewards claims and
///         votes go on.
///
///         Every transfer is reported to the delegation contract (`delegation`, set once), which clears the
///         token's delegation: a buyer never inherits the seller's operator nor the seller's pending reward.
contract AlignmentLicense is ERC721, AccessControl, Pausable, ReentrancyGuard {
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Most price tiers.
    uint256 public constant MAX_TIERS = 16;
    /// @notice Most licenses bought in one transaction.
    uint256 public constant MAX_PER_TX = 100;

    /// @notice A price tier: token ids up to `upTo` (after the previous tier's) cost `price` wei each.
    struct Tier {
        uint128 upTo;
        uint128 price;
    }

    /// @notice Most licenses that can ever exist.
    uint256 public immutable maxSupply;
    /// @notice Licenses sold so far (= the highest token id).
    uint256 public totalMinted;
    /// @notice Most licenses one wallet may buy over the whole sale.
    uint256 public walletCap;
    /// @notice Seconds a license stays non-transferable after its sale.
    uint256 public transferLockPeriod;
    /// @notice The delegation contract told about transfers (zero until set).
    ILicenseTransferHook public delegation;
    /// @notice Licenses bought by each wallet.
    mapping(address buyer => uint256) public purchasedBy;
    /// @notice When each license becomes transferable.
    mapping(uint256 tokenId => uint256) public unlockAt;

    Tier[] private _tiers;

    error ZeroAddress();
    error ZeroQuantity();
    error TooManyPerTx(uint256 quantity, uint256 max);
    error SoldOut(uint256 requested, uint256 available);
    error WalletCapExceeded(address buyer, uint256 requested, uint256 remaining);
    error WrongPayment(uint256 sent, uint256 required);
    error TransferLocked(uint256 tokenId, uint256 unlockAt);
    error InvalidTiers();
    error DelegationAlreadySet();
    error InsufficientProceeds(uint256 requested, uint256 available);
    error TransferFailed();

    event LicensesPurchased(address indexed buyer, uint256 firstTokenId, uint256 quantity, uint256 paid);
    event TiersUpdated(uint256[] upTo, uint256[] prices);
    event WalletCapUpdated(uint256 oldCap, uint256 newCap);
    event TransferLockPeriodUpdated(uint256 oldPeriod, uint256 newPeriod);
    event DelegationSet(address indexed delegation);
    event ProceedsWithdrawn(address indexed to, uint256 amount);

    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    /// @param maxSupply_ most licenses that can ever exist
    /// @param tierUpTo last token id of each tier, strictly increasing, the last one equal to `maxSupply_`
    /// @param tierPrices price in wei of a token of each tier
    /// @param walletCap_ most licenses one wallet may buy
    /// @param transferLockPeriod_ seconds a license stays non-transferable after its sale
    constructor(
        address admin,
        uint256 maxSupply_,
        uint256[] memory tierUpTo,
        uint256[] memory tierPrices,
        uint256 walletCap_,
        uint256 transferLockPeriod_
    ) ERC721("deaios Alignment Node License", "DAINL") {
        if (admin == address(0)) revert ZeroAddress();
        if (maxSupply_ == 0 || maxSupply_ > type(uint32).max) revert InvalidTiers();
        maxSupply = maxSupply_;
        _setTiers(tierUpTo, tierPrices);
        walletCap = walletCap_;
        emit WalletCapUpdated(0, walletCap_);
        transferLockPeriod = transferLockPeriod_;
        emit TransferLockPeriodUpdated(0, transferLockPeriod_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /*=== sale ===*/

    /// @notice Buy `quantity` licenses at the tiered price; msg.value must be exactly `quote(quantity)`.
    /// @return firstTokenId the id of the first license bought (the others follow it)
    function buy(uint256 quantity) external payable whenNotPaused nonReentrant returns (uint256 firstTokenId) {
        if (quantity == 0) revert ZeroQuantity();
        if (quantity > MAX_PER_TX) revert TooManyPerTx(quantity, MAX_PER_TX);
        uint256 minted = totalMinted;
        if (quantity > maxSupply - minted) revert SoldOut(quantity, maxSupply - minted);
        uint256 bought = purchasedBy[msg.sender];
        if (bought + quantity > walletCap) {
            revert WalletCapExceeded(msg.sender, quantity, walletCap > bought ? walletCap - bought : 0);
        }
        uint256 cost = quote(quantity);
        if (msg.value != cost) revert WrongPayment(msg.value, cost);

        purchasedBy[msg.sender] = bought + quantity;
        totalMinted = minted + quantity;
        uint256 unlock = block.timestamp + transferLockPeriod;
        firstTokenId = minted + 1;
        emit LicensesPurchased(msg.sender, firstTokenId, quantity, cost);
        for (uint256 id = firstTokenId; id <= minted + quantity; ++id) {
            unlockAt[id] = unlock;
            _safeMint(msg.sender, id);
        }
    }

    /// @notice Price in wei of the next `quantity` licenses (across tiers); reverts past the supply.
    function quote(uint256 quantity) public view returns (uint256 cost) {
        uint256 id = totalMinted;
        if (quantity > maxSupply - id) revert SoldOut(quantity, maxSupply - id);
        uint256 remaining = quantity;
        uint256 n = _tiers.length;
        for (uint256 i = 0; i < n && remaining > 0; ++i) {
            Tier memory t = _tiers[i];
            if (id >= t.upTo) continue;
            uint256 take = t.upTo - id < remaining ? t.upTo - id : remaining;
            cost += take * t.price;
            id += take;
            remaining -= take;
        }
    }

    /// @notice Price in wei of the next license (0 when sold out).
    function currentPrice() external view returns (uint256) {
        if (totalMinted == maxSupply) return 0;
        return quote(1);
    }

    /// @notice The price tiers: last token id and price of each.
    function tiers() external view returns (uint256[] memory upTo, uint256[] memory prices) {
        uint256 n = _tiers.length;
        upTo = new uint256[](n);
        prices = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            (upTo[i], prices[i]) = (_tiers[i].upTo, _tiers[i].price);
        }
    }

    /*=== parameters ===*/

    /// @notice Replace the price tiers (PARAMS_ADMIN_ROLE; strictly increasing ends, the last = maxSupply).
    function setTiers(uint256[] calldata upTo, uint256[] calldata prices) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setTiers(upTo, prices);
    }

    /// @notice Change the per-wallet purchase cap (PARAMS_ADMIN_ROLE).
    function setWalletCap(uint256 newCap) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit WalletCapUpdated(walletCap, newCap);
        walletCap = newCap;
    }

    /// @notice Change the transfer lock of licenses sold from now on (PARAMS_ADMIN_ROLE).
    function setTransferLockPeriod(uint256 newPeriod) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit TransferLockPeriodUpdated(transferLockPeriod, newPeriod);
        transferLockPeriod = newPeriod;
    }

    /// @notice Set the delegation contract told about transfers (DEFAULT_ADMIN_ROLE; once).
    function setDelegation(address delegation_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (delegation_ == address(0)) revert ZeroAddress();
        if (address(delegation) != address(0)) revert DelegationAlreadySet();
        delegation = ILicenseTransferHook(delegation_);
        emit DelegationSet(delegation_);
    }

    /// @notice Stop sales and transfers (PAUSER_ROLE).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume sales and transfers (PAUSER_ROLE).
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @notice Send `amount` wei of sale proceeds to `to` (DEFAULT_ADMIN_ROLE).
    function withdrawProceeds(address payable to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (amount > address(this).balance) revert InsufficientProceeds(amount, address(this).balance);
        emit ProceedsWithdrawn(to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    /*=== internals ===*/

    /// @dev Transfers (not mints) respect the pause and each token's lock, then clear its delegation.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        bool isTransfer = _ownerOf(tokenId) != address(0) && to != address(0);
        if (isTransfer) {
            _requireNotPaused();
            uint256 unlock = unlockAt[tokenId];
            if (block.timestamp < unlock) revert TransferLocked(tokenId, unlock);
        }
        address from = super._update(to, tokenId, auth);
        ILicenseTransferHook hook = delegation;
        if (isTransfer && address(hook) != address(0)) hook.onLicenseTransfer(tokenId, from, to);
        return from;
    }

    function _setTiers(uint256[] memory upTo, uint256[] memory prices) private {
        uint256 n = upTo.length;
        if (n == 0 || n > MAX_TIERS || prices.length != n || upTo[n - 1] != maxSupply) revert InvalidTiers();
        delete _tiers;
        uint256 last = 0;
        for (uint256 i = 0; i < n; ++i) {
            if (upTo[i] <= last || prices[i] > type(uint128).max) revert InvalidTiers();
            last = upTo[i];
            _tiers.push(Tier(uint128(upTo[i]), uint128(prices[i])));
        }
        emit TiersUpdated(upTo, prices);
    }
}

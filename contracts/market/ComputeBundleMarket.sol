// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IComputeLedger} from "../compute/interfaces/IComputeLedger.sol";
import {IServiceRegistry} from "../compute/interfaces/IServiceRegistry.sol";

/// @notice A provider's offer of prepaid compute: `supply` bundles at `price` each until `expiry`.
struct BundleListing {
    address provider;
    uint64 expiry;
    bool active;
    uint128 price;
    uint64 supply;
    uint64 sold;
    string terms;
}

/// @title ComputeBundleMarket: fixed-price bundles of compute from registered services, paid into the buyer's
///        prepaid ComputeLedger account
/// @notice A provider with a service in the ServiceRegistry lists bundles (price, supply, expiry, free-text
///         terms such as "1M tokens of qwen2.5"). A buyer pays `count * price`; the same transaction pays it
///         into the buyer's ComputeLedger sub-account with that provider (`depositToAccount`: committed to the
///         provider, back only through the refund lock, so a listing cannot be emptied and the money taken back
///         at once) and emits `BundlesPurchased`. The provider is paid as usual, by receipts settled against that
///         sub-account. The market never holds funds: its balance is always 0.
/// @dev Needs the ledger's FUNDER_ROLE.
contract ComputeBundleMarket is AccessControl, Pausable, ReentrancyGuard {
    /// @notice Role allowed to pause new listings and purchases.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    uint256 public constant MAX_TERMS_LENGTH = 256;

    IComputeLedger public immutable ledger;
    IServiceRegistry public immutable registry;
    uint256 public listingCount;
    mapping(uint256 listingId => BundleListing) private _listings;

    event BundleListed(
        uint256 indexed listingId, address indexed provider, uint256 price, uint64 supply, uint64 expiry, string terms
    );
    event BundleListingCancelled(uint256 indexed listingId);
    event BundlesPurchased(
        uint256 indexed listingId, address indexed buyer, address indexed provider, uint256 count, uint256 amount
    );

    error ZeroAddress();
    error ZeroAmount();
    error ExpiryInPast(uint64 expiry);
    error TermsTooLong(uint256 length, uint256 max);
    /// @notice The caller (or the listing's provider) has no active service in the registry.
    error NoActiveService(address provider);
    error BundleNotActive(uint256 listingId);
    error BundleExpired(uint256 listingId, uint64 expiry);
    error SoldOut(uint256 listingId, uint256 requested, uint256 left);
    error WrongPayment(uint256 sent, uint256 price);
    error Unauthorized(address caller);
    error DirectPaymentsDisabled();

    /// @param ledger_ the ComputeLedger buyers' payments are deposited into
    /// @param registry_ the ServiceRegistry a provider must be registered (and active) in
    /// @param admin receives DEFAULT_ADMIN_ROLE and PAUSER_ROLE
    constructor(IComputeLedger ledger_, IServiceRegistry registry_, address admin) {
        if (address(ledger_) == address(0) || address(registry_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        ledger = ledger_;
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    receive() external payable {
        revert DirectPaymentsDisabled();
    }

    /// @notice List `supply` bundles of your (active) service at `price` each until `expiry`.
    function listBundle(uint128 price, uint64 supply, uint64 expiry, string calldata terms)
        external
        whenNotPaused
        returns (uint256 listingId)
    {
        if (price == 0 || supply == 0) revert ZeroAmount();
        if (expiry <= block.timestamp) revert ExpiryInPast(expiry);
        if (bytes(terms).length > MAX_TERMS_LENGTH) revert TermsTooLong(bytes(terms).length, MAX_TERMS_LENGTH);
        _checkService(msg.sender);
        listingId = ++listingCount;
        _listings[listingId] = BundleListing(msg.sender, expiry, true, price, supply, 0, terms);
        emit BundleListed(listingId, msg.sender, price, supply, expiry, terms);
    }

    /// @notice Withdraw your bundle listing.
    function cancelBundle(uint256 listingId) external {
        BundleListing storage l = _listings[listingId];
        if (!l.active) revert BundleNotActive(listingId);
        if (l.provider != msg.sender) revert Unauthorized(msg.sender);
        l.active = false;
        emit BundleListingCancelled(listingId);
    }

    /// @notice Buy `count` bundles for exactly `count * price`, paid at once into your ComputeLedger sub-account
    ///         with the listing's provider (spendable by its receipts; `requestRefund` to take it back after
    ///         the ledger's lock time).
    function buyBundles(uint256 listingId, uint64 count) external payable whenNotPaused nonReentrant {
        BundleListing storage l = _listings[listingId];
        if (!l.active) revert BundleNotActive(listingId);
        if (block.timestamp >= l.expiry) revert BundleExpired(listingId, l.expiry);
        if (count == 0) revert ZeroAmount();
        uint256 left = l.supply - l.sold;
        if (count > left) revert SoldOut(listingId, count, left);
        uint256 amount = uint256(l.price) * count;
        if (msg.value != amount) revert WrongPayment(msg.value, amount);
        address provider = l.provider;
        _checkService(provider);
        l.sold += count;
        if (l.sold == l.supply) l.active = false;
        emit BundlesPurchased(listingId, msg.sender, provider, count, amount);
        ledger.depositToAccount{value: amount}(msg.sender, provider);
    }

    /// @notice Stop new listings and purchases.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @notice A bundle listing.
    function getBundle(uint256 listingId) external view returns (BundleListing memory) {
        return _listings[listingId];
    }

    function _checkService(address provider) private view {
        if (!registry.isActive(provider)) revert NoActiveService(provider);
    }
}

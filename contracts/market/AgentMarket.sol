// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IERC7857, IERC7857Authorize} from "../inft/interfaces/IERC7857.sol";
import {IERC7857SaleSupport} from "../inft/interfaces/IERC7857SaleSupport.sol";
import {TransferValidityProof} from "../inft/interfaces/IERC7857DataVerifier.sol";
import {
    IAgentMarket,
    Listing,
    Offer,
    OfferStatus,
    Purchase,
    PurchaseStatus,
    RentalTerms,
    Rental,
    RentalStatus
} from "./interfaces/IAgentMarket.sol";

/// @title AgentMarket: sell and rent ERC-7857 agents (INFTs) for the native token
/// @notice Sales are two-step because moving an INFT needs the oracle's re-encryption of its data for the buyer:
///         1. the buyer pays into escrow, either by `buy`ing a fixed-price listing or by an `offer` that the
///            owner `acceptOffer`s: a pending Purchase with a settlement `deadline`;
///         2. anyone holding valid transfer proofs for that buyer (normally the seller, from the oracle) calls
///            `settle`, which calls `iTransferFrom(seller, buyer, tokenId, proofs)` on the token as the seller's
///            approved operator, and credits the seller `price - royalty` and the ERC-2981 royalty receiver
///            `royalty`. A purchase not settled by its deadline (or whose seller lost the token, or that the
///            seller cancels) is refunded to the buyer.
///         Rentals: the lessor keeps the token and lets the market (its operator) `authorizeUsage` for a renter
///         for a paid time; after the end anyone calls `endRental`, which pays the lessor and revokes the
///         authorization. A rental broken early (token sold, authorization revoked) is split pro rata.
///
///         Money is never pushed: every payout is a credit withdrawn with `withdraw` (pull payment). Hence at
///         all times `address(this).balance == escrowedOffers + escrowedPurchases + escrowedRentals +
///         totalCredits`, and every path (cancel, expiry, withdrawal, settlement) ends in a credit.
///
///         Between payment and settlement neither side can change what was sold (audit H1 and the
///         "update while listed" low): a purchase freezes the buyer's access delegation on the token contract
///         until its deadline (so proofs its assistant signed stay valid), and the token's data version is
///         recorded by listings, offers and purchases: after an `update` by the seller, a listing or offer can
///         no longer be bought or accepted and a purchase no longer settles (the buyer gets its money back).
/// @dev The market serves one INFT contract (immutable `nft`), trusted to implement IERC7857 honestly, and needs
///      its DELEGATION_LOCKER_ROLE (IERC7857SaleSupport).
contract AgentMarket is IAgentMarket, AccessControl, Pausable, ReentrancyGuard {
    using SafeCast for uint256;

    /// @notice Role allowed to change the settlement window.
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    /// @notice Role allowed to pause new business (listings, purchases, offers, rentals).
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    uint256 public constant MIN_SETTLE_WINDOW = 1 minutes;
    uint256 public constant MAX_SETTLE_WINDOW = 30 days;
    /// @notice Most authorized users `endRental` scans to tell whether a renter is still authorized.
    uint256 public constant MAX_AUTH_SCAN = 100;

    /// @notice The INFT contract whose tokens this market trades.
    IERC7857 public immutable nft;
    /// @notice Whether `nft` implements ERC-2981 (checked once at construction); if not, sales pay no royalty.
    bool public immutable royaltiesSupported;
    /// @notice Seconds a purchase has to be settled before the buyer may take the escrow back.
    uint256 public settleWindow;

    /// @notice Sum of open offers' amounts.
    uint256 public escrowedOffers;
    /// @notice Sum of pending purchases' prices.
    uint256 public escrowedPurchases;
    /// @notice Sum of active rentals' payments.
    uint256 public escrowedRentals;
    /// @notice Sum of credits not yet withdrawn.
    uint256 public totalCredits;

    uint256 public listingCount;
    uint256 public offerCount;
    uint256 public purchaseCount;
    uint256 public rentalTermsCount;
    uint256 public rentalCount;

    mapping(uint256 listingId => Listing) private _listings;
    mapping(uint256 offerId => Offer) private _offers;
    mapping(uint256 purchaseId => Purchase) private _purchases;
    mapping(uint256 termsId => RentalTerms) private _terms;
    mapping(uint256 rentalId => Rental) private _rentals;
    mapping(address account => uint256) private _credits;

    /// @notice The current listing of a token (0: none); a new listing replaces it.
    mapping(uint256 tokenId => uint256 listingId) public listingOf;
    /// @notice The latest purchase of a token (0: none); a new one may start once it is no longer live.
    mapping(uint256 tokenId => uint256 purchaseId) public purchaseOf;
    /// @notice A renter's active rental of a token (0: none).
    mapping(uint256 tokenId => mapping(address renter => uint256 rentalId)) public rentalOf;

    error ZeroAddress();
    error ZeroAmount();
    /// @notice Plain native-token transfers are refused.
    error DirectPaymentsDisabled();
    error ExpiryInPast(uint64 expiry);
    error NotTokenOwner(uint256 tokenId, address account);
    /// @notice The token's owner has not approved the market as operator.
    error MarketNotApproved(uint256 tokenId, address owner);
    error ListingNotActive(uint256 listingId);
    error ListingExpired(uint256 listingId, uint64 expiry);
    error WrongPayment(uint256 sent, uint256 price);
    /// @notice The token has a purchase that may still be settled.
    error PurchasePending(uint256 tokenId, uint256 purchaseId);
    error SelfTrade();
    error OfferNotOpen(uint256 offerId);
    error OfferExpired(uint256 offerId, uint64 expiry);
    error Unauthorized(address caller);
    error PurchaseNotPending(uint256 purchaseId);
    error SettleDeadlinePassed(uint256 purchaseId, uint64 deadline);
    /// @notice Only the seller, or after the deadline / once the seller lost the token anyone, may cancel.
    error PurchaseNotCancellable(uint256 purchaseId);
    error NothingToWithdraw();
    error TransferFailed();
    error RentalTermsNotActive(uint256 termsId);
    error RentalTermsExpired(uint256 termsId, uint64 expiry);
    error BadPeriods(uint64 periods, uint64 maxPeriods);
    error AlreadyRenting(uint256 tokenId, address renter, uint256 rentalId);
    error RentalNotActive(uint256 rentalId);
    /// @notice Before its end a rental ends only if the lessor ends it or it is broken.
    error RentalNotOver(uint256 rentalId, uint64 end);
    error SettleWindowOutOfRange(uint256 window, uint256 min, uint256 max);
    /// @notice The seller replaced the token's data (`update`) after it was listed, bid for or bought.
    error TokenDataChanged(uint256 tokenId, uint32 expectedVersion, uint32 currentVersion);

    /// @param nft_ the ERC-7857 contract traded here
    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    /// @param settleWindow_ seconds a purchase has to be settled (MIN_SETTLE_WINDOW..MAX_SETTLE_WINDOW)
    constructor(IERC7857 nft_, address admin, uint256 settleWindow_) {
        if (address(nft_) == address(0) || admin == address(0)) revert ZeroAddress();
        nft = nft_;
        royaltiesSupported = _supportsRoyalties(address(nft_));
        _setSettleWindow(settleWindow_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    receive() external payable {
        revert DirectPaymentsDisabled();
    }

    /*=== sales: listings ===*/

    /// @notice List `tokenId` (yours, the market approved as operator) for `price` until `expiry`. Replaces
    ///         the token's previous listing.
    function list(uint256 tokenId, uint256 price, uint64 expiry) external whenNotPaused returns (uint256 listingId) {
        if (price == 0) revert ZeroAmount();
        _checkFuture(expiry);
        _checkSellable(tokenId, msg.sender);
        _closeListing(listingOf[tokenId]);
        listingId = ++listingCount;
        _listings[listingId] = Listing(msg.sender, expiry, true, tokenId, price.toUint128(), _dataVersion(tokenId));
        listingOf[tokenId] = listingId;
        emit Listed(listingId, msg.sender, tokenId, price, expiry);
    }

    /// @notice Withdraw your listing (nothing is escrowed by a listing).
    function cancelListing(uint256 listingId) external {
        Listing storage l = _listings[listingId];
        if (!l.active) revert ListingNotActive(listingId);
        if (l.seller != msg.sender) revert Unauthorized(msg.sender);
        _closeListing(listingId);
    }

    /// @notice Pay exactly the listed price into escrow: a pending purchase the seller settles with proofs
    ///         for you (see `settle`), or that you take back with `cancelPurchase` after its deadline.
    function buy(uint256 listingId) external payable whenNotPaused nonReentrant returns (uint256 purchaseId) {
        Listing storage l = _listings[listingId];
        if (!l.active) revert ListingNotActive(listingId);
        if (block.timestamp >= l.expiry) revert ListingExpired(listingId, l.expiry);
        if (msg.value != l.price) revert WrongPayment(msg.value, l.price);
        address seller = l.seller;
        uint256 tokenId = l.tokenId;
        if (msg.sender == seller) revert SelfTrade();
        _checkSellable(tokenId, seller);
        uint32 version = l.dataVersion;
        _checkDataVersion(tokenId, version);
        _closeListing(listingId);
        purchaseId = _openPurchase(msg.sender, seller, tokenId, msg.value, version, false, listingId);
    }

    /*=== sales: offers ===*/

    /// @notice Bid msg.value for `tokenId` until `expiry`; the funds stay escrowed until the owner accepts or
    ///         you withdraw the offer (any time while open; anyone may withdraw it for you once expired).
    function makeOffer(uint256 tokenId, uint64 expiry) external payable whenNotPaused returns (uint256 offerId) {
        if (msg.value == 0) revert ZeroAmount();
        _checkFuture(expiry);
        if (nft.ownerOf(tokenId) == msg.sender) revert SelfTrade();
        offerId = ++offerCount;
        _offers[offerId] = Offer(msg.sender, expiry, OfferStatus.Open, tokenId, msg.value.toUint128(), _dataVersion(tokenId));
        escrowedOffers += msg.value;
        emit OfferMade(offerId, msg.sender, tokenId, msg.value, expiry);
    }

    /// @notice Close an open offer and credit its amount back to the bidder: by the bidder at any time, by
    ///         anyone once it has expired.
    function withdrawOffer(uint256 offerId) external {
        Offer storage o = _offers[offerId];
        if (o.status != OfferStatus.Open) revert OfferNotOpen(offerId);
        if (msg.sender != o.buyer && block.timestamp < o.expiry) revert Unauthorized(msg.sender);
        o.status = OfferStatus.Withdrawn;
        escrowedOffers -= o.amount;
        _credit(o.buyer, o.amount);
        emit OfferWithdrawn(offerId, msg.sender);
    }

    /// @notice Accept an open, unexpired offer for your token: it becomes a pending purchase (see `settle`).
    function acceptOffer(uint256 offerId) external whenNotPaused nonReentrant returns (uint256 purchaseId) {
        Offer storage o = _offers[offerId];
        if (o.status != OfferStatus.Open) revert OfferNotOpen(offerId);
        if (block.timestamp >= o.expiry) revert OfferExpired(offerId, o.expiry);
        uint256 tokenId = o.tokenId;
        if (o.buyer == msg.sender) revert SelfTrade();
        _checkSellable(tokenId, msg.sender);
        uint32 version = o.dataVersion;
        _checkDataVersion(tokenId, version);
        o.status = OfferStatus.Accepted;
        uint256 amount = o.amount;
        escrowedOffers -= amount;
        _closeListing(listingOf[tokenId]);
        purchaseId = _openPurchase(o.buyer, msg.sender, tokenId, amount, version, true, offerId);
        emit OfferAccepted(offerId, purchaseId);
    }

    /*=== sales: settlement ===*/

    /// @notice Complete a pending purchase before its deadline: the token moves to the buyer through
    ///         `iTransferFrom(seller, buyer, tokenId, proofs)` (the token contract checks the proofs), the seller
    ///         is credited `price - royalty` and the ERC-2981 receiver `royalty`. Callable by anyone: the proofs
    ///         themselves bind the data keys to the buyer. Nothing the buyer does after paying makes valid proofs
    ///         fail here (no receiver hook, its delegation frozen, proofs bound to this token): simulate the call
    ///         (eth_call) before sending it, since the sealed keys become public with the transaction.
    function settle(uint256 purchaseId, TransferValidityProof[] calldata proofs) external nonReentrant {
        Purchase storage p = _purchases[purchaseId];
        if (p.status != PurchaseStatus.Pending) revert PurchaseNotPending(purchaseId);
        if (block.timestamp > p.deadline) revert SettleDeadlinePassed(purchaseId, p.deadline);
        (address seller, address buyer, uint256 tokenId, uint256 price) = (p.seller, p.buyer, p.tokenId, p.price);
        _checkDataVersion(tokenId, p.dataVersion);
        (address receiver, uint256 royalty) = _royalty(tokenId, price);
        p.status = PurchaseStatus.Settled;
        escrowedPurchases -= price;
        if (royalty != 0) _credit(receiver, royalty);
        _credit(seller, price - royalty);
        emit PurchaseSettled(purchaseId, price - royalty, receiver, royalty);
        nft.iTransferFrom(seller, buyer, tokenId, proofs);
    }

    /// @notice Refund a pending purchase to its buyer: by the seller at any time (declining to deliver), by
    ///         anyone once the settlement deadline has passed or the seller no longer owns the token or no
    ///         longer has the market approved.
    function cancelPurchase(uint256 purchaseId) external nonReentrant {
        Purchase storage p = _purchases[purchaseId];
        if (p.status != PurchaseStatus.Pending) revert PurchaseNotPending(purchaseId);
        if (msg.sender != p.seller && block.timestamp <= p.deadline && _canSell(p.tokenId, p.seller)) {
            revert PurchaseNotCancellable(purchaseId);
        }
        p.status = PurchaseStatus.Cancelled;
        escrowedPurchases -= p.price;
        _credit(p.buyer, p.price);
        emit PurchaseCancelled(purchaseId, msg.sender);
    }

    /// @notice Pay out all of the caller's credits (sale proceeds, royalties, refunds, rent) to `to`.
    function withdraw(address payable to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = _credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _credits[msg.sender] = 0;
        totalCredits -= amount;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /*=== rentals ===*/

    /// @notice Offer usage of your token for `pricePerPeriod` per `period` seconds, at most `maxPeriods` per
    ///         rental, until `expiry`. The market must be your operator: it authorizes and revokes renters.
    function listForRent(uint256 tokenId, uint128 pricePerPeriod, uint64 period, uint64 maxPeriods, uint64 expiry)
        external
        whenNotPaused
        returns (uint256 termsId)
    {
        if (pricePerPeriod == 0 || period == 0 || maxPeriods == 0) revert ZeroAmount();
        _checkFuture(expiry);
        _checkSellable(tokenId, msg.sender);
        termsId = ++rentalTermsCount;
        _terms[termsId] = RentalTerms(msg.sender, expiry, true, tokenId, pricePerPeriod, period, maxPeriods);
        emit RentalTermsListed(termsId, msg.sender, tokenId, pricePerPeriod, period, maxPeriods, expiry);
    }

    /// @notice Withdraw your rental terms (running rentals are not affected).
    function cancelRentalTerms(uint256 termsId) external {
        RentalTerms storage t = _terms[termsId];
        if (!t.active) revert RentalTermsNotActive(termsId);
        if (t.lessor != msg.sender) revert Unauthorized(msg.sender);
        t.active = false;
        emit RentalTermsCancelled(termsId);
    }

    /// @notice Rent for `periods` periods, paying exactly `periods * pricePerPeriod` into escrow; the market
    ///         authorizes you to use the token at once.
    function rent(uint256 termsId, uint64 periods) external payable whenNotPaused nonReentrant returns (uint256 rentalId) {
        RentalTerms storage t = _terms[termsId];
        if (!t.active) revert RentalTermsNotActive(termsId);
        if (block.timestamp >= t.expiry) revert RentalTermsExpired(termsId, t.expiry);
        if (periods == 0 || periods > t.maxPeriods) revert BadPeriods(periods, t.maxPeriods);
        uint256 price = uint256(t.pricePerPeriod) * periods;
        if (msg.value != price) revert WrongPayment(msg.value, price);
        (address lessor, uint256 tokenId) = (t.lessor, t.tokenId);
        if (msg.sender == lessor) revert SelfTrade();
        _checkSellable(tokenId, lessor);
        uint256 current = rentalOf[tokenId][msg.sender];
        if (current != 0) revert AlreadyRenting(tokenId, msg.sender, current);
        uint64 end = (block.timestamp + uint256(t.period) * periods).toUint64();
        rentalId = ++rentalCount;
        _rentals[rentalId] = Rental(msg.sender, uint64(block.timestamp), end, RentalStatus.Active, lessor, tokenId, price);
        rentalOf[tokenId][msg.sender] = rentalId;
        escrowedRentals += price;
        emit Rented(rentalId, termsId, msg.sender, tokenId, price, end);
        IERC7857Authorize(address(nft)).authorizeUsage(tokenId, msg.sender);
    }

    /// @notice End a rental and split its escrow: after its end (anyone) the lessor gets it all; earlier the
    ///         lessor may end it, or anyone once it is broken (the lessor lost the token or the renter's
    ///         authorization is gone), and the unused time is refunded to the renter pro rata. The market then
    ///         revokes the authorization if it still exists and the market is still the owner's operator
    ///         (reported by `revoked`).
    function endRental(uint256 rentalId) external nonReentrant {
        Rental storage r = _rentals[rentalId];
        if (r.status != RentalStatus.Active) revert RentalNotActive(rentalId);
        (address renter, address lessor, uint256 tokenId, uint256 amount) = (r.renter, r.lessor, r.tokenId, r.amount);
        (address owner, bool authorized) = _usage(tokenId, renter);
        uint256 toLessor = amount;
        if (block.timestamp < r.end) {
            bool broken = owner != lessor || !authorized;
            if (msg.sender != lessor && !broken) revert RentalNotOver(rentalId, r.end);
            toLessor = amount * (block.timestamp - r.start) / (r.end - r.start);
        }
        r.status = RentalStatus.Ended;
        delete rentalOf[tokenId][renter];
        escrowedRentals -= amount;
        if (toLessor != 0) _credit(lessor, toLessor);
        if (amount != toLessor) _credit(renter, amount - toLessor);
        // Decided from state, not by catching a failure: a caller could otherwise starve the call of gas.
        bool revoke = authorized && owner != address(0) && _approved(tokenId, owner);
        emit RentalEnded(rentalId, toLessor, amount - toLessor, revoke);
        if (revoke) IERC7857Authorize(address(nft)).revokeAuthorization(tokenId, renter);
    }

    /*=== admin ===*/

    /// @notice Set the seconds a new purchase has to be settled.
    function setSettleWindow(uint256 newWindow) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setSettleWindow(newWindow);
    }

    /// @notice Stop new listings, purchases, offers and rentals (exits always work).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== views ===*/

    /// @inheritdoc IAgentMarket
    function credits(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc IAgentMarket
    function getListing(uint256 listingId) external view returns (Listing memory) {
        return _listings[listingId];
    }

    /// @inheritdoc IAgentMarket
    function getOffer(uint256 offerId) external view returns (Offer memory) {
        return _offers[offerId];
    }

    /// @inheritdoc IAgentMarket
    function getPurchase(uint256 purchaseId) external view returns (Purchase memory) {
        return _purchases[purchaseId];
    }

    /// @inheritdoc IAgentMarket
    function getRentalTerms(uint256 termsId) external view returns (RentalTerms memory) {
        return _terms[termsId];
    }

    /// @inheritdoc IAgentMarket
    function getRental(uint256 rentalId) external view returns (Rental memory) {
        return _rentals[rentalId];
    }

    /// @notice Whether `account` owns `tokenId` and has approved the market (so it can sell or rent it now).
    function canSell(uint256 tokenId, address account) external view returns (bool) {
        return _canSell(tokenId, account);
    }

    /*=== internals ===*/

    function _openPurchase(
        address buyer,
        address seller,
        uint256 tokenId,
        uint256 price,
        uint32 dataVersion,
        bool fromOffer,
        uint256 sourceId
    ) private returns (uint256 purchaseId) {
        uint256 previous = purchaseOf[tokenId];
        if (previous != 0) {
            Purchase storage q = _purchases[previous];
            if (q.status == PurchaseStatus.Pending && block.timestamp <= q.deadline) {
                revert PurchasePending(tokenId, previous);
            }
        }
        uint64 deadline = uint64(block.timestamp + settleWindow);
        purchaseId = ++purchaseCount;
        _purchases[purchaseId] =
            Purchase(buyer, deadline, PurchaseStatus.Pending, seller, tokenId, uint128(price), dataVersion);
        purchaseOf[tokenId] = purchaseId;
        escrowedPurchases += price;
        emit PurchaseCreated(purchaseId, tokenId, buyer, seller, price, deadline, fromOffer, sourceId);
        // The buyer's assistant stays the one that may have signed its access proofs until the deadline.
        IERC7857SaleSupport(address(nft)).lockDelegation(buyer, deadline);
    }

    function _closeListing(uint256 listingId) private {
        Listing storage l = _listings[listingId];
        if (!l.active) return;
        l.active = false;
        delete listingOf[l.tokenId];
        emit ListingCancelled(listingId);
    }

    function _credit(address account, uint256 amount) private {
        uint256 balance = _credits[account] + amount;
        _credits[account] = balance;
        totalCredits += amount;
        emit Credited(account, amount, balance);
    }

    /// @dev The ERC-2981 royalty for a sale, capped at the price (none when the token has no ERC-2981).
    function _royalty(uint256 tokenId, uint256 price) private view returns (address receiver, uint256 amount) {
        if (!royaltiesSupported) return (address(0), 0);
        (receiver, amount) = IERC2981(address(nft)).royaltyInfo(tokenId, price);
        if (receiver == address(0) || amount == 0) return (address(0), 0);
        if (amount > price) amount = price;
    }

    function _supportsRoyalties(address token) private view returns (bool) {
        try IERC165(token).supportsInterface(type(IERC2981).interfaceId) returns (bool yes) {
            return yes;
        } catch {
            return false;
        }
    }

    function _checkSellable(uint256 tokenId, address account) private view {
        address owner = nft.ownerOf(tokenId);
        if (owner != account) revert NotTokenOwner(tokenId, account);
        if (!_approved(tokenId, owner)) revert MarketNotApproved(tokenId, owner);
    }

    function _canSell(uint256 tokenId, address account) private view returns (bool) {
        try nft.ownerOf(tokenId) returns (address owner) {
            return owner == account && _approved(tokenId, owner);
        } catch {
            return false;
        }
    }

    function _approved(uint256 tokenId, address owner) private view returns (bool) {
        return nft.isApprovedForAll(owner, address(this)) || nft.getApproved(tokenId) == address(this);
    }

    /// @dev The token's owner (zero if it no longer exists) and whether `user` is among its authorized users
    ///      (a transfer clears them; the owner may revoke). The list is bounded by the token contract (0G's
    ///      MAX_AUTHORIZED_USERS = 100); a longer one is not scanned and counts as "authorized".
    function _usage(uint256 tokenId, address user) private view returns (address owner, bool authorized) {
        try nft.ownerOf(tokenId) returns (address o) {
            owner = o;
        } catch {
            return (address(0), false);
        }
        address[] memory users = IERC7857Authorize(address(nft)).authorizedUsersOf(tokenId);
        if (users.length > MAX_AUTH_SCAN) return (owner, true);
        for (uint256 i; i < users.length; ++i) {
            if (users[i] == user) return (owner, true);
        }
    }

    function _dataVersion(uint256 tokenId) private view returns (uint32) {
        return IERC7857SaleSupport(address(nft)).dataVersionOf(tokenId);
    }

    function _checkDataVersion(uint256 tokenId, uint32 expected) private view {
        uint32 current = _dataVersion(tokenId);
        if (current != expected) revert TokenDataChanged(tokenId, expected, current);
    }

    function _checkFuture(uint64 expiry) private view {
        if (expiry <= block.timestamp) revert ExpiryInPast(expiry);
    }

    function _setSettleWindow(uint256 newWindow) private {
        if (newWindow < MIN_SETTLE_WINDOW || newWindow > MAX_SETTLE_WINDOW) {
            revert SettleWindowOutOfRange(newWindow, MIN_SETTLE_WINDOW, MAX_SETTLE_WINDOW);
        }
        emit SettleWindowUpdated(settleWindow, newWindow);
        settleWindow = newWindow;
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TransferValidityProof} from "../../inft/interfaces/IERC7857DataVerifier.sol";

/// @notice A fixed-price sale listing. Nothing is escrowed: the token stays with the seller, who approved the
///         market as operator. `dataVersion`: the token's data version when listed (a later `update` of the data
///         makes the listing unbuyable).
struct Listing {
    address seller;
    uint64 expiry;
    bool active;
    uint256 tokenId;
    uint128 price;
    uint32 dataVersion;
}

enum OfferStatus {
    None,
    Open,
    Accepted,
    Withdrawn
}

/// @notice An escrowed bid for a token (the owner at acceptance time sells), for its data as of the bid
///         (`dataVersion`).
struct Offer {
    address buyer;
    uint64 expiry;
    OfferStatus status;
    uint256 tokenId;
    uint128 amount;
    uint32 dataVersion;
}

enum PurchaseStatus {
    None,
    Pending,
    Settled,
    Cancelled
}

/// @notice A paid purchase waiting for the oracle's re-encryption proofs (`settle`) until `deadline`, of the
///         token's data at `dataVersion`.
struct Purchase {
    address buyer;
    uint64 deadline;
    PurchaseStatus status;
    address seller;
    uint256 tokenId;
    uint128 price;
    uint32 dataVersion;
}

/// @notice Rental terms of a token: `pricePerPeriod` for each `period` seconds, up to `maxPeriods` at once.
struct RentalTerms {
    address lessor;
    uint64 expiry;
    bool active;
    uint256 tokenId;
    uint128 pricePerPeriod;
    uint64 period;
    uint64 maxPeriods;
}

enum RentalStatus {
    None,
    Active,
    Ended
}

/// @notice A time-limited usage authorization paid into escrow; the lessor is paid when it ends.
struct Rental {
    address renter;
    uint64 start;
    uint64 end;
    RentalStatus status;
    address lessor;
    uint256 tokenId;
    uint256 amount;
}

/// @title Marketplace of ERC-7857 agents: fixed-price sales, escrowed offers, oracle-proof settlement, rentals
interface IAgentMarket {
    event Listed(uint256 indexed listingId, address indexed seller, uint256 indexed tokenId, uint256 price, uint64 expiry);
    event ListingCancelled(uint256 indexed listingId);
    event OfferMade(uint256 indexed offerId, address indexed buyer, uint256 indexed tokenId, uint256 amount, uint64 expiry);
    event OfferWithdrawn(uint256 indexed offerId, address indexed by);
    event OfferAccepted(uint256 indexed offerId, uint256 indexed purchaseId);
    event PurchaseCreated(
        uint256 indexed purchaseId,
        uint256 indexed tokenId,
        address indexed buyer,
        address seller,
        uint256 price,
        uint64 deadline,
        bool fromOffer,
        uint256 sourceId
    );
    event PurchaseSettled(
        uint256 indexed purchaseId, uint256 sellerProceeds, address royaltyReceiver, uint256 royalty
    );
    event PurchaseCancelled(uint256 indexed purchaseId, address indexed by);
    event Credited(address indexed account, uint256 amount, uint256 balance);
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    event RentalTermsListed(
        uint256 indexed termsId,
        address indexed lessor,
        uint256 indexed tokenId,
        uint256 pricePerPeriod,
        uint64 period,
        uint64 maxPeriods,
        uint64 expiry
    );
    event RentalTermsCancelled(uint256 indexed termsId);
    event Rented(
        uint256 indexed rentalId, uint256 indexed termsId, address indexed renter, uint256 tokenId, uint256 amount, uint64 end
    );
    event RentalEnded(uint256 indexed rentalId, uint256 toLessor, uint256 toRenter, bool revoked);
    event SettleWindowUpdated(uint256 oldWindow, uint256 newWindow);

    /*=== sales ===*/
    function list(uint256 tokenId, uint256 price, uint64 expiry) external returns (uint256 listingId);
    function cancelListing(uint256 listingId) external;
    function buy(uint256 listingId) external payable returns (uint256 purchaseId);
    function makeOffer(uint256 tokenId, uint64 expiry) external payable returns (uint256 offerId);
    function withdrawOffer(uint256 offerId) external;
    function acceptOffer(uint256 offerId) external returns (uint256 purchaseId);
    function settle(uint256 purchaseId, TransferValidityProof[] calldata proofs) external;
    function cancelPurchase(uint256 purchaseId) external;
    function withdraw(address payable to) external returns (uint256 amount);

    /*=== rentals ===*/
    function listForRent(uint256 tokenId, uint128 pricePerPeriod, uint64 period, uint64 maxPeriods, uint64 expiry)
        external
        returns (uint256 termsId);
    function cancelRentalTerms(uint256 termsId) external;
    function rent(uint256 termsId, uint64 periods) external payable returns (uint256 rentalId);
    function endRental(uint256 rentalId) external;

    /*=== views ===*/
    function credits(address account) external view returns (uint256);
    function getListing(uint256 listingId) external view returns (Listing memory);
    function getOffer(uint256 offerId) external view returns (Offer memory);
    function getPurchase(uint256 purchaseId) external view returns (Purchase memory);
    function getRentalTerms(uint256 termsId) external view returns (RentalTerms memory);
    function getRental(uint256 rentalId) external view returns (Rental memory);
}

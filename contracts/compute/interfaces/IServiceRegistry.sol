// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Kinds of compute service.
enum ServiceType {
    Inference,
    FineTuning
}

/// @notice What a provider registers (`addOrUpdateService`).
/// @dev Prices are in wei per token. Inference: `inputPrice` per prompt token, `outputPrice` per completion
///      token. Fine-tuning: `inputPrice` per training token and `outputPrice` must be 0.
struct ServiceParams {
    ServiceType serviceType;
    string model;
    string url;
    string gpuType;
    uint32 gpuCount;
    /// memory per node, in MiB
    uint64 memoryMiB;
    uint128 inputPrice;
    uint128 outputPrice;
    /// e.g. "TeeML", "none" (informational; settlement trusts only signatures)
    string verifiability;
    /// the provider's TEE signer of receipts (zero: user-signed receipts only)
    address signer;
    string additionalInfo;
}

/// @notice A registered service, as returned by `getService`. `inputPrice`/`outputPrice` are billed now; while
///         an announced increase is pending, `nextInputPrice`/`nextOutputPrice` are billed from `nextPriceAt` on
///         (all three 0 when nothing is pending).
struct Service {
    address provider;
    ServiceType serviceType;
    string model;
    string url;
    string gpuType;
    uint32 gpuCount;
    uint64 memoryMiB;
    uint128 inputPrice;
    uint128 outputPrice;
    string verifiability;
    address signer;
    string additionalInfo;
    uint256 stake;
    uint256 registeredAt;
    uint256 updatedAt;
    /// listed for matching (providers pause and resume with `setServiceActive`)
    bool active;
    uint128 nextInputPrice;
    uint128 nextOutputPrice;
    uint256 nextPriceAt;
}

/// @title Registry of compute services (one per provider address), with stake and price-sorted lists
interface IServiceRegistry {
    event ServiceUpdated(
        address indexed provider,
        ServiceType indexed serviceType,
        string model,
        string url,
        uint256 inputPrice,
        uint256 outputPrice,
        uint256 gpuCount,
        uint256 memoryMiB,
        address signer
    );
    event ServiceActiveChanged(address indexed provider, bool active);
    event ServiceRemoved(address indexed provider);
    event ProviderStaked(address indexed provider, uint256 amount);
    event ProviderStakeReturned(address indexed provider, uint256 amount);
    event MinStakeUpdated(uint256 oldMinStake, uint256 newMinStake);
    /// @notice A price increase was announced: billed from `effectiveAt` on (matching uses it at once).
    event PriceIncreaseScheduled(address indexed provider, uint256 inputPrice, uint256 outputPrice, uint256 effectiveAt);
    /// @notice The provider declined or ignored a match: `penalty` of its stake was taken (`stake` is left).
    event ServiceStruck(address indexed provider, uint256 strikes, uint256 penalty, uint256 stake);
    event PriceIncreaseDelayUpdated(uint256 oldDelay, uint256 newDelay);
    event StrikePenaltyUpdated(uint256 oldPenalty, uint256 newPenalty);

    function addOrUpdateService(ServiceParams calldata params, address hint) external payable;
    function setServiceActive(bool active, address hint) external;
    function removeService() external;

    function findMatch(
        bytes32 listKey,
        uint256 minGpuCount,
        uint256 minMemoryMiB,
        uint256 maxInputPrice,
        uint256 maxOutputPrice,
        address[] calldata exclude,
        address start
    ) external view returns (address provider, uint256 inputPrice, uint256 outputPrice);
    function findFirstMatch(
        bytes32 listKey,
        uint256 minGpuCount,
        uint256 minMemoryMiB,
        uint256 maxInputPrice,
        uint256 maxOutputPrice
    ) external view returns (address provider);
    function matchTermsOf(address provider)
        external
        view
        returns (bytes32 listKey, uint256 gpuCount, uint256 memoryMiB, uint256 inputPrice, uint256 outputPrice, bool active);
    function recordStrike(address provider) external returns (uint256 penalty);
    function recordAcceptance(address provider) external;

    function listKeyOf(ServiceType serviceType, string calldata model) external pure returns (bytes32);
    function serviceExists(address provider) external view returns (bool);
    function isActive(address provider) external view returns (bool);
    function serviceTypeOf(address provider) external view returns (ServiceType);
    function signerOf(address provider) external view returns (address);
    function pricesOf(address provider) external view returns (uint256 inputPrice, uint256 outputPrice);
    function getService(address provider) external view returns (Service memory);
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Who signed a settlement receipt.
/// @dev TEE: the provider's signer (a key held in the provider's TEE, as in 0G), acknowledged by the user
///      for this provider with `acknowledgeSigner`. USER: the user's own key (EIP-712, no trust needed).
enum SignerKind {
    TEE,
    USER
}

/// @notice Outcome of one receipt in a settlement batch (`settleFees` returns one per receipt).
enum SettlementStatus {
    /// the whole delta (totalFee - charged) was paid
    SUCCESS,
    /// the account held less than the delta: all of it was paid, the rest stays due (cumulative receipts)
    PARTIAL,
    /// nonce not strictly above the account's last settled nonce (replayed or stale), or above 2^64 - 1
    INVALID_NONCE,
    /// the signature does not recover to the expected signer (user, or the acknowledged TEE signer)
    INVALID_SIGNATURE,
    /// a TEE receipt for an account whose user acknowledged no TEE signer for this provider
    SIGNER_NOT_ACKNOWLEDGED,
    /// totalFee is below what the account has already been charged (a stale cumulative total)
    FEE_BELOW_CHARGED
}

/// @notice A cumulative spend receipt of one (user, provider) pair, signed per EIP-712 as
///         `Receipt(address user,address provider,uint256 nonce,uint256 totalFee,bytes32 requestsHash)`.
/// @dev The provider is msg.sender of `settleFees`. `totalFee` is the user's total spend with the provider
///      since the account's first receipt, not the fee of this batch: settling pays `totalFee - charged`.
struct Receipt {
    address user;
    uint256 nonce;
    uint256 totalFee;
    /// an opaque commitment to the requests covered (e.g. a hash chain of request hashes)
    bytes32 requestsHash;
    SignerKind signerKind;
    /// 65-byte ECDSA signature (r, s, v) of the EIP-712 digest
    bytes signature;
}

/// @notice One (user, provider) sub-account, as returned by `getAccount`.
struct AccountInfo {
    /// funds spendable by the provider's receipts (`free + pendingRefund`)
    uint256 balance;
    /// part of `balance` the user asked back; collectable from `refundUnlockAt` on
    uint256 pendingRefund;
    uint256 refundUnlockAt;
    /// last settled receipt nonce (0 = none)
    uint256 nonce;
    /// total ever paid to the provider from this account through receipts (the cumulative counter)
    uint256 charged;
    /// TEE signer the user accepts receipts from (zero = user-signed receipts only)
    address teeSigner;
}

/// @title The compute ledger: users' prepaid funds, per-(user, provider) sub-accounts and settlement
interface IComputeLedger {
    /// @notice `payer` added `amount` to `user`'s ledger (its available balance is now `available`).
    event FundDeposited(address indexed user, address indexed payer, uint256 amount, uint256 available);
    /// @notice `payer` (a funder, e.g. the bundle market) paid `amount` straight into the sub-account
    ///         (user, provider), whose balance is now `balance`.
    event AccountDeposited(
        address indexed user, address indexed provider, address indexed payer, uint256 amount, uint256 balance
    );
    /// @notice `user` withdrew `amount` from the ledger to its wallet.
    event FundWithdrawn(address indexed user, uint256 amount, uint256 available);
    /// @notice The sub-account (user, provider) gained `amount` spendable funds: `fromLedger` from the
    ///         ledger (available or reserved) and `cancelledRefund` from its own pending refund.
    event AccountFunded(
        address indexed user,
        address indexed provider,
        uint256 fromLedger,
        uint256 cancelledRefund,
        uint256 balance,
        uint256 pendingRefund
    );
    /// @notice `amount` more of the sub-account is locked for refund until `unlockAt`.
    event RefundRequested(
        address indexed user, address indexed provider, uint256 amount, uint256 pendingRefund, uint256 unlockAt
    );
    /// @notice An unlocked refund of `amount` went back to the user's ledger.
    event RefundCollected(address indexed user, address indexed provider, uint256 amount, uint256 balance);
    /// @notice A settlement or charge took `amount` from the sub-account's pending refund.
    event RefundCancelled(address indexed user, address indexed provider, uint256 amount, uint256 pendingRefund);
    /// @notice The user accepts TEE-signed receipts of `provider` from `signer` (zero: none).
    event SignerAcknowledged(address indexed user, address indexed provider, address signer);
    /// @notice The matcher reserved `amount` of the user's available funds for a pending match.
    event FundReserved(address indexed user, uint256 amount, uint256 available, uint256 reserved);
    /// @notice A reservation of `amount` went back to the user's available funds.
    event ReservationReleased(address indexed user, uint256 amount, uint256 available, uint256 reserved);
    /// @notice One receipt of a batch was processed; `paid` moved from the account to the provider's
    ///         earnings, `unpaid` of the delta stays due. Emitted for rejected receipts too (paid 0).
    event ReceiptSettled(
        address indexed user,
        address indexed provider,
        uint256 nonce,
        SettlementStatus status,
        uint256 paid,
        uint256 unpaid
    );
    /// @notice A fee service (fine-tuning) charged `amount` from the sub-account.
    event AccountCharged(address indexed user, address indexed provider, address indexed service, uint256 amount);
    /// @notice `amount` was credited to the provider's withdrawable earnings.
    event EarningsCredited(address indexed provider, uint256 amount, uint256 earnings);
    /// @notice The provider withdrew `amount` of earnings to `to`.
    event EarningsWithdrawn(address indexed provider, address indexed to, uint256 amount);
    event LockTimeUpdated(uint256 oldLockTime, uint256 newLockTime);
    event MinimumsUpdated(uint256 minDeposit, uint256 minTransfer);

    // users
    function depositFund() external payable;
    function depositFundFor(address user) external payable;
    function refund(uint256 amount) external;
    function transferFund(address provider, uint256 amount) external;
    function requestRefund(address provider, uint256 amount) external;
    function collectRefund(address provider) external returns (uint256 amount);
    function acknowledgeSigner(address provider, address signer) external;

    // providers
    function settleFees(Receipt[] calldata receipts) external returns (SettlementStatus[] memory statuses);
    function withdrawEarnings(address payable to) external returns (uint256 amount);

    // the matcher (MATCHER_ROLE)
    function reserve(address user, uint256 amount) external;
    function releaseReservation(address user, uint256 amount) external;
    function fundFromReservation(address user, address provider, uint256 amount) external;
    function compensate(address user) external payable;

    // funders such as the compute bundle market (FUNDER_ROLE)
    function depositToAccount(address user, address provider) external payable;

    // fee services such as fine-tuning (SPENDER_ROLE)
    function charge(address user, address provider, uint256 amount) external;

    // views
    function getLedger(address user) external view returns (uint256 available, uint256 reserved);
    function getAccount(address user, address provider) external view returns (AccountInfo memory);
    function teeSignerOf(address user, address provider) external view returns (address);
    function earnings(address provider) external view returns (uint256);
    function lockTime() external view returns (uint256);
    function minDeposit() external view returns (uint256);
    function minTransfer() external view returns (uint256);
}

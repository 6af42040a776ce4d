//! Named upper bounds. Every size and count that comes from outside is checked
//! against one of these before it is trusted.

/// Largest encoded transaction accepted anywhere (mempool, block, HTTP).
/// A governance proposal carrying a full merchant record is the biggest body
/// (~300 bytes); 2 KiB leaves room without letting a single transaction
/// dominate a block.
pub const TX_BYTES_MAX: usize = 2 * 1024;
/// Free-text fields (reason, memo, references, names) are capped so that the
/// ledger cannot be used as a data store and no personal data fits easily.
pub const REASON_BYTES_MAX: usize = 64;
/// Maximum memo length on a transfer.
pub const MEMO_BYTES_MAX: usize = 128;
/// Maximum external reference (receipt or order) length.
pub const REF_BYTES_MAX: usize = 64;
/// Maximum merchant display-name length.
pub const NAME_BYTES_MAX: usize = 64;
/// Merchant ids are short, human-typed handles such as `coffee`.
pub const MERCHANT_ID_BYTES_MAX: usize = 16;
/// Chain ids are short ASCII labels such as `alliance-devnet`.
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// Hard ceiling on transactions per block, whatever the governance parameter
/// says: bounds memory and validation time of one block.
pub const BLOCK_TXS_MAX: usize = 20_000;
/// Hard ceiling on the encoded size of one block.
pub const BLOCK_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Hard ceiling on the number of merchants (and so validators).
pub const MERCHANTS_MAX: usize = 256;
/// Lots one account may hold. Lots merge by (issuer, expiry day), so this is
/// only reached by an account holding points of many issuers over years.
pub const LOTS_PER_ACCOUNT_MAX: usize = 4_096;
/// Largest genesis file accepted.
pub const GENESIS_BYTES_MAX: usize = 1024 * 1024;
/// Milliseconds in one day: caps and expiry are computed per UTC day.
pub const DAY_MS: u64 = 86_400_000;
/// Longest receipt window the alliance parameters may set
/// (`receipt_window_days`): about ten years.
pub const RECEIPT_WINDOW_DAYS_MAX: u32 = 3_650;
/// How far after the block time an issuance's receipt time may be. A till
/// whose clock is set in the wrong time zone is off by at most 14 hours;
/// one day tolerates that and any ordinary clock error, while a receipt
/// dated later than this is refused (`receipt_in_future`).
pub const RECEIPT_FUTURE_MS_MAX: u64 = DAY_MS;
/// Longest a merchant's signed order request may stay valid after the
/// block that executes it (`valid_until_ms` − block time): one day, never
/// more than the shortest receipt window, so a signed request expires while
/// its order reference is still remembered and cannot be replayed.
pub const ORDER_VALIDITY_MS_MAX: u64 = DAY_MS;
/// Issuers one acceptance policy may list, or one order may name: every
/// member of the largest alliance.
pub const ACCEPTANCE_RATES_MAX: usize = MERCHANTS_MAX;
/// Longest acceptance notice the alliance parameters may require
/// (`acceptance_notice_blocks`): a year at one block a second.
pub const ACCEPTANCE_NOTICE_BLOCKS_MAX: u64 = 366 * 86_400;
/// Receipts pruned per block at most, per transaction the block may hold:
/// a block prunes at most `RECEIPT_PRUNES_PER_BLOCK_TX × block_txs_max`
/// receipts whose window has ended, so pruning can never cost more than
/// about a full block of issuances, and still outpaces the fastest
/// issuance (a block adds at most `block_txs_max` receipts). Receipts past
/// the bound stay in the queue and are pruned by the next blocks.
pub const RECEIPT_PRUNES_PER_BLOCK_TX: usize = 2;

//! # alliance-protocol
//!
//! The one library every Points Alliance component uses: node, consensus,
//! wallet CLI and auditor. It holds the types, the canonical encoding, the
//! signing rules, the ledger state machine and block/certificate
//! verification. Nothing here does I/O: no sockets, clocks or disk. The only
//! threads are the scoped ones of `state::verify_signatures_parallel`, which
//! spread signature checks over cores and return the same verdicts.
//!
//! Map of the crate:
//! - [`crypto`], [`address`]: hashes, keys, signatures, bech32m addresses.
//! - [`encoding`]: the canonical byte format and domain-separated hashing.
//! - [`merchant`], [`tx`], [`block`]: what goes on the chain.
//! - [`merkle`]: `tx_root`; [`smt`]: the sparse Merkle tree behind `state_root`;
//!   [`smt_paged`]: the same tree with its leaves in a store, bounded memory.
//! - [`validators`], [`certificate`]: who certifies blocks and how to check it.
//! - [`state`]: the ledger state machine, every ledger rule in one place.
//! - [`genesis`]: the genesis file and the initial state.
//! - [`fixtures`]: deterministic demo alliances (tests, benchmarks, devnet).
//! - [`audit`], [`export`]: whole-chain verification and the export file.
//! - [`light`]: account proofs a light client checks from the genesis file.
//! - [`sigverify`]: the signature rule's verdicts, faster for frequent signers.
#![warn(missing_docs)]

pub mod address;
pub mod audit;
pub mod block;
pub mod certificate;
pub mod cores;
pub mod crypto;
pub mod encoding;
pub mod export;
pub mod fixtures;
pub mod genesis;
pub mod light;
pub mod limits;
pub mod merchant;
pub mod merkle;
pub mod netting;
pub mod redemption;
pub mod sigverify;
pub mod smt;
pub mod smt_paged;
pub mod state;
pub mod tx;
pub mod validators;

pub use block::{Block, BlockHeader, FinalizedBlock};
pub use certificate::{Certificate, CertificateError, SignedVote, VoteData, VoteDomain, VoteKind};
pub use crypto::{Hash32, Keypair, PublicKey, Signature};
pub use merchant::{AllianceParams, Merchant, MerchantId, MerchantPolicy, MerchantStatus};
pub use tx::{GovAction, Transaction, TxBody};
pub use validators::{Validator, ValidatorSet};

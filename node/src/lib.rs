//! # alliance-node
//!
//! The process each merchant runs. Thin edges around the pure cores of
//! `alliance-protocol` (ledger) and `alliance-consensus` (BFT): storage on
//! sled, key files, genesis tooling, and synthetic chains for tests.
#![warn(missing_docs)]

pub mod alloc;
pub mod api;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod chain;
pub mod config;
pub mod devnet;
pub mod explorer;
pub mod export;
pub mod keyfile;
pub mod members;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod runtime;
pub mod store;
pub mod sync;
pub mod synth;

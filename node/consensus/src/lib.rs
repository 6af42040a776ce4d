//! # alliance-consensus
//!
//! Simplex consensus (Chan and Pass, TCC 2023) for the Points Alliance, as a
//! pure state machine: no sockets, clocks, threads, randomness or disk. The
//! node's driver feeds [`Input`]s to [`Core::handle`] and executes the
//! returned [`Output`]s in order; `tests/simulation.rs` drives many cores
//! on a simulated, faulty network the same way.
//!
//! Map of the crate:
//! - [`core`]: the protocol, every consensus rule in one module.
//! - [`guard`]: our own votes and the never-double-sign rules.
//! - [`tally`]: votes received per view, quorum counting, equivocations.
//! - [`batcher`]: signatures, pluggable: verification ([`Verifier`]) and
//!   signing our own votes ([`Signer`]).
//! - [`message`], [`interface`]: what goes on the wire and what crosses
//!   between the core and the driver.
//! - [`config`]: configuration and every named bound; [`stats`]: counters.
//!
//! One [`Core`] serves one epoch: its validator set is fixed. When
//! governance changes the set, the node restarts the core at the epoch's
//! first height with the new set (see docs/consensus.md).
#![warn(missing_docs)]

pub mod batcher;
pub mod config;
pub mod core;
pub mod guard;
pub mod interface;
pub mod message;
pub mod stats;
pub mod tally;

pub use crate::batcher::{CachingVerifier, Ed25519Verifier, Signer, Verifier};
pub use crate::config::{Anchor, Config, Mutation};
pub use crate::core::Core;
pub use crate::interface::{Input, Output, TimerId, TimerKind};
pub use crate::message::{Message, Proposal};
pub use crate::stats::{DropReason, Stats};

//! The Sairex SMS engine: the ractor supervision tree that moves messages from the store to
//! carriers over SMPP and HTTP, and brings receipts and inbound messages back
//! (see `docs/architecture.md`).
//!
//! The actor tree itself is being built (issue 4). What is here are its pure building blocks,
//! each tested on its own with time passed in:
//!
//! # Layout
//! - [`session::sequence`]: sequence numbers with the spec's wrap.
//! - [`session::window`]: outstanding requests per bind, matched by sequence, with deadlines.
//! - [`provider::token_bucket`]: TPS limits.
//! - [`backoff`]: jittered exponential reconnect back-off.
//! - [`retry`]: the blueprint's retry schedule.
//! - [`classify`]: what a submit status or a receipt state means for the message.
#![warn(missing_docs)]

pub mod backoff;
pub mod classify;
pub mod retry;

/// SMPP session building blocks.
pub mod session {
    pub mod sequence;
    pub mod window;
}

/// Provider building blocks.
pub mod provider {
    pub mod token_bucket;
}

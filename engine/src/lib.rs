//! The Sairex SMS engine: the ractor supervision tree that moves messages from the store to
//! carriers over SMPP and HTTP, and brings receipts and inbound messages back
//! (see `docs/architecture.md`).
//!
//! This crate is filled by the engine issue; until then it exports nothing.

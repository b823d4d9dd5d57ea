//! Durable state of the Sairex SMS gateway on sled: messages, their audit trail, the queue, and
//! every tenant's entities (see `docs/architecture.md`).
//!
//! This crate is filled by the store issue; until then it exports nothing, so that no other crate
//! can come to depend on behaviour that does not exist yet.

//! The HTTP facade of Sairex SMS: public REST API, admin JSON, inbound provider webhooks, the
//! event stream and metrics (see `docs/architecture.md`).
//!
//! This crate is filled by the API issue; until then it exports nothing.

//! Sairex SMS configuration: TOML types, defaults, and validation that reports every problem with
//! its key (see `docs/architecture.md`).
//!
//! This crate is filled by the API issue; until then it exports nothing.

//! Helpers for the load generator's tests.
pub mod fake_api;

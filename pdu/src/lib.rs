//! SMPP 3.4 codec for Sairex SMS (in progress).
#![deny(missing_docs)]

pub mod receipt;
pub mod text;

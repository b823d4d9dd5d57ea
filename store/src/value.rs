//! Record (de)serialisation: one format-version byte, then MessagePack with named fields.
//!
//! Named fields plus `#[serde(default)]` on every record let a newer build add fields and still
//! read records an older build wrote; the version byte is for changes that cannot be expressed
//! that way. A record with a version newer than this build knows is refused, never guessed at.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StoreError};

/// The record format this build writes.
pub const FORMAT_VERSION: u8 = 1;

/// Serialises a record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    // A message record is 400–700 bytes: one allocation, not three growths.
    let mut out = Vec::with_capacity(768);
    out.push(FORMAT_VERSION);
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| StoreError::Format(format!("cannot encode record: {e}")))?;
    Ok(out)
}

/// Deserialises a record stored under `key`.
pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            rmp_serde::from_slice(body).map_err(|e| StoreError::Corrupt {
                key: hex(key),
                problem: e.to_string(),
            })
        }
        Some((&version, _)) if version > FORMAT_VERSION => Err(StoreError::Format(format!(
            "record {} has format {version}, newer than this build's {FORMAT_VERSION}; \
             upgrade Sairex",
            hex(key)
        ))),
        _ => Err(StoreError::Corrupt {
            key: hex(key),
            problem: "unknown record format".into(),
        }),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! Store errors. Each says what failed and, where it helps an operator, what to do.

use std::path::PathBuf;

/// An error of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist in this organization (another tenant's record is also
    /// "not found": the store never confirms that it exists).
    #[error("{entity} {id} not found")]
    NotFound {
        /// Kind of record ("message", "contact").
        entity: &'static str,
        /// The id asked for.
        id: u64,
    },
    /// A uniqueness rule would be broken: the existing record's id is given.
    #[error("{entity} already exists with id {existing_id} ({what})")]
    Conflict {
        /// Kind of record.
        entity: &'static str,
        /// What collided ("phone +923001234567").
        what: String,
        /// The record that holds it.
        existing_id: u64,
    },
    /// The operation does not fit the record's state (acking a message not in flight, say).
    #[error("{0}")]
    InvalidState(String),
    /// A value the store cannot keep (a phone with a NUL, an empty name).
    #[error("invalid {field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Another process has the store open.
    #[error("the store at {path} is in use by another process (it holds the lock file)")]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The master key does not open the secrets in this store.
    #[error(
        "the master key does not match the one this store was created with; refusing to start \
         (set the key the store was created with, SAIREX_MASTER_KEY or store.master_key_file)"
    )]
    WrongMasterKey,
    /// The store holds encrypted secrets but no master key was given.
    #[error("this store holds encrypted secrets; a master key is required to open it")]
    MasterKeyRequired,
    /// A master key of the wrong form.
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),
    /// The store was written by a newer Sairex, or a record is not readable.
    #[error("unsupported data format: {0}")]
    Format(String),
    /// A record that does not decode: the store is damaged at that key.
    #[error("corrupt record {key}: {problem}")]
    Corrupt {
        /// The key, hex.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// The disk is full: nothing of the failed operation was acknowledged.
    #[error("no space left on the store's disk: {0}")]
    DiskFull(std::io::Error),
    /// Another I/O or storage failure.
    #[error("storage error: {0}")]
    Storage(String),
    /// An earlier write or fsync failed, so what is on disk may lack acknowledged-looking data:
    /// the store refuses every further write until the process restarts (and recovers from the
    /// journal). Retrying the fsync could report success for data the kernel already dropped.
    #[error(
        "an earlier write to the store's disk failed; the store refuses further writes until \
         Sairex is restarted (check the disk and the logs for the first error)"
    )]
    Poisoned,
    /// The store is closed (shutting down).
    #[error("the store is closed")]
    Closed,
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

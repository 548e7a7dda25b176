use thiserror::Error;

/// Everything that can go wrong in the store.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// Another node (process or instance) has this database open.
    #[error("the database is already open elsewhere")]
    AlreadyOpen,
    /// The database file is damaged or is not a redb database.
    #[error("the database is corrupted: {0}")]
    Corrupted(String),
    /// The stored bytes of a blob do not hash to its cid.
    #[error("blob content does not match its cid")]
    ContentMismatch,
    /// The disk (or quota) is full; the write was not made.
    #[error("no space left on the device")]
    NoSpace,
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The write queue is full; try again later.
    #[error("the write queue is full")]
    Busy,
    /// A name or value exceeds the store's limits.
    #[error("{0} is too large")]
    TooLarge(&'static str),
    /// A partial blob's size differs from the one the caller gave.
    #[error("the blob's size is {known}, not {claimed}")]
    SizeMismatch {
        /// The size the store holds (proven by the blob's last group).
        known: u64,
        /// The size the caller gave.
        claimed: u64,
    },
    /// A verified group or stream belongs to another blob or tree.
    #[error("the verified data belongs to another blob")]
    WrongBlob,
    /// Partial blobs are for blobs of more than one chunk group (16 KiB);
    /// smaller ones are put whole.
    #[error("a blob of {0} bytes is one chunk group: put it whole")]
    TooSmallForPartial(u64),
    /// A partial blob cannot complete while groups are missing.
    #[error("{missing} chunk groups are still missing")]
    Incomplete {
        /// Groups not written yet.
        missing: u64,
    },
    /// A verified stream failed verification (or ended early).
    #[error("the stream was refused: {0}")]
    BadStream(keyring_core::verified::DecodeError),
    /// The partial blob is gone (garbage-collected, dropped or completed elsewhere).
    #[error("the partial blob is gone")]
    PartialGone,
    /// Memory for the answer could not be allocated.
    #[error("out of memory")]
    NoMemory,
    /// Any other I/O or database error.
    #[error("I/O error: {0}")]
    Io(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            StoreError::NoSpace
        } else {
            StoreError::Io(e.to_string())
        }
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) => io.into(),
            redb::StorageError::Corrupted(msg) => StoreError::Corrupted(msg),
            redb::StorageError::DatabaseClosed => StoreError::Closed,
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen,
            redb::DatabaseError::Storage(s) => s.into(),
            other => StoreError::Corrupted(other.to_string()),
        }
    }
}

macro_rules! via_storage {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                match e.into() {
                    redb::Error::Io(io) => io.into(),
                    redb::Error::Corrupted(msg) => StoreError::Corrupted(msg),
                    redb::Error::DatabaseClosed => StoreError::Closed,
                    other => StoreError::Io(other.to_string()),
                }
            }
        }
    )*};
}

via_storage!(redb::TransactionError, redb::TableError, redb::CommitError);

//! The data layer's one error type: callers decide on its kind (the gateway
//! maps it to a problem document, the worker to a retry decision) instead of
//! matching `sqlx::Error` themselves.

use std::sync::Arc;

/// Why a statement did not complete. Cheap to clone (batched writes hand the
/// same error to every caller in the batch).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL could not be reached, the pool timed out, or the connection
    /// broke: nothing was decided, and the same statement may succeed later.
    #[error("PostgreSQL unavailable: {0}")]
    Unavailable(Arc<sqlx::Error>),
    /// PostgreSQL refused the statement (a constraint, a value it cannot
    /// store): the same input fails again.
    #[error("PostgreSQL refused the statement: {0}")]
    Refused(Arc<sqlx::Error>),
    /// A row could not be read back as this release's types (for example a
    /// value written by a newer release).
    #[error("cannot read a row: {0}")]
    Decode(Arc<sqlx::Error>),
}

impl StoreError {
    /// True when retrying later may succeed ([`StoreError::Unavailable`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(_) => Self::Refused(Arc::new(e)),
            sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) => {
                Self::Decode(Arc::new(e))
            }
            other => Self::Unavailable(Arc::new(other)),
        }
    }
}

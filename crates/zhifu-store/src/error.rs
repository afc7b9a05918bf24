//! The crate's error type: what callers can match on, with the driver's
//! error kept as the source rather than repeated in the message.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was broken; the field says which.
    #[error("`{0}` is already taken")]
    Conflict(&'static str),
    /// A row referenced by the call does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The database URL names no backend this crate supports.
    #[error("unsupported database URL (expected sqlite:…, postgres://… or mysql://…)")]
    UnsupportedUrl,
    /// The pooler setting (`pooler=` in the URL, `ZHIFU_DB_POOLER`) is not
    /// `none` or `transaction`, or asks for a pooler in front of SQLite.
    #[error("unsupported pooler setting (expected `none` or `transaction`, and PostgreSQL)")]
    PoolerSetting,
    /// The database holds a value this crate does not understand.
    #[error("unexpected value in column `{column}`")]
    Corrupt {
        /// Which column.
        column: &'static str,
    },
    /// The database failed or could not be reached.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The group of writes this one was committed with vanished before it
    /// answered (its task was cancelled: the runtime is shutting down).
    /// Whether the write committed is unknown; re-applying it is safe.
    #[error("the write's group commit did not answer")]
    GroupLost,
    /// Running the migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl StoreError {
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::StoreError;

    /// Reporters print the whole source chain; a message that repeated its
    /// source would show it twice.
    #[test]
    fn messages_leave_the_source_to_the_chain() {
        let cases = [
            StoreError::Database(sqlx::Error::PoolTimedOut),
            StoreError::Migrate(sqlx::migrate::MigrateError::VersionMissing(7)),
        ];
        for e in cases {
            let source = e.source().expect("the cause is kept as the source");
            assert!(
                !e.to_string().contains(&source.to_string()),
                "`{e}` repeats its source `{source}`"
            );
        }
    }
}

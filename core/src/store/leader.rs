//! The maintenance lease's lock: a PostgreSQL session advisory lock, held on
//! a dedicated connection ([`super::connect_dedicated`]) so that no pool can
//! recycle the session (and free the lock) behind the holder's back.

use sqlx::PgConnection;

use super::StoreError;

/// Tries to take advisory lock `key` for this session; true when taken (or
/// already held by this session), false when another session holds it.
pub(crate) async fn try_lock(conn: &mut PgConnection, key: i64) -> Result<bool, StoreError> {
    let taken = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "taken!""#, key).fetch_one(conn).await?;
    Ok(taken)
}

/// Proves the session (and so any lock it holds) is still there.
pub(crate) async fn still_connected(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(conn).await?;
    Ok(())
}

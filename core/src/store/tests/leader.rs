//! [`crate::store::leader`]: the advisory lock is held by one session at a
//! time and freed when that session ends.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};

use crate::store::leader;

/// Any key: advisory locks are per database, and each test has its own.
const KEY: i64 = 42;

/// A session of its own, outside the pool (as the lease's dedicated one).
async fn session(pool: &PgPool) -> PgConnection {
    pool.acquire().await.unwrap().detach()
}

/// Retries `try_lock` on `conn` for up to ten seconds: the server frees a
/// dropped session's locks once it notices the connection closed.
async fn lock_within_seconds(conn: &mut PgConnection, key: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if leader::try_lock(conn, key).await.unwrap() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn the_lock_is_exclusive_and_freed_when_its_session_ends(pool: PgPool) {
    let (mut a, mut b) = (session(&pool).await, session(&pool).await);
    assert!(leader::try_lock(&mut a, KEY).await.unwrap());
    // The holder may ask again; another session may not take it.
    assert!(leader::try_lock(&mut a, KEY).await.unwrap());
    assert!(!leader::try_lock(&mut b, KEY).await.unwrap());
    // Another key is another lock.
    assert!(leader::try_lock(&mut b, KEY + 1).await.unwrap());
    leader::still_connected(&mut a).await.unwrap();

    // Closed: the other session takes it once the server has ended the
    // closed session (close() returns when the goodbye is sent, not when the
    // backend has exited and released its locks).
    a.close().await.unwrap();
    assert!(lock_within_seconds(&mut b, KEY).await, "a closed holder's lock was never freed");

    // Dropped without a goodbye: freed once the server sees the session gone.
    let mut c = session(&pool).await;
    assert!(!leader::try_lock(&mut c, KEY).await.unwrap());
    drop(b);
    assert!(lock_within_seconds(&mut c, KEY).await, "a dropped holder's lock was never freed");
}

/// A holder whose session the server ended finds out from `still_connected`,
/// and the lock is free for another session.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_holder_whose_session_ended_is_told_and_loses_the_lock(pool: PgPool) {
    let (mut holder, mut other) = (session(&pool).await, session(&pool).await);
    assert!(leader::try_lock(&mut holder, KEY).await.unwrap());
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut holder).await.unwrap();
    // With a timeout (ms) the call returns once the backend has exited, not
    // when the signal is sent, so the session is surely gone below.
    let ended: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1, 10000)").bind(pid).fetch_one(&pool).await.unwrap();
    assert!(ended, "the holder's backend did not exit within 10 s");
    assert!(leader::still_connected(&mut holder).await.is_err());
    assert!(lock_within_seconds(&mut other, KEY).await);
}

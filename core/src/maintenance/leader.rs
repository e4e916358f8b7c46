//! The maintenance lease: a PostgreSQL session advisory lock held on a
//! dedicated connection that no pool can recycle behind our back.

use sqlx::PgConnection;

/// One process's view of the leader lock.
pub(crate) struct Lease {
    database_url: String,
    key: i64,
    conn: Option<PgConnection>,
    held: bool,
}

impl Lease {
    /// A lease on advisory lock `key` (see [`crate::config::Names::leader_lock_key`]).
    pub fn new(database_url: String, key: i64) -> Self {
        Self { database_url, key, conn: None, held: false }
    }

    /// Tries to take or keep the lock; true while this process leads. A lost or
    /// broken connection drops the lease (PostgreSQL frees the lock when the
    /// session ends), and the next call reconnects and competes again.
    pub(crate) async fn hold(&mut self) -> bool {
        if self.conn.is_none() {
            match crate::store::connect_dedicated(&self.database_url).await {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    tracing::debug!(error = %e, "leader lease: cannot connect");
                    self.held = false;
                    return false;
                }
            }
        }
        let conn = self.conn.as_mut().expect("connected above");
        let result = if self.held {
            crate::store::leader::still_connected(conn).await.map(|()| true)
        } else {
            crate::store::leader::try_lock(conn, self.key).await
        };
        match result {
            Ok(held) => self.held = held,
            Err(e) => {
                tracing::warn!(error = %e, "leader lease: connection lost");
                self.conn = None;
                self.held = false;
            }
        }
        self.held
    }

    /// Releases the lock (if held) by closing the session.
    pub(crate) async fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
        self.held = false;
    }
}

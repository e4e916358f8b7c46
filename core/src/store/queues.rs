//! The queues the gateways declare (`--queues`), kept in the `queues` table
//! so that workers can tell a queue no gateway accepts tasks for.

use sqlx::PgPool;

use super::StoreError;

/// Records `queues` as declared by a gateway (its `--queues`), keeping the
/// ones other gateways declared. Idempotent: a repeat refreshes `declared_at`.
pub async fn declare(pool: &PgPool, queues: &[String]) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO queues (name) SELECT DISTINCT q FROM UNNEST($1::text[]) AS q ORDER BY q
         ON CONFLICT (name) DO UPDATE SET declared_at = now()",
        queues
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Every queue a gateway has declared on this database, by name; empty when
/// no gateway has started yet.
pub async fn declared(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!("SELECT name FROM queues ORDER BY name").fetch_all(pool).await?)
}

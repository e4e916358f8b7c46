//! [`crate::store::queues`]: the declared queues are the union of every
//! gateway's list.

use sqlx::PgPool;

use crate::store::queues;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn declared_queues_are_the_union_of_every_gateways_list(pool: PgPool) {
    assert!(queues::declared(&pool).await.unwrap().is_empty());
    // Duplicates in one list are one queue.
    queues::declare(&pool, &names(&["emails", "default", "emails"])).await.unwrap();
    assert_eq!(queues::declared(&pool).await.unwrap(), ["default", "emails"]);
    // Another gateway's list adds to it; nothing is removed.
    queues::declare(&pool, &names(&["reports"])).await.unwrap();
    assert_eq!(queues::declared(&pool).await.unwrap(), ["default", "emails", "reports"]);
    queues::declare(&pool, &[]).await.unwrap();
    assert_eq!(queues::declared(&pool).await.unwrap(), ["default", "emails", "reports"]);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn declaring_again_refreshes_only_the_declared_queues(pool: PgPool) {
    queues::declare(&pool, &names(&["a", "b"])).await.unwrap();
    sqlx::query("UPDATE queues SET declared_at = now() - interval '1 hour'").execute(&pool).await.unwrap();
    queues::declare(&pool, &names(&["a"])).await.unwrap();
    let fresh: Vec<(String, bool)> =
        sqlx::query_as("SELECT name, declared_at > now() - interval '1 minute' FROM queues ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(fresh, [("a".to_string(), true), ("b".to_string(), false)]);
}

//! [`crate::store::audit`]: entries read back newest first, a page at a time.

use sqlx::PgPool;

use crate::store::audit;

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn entries_are_listed_newest_first_a_page_at_a_time(pool: PgPool) {
    assert!(audit::list(&pool, 10, None, None).await.unwrap().is_empty());
    for n in 1..=5 {
        let detail = serde_json::json!({ "n": n });
        let tenant = (n % 2 == 0).then_some("acme");
        audit::record(&pool, "cli", &format!("test.{n}"), tenant, Some(&format!("target-{n}")), &detail).await.unwrap();
    }
    let actions = |v: &[audit::AuditEntry]| v.iter().map(|e| e.action.clone()).collect::<Vec<_>>();

    let page = audit::list(&pool, 2, None, None).await.unwrap();
    assert_eq!(actions(&page), ["test.5", "test.4"]);
    let page = audit::list(&pool, 2, Some(page[1].id), None).await.unwrap();
    assert_eq!(actions(&page), ["test.3", "test.2"]);
    let page = audit::list(&pool, 2, Some(page[1].id), None).await.unwrap();
    assert_eq!(actions(&page), ["test.1"]);
    assert!(audit::list(&pool, 2, Some(page[0].id), None).await.unwrap().is_empty());

    let all = audit::list(&pool, 10, None, None).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id && w[0].at >= w[1].at));
    let second = &all[3];
    assert_eq!(second.actor, "cli");
    assert_eq!(second.tenant.as_deref(), Some("acme"));
    assert_eq!(second.target.as_deref(), Some("target-2"));
    assert_eq!(second.detail, serde_json::json!({ "n": 2 }));
    assert_eq!(all[4].tenant, None);
}

/// An entry written in a transaction that rolls back is gone with it (the
/// action and its record commit together).
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn an_entry_commits_with_its_transaction(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    audit::record(&mut *tx, "cli", "test.rolled_back", None, None, &serde_json::json!({})).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    audit::record(&mut *tx, "cli", "test.committed", None, None, &serde_json::json!({})).await.unwrap();
    tx.commit().await.unwrap();
    let all = audit::list(&pool, 10, None, None).await.unwrap();
    assert_eq!(all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["test.committed"]);
}

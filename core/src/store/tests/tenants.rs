//! [`crate::store::tenants`]: a gateway's declared list becomes the dedicated
//! tenants, each change is returned, stamped and audited once.

use sqlx::PgPool;

use crate::store::audit;
use crate::store::tenants::{self, Change};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Each tenant's `changed_at`, by name.
async fn changed_at(pool: &PgPool) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as("SELECT tenant, changed_at FROM dedicated_tenants ORDER BY tenant").fetch_all(pool).await.unwrap()
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn declare_sets_the_dedicated_tenants_and_audits_each_change(pool: PgPool) {
    assert!(tenants::dedicated(&pool).await.unwrap().is_empty());

    // Duplicates and order in the list do not matter.
    let change = tenants::declare(&pool, &names(&["b", "a", "a"]), "gateway").await.unwrap();
    assert_eq!(change, Change { dedicated: names(&["a", "b"]), shared: vec![] });
    assert_eq!(tenants::dedicated(&pool).await.unwrap(), ["a", "b"]);
    let log = audit::list(&pool, 10, None, None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].actor.as_str(), log[0].action.as_str()), ("gateway", "dedicated_tenants.set"));
    assert_eq!(log[0].detail["dedicated"], serde_json::json!(["a", "b"]));
    assert_eq!(log[0].detail["shared"], serde_json::json!([]));

    // The same list again changes nothing and records nothing.
    let change = tenants::declare(&pool, &names(&["a", "b"]), "gateway").await.unwrap();
    assert!(change.is_empty(), "{change:?}");
    assert_eq!(audit::list(&pool, 10, None, None).await.unwrap().len(), 1);

    let change = tenants::declare(&pool, &names(&["c", "b"]), "other-gateway").await.unwrap();
    assert_eq!(change, Change { dedicated: names(&["c"]), shared: names(&["a"]) });
    assert_eq!(tenants::dedicated(&pool).await.unwrap(), ["b", "c"]);
    let log = audit::list(&pool, 10, None, None).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].actor, "other-gateway");
    assert_eq!(log[0].detail["dedicated"], serde_json::json!(["c"]));
    assert_eq!(log[0].detail["shared"], serde_json::json!(["a"]));

    // A tenant dedicated again after being shared.
    let change = tenants::declare(&pool, &names(&["a"]), "gateway").await.unwrap();
    assert_eq!(change, Change { dedicated: names(&["a"]), shared: names(&["b", "c"]) });
    assert_eq!(tenants::dedicated(&pool).await.unwrap(), ["a"]);

    // An empty list shares every tenant.
    let change = tenants::declare(&pool, &[], "gateway").await.unwrap();
    assert_eq!(change, Change { dedicated: vec![], shared: names(&["a"]) });
    assert!(tenants::dedicated(&pool).await.unwrap().is_empty());
    assert_eq!(audit::list(&pool, 10, None, None).await.unwrap().len(), 4);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn declare_stamps_only_the_tenants_whose_route_changes(pool: PgPool) {
    tenants::declare(&pool, &names(&["a", "b", "c"]), "gateway").await.unwrap();
    tenants::declare(&pool, &names(&["a", "b"]), "gateway").await.unwrap();
    sqlx::query("UPDATE dedicated_tenants SET changed_at = now() - interval '1 hour'").execute(&pool).await.unwrap();
    let before = changed_at(&pool).await;

    // a stays, b becomes shared, c (shared) becomes dedicated again, d is new.
    tenants::declare(&pool, &names(&["a", "c", "d"]), "gateway").await.unwrap();
    let after = changed_at(&pool).await;
    assert_eq!(after.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    assert_eq!(after[0], before[0], "a's route did not change");
    for (tenant, at) in &after[1..] {
        assert!(*at > before[0].1, "{tenant}'s route changed but changed_at was not stamped");
    }
}

//! [`crate::store::keys`]: a created key is found by its token's hash with
//! what it was created for, a revoked one is not, bootstrap stores its token
//! once, and each change writes one audit row.

use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{self, Scope};
use crate::store::audit;
use crate::store::keys::{self, Bootstrap, NewKey, Revoked};

fn new_key(tenant: &str) -> NewKey {
    NewKey {
        tenant: tenant.into(),
        name: "billing service".into(),
        scopes: vec![Scope::Submit, Scope::Read],
        queues: Some(vec!["emails".into()]),
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_created_keys_token_hash_finds_it_with_its_tenant_scopes_and_queues(pool: PgPool) {
    let created = keys::create(&pool, &new_key("acme"), "cli").await.unwrap();
    assert!(created.token.starts_with(auth::TOKEN_PREFIX), "{}", created.token);
    assert_eq!(created.key.token_prefix, auth::token_prefix(&created.token));
    assert_eq!(created.key.created_by, "cli");
    assert_eq!(created.key.revoked_at, None);

    let found = keys::find(&pool, &auth::token_hash(&created.token)).await.unwrap().expect("the new key");
    assert_eq!(found.id, created.key.id);
    assert_eq!(found.tenant, "acme");
    assert_eq!(found.name, "billing service");
    assert_eq!(found.scopes, [Scope::Submit, Scope::Read]);
    assert_eq!(found.queues, Some(vec!["emails".to_string()]));
    // Another token, or the token itself instead of its hash, finds nothing.
    assert!(keys::find(&pool, &auth::token_hash(&auth::new_token())).await.unwrap().is_none());
    assert!(keys::find(&pool, created.token.as_bytes()).await.unwrap().is_none());

    // Every queue: `None` is kept as `None`, not as an empty list.
    let everywhere = NewKey { queues: None, ..new_key("acme") };
    let other = keys::create(&pool, &everywhere, "cli").await.unwrap();
    assert_ne!(other.token, created.token);
    let found = keys::find(&pool, &auth::token_hash(&other.token)).await.unwrap().unwrap();
    assert_eq!((found.id, found.queues), (other.key.id, None));
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn list_shows_keys_newest_first_and_filters_by_tenant(pool: PgPool) {
    let first = keys::create(&pool, &new_key("acme"), "cli").await.unwrap().key;
    let second = keys::create(&pool, &new_key("other"), "cli").await.unwrap().key;
    let third = keys::create(&pool, &new_key("acme"), "cli").await.unwrap().key;
    let ids = |v: Vec<keys::ApiKey>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(ids(keys::list(&pool, None).await.unwrap()), [third.id, second.id, first.id]);
    assert_eq!(ids(keys::list(&pool, Some("acme")).await.unwrap()), [third.id, first.id]);
    assert!(keys::list(&pool, Some("nobody")).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_revoked_key_is_not_found_and_a_second_revoke_says_already(pool: PgPool) {
    let created = keys::create(&pool, &new_key("acme"), "cli").await.unwrap();
    let kept = keys::create(&pool, &new_key("acme"), "cli").await.unwrap();
    let hash = auth::token_hash(&created.token);

    match keys::revoke(&pool, created.key.id, "key:admin", |_, _| true).await.unwrap() {
        Revoked::Done(k) => assert!(k.id == created.key.id && k.revoked_at.is_some(), "{k:?}"),
        other => panic!("expected Done, got {other:?}"),
    }
    assert!(keys::find(&pool, &hash).await.unwrap().is_none());
    // Only that key: the other one still works.
    assert!(keys::find(&pool, &auth::token_hash(&kept.token)).await.unwrap().is_some());

    match keys::revoke(&pool, created.key.id, "key:admin", |_, _| true).await.unwrap() {
        Revoked::Already(k) => assert!(k.id == created.key.id && k.revoked_at.is_some(), "{k:?}"),
        other => panic!("expected Already, got {other:?}"),
    }
    assert!(matches!(keys::revoke(&pool, Uuid::now_v7(), "key:admin", |_, _| true).await.unwrap(), Revoked::NotFound));
    // Listings still show it, as revoked.
    let listed = keys::list(&pool, None).await.unwrap();
    let revoked = listed.iter().find(|k| k.id == created.key.id).expect("listed");
    assert!(revoked.revoked_at.is_some());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn bootstrap_stores_its_token_once_and_a_revoked_one_stays_revoked(pool: PgPool) {
    let token = auth::new_token();
    assert_eq!(keys::bootstrap(&pool, &token).await.unwrap(), Bootstrap::Added);
    assert_eq!(keys::bootstrap(&pool, &token).await.unwrap(), Bootstrap::Exists);
    assert_eq!(keys::list(&pool, None).await.unwrap().len(), 1);

    let key = keys::find(&pool, &auth::token_hash(&token)).await.unwrap().expect("the bootstrap key");
    assert_eq!(key.tenant, auth::DEFAULT_TENANT);
    assert_eq!(key.scopes, [Scope::Admin, Scope::Cluster]);
    assert_eq!(key.queues, None);
    assert_eq!((key.name.as_str(), key.created_by.as_str()), ("bootstrap", "bootstrap"));

    assert!(matches!(keys::revoke(&pool, key.id, "cli", |_, _| true).await.unwrap(), Revoked::Done(_)));
    assert_eq!(keys::bootstrap(&pool, &token).await.unwrap(), Bootstrap::Exists);
    assert!(keys::find(&pool, &auth::token_hash(&token)).await.unwrap().is_none());
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn each_key_change_writes_one_audit_row_without_the_token(pool: PgPool) {
    let bootstrap_token = auth::new_token();
    keys::bootstrap(&pool, &bootstrap_token).await.unwrap();
    let created = keys::create(&pool, &new_key("acme"), "cli").await.unwrap();
    keys::revoke(&pool, created.key.id, "key:admin", |_, _| true).await.unwrap();
    // What changes nothing records nothing.
    keys::revoke(&pool, created.key.id, "key:admin", |_, _| true).await.unwrap();
    keys::revoke(&pool, Uuid::now_v7(), "key:admin", |_, _| true).await.unwrap();
    keys::bootstrap(&pool, &bootstrap_token).await.unwrap();

    let log = audit::list(&pool, 100, None, None).await.unwrap();
    let rows: Vec<_> = log.iter().map(|e| (e.actor.as_str(), e.action.as_str(), e.tenant.as_deref())).collect();
    assert_eq!(
        rows,
        [
            ("key:admin", "key.revoke", Some("acme")),
            ("cli", "key.create", Some("acme")),
            ("bootstrap", "key.create", Some(auth::DEFAULT_TENANT)),
        ]
    );
    let id = created.key.id.to_string();
    assert_eq!(log[0].target.as_deref(), Some(id.as_str()));
    assert_eq!(log[1].target.as_deref(), Some(id.as_str()));
    assert_eq!(log[1].detail["name"], "billing service");
    assert_eq!(log[1].detail["scopes"], serde_json::json!(["submit", "read"]));
    assert_eq!(log[1].detail["token_prefix"], created.key.token_prefix);
    for entry in &log {
        let detail = entry.detail.to_string();
        assert!(!detail.contains(&created.token) && !detail.contains(&bootstrap_token), "{detail}");
    }
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn a_bootstrap_key_stored_without_cluster_is_given_it_once(pool: PgPool) {
    let token = auth::new_token();
    // As an earlier release stored it: `admin` only.
    sqlx::query("INSERT INTO api_keys (id, tenant, name, token_hash, token_prefix, scopes, created_by) VALUES ($1, 'default', 'bootstrap', $2, 'p', '{admin}', 'bootstrap')")
        .bind(Uuid::now_v7())
        .bind(auth::token_hash(&token))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(keys::bootstrap(&pool, &token).await.unwrap(), Bootstrap::Upgraded);
    assert_eq!(keys::bootstrap(&pool, &token).await.unwrap(), Bootstrap::Exists);
    let key = keys::find(&pool, &auth::token_hash(&token)).await.unwrap().unwrap();
    assert_eq!(key.scopes, [Scope::Admin, Scope::Cluster]);
    let log = audit::list(&pool, 10, None, None).await.unwrap();
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["key.upgrade"]);
}

#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn revoke_tells_whether_the_key_is_its_tenants_last_admin(pool: PgPool) {
    let admin = |tenant: &str, scopes: Vec<Scope>| NewKey { scopes, ..new_key(tenant) };
    let a = keys::create(&pool, &admin("acme", vec![Scope::Admin]), "cli").await.unwrap().key;
    let b = keys::create(&pool, &admin("acme", vec![Scope::Cluster]), "cli").await.unwrap().key;
    let reader = keys::create(&pool, &admin("acme", vec![Scope::Read]), "cli").await.unwrap().key;
    keys::create(&pool, &admin("beta", vec![Scope::Admin]), "cli").await.unwrap();
    let mut seen = Vec::new();
    for id in [reader.id, a.id, b.id] {
        let r = keys::revoke(&pool, id, "cli", |_, last| {
            seen.push(last);
            !last
        })
        .await
        .unwrap();
        assert_eq!(matches!(r, Revoked::Done(_)), id != b.id, "{r:?}");
    }
    // The reader administers nothing; `a` had `b` beside it; `b` is the last (beta's admin does not count).
    assert_eq!(seen, [false, false, true]);
    let acme = keys::list(&pool, Some("acme")).await.unwrap();
    assert!(acme.iter().any(|k| k.id == b.id && k.revoked_at.is_none()));
}

/// The last `cluster` key is protected although its tenant keeps an admin:
/// without it no key administers every tenant.
#[sqlx::test(migrator = "crate::store::MIGRATOR")]
async fn revoke_tells_whether_the_key_is_the_last_cluster_key(pool: PgPool) {
    let key = |tenant: &str, scopes: Vec<Scope>| NewKey { scopes, ..new_key(tenant) };
    let first = keys::create(&pool, &key("default", vec![Scope::Cluster]), "cli").await.unwrap().key;
    let second = keys::create(&pool, &key("ops", vec![Scope::Cluster]), "cli").await.unwrap().key;
    keys::create(&pool, &key("default", vec![Scope::Admin]), "cli").await.unwrap();
    keys::create(&pool, &key("ops", vec![Scope::Admin]), "cli").await.unwrap();
    let mut seen = Vec::new();
    for id in [first.id, second.id] {
        let r = keys::revoke(&pool, id, "cli", |_, last| {
            seen.push(last);
            !last
        })
        .await
        .unwrap();
        assert_eq!(matches!(r, Revoked::Done(_)), id == first.id, "{r:?}");
    }
    // `first` had `second` beside it (in another tenant); `second` is the last.
    assert_eq!(seen, [false, true]);
}

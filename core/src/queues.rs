//! Declared queues. The gateways' `--queues` is the one list of queues: a
//! gateway creates their topics at start, refuses submissions to any other
//! queue (422), and records the list in PostgreSQL so a worker can check its
//! own `--queues` against it at start.

use sqlx::PgPool;

/// The queues among `wanted` that are not in `declared`, in `wanted`'s order.
pub fn undeclared<'a>(declared: &[String], wanted: &'a [String]) -> Vec<&'a str> {
    wanted.iter().filter(|q| !declared.contains(q)).map(String::as_str).collect()
}

/// Logs an error naming each of `queues` (a worker's `--queues`) that no
/// gateway declared: no task can be submitted to such a queue, so a worker
/// serving it waits for nothing (usually a typo, or a gateway not updated).
/// Never fails: when the list cannot be read, or no gateway has started yet,
/// it says so with a warning and the worker runs on.
pub async fn warn_undeclared(pool: &PgPool, queues: &[String]) {
    match crate::store::declared_queues(pool).await {
        Ok(declared) if declared.is_empty() => tracing::warn!(
            ?queues,
            "no gateway has declared its queues yet, so --queues cannot be checked; \
             a gateway accepts only the queues in its own --queues (YADTQ_QUEUES)"
        ),
        Ok(declared) => {
            let missing = undeclared(&declared, queues);
            if !missing.is_empty() {
                tracing::error!(
                    undeclared = ?missing,
                    ?declared,
                    "queues not declared by any gateway: no task can be submitted to them; \
                     add them to the gateways' --queues (YADTQ_QUEUES) or fix this worker's --queues"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the declared queues; --queues not checked"),
    }
}

#[cfg(test)]
mod tests {
    use super::undeclared;

    #[test]
    fn names_only_the_missing_queues() {
        let declared = vec!["default".to_string(), "emails".to_string()];
        let wanted = vec!["emails".to_string(), "reprots".to_string(), "default".to_string()];
        assert_eq!(undeclared(&declared, &wanted), ["reprots"]);
        assert!(undeclared(&declared, &declared).is_empty());
    }
}

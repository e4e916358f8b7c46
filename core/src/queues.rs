//! Declared queues. The gateways' `--queues` is the one list of queues: a
//! gateway creates their topics at start, refuses submissions to any other
//! queue (422), and records the list in PostgreSQL so a worker can check its
//! own `--queues` against it at start.

use sqlx::PgPool;

/// The queues among `wanted` that are not in `declared`, in `wanted`'s order.
pub(crate) fn undeclared<'a>(declared: &[String], wanted: &'a [String]) -> Vec<&'a str> {
    wanted.iter().filter(|q| !declared.contains(q)).map(String::as_str).collect()
}

/// Checks `queues` (a worker's `--queues`) against the declared list and
/// returns those whose topics the worker may create: the declared ones. Logs
/// an error naming each queue no gateway declared: no task can be submitted
/// to it, so a worker serving it waits for nothing (usually a typo, or a
/// gateway not updated), and its topic is not created. Never fails: when the
/// list cannot be read, or no gateway has started yet, it says so with a
/// warning and returns all of `queues`.
pub async fn check_declared(pool: &PgPool, queues: &[String]) -> Vec<String> {
    match crate::store::queues::declared(pool).await {
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
                    "queues not declared by any gateway: no task can be submitted to them and their topics \
                     are not created; add them to the gateways' --queues (YADTQ_QUEUES) or fix this worker's --queues"
                );
            }
            return queues.iter().filter(|q| declared.contains(q)).cloned().collect();
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the declared queues; --queues not checked"),
    }
    queues.to_vec()
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

//! Checks at start that the broker accepts the worker's consumer settings, so
//! a misconfigured worker stops with a message saying what to change instead
//! of looking alive while it never joins its group.

use std::ops::RangeInclusive;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::config::WorkerConfig;

/// The broker's bounds on a consumer's `session.timeout.ms` (its
/// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`).
pub type SessionBounds = RangeInclusive<u32>;

/// Reads the session-timeout bounds of one broker (DescribeConfigs).
/// `Ok(None)` when the broker does not report them (e.g. not authorised to
/// describe its configuration); errors when the broker cannot be reached
/// within `timeout`.
pub async fn session_bounds(cfg: &WorkerConfig, timeout: Duration) -> anyhow::Result<Option<SessionBounds>> {
    let common = &cfg.common;
    let admin: AdminClient<DefaultClientContext> = yadtq_core::kafka::apply_user_options(
        common,
        &mut yadtq_core::kafka::client_config(common, "yadtq-worker-preflight"),
    )
    .create()?;
    // Metadata is fetched with a blocking call: the client goes to a blocking thread and back.
    let (admin, meta) = tokio::task::spawn_blocking(move || {
        let meta = admin.inner().fetch_metadata(None, timeout);
        (admin, meta)
    })
    .await?;
    let meta = meta?;
    let Some(broker) = meta.brokers().first().map(|b| b.id()) else {
        return Ok(None);
    };
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let described = admin.describe_configs(&[ResourceSpecifier::Broker(broker)], &opts).await?;
    let Some(Ok(resource)) = described.into_iter().next() else {
        return Ok(None);
    };
    let value = |name: &str| resource.get(name).and_then(|e| e.value.as_deref()).and_then(|v| v.parse::<u32>().ok());
    Ok(match (value("group.min.session.timeout.ms"), value("group.max.session.timeout.ms")) {
        (Some(min), Some(max)) => Some(min..=max),
        _ => None,
    })
}

/// Checks `--kafka-session-timeout-ms` against the broker's `bounds`; the
/// error names both settings and what to change.
pub fn check_session_timeout(session_ms: u32, dead_after: Duration, bounds: &SessionBounds) -> anyhow::Result<()> {
    anyhow::ensure!(
        bounds.contains(&session_ms),
        "--kafka-session-timeout-ms / YADTQ_KAFKA_SESSION_TIMEOUT_MS ({session_ms} ms) is outside what the broker \
         accepts (group.min.session.timeout.ms = {}, group.max.session.timeout.ms = {}): the worker could never \
         join its consumer group. Set it within that range and below --dead-after ({} s), or change the broker's \
         group.min/max.session.timeout.ms",
        bounds.start(),
        bounds.end(),
        dead_after.as_secs_f64()
    );
    Ok(())
}

/// Consumer errors that no retry can fix: the broker refuses the group
/// settings themselves. The worker stops on them rather than never joining.
pub fn is_fatal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::InvalidSessionTimeout
            | RDKafkaErrorCode::InvalidGroupId
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::InconsistentGroupProtocol
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_timeout_outside_the_broker_bounds_is_refused_with_what_to_change() {
        let d = Duration::from_secs(10);
        assert!(check_session_timeout(6000, d, &(6000..=1_800_000)).is_ok());
        let e = check_session_timeout(3000, d, &(6000..=1_800_000)).unwrap_err().to_string();
        assert!(e.contains("YADTQ_KAFKA_SESSION_TIMEOUT_MS (3000 ms)"), "{e}");
        assert!(e.contains("group.min.session.timeout.ms = 6000"), "{e}");
        assert!(check_session_timeout(2_000_000, d, &(6000..=1_800_000)).is_err());
    }
}

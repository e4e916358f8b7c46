//! Periodic passes (the maintenance services, the lease, the dedicated
//! tenants' refresh, heartbeats): one ticker shape for all of them.

use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// A ticker whose first tick is at once and then every `period`. A tick
/// missed because a pass ran long is delayed, not made up in a burst: a
/// slow PostgreSQL must not get several passes back to back.
pub fn every(period: Duration) -> Interval {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Waits for `ticker`'s next tick; false once `shutdown` is cancelled (at
/// once, not at the next tick), so a loop reads
/// `while next_tick(&mut ticker, &shutdown).await { … }`.
pub(crate) async fn next_tick(ticker: &mut Interval, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = ticker.tick() => true,
    }
}

//! What a fire does, decided in memory from a schedule's state: which runs
//! become tasks, which are buffered or skipped (and why), and where the
//! schedule's grid goes next. The store applies a [`Plan`] in one
//! conditional statement ([`crate::store::schedules::apply`]).
//!
//! Catch-up: grid ticks older than the catch-up window are skipped and
//! counted (reason `catchup_window`); the newer due ticks go through the
//! overlap policy. `allow_all` and `buffer_all` take every one of them (in
//! order); `skip`, `buffer_one` and `cancel_other` take only the newest and
//! skip the older ones (reason `overlap`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::spec::Spec;

/// Most grid ticks one pass considers for one schedule (a per-second
/// schedule with a 60 s window has 61); older ones are counted as skipped.
pub(crate) const MAX_TICKS_PER_PASS: usize = 1000;
/// Most skipped ticks one pass counts (a cron pattern is walked to count them).
const COUNT_CAP: u64 = 1_000_000;

/// What happens when a run is due while the schedule's previous task is not terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The run is skipped (counted, reason `overlap`).
    #[default]
    Skip,
    /// The latest such run waits and fires once the previous task ends; an
    /// older waiting one is skipped.
    BufferOne,
    /// Every such run waits; they fire in order, one after another.
    BufferAll,
    /// The previous task is cancelled (as `POST /tasks/{id}/cancel` does) and the run fires.
    CancelOther,
    /// The run fires anyway.
    AllowAll,
}

impl Overlap {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::BufferOne => "buffer_one",
            Self::BufferAll => "buffer_all",
            Self::CancelOther => "cancel_other",
            Self::AllowAll => "allow_all",
        }
    }

    /// The policy named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Skip, Self::BufferOne, Self::BufferAll, Self::CancelOther, Self::AllowAll]
            .into_iter()
            .find(|o| o.as_str() == s)
    }

    /// True when every due run is taken, not only the newest.
    fn takes_all(self) -> bool {
        matches!(self, Self::AllowAll | Self::BufferAll)
    }
}

/// How a run came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FireKind {
    /// A tick of the schedule's grid.
    Tick,
    /// `POST /schedules/{id}/trigger`.
    Trigger,
    /// `POST /schedules/{id}/backfill`.
    Backfill,
}

impl FireKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tick => "tick",
            Self::Trigger => "trigger",
            Self::Backfill => "backfill",
        }
    }
}

/// The schedule's state a plan starts from.
#[derive(Debug, Clone)]
pub struct State {
    /// The schedule's policy.
    pub overlap: Overlap,
    /// Grid ticks older than this (before the pass's `now`) are skipped.
    pub catchup_window: Duration,
    /// The next grid tick not yet fired or skipped.
    pub next_tick: Option<DateTime<Utc>>,
    /// No grid tick after this fires.
    pub end_at: Option<DateTime<Utc>>,
    /// Runs left before `max_runs` (None: no limit).
    pub runs_left: Option<i64>,
    /// Id suffixes of buffered runs, oldest first.
    pub buffered: Vec<String>,
    /// The last fired task is not terminal.
    pub running: bool,
}

/// One line of the fires history.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The tick (the first one, for a row standing for many).
    pub tick: DateTime<Utc>,
    /// How the run came about.
    pub kind: FireKind,
    /// `fired`, `skipped` or `buffered`.
    pub outcome: &'static str,
    /// Why it was skipped.
    pub reason: Option<&'static str>,
    /// How many ticks the line stands for.
    pub ticks: i64,
    /// The fired task's id suffix (after `sched:<id>:`).
    pub suffix: Option<String>,
}

/// A run to insert as a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Id suffix: the tick's Unix seconds, or a trigger's own.
    pub suffix: String,
    /// The tick it is for.
    pub scheduled_for: DateTime<Utc>,
    /// How it came about.
    pub kind: FireKind,
}

/// What one fire changes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Runs that become tasks, in order.
    pub runs: Vec<Run>,
    /// The fires history lines, in order.
    pub log: Vec<Entry>,
    /// The schedule's next grid tick afterwards.
    pub next_tick: Option<DateTime<Utc>>,
    /// The latest grid tick fired or skipped, when this plan moved the grid.
    pub last_tick: Option<DateTime<Utc>>,
    /// Buffered runs afterwards.
    pub buffered: Vec<String>,
    /// Cancel the last fired task first (`cancel_other`).
    pub cancel_last: bool,
    /// Ticks skipped by this plan.
    pub skipped: i64,
}

impl Plan {
    /// True when applying it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty() && self.runs.is_empty()
    }

    fn skip(&mut self, tick: DateTime<Utc>, kind: FireKind, reason: &'static str, ticks: i64) {
        if ticks > 0 {
            self.log.push(Entry { tick, kind, outcome: "skipped", reason: Some(reason), ticks, suffix: None });
            self.skipped += ticks;
        }
    }

    fn fire(&mut self, run: Run, runs_left: &mut Option<i64>) {
        if runs_left.is_some_and(|n| n <= 0) {
            return self.skip(run.scheduled_for, run.kind, "max_runs", 1);
        }
        if let Some(n) = runs_left.as_mut() {
            *n -= 1;
        }
        self.log.push(Entry {
            tick: run.scheduled_for,
            kind: run.kind,
            outcome: "fired",
            reason: None,
            ticks: 1,
            suffix: Some(run.suffix.clone()),
        });
        self.runs.push(run);
    }

    /// Puts `runs` (in order) through `overlap`, given whether the last task still runs.
    fn admit(&mut self, runs: Vec<Run>, overlap: Overlap, mut running: bool, runs_left: &mut Option<i64>) {
        let mut runs = runs;
        if !overlap.takes_all() && runs.len() > 1 {
            let newest = runs.split_off(runs.len() - 1);
            for r in runs {
                self.skip(r.scheduled_for, r.kind, "overlap", 1);
            }
            runs = newest;
        }
        for run in runs {
            match overlap {
                Overlap::AllowAll => self.fire(run, runs_left),
                _ if !running => {
                    self.fire(run, runs_left);
                    running = !self.runs.is_empty();
                }
                Overlap::Skip => self.skip(run.scheduled_for, run.kind, "overlap", 1),
                Overlap::CancelOther => {
                    self.cancel_last = true;
                    self.fire(run, runs_left);
                }
                Overlap::BufferOne | Overlap::BufferAll => {
                    if overlap == Overlap::BufferOne {
                        for old in std::mem::take(&mut self.buffered) {
                            let tick = super::tick_of_suffix(&old).unwrap_or(run.scheduled_for);
                            self.skip(tick, run.kind, "overlap", 1);
                        }
                    }
                    self.log.push(Entry {
                        tick: run.scheduled_for,
                        kind: run.kind,
                        outcome: "buffered",
                        reason: None,
                        ticks: 1,
                        suffix: Some(run.suffix.clone()),
                    });
                    self.buffered.push(run.suffix);
                }
            }
        }
    }
}

/// The leader's pass over one schedule at `now`: the buffered run that may
/// fire (the previous task has ended), then the grid ticks due up to `now`.
pub(crate) fn grid_pass(spec: &Spec, st: &State, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan { next_tick: st.next_tick, buffered: st.buffered.clone(), ..Plan::default() };
    let mut runs_left = st.runs_left;
    let mut running = st.running;
    if !running && !plan.buffered.is_empty() {
        let suffix = plan.buffered.remove(0);
        if let Some(tick) = super::tick_of_suffix(&suffix) {
            let kind = if suffix.starts_with('t') { FireKind::Trigger } else { FireKind::Tick };
            plan.fire(Run { suffix, scheduled_for: tick, kind }, &mut runs_left);
            running = true;
        }
    }
    let Some(first) = st.next_tick.filter(|t| *t <= now) else { return plan };
    let until = st.end_at.map_or(now, |end| end.min(now));
    let window = chrono::Duration::from_std(st.catchup_window).unwrap_or(chrono::Duration::MAX);
    let window_start = now.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC);
    // The oldest tick that may still run: the first at or after the window's start.
    let cut = if first < window_start { spec.first_from(window_start) } else { Some(first) };
    if first < window_start {
        let old_end = cut.map_or(until, |c| (c - chrono::Duration::seconds(1)).min(until));
        plan.skip(first, FireKind::Tick, "catchup_window", spec.count_between(first, old_end, COUNT_CAP) as i64);
    }
    let (ticks, more) = match cut {
        Some(cut) => spec.between(cut, until, MAX_TICKS_PER_PASS),
        None => (vec![], false),
    };
    if let (true, Some(newest)) = (more, ticks.last()) {
        // More due ticks than a pass takes: the newer rest are counted as skipped.
        let rest_from = *newest + chrono::Duration::seconds(1);
        plan.skip(rest_from, FireKind::Tick, "catchup_window", spec.count_between(rest_from, until, COUNT_CAP) as i64);
    }
    plan.last_tick = match ticks.last() {
        Some(t) if !more => Some(*t),
        _ if plan.skipped > 0 || more => Some(until),
        _ => None,
    };
    let runs: Vec<Run> = ticks
        .into_iter()
        .map(|t| Run { suffix: super::tick_suffix(t), scheduled_for: t, kind: FireKind::Tick })
        .collect();
    plan.admit(runs, st.overlap, running, &mut runs_left);
    // Every tick up to `now` has been fired, buffered or skipped.
    plan.next_tick = spec.next_after(now).filter(|n| st.end_at.is_none_or(|end| *n <= end));
    if runs_left.is_some_and(|n| n <= 0) {
        plan.next_tick = None;
    }
    plan
}

/// A trigger or a backfill: `runs` (in order) through `overlap`.
pub fn manual(st: &State, runs: Vec<Run>, overlap: Overlap) -> Plan {
    let mut plan = Plan { next_tick: st.next_tick, buffered: st.buffered.clone(), ..Plan::default() };
    let mut runs_left = st.runs_left;
    let running = st.running || !st.buffered.is_empty();
    plan.admit(runs, overlap, running, &mut runs_left);
    plan
}

#[cfg(test)]
mod tests;

//! Catch-up and overlap decisions, without a database.

use super::*;
use crate::schedule::spec::SpecInput;
use chrono::TimeZone;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn per_second() -> Spec {
    Spec::parse(&SpecInput { cron: None, every: Some(1), offset: None }, None).unwrap()
}

fn state(overlap: Overlap, next: i64, running: bool) -> State {
    State {
        overlap,
        catchup_window: Duration::from_secs(6),
        next_tick: Some(at(next)),
        end_at: None,
        runs_left: None,
        buffered: vec![],
        running,
    }
}

fn fired(plan: &Plan) -> Vec<i64> {
    plan.runs.iter().map(|r| r.scheduled_for.timestamp() - 1_800_000_000).collect()
}

fn skipped(plan: &Plan, reason: &str) -> i64 {
    plan.log.iter().filter(|e| e.reason == Some(reason)).map(|e| e.ticks).sum()
}

#[test]
fn one_due_tick_fires_and_the_grid_moves_past_now() {
    let plan = grid_pass(&per_second(), &state(Overlap::Skip, 10, false), at(10));
    assert_eq!(fired(&plan), [10]);
    assert_eq!(plan.next_tick, Some(at(11)));
    assert_eq!(plan.last_tick, Some(at(10)));
    let idle = grid_pass(&per_second(), &state(Overlap::Skip, 11, false), at(10));
    assert!(idle.is_empty() && idle.next_tick == Some(at(11)));
}

#[test]
fn after_downtime_ticks_past_the_window_are_counted_and_the_rest_follow_the_policy() {
    // Down from tick 0 to 12 with a 6 s window: ticks 0..=5 are too old.
    let all = grid_pass(&per_second(), &state(Overlap::AllowAll, 0, false), at(12));
    assert_eq!(fired(&all), [6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(skipped(&all, "catchup_window"), 6);
    assert_eq!(all.next_tick, Some(at(13)));
    let skip = grid_pass(&per_second(), &state(Overlap::Skip, 0, false), at(12));
    assert_eq!(fired(&skip), [12], "only the newest runs");
    assert_eq!((skipped(&skip, "catchup_window"), skipped(&skip, "overlap")), (6, 6));
    assert_eq!(skip.skipped, 12);
    // A pass a fraction of a second past a tick: the window's start is not a
    // tick, and the tick just before it is old (counted, not run).
    let late = at(12) + chrono::Duration::milliseconds(600);
    let all = grid_pass(&per_second(), &state(Overlap::AllowAll, 0, false), late);
    assert_eq!(fired(&all), [7, 8, 9, 10, 11, 12]);
    assert_eq!(skipped(&all, "catchup_window"), 7);
}

#[test]
fn each_overlap_policy_while_the_last_task_runs() {
    let s = per_second();
    let skip = grid_pass(&s, &state(Overlap::Skip, 5, true), at(5));
    assert!(fired(&skip).is_empty() && skipped(&skip, "overlap") == 1);
    let allow = grid_pass(&s, &state(Overlap::AllowAll, 5, true), at(5));
    assert_eq!(fired(&allow), [5]);
    let cancel = grid_pass(&s, &state(Overlap::CancelOther, 5, true), at(5));
    assert!(cancel.cancel_last && fired(&cancel) == [5]);
    let mut one = state(Overlap::BufferOne, 5, true);
    one.buffered = vec!["1800000004".into()];
    let one = grid_pass(&s, &one, at(5));
    assert_eq!((one.buffered.clone(), skipped(&one, "overlap")), (vec!["1800000005".to_string()], 1));
    let mut all = state(Overlap::BufferAll, 5, true);
    all.buffered = vec!["1800000004".into()];
    let all = grid_pass(&s, &all, at(5));
    assert_eq!(all.buffered, ["1800000004", "1800000005"]);
    assert!(fired(&all).is_empty());
}

#[test]
fn buffered_runs_fire_in_order_once_the_last_task_ended() {
    let mut st = state(Overlap::BufferAll, 9, false);
    st.buffered = vec!["1800000004".into(), "1800000005".into()];
    let plan = grid_pass(&per_second(), &st, at(8));
    assert_eq!(fired(&plan), [4]);
    assert_eq!(plan.buffered, ["1800000005"]);
    // A new tick in the same pass waits behind them.
    let plan = grid_pass(&per_second(), &st, at(9));
    assert_eq!(plan.buffered, ["1800000005", "1800000009"]);
}

#[test]
fn end_at_and_max_runs_stop_the_grid() {
    let mut st = state(Overlap::AllowAll, 0, false);
    st.end_at = Some(at(2));
    let plan = grid_pass(&per_second(), &st, at(4));
    assert_eq!((fired(&plan), plan.next_tick), (vec![0, 1, 2], None));
    let mut st = state(Overlap::AllowAll, 0, false);
    st.runs_left = Some(2);
    let plan = grid_pass(&per_second(), &st, at(3));
    assert_eq!((fired(&plan), plan.next_tick), (vec![0, 1], None));
}

#[test]
fn a_trigger_goes_through_the_policy_too() {
    let run = Run { suffix: "t1800000003-abcdef12".into(), scheduled_for: at(3), kind: FireKind::Trigger };
    let skip = manual(&state(Overlap::Skip, 9, true), vec![run.clone()], Overlap::Skip);
    assert!(skip.runs.is_empty() && skip.skipped == 1);
    let free = manual(&state(Overlap::Skip, 9, false), vec![run], Overlap::Skip);
    assert_eq!(fired(&free), [3]);
    assert_eq!(free.next_tick, Some(at(9)), "the grid does not move");
}

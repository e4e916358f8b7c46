//! Cron parsing, DST on real zones across both transitions, and the `every` grid.

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
}

fn cron(pattern: &str, tz: &str) -> Spec {
    Spec::parse(&SpecInput { cron: Some(pattern.into()), every: None, offset: None }, Some(tz)).expect("valid")
}

fn every(every: i64, offset: Option<i64>) -> Result<Spec, SpecError> {
    Spec::parse(&SpecInput { cron: None, every: Some(every), offset }, None)
}

fn ticks(spec: &Spec, after: &str, n: usize) -> Vec<String> {
    spec.upcoming(utc(after), n).iter().map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).collect()
}

#[test]
fn five_and_six_field_patterns_and_nicknames_parse() {
    let c = cron("*/5 * * * *", "UTC");
    assert_eq!(ticks(&c, "2026-01-01T00:00:00Z", 2), ["2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"]);
    let c = cron("*/5 * * * * *", "UTC");
    assert_eq!(ticks(&c, "2026-01-01T00:00:00Z", 2), ["2026-01-01T00:00:05Z", "2026-01-01T00:00:10Z"]);
    assert_eq!(ticks(&cron("@daily", "UTC"), "2026-01-01T00:00:00Z", 1), ["2026-01-02T00:00:00Z"]);
    assert_eq!(ticks(&cron("0 9 * * MON", "UTC"), "2026-01-01T00:00:00Z", 1), ["2026-01-05T09:00:00Z"]);
}

#[test]
fn an_invalid_pattern_names_the_cron_field_and_its_position() {
    let e = |p: &str| Spec::parse(&SpecInput { cron: Some(p.into()), every: None, offset: None }, None).unwrap_err();
    let m = e("61 * * * *");
    assert_eq!(m.field, "spec.cron");
    assert!(m.message.contains("field 1 (minute) '61'"), "{}", m.message);
    assert!(e("* 25 * * *").message.contains("field 2 (hour) '25'"));
    assert!(e("60 * * * * *").message.contains("field 1 (second) '60'"));
    assert!(e("* * * 13 *").message.contains("field 4 (month) '13'"));
    assert!(e("* * * * * * *").message.contains("has 7 fields"));
    assert!(e("* * *").message.contains("has 3 fields"));
    assert!(e("").message.contains("has 0 fields"));
}

#[test]
fn spec_and_zone_errors_name_their_field() {
    let both = SpecInput { cron: Some("* * * * *".into()), every: Some(5), offset: None };
    assert_eq!(Spec::parse(&both, None).unwrap_err().field, "spec");
    let none = SpecInput { cron: None, every: None, offset: None };
    assert_eq!(Spec::parse(&none, None).unwrap_err().field, "spec");
    assert_eq!(every(0, None).unwrap_err().field, "spec.every");
    assert_eq!(every(10, Some(10)).unwrap_err().field, "spec.offset");
    assert_eq!(every(10, Some(-1)).unwrap_err().field, "spec.offset");
    let e = Spec::parse(&SpecInput { cron: Some("* * * * *".into()), every: None, offset: None }, Some("Mars/Olympus"));
    assert_eq!(e.unwrap_err().field, "timezone");
}

#[test]
fn every_is_a_grid_from_the_epoch_plus_offset() {
    let s = every(60, Some(15)).unwrap();
    assert_eq!(ticks(&s, "2026-01-01T10:00:00Z", 2), ["2026-01-01T10:00:15Z", "2026-01-01T10:01:15Z"]);
    assert_eq!(ticks(&s, "2026-01-01T10:00:15Z", 1), ["2026-01-01T10:01:15Z"], "strictly after");
    // A fraction of a second past a tick is still that tick's second.
    assert_eq!(s.next_after(utc("2026-01-01T10:00:15.7Z")), Some(utc("2026-01-01T10:01:15Z")));
    let seven = every(7, None).unwrap();
    assert_eq!(seven.next_after(DateTime::UNIX_EPOCH).map(|t| t.timestamp()), Some(7));
    // Every process computes the same grid, whatever it started from.
    assert_eq!(seven.first_from(utc("2026-01-01T00:00:00Z")).unwrap().timestamp() % 7, 0);
    let (from, to) = (utc("2026-01-01T10:00:00Z"), utc("2026-01-01T10:10:00Z"));
    assert_eq!(s.count_between(from, to, u64::MAX), 10);
    assert_eq!(s.between(from, to, 100).0.len(), 10);
    assert_eq!(s.between(from, to, 3), (s.upcoming(from, 3), true));
    let sec = every(1, None).unwrap();
    assert_eq!(sec.count_between(from, from, 10), 1, "both ends included");
    assert_eq!(sec.count_between(to, from, 10), 0);
    // The zone does not move an `every` grid.
    let input = SpecInput { cron: None, every: Some(3600), offset: None };
    let berlin = Spec::parse(&input, Some("Europe/Berlin")).unwrap();
    assert_eq!(berlin.next_after(utc("2026-03-29T00:30:00Z")), Some(utc("2026-03-29T01:00:00Z")));
}

#[test]
fn new_york_spring_forward_fixed_time_fires_at_the_end_of_the_gap() {
    // 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist that day.
    let s = cron("30 2 * * *", "America/New_York");
    assert_eq!(
        ticks(&s, "2026-03-07T00:00:00Z", 3),
        ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    // An interval pattern keeps 30 minutes of real time and skips 02:00 and 02:30.
    let i = cron("*/30 * * * *", "America/New_York");
    assert_eq!(
        ticks(&i, "2026-03-08T05:45:00Z", 4),
        ["2026-03-08T06:00:00Z", "2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"]
    );
}

#[test]
fn new_york_fall_back_fixed_time_fires_once_and_intervals_fire_in_both_passes() {
    // 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice (05:30 and 06:30 UTC).
    let s = cron("30 1 * * *", "America/New_York");
    assert_eq!(ticks(&s, "2026-11-01T00:00:00Z", 2), ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]);
    let i = cron("*/30 * * * *", "America/New_York");
    assert_eq!(
        ticks(&i, "2026-11-01T04:45:00Z", 5),
        [
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-01T07:00:00Z"
        ]
    );
}

#[test]
fn berlin_both_transitions_with_seconds() {
    // 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC).
    let s = cron("0 30 2 * * *", "Europe/Berlin");
    assert_eq!(
        ticks(&s, "2026-03-28T00:00:00Z", 3),
        ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    // 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens at 00:30 and 01:30 UTC; fires once.
    assert_eq!(
        ticks(&s, "2026-10-24T00:00:00Z", 3),
        ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
}

#[test]
fn lord_howe_half_hour_shift_both_ways() {
    // 2026-10-04 02:00 +10:30 -> 02:30 +11: 02:15 does not exist; fires at 02:30 +11.
    let s = cron("15 2 * * *", "Australia/Lord_Howe");
    assert_eq!(
        ticks(&s, "2026-10-02T00:00:00Z", 3),
        ["2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]
    );
    // 2026-04-05 02:00 +11 -> 01:30 +10:30: 01:45 happens twice (14:45 and 15:15 UTC); fires once.
    let f = cron("45 1 * * *", "Australia/Lord_Howe");
    assert_eq!(ticks(&f, "2026-04-04T00:00:00Z", 2), ["2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"]);
    // Every 15 minutes of real time through the repeated half hour.
    let i = cron("*/15 * * * *", "Australia/Lord_Howe");
    assert_eq!(
        ticks(&i, "2026-04-04T14:20:00Z", 5),
        [
            "2026-04-04T14:30:00Z",
            "2026-04-04T14:45:00Z",
            "2026-04-04T15:00:00Z",
            "2026-04-04T15:15:00Z",
            "2026-04-04T15:30:00Z"
        ]
    );
}

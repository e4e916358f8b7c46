//! Collected figures and the Markdown table.

use crate::stats::Summary;

/// How a figure is printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    PerSec,
    Ms,
    Secs,
    MiB,
    Count,
    Bytes,
    /// Share of one core, in percent.
    CorePct,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Unit::PerSec => "/s",
            Unit::Ms => "ms",
            Unit::Secs => "s",
            Unit::MiB => "MiB",
            Unit::Count => "",
            Unit::Bytes => "B",
            Unit::CorePct => "% core",
        }
    }

    pub fn fmt(self, v: f64) -> String {
        if v.is_nan() {
            return "n/a".into();
        }
        match self {
            Unit::PerSec | Unit::Bytes | Unit::CorePct => format!("{v:.0}"),
            Unit::Ms if v < 10.0 => format!("{v:.2}"),
            Unit::Ms => format!("{v:.1}"),
            Unit::Secs => format!("{v:.2}"),
            Unit::MiB | Unit::Count => format!("{v:.1}"),
        }
    }
}

/// A target the median must meet: below `value` (or above, when `above`).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub value: f64,
    pub above: bool,
}

/// One row: a figure of a scenario, its values over the runs (or pooled samples).
#[derive(Debug, Clone)]
pub struct Metric {
    pub scenario: String,
    pub name: String,
    pub unit: Unit,
    pub values: Vec<f64>,
    pub target: Option<Target>,
    /// Printed instead of figures: a measurement that should have been taken
    /// and was not (e.g. "n/a: POST /tasks/batch answers 500"). A problem.
    pub na: Option<String>,
    /// Printed instead of figures: a measurement left out on purpose (e.g.
    /// a gateway of the user's without the batch endpoint). Not a problem.
    pub skipped: Option<String>,
    /// An error count: any value above 0 is a problem (the figures around it
    /// were measured with failing requests or tasks).
    pub must_be_zero: bool,
}

/// Figures of one system (yadtq or Celery), in the order they were first added.
#[derive(Debug, Default, Clone)]
pub struct Results {
    pub metrics: Vec<Metric>,
}

impl Results {
    fn slot(&mut self, scenario: &str, name: &str, unit: Unit) -> &mut Metric {
        let i = match self.metrics.iter().position(|m| m.scenario == scenario && m.name == name) {
            Some(i) => i,
            None => {
                self.metrics.push(Metric {
                    scenario: scenario.into(),
                    name: name.into(),
                    unit,
                    values: Vec::new(),
                    target: None,
                    na: None,
                    skipped: None,
                    must_be_zero: false,
                });
                self.metrics.len() - 1
            }
        };
        &mut self.metrics[i]
    }

    /// Adds one value (one run's figure).
    pub fn add(&mut self, scenario: &str, name: &str, unit: Unit, v: f64) {
        self.slot(scenario, name, unit).values.push(v);
    }

    /// Adds pooled samples (e.g. every task's recovery time).
    pub fn extend(&mut self, scenario: &str, name: &str, unit: Unit, vs: &[f64]) {
        self.slot(scenario, name, unit).values.extend_from_slice(vs);
    }

    /// Adds one run's count of failed requests or tasks: a problem unless 0.
    pub fn errors(&mut self, scenario: &str, name: &str, count: f64) {
        let m = self.slot(scenario, name, Unit::Count);
        m.values.push(count);
        m.must_be_zero = true;
    }

    /// Marks a row whose measurement could not be taken, with the reason
    /// (listed under the report's problems).
    pub fn na(&mut self, scenario: &str, name: &str, why: &str) {
        self.slot(scenario, name, Unit::Count).na = Some(why.into());
    }

    /// Marks a row left out on purpose, with the reason (not a problem).
    pub fn skip(&mut self, scenario: &str, name: &str, why: &str) {
        self.slot(scenario, name, Unit::Count).skipped = Some(why.into());
    }

    /// What is wrong with these figures of `system` ("yadtq", "Celery"), one
    /// line each: rows printed n/a (marked so, or without a single sample),
    /// runs that produced no sample (NaN, e.g. a percentile of nothing), and
    /// error counts above 0. Rows marked [`Results::skip`] are fine; so are
    /// missed targets (a finding of the benchmark, not a fault of it).
    pub fn problems(&self, system: &str) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.metrics {
            let row = format!("{system} \"{}\" / \"{}\"", m.scenario, m.name);
            if m.skipped.is_some() {
                continue;
            }
            if let Some(why) = &m.na {
                out.push(format!("{row}: {why}"));
                continue;
            }
            let missing = m.values.iter().filter(|v| v.is_nan()).count();
            if missing == m.values.len() {
                out.push(format!("{row}: n/a: no samples"));
                continue;
            }
            if missing > 0 {
                out.push(format!("{row}: {missing} of {} values without samples (n/a)", m.values.len()));
            }
            if m.must_be_zero {
                let total: f64 = m.values.iter().filter(|v| !v.is_nan()).sum();
                if total > 0.0 {
                    out.push(format!("{row}: {total} (must be 0)"));
                }
            }
        }
        out
    }

    /// Sets the row's target (checked against the median).
    pub fn target(&mut self, scenario: &str, name: &str, unit: Unit, value: f64, above: bool) {
        self.slot(scenario, name, unit).target = Some(Target { value, above });
    }

    pub fn get(&self, scenario: &str, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.scenario == scenario && m.name == name)
    }

    /// Machine-readable dump (for `--json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.metrics
                .iter()
                .map(|m| {
                    let s = Summary::of(&m.values);
                    serde_json::json!({
                        "scenario": m.scenario, "figure": m.name, "unit": m.unit.suffix(),
                        "values": m.values, "min": s.map(|s| s.min), "median": s.map(|s| s.median),
                        "max": s.map(|s| s.max), "na": m.na, "skipped": m.skipped,
                    })
                })
                .collect(),
        )
    }
}

/// The Markdown table: yadtq min / median / max, Celery's median and the ratio.
pub fn table(yadtq: &Results, celery: &Results, runs: usize) -> String {
    let mut out = String::new();
    out.push_str(
        "| Scenario | Figure | min | median | max | n | Celery median | yadtq/Celery | target (median) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let _ = runs;
    // Grouped by scenario (labels start with the scenario's number), first-seen order within.
    let mut rows: Vec<&Metric> = yadtq.metrics.iter().collect();
    rows.sort_by_key(|m| m.scenario.split_whitespace().next().unwrap_or_default().to_string());
    for m in rows {
        let unit = m.unit.suffix();
        let name = if unit.is_empty() { m.name.clone() } else { format!("{} ({unit})", m.name) };
        let Some(s) = (m.na.is_none() && m.skipped.is_none()).then(|| Summary::of(&m.values)).flatten() else {
            let why = m.skipped.clone().or_else(|| m.na.clone()).unwrap_or_else(|| "n/a: no samples".into());
            out.push_str(&format!("| {} | {} | {why} | | | | | | |\n", m.scenario, m.name));
            continue;
        };
        let (c_med, ratio) = match celery.get(&m.scenario, &m.name).and_then(|c| Summary::of(&c.values)) {
            Some(c) if c.median != 0.0 && !c.median.is_nan() && !s.median.is_nan() => {
                (m.unit.fmt(c.median), format!("{:.2}×", s.median / c.median))
            }
            Some(c) => (m.unit.fmt(c.median), String::new()),
            None => (String::new(), String::new()),
        };
        let target = m
            .target
            .map(|t| {
                let met = if t.above { s.median > t.value } else { s.median < t.value };
                format!(
                    "{} {} {unit}: {}",
                    if t.above { ">" } else { "<" },
                    m.unit.fmt(t.value),
                    if met { "met" } else { "**missed**" }
                )
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | {name} | {} | {} | {} | {} | {c_med} | {ratio} | {target} |\n",
            m.scenario,
            m.unit.fmt(s.min),
            m.unit.fmt(s.median),
            m.unit.fmt(s.max),
            s.n
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-rate submit of scenario 1 as it was printed with every
    /// request refused: no latency sample, 200 errors.
    fn refused_submits() -> Results {
        let mut r = Results::default();
        r.add("1 submit @ 200 req/s", "accepted", Unit::PerSec, 0.0);
        r.add("1 submit @ 200 req/s", "latency p50", Unit::Ms, f64::NAN);
        r.errors("1 submit @ 200 req/s", "errors", 200.0);
        r
    }

    #[test]
    fn no_samples_and_errors_are_problems() {
        let p = refused_submits().problems("yadtq");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("latency p50") && p[0].contains("no samples"), "{p:?}");
        assert!(p[1].contains("errors") && p[1].contains("200"), "{p:?}");
        assert!(table(&refused_submits(), &Results::default(), 1).contains("n/a: no samples"));
    }

    #[test]
    fn a_row_without_values_or_marked_na_is_a_problem() {
        let mut r = Results::default();
        r.extend("4 long-poll", "answer after finish p50", Unit::Ms, &[]);
        r.na("1 submit batch", "accepted", "n/a: POST /tasks/batch answers 500");
        let p = r.problems("yadtq");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[1].contains("answers 500"), "{p:?}");
    }

    #[test]
    fn one_run_without_samples_among_others_is_a_problem() {
        let mut r = Results::default();
        for v in [2.0, f64::NAN, 3.0] {
            r.add("4 long-poll", "answer after finish p50", Unit::Ms, v);
        }
        assert_eq!(
            r.problems("yadtq"),
            ["yadtq \"4 long-poll\" / \"answer after finish p50\": 1 of 3 values without samples (n/a)"]
        );
    }

    #[test]
    fn skipped_rows_zero_errors_and_missed_targets_are_fine() {
        let mut r = Results::default();
        r.skip("1 submit batch", "accepted", "skipped: the gateway has no POST /tasks/batch (404)");
        r.errors("2 drain", "not success", 0.0);
        r.add("8 listing", "listings refused (503)", Unit::Count, 12.0); // counted, not an error
        r.add("4 fixed rate", "submit→finish p50", Unit::Ms, 50.0);
        r.target("4 fixed rate", "submit→finish p50", Unit::Ms, 20.0, false);
        assert_eq!(r.problems("yadtq"), Vec::<String>::new());
        let t = table(&r, &Results::default(), 1);
        assert!(
            t.contains("| skipped: the gateway has no POST /tasks/batch (404) |") && t.contains("**missed**"),
            "{t}"
        );
    }
}

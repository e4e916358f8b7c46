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
    /// Printed instead of figures (e.g. "n/a: no /tasks/batch endpoint").
    pub na: Option<String>,
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

    /// Marks a row that has no figures, with the reason.
    pub fn na(&mut self, scenario: &str, name: &str, why: &str) {
        self.slot(scenario, name, Unit::Count).na = Some(why.into());
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
                        "max": s.map(|s| s.max), "na": m.na,
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
        let Some(s) = m.na.is_none().then(|| Summary::of(&m.values)).flatten() else {
            let why = m.na.clone().unwrap_or_else(|| "n/a: no samples".into());
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

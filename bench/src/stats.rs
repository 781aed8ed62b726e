//! Repeated measurements and their summary (min, median, max).

use std::time::Duration;

/// What a figure's samples count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Wall time of one run, in seconds.
    Seconds,
    /// Wall time of one run, in milliseconds.
    Millis,
    /// A rate measured by one run (things per second).
    PerSecond,
    /// Memory, in MiB.
    MiB,
}

impl Unit {
    /// The unit as shown in tables.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::PerSecond => "/s",
            Unit::MiB => "MiB",
        }
    }

    /// True when smaller samples are better (times, memory).
    pub fn lower_is_better(self) -> bool {
        !matches!(self, Unit::PerSecond)
    }
}

/// One measured quantity: every run's sample, and what one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Stable key (ratios and targets refer to figures by it).
    pub key: String,
    /// Which case of the bench it belongs to (1 to 7).
    pub case: u8,
    /// What was measured, in words.
    pub label: String,
    /// The unit of the samples.
    pub unit: Unit,
    /// One sample per run.
    pub samples: Vec<f64>,
    /// For timed runs: how many things one run handled and what they are (`users`, `GETs`), so a rate can be shown.
    pub work: Option<(f64, String)>,
    /// A remark shown beside the figure (how it was measured, what was left out).
    pub note: Option<String>,
}

impl Figure {
    /// A figure from samples.
    pub fn new(key: impl Into<String>, case: u8, label: impl Into<String>, unit: Unit, samples: Vec<f64>) -> Figure {
        Figure {
            key: key.into(),
            case,
            label: label.into(),
            unit,
            samples,
            work: None,
            note: None,
        }
    }

    /// A timing figure from durations (stored in `unit`: seconds or milliseconds).
    pub fn timings(
        key: impl Into<String>,
        case: u8,
        label: impl Into<String>,
        unit: Unit,
        runs: &[Duration],
    ) -> Figure {
        let scale = if unit == Unit::Millis { 1e3 } else { 1.0 };
        Figure::new(
            key,
            case,
            label,
            unit,
            runs.iter().map(|d| d.as_secs_f64() * scale).collect(),
        )
    }

    /// Says how many things one run handled (shown as a rate at the median).
    pub fn with_work(mut self, count: f64, what: impl Into<String>) -> Figure {
        self.work = Some((count, what.into()));
        self
    }

    /// Adds a remark.
    pub fn with_note(mut self, note: impl Into<String>) -> Figure {
        self.note = Some(note.into());
        self
    }

    /// The smallest sample.
    pub fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// The largest sample.
    pub fn max(&self) -> f64 {
        self.samples.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The median sample (the mean of the middle two for an even count).
    pub fn median(&self) -> f64 {
        median(&self.samples)
    }

    /// The median in seconds, for timing figures.
    pub fn median_secs(&self) -> f64 {
        match self.unit {
            Unit::Millis => self.median() / 1e3,
            _ => self.median(),
        }
    }

    /// Things per second at the median time, for timing figures with work.
    pub fn rate(&self) -> Option<f64> {
        let (count, _) = self.work.as_ref()?;
        matches!(self.unit, Unit::Seconds | Unit::Millis).then(|| count / self.median_secs())
    }
}

/// The median of some samples (NaN when there are none).
pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Formats a number with a sensible count of digits for a table.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        group_thousands(x.round() as i64)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn figures_summarise_and_rate() {
        let f = Figure::timings(
            "x",
            1,
            "x",
            Unit::Millis,
            &[
                Duration::from_millis(20),
                Duration::from_millis(10),
                Duration::from_millis(30),
            ],
        )
        .with_work(100.0, "things");
        assert_eq!((f.min(), f.median(), f.max()), (10.0, 20.0, 30.0));
        assert!((f.rate().unwrap() - 5000.0).abs() < 1e-6);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(1234.4), "1,234");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(0.01234), "0.012");
        assert_eq!(fmt_num(f64::NAN), "-");
    }
}

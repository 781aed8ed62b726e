//! How a command ends: done, waiting for approval, or failed (one line naming the cause, then the remedy).

use rancher_auth::Diagnosis;

/// A command that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done (exit 0).
    Done,
    /// Submitted and waiting for approval (exit 3).
    Pending,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Done => 0,
            Exit::Pending => 3,
        }
    }
}

/// A failed connection test, carried through `anyhow` so the report can show the whole diagnosis.
#[derive(Debug, thiserror::Error)]
#[error("connection test failed: {}", .0.summary)]
pub struct Diagnosed(pub Box<Diagnosis>);

/// A plain failure with a remedy on its own line.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What went wrong, one line.
    pub message: String,
    /// What to do about it.
    pub remedy: Option<String>,
}

impl Failure {
    /// A failure with a remedy.
    pub fn new(message: impl Into<String>, remedy: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            remedy: Some(remedy.into()),
        }
    }
}

/// The lines printed on stderr for a failure: `error: <cause>` first, then the remedy and details.
pub fn report_lines(err: &anyhow::Error) -> Vec<String> {
    let diagnosis = err
        .downcast_ref::<Diagnosed>()
        .map(|d| d.0.as_ref())
        .or_else(|| err.downcast_ref::<rancher_auth::Error>().and_then(|e| e.diagnosis()));
    if let Some(d) = diagnosis {
        let mut lines = vec![
            format!("error: connection test failed: {}", d.summary),
            format!("fix: {}", d.remedy),
        ];
        if !d.likely_causes.is_empty() {
            lines.push("likely causes, in order:".into());
            lines.extend(
                d.likely_causes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("  {}. {c}", i + 1)),
            );
        }
        if let Some(detail) = &d.detail {
            lines.push(format!("(step {}: {detail})", d.step));
        }
        return lines;
    }
    if let Some(f) = err.downcast_ref::<Failure>() {
        let mut lines = vec![format!("error: {}", f.message)];
        lines.extend(f.remedy.iter().map(|r| format!("fix: {r}")));
        return lines;
    }
    vec![format!("error: {err:#}")]
}

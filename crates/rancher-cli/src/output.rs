//! Rendering: tables for people, exactly one JSON or YAML document for programs, progress on stderr.

use std::io::{IsTerminal, Write};

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;

use crate::cli::Format;

/// A plain, borderless table (like kubectl), never wrapped, so output is stable for scripts and snapshots.
pub fn table(columns: &[impl AsRef<str>], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(columns.iter().map(|c| c.as_ref().to_string()));
    for r in rows {
        t.add_row(r);
    }
    // comfy-table pads every cell with one space on each side; trim the line ends.
    t.lines().map(|l| l.trim_end().trim_start_matches(' ').to_string()).collect::<Vec<_>>().join("\n")
}

/// Prints one document in the machine format (`json` or `yaml`) on stdout.
pub fn document<T: Serialize + ?Sized>(format: Format, value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json | Format::Table => {
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        }
        Format::Yaml => {
            let text = serde_norway::to_string(value)?;
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// Prints `text` (a table or lines for people) on stdout.
pub fn text(text: &str) {
    if !text.is_empty() {
        println!("{text}");
    }
}

/// Prints data: `render` makes the table text; `json`/`yaml` print `value`.
pub fn data<T: Serialize + ?Sized>(format: Format, value: &T, render: impl FnOnce() -> String) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            text(&render());
            Ok(())
        }
        _ => document(format, value),
    }
}

/// A cell for a JSON value: strings bare, nothing for null.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A spinner on stderr while something long runs, shown only when stderr is a terminal.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Starts a spinner with `message` (nothing when stderr is not a terminal).
    pub fn spinner(message: impl Into<String>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress(Some(bar))
    }

    /// Updates the message.
    pub fn set(&self, message: impl Into<String>) {
        if let Some(b) = &self.0 {
            b.set_message(message.into());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// A warning on stderr.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("warning: {message}");
}

/// A note for people on stderr (so stdout stays data only).
pub fn note(message: impl std::fmt::Display) {
    eprintln!("{message}");
}

//! Rendering: tables for people, exactly one JSON or YAML document for programs, progress on stderr.

use std::io::{IsTerminal, Write};

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;

use crate::cli::Format;
use crate::text;

/// A plain, borderless table (like kubectl), never wrapped, so output is stable for scripts and snapshots. Every
/// cell is escaped ([`text::escape`]): one line per row, whatever a requester or a server wrote.
pub fn table(columns: &[impl AsRef<str>], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(columns.iter().map(|c| text::escape(c.as_ref())));
    for r in rows {
        t.add_row(r.iter().map(|c| text::escape(c)));
    }
    // comfy-table pads every cell with one space on each side; trim the line ends.
    t.lines()
        .map(|l| l.trim_end().trim_start_matches(' ').to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints one document in the machine format (`json` or `yaml`) on stdout.
pub fn document<T: Serialize + ?Sized>(format: Format, value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json | Format::Table => json(&mut out, value)?,
        Format::Csv => anyhow::bail!(crate::error::Failure::new(
            "-o csv is only for workflows that print a table (access-review, who-can, token-report, list-*)",
            "use -o json or -o yaml here"
        )),
        Format::Yaml => {
            let yaml = serde_norway::to_string(value)?;
            if yaml.chars().any(|c| c != '\n' && text::is_unsafe(c)) {
                // The YAML writer leaves bidi overrides raw and may not quote the string that holds them. JSON is
                // YAML too: the same value, with every such character escaped.
                json(&mut out, value)?;
            } else {
                out.write_all(yaml.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// Writes `value` as pretty JSON and a line break, through [`SafeJson`].
fn json<T: Serialize + ?Sized>(out: &mut impl Write, value: &T) -> anyhow::Result<()> {
    let mut safe = SafeJson {
        out: &mut *out,
        carry: Vec::new(),
    };
    serde_json::to_writer_pretty(&mut safe, value)?;
    safe.flush()?;
    writeln!(out)?;
    Ok(())
}

/// A writer for JSON text (any amount, e.g. JSON lines) that escapes what [`SafeJson`] escapes; flush it at the end.
pub fn safe_json_writer<W: Write>(out: W) -> impl Write {
    SafeJson { out, carry: Vec::new() }
}

/// A writer for JSON text that writes the C1 controls and bidi overrides serde_json leaves raw as `\uXXXX`
/// escapes (C0 controls it escapes itself). Such characters only occur inside JSON strings, where the escape
/// means the same character, so the document is unchanged; it is streamed, never held whole.
struct SafeJson<W: Write> {
    out: W,
    /// The start of a UTF-8 sequence cut by the end of a write.
    carry: Vec<u8>,
}

impl<W: Write> Write for SafeJson<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Fast path: every character escaped here starts with one of these bytes in UTF-8 (DEL; C1 controls
        // U+0080-U+009F; U+061C; the marks and overrides U+200E-U+2069).
        if self.carry.is_empty() && !buf.iter().any(|b| matches!(b, 0x7f | 0xc2 | 0xd8 | 0xe2)) {
            self.out.write_all(buf)?;
            return Ok(buf.len());
        }
        self.carry.extend_from_slice(buf);
        let bytes = std::mem::take(&mut self.carry);
        let (valid, rest) = match std::str::from_utf8(&bytes) {
            Ok(s) => (s, &[][..]),
            Err(e) => (
                std::str::from_utf8(&bytes[..e.valid_up_to()]).expect("valid prefix"),
                &bytes[e.valid_up_to()..],
            ),
        };
        let mut start = 0;
        for (i, c) in valid.char_indices() {
            if c != '\n' && text::is_unsafe(c) {
                self.out.write_all(&valid.as_bytes()[start..i])?;
                write!(self.out, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        self.out.write_all(&valid.as_bytes()[start..])?;
        // An incomplete sequence waits for the next write; anything invalid passes through as it is.
        if rest.len() < 4 && std::str::from_utf8(rest).err().is_some_and(|e| e.error_len().is_none()) {
            self.carry = rest.to_vec();
        } else {
            self.out.write_all(rest)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.carry);
        self.out.write_all(&rest)?;
        self.out.flush()
    }
}

/// How many rows a streamed table holds back to size its columns; later rows use those widths (a longer cell
/// pushes its own row's later cells right instead of widening the table).
pub const TABLE_SAMPLE: usize = 500;

/// Writes a list as its items arrive, holding at most [`TABLE_SAMPLE`] rows: `json` writes one pretty JSON array
/// item by item, `yaml` one sequence, `table` rows under the columns, `csv` one line per row after the header (a
/// list without columns prints as JSON).
///
/// [`ListWriter::finish`] closes the document. [`ListWriter::abort`], for a list that failed part way, flushes
/// what was written and leaves a JSON array unclosed, so no JSON parser takes the part for the whole list.
pub struct ListWriter<W: Write> {
    format: Format,
    out: SafeJson<W>,
    columns: Vec<String>,
    count: usize,
    /// Table rows held back until the widths are known.
    held: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
    scratch: Vec<u8>,
}

impl<W: Write> ListWriter<W> {
    /// A writer in `format`; `columns` are the table's headers (empty: `table` prints JSON).
    pub fn new(format: Format, out: W, columns: &[&str]) -> Self {
        let format = if matches!(format, Format::Table | Format::Csv) && columns.is_empty() {
            Format::Json
        } else {
            format
        };
        ListWriter {
            format,
            out: SafeJson { out, carry: Vec::new() },
            // CSV escapes (and quotes) each cell itself.
            columns: columns
                .iter()
                .map(|c| {
                    if format == Format::Csv {
                        c.to_string()
                    } else {
                        text::escape(c)
                    }
                })
                .collect(),
            count: 0,
            held: Vec::new(),
            widths: None,
            scratch: Vec::new(),
        }
    }

    /// Items written (or held) so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Writes one item; `row` makes its table row (called for tables only).
    pub fn item<T: Serialize + ?Sized>(&mut self, item: &T, row: impl FnOnce() -> Vec<String>) -> anyhow::Result<()> {
        match self.format {
            Format::Json => {
                self.out.write_all(if self.count == 0 { b"[\n  " } else { b",\n  " })?;
                // Pretty JSON one level in: every line break the formatter writes gets two more spaces (strings
                // hold no raw line breaks, JSON escapes them).
                self.scratch.clear();
                serde_json::to_writer_pretty(&mut self.scratch, item)?;
                write_indented(&mut self.out, &self.scratch)?;
            }
            Format::Yaml => {
                let yaml = serde_norway::to_string(item)?;
                if yaml.chars().any(|c| c != '\n' && text::is_unsafe(c)) {
                    // As for whole documents: the YAML writer leaves bidi overrides raw; JSON (which is YAML)
                    // escapes them.
                    self.out.write_all(b"- ")?;
                    serde_json::to_writer(&mut self.out, item)?;
                    self.out.write_all(b"\n")?;
                } else {
                    for (i, line) in yaml.trim_end_matches('\n').split('\n').enumerate() {
                        self.out.write_all(if i == 0 { b"- " } else { b"  " })?;
                        self.out.write_all(line.as_bytes())?;
                        self.out.write_all(b"\n")?;
                    }
                }
            }
            Format::Csv => {
                if self.count == 0 {
                    crate::csv::write_line(&mut self.out, &self.columns)?;
                }
                crate::csv::write_line(&mut self.out, &row())?;
            }
            Format::Table => {
                let cells: Vec<String> = row().iter().map(|c| text::escape(c)).collect();
                match &self.widths {
                    Some(_) => self.write_row(&cells)?,
                    None => {
                        self.held.push(cells);
                        if self.held.len() >= TABLE_SAMPLE {
                            self.release()?;
                        }
                    }
                }
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Sizes the columns from the held rows and writes the header and those rows.
    fn release(&mut self) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| width(c)).collect();
        for r in &self.held {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(width(c));
            }
        }
        self.widths = Some(widths);
        let header = std::mem::take(&mut self.columns);
        self.write_row(&header)?;
        self.columns = header;
        for r in std::mem::take(&mut self.held) {
            self.write_row(&r)?;
        }
        Ok(())
    }

    fn write_row(&mut self, cells: &[String]) -> std::io::Result<()> {
        let widths = self.widths.as_deref().unwrap_or(&[]);
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(width(c));
            line.extend(std::iter::repeat_n(' ', pad));
        }
        self.out.write_all(line.trim_end().as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// Closes the document (the JSON array, an empty list's `[]`, the table's held rows) and flushes.
    pub fn finish(mut self) -> anyhow::Result<()> {
        match self.format {
            Format::Json | Format::Yaml if self.count == 0 => self.out.write_all(b"[]\n")?,
            Format::Json => self.out.write_all(b"\n]\n")?,
            Format::Csv if self.count == 0 => crate::csv::write_line(&mut self.out, &self.columns)?,
            Format::Yaml | Format::Csv => {}
            Format::Table => {
                if self.widths.is_none() {
                    self.release()?;
                }
            }
        }
        self.out.flush()?;
        Ok(())
    }

    /// For a list that failed part way: writes the held table rows and flushes, but leaves a JSON array open
    /// (no closing `]`), so the output cannot pass for a complete list.
    pub fn abort(mut self) -> anyhow::Result<()> {
        match self.format {
            Format::Json if self.count > 0 => self.out.write_all(b"\n")?,
            Format::Table if self.widths.is_none() && !self.held.is_empty() => self.release()?,
            _ => {}
        }
        self.out.flush()?;
        Ok(())
    }
}

/// Writes `json` with two spaces after each line break.
fn write_indented(out: &mut impl Write, json: &[u8]) -> std::io::Result<()> {
    let mut start = 0;
    for (i, b) in json.iter().enumerate() {
        if *b == b'\n' {
            out.write_all(&json[start..=i])?;
            out.write_all(b"  ")?;
            start = i + 1;
        }
    }
    out.write_all(&json[start..])
}

/// Display width of an escaped cell (characters; escaped cells hold no controls).
fn width(s: &str) -> usize {
    s.chars().count()
}

/// Prints `lines` (a table or lines for people) on stdout, escaped but for the line breaks: the last guard for
/// text a renderer did not escape field by field.
pub fn text(lines: &str) {
    if !lines.is_empty() {
        let mut shown = text::escape_lines(lines);
        shown.push('\n');
        stdout_or_quit(shown.as_bytes());
    }
}

/// Writes `bytes` to stdout. A reader that went away (`rancherctl ... | head`) ends the process quietly with
/// exit 0, as the streamed outputs do: what it wanted was printed, and a panic or an error line would be noise.
pub fn stdout_or_quit(bytes: &[u8]) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => eprintln!("warning: could not write to stdout: {e}"),
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

/// The spinner on screen, if any: a workflow's stages are drawn on it (see [`Stages`]).
static SHOWN: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

fn shown() -> std::sync::MutexGuard<'static, Option<indicatif::ProgressBar>> {
    SHOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Progress {
    /// Starts a spinner with `message` (nothing when stderr is not a terminal).
    pub fn spinner(message: impl Into<String>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress::showing(bar)
    }

    /// Shows `bar` as the spinner workflows report their stages on.
    fn showing(bar: indicatif::ProgressBar) -> Progress {
        *shown() = Some(bar.clone());
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
            *shown() = None;
        }
    }
}

/// A workflow's stages on the terminal: `deleting tokens: 12,345 / 74,577` on the spinner shown at the time, or
/// on one of its own while a run that started without one (an approval executing) reports. Nothing is drawn when
/// stderr is not a terminal.
#[derive(Debug, Default)]
pub struct Stages {
    /// The spinner this made for itself, cleared when the run finishes.
    own: std::sync::Mutex<Option<Progress>>,
}

impl Stages {
    /// A handle for a runner or an executor.
    pub fn handle() -> rancher_workflows::ProgressHandle {
        std::sync::Arc::new(Stages::default())
    }

    fn bar(&self) -> Option<indicatif::ProgressBar> {
        if let Some(b) = shown().clone() {
            return Some(b);
        }
        let spinner = Progress::spinner("");
        let bar = spinner.0.clone();
        *self.own.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(spinner);
        bar
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(shown)"
        } else {
            "Progress(hidden)"
        })
    }
}

impl rancher_workflows::Progress for Stages {
    fn stage(&self, what: &str, total: Option<u64>) {
        let Some(bar) = self.bar() else { return };
        let template = if total.is_some() {
            "{spinner} {msg}: {human_pos} / {human_len}"
        } else {
            "{spinner} {msg}: {human_pos}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_length(total.unwrap_or(0));
        bar.set_position(0);
        bar.set_message(what.to_string());
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = shown().as_ref() {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        // Its own spinner goes; one the command showed stays for the command to clear.
        self.own
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

/// A warning on stderr.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("warning: {}", text::escape(&message.to_string()));
}

/// A note for people on stderr (so stdout stays data only).
pub fn note(message: impl std::fmt::Display) {
    eprintln!("{}", text::escape_lines(&message.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UX finding 23: a workflow's stages reach the spinner on screen as counts against their totals, and nothing
    /// is drawn or kept once the spinner is gone.
    #[test]
    fn stages_count_on_the_spinner_shown() {
        use rancher_workflows::Progress as _;
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::hidden());
        let spinner = Progress::showing(bar.clone());
        let stages = Stages::default();
        stages.stage("reading tokens", None);
        stages.advance(1500);
        assert_eq!((bar.message(), bar.position()), ("reading tokens".to_string(), 1500));
        stages.stage("deleting tokens", Some(700));
        stages.advance(300);
        stages.advance(400);
        assert_eq!(
            (bar.message(), bar.position(), bar.length()),
            ("deleting tokens".to_string(), 700, Some(700))
        );
        stages.finish();
        assert!(
            shown().is_some(),
            "the command's own spinner stays until the command drops it"
        );
        drop(spinner);
        assert!(shown().is_none());
        stages.advance(1); // after the spinner went: nothing to draw on, and no panic
        assert_eq!(bar.position(), 700);
    }

    fn listed(format: Format, items: &[Value], finish: bool) -> String {
        let mut out = Vec::new();
        let mut w = ListWriter::new(format, &mut out, &["ID", "NAME"]);
        for v in items {
            w.item(v, || vec![cell(v.get("id")), cell(v.get("name"))]).unwrap();
        }
        if finish {
            w.finish().unwrap()
        } else {
            w.abort().unwrap()
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn streamed_json_is_the_same_document_as_the_whole_array() {
        let items = vec![
            serde_json::json!({"id": "u-1", "name": "A\nB", "n": [1, {"x": null}]}),
            serde_json::json!({"id": "u-2", "e": {}}),
        ];
        let streamed = listed(Format::Json, &items, true);
        assert_eq!(streamed, format!("{}\n", serde_json::to_string_pretty(&items).unwrap()));
        assert_eq!(listed(Format::Json, &[], true), "[]\n");
        // Cut short: what was written is not a complete JSON document.
        let cut = listed(Format::Json, &items, false);
        assert!(cut.starts_with("[\n") && !cut.trim_end().ends_with(']'), "{cut}");
        assert!(serde_json::from_str::<Value>(&cut).is_err());
    }

    #[test]
    fn streamed_yaml_is_one_sequence_and_bidi_is_escaped() {
        let items = vec![
            serde_json::json!({"id": "u-1", "tags": ["a", "b"], "m": {"k": "v"}}),
            serde_json::json!({"id": "u-\u{202e}2"}),
        ];
        let text = listed(Format::Yaml, &items, true);
        let back: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, Value::Array(items));
        assert!(!text.contains('\u{202e}') && text.contains("\\u202e"), "{text}");
        assert_eq!(listed(Format::Yaml, &[], true), "[]\n");
    }

    #[test]
    fn streamed_table_matches_the_whole_table_within_the_sample() {
        let items: Vec<Value> = (0..3)
            .map(|i| serde_json::json!({"id": format!("u-{i}"), "name": "x".repeat(i * 3)}))
            .collect();
        let rows = items.iter().map(|v| vec![cell(v.get("id")), cell(v.get("name"))]);
        assert_eq!(
            listed(Format::Table, &items, true),
            format!("{}\n", table(&["ID", "NAME"], rows))
        );
        // Escaped like every table cell.
        let hostile = listed(
            Format::Table,
            &[serde_json::json!({"id": "\u{1b}[31mred", "name": "a\nb"})],
            true,
        );
        assert!(!hostile.contains('\u{1b}') && hostile.lines().count() == 2, "{hostile}");
    }

    #[test]
    fn json_escapes_c1_and_bidi_even_when_a_write_cuts_a_character() {
        let mut out = Vec::new();
        {
            let mut w = SafeJson {
                out: &mut out,
                carry: Vec::new(),
            };
            let text = "{\"a\": \"x\u{9b}y\u{202e}z é\"}\n";
            for chunk in text.as_bytes().chunks(1) {
                w.write_all(chunk).unwrap();
            }
            w.flush().unwrap();
        }
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "{\"a\": \"x\\u009by\\u202ez é\"}\n");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "x\u{9b}y\u{202e}z é");
    }
}

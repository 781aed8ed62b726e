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
    t.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(columns.iter().map(|c| text::escape(c.as_ref())));
    for r in rows {
        t.add_row(r.iter().map(|c| text::escape(c)));
    }
    // comfy-table pads every cell with one space on each side; trim the line ends.
    t.lines().map(|l| l.trim_end().trim_start_matches(' ').to_string()).collect::<Vec<_>>().join("\n")
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
    let mut safe = SafeJson { out: &mut *out, carry: Vec::new() };
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
            Err(e) => (std::str::from_utf8(&bytes[..e.valid_up_to()]).expect("valid prefix"), &bytes[e.valid_up_to()..]),
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

/// Prints `lines` (a table or lines for people) on stdout, escaped but for the line breaks: the last guard for
/// text a renderer did not escape field by field.
pub fn text(lines: &str) {
    if !lines.is_empty() {
        println!("{}", text::escape_lines(lines));
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
    eprintln!("warning: {}", text::escape(&message.to_string()));
}

/// A note for people on stderr (so stdout stays data only).
pub fn note(message: impl std::fmt::Display) {
    eprintln!("{}", text::escape_lines(&message.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_c1_and_bidi_even_when_a_write_cuts_a_character() {
        let mut out = Vec::new();
        {
            let mut w = SafeJson { out: &mut out, carry: Vec::new() };
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

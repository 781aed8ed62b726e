//! `access-review -o json` and `-o csv`, written as the review produces them: each user's entry (or rows) goes to
//! stdout when its page of users has been read, so the process holds the bindings' index and one page, never the
//! whole document. The bytes are those the finished document prints ([`crate::commands::printer::print_result`]):
//! the same pretty JSON, the same CSV. Nothing is written before the first part, so an early refusal prints only
//! its error; a failure part way leaves the JSON without its closing `}`.

use std::io::Write;

use rancher_workflows::review::{ReviewEnd, ReviewPart, ReviewSink, ACCESS_REVIEW_COLUMNS};
use serde_json::Value;

use crate::cli::Format;

/// Where the parts go, in `-o json` or `-o csv`.
pub struct Streamed<W: Write> {
    format: Format,
    out: W,
    users: usize,
    orphans: usize,
    started: bool,
    scratch: Vec<u8>,
}

impl<W: Write> Streamed<W> {
    /// A writer for `format` (`json` or `csv`); `json` output must go through the CLI's safe JSON writer.
    pub fn new(format: Format, out: W) -> Self {
        Streamed {
            format,
            out,
            users: 0,
            orphans: 0,
            started: false,
            scratch: Vec::new(),
        }
    }

    fn start(&mut self) -> std::io::Result<()> {
        if !self.started {
            self.started = true;
            match self.format {
                Format::Csv => crate::csv::write_line(&mut self.out, &ACCESS_REVIEW_COLUMNS.map(String::from))?,
                _ => self.out.write_all(b"{\n  \"users\": [")?,
            }
        }
        Ok(())
    }

    /// One array item, four spaces in (pretty JSON two levels deep).
    fn item(&mut self, first: bool, value: &ReviewPart) -> std::io::Result<()> {
        self.out.write_all(if first { b"\n    " } else { b",\n    " })?;
        self.scratch.clear();
        serde_json::to_writer_pretty(&mut self.scratch, value)?;
        let mut start = 0;
        for (i, b) in self.scratch.iter().enumerate() {
            if *b == b'\n' {
                self.out.write_all(&self.scratch[start..=i])?;
                self.out.write_all(b"    ")?;
                start = i + 1;
            }
        }
        self.out.write_all(&self.scratch[start..])
    }

    /// Closes the users' array and opens the orphans' one.
    fn to_orphans(&mut self) -> std::io::Result<()> {
        self.out
            .write_all(if self.users == 0 { b"],\n" } else { b"\n  ],\n" })?;
        self.out.write_all(b"  \"orphaned_bindings\": [")
    }

    /// Closes the document with what the review said at the end, and flushes.
    pub fn finish(mut self, end: &ReviewEnd) -> std::io::Result<W> {
        self.start()?;
        if self.format != Format::Csv {
            if self.orphans == 0 {
                self.to_orphans()?;
                self.out.write_all(b"],\n")?;
            } else {
                self.out.write_all(b"\n  ],\n")?;
            }
            let refresh = serde_json::to_string(&end.groups_refresh_requested)?;
            write!(self.out, "  \"groups_refresh_requested\": {refresh}\n}}\n")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Send> ReviewSink for Streamed<W> {
    fn user(&mut self, entry: &ReviewPart, rows: Vec<Vec<String>>) -> std::io::Result<()> {
        self.start()?;
        if self.format == Format::Csv {
            for r in &rows {
                crate::csv::write_line(&mut self.out, r)?;
            }
        } else {
            self.item(self.users == 0, entry)?;
        }
        self.users += 1;
        Ok(())
    }

    fn orphan(&mut self, binding: &ReviewPart, row: Option<Vec<String>>) -> std::io::Result<()> {
        self.start()?;
        if self.format == Format::Csv {
            if let Some(r) = row {
                crate::csv::write_line(&mut self.out, &r)?;
            }
        } else {
            if self.orphans == 0 {
                self.to_orphans()?;
            }
            self.item(self.orphans == 0, binding)?;
        }
        self.orphans += 1;
        Ok(())
    }
}

/// Whether a run of `workflow` in `format` is written as it is produced by [`run`].
pub fn streams(workflow: &str, format: Format, dry_run: bool) -> bool {
    workflow == "access-review" && !dry_run && matches!(format, Format::Json | Format::Csv)
}

/// Runs an installed `access-review` (through `runner`, as a submit does) and writes it to stdout as it comes.
pub async fn run(
    format: Format,
    runner: &rancher_workflows::Runner,
    session: &rancher_workflows::Session,
    inputs: &Value,
) -> anyhow::Result<()> {
    let inputs = rancher_workflows::Inputs::from(inputs.clone());
    let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let end = match format {
        Format::Csv => {
            let mut w = Streamed::new(format, out);
            let end = runner.stream_access_review(session, &inputs, &mut w).await?;
            w.finish(&end).map(drop)
        }
        _ => {
            let mut w = Streamed::new(format, crate::output::safe_json_writer(out));
            let end = runner.stream_access_review(session, &inputs, &mut w).await?;
            w.finish(&end).map(drop)
        }
    };
    match end {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The document a finished run prints, from the same parts.
    fn whole(users: &[Value], orphans: &[Value], refresh: Option<&str>) -> String {
        let doc = json!({"users": users, "orphaned_bindings": orphans, "groups_refresh_requested": refresh});
        format!("{}\n", serde_json::to_string_pretty(&doc).unwrap())
    }

    fn streamed(users: &[Value], orphans: &[Value], refresh: Option<&str>) -> String {
        let mut w = Streamed::new(Format::Json, Vec::new());
        let part = |v: &Value| -> ReviewPart { serde_json::from_value(v.clone()).unwrap() };
        for u in users {
            w.user(&part(u), vec![]).unwrap();
        }
        for o in orphans {
            w.orphan(&part(o), None).unwrap();
        }
        let end = ReviewEnd {
            summary: String::new(),
            groups_refresh_requested: refresh.map(str::to_string),
        };
        String::from_utf8(w.finish(&end).unwrap()).unwrap()
    }

    #[test]
    fn the_streamed_json_is_byte_for_byte_the_whole_document() {
        let u1 = json!({"user": "u-1", "flags": ["admin"], "groups": [], "global_roles": [{"role": "admin", "effective": ["admin"]}], "cluster_roles": []});
        let u2 = json!({"user": "u-2", "nested": {"a": [1, {"b": null}]}, "empty": {}});
        let o1 =
            json!({"id": "globalrolebinding/g", "scope": {"scope": "global"}, "orphaned": ["user u-9 does not exist"]});
        for (users, orphans) in [
            (vec![], vec![]),
            (vec![u1.clone()], vec![]),
            (vec![], vec![o1.clone()]),
            (vec![u1.clone(), u2.clone()], vec![o1.clone(), o1.clone()]),
        ] {
            for refresh in [None, Some("2026-12-07T10:00:00+00:00")] {
                assert_eq!(streamed(&users, &orphans, refresh), whole(&users, &orphans, refresh));
            }
        }
    }

    #[test]
    fn the_streamed_csv_is_the_header_then_every_row_in_order() {
        let mut w = Streamed::new(Format::Csv, Vec::new());
        let row = |c: &str| vec![c.to_string(); 9];
        let part: ReviewPart = serde_json::from_value(json!({})).unwrap();
        w.user(&part, vec![row("a"), row("b")]).unwrap();
        w.orphan(&part, None).unwrap();
        w.orphan(&part, Some(row("=c"))).unwrap();
        let end = ReviewEnd {
            summary: String::new(),
            groups_refresh_requested: None,
        };
        let got = String::from_utf8(w.finish(&end).unwrap()).unwrap();
        let mut want = Vec::new();
        let columns = ACCESS_REVIEW_COLUMNS.map(String::from);
        crate::csv::write(&mut want, &columns, &[row("a"), row("b"), row("=c")]).unwrap();
        assert_eq!(got, String::from_utf8(want).unwrap());
        let empty = Streamed::new(Format::Csv, Vec::new()).finish(&end).unwrap();
        let mut want = Vec::new();
        crate::csv::write(&mut want, &columns, &[]).unwrap();
        assert_eq!(empty, want);
    }
}

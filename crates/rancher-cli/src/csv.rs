//! `-o csv`: a workflow's table as RFC 4180 CSV for spreadsheets. Every cell is made terminal-safe first
//! ([`text::escape`]: control characters and bidi overrides, which a requester or a server may have written, are
//! shown escaped), quoted when it holds a comma, a quote or a line break (quotes doubled), and a cell that a
//! spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
//! `'` so it stays text. Lines end with CRLF, as RFC 4180 says.

use std::io::Write;

use crate::text;

/// One cell, safe for a spreadsheet and a terminal, quoted as RFC 4180 asks.
pub fn cell(raw: &str) -> String {
    let mut s = text::escape(raw);
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        s.insert(0, '\'');
    }
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Writes one line of cells, CRLF-terminated.
pub fn write_line(out: &mut impl Write, cells: &[String]) -> std::io::Result<()> {
    let line = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    write!(out, "{line}\r\n")
}

/// Writes the header line and one line per row.
pub fn write(out: &mut impl Write, columns: &[String], rows: &[Vec<String>]) -> std::io::Result<()> {
    write_line(out, columns)?;
    for r in rows {
        write_line(out, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_rfc_4180() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn formulas_stay_text() {
        assert_eq!(cell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("a=b"), "a=b");
    }

    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        let c = cell("evil\u{1b}[2Jname\u{202e}");
        assert!(!c.contains('\u{1b}') && !c.contains('\u{202e}'), "{c:?}");
    }

    #[test]
    fn rows_end_with_crlf() {
        let mut out = Vec::new();
        write(&mut out, &["A".into(), "B".into()], &[vec!["1".into(), "x,y".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A,B\r\n1,\"x,y\"\r\n");
    }
}

//! Text written by a requester or a server, made safe to show on a terminal or a page: control characters (ESC,
//! CR, BS, DEL, C1) and bidi overrides become visible escapes, look-alike names are flagged, and error text has
//! token shapes masked and long echoes cut. `rancherctl` and the approvals service's page share these.

/// True for a character a terminal acts on or that reorders what is shown: C0 and C1 controls, DEL, the bidi
/// embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the directional marks.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// `s` on one line with every unsafe character (line breaks included) written as a visible escape
/// (`\r`, `\n`, `\t`, `\u{1b}`, `\u{202e}`).
pub fn escape(s: &str) -> String {
    escape_with(s, false)
}

/// Like [`escape`], but line breaks stay: for text made of lines whose parts were escaped already.
pub fn escape_lines(s: &str) -> String {
    escape_with(s, true)
}

fn escape_with(s: &str, keep_newlines: bool) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            c if is_unsafe(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Echoes longer than this (one run of non-space characters) are cut.
const MAX_ECHO: usize = 200;
/// Error lines longer than this are cut.
const MAX_LINE: usize = 2_000;

/// A line of an error for the terminal: escaped, anything shaped like a token masked, and every run of more than
/// 200 non-space characters cut to its start plus `…(N bytes)`.
pub fn error_line(line: &str) -> String {
    let masked = rancher_auth::mask_secrets(&escape(line));
    let mut out = String::with_capacity(masked.len().min(MAX_LINE + 64));
    for (i, word) in masked.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&cut(word, MAX_ECHO));
    }
    cut(&out, MAX_LINE)
}

/// `s` when at most `max` bytes, else its first 64 characters and `…(N bytes)`.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(64).collect();
    format!("{head}…({} bytes)", s.len())
}

/// The script of a letter, as far as look-alike names go.
fn script(c: char) -> Option<&'static str> {
    Some(match c as u32 {
        0x41..=0x5a | 0x61..=0x7a | 0xc0..=0x24f | 0x1e00..=0x1eff => "Latin",
        0x370..=0x3ff | 0x1f00..=0x1fff => "Greek",
        0x400..=0x52f | 0x1c80..=0x1c8f | 0x2de0..=0x2dff | 0xa640..=0xa69f => "Cyrillic",
        0x530..=0x58f => "Armenian",
        0x590..=0x5ff => "Hebrew",
        0x600..=0x6ff | 0x750..=0x77f => "Arabic",
        0x13a0..=0x13ff => "Cherokee",
        0xff00..=0xffef => "Fullwidth",
        0x3040..=0x30ff => "Kana",
        0x4e00..=0x9fff => "Han",
        0xac00..=0xd7af => "Hangul",
        _ if c.is_alphabetic() => "other",
        _ => return None,
    })
}

/// A warning when `s` holds non-ASCII characters (a look-alike of another name, e.g. `аlice` with a Cyrillic
/// `а`): the scripts it mixes and the first code points. `None` for plain ASCII.
pub fn look_alike(s: &str) -> Option<String> {
    if s.is_ascii() {
        return None;
    }
    let mut scripts: Vec<&str> = Vec::new();
    for sc in s.chars().filter_map(script) {
        if !scripts.contains(&sc) {
            scripts.push(sc);
        }
    }
    let odd: Vec<String> = s
        .chars()
        .filter(|c| !c.is_ascii())
        .take(4)
        .map(|c| format!("U+{:04X} {}", c as u32, script(c).unwrap_or("symbol")))
        .collect();
    let what = if scripts.len() > 1 {
        format!("mixes {} letters", scripts.join(" and "))
    } else {
        "holds non-ASCII characters".to_string()
    };
    Some(format!(
        "{what} ({}): it may imitate another name; check the id",
        odd.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_become_visible() {
        assert_eq!(
            escape("a\r\u{1b}[2Kb\n\u{9b}c\u{202e}d\u{8}\u{7f}"),
            r"a\r\u{1b}[2Kb\n\u{9b}c\u{202e}d\u{8}\u{7f}"
        );
        assert_eq!(escape_lines("a\nb\u{1b}"), "a\nb\\u{1b}");
        assert_eq!(escape("plain café ü"), "plain café ü");
    }

    #[test]
    fn error_lines_are_escaped_masked_and_bounded() {
        let line = error_line("error: --input `token-gcwhb:x4ppfdpd89nsk9mc9c2ght4z7gdkb2hpq6b5kc952ddng9rmznxs84\u{1b}` is not key=value");
        assert_eq!(line, r"error: --input `token-gcwhb:****xs84\u{1b}` is not key=value");
        let long = format!("error: `{}` is bad; fix: this", "ab-".repeat(1000));
        let line = error_line(&long);
        assert!(line.ends_with("…(3002 bytes) is bad; fix: this"), "{line}");
        assert!(line.len() < 200);
    }

    #[test]
    fn look_alikes_are_named() {
        assert_eq!(look_alike("alice"), None);
        let w = look_alike("\u{430}lice").unwrap();
        assert!(
            w.starts_with("mixes Cyrillic and Latin letters (U+0430 Cyrillic)"),
            "{w}"
        );
        assert!(look_alike("jos\u{e9}")
            .unwrap()
            .starts_with("holds non-ASCII characters (U+00E9 Latin)"));
    }
}

//! Entry functions for rancher-auth's parsers: the instance domain, the bearer token, and the profile file.

use std::path::Path;

use rancher_auth::{BearerToken, InstanceDomain, ProfileData};

fn one_bounded_line(what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: an empty message");
    assert!(
        !text.contains(char::is_control),
        "{what}: not one printable line: {text:?}"
    );
}

/// `InstanceDomain::parse`: refusals are one line; an accepted domain is normalised (lower case, no whitespace,
/// no path), makes a URL, and parses back to itself from its display form and from JSON.
pub fn domain(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    match InstanceDomain::parse(&input) {
        Ok(d) => {
            let shown = d.to_string();
            assert!(
                !shown.is_empty() && !shown.contains(char::is_whitespace) && !shown.contains('/'),
                "{shown:?}"
            );
            assert_eq!(shown, shown.to_ascii_lowercase(), "a domain is lower case");
            let url = d.base_url();
            assert_eq!(url.scheme(), "https");
            assert_eq!(InstanceDomain::parse(&shown).expect("a shown domain parses again"), d);
            let json = serde_json::to_string(&d).expect("a domain serialises");
            assert_eq!(
                serde_json::from_str::<InstanceDomain>(&json).expect("and deserialises"),
                d
            );
        }
        Err(e) => one_bounded_line("domain refusal", &e.to_string()),
    }
}

/// Everything a parse shows of its input: `Debug` and `Display` of the token or of the refusal, for both entry
/// points.
fn shown(input: &str) -> String {
    let mut out = String::new();
    for parsed in [BearerToken::parse(input), BearerToken::parse_input(input)] {
        match parsed {
            Ok(t) => out.push_str(&format!("{t:?}\n{t}\n")),
            Err(e) => out.push_str(&format!("{e:?}\n{e}\n")),
        }
    }
    out
}

/// `s` with every letter and digit moved to the next one of its class (`a`->`b`, `z`->`a`, `9`->`0`).
fn shifted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            other => other,
        })
        .collect()
}

/// `BearerToken::parse` and `parse_input`: refusals are one line; the secret part of what was typed never shows
/// in a refusal, in `Debug` or in `Display`.
pub fn token(data: &[u8]) {
    let input = String::from_utf8_lossy(data).into_owned();
    let seen = shown(&input);
    // The secret candidates, as byte ranges of the input: what follows the first `:` (after an optional `ext/`),
    // and a 1.x bearer as a whole.
    let trimmed = input.trim_end_matches(['\n', '\r']).len();
    let skip = if input.starts_with("ext/") { 4 } else { 0 };
    let mut candidates: Vec<(usize, usize)> = input[skip..]
        .find(':')
        .map(|i| (skip + i + 1, trimmed.max(skip + i + 1)))
        .into_iter()
        .collect();
    if BearerToken::parse_input(&input).is_ok_and(|t| t.is_legacy()) {
        candidates.push((0, trimmed));
    }
    for (start, end) in candidates {
        let secret = &input[start..end];
        if secret.chars().count() >= 8 && seen.contains(secret) {
            // It shows. A leak, unless the words around it happen to spell it (or it is also the access key):
            // then the same input with another secret of the same shape in its place shows it too.
            let other = format!("{}{}{}", &input[..start], shifted(secret), &input[end..]);
            assert!(shown(&other).contains(secret), "the secret shows: {seen:?}");
        }
    }
    for parsed in [BearerToken::parse(&input), BearerToken::parse_input(&input)] {
        match parsed {
            Ok(t) => {
                assert!(t.to_string().starts_with("****"), "{t}");
                assert!(t.secret_len() > 0);
                assert_eq!(t.is_legacy(), t.access_key().is_empty());
            }
            Err(e) => one_bounded_line("token refusal", &e.to_string()),
        }
    }
    let masked = rancher_auth::mask(&input);
    assert!(masked.starts_with("****"));
}

/// `ProfileData::parse` (the profile loader): a refusal is one line naming the file; an accepted profile
/// survives a write and a read unchanged.
pub fn profile(data: &[u8]) {
    let path = Path::new("/profiles/fuzz.json");
    match ProfileData::parse("fuzz", path, data) {
        Ok(p) => {
            let written = serde_json::to_vec_pretty(&p).expect("a profile serialises");
            let again = ProfileData::parse("fuzz", path, &written).expect("a written profile reads back");
            assert_eq!(again, p);
        }
        Err(e) => {
            let text = e.to_string();
            one_bounded_line("profile refusal", &text);
            assert!(text.contains("fuzz.json"), "the refusal names the file: {text}");
        }
    }
}

//! The instance domain: a bare host or `host:port`, checked and normalised before anything is sent.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::error::{Error, Result};

pub use crate::error::DomainMistake;

/// The domain of a Rancher server: `rancher.example.com`, `rancher.example.com:8443`, `10.0.0.5`, `[::1]:8443`.
/// Always lower case; the server is always reached at `https://<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceDomain {
    host: String,
    port: Option<u16>,
}

impl InstanceDomain {
    /// Checks and normalises what a user typed. A refusal names the mistake and shows the corrected value.
    pub fn parse(input: &str) -> Result<InstanceDomain> {
        if input.trim().is_empty() {
            return Err(refuse(
                DomainMistake::Empty,
                "it is empty; enter the domain of your Rancher server, e.g. `rancher.example.com`".into(),
                None,
            ));
        }
        let suggestion = suggest(input);
        let try_instead = |s: &Option<String>| match s {
            Some(s) => format!("enter `{s}`"),
            None => "enter just the host name, e.g. `rancher.example.com`".to_string(),
        };
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let inner = input.trim();
            let what = if inner != input {
                "spaces or a line break around it"
            } else if inner.contains(['\n', '\r']) {
                "a line break inside it"
            } else if inner.contains(|c: char| c.is_control() && c != '\t') {
                "a control character inside it"
            } else {
                "a space inside it"
            };
            // Shown with escapes: the refusal stays one line and prints no control characters.
            return Err(refuse(
                DomainMistake::Whitespace,
                format!("`{}` has {what}; {}", escape_controls(inner), try_instead(&suggestion)),
                suggestion,
            ));
        }
        // Checked before anything is sent, even a DNS query: a pasted token would leak to the resolver.
        if crate::token::BearerToken::parse(input).is_ok() || crate::token::mask_secrets(input) != input {
            return Err(refuse(
                DomainMistake::InvalidHost,
                format!("`{input}` looks like a bearer token or its secret, not a domain; the token goes in RANCHER_TOKEN, --token-file or --token-stdin, the domain is e.g. `rancher.example.com`"),
                None,
            ));
        }
        let lower = input.to_ascii_lowercase();
        if let Some(pos) = lower.find("://") {
            let scheme = &lower[..pos];
            let (mistake, msg) = match scheme {
                "https" => (
                    DomainMistake::HttpsUrl,
                    format!("a full URL was pasted; the domain field takes the bare domain: {} (https:// is added automatically)", try_instead(&suggestion)),
                ),
                "http" => (
                    DomainMistake::PlainHttp,
                    format!(
                        "plain HTTP is not supported: Rancher is always reached over HTTPS; {} if the server serves HTTPS",
                        try_instead(&suggestion)
                    ),
                ),
                _ => (DomainMistake::OtherScheme, format!("`{scheme}://` is not a Rancher address; {}", try_instead(&suggestion))),
            };
            // A URL may carry credentials: never echo the input, only the corrected value.
            return Err(refuse(mistake, msg, suggestion));
        }
        if let Some(at) = lower.rfind('@') {
            let _ = at;
            return Err(refuse(
                DomainMistake::Credentials,
                format!(
                    "it holds credentials before `@` (user@host); the token is entered separately: {}",
                    try_instead(&suggestion)
                ),
                suggestion,
            ));
        }
        if let Some(i) = lower.find(['/', '?', '#']) {
            let (mistake, what) = match lower.as_bytes()[i] {
                b'/' => (DomainMistake::Path, "a path"),
                b'?' => (DomainMistake::Query, "a query"),
                _ => (DomainMistake::Query, "a fragment"),
            };
            return Err(refuse(
                mistake,
                format!(
                    "`{input}` has {what} after the host; the domain takes no path: {}",
                    try_instead(&suggestion)
                ),
                suggestion,
            ));
        }
        let (host, port) = split_host_port(&lower).map_err(|(mistake, why)| {
            let hint = match (&suggestion, mistake) {
                (Some(s), _) if s != &lower => format!("; did you mean `{s}`?"),
                _ => String::new(),
            };
            refuse(
                mistake,
                format!("`{input}`: {why}{hint}"),
                suggestion.clone().filter(|s| s != &lower),
            )
        })?;
        Ok(InstanceDomain { host, port })
    }

    /// The host as it appears in a URL (IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when one other than 443 was given (443 is normalised away).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `https://<domain>/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("https://{self}/")).expect("a checked domain always makes a URL")
    }
}

impl fmt::Display for InstanceDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl FromStr for InstanceDomain {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        InstanceDomain::parse(s)
    }
}

impl Serialize for InstanceDomain {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InstanceDomain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        InstanceDomain::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `s` with control characters (line breaks, escapes) written as escapes.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A refusal; anything in it shaped like a token is masked (the input is echoed, and a token may have been
/// pasted into the domain field).
fn refuse(mistake: DomainMistake, message: String, suggestion: Option<String>) -> Error {
    Error::InvalidDomain {
        mistake,
        message: crate::token::mask_secrets(&message),
        suggestion: suggestion.map(|s| crate::token::mask_secrets(&s)),
    }
}

/// Best guess at what was meant: trimmed, without scheme, credentials, path, query; lower case. `None` when
/// even that is not a valid domain.
fn suggest(input: &str) -> Option<String> {
    let mut s = input.trim().to_ascii_lowercase();
    if let Some(pos) = s.find("://") {
        s = s[pos + 3..].to_string();
    }
    if let Some(i) = s.find(['/', '?', '#']) {
        s.truncate(i);
    }
    if let Some(at) = s.rfind('@') {
        s = s[at + 1..].to_string();
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    // A bare IPv6 address without brackets.
    if s.parse::<Ipv6Addr>().is_ok() {
        return Some(format!("[{s}]"));
    }
    let (host, port) = split_host_port(&s).ok()?;
    Some(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

type Refusal = (DomainMistake, String);

/// Splits and checks `host[:port]` (already lower case, no scheme/path/whitespace).
fn split_host_port(s: &str) -> std::result::Result<(String, Option<u16>), Refusal> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err((DomainMistake::InvalidHost, "the IPv6 address has no closing `]`".into()));
        };
        let addr = &rest[..end];
        let Ok(parsed) = addr.parse::<Ipv6Addr>() else {
            return Err((DomainMistake::InvalidHost, format!("`{addr}` is not an IPv6 address")));
        };
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p if p.starts_with(':') => Some(&p[1..]),
            _ => {
                return Err((
                    DomainMistake::InvalidHost,
                    "only `:port` may follow the `]` of an IPv6 address".into(),
                ))
            }
        };
        (format!("[{parsed}]"), port)
    } else {
        if s.matches(':').count() > 1 {
            return Err((
                DomainMistake::InvalidHost,
                "an IPv6 address must be written in brackets, e.g. `[fd00::1]:443`".into(),
            ));
        }
        match s.split_once(':') {
            Some((h, p)) => (check_host(h)?, Some(p)),
            None => (check_host(s)?, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            // 443 is what https:// means anyway: one spelling per server.
            Ok(443) if p.bytes().all(|b| b.is_ascii_digit()) => None,
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ if p.is_empty() => return Err((DomainMistake::InvalidPort, "the port after `:` is missing".into())),
            _ => {
                return Err((
                    DomainMistake::InvalidPort,
                    format!("`{p}` is not a port (a number from 1 to 65535)"),
                ))
            }
        },
    };
    Ok((host, port))
}

fn check_host(h: &str) -> std::result::Result<String, Refusal> {
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.is_empty() {
        return Err((DomainMistake::InvalidHost, "the host name is missing".into()));
    }
    if h.parse::<Ipv4Addr>().is_ok() {
        return Ok(h.to_string());
    }
    if h.len() > 253 {
        return Err((
            DomainMistake::InvalidHost,
            "the host name is longer than 253 characters".into(),
        ));
    }
    let labels: Vec<&str> = h.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err((DomainMistake::InvalidHost, format!("`{h}` is not a valid IPv4 address")));
    }
    for label in &labels {
        if label.is_empty() {
            return Err((
                DomainMistake::InvalidHost,
                format!("`{h}` has an empty label (two dots in a row, or a leading dot)"),
            ));
        }
        if label.len() > 63 {
            return Err((
                DomainMistake::InvalidHost,
                format!("`{label}` is longer than 63 characters"),
            ));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err((
                DomainMistake::InvalidHost,
                format!("`{h}` holds `{c}`, which a host name cannot contain (letters, digits, `-` and `.` only)"),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err((DomainMistake::InvalidHost, format!("`{label}` starts or ends with `-`")));
        }
    }
    // URL parsers read a name whose last label is a number (`10.0.0ab.5`, `0x7f.1`) as an IPv4 address: such a
    // name would be refused when the URL is built, or reach another host than the one shown.
    match Url::parse(&format!("https://{h}/")) {
        Ok(url) if url.host_str() == Some(h) => Ok(h.to_string()),
        _ => Err((
            DomainMistake::InvalidHost,
            format!("`{h}` ends in a number, so it reads as a malformed IPv4 address; enter the full host name or the IP address"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_control_characters_are_shown_escaped_on_one_line() {
        // Found by the `domain` fuzz target: the refusal echoed a line break.
        let (mistake, message, _) = refused("10\n\0.5");
        assert_eq!(mistake, DomainMistake::Whitespace);
        assert!(
            message.starts_with("`10\\n\\u{0}.5` has a line break inside it"),
            "{message}"
        );
        let (_, message, _) = refused("rancher\u{1b}[31m.example.com/x");
        assert!(
            message.contains("a control character inside it") && !message.contains('\u{1b}'),
            "{message}"
        );
    }

    #[test]
    fn a_token_in_the_domain_field_is_refused_masked() {
        let secret = "x4ppfdpd89nsk9mc9c2ght4z7gdkb2hpq6b5kc952ddng9rmznxs84";
        for (input, hidden) in [
            (format!("token-gcwhb:{secret}"), &secret[30..42]),
            ("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd".to_string(), "MnOpQrStUvWx"),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LWFiYzEyIn0.c2lnbmF0dXJl".to_string(),
                "eyJzdWIiOiJ1",
            ),
            (secret.to_string(), &secret[30..42]),
            (format!("{secret}.example.com"), &secret[30..42]),
        ] {
            let (_, message, suggestion) = refused(&input);
            assert!(!message.contains(hidden), "{message}");
            assert!(!suggestion.unwrap_or_default().contains(hidden));
        }
        let (_, message, _) = refused(&format!("token-gcwhb:{secret}"));
        assert!(message.contains("looks like a bearer token"), "{message}");
    }

    #[test]
    fn names_that_read_as_ipv4_are_refused_not_a_panic() {
        // Found by the `domain` fuzz target: the URL parser read these as (malformed) IPv4 addresses.
        for input in ["10.0.0ra.5", "rancher.5", "0x7f.1", "a.0x10"] {
            let (mistake, message, _) = refused(input);
            assert_eq!(mistake, DomainMistake::InvalidHost, "{input}: {message}");
            assert!(message.contains("ends in a number"), "{message}");
        }
        assert_eq!(
            InstanceDomain::parse("rancher5.example.com").unwrap().to_string(),
            "rancher5.example.com"
        );
    }

    fn refused(input: &str) -> (DomainMistake, String, Option<String>) {
        match InstanceDomain::parse(input) {
            Err(Error::InvalidDomain {
                mistake,
                message,
                suggestion,
            }) => (mistake, message, suggestion),
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn accepts_and_normalises() {
        for (input, want) in [
            ("rancher.example.com", "rancher.example.com"),
            ("Rancher.Example.COM", "rancher.example.com"),
            ("rancher.example.com:8443", "rancher.example.com:8443"),
            ("rancher.example.com.", "rancher.example.com"),
            ("localhost", "localhost"),
            ("10.0.0.5", "10.0.0.5"),
            ("127.0.0.1:9443", "127.0.0.1:9443"),
            ("[::1]", "[::1]"),
            ("[FD00::1]:443", "[fd00::1]"),
            ("[fd00:0::0001]:8443", "[fd00::1]:8443"),
            ("rancher.example.com:443", "rancher.example.com"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ] {
            let d = InstanceDomain::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.to_string(), want);
            assert_eq!(d.base_url().as_str(), format!("https://{want}/"));
        }
        let d = InstanceDomain::parse("[::1]:8443").unwrap();
        assert_eq!((d.host(), d.port()), ("[::1]", Some(8443)));
    }

    #[test]
    fn https_url_suggests_the_bare_domain() {
        let (m, msg, s) = refused("https://rancher.example.com/dashboard/home");
        assert_eq!(m, DomainMistake::HttpsUrl);
        assert_eq!(s.as_deref(), Some("rancher.example.com"));
        assert!(msg.contains("enter `rancher.example.com`"), "{msg}");
        assert!(msg.contains("full URL"), "{msg}");
        let (_, _, s) = refused("HTTPS://Rancher.Example.com:8443");
        assert_eq!(s.as_deref(), Some("rancher.example.com:8443"));
    }

    #[test]
    fn plain_http_is_refused() {
        let (m, msg, s) = refused("http://rancher.example.com");
        assert_eq!(m, DomainMistake::PlainHttp);
        assert!(msg.contains("plain HTTP is not supported"), "{msg}");
        assert_eq!(s.as_deref(), Some("rancher.example.com"));
        assert_eq!(refused("ftp://rancher.example.com").0, DomainMistake::OtherScheme);
    }

    #[test]
    fn path_query_fragment() {
        let (m, msg, s) = refused("rancher.example.com/v3");
        assert_eq!(m, DomainMistake::Path);
        assert!(msg.contains("path") && msg.contains("`rancher.example.com`"), "{msg}");
        assert_eq!(s.as_deref(), Some("rancher.example.com"));
        assert_eq!(refused("rancher.example.com?x=1").0, DomainMistake::Query);
        assert_eq!(refused("rancher.example.com#top").0, DomainMistake::Query);
    }

    #[test]
    fn credentials_are_refused_and_not_echoed() {
        let (m, msg, s) = refused("admin:hunter2secret@rancher.example.com");
        assert_eq!(m, DomainMistake::Credentials);
        assert!(!msg.contains("hunter2secret"), "{msg}");
        assert_eq!(s.as_deref(), Some("rancher.example.com"));
        let (_, msg, _) = refused("https://admin:hunter2secret@rancher.example.com/");
        assert!(!msg.contains("hunter2secret"), "{msg}");
    }

    #[test]
    fn whitespace_and_empty() {
        let (m, msg, s) = refused(" rancher.example.com\n");
        assert_eq!(m, DomainMistake::Whitespace);
        assert_eq!(s.as_deref(), Some("rancher.example.com"));
        assert!(msg.contains("enter `rancher.example.com`"), "{msg}");
        assert_eq!(refused("rancher example.com").0, DomainMistake::Whitespace);
        assert_eq!(refused("").0, DomainMistake::Empty);
        assert_eq!(refused("   ").0, DomainMistake::Empty);
    }

    #[test]
    fn invalid_hosts_and_ports() {
        for bad in [
            "ranch_er.example.com",
            "-rancher.example.com",
            "rancher..example.com",
            "999.1.1.1",
            "[::1",
            "[nope]",
            "fd00::1",
            ":443",
        ] {
            assert_eq!(refused(bad).0, DomainMistake::InvalidHost, "{bad}");
        }
        let (_, _, s) = refused("fd00::1");
        assert_eq!(s.as_deref(), Some("[fd00::1]"));
        for bad in [
            "rancher.example.com:",
            "rancher.example.com:0",
            "rancher.example.com:65536",
            "rancher.example.com:https",
            "[::1]:x",
        ] {
            assert_eq!(refused(bad).0, DomainMistake::InvalidPort, "{bad}");
        }
    }

    #[test]
    fn serde_round_trip_checks() {
        let d: InstanceDomain = serde_json::from_str("\"Rancher.Example.com\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"rancher.example.com\"");
        assert!(serde_json::from_str::<InstanceDomain>("\"https://x.y/\"").is_err());
    }
}

//! What an operation is: the static description every generated request points at.

use std::fmt;
use std::str::FromStr;

pub use crate::catalog::{find_operation, operations, suggest_operation};

/// The API surface an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Surface {
    /// Kubernetes-style resources under `/apis/...` (Rancher 2.11+ for our kinds).
    Rk,
    /// Norman `/v3`.
    V3,
    /// Legacy Rancher 1.x `/v1` access control.
    V1,
    /// Endpoints that need no token (`/v3-public`, `/v1-public`, `/ping`, `/rancherversion`).
    Public,
}

impl Surface {
    /// The short name used in operation ids (`rk`, `v3`, `v1`, `public`).
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Rk => "rk",
            Surface::V3 => "v3",
            Surface::V1 => "v1",
            Surface::Public => "public",
        }
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Type of a parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Any text.
    String,
    /// A whole number.
    Int,
    /// `true` or `false`.
    Bool,
}

/// A path or query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Wire name.
    pub name: &'static str,
    /// Value type.
    pub kind: ParamKind,
    /// One-line description.
    pub doc: &'static str,
}

/// The request body of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySpec {
    /// Type name in [`crate::types`] (or `any`).
    pub type_name: &'static str,
    /// The body must be sent.
    pub required: bool,
    /// Content type sent with it.
    pub content_type: &'static str,
}

/// What an operation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// JSON of the named type (`any` for free-form, `collection<T>` for norman lists).
    Json(&'static str),
    /// Plain text (`/ping`).
    Text,
    /// No body.
    Empty,
}

/// How a list operation pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pagination {
    /// One answer.
    None,
    /// Kubernetes `limit` + `continue` (`metadata.continue` in the answer).
    Continue,
    /// Norman `pagination.next` links.
    NextLink,
}

/// Whether an operation needs the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>` is sent.
    Bearer,
    /// No token is sent (public endpoints).
    None,
}

/// A Rancher server version (`v2.13.1`, `2.8`, `1.6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RancherVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl RancherVersion {
    /// A version from its parts.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        RancherVersion { major, minor, patch }
    }

    /// True when `self` is at least `major.minor`.
    pub fn at_least(&self, major: u16, minor: u16) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for RancherVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A version string that is not `[v]major.minor[.patch][-suffix]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Rancher version (expected e.g. v2.13.1 or 2.8)")]
pub struct VersionParseError(pub String);

impl FromStr for RancherVersion {
    type Err = VersionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionParseError(s.to_string());
        let t = s.trim().trim_start_matches(['v', 'V']);
        // Drop build or pre-release suffixes: 2.13.1-rc2, 2.13.1+abc.
        let core = t.split(['-', '+']).next().unwrap_or("");
        let mut parts = core.split('.');
        let major = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(err)?
            .parse()
            .map_err(|_| err())?;
        let minor = parts.next().ok_or_else(err)?.parse().map_err(|_| err())?;
        let patch = match parts.next() {
            Some(p) => p.parse().map_err(|_| err())?,
            None => 0,
        };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(RancherVersion { major, minor, patch })
    }
}

/// Static description of one operation of the endpoint list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationSpec {
    /// Stable id, e.g. `rk.users.list`.
    pub id: &'static str,
    /// API surface.
    pub surface: Surface,
    /// HTTP method.
    pub method: Method,
    /// Path template with `{param}` placeholders; may end in a fixed `?action=...`.
    pub path: &'static str,
    /// Path parameters in template order.
    pub path_params: &'static [ParamSpec],
    /// Query parameters.
    pub query_params: &'static [ParamSpec],
    /// The request body, if any.
    pub body: Option<BodySpec>,
    /// What it answers.
    pub response: ResponseKind,
    /// Item type of a list.
    pub item_type: Option<&'static str>,
    /// Changes state on the server (never retried automatically).
    pub mutating: bool,
    /// How it pages.
    pub pagination: Pagination,
    /// Whether a token is sent.
    pub auth: Auth,
    /// First Rancher version that serves it.
    pub since: RancherVersion,
    /// First Rancher version that no longer serves it.
    pub removed: Option<RancherVersion>,
    /// One-line description.
    pub summary: &'static str,
}

impl OperationSpec {
    /// True when a server of version `v` serves this operation.
    pub fn available_in(&self, v: RancherVersion) -> bool {
        v.at_least(self.since.major, self.since.minor) && self.removed.is_none_or(|r| !v.at_least(r.major, r.minor))
    }

    /// A query parameter by wire name.
    pub fn query_param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.query_params.iter().find(|p| p.name == name)
    }

    /// Whether a lost answer may be recovered by sending the request again: reads, and POSTs that only read
    /// (e.g. a principal search). DELETE is handled apart (a repeated DELETE answering 404 means done).
    pub fn is_idempotent_read(&self) -> bool {
        !self.mutating
    }
}

/// The candidate nearest to `word` (edit distance, ignoring case) when it is near enough to be a typo: at most
/// half the word's length (at least 2) edits, or a candidate the word (3 characters or more) abbreviates. The "did
/// you mean" of every name a person types: operation ids, workflow ids, input names, roles.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_lowercase();
    let len = w.chars().count();
    candidates
        .into_iter()
        .map(|c| {
            let lc = c.to_lowercase();
            let d = if len >= 3 && lc.starts_with(&w) {
                0
            } else {
                edit_distance(&w, &lc)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= len.max(4) / 2)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_prefixes_and_suffixes() {
        assert_eq!(
            "v2.13.1".parse::<RancherVersion>().unwrap(),
            RancherVersion::new(2, 13, 1)
        );
        assert_eq!("2.8".parse::<RancherVersion>().unwrap(), RancherVersion::new(2, 8, 0));
        assert_eq!(
            "v2.12.0-rc3".parse::<RancherVersion>().unwrap(),
            RancherVersion::new(2, 12, 0)
        );
        assert!("latest".parse::<RancherVersion>().is_err());
        assert!("2".parse::<RancherVersion>().is_err());
        assert!("2.x".parse::<RancherVersion>().is_err());
    }

    #[test]
    fn availability_follows_since_and_removed() {
        let users = find_operation("rk.users.list").unwrap();
        assert!(users.available_in(RancherVersion::new(2, 13, 0)));
        assert!(!users.available_in(RancherVersion::new(2, 12, 9)));
        let legacy = find_operation("v1.token.get").unwrap();
        assert!(legacy.available_in(RancherVersion::new(1, 6, 0)));
        assert!(!legacy.available_in(RancherVersion::new(2, 0, 0)));
    }

    #[test]
    fn answers_lose_their_secrets_at_any_depth() {
        let mut token = serde_json::json!({"metadata": {"name": "token-x"}, "status": {"value": "s3cret", "bearerToken": "ext/token-x:s3cret", "expiresAt": ""}});
        find_operation("rk.tokens.create").unwrap().redact_answer(&mut token);
        assert_eq!(token["status"]["value"], crate::REDACTED);
        assert_eq!(token["status"]["bearerToken"], crate::REDACTED);
        assert_eq!(token["status"]["expiresAt"], "");
        let mut v3 = serde_json::json!({"data": [{"id": "token-y", "token": "token-y:s3cret", "ttl": 0}]});
        find_operation("v3.tokens.list").unwrap().redact_answer(&mut v3);
        assert_eq!(v3["data"][0]["token"], crate::REDACTED);
        let mut kc = serde_json::json!({"config": "apiVersion: v1 ... token: kubeconfig-u-x:s3cret"});
        find_operation("v3.clusters.generate-kubeconfig")
            .unwrap()
            .redact_answer(&mut kc);
        assert_eq!(kc["config"], crate::REDACTED);
        let mut plain = serde_json::json!({"metadata": {"name": "admin"}, "displayName": "Admin"});
        let before = plain.clone();
        find_operation("rk.globalroles.get").unwrap().redact_answer(&mut plain);
        assert_eq!(plain, before);
    }

    #[test]
    fn suggestions_find_near_misses() {
        assert_eq!(suggest_operation("rk.user.list"), Some("rk.users.list"));
        assert_eq!(suggest_operation("completely-different"), None);
    }
}

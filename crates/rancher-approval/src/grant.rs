//! Time-bound grants: what an executed request granted, until when, and how it ended.
//!
//! An execution that grants something for a while reports a [`NewGrant`] with its [`crate::Outcome`]; the store
//! records the [`Grant`] in the same transaction as the outcome, with its due time counted from then (the clock
//! starts at execution, not at approval). Revocation is claimed once ([`crate::Store::claim_revocation`]), like an
//! execution: of several processes racing on one store, one revokes and the others skip it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::basics::ServerIdentity;
use crate::error::{Error, Result};
use crate::principal::Principal;

/// Which kind of Rancher binding a grant created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingKind {
    /// A global role binding (`globalrolebindings`).
    Global,
    /// A cluster role template binding (`clusterroletemplatebindings`, in the cluster's namespace).
    Cluster,
    /// A project role template binding (`projectroletemplatebindings`, in the project's namespace).
    Project,
}

impl BindingKind {
    /// `global`, `cluster` or `project`.
    pub fn as_str(self) -> &'static str {
        match self {
            BindingKind::Global => "global",
            BindingKind::Cluster => "cluster",
            BindingKind::Project => "project",
        }
    }
}

/// Who holds a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A Rancher user (the subject is the user id).
    User,
    /// A group (the subject is the group principal id).
    Group,
}

impl SubjectKind {
    /// `user` or `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::Group => "group",
        }
    }
}

/// What one execution granted for a while, as the workflow reports it with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGrant {
    /// The binding's kind.
    pub kind: BindingKind,
    /// The binding's name (metadata name; on norman `/v3` the part after the namespace).
    pub binding: String,
    /// The binding's namespace: the cluster id (cluster) or the project namespace (project); none for global.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The cluster id (cluster) or `c-x:p-y` project id (project); none for global.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whether a user or a group holds it.
    pub subject_kind: SubjectKind,
    /// The user id or group principal id.
    pub subject: String,
    /// The global role or role template id.
    pub role: String,
    /// How long it holds, counted from the execution.
    pub duration_secs: u64,
}

/// A grant change reported with an execution's outcome, recorded in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum GrantChange {
    /// The execution created a binding that ends after a while.
    New(NewGrant),
    /// The execution extends an active grant (an approved `grants extend`).
    Extend {
        /// The grant id.
        grant: String,
        /// Seconds added to its due time.
        by_secs: u64,
        /// The binding the extension request names: it must be the grant's, or nothing is extended (a request
        /// cannot extend someone else's grant by naming its id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binding: Option<String>,
    },
}

/// How a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedHow {
    /// The binding was deleted.
    Deleted,
    /// The binding was already gone (removed out of band, or deleted by an earlier attempt whose answer was lost).
    AlreadyRemoved,
    /// A binding with that name exists but is no longer the one granted (another subject or role): left alone.
    ChangedOutOfBand,
}

impl RevokedHow {
    /// `deleted`, `already_removed` or `changed_out_of_band`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokedHow::Deleted => "deleted",
            RevokedHow::AlreadyRemoved => "already_removed",
            RevokedHow::ChangedOutOfBand => "changed_out_of_band",
        }
    }
}

/// How a grant ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who revoked it: `system` when it came due, else the user who ended it early.
    pub by: String,
    /// The process that revoked it (`program@host pid N`).
    pub process: String,
    /// What was found and done.
    pub how: RevokedHow,
    /// Details for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// An extension of a grant, by an approved request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// The request that extended it.
    pub request: String,
    /// Seconds added.
    pub by_secs: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// A revocation in progress: only its holder may record the result, until the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationClaim {
    /// The grant.
    pub grant: String,
    /// Unique id of this claim.
    pub claim_id: String,
    /// The process holding it.
    pub process: String,
    /// 1 for the first claim, +1 for each one after (a lost claim's holder can record nothing).
    pub epoch: u64,
    /// Until when it holds.
    pub lease_until: DateTime<Utc>,
    /// True when an earlier claim ran out without a recorded result (its delete may have been sent).
    pub took_over: bool,
}

/// A recorded time-bound grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant id: the id of the request whose execution granted it.
    pub id: String,
    /// The workflow that granted it.
    pub workflow_id: String,
    /// What was granted.
    #[serde(flatten)]
    pub granted: NewGrant,
    /// Who asked for it.
    pub requested_by: Principal,
    /// Who approved it (empty when the policy needed no approval).
    #[serde(default)]
    pub approved_by: Vec<Principal>,
    /// The server it was granted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerIdentity>,
    /// When the execution recorded it (the clock starts here).
    pub granted_at: DateTime<Utc>,
    /// When it ends as granted (moved by extensions; an early end leaves it and sets `ended_at`).
    pub due_at: DateTime<Utc>,
    /// When it was ended before `due_at`, if it was (grants stored before this field record an early end by moving
    /// `due_at` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Extensions, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
    /// Who ended it before its time, if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_early_by: Option<String>,
    /// The current revocation claim, while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<RevocationClaim>,
    /// Revocation attempts that failed (Rancher unreachable, refused).
    #[serde(default)]
    pub failures: u32,
    /// The last failure, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The next attempt is not before this (backoff after a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// How it ended, once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
}

/// Where a grant stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    /// In force, not yet due.
    Active,
    /// Due and not yet revoked.
    Overdue,
    /// Revoked when it fell due (whatever was found on the server).
    Expired,
    /// Ended before its time and revoked.
    Revoked,
}

impl GrantStatus {
    /// `active`, `overdue`, `expired` or `revoked` (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Active => "active",
            GrantStatus::Overdue => "overdue",
            GrantStatus::Expired => "expired",
            GrantStatus::Revoked => "revoked",
        }
    }
}

impl GrantStatus {
    /// Whether a grant in status `s` is listed when asking for grants in this status: asking for `expired` lists
    /// every ended grant, `revoked` (ended early) ones included.
    pub fn includes(self, s: GrantStatus) -> bool {
        self == s || (self == GrantStatus::Expired && s == GrantStatus::Revoked)
    }
}

impl std::str::FromStr for GrantStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [
            GrantStatus::Active,
            GrantStatus::Overdue,
            GrantStatus::Expired,
            GrantStatus::Revoked,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
        .ok_or_else(|| format!("unknown status `{s}`; use active, overdue, expired or revoked"))
    }
}

impl Grant {
    /// Where it stands at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> GrantStatus {
        if self.revocation.is_some() {
            if self.ended_early_by.is_some() {
                GrantStatus::Revoked
            } else {
                GrantStatus::Expired
            }
        } else if self.ends_at() <= now {
            GrantStatus::Overdue
        } else {
            GrantStatus::Active
        }
    }

    /// When it ends in fact: `ended_at` when it was ended early, else `due_at`.
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.ended_at.map_or(self.due_at, |e| e.min(self.due_at))
    }

    /// Whether a revocation may be claimed at `now`: due, not revoked, no live claim, past any backoff.
    pub fn revocable(&self, now: DateTime<Utc>) -> bool {
        self.revocation.is_none()
            && self.ends_at() <= now
            && self.next_attempt_at.is_none_or(|t| t <= now)
            && self.claim.as_ref().is_none_or(|c| c.lease_until <= now)
    }
}

/// Which grants [`crate::Store::list_grants`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    /// Only grants not yet revoked.
    pub unrevoked: bool,
    /// Only grants due at or before this time (and not revoked).
    pub due_by: Option<DateTime<Utc>>,
}

impl GrantFilter {
    /// Every grant.
    pub fn all() -> Self {
        Self::default()
    }

    /// Grants not yet revoked.
    pub fn unrevoked() -> Self {
        Self {
            unrevoked: true,
            due_by: None,
        }
    }

    /// Unrevoked grants due at or before `now`.
    pub fn due(now: DateTime<Utc>) -> Self {
        Self {
            unrevoked: true,
            due_by: Some(now),
        }
    }

    pub(crate) fn matches(&self, g: &Grant) -> bool {
        (!self.unrevoked || g.revocation.is_none()) && self.due_by.is_none_or(|t| g.ends_at() <= t)
    }
}

/// The longest grant or extension a duration may ask for: 10 years.
pub const MAX_GRANT_SECS: u64 = 10 * 366 * 86_400;

/// Parses a grant duration as people type it: `30m`, `8h`, `7d`, `2w`, `45s`, or combined (`1h30m`). A bare
/// number is refused (say which unit); zero and more than ten years are refused.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = |why: String| Error::InvalidDuration {
        text: text.to_owned(),
        reason: why,
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad(format!("expected a number at `{rest}`")));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large".into()))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "" => return Err(bad(format!("`{n}` has no unit"))),
            other => return Err(bad(format!("unknown unit `{other}`"))),
        };
        total = n
            .checked_mul(scale)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| bad("it is too long".into()))?;
    }
    if total == 0 {
        return Err(bad("it must be longer than zero".into()));
    }
    if total > MAX_GRANT_SECS {
        return Err(bad("it must be at most ten years".into()));
    }
    Ok(Duration::from_secs(total))
}

/// A duration for people: `8h`, `1h30m`, `7d`, `45s`.
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out += &format!("{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_people_type_them() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration(" 8h ").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        for (bad, why) in [
            ("", "empty"),
            ("30", "no unit"),
            ("5y", "unknown unit `y`"),
            ("0h", "longer than zero"),
            ("h", "expected a number"),
            ("99999w", "ten years"),
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("e.g. 30m, 8h, 7d"), "{bad}: {e}");
        }
        assert_eq!(format_duration(5400), "1h30m");
        assert_eq!(format_duration(7 * 86_400), "7d");
    }
}

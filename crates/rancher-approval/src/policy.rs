//! Approval policies: who must say yes before a workflow runs. Plain data with a stable JSON/YAML form.
//!
//! The wire form (JSON shown; YAML is the same structure):
//!
//! ```json
//! {"kind": "none", "options": {...}}
//! {"kind": "installer", "fallback": true, "options": {...}}
//! {"kind": "approvers", "combine": "any",
//!  "thresholds": [{"count": 2, "of": [{"group": "github_team://7"}], "label": "platform team"},
//!                 {"count": "all", "of": [{"user": "u-sec1"}]}],
//!  "options": {"allow_self_approval": false, "allow_target_approval": false, "expires_after_secs": 604800,
//!              "require_requester_reason": false, "require_reviewer_reason": false}}
//! ```
//!
//! Every field except `kind`, `thresholds` and `of` may be omitted and takes the default shown.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::principal::Principal;

/// Default time a pending request waits before it expires: 7 days.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest expiry accepted: about 10 years.
const MAX_EXPIRY_SECS: u64 = 3660 * 24 * 3600;

/// An approval policy: the rule plus the options every rule shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Who must approve.
    #[serde(flatten)]
    pub rule: Rule,
    /// Options common to every rule.
    #[serde(default)]
    pub options: PolicyOptions,
}

/// Who must approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// No approval: the request is approved the moment it is created.
    None,
    /// The principal who installed the workflow must approve.
    ///
    /// When the installer may not approve (they are the requester and self-approval is off, or they are a target
    /// of the request, or no installer is recorded), the request waits instead for any one of the fallback
    /// approvers the caller resolved (for Rancher: another user holding the `admin` global role), if `fallback`
    /// is on.
    Installer {
        /// Whether fallback approvers may stand in when the installer may not approve.
        #[serde(default = "yes")]
        fallback: bool,
    },
    /// Named principals or groups, with one or more thresholds.
    Approvers {
        /// Whether any one threshold suffices (`any`, the default) or all must be met (`all`).
        #[serde(default)]
        combine: Combine,
        /// The thresholds, e.g. "2 of the platform team" and "1 security lead".
        thresholds: Vec<Threshold>,
    },
}

fn yes() -> bool {
    true
}

/// How several thresholds combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Approved when any threshold is met.
    #[default]
    Any,
    /// Approved when every threshold is met.
    All,
}

/// "N of these principals or groups".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    /// How many distinct approvers are needed.
    pub count: Count,
    /// The principals and groups whose members count.
    pub of: Vec<ApproverRef>,
    /// An optional name for people, e.g. `platform team`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Threshold {
    /// At least `n` distinct approvers from `of`.
    pub fn at_least(n: u32, of: impl IntoIterator<Item = ApproverRef>) -> Self {
        Self {
            count: Count::AtLeast(n),
            of: of.into_iter().collect(),
            label: None,
        }
    }

    /// Every entry of `of` covered by a distinct approver.
    pub fn all_of(of: impl IntoIterator<Item = ApproverRef>) -> Self {
        Self {
            count: Count::All,
            of: of.into_iter().collect(),
            label: None,
        }
    }

    /// Names the threshold for people.
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Whether `principal` is one of the principals this threshold names (directly or through a group).
    pub fn names(&self, principal: &Principal) -> bool {
        self.of.iter().any(|r| r.matches(principal))
    }
}

/// How many approvers a [`Threshold`] needs. Serialised as a number or the string `"all"` (`"any"` reads as 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CountRepr", into = "CountRepr")]
pub enum Count {
    /// At least this many distinct approvers matching any entry.
    AtLeast(u32),
    /// Each entry covered by its own distinct approver (a user entry by that user, a group by a member).
    All,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum CountRepr {
    Number(u32),
    Word(String),
}

impl TryFrom<CountRepr> for Count {
    type Error = String;
    fn try_from(r: CountRepr) -> Result<Self, String> {
        match r {
            CountRepr::Number(n) => Ok(Count::AtLeast(n)),
            CountRepr::Word(w) if w == "all" => Ok(Count::All),
            CountRepr::Word(w) if w == "any" => Ok(Count::AtLeast(1)),
            CountRepr::Word(w) => Err(format!("count must be a number, \"any\" or \"all\", not {w:?}")),
        }
    }
}

impl From<Count> for CountRepr {
    fn from(c: Count) -> Self {
        match c {
            Count::AtLeast(n) => CountRepr::Number(n),
            Count::All => CountRepr::Word("all".into()),
        }
    }
}

/// A principal named in an approver list: a user by user id, or a group by group principal id.
///
/// JSON: `{"user": "u-abc12"}` or `{"group": "github_team://123"}`. Text ([`FromStr`]/[`Display`](std::fmt::Display)):
/// `user:u-abc12`, `group:github_team://123`; a bare id reads as a group when it contains `://`, else as a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproverRef {
    /// A Rancher user id.
    User(String),
    /// A group principal id.
    Group(String),
}

impl ApproverRef {
    /// A user reference.
    pub fn user(id: impl Into<String>) -> Self {
        Self::User(id.into())
    }

    /// A group reference.
    pub fn group(id: impl Into<String>) -> Self {
        Self::Group(id.into())
    }

    /// Whether `principal` is this user or a member of this group.
    pub fn matches(&self, principal: &Principal) -> bool {
        match self {
            Self::User(id) => principal.id == *id,
            Self::Group(g) => principal.in_group(g),
        }
    }
}

impl std::fmt::Display for ApproverRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::Group(id) => write!(f, "group:{id}"),
        }
    }
}

impl FromStr for ApproverRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let r = if let Some(id) = s.strip_prefix("user:") {
            Self::User(id.to_owned())
        } else if let Some(id) = s.strip_prefix("group:") {
            Self::Group(id.to_owned())
        } else if s.contains("://") {
            Self::Group(s.to_owned())
        } else {
            Self::User(s.to_owned())
        };
        match &r {
            Self::User(id) | Self::Group(id) if id.is_empty() => Err(Error::InvalidPolicy {
                reason: format!("`{s}` names no approver; write `user:<user id>` or `group:<group principal id>`"),
            }),
            _ => Ok(r),
        }
    }
}

/// Options every policy has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyOptions {
    /// Whether the requester may approve their own request (default: no).
    pub allow_self_approval: bool,
    /// Whether a principal the request targets (e.g. the user being granted admin) may approve it (default: no).
    pub allow_target_approval: bool,
    /// Seconds a pending request waits before it expires (default: 7 days).
    pub expires_after_secs: u64,
    /// Whether the requester must give a reason.
    pub require_requester_reason: bool,
    /// Whether each reviewer must give a reason.
    pub require_reviewer_reason: bool,
    /// The longest time-bound grant (or extension) a request may ask for, in seconds (workflows with a
    /// `duration` input). Not serialised when unset, so policies stored before it keep their hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration_secs: Option<u64>,
    /// Whether every request must give a `duration` (no permanent grants).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_duration: bool,
    /// Whether a time-bound grant may give a role that can grant roles (admin, restricted-admin, owner role
    /// templates, `*`, `bind`/`escalate`, writing role bindings). Such a grant is not contained: the holder can make
    /// access outlast it. Refused unless set; approvers are warned when set. Not serialised when unset.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_role_granting_grants: bool,
    /// Whether revoking a grant also removes the bindings made by or for its holder during the grant (they are
    /// always listed in the `grant.revoked` record). Not serialised when unset.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remove_bindings_made_during_grant: bool,
    /// Whether approvers may decide from a chat message's buttons (`allow`) or only follow its link to the page
    /// (`link_only`). Unset: `link_only` for admin-level grants, `allow` otherwise. Not serialised when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_decisions: Option<ChatDecisions>,
    /// The Slack channel this workflow's requests are posted to (unset: the service's default channel, or a direct
    /// message to each approver). Not serialised when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_channel: Option<String>,
    /// Seconds a pending request waits before its undecided approvers are reminded (unset: 4 hours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remind_after_secs: Option<u64>,
    /// Seconds a pending request waits before the fallback approvers (Rancher admins) are called in (unset: no
    /// escalation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalate_after_secs: Option<u64>,
}

/// Whether a chat message may carry a decision (see [`PolicyOptions::chat_decisions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatDecisions {
    /// Approve and Deny buttons decide in the chat, as the clicker's Rancher principal.
    Allow,
    /// The buttons open the request's page; decisions are made there, with a Rancher sign-in.
    LinkOnly,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        Self {
            allow_self_approval: false,
            allow_target_approval: false,
            expires_after_secs: DEFAULT_EXPIRY.as_secs(),
            require_requester_reason: false,
            require_reviewer_reason: false,
            max_duration_secs: None,
            require_duration: false,
            allow_role_granting_grants: false,
            remove_bindings_made_during_grant: false,
            chat_decisions: None,
            chat_channel: None,
            remind_after_secs: None,
            escalate_after_secs: None,
        }
    }
}

impl Policy {
    /// No approval needed.
    pub fn none() -> Self {
        Self {
            rule: Rule::None,
            options: PolicyOptions::default(),
        }
    }

    /// The installer approves, with fallback approvers when the installer is the requester.
    pub fn installer() -> Self {
        Self {
            rule: Rule::Installer { fallback: true },
            options: PolicyOptions::default(),
        }
    }

    /// Any one of these principals or groups approves.
    pub fn any_of(of: impl IntoIterator<Item = ApproverRef>) -> Self {
        Self::approvers(Combine::Any, [Threshold::at_least(1, of)])
    }

    /// Every one of these principals or groups approves (each by a distinct approver).
    pub fn all_of(of: impl IntoIterator<Item = ApproverRef>) -> Self {
        Self::approvers(Combine::Any, [Threshold::all_of(of)])
    }

    /// At least `n` of these principals or groups approve.
    pub fn at_least(n: u32, of: impl IntoIterator<Item = ApproverRef>) -> Self {
        Self::approvers(Combine::Any, [Threshold::at_least(n, of)])
    }

    /// Several thresholds, combined with `combine`.
    pub fn approvers(combine: Combine, thresholds: impl IntoIterator<Item = Threshold>) -> Self {
        Self {
            rule: Rule::Approvers {
                combine,
                thresholds: thresholds.into_iter().collect(),
            },
            options: PolicyOptions::default(),
        }
    }

    /// Sets whether the requester may approve their own request.
    pub fn allow_self_approval(mut self, allow: bool) -> Self {
        self.options.allow_self_approval = allow;
        self
    }

    /// Sets whether a target of the request may approve it.
    pub fn allow_target_approval(mut self, allow: bool) -> Self {
        self.options.allow_target_approval = allow;
        self
    }

    /// Sets how long a pending request waits before it expires (whole seconds).
    pub fn expires_after(mut self, after: Duration) -> Self {
        self.options.expires_after_secs = after.as_secs();
        self
    }

    /// Sets whether the requester must give a reason.
    pub fn require_requester_reason(mut self, require: bool) -> Self {
        self.options.require_requester_reason = require;
        self
    }

    /// Sets whether every reviewer must give a reason.
    pub fn require_reviewer_reason(mut self, require: bool) -> Self {
        self.options.require_reviewer_reason = require;
        self
    }

    /// How long a pending request waits.
    pub fn expiry(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.options.expires_after_secs.min(MAX_EXPIRY_SECS) as i64)
    }

    /// Whether a request under this policy needs any approval at all.
    pub fn needs_approval(&self) -> bool {
        !matches!(self.rule, Rule::None)
    }

    /// The SHA-256 (hex) of the policy's canonical JSON form; requests keep it so history is never rewritten.
    pub fn hash(&self) -> String {
        let value = serde_json::to_value(self).expect("a policy always serialises");
        crate::canonical::sha256_hex(crate::canonical::canonical_json(&value).as_bytes())
    }

    /// Limits time-bound grants to at most `max` (see [`PolicyOptions::max_duration_secs`]).
    pub fn max_duration(mut self, max: std::time::Duration) -> Self {
        self.options.max_duration_secs = Some(max.as_secs());
        self
    }

    /// Requires every request to give a duration (see [`PolicyOptions::require_duration`]).
    pub fn require_duration(mut self, yes: bool) -> Self {
        self.options.require_duration = yes;
        self
    }

    /// Checks a request's grant duration (`None`: permanent) against `max_duration` and `require_duration`, with
    /// an error that says what to ask for instead.
    pub fn check_duration(&self, workflow_id: &str, duration: Option<std::time::Duration>) -> Result<()> {
        let o = &self.options;
        match (duration, o.max_duration_secs) {
            (None, _) if o.require_duration => Err(Error::DurationRefused {
                reason: format!("{workflow_id}: its policy requires a duration (no permanent grants); add e.g. `--input duration=8h`"),
            }),
            (None, Some(max)) => Err(Error::DurationRefused {
                reason: format!(
                    "{workflow_id}: its policy grants for at most {}; add `--input duration=...` of at most that",
                    crate::grant::format_duration(max)
                ),
            }),
            (Some(d), Some(max)) if d.as_secs() > max => Err(Error::DurationRefused {
                reason: format!(
                    "{workflow_id}: a duration of {} is longer than its policy allows ({}); ask for at most that",
                    crate::grant::format_duration(d.as_secs()),
                    crate::grant::format_duration(max)
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Checks that the policy can be satisfied and is sensible.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidPolicy { reason });
        if let Some(max) = self.options.max_duration_secs {
            if !(60..=crate::grant::MAX_GRANT_SECS).contains(&max) {
                return bad("max_duration_secs must be between 60 (one minute) and ten years".into());
            }
        }
        if self.options.expires_after_secs == 0 {
            return bad("expires_after_secs must be at least 1 second".into());
        }
        if self.options.expires_after_secs > MAX_EXPIRY_SECS {
            return bad(format!(
                "expires_after_secs must be at most {MAX_EXPIRY_SECS} (about 10 years)"
            ));
        }
        if let Rule::Approvers { thresholds, .. } = &self.rule {
            if thresholds.is_empty() {
                return bad("an approvers policy needs at least one threshold".into());
            }
            for (i, t) in thresholds.iter().enumerate() {
                let n = i + 1;
                if t.of.is_empty() {
                    return bad(format!("threshold {n} names no approvers"));
                }
                if let Some(empty) =
                    t.of.iter()
                        .find(|r| matches!(r, ApproverRef::User(s) | ApproverRef::Group(s) if s.trim().is_empty()))
                {
                    return bad(format!("threshold {n} has an empty approver id ({empty})"));
                }
                if let Count::AtLeast(k) = t.count {
                    if k == 0 {
                        return bad(format!("threshold {n} needs a count of at least 1"));
                    }
                    let only_users = t.of.iter().all(|r| matches!(r, ApproverRef::User(_)));
                    let mut users: Vec<&ApproverRef> = t.of.iter().collect();
                    users.sort_by_key(|r| r.to_string());
                    users.dedup();
                    if only_users && k as usize > users.len() {
                        return bad(format!(
                            "threshold {n} needs {k} approvers but names only {} users, so it can never be met",
                            users.len()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Default for Policy {
    /// The default is [`Policy::installer`], the safe choice for anything that changes state.
    fn default() -> Self {
        Self::installer()
    }
}

/// Formats whole seconds as a short human duration such as `7d`, `36h`, `1d 2h 5m`.
pub(crate) fn human_secs(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    let mut rest = secs;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    parts.join(" ")
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match &self.label {
            Some(label) => label.clone(),
            None => {
                let list: Vec<String> = self.of.iter().map(ToString::to_string).collect();
                format!("[{}]", list.join(", "))
            }
        };
        match self.count {
            Count::All => write!(f, "all of {who}"),
            Count::AtLeast(1) => write!(f, "any of {who}"),
            Count::AtLeast(n) => write!(f, "{n} of {who}"),
        }
    }
}

impl Policy {
    /// The duration options, as `; grants for at most 8h; a duration is required`.
    fn fmt_durations(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(max) = self.options.max_duration_secs {
            write!(f, "; grants for at most {}", crate::grant::format_duration(max))?;
        }
        if self.options.require_duration {
            f.write_str("; a duration is required")?;
        }
        if self.options.allow_role_granting_grants {
            f.write_str("; time-bound grants of roles that can grant roles allowed (not contained)")?;
        }
        if self.options.remove_bindings_made_during_grant {
            f.write_str("; bindings made during a grant are removed with it")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Policy {
    /// One line for people, e.g. `2 of platform team or any of [user:u-sec1]; expires after 7d`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Rule::None => {
                f.write_str("no approval needed")?;
                return self.fmt_durations(f);
            }
            Rule::Installer { fallback: true } => {
                f.write_str("the installer approves (a fallback approver when the installer may not)")?
            }
            Rule::Installer { fallback: false } => f.write_str("the installer approves")?,
            Rule::Approvers { combine, thresholds } => {
                let sep = match combine {
                    Combine::Any => " or ",
                    Combine::All => " and ",
                };
                let parts: Vec<String> = thresholds.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join(sep))?;
            }
        }
        let o = &self.options;
        if o.allow_self_approval {
            f.write_str("; self-approval allowed")?;
        }
        if o.allow_target_approval {
            f.write_str("; targets may approve")?;
        }
        if o.require_requester_reason {
            f.write_str("; requester must give a reason")?;
        }
        self.fmt_durations(f)?;
        if o.require_reviewer_reason {
            f.write_str("; reviewers must give a reason")?;
        }
        write!(f, "; expires after {}", human_secs(o.expires_after_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stable_json_form() {
        let p = Policy::approvers(
            Combine::Any,
            [
                Threshold::at_least(2, [ApproverRef::group("github_team://7")]).labelled("platform team"),
                Threshold::all_of([ApproverRef::user("u-sec1")]),
            ],
        )
        .require_reviewer_reason(true);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({
                "kind": "approvers",
                "combine": "any",
                "thresholds": [
                    {"count": 2, "of": [{"group": "github_team://7"}], "label": "platform team"},
                    {"count": "all", "of": [{"user": "u-sec1"}]}
                ],
                "options": {
                    "allow_self_approval": false,
                    "allow_target_approval": false,
                    "expires_after_secs": 604800,
                    "require_requester_reason": false,
                    "require_reviewer_reason": true
                }
            })
        );
        let back: Policy = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            serde_json::to_value(Policy::installer()).unwrap()["fallback"],
            json!(true)
        );
    }

    #[test]
    fn short_forms_read_with_defaults() {
        let p: Policy = serde_json::from_value(json!({"kind": "none"})).unwrap();
        assert_eq!(p, Policy::none());
        let p: Policy = serde_json::from_value(json!({"kind": "installer"})).unwrap();
        assert_eq!(p, Policy::installer());
        let p: Policy = serde_json::from_value(json!({
            "kind": "approvers",
            "thresholds": [{"count": "any", "of": [{"user": "u-1"}, {"user": "u-2"}]}],
            "options": {"allow_self_approval": true}
        }))
        .unwrap();
        assert_eq!(
            p,
            Policy::any_of([ApproverRef::user("u-1"), ApproverRef::user("u-2")]).allow_self_approval(true)
        );
        let err = serde_json::from_value::<Policy>(json!({
            "kind": "approvers", "thresholds": [{"count": "most", "of": [{"user": "u-1"}]}]
        }))
        .unwrap_err();
        assert!(err.to_string().contains("\"most\""), "{err}");
        assert!(serde_json::from_value::<Policy>(json!({"kind": "sometimes"})).is_err());
    }

    #[test]
    fn display_is_one_line() {
        assert_eq!(Policy::none().to_string(), "no approval needed");
        assert_eq!(
            Policy::installer().to_string(),
            "the installer approves (a fallback approver when the installer may not); expires after 7d"
        );
        let p = Policy::approvers(
            Combine::Any,
            [
                Threshold::at_least(2, [ApproverRef::group("github_team://7")]).labelled("platform team"),
                Threshold::at_least(1, [ApproverRef::user("u-sec1")]),
            ],
        )
        .allow_self_approval(true)
        .require_requester_reason(true)
        .expires_after(Duration::from_secs(36 * 3600 + 60));
        assert_eq!(
            p.to_string(),
            "2 of platform team or any of [user:u-sec1]; self-approval allowed; requester must give a reason; expires after 1d 12h 1m"
        );
        let p = Policy::approvers(
            Combine::All,
            [
                Threshold::all_of([ApproverRef::user("u-1"), ApproverRef::group("g://2")]),
                Threshold::at_least(1, [ApproverRef::user("u-3")]),
            ],
        )
        .allow_target_approval(true)
        .require_reviewer_reason(true);
        assert_eq!(
            p.to_string(),
            "all of [user:u-1, group:g://2] and any of [user:u-3]; targets may approve; reviewers must give a reason; expires after 7d"
        );
        assert!(!p.to_string().contains('\n'));
    }

    #[test]
    fn approver_ref_text_form() {
        assert_eq!("user:u-1".parse::<ApproverRef>().unwrap(), ApproverRef::user("u-1"));
        assert_eq!("u-1".parse::<ApproverRef>().unwrap(), ApproverRef::user("u-1"));
        assert_eq!(
            "github_team://5".parse::<ApproverRef>().unwrap(),
            ApproverRef::group("github_team://5")
        );
        assert_eq!(
            "group:local://g-1".parse::<ApproverRef>().unwrap(),
            ApproverRef::group("local://g-1")
        );
        assert!("user:".parse::<ApproverRef>().is_err());
        let r = ApproverRef::group("github_team://5");
        assert_eq!(r.to_string().parse::<ApproverRef>().unwrap(), r);
    }

    #[test]
    fn validation() {
        assert!(Policy::none().validate().is_ok());
        assert!(Policy::installer().validate().is_ok());
        assert!(Policy::at_least(2, [ApproverRef::user("a"), ApproverRef::user("b")])
            .validate()
            .is_ok());
        assert!(Policy::at_least(5, [ApproverRef::group("g://1")]).validate().is_ok());
        let cases = [
            (
                Policy::at_least(3, [ApproverRef::user("a"), ApproverRef::user("b")]),
                "never be met",
            ),
            (
                Policy::at_least(2, [ApproverRef::user("a"), ApproverRef::user("a")]),
                "never be met",
            ),
            (Policy::at_least(0, [ApproverRef::user("a")]), "at least 1"),
            (Policy::any_of([]), "names no approvers"),
            (Policy::approvers(Combine::Any, []), "at least one threshold"),
            (Policy::any_of([ApproverRef::user(" ")]), "empty approver id"),
            (Policy::installer().expires_after(Duration::ZERO), "at least 1 second"),
            (
                Policy::installer().expires_after(Duration::from_secs(u64::MAX)),
                "at most",
            ),
        ];
        for (p, want) in cases {
            let err = p.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{p:?}: {err}");
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = Policy::installer();
        assert_eq!(a.hash(), Policy::installer().hash());
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), a.clone().allow_self_approval(true).hash());
        assert_ne!(a.hash(), Policy::none().hash());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(604_800), "7d");
        assert_eq!(human_secs(90), "1m 30s");
        assert_eq!(human_secs(3600), "1h");
        assert_eq!(human_secs(0), "0s");
    }
}

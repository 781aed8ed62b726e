//! Approval requests: what was asked, under which policy, who decided what, and how execution went.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::basics::{RequestState, ServerIdentity, Vote};
use crate::error::{Error, Result};
pub use crate::evaluate::DecisionRecord;
use crate::evaluate::RequestFacts;
use crate::installation::Installation;
use crate::names::PinnedNames;
use crate::policy::Policy;
use crate::principal::Principal;

/// What secret inputs are replaced with before a request is stored.
pub const REDACTED: &str = "***";

/// Lower-case Crockford base32: no i, l, o, u, so ids are easy to read aloud and type.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A request id: `req-` followed by a UUIDv7 in 26 lower-case Crockford base32 characters.
///
/// Ids are unique, sort by creation time (as text too), and avoid easily confused letters. Parsing accepts upper
/// case and maps `i`/`l` to `1` and `o` to `0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    /// A fresh id from the current time (UUIDv7).
    pub fn generate() -> Self {
        Self::from_uuid(uuid::Uuid::now_v7())
    }

    /// The id for a given UUID.
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        let mut n = uuid.as_u128();
        let mut out = [0u8; 26];
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(n & 31) as usize];
            n >>= 5;
        }
        Self(format!("req-{}", std::str::from_utf8(&out).expect("ascii")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RequestId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidRequestId { input: s.to_owned() };
        let trimmed = s.trim();
        let body = trimmed
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("req-"))
            .map(|_| &trimmed[4..])
            .ok_or_else(invalid)?;
        if body.len() != 26 {
            return Err(invalid());
        }
        let mut normal = String::with_capacity(30);
        normal.push_str("req-");
        for c in body.chars() {
            let c = match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(invalid());
            }
            normal.push(c);
        }
        // 26 characters hold 130 bits; the top character may only use the low 3 bits.
        if !normal.as_bytes()[4].is_ascii_digit() || normal.as_bytes()[4] > b'7' {
            return Err(invalid());
        }
        Ok(Self(normal))
    }
}

impl TryFrom<String> for RequestId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> Self {
        id.0
    }
}

/// A decision as submitted by a reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Approve or deny.
    pub vote: Vote,
    /// Why (required when the policy says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The [`ApprovalRequest::content_hash`] of what the reviewer was shown; when given, the decision is refused
    /// if the request differs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed: Option<String>,
    /// The Rancher server through which the reviewer's identity was established; it must be the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerIdentity>,
    /// Where the reviewer decided when not on the page or the API (`slack`), recorded in the audit entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl Decision {
    /// An approval without a reason.
    pub fn approve() -> Self {
        Self {
            vote: Vote::Approve,
            reason: None,
            reviewed: None,
            server: None,
            via: None,
        }
    }

    /// A denial without a reason.
    pub fn deny() -> Self {
        Self {
            vote: Vote::Deny,
            reason: None,
            reviewed: None,
            server: None,
            via: None,
        }
    }

    /// Adds a reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Binds the decision to the content the reviewer saw ([`ApprovalRequest::content_hash`]).
    pub fn reviewed(mut self, content_hash: impl Into<String>) -> Self {
        self.reviewed = Some(content_hash.into());
        self
    }

    /// Names where the reviewer decided (`slack`), for the audit entry.
    pub fn via(mut self, via: impl Into<String>) -> Self {
        self.via = Some(via.into());
        self
    }

    /// Names the server the reviewer's identity came from.
    pub fn through(mut self, server: ServerIdentity) -> Self {
        self.server = Some(server);
        self
    }
}

/// Whether an execution succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// It worked.
    Succeeded,
    /// It did not.
    Failed,
}

/// The result of executing an approved request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Succeeded or failed.
    pub status: OutcomeStatus,
    /// Anything the executor wants kept (output, error message); must not contain secrets.
    #[serde(default)]
    pub detail: serde_json::Value,
    /// A time-bound grant the execution made or extended; the store records it with the outcome, in the same
    /// transaction (only for a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<crate::grant::GrantChange>,
}

impl Outcome {
    /// A success with some detail.
    pub fn succeeded(detail: serde_json::Value) -> Self {
        Self {
            status: OutcomeStatus::Succeeded,
            detail,
            grant: None,
        }
    }

    /// A failure with some detail.
    pub fn failed(detail: serde_json::Value) -> Self {
        Self {
            status: OutcomeStatus::Failed,
            detail,
            grant: None,
        }
    }

    /// Adds the grant the execution made or extended (recorded with the outcome).
    pub fn with_grant(mut self, grant: Option<crate::grant::GrantChange>) -> Self {
        self.grant = grant;
        self
    }

    pub(crate) fn state(&self) -> RequestState {
        match self.status {
            OutcomeStatus::Succeeded => RequestState::Succeeded,
            OutcomeStatus::Failed => RequestState::Failed,
        }
    }
}

/// Who executes a request: the Rancher principal whose session runs it, the process, and its server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executor {
    /// The principal id whose session executes (the audit actor).
    pub principal: String,
    /// The process, e.g. `rancherctl@host pid 4242` (a label for people; never trusted).
    pub process: String,
    /// The host the process runs on, when known (with `pid`, lets a reconciler on the same host see that the
    /// process is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The process id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The host's boot id (`/proc/sys/kernel/random/boot_id`), when known: with `started`, tells a process id
    /// reused after a reboot, or in another PID namespace on a host of the same name, from the executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The process's PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`), when known: a process id means
    /// something only in its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
    /// When the process started, in clock ticks after boot (`/proc/<pid>/stat`, field 22), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// The server the executing session talks to; it must be the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerIdentity>,
}

impl Executor {
    /// An executor acting as `principal` from `process`.
    pub fn new(principal: impl Into<String>, process: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            process: process.into(),
            host: None,
            pid: None,
            boot_id: None,
            pid_ns: None,
            started: None,
            server: None,
        }
    }

    /// Names the host's boot id, the PID namespace and the process's start time (clock ticks after boot), each
    /// when known, so that a reconciler can tell this process from another with the same host name and process id.
    pub fn identity(mut self, boot_id: Option<String>, pid_ns: Option<String>, started: Option<u64>) -> Self {
        self.boot_id = boot_id;
        self.pid_ns = pid_ns;
        self.started = started;
        self
    }

    /// Names the host and process id of the executing process.
    pub fn at(mut self, host: impl Into<String>, pid: u32) -> Self {
        self.host = Some(host.into());
        self.pid = Some(pid);
        self
    }

    /// Names the server the executing session talks to.
    pub fn on(mut self, server: ServerIdentity) -> Self {
        self.server = Some(server);
        self
    }
}

/// Why an executor takes over another's execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Takeover {
    /// The holder's lease ran out (checked by the store against `now`).
    LeaseExpired,
    /// The caller found the holder's process gone (e.g. the same host has no such process any more).
    OwnerGone,
}

/// Execution bookkeeping of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Identifies the claim; only the holder may record the outcome.
    pub claim_id: String,
    /// The executor's process label (host, process, task).
    pub executor: String,
    /// The principal id whose session executes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The executing host, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The executing process id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The executing host's boot id, when known (older records have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The executing process's PID namespace, when known (older records have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
    /// When the executing process started, in clock ticks after boot, when known (older records have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// The fencing number of the claim: it grows with every take-over, and an outcome is recorded only by the
    /// claim holding the current epoch.
    #[serde(default)]
    pub epoch: u64,
    /// Until when the executor holds the claim; after that another executor may take it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    /// When it was claimed.
    pub claimed_at: DateTime<Utc>,
    /// When the outcome was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Set when the outcome was reconciled after the executor was lost: the note and who recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<Reconciliation>,
}

/// How an in-doubt execution was settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Who settled it.
    pub by: String,
    /// What they found, e.g. "binding exists on the server".
    pub note: String,
}

/// How a request was closed without execution (cancelled), when it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    /// Who closed it (`system` for expiry).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A durable approval request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Its id.
    pub id: RequestId,
    /// The workflow to run.
    pub workflow_id: String,
    /// The workflow inputs, with secret values replaced by [`REDACTED`].
    pub inputs: serde_json::Value,
    /// Who asked.
    pub requester: Principal,
    /// The workflow's installer when the request was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer: Option<Principal>,
    /// Principal ids the request acts on (e.g. the user being granted a role), pinned at submit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// What people call each target (e.g. its username at submit), for approvers; keyed by target id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_labels: BTreeMap<String, String>,
    /// The names of what the request acts on (users, groups, roles, clusters, projects) as they were when it was
    /// filed; empty for requests filed before names were pinned.
    #[serde(default, skip_serializing_if = "PinnedNames::is_empty")]
    pub names: PinnedNames,
    /// The requester's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The Rancher server the request belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerIdentity>,
    /// The policy in force when the request was made (a later policy change does not alter it).
    pub policy: Policy,
    /// [`Policy::hash`] of `policy`.
    pub policy_hash: String,
    /// SHA-256 over what was asked ([`ApprovalRequest::content`]); decisions sign over it and execution
    /// re-checks it.
    #[serde(default)]
    pub content_hash: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it expires if still pending.
    pub expires_at: DateTime<Utc>,
    /// Where it is in the lifecycle.
    pub state: RequestState,
    /// Every decision, in order.
    #[serde(default)]
    pub decisions: Vec<DecisionRecord>,
    /// Execution bookkeeping, once claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionRecord>,
    /// Cancellation or expiry, if that is how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closure>,
    /// What the rules decided when it was filed (none when no rule set judged it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<crate::rules::RuleRecord>,
}

impl ApprovalRequest {
    /// The facts [`crate::evaluate()`] needs about this request.
    pub fn facts(&self) -> RequestFacts {
        RequestFacts {
            requester: self.requester.id.clone(),
            installer: self.installer.as_ref().map(|p| p.id.clone()),
            targets: self.targets.clone(),
            expires_at: self.expires_at,
        }
    }

    /// Evaluates the stored decisions under the stored policy at `now`.
    pub fn evaluate(&self, now: DateTime<Utc>) -> crate::Verdict {
        crate::evaluate(&self.policy, &self.facts(), &self.decisions, now)
    }

    /// What was asked, as the canonical JSON that [`ApprovalRequest::content_hash`] covers: the workflow, its
    /// inputs, the pinned targets and their labels, the requester, installer and reason, the server, the policy
    /// hash and the expiry, and the pinned names when there are any (left out when empty, so a request filed before
    /// names were pinned keeps its hash). The `request_created` audit entry records the same fields.
    pub fn content(&self) -> serde_json::Value {
        let mut content = serde_json::json!({
            "workflow_id": self.workflow_id,
            "inputs": self.inputs,
            "targets": self.targets,
            "target_labels": self.target_labels,
            "requester": self.requester.id,
            "installer": self.installer.as_ref().map(|i| &i.id),
            "reason": self.reason,
            "server": self.server,
            "policy_hash": self.policy_hash,
            "expires_at": crate::canonical::format_time(self.expires_at),
        });
        if !self.names.is_empty() {
            content["names"] = serde_json::to_value(&self.names).unwrap_or_default();
        }
        // Only when rules judged it, so the hashes of requests filed without rules stay as they were.
        if let (Some(r), serde_json::Value::Object(map)) = (&self.rules, &mut content) {
            map.insert(
                "rules".into(),
                serde_json::json!({"ruleset": r.ruleset, "rule": r.rule}),
            );
        }
        content
    }

    /// Recomputes the content hash from the stored fields.
    pub fn compute_content_hash(&self) -> String {
        content_hash(&self.id, &self.content())
    }
}

/// SHA-256 (hex) of a request's content ([`ApprovalRequest::content`]), bound to its id.
pub fn content_hash(id: &RequestId, content: &serde_json::Value) -> String {
    let canonical = crate::canonical::canonical_json(&serde_json::json!({
        "domain": "rancher-approval/request/v1",
        "id": id.as_str(),
        "content": content,
    }));
    crate::canonical::sha256_hex(canonical.as_bytes())
}

/// What a caller submits to open a request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    /// The workflow to run.
    pub workflow_id: String,
    /// The inputs (secret ones are redacted before storage).
    pub inputs: serde_json::Value,
    /// Keys of `inputs` whose values are secret; redacted at any depth.
    pub secret_inputs: Vec<String>,
    /// Who asks.
    pub requester: Principal,
    /// The installer, if the workflow is installed.
    pub installer: Option<Principal>,
    /// Principal ids the request acts on.
    pub targets: Vec<String>,
    /// What people call each target, keyed by target id.
    pub target_labels: BTreeMap<String, String>,
    /// The names of what the request acts on, looked up at filing.
    pub names: PinnedNames,
    /// The requester's reason.
    pub reason: Option<String>,
    /// The Rancher server the request belongs to.
    pub server: Option<ServerIdentity>,
    /// The policy in force.
    pub policy: Policy,
    /// What the rules decided when it was filed, if a rule set judged it.
    pub rules: Option<crate::rules::RuleRecord>,
}

impl NewRequest {
    /// A request for `workflow_id` by `requester` under `policy`, with no inputs.
    pub fn new(workflow_id: impl Into<String>, requester: Principal, policy: Policy) -> Self {
        Self {
            workflow_id: workflow_id.into(),
            inputs: serde_json::Value::Object(Default::default()),
            secret_inputs: Vec::new(),
            requester,
            installer: None,
            targets: Vec::new(),
            target_labels: BTreeMap::new(),
            names: PinnedNames::default(),
            reason: None,
            server: None,
            policy,
            rules: None,
        }
    }

    /// Files the request under a rule set's decision: its policy becomes [`RuleDecision::policy_for`] the current
    /// one, and the request records the decision and the facts. Refused (with the rule's message) when the rules
    /// refuse it or it is a break-glass decision, which is not an ordinary request.
    ///
    /// [`RuleDecision::policy_for`]: crate::rules::RuleDecision::policy_for
    pub fn under_rules(
        mut self,
        decision: &crate::rules::RuleDecision,
        facts: &crate::rules::Facts,
    ) -> std::result::Result<Self, String> {
        match decision.policy_for(&self.policy) {
            Some(policy) => {
                self.policy = policy;
                self.rules = Some(decision.record(facts));
                Ok(self)
            }
            None => Err(match &decision.verdict {
                crate::rules::RuleVerdict::Denied { message, .. } => message.clone(),
                _ => "a break-glass decision is not filed as an ordinary request".into(),
            }),
        }
    }

    /// A request for an installed workflow: its policy and installer are taken from the installation.
    pub fn for_installation(installation: &Installation, requester: Principal) -> Self {
        let mut new = Self::new(installation.workflow_id.clone(), requester, installation.policy.clone());
        new.installer = Some(installation.installer.clone());
        new
    }

    /// Sets the inputs and names the secret ones.
    pub fn inputs<I, S>(mut self, inputs: serde_json::Value, secret_keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inputs = inputs;
        self.secret_inputs = secret_keys.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the installer.
    pub fn installer(mut self, installer: Principal) -> Self {
        self.installer = Some(installer);
        self
    }

    /// Sets the principal ids the request acts on.
    pub fn targets<I, S>(mut self, targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.targets = targets.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the requester's reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Names a target for approvers (e.g. the username behind a user id).
    pub fn target_label(mut self, id: impl Into<String>, label: impl Into<String>) -> Self {
        self.target_labels.insert(id.into(), label.into());
        self
    }

    /// Pins the names of what the request acts on (covered by the content hash).
    pub fn names(mut self, names: PinnedNames) -> Self {
        self.names = names;
        self
    }

    /// Binds the request to the Rancher server it was filed through.
    pub fn server(mut self, server: ServerIdentity) -> Self {
        self.server = Some(server);
        self
    }
}

/// Replaces the value of every object key named in `secret_keys`, at any depth, with [`REDACTED`].
pub fn redact(value: &serde_json::Value, secret_keys: &[String]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if secret_keys.iter().any(|s| s == k) {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v, secret_keys)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, secret_keys)).collect()),
        other => other.clone(),
    }
}

/// Whether an optional reason is missing or blank.
pub(crate) fn blank(reason: &Option<String>) -> bool {
    reason.as_deref().is_none_or(|r| r.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_compact_sortable_and_parse_back() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_eq!(a.as_str().len(), 30);
        assert!(a.as_str().starts_with("req-"));
        assert!(a < b, "{a} then {b}");
        assert!(a.as_str() < b.as_str());
        assert_eq!(a.as_str().parse::<RequestId>().unwrap(), a);
        assert_eq!(
            a.as_str()
                .to_uppercase()
                .replace("REQ-", "req-")
                .parse::<RequestId>()
                .unwrap(),
            a
        );
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<RequestId>(&json).unwrap(), a);
    }

    #[test]
    fn id_encoding_is_fixed() {
        assert_eq!(
            RequestId::from_uuid(uuid::Uuid::nil()).as_str(),
            "req-00000000000000000000000000"
        );
        assert_eq!(
            RequestId::from_uuid(uuid::Uuid::max()).as_str(),
            "req-7zzzzzzzzzzzzzzzzzzzzzzzzz"
        );
        let id: RequestId = "req-7ZZZZZZZZZZZZZZZZZZZZZZZZL".parse().unwrap();
        assert_eq!(id.as_str(), "req-7zzzzzzzzzzzzzzzzzzzzzzzz1");
    }

    #[test]
    fn bad_ids_are_refused() {
        for bad in [
            "",
            "req-",
            "abc-00000000000000000000000000",
            "req-0000000000000000000000000",
            "req-000000000000000000000000000",
            "req-8zzzzzzzzzzzzzzzzzzzzzzzzz",
            "req-0000000000000000000000000u",
            "req-0000000000000000000000000é",
        ] {
            let err = bad.parse::<RequestId>().unwrap_err();
            assert!(matches!(err, Error::InvalidRequestId { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn states_round_trip() {
        for s in RequestState::ALL {
            assert_eq!(s.as_str().parse::<RequestState>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert!(RequestState::Expired.is_final());
        assert!(!RequestState::Executing.is_final());
    }

    #[test]
    fn redaction_reaches_every_depth() {
        let inputs = json!({
            "user": "alice",
            "password": "hunter2",
            "nested": {"token": "t", "keep": 1},
            "list": [{"password": "p"}]
        });
        let out = redact(&inputs, &["password".into(), "token".into()]);
        assert_eq!(
            out,
            json!({
                "user": "alice",
                "password": "***",
                "nested": {"token": "***", "keep": 1},
                "list": [{"password": "***"}]
            })
        );
        assert!(!out.to_string().contains("hunter2"));
    }

    #[test]
    fn blank_reasons() {
        assert!(blank(&None));
        assert!(blank(&Some("  ".into())));
        assert!(!blank(&Some("ticket 42".into())));
    }
}

//! What each kind of audit entry records, typed.
//!
//! The kind is stored in its own column and the detail as a JSON object without a tag, and the entry hash covers
//! the canonical form of that object. So [`AuditDetail`] is not a tagged serde enum: each variant's payload
//! serialises to exactly the object the store has always written for its kind (the same keys, `null` where a
//! value is absent), which `store/sqlite/audit_pin.rs` holds against a chain written before the type existed.
//!
//! Reading is the other way round and forgiving: an entry keeps the detail it was stored with (that is what its
//! hash covers), and [`AuditEntry::details`](super::AuditEntry::details) reads a typed view of it. Keys that older
//! builds did not write read as absent; a kind this build does not know, or a detail it cannot read, is
//! [`AuditDetail::Other`] with the stored JSON, so an old or newer log always loads, verifies and shows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::AuditKind;
use crate::basics::{RequestState, ServerIdentity, Vote};
use crate::evaluate::EligibilityContext;
use crate::grant::{BindingKind, RevokedHow, SubjectKind};
use crate::policy::Policy;
use crate::principal::Principal;
use crate::request::{Executor, OutcomeStatus, Takeover};

/// Times in details are RFC 3339 text, UTC, with nanoseconds (the canonical form of the whole log).
mod time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::canonical::format_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    /// The same for an optional time (absent or `null` reads as none).
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    DateTime::parse_from_rfc3339(&text)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

/// The typed detail of an audit entry: one variant per [`AuditKind`], and [`AuditDetail::Other`] for what this
/// build cannot read.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditDetail {
    /// `request_created`.
    RequestCreated(RequestCreated),
    /// `decided`.
    Decided(Decided),
    /// `cancelled`.
    Cancelled(Cancelled),
    /// `expired`.
    Expired(Expired),
    /// `execution_claimed`.
    ExecutionClaimed(ExecutionClaimed),
    /// `execution_finished`.
    ExecutionFinished(Finished),
    /// `reconciled`: an outcome settled after a take-over ([`Finished::note`] says what was found).
    Reconciled(Finished),
    /// `installed`.
    Installed(Installed),
    /// `policy_changed`.
    PolicyChanged(PolicyChanged),
    /// `execution_refused`.
    ExecutionRefused(ExecutionRefused),
    /// `execution_taken_over`.
    ExecutionTakenOver(TakenOver),
    /// `grant_revoked`.
    GrantRevoked(GrantRevoked),
    /// `grant_overdue`.
    GrantOverdue(GrantOverdue),
    /// `grant_ended_early`.
    GrantEndedEarly(GrantEndedEarly),
    /// `direct_write`.
    DirectWrite(DirectWrite),
    /// `reminded`.
    Reminded(Reminded),
    /// `access_observed`.
    AccessObserved(AccessObserved),
    /// A kind this build does not know, or a detail of a known kind it cannot read: the stored JSON, as stored.
    Other {
        /// The stored kind.
        kind: AuditKind,
        /// The stored detail.
        detail: Value,
    },
}

impl AuditDetail {
    /// The kind an entry with this detail has.
    pub fn kind(&self) -> AuditKind {
        match self {
            Self::RequestCreated(_) => AuditKind::RequestCreated,
            Self::Decided(_) => AuditKind::Decided,
            Self::Cancelled(_) => AuditKind::Cancelled,
            Self::Expired(_) => AuditKind::Expired,
            Self::ExecutionClaimed(_) => AuditKind::ExecutionClaimed,
            Self::ExecutionFinished(_) => AuditKind::ExecutionFinished,
            Self::Reconciled(_) => AuditKind::Reconciled,
            Self::Installed(_) => AuditKind::Installed,
            Self::PolicyChanged(_) => AuditKind::PolicyChanged,
            Self::ExecutionRefused(_) => AuditKind::ExecutionRefused,
            Self::ExecutionTakenOver(_) => AuditKind::ExecutionTakenOver,
            Self::GrantRevoked(_) => AuditKind::GrantRevoked,
            Self::GrantOverdue(_) => AuditKind::GrantOverdue,
            Self::GrantEndedEarly(_) => AuditKind::GrantEndedEarly,
            Self::DirectWrite(_) => AuditKind::DirectWrite,
            Self::Reminded(_) => AuditKind::Reminded,
            Self::AccessObserved(_) => AuditKind::AccessObserved,
            Self::Other { kind, .. } => kind.clone(),
        }
    }

    /// The JSON object stored (and hashed) for this detail.
    pub fn to_value(&self) -> Value {
        fn v<T: Serialize>(t: &T) -> Value {
            serde_json::to_value(t).expect("audit details always serialise")
        }
        match self {
            Self::RequestCreated(d) => v(d),
            Self::Decided(d) => v(d),
            Self::Cancelled(d) => v(d),
            Self::Expired(d) => v(d),
            Self::ExecutionClaimed(d) => v(d),
            Self::ExecutionFinished(d) | Self::Reconciled(d) => v(d),
            Self::Installed(d) => v(d),
            Self::PolicyChanged(d) => v(d),
            Self::ExecutionRefused(d) => v(d),
            Self::ExecutionTakenOver(d) => v(d),
            Self::GrantRevoked(d) => v(d),
            Self::GrantOverdue(d) => v(d),
            Self::GrantEndedEarly(d) => v(d),
            Self::DirectWrite(d) => v(d),
            Self::Reminded(d) => v(d),
            Self::AccessObserved(d) => v(d),
            Self::Other { detail, .. } => detail.clone(),
        }
    }

    /// Reads a stored detail of `kind`; what cannot be read is [`AuditDetail::Other`], never an error.
    pub fn read(kind: &AuditKind, detail: &Value) -> Self {
        fn r<T: serde::de::DeserializeOwned>(detail: &Value, wrap: fn(T) -> AuditDetail) -> Option<AuditDetail> {
            T::deserialize(detail).ok().map(wrap)
        }
        let typed = match kind {
            AuditKind::RequestCreated => r(detail, Self::RequestCreated),
            AuditKind::Decided => r(detail, Self::Decided),
            AuditKind::Cancelled => r(detail, Self::Cancelled),
            AuditKind::Expired => r(detail, Self::Expired),
            AuditKind::ExecutionClaimed => r(detail, Self::ExecutionClaimed),
            AuditKind::ExecutionFinished => r(detail, Self::ExecutionFinished),
            AuditKind::Reconciled => r(detail, Self::Reconciled),
            AuditKind::Installed => r(detail, Self::Installed),
            AuditKind::PolicyChanged => r(detail, Self::PolicyChanged),
            AuditKind::ExecutionRefused => r(detail, Self::ExecutionRefused),
            AuditKind::ExecutionTakenOver => r(detail, Self::ExecutionTakenOver),
            AuditKind::GrantRevoked => r(detail, Self::GrantRevoked),
            AuditKind::GrantOverdue => r(detail, Self::GrantOverdue),
            AuditKind::GrantEndedEarly => r(detail, Self::GrantEndedEarly),
            AuditKind::DirectWrite => r(detail, Self::DirectWrite),
            AuditKind::Reminded => r(detail, Self::Reminded),
            AuditKind::AccessObserved => r(detail, Self::AccessObserved),
            AuditKind::Other(_) => None,
        };
        typed.unwrap_or_else(|| Self::Other {
            kind: kind.clone(),
            detail: detail.clone(),
        })
    }
}

/// A request was opened: everything reviewed, as stored (inputs with secrets redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestCreated {
    /// Who asked.
    pub requester: Principal,
    /// Who installed the workflow, when known.
    #[serde(default)]
    pub installer: Option<Principal>,
    /// The objects the request acts on.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Names for people of some targets.
    #[serde(default)]
    pub target_labels: BTreeMap<String, String>,
    /// The names of what the request acts on, as pinned at filing (absent from older entries).
    #[serde(default, skip_serializing_if = "crate::names::PinnedNames::is_empty")]
    pub names: crate::names::PinnedNames,
    /// The requester's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// The Rancher server it is bound to.
    #[serde(default)]
    pub server: Option<ServerIdentity>,
    /// The inputs, secrets redacted.
    #[serde(default)]
    pub inputs: Value,
    /// The policy it is judged under.
    pub policy: Policy,
    /// That policy's hash.
    pub policy_hash: String,
    /// When it expires undecided.
    #[serde(with = "time")]
    pub expires_at: DateTime<Utc>,
    /// The hash of its content, which every decision names.
    #[serde(default)]
    pub content_hash: String,
    /// Its state once created (`pending`, or `approved` under a policy that needs nobody).
    pub state: RequestState,
    /// What the rules decided, when a rule set judged it: an `approved` state with an `auto_approve` verdict is
    /// the rule's decision, not a person's. Absent from entries written without rules, so their hashes hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<crate::rules::RuleRecord>,
}

/// A reviewer decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    /// The reviewer.
    pub principal: Principal,
    /// The vote.
    pub vote: Vote,
    /// The reviewer's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// What made the reviewer eligible.
    #[serde(default)]
    pub context: EligibilityContext,
    /// The content the decision was made on.
    #[serde(default)]
    pub content_hash: Option<String>,
    /// The server the reviewer's session was on.
    #[serde(default)]
    pub server: Option<ServerIdentity>,
    /// The request's state after the decision.
    pub state: RequestState,
    /// Where the reviewer decided, when not on the page or the API (`slack`). Absent from entries written before
    /// it existed, and from decisions made through the API, so their hashes stay the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// A pending request's approvers were reminded of it, or (an escalation) its fallback approvers were asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminded {
    /// Whether this is the escalation to the fallback approvers (else the reminder of the eligible approvers).
    pub escalation: bool,
    /// Who was reminded or called in (Rancher principal ids; empty when the policy names none).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// How long the request had waited, in seconds, when the reminder was due.
    pub waited_secs: u64,
}

/// A request was cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cancelled {
    /// Who cancelled it.
    pub by: Principal,
    /// Their reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A request expired undecided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expired {
    /// Its expiry.
    #[serde(with = "time")]
    pub expires_at: DateTime<Utc>,
}

/// An executor claimed an approved request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionClaimed {
    /// Who executes.
    pub executor: Executor,
    /// The claim.
    pub claim_id: String,
    /// Its epoch (1 for a first claim).
    pub epoch: u64,
    /// Until when its lease runs.
    #[serde(with = "time")]
    pub lease_until: DateTime<Utc>,
}

/// An execution's outcome was recorded (`execution_finished`), or settled after a take-over (`reconciled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The claim it ran under.
    pub claim_id: String,
    /// That claim's epoch.
    pub epoch: u64,
    /// The executing process (a label).
    pub executor: String,
    /// Succeeded or failed.
    pub status: OutcomeStatus,
    /// The outcome's detail, as the workflow reported it (cut to what the store keeps).
    #[serde(default)]
    pub detail: Value,
    /// What was found when it was settled by hand (`reconciled` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The grant the execution made or extended (succeeded outcomes that report one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantNote>,
}

/// What an outcome's audit entry says about the grant it made or extended. Which fields are present depends on
/// what happened: a new grant (`id`, binding, ..., `due_at`), an extension (`extended`, `by_secs`, `due_at`), or
/// nothing done (`note` says why).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GrantNote {
    /// The new grant's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id of the grant the request extends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended: Option<String>,
    /// The new grant's binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// The new grant's binding kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<BindingKind>,
    /// The new grant's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The new grant's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Seconds an extension added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_secs: Option<u64>,
    /// When the grant is due.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::option")]
    pub due_at: Option<DateTime<Utc>>,
    /// Why nothing was done, or that it was recorded already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A workflow was installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    /// Who installed it.
    pub installer: Principal,
    /// Its policy.
    pub policy: Policy,
    /// That policy's hash.
    pub policy_hash: String,
}

/// A workflow's policy changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyChanged {
    /// Who changed it.
    pub changed_by: Principal,
    /// The old policy's hash.
    pub old_policy_hash: String,
    /// The new policy's hash.
    pub new_policy_hash: String,
    /// The old policy.
    pub old_policy: Policy,
    /// The new policy.
    pub new_policy: Policy,
}

/// An approved request was not executed: it did not match its audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRefused {
    /// Who tried to execute it.
    pub executor: Executor,
    /// What did not match.
    pub problem: String,
    /// The state it was settled in (a refused take-over settles it as failed; a refused claim leaves it alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RequestState>,
    /// Why it was being taken over (take-over only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<Takeover>,
    /// The claim it would have replaced (take-over only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousClaim>,
}

/// The claim a take-over replaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousClaim {
    /// Its id.
    pub claim_id: String,
    /// Its process (a label).
    pub executor: String,
    /// Its epoch.
    pub epoch: u64,
}

/// An execution was taken over by another executor, with a new epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakenOver {
    /// Who takes over.
    pub executor: Executor,
    /// The new claim.
    pub claim_id: String,
    /// Its epoch.
    pub epoch: u64,
    /// Why.
    pub why: Takeover,
    /// The claim replaced.
    pub previous: PreviousClaim,
}

/// The facts of a grant every grant entry records: who asked, who approved, what and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantFacts {
    /// The grant id (the request's).
    pub grant: String,
    /// The binding kind.
    pub kind: BindingKind,
    /// The binding.
    pub binding: String,
    /// Its namespace, for namespaced bindings.
    #[serde(default)]
    pub namespace: Option<String>,
    /// User or group.
    pub subject_kind: SubjectKind,
    /// The subject.
    pub subject: String,
    /// The role.
    pub role: String,
    /// Where the role applies, when not global.
    #[serde(default)]
    pub scope: Option<String>,
    /// Who asked (principal id).
    pub requested_by: String,
    /// Who approved (principal ids).
    #[serde(default)]
    pub approved_by: Vec<String>,
    /// When it was granted.
    #[serde(with = "time")]
    pub granted_at: DateTime<Utc>,
    /// When it is due, as granted (and extended).
    #[serde(with = "time")]
    pub due_at: DateTime<Utc>,
}

/// A grant was revoked (or found removed or changed on the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRevoked {
    /// The grant.
    #[serde(flatten)]
    pub facts: GrantFacts,
    /// When.
    #[serde(with = "time")]
    pub revoked_at: DateTime<Utc>,
    /// Who ended it (`system` at its due time).
    pub revoked_by: String,
    /// The revoking process.
    pub process: String,
    /// What was done.
    pub how: RevokedHow,
    /// What was found.
    #[serde(default)]
    pub note: String,
    /// Attempts it took.
    pub attempts: u32,
}

/// A due grant could not be revoked; it is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantOverdue {
    /// The grant.
    #[serde(flatten)]
    pub facts: GrantFacts,
    /// The process that tried.
    pub process: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// When it is tried again.
    #[serde(with = "time")]
    pub next_attempt_at: DateTime<Utc>,
}

/// Someone ended a grant before its due time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantEndedEarly {
    /// The grant.
    #[serde(flatten)]
    pub facts: GrantFacts,
    /// Who ended it (principal id).
    pub ended_by: String,
    /// When.
    #[serde(with = "time")]
    pub ended_at: DateTime<Utc>,
}

/// A write sent straight to Rancher outside any workflow, recorded before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectWrite {
    /// The operation id.
    pub operation: String,
    /// The HTTP method.
    pub method: String,
    /// The path it is sent to.
    pub path: String,
    /// Its parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The body, secrets masked.
    #[serde(default)]
    pub body: Option<Value>,
    /// The Rancher server's URL.
    pub server: String,
    /// The caller's username, when known.
    #[serde(default)]
    pub actor_username: Option<String>,
}

/// What happened to an access object the watcher saw change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservedChange {
    /// It was made.
    Created,
    /// It was removed.
    Deleted,
}

/// A change to an access object in Rancher that the service's watcher saw: who was given (or lost) which role
/// where, who made the change, and the approval request it belongs to, or that none does (`out_of_band`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessObserved {
    /// Made or removed.
    pub change: ObservedChange,
    /// The object's kind (`GlobalRoleBinding`, `ClusterRoleTemplateBinding`, `ProjectRoleTemplateBinding`).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace (cluster or project bindings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The resourceVersion of the change.
    pub resource_version: String,
    /// The subject: a user id, or a group principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The subject's name, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_name: Option<String>,
    /// The role (global role or role template id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The role's display name, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// Where: the cluster or project id (none for a global binding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Who made it (`field.cattle.io/creatorId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// The creator's name, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_name: Option<String>,
    /// When Rancher says it happened (`creationTimestamp`, or `deletionTimestamp` for a removal), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
    /// The approval request it belongs to (the entry is that request's too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// No approval request accounts for it.
    pub out_of_band: bool,
    /// Why it is out of band although it names a request (the annotation names one that did not make it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The Rancher server's URL.
    pub server: String,
}

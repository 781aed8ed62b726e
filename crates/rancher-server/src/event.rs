//! The webhook event document, typed: what [`crate::webhooks::event_for`] makes of an audit entry and what
//! receivers get as the POST body. Its JSON is a contract with receivers, pinned byte for byte by
//! `tests/webhook_events.rs` (field order is declaration order; absent values are `null` where receivers have
//! always seen `null`, and left out where they have always been left out).

use rancher_approval::{BindingKind, OutcomeStatus, Principal, RequestState, RevokedHow, SubjectKind, Vote};
use rancher_workflows::Inputs;
use serde::Serialize;

/// One webhook event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// What happened.
    pub event: EventName,
    /// One line for chat, made safe for it (no markup, no control characters) and cut to a few hundred characters.
    pub text: String,
    /// The request's id (empty for a grant that outlived its request's id).
    pub request: String,
    /// The workflow's id.
    pub workflow: String,
    /// Who wrote the audit entry.
    pub actor: String,
    /// When (RFC 3339).
    pub at: String,
    /// The audit entry's sequence number (also the delivery id).
    pub seq: u64,
    /// What this kind of event adds.
    pub data: EventData,
    /// The audit head after this event, `SEQ:HASH`: a receiver that keeps it holds an anchor outside the store.
    pub audit_head: String,
    /// Set when the body was cut to the size receivers take (see `MAX_EVENT_BYTES`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The event names receivers match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventName {
    /// A request was filed and waits for approval.
    #[serde(rename = "request.created")]
    RequestCreated,
    /// Someone approved or denied a request.
    #[serde(rename = "request.decided")]
    RequestDecided,
    /// An approved request ran and succeeded.
    #[serde(rename = "request.executed")]
    RequestExecuted,
    /// An approved request failed, or was refused before it ran.
    #[serde(rename = "request.failed")]
    RequestFailed,
    /// A request expired without a decision.
    #[serde(rename = "request.expired")]
    RequestExpired,
    /// The requester (or an admin) cancelled a request.
    #[serde(rename = "request.cancelled")]
    RequestCancelled,
    /// A time-bound grant ended.
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    /// A grant is past its end and could not be revoked yet.
    #[serde(rename = "grant.overdue")]
    GrantOverdue,
    /// A grant was ended before its time.
    #[serde(rename = "grant.ended_early")]
    GrantEndedEarly,
    /// The watcher saw a binding an approved request made.
    #[serde(rename = "binding.created")]
    BindingCreated,
    /// The watcher saw a binding removed by the product (a grant's end, an approved revoke).
    #[serde(rename = "binding.deleted")]
    BindingDeleted,
    /// The watcher saw a binding made or removed outside the product: no approval request accounts for it.
    #[serde(rename = "binding.out_of_band")]
    BindingOutOfBand,
    /// A break-glass grant was filed, permitted by a policy rule, and runs at once (reviewed afterwards). Its
    /// `data` is that of `request.created`.
    #[serde(rename = "grant.breakglass")]
    GrantBreakglass,
}

impl EventName {
    /// The name as sent (also in the event header).
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::RequestCreated => "request.created",
            EventName::RequestDecided => "request.decided",
            EventName::RequestExecuted => "request.executed",
            EventName::RequestFailed => "request.failed",
            EventName::RequestExpired => "request.expired",
            EventName::RequestCancelled => "request.cancelled",
            EventName::GrantRevoked => "grant.revoked",
            EventName::GrantOverdue => "grant.overdue",
            EventName::GrantEndedEarly => "grant.ended_early",
            EventName::BindingCreated => "binding.created",
            EventName::BindingDeleted => "binding.deleted",
            EventName::BindingOutOfBand => "binding.out_of_band",
            EventName::GrantBreakglass => "grant.breakglass",
        }
    }
}

/// The per-kind part of an event (`data`): the JSON object of the variant, with no tag of its own (the event's
/// name says which).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventData {
    /// `request.created`.
    Created(Created),
    /// `request.decided`.
    Decided(Decided),
    /// `request.executed` and `request.failed`.
    Finished(Finished),
    /// `request.cancelled`.
    Cancelled(Cancelled),
    /// The grant events.
    Grant(GrantData),
    /// The binding events: the change as the watcher recorded it.
    Access(rancher_approval::audit::AccessObserved),
    /// `{}`: `request.expired`, and any event whose data did not fit the size cap.
    Empty {},
}

/// Who, as an event names them: the id, and the login name (`null` when unknown).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Who {
    /// The Rancher user id.
    pub id: String,
    /// The login name.
    pub username: Option<String>,
}

impl From<&Principal> for Who {
    fn from(p: &Principal) -> Self {
        Who {
            id: p.id.clone(),
            username: p.username.clone(),
        }
    }
}

/// `data` of `request.created`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Created {
    /// Who filed it.
    pub requester: Who,
    /// The inputs as stored (secrets already redacted), pinned lists counted and long texts cut.
    pub inputs: EventInputs,
    /// The requester's reason, cut to 1,000 characters.
    pub reason: Option<String>,
    /// When it expires undecided (RFC 3339).
    pub expires_at: String,
    /// Its state when filed.
    pub state: RequestState,
    /// What it will do, in the names pinned when it was filed (absent for requests filed without names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The names pinned when it was filed (with `plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<rancher_approval::PinnedNames>,
    /// Look-alike warnings about those names (with `plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_warnings: Option<Vec<String>>,
}

/// A created request's inputs in an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventInputs {
    /// The inputs (see [`Created::inputs`]).
    Given(Inputs),
    /// Left out because the body would be too large.
    Omitted {
        /// Says why, for people.
        omitted: &'static str,
    },
}

/// `data` of `request.decided`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    /// Who decided.
    pub by: Who,
    /// Approve or deny.
    pub vote: Vote,
    /// The reviewer's reason, cut to 1,000 characters.
    pub reason: Option<String>,
    /// The request's state after the decision.
    pub state: RequestState,
}

/// `data` of `request.executed` and `request.failed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finished {
    /// How the execution ended.
    pub status: ExecutionStatus,
    /// The workflow's summary, its error, or why it was refused; cut to 1,000 characters.
    pub summary: Option<String>,
    /// Settled after a restart (the outcome was read from Rancher).
    pub reconciled: bool,
}

/// How an execution ended, in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// It ran and worked.
    Succeeded,
    /// It ran and failed.
    Failed,
    /// It was not run (the request did not match its audit record).
    Refused,
}

impl From<OutcomeStatus> for ExecutionStatus {
    fn from(s: OutcomeStatus) -> Self {
        match s {
            OutcomeStatus::Succeeded => ExecutionStatus::Succeeded,
            OutcomeStatus::Failed => ExecutionStatus::Failed,
        }
    }
}

/// `data` of `request.cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cancelled {
    /// The reason given, cut to 1,000 characters.
    pub reason: Option<String>,
}

/// `data` of the grant events: the grant's facts as audited (ids, role, times; never a token), then what the
/// event adds. Absent values are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrantData {
    /// The grant's id (the request that made it).
    pub grant: String,
    /// Global, cluster or project.
    pub kind: BindingKind,
    /// The binding's name.
    pub binding: String,
    /// The binding's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The cluster or project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// User or group.
    pub subject_kind: SubjectKind,
    /// The user or group id.
    pub subject: String,
    /// The role.
    pub role: String,
    /// Who asked for it.
    pub requested_by: String,
    /// Who approved it.
    pub approved_by: Vec<String>,
    /// When it was given (RFC 3339).
    pub granted_at: String,
    /// When it is due to end (RFC 3339).
    pub due_at: String,
    /// What the event adds.
    #[serde(flatten)]
    pub end: GrantEnd,
}

/// What a grant event adds to the grant's facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GrantEnd {
    /// `grant.revoked`.
    Revoked {
        /// When (RFC 3339).
        revoked_at: String,
        /// Who or what revoked it.
        revoked_by: String,
        /// The process that did.
        process: String,
        /// How it ended (due, early, ...).
        how: RevokedHow,
        /// A note for people.
        note: String,
    },
    /// `grant.overdue`.
    Overdue {
        /// The process that tried.
        process: String,
        /// Why it could not be revoked.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// When it is tried again (RFC 3339).
        next_attempt_at: String,
    },
    /// `grant.ended_early`.
    EndedEarly {
        /// Who ended it.
        ended_by: String,
    },
}

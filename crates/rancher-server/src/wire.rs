//! The service's wire contract: the body of every request and the answer of every route under `/api/v1`, as types.
//! The handlers answer these, [`crate::ServerClient`] reads them back, and the OpenAPI document describes them
//! (each derives `ToSchema`). Types owned by lower crates (a stored request, an installation, a policy, a grant,
//! an audit entry, a run's output) travel as they serialize and are described as objects.

use chrono::{DateTime, Utc};
use rancher_approval::{ApprovalRequest, AuditEntry, Grant, Installation, Outcome, Policy, Principal};
use rancher_workflows::{Inputs, RunOutput, Submitted};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `{"error": "...", "fix": "..."}`: what failed and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorAnswer {
    /// One line naming the cause.
    pub error: String,
    /// What to do about it, when the service knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// `GET /api/v1/me`: who the token belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The Rancher user id.
    pub id: String,
    /// The login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Group principals the user belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Holds the admin global role.
    pub is_admin: bool,
}

impl Me {
    /// The caller as the service knows them.
    pub fn new(p: &Principal, is_admin: bool) -> Me {
        Me {
            id: p.id.clone(),
            username: p.username.clone(),
            display_name: p.display_name.clone(),
            groups: p.groups.clone(),
            is_admin,
        }
    }

    /// The name to show: the login, else the display name, else the id.
    pub fn name(&self) -> &str {
        self.username
            .as_deref()
            .or(self.display_name.as_deref())
            .unwrap_or(&self.id)
    }
}

/// One input of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InputView {
    /// Name, as in `--input name=value`.
    pub name: String,
    /// Value kind (`string`, `bool`, ...).
    pub kind: String,
    /// Must be given.
    pub required: bool,
    /// What it means.
    pub description: String,
}

/// A workflow of the catalog with its installation (`GET /api/v1/workflows/{id}`, and each item of the catalog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CatalogEntry {
    /// Stable id.
    pub id: String,
    /// Title.
    pub title: String,
    /// What it does.
    pub description: String,
    /// Its inputs.
    pub inputs: Vec<InputView>,
    /// What it answers.
    pub output: String,
    /// Whether it writes to Rancher.
    pub writes: bool,
    /// The approval it gets when installed without a policy (`none`, `installer`, ...).
    pub default_approval: String,
    /// That default policy in words.
    pub default_policy: String,
    /// Whether it is installed here.
    pub installed: bool,
    /// The installation (who installed it, its policy), when installed.
    #[schema(value_type = Option<Object>)]
    pub installation: Option<Installation>,
    /// The installed policy in words.
    pub policy_text: Option<String>,
}

impl CatalogEntry {
    /// `w` with its installation `inst`.
    pub fn new(w: &rancher_workflows::WorkflowDef, inst: Option<&Installation>) -> CatalogEntry {
        CatalogEntry {
            id: w.id.into(),
            title: w.title.into(),
            description: w.description.into(),
            inputs: w
                .inputs
                .iter()
                .map(|i| InputView {
                    name: i.name.into(),
                    kind: name_of(&i.kind),
                    required: i.required,
                    description: i.description.into(),
                })
                .collect(),
            output: w.output.into(),
            writes: w.writes,
            default_approval: name_of(&w.default_approval),
            default_policy: w.default_approval.policy().to_string(),
            installed: inst.is_some(),
            installation: inst.cloned(),
            policy_text: inst.map(|i| i.policy.to_string()),
        }
    }
}

/// A unit enum's serialized name (`snake_case`).
fn name_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `GET /api/v1/workflows`: the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Catalog {
    /// Every workflow, with its installation.
    pub items: Vec<CatalogEntry>,
}

/// Body of install and set-policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PolicyRequest {
    /// The approval policy (as `rancherctl workflows show -o json` prints it); install without one uses the
    /// workflow's default.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Policy>,
}

/// The installation, as install and set-policy answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct InstallationView(pub Installation);

/// Body of `POST /api/v1/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RunRequest {
    /// The workflow id.
    pub workflow: String,
    /// Inputs by name: an object (anything else is refused as a body that does not fit), each value as the
    /// workflow's catalog entry types it; checked against that entry and parsed by the workflow's input struct.
    #[serde(default, deserialize_with = "input_object")]
    #[schema(value_type = Object)]
    pub inputs: Option<Inputs>,
    /// Why (recorded on the request and in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
    /// Send reads only and show the writes that would be sent.
    #[serde(default)]
    pub dry_run: bool,
    /// With `Accept: application/x-ndjson`, a list workflow streams: also send each item's table row.
    #[serde(default)]
    pub rows: bool,
    /// Break-glass: run a time-bound grant at once, where a policy rule permits it for the caller (capped at one
    /// hour, reviewed afterwards); anyone else gets 403 and nothing is created. Needs a `reason`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

/// Reads a run's `inputs`: an object of inputs by name (or `null`: none).
fn input_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Inputs>, D::Error> {
    let given: Option<Map<String, Value>> = Deserialize::deserialize(d)?;
    Ok(given.map(|m| Inputs::from(Value::Object(m))))
}

/// What a run did: `200` with its output when it ran, `202` when it waits for approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunAnswer {
    /// It ran (no approval needed, or a dry run).
    Succeeded {
        /// The output (workflow, summary, result, table, dry_run, planned, grant).
        #[schema(value_type = Object)]
        result: Box<RunOutput>,
    },
    /// It waits for approval.
    Pending {
        /// The approval request id.
        request: String,
        /// Who can approve it, in words.
        approvers: String,
        /// When it expires.
        expires_at: String,
    },
}

impl From<Submitted> for RunAnswer {
    fn from(s: Submitted) -> RunAnswer {
        match s {
            Submitted::Succeeded { result } => RunAnswer::Succeeded { result },
            Submitted::Pending {
                request,
                approvers,
                expires_at,
            } => RunAnswer::Pending {
                request,
                approvers,
                expires_at,
            },
        }
    }
}

impl From<RunAnswer> for Submitted {
    fn from(a: RunAnswer) -> Submitted {
        match a {
            RunAnswer::Succeeded { result } => Submitted::Succeeded { result },
            RunAnswer::Pending {
                request,
                approvers,
                expires_at,
            } => Submitted::Pending {
                request,
                approvers,
                expires_at,
            },
        }
    }
}

/// `POST /api/v1/grants/{id}/extend`: the answer to the new request, and the grant's workflow it was filed under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Extended {
    /// The answer to the new request.
    #[serde(flatten)]
    pub answer: RunAnswer,
    /// The grant's workflow.
    pub workflow: String,
}

/// One object exactly as Rancher sent it, read back from a streamed list: Rancher's fields in Rancher's order,
/// including the ones no type of ours names, written back byte for byte.
///
/// It stays JSON inside on purpose: the service streams a list item in the generated type of the surface the
/// server speaks (RK-API or norman, chosen by the server's version), which the client cannot know, and a newer
/// Rancher adds fields no generated type names. The client only writes it back out, so it offers nothing but
/// (de)serialization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RancherObject(Value);

impl From<Value> for RancherObject {
    fn from(sent: Value) -> Self {
        RancherObject(sent)
    }
}

/// One line of a streamed list run (`Accept: application/x-ndjson`): a head, an item per resource, and last
/// either the end or an error. An answer without its last line was cut off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ListLine {
    /// The first line.
    Head {
        /// Always `streaming`.
        #[serde(default)]
        status: String,
        /// The workflow id.
        workflow: String,
        /// What is listed, plural (`users`).
        noun: String,
        /// The table's column headers.
        #[serde(default)]
        columns: Vec<String>,
    },
    /// One resource, as Rancher sent it, and its table row when asked for.
    Item {
        /// The resource.
        #[schema(value_type = Object)]
        item: RancherObject,
        /// Its row in the workflow's table.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        row: Option<Vec<String>>,
    },
    /// The last line of a complete list.
    End {
        /// How many items were sent.
        end: ListEnd,
    },
    /// The last line of a list that failed part way.
    Error {
        /// Why.
        error: String,
    },
}

/// How a complete list ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListEnd {
    /// How many items were sent.
    pub count: u64,
}

/// Query of the request list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
pub struct RequestQuery {
    /// Only requests in this state: pending, approved, executing, succeeded, failed, denied, expired, cancelled.
    pub state: Option<String>,
    /// Only requests for this workflow.
    pub workflow: Option<String>,
    /// Only requests by this user id.
    pub requester: Option<String>,
    /// At most this many items (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Only requests older than this request id (the `next` of the previous page).
    pub before: Option<String>,
    /// Only the caller's own requests.
    pub mine: Option<bool>,
    /// Only pending requests the caller may approve now (filed by others, not yet decided by the caller).
    pub to_approve: Option<bool>,
}

impl RequestQuery {
    /// The query string (`limit=...&state=...`), each value percent-encoded.
    pub fn query_string(&self) -> String {
        let enc = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut q = Vec::new();
        for (k, v) in [
            ("state", self.state.clone()),
            ("workflow", self.workflow.clone()),
            ("requester", self.requester.clone()),
            ("limit", self.limit.map(|l| l.to_string())),
            ("before", self.before.clone()),
            ("mine", self.mine.map(|b| b.to_string())),
            ("to_approve", self.to_approve.map(|b| b.to_string())),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={}", enc(&v)));
            }
        }
        q.join("&")
    }
}

/// A request as a viewer may see it: the stored request (inputs the viewer may not read reduced to counts) plus
/// who may approve, the outcome and, for one request, its audit entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    /// The stored request: id, workflow_id, inputs, requester, installer, targets, policy, state, decisions,
    /// execution, ...
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub stored: ApprovalRequest,
    /// The request id (as `id`).
    pub request: String,
    /// Its state (as `state`).
    pub status: String,
    /// The policy in words.
    pub policy_text: String,
    /// Who may approve, in words.
    pub who_may_approve: String,
    /// The outcome of its execution, as stored (a long result is kept in part).
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Outcome>,
    /// A failed execution: its error and who stopped it (read from the outcome; one stored before who stopped it
    /// was recorded is told from its error's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureView>,
    /// `shown`, or why what the service read for the request is withheld from this viewer.
    pub details: String,
    /// The plan in the names pinned at filing (`rancher_workflows::names::plan_sentence`), as plain text.
    #[serde(default)]
    pub plan: String,
    /// Look-alike warnings about those names (`rancher_workflows::names::warnings`), as plain text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name_warnings: Vec<String>,
    /// Its audit entries (one request shown alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub audit: Option<Vec<AuditEntry>>,
    /// An approval that executed the request: the whole output of that run, as it was just made (the stored
    /// outcome keeps a long result only in part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Box<RunOutput>>,
}

/// `GET /api/v1/requests`: a page of requests, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestPage {
    /// The requests.
    pub items: Vec<RequestView>,
    /// The `before` of the next page; absent (null) on the last.
    pub next: Option<String>,
}

/// Body of approve, deny and cancel.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DecisionRequest {
    /// Why (policies may require one).
    #[serde(default)]
    pub reason: Option<String>,
    /// Approve and deny: the `content_hash` of the request as the reviewer was shown it. When given, the decision
    /// is refused with `409` if the request differs from what was reviewed. `rancherctl` and the web page send it.
    #[serde(default)]
    pub reviewed: Option<String>,
}

/// Body of a grant's extension.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExtendRequest {
    /// How much longer: `30m`, `8h`, `7d`.
    pub by: String,
    /// Why (recorded on the new request).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Query of the grant list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
pub struct GrantQuery {
    /// Only grants in this status: active (in force), overdue (due, not yet revoked) or expired (revoked).
    pub status: Option<String>,
}

/// A grant with its status now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    /// The recorded grant.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub grant: Grant,
    /// `active`, `overdue` or `expired`, now.
    pub status: String,
}

/// `GET /api/v1/grants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantList {
    /// The grants.
    pub items: Vec<GrantView>,
    /// The service's clock, which the statuses are of.
    #[schema(value_type = String, format = DateTime)]
    pub now: DateTime<Utc>,
}

/// `POST /api/v1/grants/{id}/revoke`: how the revocation went (`revoked`, `failed` with the next attempt, or
/// `skipped`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct Revoked(pub rancher_workflows::grants::RevokeOutcome);

/// `GET /api/v1/audit`: the whole log and the result of verifying its chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The entries, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<AuditEntry>,
    /// The last entry's sequence number and hash.
    #[schema(value_type = Object)]
    pub head: rancher_approval::AuditHead,
    /// Whether the chain verified.
    pub verified: bool,
    /// What is wrong with it, when it did not.
    pub problem: Option<String>,
}

/// `GET /api/v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerified {
    /// Always true (a broken chain answers `409`).
    pub ok: bool,
    /// How many entries were verified.
    pub entries: u64,
    /// The head.
    #[schema(value_type = Object)]
    pub head: rancher_approval::AuditHead,
}

/// Why an approved execution failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailureView {
    /// The error, as stored.
    pub error: String,
    /// Who stopped it: `rancher` (it answered with an HTTP error status), `unreachable` (no connection, or no
    /// answer in time) or `rancherctl` (its own checks before a write).
    #[schema(value_type = String, example = "rancher")]
    pub refused_by: rancher_workflows::RefusedBy,
}

impl From<rancher_workflows::Failure> for FailureView {
    fn from(f: rancher_workflows::Failure) -> Self {
        FailureView {
            error: f.error,
            refused_by: f.refused_by,
        }
    }
}

/// `GET /api/v1/webhooks/dead-letters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetters {
    /// Each event given up on, oldest first within each webhook.
    pub items: Vec<DeadLetter>,
}

/// One webhook event given up on after its retries, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    /// The webhook, its URL with any credentials taken out.
    pub webhook: String,
    /// The sink name the webhook's deliveries are kept under.
    pub sink: String,
    /// The audit sequence number of the event's entry.
    pub seq: u64,
    /// The event name (`request.created`, ...).
    pub event: Option<String>,
    /// The request the event is about.
    pub request: Option<String>,
    /// Why it was given up on.
    pub why: String,
    /// The receiver's last HTTP status, when it answered.
    pub status: Option<u16>,
    /// How many posts were tried.
    pub attempts: u32,
    /// When it was given up on (RFC 3339).
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_runs_inputs_are_an_object_or_nothing() {
        let given: RunRequest =
            serde_json::from_value(json!({"workflow": "w", "inputs": {"user": "u-1", "n": 2}})).unwrap();
        assert_eq!(
            given.inputs.map(Inputs::into_value),
            Some(json!({"user": "u-1", "n": 2}))
        );
        for none in [json!({"workflow": "w"}), json!({"workflow": "w", "inputs": null})] {
            assert_eq!(serde_json::from_value::<RunRequest>(none).unwrap().inputs, None);
        }
        for bad in [json!([1]), json!("user=u-1"), json!(5)] {
            assert!(
                serde_json::from_value::<RunRequest>(json!({"workflow": "w", "inputs": bad})).is_err(),
                "{bad} refused"
            );
        }
        // Sent as written.
        let body = RunRequest {
            workflow: "w".into(),
            inputs: Some(json!({"b": 1, "a": 2}).into()),
            ..RunRequest::default()
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"workflow":"w","inputs":{"b":1,"a":2},"reason":null,"dry_run":false,"rows":false}"#
        );
    }
}

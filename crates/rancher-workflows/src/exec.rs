//! The bottom of the crate: the executor every workflow runs with. Reads go straight through; writes go through
//! [`Exec::write`] / [`Exec::send`], which in a dry run record the exact request instead of sending it and, when
//! the run executes an approval request, first confirm that this process still holds its claim. The built-in
//! workflows sit above this module ([`crate::builtins`], [`crate::access`], [`crate::grants`], [`crate::review`]).

use rancher_api::Error as ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::WorkflowDef;
use crate::error::{Error, Result};
use crate::progress::{self, ProgressHandle};
use crate::session::Session;

/// A request a dry run would have sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRequest {
    /// Operation id.
    pub operation: String,
    /// HTTP method.
    pub method: String,
    /// Path with the parameters filled in and encoded, and the query string, as it would be sent.
    pub path: String,
    /// The JSON body, if any: any operation's body, which the endpoint list types `any`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// A table for people: column names and rows of text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<String>>,
}

/// What a workflow run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    /// Workflow id.
    pub workflow: String,
    /// One line for people.
    pub summary: String,
    /// The result: for lists, the array of resources as the server sent them.
    pub result: Value,
    /// A table for people, when the result is a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    /// True when nothing was written.
    pub dry_run: bool,
    /// In a dry run, the writes that would have been sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedRequest>,
    /// The time-bound grant this run made or extended (recorded with the outcome).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<rancher_approval::GrantChange>,
}

/// Runs workflows for one session.
pub struct Exec<'s> {
    pub(crate) session: &'s Session,
    pub(crate) dry_run: bool,
    planned: Vec<PlannedRequest>,
    /// Set when this run executes an approval request: its id, and the check that the claim is still ours.
    claim: Option<(String, std::sync::Arc<dyn Fence>)>,
    /// Where long stages report how far they got.
    progress: ProgressHandle,
    /// The approvals store, for the workflows that keep their result there (`apply-policies`).
    store: Option<std::sync::Arc<dyn rancher_approval::Store>>,
}

/// Confirms, before each write of an approved execution, that this process still holds the execution's claim.
///
/// A process that was paused (or judged gone) may have had its execution taken over by another; its claim is no
/// longer current then, and it must stop without sending anything, since the new holder runs the request itself.
#[async_trait::async_trait]
pub trait Fence: Send + Sync {
    /// `Ok` while the claim is current (and, for a lease, extended for the write); otherwise the error that stops
    /// the run.
    async fn confirm(&self) -> Result<()>;
}

/// A user found by id or username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user id.
    pub id: String,
    /// The username (empty when the server has none, e.g. some external users).
    pub username: String,
}

impl<'s> Exec<'s> {
    /// An executor; `dry_run` sends reads but only records writes.
    pub fn new(session: &'s Session, dry_run: bool) -> Self {
        Exec {
            session,
            dry_run,
            planned: Vec::new(),
            claim: None,
            progress: progress::silent(),
            store: None,
        }
    }

    /// Gives the run the approvals store (the runner does, for every run it starts).
    pub fn with_store(mut self, store: std::sync::Arc<dyn rancher_approval::Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The approvals store, when the runner gave it.
    pub fn store(&self) -> Option<&std::sync::Arc<dyn rancher_approval::Store>> {
        self.store.as_ref()
    }

    /// Reports long stages (tokens read, tokens deleted, ...) to `progress` instead of nowhere.
    pub fn with_progress(mut self, progress: ProgressHandle) -> Self {
        self.progress = progress;
        self
    }

    /// Where this run reports its progress (a handle a workflow may move into concurrent tasks).
    pub fn progress(&self) -> ProgressHandle {
        self.progress.clone()
    }

    /// Runs as the execution of approval request `request_id`: every write first asks `fence` whether the claim
    /// is still this process's, and writes that create objects name them after the request, so that a write
    /// repeated by another executor is found (the server refuses a second object of that name).
    pub fn fenced(mut self, request_id: impl Into<String>, fence: std::sync::Arc<dyn Fence>) -> Self {
        self.claim = Some((request_id.into(), fence));
        self
    }

    /// The approval request this run executes, when it executes one.
    pub fn request_id(&self) -> Option<&str> {
        self.claim.as_ref().map(|(id, _)| id.as_str())
    }

    /// Before a write: confirms that this process still holds the execution's claim (see [`Exec::fenced`]); an
    /// unfenced run (a read, a run that needs no request) always may. Workflows that send writes through their
    /// own client call this first.
    pub async fn confirm_claim(&self) -> Result<()> {
        match &self.claim {
            Some((_, fence)) if !self.dry_run => fence.confirm().await,
            _ => Ok(()),
        }
    }

    pub(crate) fn rk_users(&self) -> bool {
        self.session.version.at_least(2, 13)
    }

    pub(crate) fn rk_mgmt(&self) -> bool {
        self.session.version.at_least(2, 11)
    }

    /// The session this executor acts with (who, which server, which version).
    pub fn session(&self) -> &'s Session {
        self.session
    }

    /// True when writes are recorded instead of sent.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Records a write a dry run would have sent (for writes sent as typed requests).
    pub fn record_planned(&mut self, planned: PlannedRequest) {
        self.planned.push(planned);
    }

    /// The planned writes recorded so far (in a dry run).
    pub fn planned(&self) -> &[PlannedRequest] {
        &self.planned
    }

    /// What the run of `def` produced: its report's parts with the id, the dry-run flag and the planned writes.
    pub(crate) fn output(
        self,
        def: &WorkflowDef,
        summary: String,
        result: Value,
        table: Option<Table>,
        grant: Option<rancher_approval::GrantChange>,
    ) -> RunOutput {
        RunOutput {
            workflow: def.id.into(),
            summary,
            result,
            table,
            dry_run: self.dry_run,
            planned: self.planned,
            grant,
        }
    }

    /// Sends a typed write (any generated request), or in a dry run records it and answers `None`. Downstream
    /// workflows write this way: the request is checked by its type, and a dry run shows exactly what it would
    /// send.
    pub async fn send<R: rancher_api::Request + Sync>(&mut self, request: &R) -> Result<Option<R::Response>> {
        self.send_masked(request, Value::clone).await
    }

    /// Like [`Exec::send`], with the body of a recorded request passed through `mask` first (so a password in the
    /// body never reaches the planned requests that are printed and stored).
    pub(crate) async fn send_masked<R: rancher_api::Request + Sync>(
        &mut self,
        request: &R,
        mask: impl Fn(&Value) -> Value,
    ) -> Result<Option<R::Response>> {
        if self.dry_run {
            let spec = request.spec();
            let path = rancher_api::request_target(request)?;
            let body = match request.body_bytes() {
                None => None,
                Some(Ok(bytes)) => serde_json::from_slice::<Value>(&bytes).ok().map(|b| mask(&b)),
                Some(Err(e)) => return Err(Error::Refused(format!("{}: the body cannot be encoded: {e}", spec.id))),
            };
            self.planned.push(PlannedRequest {
                operation: spec.id.into(),
                method: spec.method.to_string(),
                path,
                body,
            });
            return Ok(None);
        }
        self.confirm_claim().await?;
        Ok(Some(self.session.client.send(request).await?))
    }

    /// Sends a write (any operation of the endpoint list, checked against it), or in a dry run records it. Its
    /// body and answer are JSON because the endpoint list types them `any` for an operation chosen at run time.
    pub async fn write(&mut self, op: &str, params: &[(&str, &str)], body: Option<Value>) -> Result<Value> {
        self.write_masked(op, params, body, |b| b.clone()).await
    }

    /// Sends a write, or in a dry run records it with its body passed through `mask` first (so a password in
    /// the body never reaches the planned requests that are printed and stored).
    pub(crate) async fn write_masked(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
        body: Option<Value>,
        mask: impl Fn(&Value) -> Value,
    ) -> Result<Value> {
        let req = rancher_api::GenericRequest::new(op, params, body.clone())?;
        if self.dry_run {
            let path = req.target()?;
            let shown = body.as_ref().map(&mask);
            self.planned.push(PlannedRequest {
                operation: op.into(),
                method: req.spec().method.to_string(),
                path,
                body: shown.clone(),
            });
            return Ok(shown.unwrap_or(Value::Null));
        }
        self.confirm_claim().await?;
        Ok(self.session.client.call(op, params, body).await?)
    }
}
/// The name of the global role binding that executing request `request_id` creates: `grb-` and the request id,
/// reduced to what an object name may hold.
pub fn binding_name(request_id: &str) -> String {
    let id: String = request_id
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(58)
        .collect();
    format!("grb-{}", id.trim_end_matches('-'))
}

/// Rancher's webhook refusal of a binding that grants more than the caller holds
/// (rancher/webhook pkg/resources/management.cattle.io/v3/globalrolebinding/validator.go).
pub(crate) fn is_escalation(e: &ApiError) -> bool {
    e.is_forbidden()
        && e.server_error()
            .and_then(|s| s.message())
            .is_some_and(|m| m.contains("errors due to escalation"))
}

/// The escalation refusal in plain words.
pub(crate) fn escalation_words(verb: &str, user: &str, role: &str, e: &ApiError) -> String {
    format!(
        "Rancher refused to {verb} `{user}` the global role `{role}` (errors due to escalation): the account running this workflow may not grant permissions it does not hold itself, unless it has the `bind` verb on globalroles as an admin has. Run it with an admin's API key. Server said: {e}"
    )
}

/// A refused RK list in plain words: Kubernetes RBAC allows or refuses the whole list, never a part of it.
pub(crate) fn refused_list(op: &str, e: &ApiError) -> String {
    let what = op.split('.').nth(1).unwrap_or("objects");
    format!(
        "Rancher refused the list of {what} (403): this account may not list all {what}, and the RK-API never shows a part of a list; run it with an account whose global roles grant `list` on {what} (an admin's API key). Server said: {e}"
    )
}

/// Whether a refused or failed write may or may not have been applied (and must be checked, not resent).
pub(crate) fn outcome_unknown(e: &ApiError) -> bool {
    matches!(e, ApiError::Transport { .. } | ApiError::Timeout { .. })
        || matches!(e.status(), Some(429 | 500 | 502 | 503 | 504))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use serde_json::json;

    #[test]
    fn unknown_and_mistyped_inputs_are_named() {
        let def = find("create-global-role-binding").unwrap();
        let e = crate::workflow::check_inputs(def, &json!({"usr": "x"}).into())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "create-global-role-binding: input `usr`: unknown input; did you mean `user`? this workflow takes user, role, duration");
        let e = crate::workflow::check_inputs(find("list-users").unwrap(), &json!({"x": "1"}).into())
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("this workflow takes no inputs"), "{e}");
        let parse = |v: Value| crate::workflow::Inputs::from(v).parse::<crate::builtins::CreateInputs>(def);
        let e = parse(json!({"user": 5, "role": "admin"})).unwrap_err().to_string();
        assert!(e.contains("must be text"), "{e}");
        let e = parse(json!({"user": "  ", "role": "admin"})).unwrap_err().to_string();
        assert!(e.contains("is required (e.g. --input user=...)"), "{e}");
    }

    #[test]
    fn lost_answers_and_busy_servers_are_unknown_outcomes() {
        let lost = ApiError::Transport {
            operation: "x".into(),
            message: "reset".into(),
            source: None,
        };
        assert!(outcome_unknown(&lost));
        let refused = ApiError::Api {
            operation: "x".into(),
            status: 403,
            server: rancher_api::ServerError::Unparsed {
                content_type: None,
                snippet: String::new(),
            },
            retry_after: None,
        };
        assert!(!outcome_unknown(&refused));
    }
}

//! Install, submit, approve and execute exactly once.
//!
//! `submit` runs a workflow at once when its installed policy allows, or records an approval request. `approve`
//! records the caller's decision (the caller is whoever the session's token belongs to) and, when that makes the
//! request approved, claims it and executes it once with the approver's session, storing the outcome.

use std::sync::Arc;

use chrono::Utc;
use rancher_approval::{
    ApprovalRequest, Decision, EligibilityContext, Installation, NewRequest, Outcome, Policy, RequestFilter, RequestId, RequestState, Store,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::{self, DefaultApproval, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{check_inputs, Exec, RunOutput};
use crate::session::Session;

/// What `submit` did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Submitted {
    /// It ran (no approval needed, or a dry run).
    Succeeded {
        /// The output.
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

/// What `approve` did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Approved {
    /// The vote was recorded; more approvals are needed.
    Pending {
        /// The approval request id.
        request: String,
    },
    /// Approved and executed once (here).
    Succeeded {
        /// The approval request id.
        request: String,
        /// The output.
        result: Box<RunOutput>,
    },
    /// Approved, executed, and the server refused: its error is kept on the request.
    Failed {
        /// The approval request id.
        request: String,
        /// The server's error.
        error: String,
    },
}

/// The workflow runner over an approval store.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    executor: String,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("executor", &self.executor).finish_non_exhaustive()
    }
}

async fn blocking<T, F>(store: &Arc<dyn Store>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> rancher_approval::Result<T> + Send + 'static,
{
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(s.as_ref())).await.map_err(|e| Error::Task(e.to_string()))?.map_err(Error::from)
}

fn def(id: &str) -> Result<&'static WorkflowDef> {
    catalog::find(id).ok_or_else(|| Error::UnknownWorkflow(id.into()))
}

impl Runner {
    /// A runner; `executor` names this process in the audit log (e.g. `rancherctl@host`).
    pub fn new(store: Arc<dyn Store>, executor: impl Into<String>) -> Self {
        Runner { store, executor: executor.into() }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Installs a workflow with `policy` (or its default), recording the session's user as the installer.
    pub async fn install(&self, session: &Session, workflow: &str, policy: Option<Policy>) -> Result<Installation> {
        let d = def(workflow)?;
        let policy = policy.unwrap_or_else(|| d.default_approval.policy());
        let who = session.principal.clone();
        let id = d.id.to_string();
        blocking(&self.store, move |s| s.install(&id, &who, policy, Utc::now())).await
    }

    /// Changes the policy of an installed workflow: only its installer or an admin may.
    pub async fn set_policy(&self, session: &Session, workflow: &str, policy: Policy) -> Result<Installation> {
        let d = def(workflow)?;
        let inst = self.installation(d.id).await?.ok_or_else(|| Error::NotInstalled(d.id.into()))?;
        if inst.installer.id != session.principal.id && !session.is_admin {
            return Err(Error::NotAllowed(format!(
                "only the installer ({}) or an admin may change the policy of `{}`",
                inst.installer.username.clone().unwrap_or(inst.installer.id.clone()),
                d.id
            )));
        }
        let who = session.principal.clone();
        let id = d.id.to_string();
        blocking(&self.store, move |s| s.set_policy(&id, policy, &who, Utc::now())).await
    }

    /// The installation of a workflow, if any.
    pub async fn installation(&self, workflow: &str) -> Result<Option<Installation>> {
        let id = workflow.to_string();
        blocking(&self.store, move |s| s.get_installation(&id)).await
    }

    /// Runs a workflow now, or files an approval request when its policy asks for one. A dry run never writes
    /// and needs no approval.
    pub async fn submit(&self, session: &Session, workflow: &str, inputs: Value, reason: Option<String>, dry_run: bool) -> Result<Submitted> {
        let d = def(workflow)?;
        check_inputs(d, &inputs)?;
        if d.id == "rancher-api-request" {
            crate::exec::api_generic_request(d, &inputs)?;
        }
        let inst = self.installation(d.id).await?.ok_or_else(|| Error::NotInstalled(d.id.into()))?;
        let needs = inst.policy.needs_approval() && !(dry_run || reads_only(d, &inputs));
        if !needs {
            let out = Exec::new(session, dry_run).run(d, &inputs).await?;
            return Ok(Submitted::Succeeded { result: Box::new(out) });
        }
        // Validate inputs against the server now, so a request is never filed for something that cannot run.
        let inputs = crate::access::prepare(session, d, inputs).await?;
        let exec = Exec::new(session, true);
        let mut targets = Vec::new();
        if let Some(u) = inputs.get("user").and_then(Value::as_str) {
            targets.push(exec.resolve_user(u).await?);
        }
        if d.id == "create-global-role-binding" {
            if let Some(r) = inputs.get("role").and_then(Value::as_str) {
                exec.resolve_role(r).await?;
            }
        }
        let fallback = session.admin_user_ids().await.unwrap_or_default();
        let new = NewRequest::for_installation(&inst, session.principal.clone()).inputs(inputs, ["token", "password", "secret"]).targets(targets);
        let new = match reason {
            Some(r) => new.reason(r),
            None => new,
        };
        let req = blocking(&self.store, move |s| s.create_request(new, Utc::now())).await?;
        Ok(Submitted::Pending { request: req.id.to_string(), approvers: who_can_approve(&req, &fallback), expires_at: req.expires_at.to_rfc3339() })
    }

    /// Records the session user's approval; if that approves the request, executes it exactly once.
    pub async fn approve(&self, session: &Session, request: &str, reason: Option<String>) -> Result<Approved> {
        self.decide(session, request, Decision::approve(), reason).await
    }

    /// Records the session user's denial.
    pub async fn deny(&self, session: &Session, request: &str, reason: Option<String>) -> Result<ApprovalRequest> {
        match self.decide(session, request, Decision::deny(), reason).await? {
            Approved::Pending { request } | Approved::Succeeded { request, .. } | Approved::Failed { request, .. } => self.get(&request).await,
        }
    }

    async fn decide(&self, session: &Session, request: &str, decision: Decision, reason: Option<String>) -> Result<Approved> {
        let id = request.parse::<RequestId>()?;
        // Approved but never claimed (the approving process died in between): an approver who voted for it, or an
        // admin, approving again runs it now. The claim still makes sure it runs once.
        let current = self.get(id.as_str()).await?;
        if current.state == RequestState::Approved && decision.vote == rancher_approval::Vote::Approve {
            let voted = current.decisions.iter().any(|d| d.principal.id == session.principal.id && d.vote == rancher_approval::Vote::Approve);
            if voted || session.is_admin {
                tracing::info!(request = %id, "approved earlier but never executed; executing now");
                return self.execute_approved(session, &id).await;
            }
        }
        let fallback = session.admin_user_ids().await.unwrap_or_default();
        let ctx = EligibilityContext::with_fallback_approvers(fallback);
        let who = session.principal.clone();
        let decision = match reason {
            Some(r) => decision.because(r),
            None => decision,
        };
        let id2 = id.clone();
        let outcome = blocking(&self.store, move |s| s.decide(&id2, &who, decision, &ctx, Utc::now())).await?;
        if outcome.request.state != RequestState::Approved {
            return Ok(Approved::Pending { request: id.to_string() });
        }
        self.execute_approved(session, &id).await
    }

    /// Executes an approved request once (a second caller gets `AlreadyClaimed`).
    pub async fn execute_approved(&self, session: &Session, id: &RequestId) -> Result<Approved> {
        let executor = format!("{} as {}", self.executor, session.who());
        let (id2, ex) = (id.clone(), executor.clone());
        let claim = blocking(&self.store, move |s| s.claim_execution(&id2, &ex, Utc::now())).await?;
        let req = self.get(id.as_str()).await?;
        let d = def(&req.workflow_id)?;
        let result = Exec::new(session, false).run(d, &req.inputs).await;
        let (outcome, answer) = match result {
            Ok(out) => (Outcome::succeeded(serde_json::to_value(&out).unwrap_or(Value::Null)), Approved::Succeeded { request: id.to_string(), result: Box::new(out) }),
            Err(e) => {
                let msg = e.to_string();
                (Outcome::failed(json!({"error": msg})), Approved::Failed { request: id.to_string(), error: msg })
            }
        };
        blocking(&self.store, move |s| s.record_outcome(&claim, outcome, Utc::now())).await?;
        Ok(answer)
    }

    /// Cancels a pending request: its requester or an admin may.
    pub async fn cancel(&self, session: &Session, request: &str, reason: Option<String>) -> Result<ApprovalRequest> {
        let req = self.get(request).await?;
        if req.requester.id != session.principal.id && !session.is_admin {
            return Err(Error::NotAllowed("only the requester or an admin may cancel a request".into()));
        }
        let who = session.principal.clone();
        blocking(&self.store, move |s| s.cancel(&req.id, &who, reason, Utc::now())).await
    }

    /// One request.
    pub async fn get(&self, request: &str) -> Result<ApprovalRequest> {
        let id = request.parse::<RequestId>()?;
        blocking(&self.store, move |s| s.get_request(&id)).await
    }

    /// Requests, optionally in one state (expired ones are marked first).
    pub async fn list(&self, state: Option<RequestState>) -> Result<Vec<ApprovalRequest>> {
        blocking(&self.store, move |s| {
            s.expire_due(Utc::now())?;
            let f = match state {
                Some(st) => RequestFilter::all().state(st),
                None => RequestFilter::all(),
            };
            s.list_requests(&f)
        })
        .await
    }

    /// Settles executions left in doubt by a crash: a binding create is checked against the server.
    pub async fn reconcile(&self, session: &Session) -> Result<Vec<ApprovalRequest>> {
        let doubtful = blocking(&self.store, |s| s.in_doubt()).await?;
        let mut settled = Vec::new();
        for req in doubtful {
            let exec = Exec::new(session, true);
            let (outcome, note) = match req.workflow_id.as_str() {
                "create-global-role-binding" => {
                    let user = req.inputs.get("user").and_then(Value::as_str).unwrap_or_default();
                    let role = req.inputs.get("role").and_then(Value::as_str).unwrap_or_default();
                    let uid = exec.resolve_user(user).await?;
                    let found = exec.bindings().await?.into_iter().find(|b| b.user.as_deref() == Some(uid.as_str()) && b.role == role);
                    match found {
                        Some(b) => (Outcome::succeeded(json!({"binding": b.raw, "reconciled": true})), "the binding exists on the server"),
                        None => (Outcome::failed(json!({"error": "not applied: no such binding on the server"})), "no binding on the server"),
                    }
                }
                wf if wf.starts_with("access-control-") => match crate::access::applied(session, wf, &req.inputs).await? {
                    Some(true) => (Outcome::succeeded(json!({"reconciled": true, "note": "the server shows the change applied"})), "the change is on the server"),
                    Some(false) => (Outcome::failed(json!({"error": "not applied: the server does not show the change"})), "the change is not on the server"),
                    None => (Outcome::failed(json!({"error": "outcome unknown after a crash"})), "outcome unknown"),
                },
                _ => (Outcome::failed(json!({"error": "outcome unknown after a crash; check the server and run again if needed"})), "outcome unknown"),
            };
            let who = session.principal.clone();
            let id = req.id.clone();
            settled.push(blocking(&self.store, move |s| s.resolve_in_doubt(&id, outcome, note, &who, Utc::now())).await?);
        }
        Ok(settled)
    }
}

/// True when a run cannot write (the generic request with a read operation).
fn reads_only(d: &WorkflowDef, inputs: &Value) -> bool {
    if d.default_approval == DefaultApproval::InstallerForWrites {
        if let Some(op) = inputs.get("operation").and_then(Value::as_str).and_then(rancher_api::find_operation) {
            return !op.mutating;
        }
    }
    !d.writes
}

fn who_can_approve(req: &ApprovalRequest, admins: &[String]) -> String {
    let p = &req.policy;
    let text = p.to_string();
    match &req.installer {
        Some(inst) if inst.id == req.requester.id => {
            let others: Vec<&str> = admins.iter().map(String::as_str).filter(|a| *a != req.requester.id).collect();
            format!("{text}; the installer is the requester, so another admin approves: {}", if others.is_empty() { "none found".into() } else { others.join(", ") })
        }
        Some(inst) => format!("{text}: {}", inst.username.clone().unwrap_or(inst.id.clone())),
        None => text,
    }
}

//! The service's state and the operations the API and the page share: who may do what, running, deciding,
//! and the request views people see.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use rancher_approval::{
    check_eligibility, ApprovalRequest, AuditEntry, EligibilityContext, Installation, Policy, RequestFilter,
    RequestState, Store,
};
use rancher_auth::BearerToken;
use rancher_workflows::{Approved, RunOutput, Runner, Session, Submitted};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tracing::Instrument;

use crate::error::ApiError;
use crate::identity::{Identities, Person};
use crate::metrics::Metrics;

/// Executions and decisions in flight; shutdown waits for them.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held while a task is in flight.
pub(crate) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// How many are in flight now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until nothing is in flight.
    pub(crate) async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// The most stored requests one list call reads to fill a page of the ones the caller may see.
pub(crate) const SCAN_ROWS: usize = 1_000;

/// Everything a handler needs.
pub struct App {
    pub(crate) runner: Runner,
    pub(crate) service: Session,
    pub(crate) identities: Identities,
    pub(crate) metrics: Metrics,
    pub(crate) inflight: Arc<InFlight>,
    pub(crate) web: crate::sessions::WebSessions,
    pub(crate) secure_cookies: bool,
    pub(crate) throttle: crate::throttle::Throttle,
    /// A runner without the service account: runs that need no approval execute with the caller's own session.
    direct: Runner,
    admins: Mutex<Option<(Vec<String>, Instant)>>,
    /// The published audit head (the anchor) and the execution gate it controls.
    pub(crate) integrity: crate::integrity::Integrity,
    /// The jobs' clock (grant revocation, overdue-grant metrics).
    pub(crate) clock: crate::config::Clock,
    /// Whether a chat service (Slack or Teams) is configured: reminders are recorded only then.
    pub(crate) chat_configured: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("runner", &self.runner)
            .field("service", &self.service.who())
            .finish_non_exhaustive()
    }
}

/// Runs `f` with the store, its error as an API error.
pub(crate) async fn with_store<T, F, Fut>(store: &Arc<dyn Store>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = rancher_approval::Result<T>>,
{
    f(store.clone()).await.map_err(ApiError::from)
}

impl App {
    /// `runner` executes approved requests with `service`; `direct` (same store, no executor) runs what needs no
    /// approval with the caller's own session. Web sessions, cookies, throttling and the clock come from `config`.
    pub(crate) fn new(
        runner: Runner,
        direct: Runner,
        service: Session,
        identities: Identities,
        metrics: Metrics,
        config: &crate::config::ServerConfig,
    ) -> App {
        let web = crate::sessions::WebSessions::new(
            config.store.clone(),
            config.web_idle_timeout,
            config.web_session_ttl,
            config.clock.clone(),
        );
        App {
            runner,
            service,
            identities,
            metrics,
            inflight: Arc::new(InFlight::default()),
            web,
            secure_cookies: config.secure_cookies(),
            throttle: crate::throttle::Throttle::new(
                config.sign_in_limit,
                config.token_check_limit,
                config.public_url.is_some(),
            ),
            direct,
            admins: Mutex::new(None),
            integrity: crate::integrity::Integrity::in_memory(),
            clock: config.clock.clone(),
            chat_configured: config.slack.is_some() || config.teams_webhook.is_some(),
        }
    }

    /// Checks the store against `integrity`'s anchor.
    pub(crate) fn with_integrity(mut self, integrity: crate::integrity::Integrity) -> App {
        self.integrity = integrity;
        self
    }

    /// Whether the audit log verified from the head this service published, at the last check; while it does
    /// not, nothing is executed (and `/readyz` should say so, with [`App::integrity_problem`]).
    pub(crate) fn integrity_ok(&self) -> bool {
        self.integrity.ok()
    }

    /// What the last check of the audit log against the published head found wrong, if anything.
    pub(crate) fn integrity_problem(&self) -> Option<String> {
        self.integrity.problem()
    }

    /// The rule set requests are judged by when filed: that of `--policies`, else the set installed in the store
    /// as last read (`rancherctl policies apply`), if any. Both runners share it.
    pub(crate) fn rules(&self) -> Option<Arc<rancher_approval::rules::RuleSet>> {
        self.runner.policies().and_then(|p| p.rules())
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        self.runner.store()
    }

    /// The caller behind a bearer token (resolved in the last 30 s, or now), with the session opened to resolve
    /// them when that happened now.
    pub(crate) async fn person(&self, token: &BearerToken) -> Result<(Person, Option<Session>), ApiError> {
        self.identities
            .resolve_with_session(token, &self.service, &self.metrics, false)
            .await
    }

    /// The caller behind a bearer token, asked of Rancher now (before a decision, and at sign-in).
    pub(crate) async fn person_now(&self, token: &BearerToken) -> Result<Person, ApiError> {
        self.identities.resolve(token, &self.service, &self.metrics, true).await
    }

    /// Holders of the admin role (the fallback approvers), cached for a minute.
    pub(crate) async fn admin_ids(&self) -> Vec<String> {
        if let Ok(g) = self.admins.lock() {
            if let Some((ids, at)) = g.as_ref() {
                if at.elapsed() < Duration::from_secs(60) {
                    return ids.clone();
                }
            }
        }
        let ids = self.service.admin_user_ids().await.unwrap_or_default();
        if let Ok(mut g) = self.admins.lock() {
            *g = Some((ids.clone(), Instant::now()));
        }
        ids
    }

    /// Runs `fut` to its end even if the caller goes away (a dropped connection must not cut an execution in
    /// half), and counts it as in flight so shutdown waits for it.
    pub(crate) async fn detached<T, F>(&self, fut: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let guard = self.inflight.enter();
        // In the caller's span: a trace shows the detached work (an execution, say) beneath its HTTP request.
        tokio::spawn(
            async move {
                let _guard = guard;
                fut.await
            }
            .in_current_span(),
        )
        .await
        .map_err(|e| ApiError::internal(format!("the task failed: {e}")))?
    }

    /// Installs a workflow: admins only.
    pub(crate) async fn install(
        &self,
        person: &Person,
        workflow: &str,
        policy: Option<Policy>,
    ) -> Result<Installation, ApiError> {
        if !person.is_admin {
            return Err(ApiError::forbidden(format!(
                "only an admin may install workflows; {} is not an admin",
                person.who()
            )));
        }
        Ok(self
            .runner
            .install(&person.acting_through(&self.service), workflow, policy)
            .await?)
    }

    /// Changes a policy: the installer or an admin (the runner checks).
    pub(crate) async fn set_policy(
        &self,
        person: &Person,
        workflow: &str,
        policy: Policy,
    ) -> Result<Installation, ApiError> {
        Ok(self
            .runner
            .set_policy(&person.acting_through(&self.service), workflow, policy)
            .await?)
    }

    /// Submits a run. What needs approval is filed (facts looked up with the service's rights); what needs none
    /// runs with the caller's own token and rights, so the service never lends its account to a direct run.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        person: &Person,
        token: &BearerToken,
        opened: Option<Session>,
        workflow: &str,
        inputs: rancher_workflows::Inputs,
        reason: Option<String>,
        dry_run: bool,
    ) -> Result<Submitted, ApiError> {
        let w = self.runner.registry().require(workflow)?.clone();
        let def = w.def();
        // Inputs are data: the service never reads a file of its own host that a caller names.
        rancher_workflows::refuse_host_paths(def, &inputs)?;
        let inst = self
            .runner
            .installation(def.id)
            .await?
            .ok_or_else(|| ApiError::from(rancher_workflows::Error::NotInstalled(def.id.into())))?;
        let needs = inst.policy.needs_approval() && !(dry_run || w.reads_only(&inputs));
        let (session, runner) = if needs {
            (person.acting_through(&self.service), self.runner.clone())
        } else {
            let session = match opened {
                Some(s) => s,
                None => self.identities.open(token, &self.metrics).await?,
            };
            (session, self.direct.clone())
        };
        let wf = def.id.to_string();
        self.detached(async move { Ok(runner.submit(&session, &wf, inputs, reason, dry_run).await?) })
            .await
    }

    /// Opens a list workflow (needing no approval: it writes nothing) as a stream of items, read with the caller's
    /// own token and rights, as [`App::submit`] runs it; `None` for a workflow that is not a list.
    pub(crate) async fn open_list(
        &self,
        token: &BearerToken,
        opened: Option<Session>,
        workflow: &str,
        inputs: &Value,
        rows: bool,
    ) -> Result<Option<rancher_workflows::ListStream>, ApiError> {
        let wf = self.runner.registry().require(workflow)?;
        if wf.list().is_none() {
            return Ok(None);
        }
        let def = wf.def();
        // A list needs only the server's version: the session opened to learn who the caller is serves, or one
        // that asks nothing more.
        let session = match opened {
            Some(s) => s,
            None => self.identities.open_for_reads(token, &self.metrics).await?,
        };
        Ok(self.direct.open_list(&session, def.id, inputs, rows).await?)
    }

    /// Records an approval or a denial; an approval that approves the request executes it here, once, with the
    /// service account. Answers the request as it stands afterwards and, when this approval executed it, the
    /// whole output of that run (the store keeps a long result only in part).
    /// `reviewed` is the content hash the person was shown: the decision is refused (409) when the request
    /// differs from it.
    pub(crate) async fn decide(
        self: &Arc<Self>,
        person: &Person,
        id: &str,
        approve: bool,
        reason: Option<String>,
        reviewed: Option<String>,
    ) -> Result<(ApprovalRequest, Option<Box<RunOutput>>), ApiError> {
        let session = person.acting_through(&self.service);
        let app = self.clone();
        let id = id.to_string();
        self.detached(async move {
            let started = Instant::now();
            if approve {
                let done = app.runner.approve_reviewed(&session, &id, reason, reviewed).await?;
                app.metrics.decision(true);
                match &done {
                    Approved::Succeeded { .. } => app.metrics.execution(true, started.elapsed()),
                    Approved::Failed { .. } => app.metrics.execution(false, started.elapsed()),
                    Approved::Pending { .. } => {}
                }
                let result = match done {
                    Approved::Succeeded { result, .. } => Some(result),
                    _ => None,
                };
                Ok((app.runner.get(&id).await?, result))
            } else {
                let r = app.runner.deny_reviewed(&session, &id, reason, reviewed).await?;
                app.metrics.decision(false);
                Ok((r, None))
            }
        })
        .await
    }

    /// Cancels: the requester or an admin (the runner checks).
    pub(crate) async fn cancel(
        &self,
        person: &Person,
        id: &str,
        reason: Option<String>,
    ) -> Result<ApprovalRequest, ApiError> {
        Ok(self
            .runner
            .cancel(&person.acting_through(&self.service), id, reason)
            .await?)
    }

    /// Ends grant `id` early (an admin, its requester or its holder: checked against the caller) and revokes it
    /// with the service account, once.
    pub(crate) async fn end_grant(
        self: &Arc<Self>,
        person: &Person,
        id: &str,
    ) -> Result<rancher_workflows::grants::RevokeOutcome, ApiError> {
        let session = person.acting_through(&self.service);
        let app = self.clone();
        let id = id.to_string();
        self.detached(async move {
            let now = (app.clock)();
            rancher_workflows::grants::end_early(&session, app.store().as_ref(), &id, now).await?;
            Ok(rancher_workflows::grants::revoke_grant(
                &app.service,
                app.store().as_ref(),
                &id,
                app.runner.process_label(),
                now,
            )
            .await?)
        })
        .await
    }

    /// One page of the requests matching `filter` that `keep` lets the caller see, newest first, older than
    /// `before`: at most `limit`, and the id to pass as `before` for the next page (none on the last). Each store
    /// read is one indexed query of a bounded size, and one call reads at most [`SCAN_ROWS`] stored requests: a
    /// caller who may see few of many requests gets a shorter (even empty) page with a `next` cursor to go on
    /// from, never a scan of the whole table. Overdue pending requests on the page are expired first, with a write
    /// only when one is actually overdue (a list is a read, and the periodic job expires the rest).
    pub(crate) async fn request_page(
        &self,
        filter: RequestFilter,
        before: Option<rancher_approval::RequestId>,
        limit: usize,
        keep: impl Fn(&ApprovalRequest) -> bool,
    ) -> Result<(Vec<ApprovalRequest>, Option<String>), ApiError> {
        let chunk = (limit + 1).max(100);
        let mut out: Vec<ApprovalRequest> = Vec::new();
        let mut cursor = before;
        let mut scanned = 0usize;
        loop {
            if scanned >= SCAN_ROWS.max(chunk) {
                // Bounded: what was found so far, and where to go on from.
                return Ok((out, cursor.map(|c| c.to_string())));
            }
            let (f, c) = (filter.clone(), cursor.clone());
            let page = with_store(self.store(), |s| async move {
                let page = s.page_requests(&f, c.as_ref(), chunk).await?;
                let now = Utc::now();
                if page
                    .iter()
                    .any(|r| r.state == RequestState::Pending && r.expires_at <= now)
                {
                    s.expire_due(now).await?;
                    return s.page_requests(&f, c.as_ref(), chunk).await;
                }
                Ok(page)
            })
            .await?;
            let exhausted = page.len() < chunk;
            scanned += page.len();
            cursor = page.last().map(|r| r.id.clone());
            out.extend(page.into_iter().filter(|r| keep(r)));
            if out.len() > limit {
                out.truncate(limit);
                let next = out.last().map(|r| r.id.to_string());
                return Ok((out, next));
            }
            if exhausted {
                return Ok((out, None));
            }
        }
    }

    /// Audit entries of one request (an indexed read of that request's entries, not a scan of the log).
    pub(crate) async fn audit_of(&self, id: &str) -> Result<Vec<AuditEntry>, ApiError> {
        let id = id.to_string();
        with_store(self.store(), |s| async move { s.audit_of_request(&id).await }).await
    }

    /// Whether `person` may decide on `req` now, and if not, why.
    pub(crate) fn may_decide(&self, person: &Person, req: &ApprovalRequest, admins: &[String]) -> Result<(), String> {
        if req.state != RequestState::Pending {
            return Err(format!("the request is {}", req.state));
        }
        let ctx = EligibilityContext::with_fallback_approvers(admins.iter().cloned());
        check_eligibility(&req.policy, &req.facts(), &person.principal, &ctx).map_err(|e| e.to_string())
    }
}

pub(crate) use rancher_workflows::who_may_approve;

/// Whether `person` may see what the service read for a request with its own rights (a plan, pinned items, the
/// sample shown to approvers, the execution's detail): admins and the approvers the policy lets decide. Everyone
/// else who may see the request (its requester above all) gets counts, so filing a request never hands the
/// requester what their own Rancher rights would refuse.
pub(crate) fn may_see_details(person: &Person, req: &ApprovalRequest, admins: &[String]) -> bool {
    if person.is_admin {
        return true;
    }
    let ctx = EligibilityContext::with_fallback_approvers(admins.iter().cloned());
    check_eligibility(&req.policy, &req.facts(), &person.principal, &ctx).is_ok()
}

/// Inputs a workflow sets itself at submit from what the service read (`plan`, `pinned`, `shown`): its input
/// specs say "set at submit".
fn set_at_submit(workflow: &str) -> Vec<&'static str> {
    rancher_workflows::registry::Registry::builtins()
        .get(workflow)
        .map(|w| {
            w.def()
                .inputs
                .iter()
                .filter(|i| i.description.starts_with("set at submit"))
                .map(|i| i.name)
                .collect()
        })
        .unwrap_or_default()
}

/// `v` reduced to its shape: lists become `{"count": N}`, numbers and booleans stay, every text is dropped.
fn counts_of(v: &Value) -> Value {
    match v {
        Value::Array(items) => json!({"count": items.len()}),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !matches!(v, Value::String(_) | Value::Null))
                .map(|(k, v)| (k.clone(), counts_of(v)))
                .collect(),
        ),
        Value::String(_) => json!("(withheld)"),
        other => other.clone(),
    }
}

/// The inputs as a viewer without [`may_see_details`] sees them: what the service filled in at submit is reduced
/// to counts; what the requester gave stays.
pub(crate) fn withheld_inputs(workflow: &str, inputs: &Value) -> Value {
    let hidden = set_at_submit(workflow);
    match inputs {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if hidden.contains(&k.as_str()) {
                            counts_of(v)
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a viewer may read of a request: all of it, or (without [`may_see_details`]) inputs, outcome and audit
/// details reduced to counts.
pub(crate) fn seen_by(req: &ApprovalRequest, details: bool) -> ApprovalRequest {
    if details {
        return req.clone();
    }
    let mut r = req.clone();
    r.inputs = withheld_inputs(&r.workflow_id, &r.inputs);
    if let Some(o) = r.execution.as_mut().and_then(|e| e.outcome.as_mut()) {
        o.detail = counts_of(&o.detail);
    }
    r
}

/// A request as the API shows it to a viewer: the stored request plus who may approve, the outcome, and (for one
/// request) its audit entries. Without `details` (see [`may_see_details`]) what the service read is reduced to
/// counts and the audit entries carry no detail.
pub(crate) fn request_view(
    req: &ApprovalRequest,
    admins: &[String],
    audit: Option<&[AuditEntry]>,
    details: bool,
) -> crate::wire::RequestView {
    let shown = seen_by(req, details);
    let audit = audit.map(|a| {
        a.iter()
            .map(|e| {
                let mut e = e.clone();
                if !details {
                    e.detail = json!("(withheld)");
                }
                e
            })
            .collect()
    });
    let outcome = shown.execution.as_ref().and_then(|e| e.outcome.clone());
    crate::wire::RequestView {
        request: req.id.to_string(),
        status: req.state.as_str().into(),
        policy_text: req.policy.to_string(),
        who_may_approve: who_may_approve(req, admins),
        failure: outcome
            .as_ref()
            .and_then(rancher_workflows::Failure::of)
            .map(Into::into),
        outcome,
        details: if details {
            "shown".into()
        } else {
            "withheld: only approvers and admins see what the service read for this request".into()
        },
        plan: rancher_workflows::names::plan_of(req),
        name_warnings: rancher_workflows::names::warnings(&req.names),
        audit,
        result: None,
        stored: shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed request as the service shows it: who stopped it, typed, from the stored outcome (a row stored
    /// before that was recorded is told from its error's words).
    #[tokio::test]
    async fn a_failed_requests_view_says_who_refused_it() {
        use rancher_approval::{ApproverRef, Decision, Executor, MemoryStore, NewRequest, Outcome, Principal};
        let store = MemoryStore::new();
        let failed = |detail: Value| {
            let store = &store;
            async move {
                let policy = Policy::at_least(1, [ApproverRef::user("u-1")]);
                let req = store
                    .create_request(NewRequest::new("wf", Principal::new("u-req"), policy), Utc::now())
                    .await
                    .unwrap();
                let ctx = EligibilityContext::default();
                store
                    .decide(&req.id, &Principal::new("u-1"), Decision::approve(), &ctx, Utc::now())
                    .await
                    .unwrap();
                let until = Utc::now() + chrono::TimeDelta::minutes(5);
                let claim = store
                    .claim_execution(&req.id, &Executor::new("u-svc", "svc"), until, Utc::now())
                    .await
                    .unwrap();
                store
                    .record_outcome(&claim, Outcome::failed(detail), Utc::now())
                    .await
                    .unwrap();
                let req = store.get_request(&req.id).await.unwrap();
                serde_json::to_value(request_view(&req, &[], None, true)).unwrap()
            }
        };
        let typed = failed(json!({"error": "grant g-1 is gone", "refused_by": "rancherctl"})).await;
        assert_eq!(
            typed["failure"],
            json!({"error": "grant g-1 is gone", "refused_by": "rancherctl"})
        );
        let old = failed(json!({"error": "rk.globalrolebindings.create: 403 Forbidden: no"})).await;
        assert_eq!(old["failure"]["refused_by"], json!("rancher"), "{old}");
        let view: crate::wire::RequestView = serde_json::from_value(old).unwrap();
        assert_eq!(
            view.failure.map(|f| f.refused_by),
            Some(rancher_workflows::RefusedBy::Rancher)
        );
    }

    #[test]
    fn n5_what_the_service_filled_in_is_reduced_to_counts() {
        let offboard = json!({"user": "u-kbt4r", "plan": {"steps": [{"delete": "grb-lbr6p"}, {"delete": "token-jqfrz"}], "shown": ["delete grb grb-lbr6p", "delete token token-jqfrz"], "username": "approver"}});
        let seen = withheld_inputs("offboard-user", &offboard);
        assert_eq!(
            seen,
            json!({"user": "u-kbt4r", "plan": {"steps": {"count": 2}, "shown": {"count": 2}}})
        );
        let cleanup = json!({"unused-days": "0", "pinned": ["token-4jf74", "token-djzcv"], "shown": {"count": 2, "users": 1, "sample": [{"name": "token-4jf74", "login": "admin"}]}});
        let seen = withheld_inputs("cleanup-tokens", &cleanup);
        assert_eq!(
            seen,
            json!({"unused-days": "0", "pinned": {"count": 2}, "shown": {"count": 2, "users": 1, "sample": {"count": 1}}})
        );
        assert!(!seen.to_string().contains("token-"), "{seen}");
        // A workflow that fills nothing in keeps its inputs.
        let grb = json!({"user": "u-59tq7", "role": "admin"});
        assert_eq!(withheld_inputs("create-global-role-binding", &grb), grb);
    }
}

//! `rancherctl approvals list|show|approve|deny|cancel|audit`. The reviewer is whoever the token in use
//! belongs to (resolved through the server), never a name from the command line.

use rancher_approval::{ApprovalRequest, RequestFilter, RequestId, RequestState, Store};
use rancher_workflows::Approved;
use serde_json::json;

use crate::commands::run::{render_run, run_document};
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

fn store(ctx: &Context) -> anyhow::Result<std::sync::Arc<rancher_approval::SqliteStore>> {
    ctx.open_store()
}

fn who(p: &rancher_approval::Principal) -> String {
    p.username.clone().unwrap_or_else(|| p.id.clone())
}

fn short_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn rows(reqs: &[ApprovalRequest]) -> String {
    output::table(
        &["ID", "WORKFLOW", "STATE", "REQUESTER", "CREATED", "EXPIRES"],
        reqs.iter().map(|r| {
            vec![r.id.to_string(), r.workflow_id.clone(), r.state.to_string(), who(&r.requester), short_time(&r.created_at), short_time(&r.expires_at)]
        }),
    )
}

/// Requests, optionally in one state.
pub fn list(ctx: &Context, state: Option<&str>) -> anyhow::Result<Exit> {
    let s = store(ctx)?;
    s.expire_due(chrono::Utc::now())?;
    let mut filter = RequestFilter::all();
    if let Some(st) = state {
        let st: RequestState = st.parse().map_err(|e: String| Failure::new(e, "see `rancherctl approvals list --help`"))?;
        filter = filter.state(st);
    }
    let reqs = s.list_requests(&filter)?;
    output::data(ctx.format(), &reqs, || if reqs.is_empty() { "no approval requests".into() } else { rows(&reqs) })?;
    Ok(Exit::Done)
}

/// Lines for people about one request.
pub fn describe(r: &ApprovalRequest) -> String {
    let mut l = vec![
        format!("request:   {}", r.id),
        format!("workflow:  {}", r.workflow_id),
        format!("state:     {}", r.state),
        format!("requester: {} ({})", who(&r.requester), r.requester.id),
        format!("inputs:    {}", r.inputs),
        format!("policy:    {}", r.policy),
        format!("created:   {}", r.created_at.to_rfc3339()),
        format!("expires:   {}", r.expires_at.to_rfc3339()),
    ];
    if let Some(reason) = &r.reason {
        l.push(format!("reason:    {reason}"));
    }
    for d in &r.decisions {
        let why = d.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        l.push(format!("decision:  {} by {} at {}{why}", d.vote, who(&d.principal), d.decided_at.to_rfc3339()));
    }
    if let Some(x) = &r.execution {
        let outcome = x.outcome.as_ref().map(|o| format!("{:?}", o.status).to_lowercase()).unwrap_or_else(|| "in progress".into());
        l.push(format!("executed:  by {} at {}: {outcome}", x.executor, x.claimed_at.to_rfc3339()));
    }
    if let Some(c) = &r.closed {
        l.push(format!("closed:    by {} at {}", c.by, c.at.to_rfc3339()));
    }
    l.join("\n")
}

/// One request.
pub fn show(ctx: &Context, id: &str) -> anyhow::Result<Exit> {
    let id: RequestId = id.parse()?;
    let r = store(ctx)?.get_request(&id)?;
    output::data(ctx.format(), &r, || describe(&r))?;
    Ok(Exit::Done)
}

/// Approves as the token's user; executes the request here when that approves it.
pub async fn approve(ctx: &Context, id: &str, reason: Option<String>) -> anyhow::Result<Exit> {
    let session = ctx.session().await?;
    let runner = ctx.runner()?;
    match runner.approve(&session, id, reason).await? {
        Approved::Pending { request } => {
            let doc = json!({"status": "pending", "request": request});
            output::data(ctx.format(), &doc, || format!("approval by {} recorded; request {request} needs more approvals", session.who()))?;
            Ok(Exit::Pending)
        }
        Approved::Succeeded { request, result } => {
            let mut doc = run_document(&result);
            if doc.get("status").is_none() {
                doc = json!({"status": "succeeded", "request": request, "result": doc});
            } else {
                doc["request"] = json!(request);
            }
            output::data(ctx.format(), &doc, || format!("approved by {} and executed once: {request}\n{}", session.who(), render_run(&result)))?;
            Ok(Exit::Done)
        }
        Approved::Failed { request, error } => Err(Failure::new(
            format!("request {request} was approved and executed, and the server refused: {error}"),
            format!("the error is kept on the request (`rancherctl approvals show {request}`); submit again once fixed"),
        )
        .into()),
    }
}

/// Settles executions left in doubt by a crash, by checking the server; lists what it settled.
pub async fn reconcile(ctx: &Context) -> anyhow::Result<Exit> {
    let session = ctx.session().await?;
    let settled = ctx.runner()?.reconcile(&session).await?;
    let doc = serde_json::to_value(&settled)?;
    output::data(ctx.format(), &doc, || {
        if settled.is_empty() {
            return "nothing in doubt: every claimed execution has its outcome".to_string();
        }
        settled.iter().map(|r| format!("{} {}: {}", r.id, r.workflow_id, r.state)).collect::<Vec<_>>().join("\n")
    })?;
    Ok(Exit::Done)
}

/// Denies as the token's user.
pub async fn deny(ctx: &Context, id: &str, reason: Option<String>) -> anyhow::Result<Exit> {
    let session = ctx.session().await?;
    let r = ctx.runner()?.deny(&session, id, reason).await?;
    output::data(ctx.format(), &r, || format!("request {} is {} (by {})", r.id, r.state, session.who()))?;
    Ok(Exit::Done)
}

/// Cancels a pending request (its requester or an admin).
pub async fn cancel(ctx: &Context, id: &str, reason: Option<String>) -> anyhow::Result<Exit> {
    let session = ctx.session().await?;
    let r = ctx.runner()?.cancel(&session, id, reason).await?;
    output::data(ctx.format(), &r, || format!("request {} is {} (by {})", r.id, r.state, session.who()))?;
    Ok(Exit::Done)
}

/// The audit log; `--verify` checks the hash chain.
pub fn audit(ctx: &Context, verify: bool) -> anyhow::Result<Exit> {
    let s = store(ctx)?;
    if verify {
        let n = s.verify_audit()?;
        let head = s.audit_head()?;
        let doc = json!({"verified": true, "entries": n, "head": head.hash});
        output::data(ctx.format(), &doc, || format!("audit log verified: {n} entries, hash chain intact (head {})", &head.hash[..head.hash.len().min(16)]))?;
        return Ok(Exit::Done);
    }
    let entries = s.audit_entries()?;
    output::data(ctx.format(), &entries, || {
        output::table(
            &["SEQ", "AT", "ACTOR", "KIND", "REQUEST", "WORKFLOW"],
            entries.iter().map(|e| {
                vec![
                    e.seq.to_string(),
                    e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    e.actor.clone(),
                    output::cell(serde_json::to_value(e.kind).ok().as_ref()),
                    e.request_id.clone().unwrap_or_default(),
                    e.workflow_id.clone().unwrap_or_default(),
                ]
            }),
        )
    })?;
    Ok(Exit::Done)
}

//! The request lifecycle, written once over [`Tx`] and shared by every store.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Takeover;
use super::{DecideOutcome, ExecutionClaim, Installation, RequestFilter, Tx};
use crate::audit::{self as audit, format_time, AuditDetail, AuditDraft, AuditEntry, AuditHead, AuditKind};
use crate::error::{Error, Result};
use crate::evaluate::{check_eligibility, EligibilityContext, Verdict};
use crate::grant::{Grant, GrantChange, RevocationClaim, RevokedHow};
use crate::policy::Policy;
use crate::principal::Principal;
use crate::request::{
    blank, content_hash, redact, ApprovalRequest, Closure, Decision, DecisionRecord, ExecutionRecord, Executor,
    NewRequest, Outcome, Reconciliation, RequestId, RequestState, ServerIdentity,
};

/// The actor recorded for changes nobody made by hand (expiry).
pub const SYSTEM_ACTOR: &str = "system";

/// The store's time for a change the caller dated `now`, and the lease end moved by the same amount (the lease
/// keeps the length the caller asked for).
async fn clocked(
    tx: &mut dyn Tx,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let clock = tx.clock(now).await?;
    Ok((clock, lease_until + (clock - now)))
}

async fn append(
    tx: &mut dyn Tx,
    now: DateTime<Utc>,
    actor: &str,
    request: Option<&ApprovalRequest>,
    workflow_id: Option<&str>,
    detail: AuditDetail,
) -> Result<()> {
    let head = tx.audit_head().await?;
    let entry = AuditDraft {
        actor: actor.to_owned(),
        request_id: request.map(|r| r.id.to_string()),
        workflow_id: workflow_id
            .or(request.map(|r| r.workflow_id.as_str()))
            .map(str::to_owned),
        detail,
    }
    .seal(&head, now);
    tx.append_audit(&entry).await
}

pub(crate) async fn get_request(tx: &mut dyn Tx, id: &RequestId) -> Result<ApprovalRequest> {
    tx.load_request(id)
        .await?
        .ok_or_else(|| Error::NotFound { id: id.to_string() })
}

pub(crate) async fn list_requests(tx: &mut dyn Tx, filter: &RequestFilter) -> Result<Vec<ApprovalRequest>> {
    let mut all = tx.requests_in(&filter.states).await?;
    all.retain(|r| filter.matches(r));
    Ok(all)
}

pub(crate) async fn create_request(tx: &mut dyn Tx, new: NewRequest, now: DateTime<Utc>) -> Result<ApprovalRequest> {
    let now = tx.clock(now).await?;
    new.policy.validate()?;
    if new.policy.options.require_requester_reason && blank(&new.reason) {
        return Err(Error::ReasonRequired { from: "requester" });
    }
    let mut request = ApprovalRequest {
        id: RequestId::generate(),
        workflow_id: new.workflow_id,
        inputs: redact(&new.inputs, &new.secret_inputs),
        requester: new.requester,
        installer: new.installer,
        targets: new.targets,
        target_labels: new.target_labels,
        names: new.names,
        reason: new.reason,
        server: new.server,
        policy_hash: new.policy.hash(),
        expires_at: now + new.policy.expiry(),
        policy: new.policy,
        content_hash: String::new(),
        created_at: now,
        state: RequestState::Pending,
        decisions: Vec::new(),
        execution: None,
        closed: None,
        rules: new.rules,
    };
    request.content_hash = request.compute_content_hash();
    if request.evaluate(now) == Verdict::Approved {
        request.state = RequestState::Approved;
    }
    tx.save_request(&request).await?;
    let detail = AuditDetail::RequestCreated(audit::RequestCreated {
        requester: request.requester.clone(),
        installer: request.installer.clone(),
        targets: request.targets.clone(),
        target_labels: request.target_labels.clone(),
        names: request.names.clone(),
        reason: request.reason.clone(),
        server: request.server.clone(),
        inputs: request.inputs.clone(),
        policy: request.policy.clone(),
        policy_hash: request.policy_hash.clone(),
        expires_at: request.expires_at,
        content_hash: request.content_hash.clone(),
        state: request.state,
        rules: request.rules.clone(),
    });
    append(tx, now, &request.requester.id, Some(&request), None, detail).await?;
    Ok(request)
}

async fn expire(tx: &mut dyn Tx, request: &mut ApprovalRequest, now: DateTime<Utc>) -> Result<()> {
    request.state = RequestState::Expired;
    request.closed = Some(Closure {
        by: SYSTEM_ACTOR.into(),
        at: now,
        reason: None,
    });
    tx.save_request(request).await?;
    let detail = AuditDetail::Expired(audit::Expired {
        expires_at: request.expires_at,
    });
    append(tx, now, SYSTEM_ACTOR, Some(request), None, detail).await
}

/// Loads a request that must be pending. A pending request past its expiry is expired here (the outer `Ok`
/// commits that) and reported as the inner error.
async fn load_pending(tx: &mut dyn Tx, id: &RequestId, now: DateTime<Utc>) -> Result<Result<ApprovalRequest>> {
    let mut request = get_request(tx, id).await?;
    if request.state != RequestState::Pending {
        return Err(Error::NotPending {
            id: id.to_string(),
            state: request.state,
        });
    }
    if now >= request.expires_at {
        expire(tx, &mut request, now).await?;
        return Ok(Err(Error::Expired {
            id: id.to_string(),
            expired_at: request.expires_at,
        }));
    }
    Ok(Ok(request))
}

pub(crate) async fn decide(
    tx: &mut dyn Tx,
    id: &RequestId,
    reviewer: &Principal,
    decision: Decision,
    context: &EligibilityContext,
    now: DateTime<Utc>,
) -> Result<Result<DecideOutcome>> {
    let now = tx.clock(now).await?;
    let mut request = match load_pending(tx, id, now).await? {
        Ok(r) => r,
        Err(expired) => return Ok(Err(expired)),
    };
    same_server(&request, decision.server.as_ref())?;
    check_content(tx, &request).await?;
    if decision.reviewed.as_ref().is_some_and(|h| *h != request.content_hash) {
        return Err(Error::ContentChanged { id: id.to_string() });
    }
    check_eligibility(&request.policy, &request.facts(), reviewer, context).map_err(|reason| Error::NotEligible {
        id: id.to_string(),
        principal: reviewer.id.clone(),
        reason,
    })?;
    if request.policy.options.require_reviewer_reason && blank(&decision.reason) {
        return Err(Error::ReasonRequired { from: "reviewer" });
    }
    let previous = request.decisions.iter().rev().find(|d| d.principal.id == reviewer.id);
    if previous.is_some_and(|d| d.vote == decision.vote) {
        return Ok(Ok(DecideOutcome {
            request,
            recorded: false,
        }));
    }
    request.decisions.push(DecisionRecord {
        principal: reviewer.clone(),
        vote: decision.vote,
        reason: decision.reason,
        decided_at: now,
        context: context.clone(),
        content_hash: Some(request.content_hash.clone()),
    });
    request.state = match request.evaluate(now) {
        Verdict::Pending => RequestState::Pending,
        Verdict::Approved => RequestState::Approved,
        Verdict::Denied => RequestState::Denied,
        Verdict::Expired => RequestState::Expired,
    };
    tx.save_request(&request).await?;
    let recorded = request.decisions.last().expect("just pushed");
    let detail = AuditDetail::Decided(audit::Decided {
        principal: recorded.principal.clone(),
        vote: recorded.vote,
        reason: recorded.reason.clone(),
        context: recorded.context.clone(),
        content_hash: recorded.content_hash.clone(),
        server: decision.server,
        state: request.state,
        via: decision.via,
    });
    append(tx, now, &reviewer.id, Some(&request), None, detail).await?;
    Ok(Ok(DecideOutcome {
        request,
        recorded: true,
    }))
}

pub(crate) async fn cancel(
    tx: &mut dyn Tx,
    id: &RequestId,
    by: &Principal,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Result<ApprovalRequest>> {
    let now = tx.clock(now).await?;
    let mut request = match load_pending(tx, id, now).await? {
        Ok(r) => r,
        Err(expired) => return Ok(Err(expired)),
    };
    request.state = RequestState::Cancelled;
    request.closed = Some(Closure {
        by: by.id.clone(),
        at: now,
        reason: reason.clone(),
    });
    tx.save_request(&request).await?;
    let detail = AuditDetail::Cancelled(audit::Cancelled { by: by.clone(), reason });
    append(tx, now, &by.id, Some(&request), None, detail).await?;
    Ok(Ok(request))
}

pub(crate) async fn expire_due(tx: &mut dyn Tx, now: DateTime<Utc>) -> Result<Vec<RequestId>> {
    let now = tx.clock(now).await?;
    let mut expired = Vec::new();
    for mut request in tx.requests_in(&[RequestState::Pending]).await? {
        if request.expires_at <= now {
            expire(tx, &mut request, now).await?;
            expired.push(request.id);
        }
    }
    Ok(expired)
}

/// Refuses a session on another server than the request's. Requests filed without a server (older stores,
/// library callers that do not bind) accept any.
fn same_server(request: &ApprovalRequest, found: Option<&ServerIdentity>) -> Result<()> {
    let Some(expected) = &request.server else { return Ok(()) };
    match found {
        Some(f) if f == expected => Ok(()),
        other => Err(Error::WrongServer {
            id: request.id.to_string(),
            expected: expected.to_string(),
            found: other.map_or_else(|| "an unnamed server".to_string(), ToString::to_string),
        }),
    }
}

fn tampered(request: &ApprovalRequest, problem: impl Into<String>) -> Error {
    Error::Tampered {
        id: request.id.to_string(),
        problem: problem.into(),
    }
}

/// The request as its `request_created` audit entry recorded it, and its decisions as their `decided` entries
/// recorded them: the record that people can verify, against which the stored request is checked.
struct Recorded {
    content_hash: String,
    policy: Policy,
    decisions: Vec<DecisionRecord>,
}

async fn recorded(tx: &mut dyn Tx, request: &ApprovalRequest) -> Result<Recorded> {
    recorded_in(&tx.audit_for_request(request.id.as_str()).await?, request)
}

/// Reads the stored JSON of the entries, not their typed view ([`AuditEntry::details`]): the content hash is
/// recomputed from exactly what was recorded (and hashed), so a value the type would write back in another form
/// (a time, an older shape of a field) cannot make a faithful record look changed.
fn recorded_in(entries: &[AuditEntry], request: &ApprovalRequest) -> Result<Recorded> {
    let created = entries
        .iter()
        .find(|e| e.kind == AuditKind::RequestCreated)
        .ok_or_else(|| tampered(request, "the audit log has no record of its creation"))?;
    let d = &created.detail;
    let mut content = json!({
        "workflow_id": created.workflow_id,
        "inputs": d["inputs"],
        "targets": d.get("targets").cloned().unwrap_or_else(|| json!([])),
        "target_labels": d.get("target_labels").cloned().unwrap_or_else(|| json!({})),
        "requester": d["requester"]["id"],
        "installer": d.get("installer").and_then(|i| i.get("id")).cloned(),
        "reason": d.get("reason").cloned().unwrap_or(serde_json::Value::Null),
        "server": d.get("server").cloned().unwrap_or(serde_json::Value::Null),
        "policy_hash": d["policy_hash"],
        "expires_at": d["expires_at"],
    });
    // Pinned names are part of the content only when there were any (older entries have none).
    if let Some(names) = d.get("names").filter(|n| n.as_object().is_some_and(|m| !m.is_empty())) {
        content["names"] = names.clone();
    }
    // As in `ApprovalRequest::content`: the rule set and rule only when rules judged the request.
    if let (Some(r), serde_json::Value::Object(map)) = (d.get("rules"), &mut content) {
        map.insert(
            "rules".into(),
            json!({"ruleset": r["ruleset"], "rule": r.get("rule").cloned().unwrap_or(serde_json::Value::Null)}),
        );
    }
    let policy: Policy = serde_json::from_value(d["policy"].clone())
        .map_err(|_| tampered(request, "its recorded policy cannot be read"))?;
    let mut decisions = Vec::new();
    for e in entries.iter().filter(|e| e.kind == AuditKind::Decided) {
        decisions.push(decision_in(e).map_err(|problem| tampered(request, problem))?);
    }
    Ok(Recorded {
        content_hash: content_hash(&request.id, &content),
        policy,
        decisions,
    })
}

/// The decision a `decided` audit entry records.
fn decision_in(e: &AuditEntry) -> std::result::Result<DecisionRecord, String> {
    serde_json::from_value(json!({
        "principal": e.detail["principal"],
        "vote": e.detail["vote"],
        "reason": e.detail.get("reason"),
        "decided_at": e.at,
        "context": e.detail.get("context").cloned().unwrap_or_else(|| json!({})),
        "content_hash": e.detail.get("content_hash"),
    }))
    .map_err(|_| format!("its decision in audit entry {} cannot be read", e.seq))
}

/// The stored request still holds what was recorded when it was made.
async fn check_content(tx: &mut dyn Tx, request: &ApprovalRequest) -> Result<Recorded> {
    matches_record(request, recorded(tx, request).await?)
}

fn matches_record(request: &ApprovalRequest, rec: Recorded) -> Result<Recorded> {
    if request.compute_content_hash() != rec.content_hash || request.content_hash != rec.content_hash {
        return Err(tampered(
            request,
            "its workflow, inputs, targets, requester, reason, server or policy differ from the recorded ones",
        ));
    }
    if request.policy.hash() != request.policy_hash || rec.policy.hash() != request.policy_hash {
        return Err(tampered(request, "its policy differs from the recorded one"));
    }
    Ok(rec)
}

/// Whether `decisions` (as the log records them), each made on `content_hash`, approve a request with `facts`
/// under `policy`: the proof every execution needs. A policy that needs nobody approves with no decisions.
fn approval_proof(
    policy: &Policy,
    facts: &crate::RequestFacts,
    content_hash: &str,
    decisions: &[DecisionRecord],
    created_at: DateTime<Utc>,
) -> std::result::Result<(), String> {
    if let Some(d) = decisions
        .iter()
        .find(|d| d.content_hash.as_deref() != Some(content_hash))
    {
        return Err(format!("the decision of {} was made on other content", d.principal.id));
    }
    // Time is not what decides here: an approval recorded before the expiry stays valid.
    let at = decisions.last().map_or(created_at, |d| d.decided_at);
    match crate::evaluate(policy, facts, decisions, at) {
        Verdict::Approved => Ok(()),
        other => Err(format!("its recorded decisions do not approve it (they leave it {other:?})").to_lowercase()),
    }
}

/// Before anything runs: the content matches the record, and the recorded decisions, each made on this very
/// content, approve it under the recorded policy.
async fn check_executable(tx: &mut dyn Tx, request: &ApprovalRequest) -> Result<()> {
    let rec = check_content(tx, request).await?;
    approval_proof(
        &rec.policy,
        &request.facts(),
        &rec.content_hash,
        &rec.decisions,
        request.created_at,
    )
    .map_err(|problem| tampered(request, problem))
}

pub(crate) async fn claim_execution(
    tx: &mut dyn Tx,
    id: &RequestId,
    executor: &Executor,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Result<ExecutionClaim>> {
    let (now, lease_until) = clocked(tx, now, lease_until).await?;
    let mut request = get_request(tx, id).await?;
    match (request.state, &request.execution) {
        (RequestState::Approved, _) => {}
        (RequestState::Executing | RequestState::Succeeded | RequestState::Failed, Some(held)) => {
            return Err(Error::AlreadyClaimed {
                id: id.to_string(),
                executor: held.executor.clone(),
                claimed_at: held.claimed_at,
            })
        }
        (state, _) => {
            return Err(Error::NotApproved {
                id: id.to_string(),
                state,
            })
        }
    }
    same_server(&request, executor.server.as_ref())?;
    if let Err(refusal) = check_executable(tx, &request).await {
        // Recorded (the outer Ok commits it) so that the refusal is in the log, and reported to the caller.
        let detail = AuditDetail::ExecutionRefused(audit::ExecutionRefused {
            executor: executor.clone(),
            problem: refusal.to_string(),
            state: None,
            why: None,
            previous: None,
        });
        append(tx, now, &executor.principal, Some(&request), None, detail).await?;
        return Ok(Err(refusal));
    }
    let claim = ExecutionClaim {
        request_id: id.clone(),
        claim_id: uuid::Uuid::new_v4().to_string(),
        executor: executor.process.clone(),
        epoch: 1,
        lease_until,
        claimed_at: now,
        content_hash: request.content_hash.clone(),
    };
    request.state = RequestState::Executing;
    request.execution = Some(ExecutionRecord {
        claim_id: claim.claim_id.clone(),
        executor: executor.process.clone(),
        principal: Some(executor.principal.clone()),
        host: executor.host.clone(),
        pid: executor.pid,
        boot_id: executor.boot_id.clone(),
        pid_ns: executor.pid_ns.clone(),
        started: executor.started,
        epoch: claim.epoch,
        lease_until: Some(lease_until),
        claimed_at: now,
        finished_at: None,
        outcome: None,
        reconciled: None,
    });
    tx.save_request(&request).await?;
    let detail = AuditDetail::ExecutionClaimed(audit::ExecutionClaimed {
        executor: executor.clone(),
        claim_id: claim.claim_id.clone(),
        epoch: claim.epoch,
        lease_until,
    });
    append(tx, now, &executor.principal, Some(&request), None, detail).await?;
    Ok(Ok(claim))
}

/// The execution record `claim` must hold: the request is executing under this claim and epoch.
fn current<'r>(request: &'r mut ApprovalRequest, claim: &ExecutionClaim) -> Result<&'r mut ExecutionRecord> {
    let state = request.state;
    match request.execution.as_mut() {
        Some(e) if state == RequestState::Executing && e.claim_id == claim.claim_id && e.epoch == claim.epoch => Ok(e),
        _ => Err(Error::StaleClaim {
            id: claim.request_id.to_string(),
            state,
        }),
    }
}

pub(crate) async fn renew_lease(
    tx: &mut dyn Tx,
    claim: &ExecutionClaim,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<ExecutionClaim> {
    let (_, lease_until) = clocked(tx, now, lease_until).await?;
    let mut request = get_request(tx, &claim.request_id).await?;
    current(&mut request, claim)?.lease_until = Some(lease_until);
    tx.save_request(&request).await?;
    Ok(ExecutionClaim {
        lease_until,
        ..claim.clone()
    })
}

pub(crate) async fn record_outcome(
    tx: &mut dyn Tx,
    claim: &ExecutionClaim,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
    finish(tx, claim, outcome, None, now).await
}

/// Records the outcome of the current claim: as the executor's own (`note` none, audited `execution_finished`) or
/// as settled after a take-over (`note` says what was found, audited `reconciled`).
async fn finish(
    tx: &mut dyn Tx,
    claim: &ExecutionClaim,
    outcome: Outcome,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
    let now = tx.clock(now).await?;
    let mut request = get_request(tx, &claim.request_id).await?;
    let execution = current(&mut request, claim)?;
    execution.finished_at = Some(now);
    execution.outcome = Some(outcome.clone());
    let actor = execution.principal.clone().unwrap_or_else(|| claim.executor.clone());
    let mut finished = audit::Finished {
        claim_id: claim.claim_id.clone(),
        epoch: claim.epoch,
        executor: claim.executor.clone(),
        status: outcome.status,
        detail: outcome.detail.clone(),
        note: note.map(str::to_owned),
        grant: None,
    };
    if let Some(note) = note {
        execution.reconciled = Some(Reconciliation {
            by: actor.clone(),
            note: note.to_owned(),
        });
    }
    request.state = outcome.state();
    if let (Some(change), crate::request::OutcomeStatus::Succeeded) = (&outcome.grant, outcome.status) {
        finished.grant = Some(record_grant_change(tx, &request, change, now).await?);
    }
    tx.save_request(&request).await?;
    let detail = match note {
        Some(_) => AuditDetail::Reconciled(finished),
        None => AuditDetail::ExecutionFinished(finished),
    };
    append(tx, now, &actor, Some(&request), None, detail).await?;
    Ok(request)
}

/// Records the grant an execution made or extended, in the outcome's transaction; returns what the audit entry
/// says about it. A replayed outcome for a grant already recorded keeps the first record.
async fn record_grant_change(
    tx: &mut dyn Tx,
    request: &ApprovalRequest,
    change: &GrantChange,
    now: DateTime<Utc>,
) -> Result<audit::GrantNote> {
    let noted = |extended: &str, note: &str| audit::GrantNote {
        extended: Some(extended.to_owned()),
        note: Some(note.to_owned()),
        ..Default::default()
    };
    match change {
        GrantChange::New(g) => {
            let id = request.id.to_string();
            if let Some(existing) = tx.load_grant(&id).await? {
                return Ok(audit::GrantNote {
                    id: Some(id),
                    due_at: Some(existing.due_at),
                    note: Some("already recorded".into()),
                    ..Default::default()
                });
            }
            let due_at = now + chrono::TimeDelta::seconds(g.duration_secs.min(crate::grant::MAX_GRANT_SECS) as i64);
            let approved_by = request
                .decisions
                .iter()
                .filter(|d| d.vote == crate::request::Vote::Approve)
                .map(|d| d.principal.clone())
                .collect();
            let grant = Grant {
                id: id.clone(),
                workflow_id: request.workflow_id.clone(),
                granted: g.clone(),
                requested_by: request.requester.clone(),
                approved_by,
                server: request.server.clone(),
                granted_at: now,
                due_at,
                extensions: Vec::new(),
                ended_early_by: None,
                ended_at: None,
                claim: None,
                failures: 0,
                last_error: None,
                next_attempt_at: None,
                revocation: None,
            };
            tx.save_grant(&grant).await?;
            Ok(audit::GrantNote {
                id: Some(id),
                binding: Some(g.binding.clone()),
                kind: Some(g.kind),
                subject: Some(g.subject.clone()),
                role: Some(g.role.clone()),
                due_at: Some(due_at),
                ..Default::default()
            })
        }
        GrantChange::Extend {
            grant,
            by_secs,
            binding,
        } => {
            let Some(mut g) = tx.load_grant(grant).await? else {
                return Ok(noted(grant, "no such grant; nothing extended"));
            };
            if binding.as_deref() != Some(g.granted.binding.as_str()) || g.workflow_id != request.workflow_id {
                return Ok(noted(
                    grant,
                    "the request names another binding or workflow than the grant's; nothing extended",
                ));
            }
            if g.revocation.is_some() {
                return Ok(noted(
                    grant,
                    "the grant was revoked before the extension ran; nothing extended",
                ));
            }
            if g.extensions.iter().any(|e| e.request == request.id.as_str()) {
                return Ok(audit::GrantNote {
                    due_at: Some(g.due_at),
                    ..noted(grant, "already recorded")
                });
            }
            // An extension adds to what is left; a grant already due is extended from now.
            g.due_at =
                g.due_at.max(now) + chrono::TimeDelta::seconds((*by_secs).min(crate::grant::MAX_GRANT_SECS) as i64);
            g.extensions.push(crate::grant::Extension {
                request: request.id.to_string(),
                by_secs: *by_secs,
                at: now,
            });
            g.next_attempt_at = None;
            tx.save_grant(&g).await?;
            Ok(audit::GrantNote {
                extended: Some(grant.clone()),
                by_secs: Some(*by_secs),
                due_at: Some(g.due_at),
                ..Default::default()
            })
        }
    }
}

pub(crate) async fn take_over(
    tx: &mut dyn Tx,
    id: &RequestId,
    executor: &Executor,
    why: Takeover,
    seen_claim: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Result<ExecutionClaim>> {
    let (now, lease_until) = clocked(tx, now, lease_until).await?;
    let mut request = get_request(tx, id).await?;
    let state = request.state;
    same_server(&request, executor.server.as_ref())?;
    let execution = match request.execution.as_mut() {
        Some(e) if state == RequestState::Executing => e,
        _ => {
            return Err(Error::NotInDoubt {
                id: id.to_string(),
                state,
            })
        }
    };
    let held_until = execution.lease_until.unwrap_or(execution.claimed_at);
    // Judged on a read that is stale now: someone else took it over since, and holds it.
    let taken_since = execution.claim_id != seen_claim;
    if taken_since || (why == Takeover::LeaseExpired && held_until > now) {
        return Err(Error::LeaseHeld {
            id: id.to_string(),
            executor: execution.executor.clone(),
            lease_until: held_until,
        });
    }
    let previous = audit::PreviousClaim {
        claim_id: execution.claim_id.clone(),
        executor: execution.executor.clone(),
        epoch: execution.epoch,
    };
    if let Err(refusal) = check_resumable(tx, &request).await {
        if !matches!(refusal, Error::Tampered { .. }) {
            return Err(refusal);
        }
        // Nothing runs: the request is settled as failed and the refusal recorded (the outer Ok commits both).
        let problem = refusal.to_string();
        let execution = request.execution.as_mut().expect("checked above");
        execution.finished_at = Some(now);
        execution.outcome = Some(Outcome::failed(
            json!({"error": format!("refused at take-over: {problem}"), "refused": true}),
        ));
        request.state = RequestState::Failed;
        tx.save_request(&request).await?;
        let detail = AuditDetail::ExecutionRefused(audit::ExecutionRefused {
            executor: executor.clone(),
            problem,
            state: Some(RequestState::Failed),
            why: Some(why),
            previous: Some(previous),
        });
        append(tx, now, &executor.principal, Some(&request), None, detail).await?;
        return Ok(Err(refusal));
    }
    let execution = request.execution.as_mut().expect("checked above");
    let claim = ExecutionClaim {
        request_id: id.clone(),
        claim_id: uuid::Uuid::new_v4().to_string(),
        executor: executor.process.clone(),
        epoch: execution.epoch + 1,
        lease_until,
        claimed_at: now,
        content_hash: request.content_hash.clone(),
    };
    execution.claim_id = claim.claim_id.clone();
    execution.executor = executor.process.clone();
    execution.principal = Some(executor.principal.clone());
    execution.host = executor.host.clone();
    execution.pid = executor.pid;
    execution.boot_id = executor.boot_id.clone();
    execution.pid_ns = executor.pid_ns.clone();
    execution.started = executor.started;
    execution.epoch = claim.epoch;
    execution.lease_until = Some(lease_until);
    tx.save_request(&request).await?;
    let detail = AuditDetail::ExecutionTakenOver(audit::TakenOver {
        executor: executor.clone(),
        claim_id: claim.claim_id.clone(),
        epoch: claim.epoch,
        why,
        previous,
    });
    append(tx, now, &executor.principal, Some(&request), None, detail).await?;
    Ok(Ok(claim))
}

/// Before a taken-over execution may run again: what [`check_executable`] checks, and the log must show the
/// request executing (claimed after a valid approval, and not finished). A request set to `executing` in the store
/// has no such record.
async fn check_resumable(tx: &mut dyn Tx, request: &ApprovalRequest) -> Result<()> {
    let entries = tx.audit_for_request(request.id.as_str()).await?;
    let rec = matches_record(request, recorded_in(&entries, request)?)?;
    approval_proof(
        &rec.policy,
        &request.facts(),
        &rec.content_hash,
        &rec.decisions,
        request.created_at,
    )
    .map_err(|problem| tampered(request, problem))?;
    match replay(&entries, &rec, &request.facts()) {
        Ok(Replayed {
            refused: Some(problem), ..
        }) => Err(tampered(request, problem)),
        Ok(Replayed {
            state: Some(RequestState::Executing),
            ..
        }) => Ok(()),
        Ok(Replayed { state: other, .. }) => Err(tampered(
            request,
            format!(
                "it is stored as executing but its audit entries lead to {}",
                other.map_or_else(|| "nothing".to_string(), |s| s.to_string())
            ),
        )),
        Err(problem) => Err(tampered(request, problem)),
    }
}

pub(crate) async fn resolve_in_doubt(
    tx: &mut dyn Tx,
    claim: &ExecutionClaim,
    outcome: Outcome,
    note: &str,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
    finish(tx, claim, outcome, Some(note), now).await
}

pub(crate) async fn install(
    tx: &mut dyn Tx,
    workflow_id: &str,
    installer: &Principal,
    policy: Policy,
    now: DateTime<Utc>,
) -> Result<Installation> {
    let now = tx.clock(now).await?;
    policy.validate()?;
    if tx.load_installation(workflow_id).await?.is_some() {
        return Err(Error::AlreadyInstalled {
            workflow_id: workflow_id.to_owned(),
        });
    }
    let installation = Installation {
        workflow_id: workflow_id.to_owned(),
        installer: installer.clone(),
        policy,
        installed_at: now,
        updated_at: now,
    };
    tx.save_installation(&installation).await?;
    let detail = AuditDetail::Installed(audit::Installed {
        installer: installer.clone(),
        policy: installation.policy.clone(),
        policy_hash: installation.policy.hash(),
    });
    append(tx, now, &installer.id, None, Some(workflow_id), detail).await?;
    Ok(installation)
}

pub(crate) async fn set_policy(
    tx: &mut dyn Tx,
    workflow_id: &str,
    policy: Policy,
    changed_by: &Principal,
    now: DateTime<Utc>,
) -> Result<Installation> {
    let now = tx.clock(now).await?;
    policy.validate()?;
    let mut installation = tx
        .load_installation(workflow_id)
        .await?
        .ok_or_else(|| Error::NotInstalled {
            workflow_id: workflow_id.to_owned(),
        })?;
    let old_hash = installation.policy.hash();
    let new_hash = policy.hash();
    if old_hash == new_hash {
        return Ok(installation);
    }
    let detail = AuditDetail::PolicyChanged(audit::PolicyChanged {
        changed_by: changed_by.clone(),
        old_policy_hash: old_hash,
        new_policy_hash: new_hash,
        old_policy: installation.policy.clone(),
        new_policy: policy.clone(),
    });
    installation.policy = policy;
    installation.updated_at = now;
    tx.save_installation(&installation).await?;
    append(tx, now, &changed_by.id, None, Some(workflow_id), detail).await?;
    Ok(installation)
}

/// A request's audit entries replayed as its state machine. Each entry must be a legal step from the state before
/// it, and every claim, take-over and finish of an execution must follow decisions (as the log records them, each
/// made on the recorded content) that approve it under the recorded policy, or a creation that was approved at once
/// because the policy needs nobody. Returns the state the entries lead to and the first refused execution, or what
/// is wrong.
fn replay(
    entries: &[AuditEntry],
    rec: &Recorded,
    facts: &crate::RequestFacts,
) -> std::result::Result<Replayed, String> {
    use RequestState::*;
    let state_in = |e: &AuditEntry| {
        e.detail
            .get("state")
            .and_then(|v| serde_json::from_value::<RequestState>(v.clone()).ok())
            .ok_or_else(|| format!("audit entry {} ({}) records no readable state", e.seq, e.kind))
    };
    let mut state: Option<RequestState> = None;
    let mut created_at = None;
    let mut decisions: Vec<DecisionRecord> = Vec::new();
    let mut refused = None;
    for e in entries {
        let illegal = |from: Option<RequestState>| {
            Err(format!(
                "audit entry {} ({}) follows a request in state {}, which cannot lead there",
                e.seq,
                e.kind,
                from.map_or_else(|| "none (not created yet)".to_string(), |s| s.to_string())
            ))
        };
        let proof = |decisions: &[DecisionRecord], created_at: Option<DateTime<Utc>>| {
            approval_proof(
                &rec.policy,
                facts,
                &rec.content_hash,
                decisions,
                created_at.unwrap_or(e.at),
            )
            .map_err(|problem| {
                format!(
                    "audit entry {} ({}) runs it without a valid approval: {problem}",
                    e.seq, e.kind
                )
            })
        };
        state = match (&e.kind, state) {
            (AuditKind::RequestCreated, None) => {
                created_at = Some(e.at);
                match state_in(e)? {
                    Pending => Some(Pending),
                    Approved if !rec.policy.needs_approval() => Some(Approved),
                    other => {
                        return Err(format!(
                            "audit entry {} creates it as {other}, but its policy needs approval",
                            e.seq
                        ))
                    }
                }
            }
            (AuditKind::Decided, Some(Pending)) => {
                decisions.push(decision_in(e)?);
                match state_in(e)? {
                    s @ (Pending | Approved | Denied | Expired) => Some(s),
                    other => return Err(format!("audit entry {} (decided) moves it to {other}", e.seq)),
                }
            }
            (AuditKind::Cancelled, Some(Pending)) => Some(Cancelled),
            (AuditKind::Expired, Some(Pending)) => Some(Expired),
            (AuditKind::ExecutionClaimed, Some(Approved)) => {
                proof(&decisions, created_at)?;
                Some(Executing)
            }
            (AuditKind::ExecutionTakenOver, Some(Executing)) => {
                proof(&decisions, created_at)?;
                Some(Executing)
            }
            (AuditKind::ExecutionFinished | AuditKind::Reconciled, Some(Executing)) => {
                proof(&decisions, created_at)?;
                match e.detail.get("status").and_then(|v| v.as_str()) {
                    Some("succeeded") => Some(Succeeded),
                    _ => Some(Failed),
                }
            }
            (AuditKind::ExecutionRefused, s) => {
                let problem = e
                    .detail
                    .get("problem")
                    .and_then(|v| v.as_str())
                    .unwrap_or("no reason recorded");
                refused.get_or_insert_with(|| format!("its execution was refused (audit entry {}), so the stored request had been changed outside the service: {problem}", e.seq));
                // A refused claim leaves the state alone; a refused take-over settles the request as failed.
                if e.detail.get("state").is_some() {
                    Some(state_in(e)?)
                } else {
                    s
                }
            }
            (
                AuditKind::Installed
                | AuditKind::PolicyChanged
                | AuditKind::GrantRevoked
                | AuditKind::GrantOverdue
                | AuditKind::GrantEndedEarly
                | AuditKind::DirectWrite
                | AuditKind::Reminded
                // A change seen in Rancher, filed under the request that made it: the request's state stays.
                | AuditKind::AccessObserved
                // A kind this build does not know (a newer build wrote it) changes no request it can tell of.
                | AuditKind::Other(_),
                s,
            ) => s,
            (_, from) => return illegal(from),
        };
    }
    Ok(Replayed { state, refused })
}

/// What [`replay`] found.
struct Replayed {
    /// The state the entries lead to (none without a creation).
    state: Option<RequestState>,
    /// The first refused execution, in words: proof that the stored request was changed outside the service.
    refused: Option<String>,
}

/// Verifies the chain against the store's own head (which must be the last entry: a missing or moved-back head
/// is found), then every stored request against its audit record: same content, and the state its entries lead
/// to. Returns the number of entries.
pub(crate) async fn verify(tx: &mut dyn Tx) -> Result<u64> {
    let entries = tx.audit_entries().await?;
    let head = tx.audit_head().await?;
    let count = crate::audit::verify(&entries, Some(&head))?;
    if head.seq != count {
        return Err(Error::AuditBroken {
            seq: head.seq + 1,
            problem: format!(
                "the log has {count} entries but the recorded head is entry {}: the head was removed or moved back",
                head.seq
            ),
        });
    }
    let mut by_request: std::collections::HashMap<&str, Vec<AuditEntry>> = std::collections::HashMap::new();
    for e in &entries {
        if let Some(id) = e.request_id.as_deref() {
            by_request.entry(id).or_default().push(e.clone());
        }
    }
    for request in tx.requests_in(&[]).await? {
        let own = by_request
            .get(request.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let broken = |problem: String| Error::AuditBroken {
            seq: count,
            problem: format!("approval request {}: {problem}", request.id),
        };
        let rec = match recorded_in(own, &request).and_then(|rec| matches_record(&request, rec)) {
            Ok(rec) => rec,
            Err(Error::Tampered { problem, .. }) => return Err(broken(problem)),
            Err(other) => return Err(other),
        };
        if let Some(problem) = decisions_differ(&request.decisions, &rec.decisions) {
            return Err(broken(problem));
        }
        let Replayed {
            state: replayed,
            refused,
        } = replay(own, &rec, &request.facts()).map_err(broken)?;
        if replayed != Some(request.state) {
            return Err(broken(format!(
                "it is stored as {} but its audit entries lead to {}",
                request.state,
                replayed.map_or_else(|| "nothing".to_string(), |s| s.to_string())
            )));
        }
        if let Some(problem) = refused {
            return Err(broken(problem));
        }
    }
    Ok(count)
}

/// How the decisions a stored request shows differ from those its audit entries record, if they do (what a
/// reviewer reads must be what the log holds: who, the vote, the reason, when, on which content).
fn decisions_differ(stored: &[DecisionRecord], logged: &[DecisionRecord]) -> Option<String> {
    for (i, s) in stored.iter().enumerate() {
        let Some(l) = logged.get(i) else {
            return Some(format!(
                "it shows a decision by {} ({}) that the log does not record",
                s.principal.id, s.vote
            ));
        };
        let field = if s.principal.id != l.principal.id {
            "who made it"
        } else if s.vote != l.vote {
            "the vote"
        } else if s.reason != l.reason {
            "the reason"
        } else if s.decided_at != l.decided_at {
            "the time"
        } else if s.content_hash != l.content_hash {
            "the content it was made on"
        } else if serde_json::to_value(s).ok() != serde_json::to_value(l).ok() {
            "the decider's details"
        } else {
            continue;
        };
        return Some(format!(
            "its decision {} by {} differs from the log in {field}",
            i + 1,
            s.principal.id
        ));
    }
    logged.get(stored.len()).map(|l| {
        format!(
            "it does not show the decision by {} that the log records",
            l.principal.id
        )
    })
}

pub(crate) async fn get_grant(tx: &mut dyn Tx, id: &str) -> Result<Grant> {
    tx.load_grant(id)
        .await?
        .ok_or_else(|| Error::GrantNotFound { id: id.to_owned() })
}

/// The audit facts of a grant: who asked, who approved, what and until when.
fn grant_facts(g: &Grant) -> audit::GrantFacts {
    audit::GrantFacts {
        grant: g.id.clone(),
        kind: g.granted.kind,
        binding: g.granted.binding.clone(),
        namespace: g.granted.namespace.clone(),
        subject_kind: g.granted.subject_kind,
        subject: g.granted.subject.clone(),
        role: g.granted.role.clone(),
        scope: g.granted.scope.clone(),
        requested_by: g.requested_by.id.clone(),
        approved_by: g.approved_by.iter().map(|p| p.id.clone()).collect(),
        granted_at: g.granted_at,
        due_at: g.due_at,
    }
}

pub(crate) async fn claim_revocation(
    tx: &mut dyn Tx,
    id: &str,
    process: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<RevocationClaim> {
    let (now, lease_until) = clocked(tx, now, lease_until).await?;
    let mut g = get_grant(tx, id).await?;
    if let Some(r) = &g.revocation {
        return Err(Error::GrantRevoked {
            id: id.to_owned(),
            at: r.at,
        });
    }
    let not = |why: String| Err(Error::NotRevocable { id: id.to_owned(), why });
    if g.ends_at() > now {
        return not(format!("it is due at {}", format_time(g.ends_at())));
    }
    if let Some(t) = g.next_attempt_at.filter(|t| *t > now) {
        return not(format!(
            "the last attempt failed; the next is due at {}",
            format_time(t)
        ));
    }
    if let Some(c) = g.claim.as_ref().filter(|c| c.lease_until > now) {
        return not(format!(
            "{} is revoking it (lease until {})",
            c.process,
            format_time(c.lease_until)
        ));
    }
    let claim = RevocationClaim {
        grant: id.to_owned(),
        claim_id: uuid::Uuid::new_v4().to_string(),
        process: process.to_owned(),
        epoch: g.claim.as_ref().map_or(1, |c| c.epoch + 1),
        lease_until,
        took_over: g.claim.is_some(),
    };
    g.claim = Some(claim.clone());
    tx.save_grant(&g).await?;
    Ok(claim)
}

/// The grant whose current claim `claim` is, or [`Error::StaleRevocation`].
async fn claimed(tx: &mut dyn Tx, claim: &RevocationClaim) -> Result<Grant> {
    let g = get_grant(tx, &claim.grant).await?;
    match &g.claim {
        Some(c) if c.claim_id == claim.claim_id && c.epoch == claim.epoch && g.revocation.is_none() => Ok(g),
        _ => Err(Error::StaleRevocation {
            id: claim.grant.clone(),
        }),
    }
}

pub(crate) async fn record_revocation(
    tx: &mut dyn Tx,
    claim: &RevocationClaim,
    how: RevokedHow,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Grant> {
    let now = tx.clock(now).await?;
    let mut g = claimed(tx, claim).await?;
    let by = g.ended_early_by.clone().unwrap_or_else(|| SYSTEM_ACTOR.to_owned());
    g.claim = None;
    g.next_attempt_at = None;
    g.revocation = Some(crate::grant::Revocation {
        at: now,
        by: by.clone(),
        process: claim.process.clone(),
        how,
        note: note.to_owned(),
    });
    tx.save_grant(&g).await?;
    let detail = AuditDetail::GrantRevoked(audit::GrantRevoked {
        facts: grant_facts(&g),
        revoked_at: now,
        revoked_by: by.clone(),
        process: claim.process.clone(),
        how,
        note: note.to_owned(),
        attempts: g.failures + 1,
    });
    append(tx, now, &by, None, Some(&g.workflow_id), detail).await?;
    Ok(g)
}

pub(crate) async fn release_revocation(
    tx: &mut dyn Tx,
    claim: &RevocationClaim,
    error: &str,
    retry_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Grant> {
    let now = tx.clock(now).await?;
    let mut g = claimed(tx, claim).await?;
    g.claim = None;
    g.failures += 1;
    g.last_error = Some(error.chars().take(500).collect());
    g.next_attempt_at = Some(retry_at.max(now));
    tx.save_grant(&g).await?;
    if g.failures == 1 {
        let detail = AuditDetail::GrantOverdue(audit::GrantOverdue {
            facts: grant_facts(&g),
            process: claim.process.clone(),
            error: g.last_error.clone(),
            next_attempt_at: retry_at,
        });
        append(tx, now, SYSTEM_ACTOR, None, Some(&g.workflow_id), detail).await?;
    }
    Ok(g)
}

pub(crate) async fn end_grant_early(tx: &mut dyn Tx, id: &str, by: &Principal, now: DateTime<Utc>) -> Result<Grant> {
    let now = tx.clock(now).await?;
    let mut g = get_grant(tx, id).await?;
    if let Some(r) = &g.revocation {
        return Err(Error::GrantRevoked {
            id: id.to_owned(),
            at: r.at,
        });
    }
    if g.ends_at() <= now {
        // Already due: the next revocation run takes it; nothing to shorten.
        return Ok(g);
    }
    let facts = grant_facts(&g);
    // `due_at` keeps the end as granted; the early end is its own field.
    g.ended_at = Some(now);
    g.ended_early_by = Some(by.id.clone());
    g.next_attempt_at = None;
    tx.save_grant(&g).await?;
    let detail = AuditDetail::GrantEndedEarly(audit::GrantEndedEarly {
        facts,
        ended_by: by.id.clone(),
        ended_at: now,
    });
    append(tx, now, &by.id, None, Some(&g.workflow_id), detail).await?;
    Ok(g)
}

/// Records a reminder (or, with `escalation`, the escalation) of pending request `id`, once: false, and nothing
/// written, when the request is no longer pending or its log already holds one of the same kind. Two replicas
/// running the job at once write it once, the transaction deciding.
pub(crate) async fn record_reminder(
    tx: &mut dyn Tx,
    id: &RequestId,
    actor: &str,
    reminded: audit::Reminded,
    now: DateTime<Utc>,
) -> Result<bool> {
    let now = tx.clock(now).await?;
    let request = get_request(tx, id).await?;
    if request.state != RequestState::Pending || request.expires_at <= now {
        return Ok(false);
    }
    let done = tx.audit_for_request(id.as_str()).await?.iter().any(|e| {
        e.kind == AuditKind::Reminded
            && e.detail.get("escalation").and_then(|v| v.as_bool()) == Some(reminded.escalation)
    });
    if done {
        return Ok(false);
    }
    append(tx, now, actor, Some(&request), None, AuditDetail::Reminded(reminded)).await?;
    Ok(true)
}

/// Records a write sent to Rancher outside any workflow (the operation, its parameters and path); it changes no
/// request.
pub(crate) async fn record_direct_write(
    tx: &mut dyn Tx,
    actor: &str,
    write: audit::DirectWrite,
    now: DateTime<Utc>,
) -> Result<AuditHead> {
    let now = tx.clock(now).await?;
    append(tx, now, actor, None, None, AuditDetail::DirectWrite(write)).await?;
    tx.audit_head().await
}

/// The state namespace that remembers which observed changes were recorded (see [`record_access_observed`]).
pub(crate) const OBSERVED: &str = "access-observed";

/// How long a recorded change's key is remembered: far longer than any watcher is down or any relist takes.
const OBSERVED_FOR_DAYS: i64 = 30;

/// Records a change the watcher saw in Rancher, once per `key` (in the same transaction as the key, so two
/// watchers, a restart or a relist never record it twice): false when it was recorded already. The entry is the
/// matched request's when it names one that exists.
pub(crate) async fn record_access_observed(
    tx: &mut dyn Tx,
    actor: &str,
    key: &str,
    observed: audit::AccessObserved,
    now: DateTime<Utc>,
) -> Result<bool> {
    let now = tx.clock(now).await?;
    if key.is_empty() {
        return Err(Error::InvalidState {
            problem: "an observed change needs a key to be recorded once".into(),
        });
    }
    let now_ms = super::state::millis(now);
    if tx
        .state_load(OBSERVED, key)
        .await?
        .is_some_and(|(_, exp)| exp.is_none_or(|e| e > now_ms))
    {
        return Ok(false);
    }
    let until = now + chrono::Duration::days(OBSERVED_FOR_DAYS);
    tx.state_save(OBSERVED, key, "1", Some(super::state::millis(until)))
        .await?;
    let request = match observed.request.as_deref().map(str::parse::<RequestId>) {
        Some(Ok(id)) => tx.load_request(&id).await?,
        _ => None,
    };
    append(
        tx,
        now,
        actor,
        request.as_ref(),
        None,
        AuditDetail::AccessObserved(observed),
    )
    .await?;
    Ok(true)
}

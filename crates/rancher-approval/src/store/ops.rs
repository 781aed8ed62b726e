//! The request lifecycle, written once over [`Tx`] and shared by every store.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{DecideOutcome, ExecutionClaim, Installation, RequestFilter, Tx};
use crate::audit::{format_time, AuditDraft, AuditKind};
use crate::error::{Error, Result};
use crate::evaluate::{check_eligibility, EligibilityContext, Verdict};
use crate::policy::Policy;
use crate::principal::Principal;
use crate::request::{
    blank, redact, ApprovalRequest, Closure, Decision, DecisionRecord, ExecutionRecord, NewRequest,
    Outcome, Reconciliation, RequestId, RequestState,
};

/// The actor recorded for changes nobody made by hand (expiry).
pub const SYSTEM_ACTOR: &str = "system";

fn append(
    tx: &mut dyn Tx,
    now: DateTime<Utc>,
    actor: &str,
    kind: AuditKind,
    request: Option<&ApprovalRequest>,
    workflow_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<()> {
    let head = tx.audit_head()?;
    let entry = AuditDraft {
        actor: actor.to_owned(),
        kind,
        request_id: request.map(|r| r.id.to_string()),
        workflow_id: workflow_id
            .or(request.map(|r| r.workflow_id.as_str()))
            .map(str::to_owned),
        detail,
    }
    .seal(&head, now);
    tx.append_audit(&entry)
}

pub(crate) fn get_request(tx: &mut dyn Tx, id: &RequestId) -> Result<ApprovalRequest> {
    tx.load_request(id)?
        .ok_or_else(|| Error::NotFound { id: id.to_string() })
}

pub(crate) fn list_requests(
    tx: &mut dyn Tx,
    filter: &RequestFilter,
) -> Result<Vec<ApprovalRequest>> {
    let mut all = tx.requests_in(&filter.states)?;
    all.retain(|r| filter.matches(r));
    Ok(all)
}

pub(crate) fn create_request(
    tx: &mut dyn Tx,
    new: NewRequest,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
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
        reason: new.reason,
        policy_hash: new.policy.hash(),
        expires_at: now + new.policy.expiry(),
        policy: new.policy,
        created_at: now,
        state: RequestState::Pending,
        decisions: Vec::new(),
        execution: None,
        closed: None,
    };
    if request.evaluate(now) == Verdict::Approved {
        request.state = RequestState::Approved;
    }
    tx.save_request(&request)?;
    let detail = json!({
        "requester": request.requester,
        "installer": request.installer,
        "targets": request.targets,
        "reason": request.reason,
        "inputs": request.inputs,
        "policy": request.policy,
        "policy_hash": request.policy_hash,
        "expires_at": format_time(request.expires_at),
        "state": request.state,
    });
    append(
        tx,
        now,
        &request.requester.id,
        AuditKind::RequestCreated,
        Some(&request),
        None,
        detail,
    )?;
    Ok(request)
}

fn expire(tx: &mut dyn Tx, request: &mut ApprovalRequest, now: DateTime<Utc>) -> Result<()> {
    request.state = RequestState::Expired;
    request.closed = Some(Closure {
        by: SYSTEM_ACTOR.into(),
        at: now,
        reason: None,
    });
    tx.save_request(request)?;
    let detail = json!({ "expires_at": format_time(request.expires_at) });
    append(
        tx,
        now,
        SYSTEM_ACTOR,
        AuditKind::Expired,
        Some(request),
        None,
        detail,
    )
}

/// Loads a request that must be pending. A pending request past its expiry is expired here (the outer `Ok`
/// commits that) and reported as the inner error.
fn load_pending(
    tx: &mut dyn Tx,
    id: &RequestId,
    now: DateTime<Utc>,
) -> Result<Result<ApprovalRequest>> {
    let mut request = get_request(tx, id)?;
    if request.state != RequestState::Pending {
        return Err(Error::NotPending {
            id: id.to_string(),
            state: request.state,
        });
    }
    if now >= request.expires_at {
        expire(tx, &mut request, now)?;
        return Ok(Err(Error::Expired {
            id: id.to_string(),
            expired_at: request.expires_at,
        }));
    }
    Ok(Ok(request))
}

pub(crate) fn decide(
    tx: &mut dyn Tx,
    id: &RequestId,
    reviewer: &Principal,
    decision: Decision,
    context: &EligibilityContext,
    now: DateTime<Utc>,
) -> Result<Result<DecideOutcome>> {
    let mut request = match load_pending(tx, id, now)? {
        Ok(r) => r,
        Err(expired) => return Ok(Err(expired)),
    };
    check_eligibility(&request.policy, &request.facts(), reviewer, context).map_err(|reason| {
        Error::NotEligible {
            id: id.to_string(),
            principal: reviewer.id.clone(),
            reason,
        }
    })?;
    if request.policy.options.require_reviewer_reason && blank(&decision.reason) {
        return Err(Error::ReasonRequired { from: "reviewer" });
    }
    let previous = request
        .decisions
        .iter()
        .rev()
        .find(|d| d.principal.id == reviewer.id);
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
    });
    request.state = match request.evaluate(now) {
        Verdict::Pending => RequestState::Pending,
        Verdict::Approved => RequestState::Approved,
        Verdict::Denied => RequestState::Denied,
        Verdict::Expired => RequestState::Expired,
    };
    tx.save_request(&request)?;
    let recorded = request.decisions.last().expect("just pushed");
    let detail = json!({
        "principal": recorded.principal,
        "vote": recorded.vote,
        "reason": recorded.reason,
        "context": recorded.context,
        "state": request.state,
    });
    append(
        tx,
        now,
        &reviewer.id,
        AuditKind::Decided,
        Some(&request),
        None,
        detail,
    )?;
    Ok(Ok(DecideOutcome {
        request,
        recorded: true,
    }))
}

pub(crate) fn cancel(
    tx: &mut dyn Tx,
    id: &RequestId,
    by: &Principal,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Result<ApprovalRequest>> {
    let mut request = match load_pending(tx, id, now)? {
        Ok(r) => r,
        Err(expired) => return Ok(Err(expired)),
    };
    request.state = RequestState::Cancelled;
    request.closed = Some(Closure {
        by: by.id.clone(),
        at: now,
        reason: reason.clone(),
    });
    tx.save_request(&request)?;
    append(
        tx,
        now,
        &by.id,
        AuditKind::Cancelled,
        Some(&request),
        None,
        json!({ "by": by, "reason": reason }),
    )?;
    Ok(Ok(request))
}

pub(crate) fn expire_due(tx: &mut dyn Tx, now: DateTime<Utc>) -> Result<Vec<RequestId>> {
    let mut expired = Vec::new();
    for mut request in tx.requests_in(&[RequestState::Pending])? {
        if request.expires_at <= now {
            expire(tx, &mut request, now)?;
            expired.push(request.id);
        }
    }
    Ok(expired)
}

pub(crate) fn claim_execution(
    tx: &mut dyn Tx,
    id: &RequestId,
    executor: &str,
    now: DateTime<Utc>,
) -> Result<ExecutionClaim> {
    let mut request = get_request(tx, id)?;
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
    let claim = ExecutionClaim {
        request_id: id.clone(),
        claim_id: uuid::Uuid::new_v4().to_string(),
        executor: executor.to_owned(),
        claimed_at: now,
    };
    request.state = RequestState::Executing;
    request.execution = Some(ExecutionRecord {
        claim_id: claim.claim_id.clone(),
        executor: claim.executor.clone(),
        claimed_at: now,
        finished_at: None,
        outcome: None,
        reconciled: None,
    });
    tx.save_request(&request)?;
    let detail = json!({ "executor": executor, "claim_id": claim.claim_id });
    append(
        tx,
        now,
        executor,
        AuditKind::ExecutionClaimed,
        Some(&request),
        None,
        detail,
    )?;
    Ok(claim)
}

pub(crate) fn record_outcome(
    tx: &mut dyn Tx,
    claim: &ExecutionClaim,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
    let mut request = get_request(tx, &claim.request_id)?;
    let state = request.state;
    let execution = match request.execution.as_mut() {
        Some(e) if state == RequestState::Executing && e.claim_id == claim.claim_id => e,
        _ => {
            return Err(Error::StaleClaim {
                id: claim.request_id.to_string(),
                state,
            })
        }
    };
    execution.finished_at = Some(now);
    execution.outcome = Some(outcome.clone());
    request.state = outcome.state();
    tx.save_request(&request)?;
    let detail =
        json!({ "claim_id": claim.claim_id, "status": outcome.status, "detail": outcome.detail });
    append(
        tx,
        now,
        &claim.executor,
        AuditKind::ExecutionFinished,
        Some(&request),
        None,
        detail,
    )?;
    Ok(request)
}

pub(crate) fn resolve_in_doubt(
    tx: &mut dyn Tx,
    id: &RequestId,
    outcome: Outcome,
    note: &str,
    by: &Principal,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
    let mut request = get_request(tx, id)?;
    let state = request.state;
    let execution = match request.execution.as_mut() {
        Some(e) if state == RequestState::Executing => e,
        _ => {
            return Err(Error::NotInDoubt {
                id: id.to_string(),
                state,
            })
        }
    };
    execution.finished_at = Some(now);
    execution.outcome = Some(outcome.clone());
    execution.reconciled = Some(Reconciliation {
        by: by.id.clone(),
        note: note.to_owned(),
    });
    let detail = json!({
        "claim_id": execution.claim_id,
        "executor": execution.executor,
        "status": outcome.status,
        "detail": outcome.detail,
        "note": note,
    });
    request.state = outcome.state();
    tx.save_request(&request)?;
    append(
        tx,
        now,
        &by.id,
        AuditKind::Reconciled,
        Some(&request),
        None,
        detail,
    )?;
    Ok(request)
}

pub(crate) fn install(
    tx: &mut dyn Tx,
    workflow_id: &str,
    installer: &Principal,
    policy: Policy,
    now: DateTime<Utc>,
) -> Result<Installation> {
    policy.validate()?;
    if tx.load_installation(workflow_id)?.is_some() {
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
    tx.save_installation(&installation)?;
    let detail = json!({
        "installer": installer,
        "policy": installation.policy,
        "policy_hash": installation.policy.hash(),
    });
    append(
        tx,
        now,
        &installer.id,
        AuditKind::Installed,
        None,
        Some(workflow_id),
        detail,
    )?;
    Ok(installation)
}

pub(crate) fn set_policy(
    tx: &mut dyn Tx,
    workflow_id: &str,
    policy: Policy,
    changed_by: &Principal,
    now: DateTime<Utc>,
) -> Result<Installation> {
    policy.validate()?;
    let mut installation =
        tx.load_installation(workflow_id)?
            .ok_or_else(|| Error::NotInstalled {
                workflow_id: workflow_id.to_owned(),
            })?;
    let old_hash = installation.policy.hash();
    let new_hash = policy.hash();
    if old_hash == new_hash {
        return Ok(installation);
    }
    let detail = json!({
        "changed_by": changed_by,
        "old_policy_hash": old_hash,
        "new_policy_hash": new_hash,
        "old_policy": installation.policy,
        "new_policy": policy,
    });
    installation.policy = policy;
    installation.updated_at = now;
    tx.save_installation(&installation)?;
    append(
        tx,
        now,
        &changed_by.id,
        AuditKind::PolicyChanged,
        None,
        Some(workflow_id),
        detail,
    )?;
    Ok(installation)
}

//! Durable storage of requests, decisions, executions, installations and the audit log.
//!
//! [`Store`] is the interface; [`SqliteStore`] is the embedded default (one file), [`PostgresStore`] serves several
//! replicas on one database, and [`MemoryStore`] serves tests. All run the same transition logic (this module's
//! private `ops`, written once over the async `Tx` primitives), each operation as one transaction that writes the
//! state change and its audit entry together.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, AuditHead};
use crate::error::Result;
use crate::evaluate::EligibilityContext;
use crate::grant::{Grant, GrantFilter, RevocationClaim, RevokedHow};
use crate::policy::Policy;
use crate::principal::Principal;
use crate::request::{ApprovalRequest, Decision, Executor, NewRequest, Outcome, RequestId, RequestState};

mod group;
mod memory;
mod observed;
mod open;
mod ops;
mod postgres;
mod sqlite;
mod state;
mod transfer;

pub use crate::installation::Installation;
pub use crate::request::Takeover;
pub use memory::MemoryStore;
pub use observed::{ObservedStore, StoreCall, StoreObserver};
pub use open::{open_store, StoreUrl};
pub use ops::SYSTEM_ACTOR;
pub use postgres::{Clock, PostgresOptions, PostgresStore, POSTGRES_SCHEMA_VERSION};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous, SCHEMA_VERSION};
pub use transfer::{export, import, ExportRecord, TransferSummary, EXPORT_FORMAT, EXPORT_VERSION};

/// Which requests [`Store::list_requests`] returns. The default returns all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only requests in one of these states (empty: any state).
    pub states: Vec<RequestState>,
    /// Only requests for this workflow.
    pub workflow_id: Option<String>,
    /// Only requests by this user id.
    pub requester: Option<String>,
}

/// The one query behind a page of requests on both SQL stores: `mark(n)` writes the n-th placeholder (`?` or
/// `$n`). Every value is a bound parameter; the limit is a number.
pub(crate) fn page_query(
    filter: &RequestFilter,
    before: Option<&str>,
    limit: usize,
    mark: impl Fn(usize) -> String,
) -> (String, Vec<String>) {
    let mut args: Vec<String> = Vec::new();
    let push = |v: &str, args: &mut Vec<String>| {
        args.push(v.to_owned());
        mark(args.len())
    };
    let mut clauses = Vec::new();
    if !filter.states.is_empty() {
        let marks: Vec<String> = filter.states.iter().map(|s| push(s.as_str(), &mut args)).collect();
        clauses.push(format!("state IN ({})", marks.join(", ")));
    }
    if let Some(w) = &filter.workflow_id {
        clauses.push(format!("workflow_id = {}", push(w, &mut args)));
    }
    if let Some(r) = &filter.requester {
        clauses.push(format!("requester = {}", push(r, &mut args)));
    }
    if let Some(b) = before {
        clauses.push(format!("id < {}", push(b, &mut args)));
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (
        format!("SELECT body FROM requests{filter_sql} ORDER BY id DESC LIMIT {limit}"),
        args,
    )
}

impl RequestFilter {
    /// Every request.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only requests in `state` (may be called again to add states).
    pub fn state(mut self, state: RequestState) -> Self {
        self.states.push(state);
        self
    }

    /// Only requests for `workflow_id`.
    pub fn workflow(mut self, workflow_id: impl Into<String>) -> Self {
        self.workflow_id = Some(workflow_id.into());
        self
    }

    /// Only requests by user id `requester`.
    pub fn requester(mut self, requester: impl Into<String>) -> Self {
        self.requester = Some(requester.into());
        self
    }

    fn matches(&self, r: &ApprovalRequest) -> bool {
        (self.states.is_empty() || self.states.contains(&r.state))
            && self.workflow_id.as_ref().is_none_or(|w| *w == r.workflow_id)
            && self.requester.as_ref().is_none_or(|u| *u == r.requester.id)
    }
}

/// Proof that the caller, and nobody else, may execute a request; hand it back to [`Store::record_outcome`].
///
/// A claim is a lease: it holds until `lease_until` (renew it with [`Store::renew_lease`] while working). After
/// that another executor may take it over ([`Store::take_over`]), which raises the epoch; a claim whose epoch is
/// no longer current can record nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionClaim {
    /// The claimed request.
    pub request_id: RequestId,
    /// Unique id of this claim.
    pub claim_id: String,
    /// The executor's process label given when claiming.
    pub executor: String,
    /// The fencing number (1 for the first claim, +1 for each take-over).
    pub epoch: u64,
    /// Until when the lease holds.
    pub lease_until: DateTime<Utc>,
    /// When it was claimed.
    pub claimed_at: DateTime<Utc>,
    /// The request's content hash, checked against its audit record when claimed: an executor runs the request
    /// only while its stored content still hashes to this.
    #[serde(default)]
    pub content_hash: String,
}

/// What [`Store::decide`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideOutcome {
    /// The request after the decision (its `state` is the new state).
    pub request: ApprovalRequest,
    /// `false` when the same principal had already cast the same vote: nothing new was recorded.
    pub recorded: bool,
}

/// Durable storage for approvals, shareable across tasks and threads.
///
/// Every method that changes something writes the change and its audit entry in one transaction: either both
/// are stored or neither. `now` is passed in everywhere so callers and tests control time; a store may replace it
/// with its own clock ([`PostgresStore`] uses the database's by default, see [`Clock`]).
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Opens a request under `new.policy` (validated first). Secret inputs are redacted before storage. A `none`
    /// policy makes the request `approved` at once; otherwise it is `pending` until decided or expired.
    async fn create_request(&self, new: NewRequest, now: DateTime<Utc>) -> Result<ApprovalRequest>;

    /// One request, or [`crate::Error::NotFound`].
    async fn get_request(&self, id: &RequestId) -> Result<ApprovalRequest>;

    /// Requests matching `filter`, oldest first.
    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<ApprovalRequest>>;

    /// One page of the requests matching `filter`, newest first: at most `limit` requests whose id sorts before
    /// `before` (ids sort by creation time). The SQL stores answer it from an index, so a page costs the same at
    /// 10 or 100,000 stored requests.
    async fn page_requests(
        &self,
        filter: &RequestFilter,
        before: Option<&RequestId>,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>>;

    /// How many requests are in each state (states with none are left out), counted by the database.
    async fn count_requests(&self) -> Result<Vec<(RequestState, u64)>>;

    /// Records `reviewer`'s decision, judged with the facts in `context` (see [`crate::resolve_reviewer`]), and
    /// moves the request to its new state.
    ///
    /// Refused with [`crate::Error::NotEligible`] (self-approval, target, not an approver),
    /// [`crate::Error::NotPending`], [`crate::Error::ReasonRequired`], or [`crate::Error::Expired`] (after recording
    /// the expiry) when the request is past its expiry. Votes are idempotent per principal: approving twice records
    /// one vote (`recorded: false` the second time). An approver who changes their mind may still deny while the
    /// request is pending; that is recorded as a new decision and denies the request.
    async fn decide(
        &self,
        id: &RequestId,
        reviewer: &Principal,
        decision: Decision,
        context: &EligibilityContext,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome>;

    /// Cancels a pending request. Who may cancel (the requester, an admin) is the caller's decision; `by` is recorded.
    async fn cancel(
        &self,
        id: &RequestId,
        by: &Principal,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest>;

    /// Marks every pending request whose expiry is at or before `now` as expired; returns their ids.
    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<RequestId>>;

    /// Atomically moves an approved request to `executing` and returns the claim, a lease until `lease_until`. Of
    /// any number of concurrent callers (threads or processes sharing the store) exactly one succeeds; the others
    /// get [`crate::Error::AlreadyClaimed`]. A request that is not approved gives [`crate::Error::NotApproved`].
    ///
    /// Before claiming, the request is checked against its audit record: its content must hash to what was
    /// recorded at creation, and the recorded decisions, each made on that content, must approve it under the
    /// recorded policy. Otherwise nothing runs: [`crate::Error::Tampered`], audited as `execution_refused`. The
    /// executor's server must be the request's ([`crate::Error::WrongServer`]).
    async fn claim_execution(
        &self,
        id: &RequestId,
        executor: &Executor,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim>;

    /// Extends the lease of a current claim ([`crate::Error::StaleClaim`] when it was taken over).
    async fn renew_lease(
        &self,
        claim: &ExecutionClaim,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim>;

    /// Records how the claimed execution went (`executing -> succeeded | failed`). Only the current claim (same
    /// claim id and epoch) may.
    async fn record_outcome(
        &self,
        claim: &ExecutionClaim,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest>;

    /// Requests in `executing`, for the caller to check whose lease ran out (see [`ExecutionRecord::lease_until`](crate::ExecutionRecord)).
    async fn in_doubt(&self) -> Result<Vec<ApprovalRequest>>;

    /// Takes over an execution whose holder is gone: with [`Takeover::LeaseExpired`] only once its lease ran out
    /// ([`crate::Error::LeaseHeld`] before). Returns a new claim with the next epoch, so the old holder can no
    /// longer record anything. Audited as `execution_taken_over`.
    ///
    /// `seen_claim` is the claim id the caller judged (expired or orphaned) when it read the request: when another
    /// process took the execution over since, the take-over is refused with [`crate::Error::LeaseHeld`], so two
    /// reconcilers acting on the same stale read never both run it.
    ///
    /// Before taking over, the request is checked as [`Store::claim_execution`] checks it (content against its
    /// audit record, the recorded decisions approve it under the recorded policy), and its audit entries must show
    /// it claimed and not finished. Otherwise nothing may run: the request is settled as `failed`, audited as
    /// `execution_refused`, and the caller gets [`crate::Error::Tampered`].
    async fn take_over(
        &self,
        id: &RequestId,
        executor: &Executor,
        why: Takeover,
        seen_claim: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim>;

    /// Settles a taken-over execution with what the caller found on the server, audited as `reconciled`.
    async fn resolve_in_doubt(
        &self,
        claim: &ExecutionClaim,
        outcome: Outcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest>;

    /// Records that `installer` installed `workflow_id` with `policy` (validated first).
    async fn install(
        &self,
        workflow_id: &str,
        installer: &Principal,
        policy: Policy,
        now: DateTime<Utc>,
    ) -> Result<Installation>;

    /// The installation of `workflow_id`, if installed.
    async fn get_installation(&self, workflow_id: &str) -> Result<Option<Installation>>;

    /// Every installation, by workflow id.
    async fn list_installations(&self) -> Result<Vec<Installation>>;

    /// Changes the policy of an installed workflow; the audit entry keeps the old and new policy hashes. Whether
    /// `changed_by` may (the installer or an admin) is the caller's decision. Existing requests keep their policy.
    async fn set_policy(
        &self,
        workflow_id: &str,
        policy: Policy,
        changed_by: &Principal,
        now: DateTime<Utc>,
    ) -> Result<Installation>;

    /// The whole audit log, in order.
    async fn audit_entries(&self) -> Result<Vec<AuditEntry>>;

    /// The last audit entry's position and hash, as recorded apart from the entries.
    async fn audit_head(&self) -> Result<AuditHead>;

    /// Verifies the audit chain against the recorded head (which must be the last entry), and every stored
    /// request against its audit record (its content and the state its entries lead to); returns the number of
    /// entries, or [`crate::Error::AuditBroken`] naming the first problem.
    async fn verify_audit(&self) -> Result<u64>;

    /// Verifies the log from a head saved earlier outside the store (an anchor, such as the head the approvals
    /// service published): the entry at `anchor.seq` must still be there with `anchor.hash` (and match its hash),
    /// and every entry after it must chain to the store's recorded head. Reads only the entries from the anchor on,
    /// so it is cheap to run often. Returns the store's head, or [`crate::Error::AuditBroken`] naming the first
    /// problem (a log cut off below the anchor, or history rewritten).
    async fn verify_audit_from(&self, anchor: &AuditHead) -> Result<AuditHead> {
        let broken = |seq: u64, problem: String| crate::Error::AuditBroken { seq, problem };
        let head = self.audit_head().await?;
        if head.seq < anchor.seq {
            return Err(broken(head.seq + 1, format!("the store's head is entry {} but entry {} was anchored: entries were cut off or the store was replaced", head.seq, anchor.seq)));
        }
        let mut prev = if anchor.seq == 0 {
            if anchor.hash != crate::GENESIS_HASH {
                return Err(broken(1, "the anchor is malformed (entry 0 with a hash)".into()));
            }
            AuditHead::genesis()
        } else {
            match self.audit_after(anchor.seq - 1, 1).await?.pop() {
                Some(e) if e.seq == anchor.seq && e.hash == anchor.hash && e.compute_hash() == e.hash => e.head(),
                Some(e) if e.seq == anchor.seq => {
                    return Err(broken(
                        anchor.seq,
                        "it differs from the anchored entry: the log was rewritten".into(),
                    ))
                }
                _ => {
                    return Err(broken(
                        anchor.seq,
                        "the anchored entry is gone: the log was cut off or rewritten".into(),
                    ))
                }
            }
        };
        while prev.seq < head.seq {
            let page = self
                .audit_after(prev.seq, (head.seq - prev.seq).min(500) as usize)
                .await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                if e.seq != prev.seq + 1 {
                    return Err(broken(
                        prev.seq + 1,
                        format!(
                            "expected entry {} but found entry {}: an entry was removed or moved",
                            prev.seq + 1,
                            e.seq
                        ),
                    ));
                }
                if e.prev_hash != prev.hash {
                    return Err(broken(e.seq, "its previous-hash does not match the entry before it: entries were removed, reordered or replaced".into()));
                }
                if e.compute_hash() != e.hash {
                    return Err(broken(
                        e.seq,
                        "its content does not match its hash: the entry was edited".into(),
                    ));
                }
                prev = e.head();
            }
        }
        if prev != head {
            return Err(broken(
                prev.seq + 1,
                format!(
                    "the recorded head (entry {}) does not match the log, which ends at entry {}",
                    head.seq, prev.seq
                ),
            ));
        }
        Ok(head)
    }

    /// Audit entries after sequence number `after_seq`, oldest first, at most `limit` (for webhook delivery: the
    /// audit log is the outbox, written in the same transaction as each change).
    async fn audit_after(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>>;

    /// The last audit sequence number delivered to `sink` (0 when none).
    async fn delivery_cursor(&self, sink: &str) -> Result<u64>;

    /// Records that `sink` has received every entry up to `seq` (never moves back).
    async fn set_delivery_cursor(&self, sink: &str, seq: u64) -> Result<()>;

    /// Every record (installations, requests, audit entries, cursors) from one snapshot; see [`export`].
    async fn export_records(&self) -> Result<Vec<ExportRecord>>;

    /// Writes exported records into this store, which must be empty, and verifies them as
    /// [`Store::verify_audit`] does, all in one transaction; returns the number of audit entries. See [`import`].
    async fn import_records(&self, records: Vec<ExportRecord>) -> Result<u64>;

    /// One time-bound grant (its id is the id of the request that granted it), or [`crate::Error::GrantNotFound`].
    async fn get_grant(&self, id: &str) -> Result<Grant>;

    /// Grants matching `filter`, by id.
    async fn list_grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>>;

    /// Claims the revocation of a due grant for `process`, a lease until `lease_until`. Of any number of
    /// concurrent callers exactly one succeeds; the others get [`crate::Error::NotRevocable`] (not due, waiting
    /// for its next attempt, or held by a live claim) or [`crate::Error::GrantRevoked`]. A claim whose lease ran out
    /// may be claimed again (`took_over` is then set: the lost holder may have sent its delete).
    async fn claim_revocation(
        &self,
        id: &str,
        process: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RevocationClaim>;

    /// Records how the claimed revocation went, audited as `grant_revoked` (who granted, who approved, when, by
    /// which process, what was found). Only the current claim may ([`crate::Error::StaleRevocation`]).
    async fn record_revocation(
        &self,
        claim: &RevocationClaim,
        how: RevokedHow,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant>;

    /// Gives a claimed revocation back after a failure (Rancher unreachable or refused): the grant stays overdue
    /// and may be claimed again from `retry_at`. The first failure is audited as `grant_overdue`.
    async fn release_revocation(
        &self,
        claim: &RevocationClaim,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Grant>;

    /// Makes a grant due now (an early end), audited as `grant_ended_early`; the next revocation run removes it.
    async fn end_grant_early(&self, id: &str, by: &Principal, now: DateTime<Utc>) -> Result<Grant>;

    /// Records a write sent to Rancher outside any workflow, audited as `direct_write` (the operation, its
    /// parameters and path); answers the new head. Call it before sending the write.
    async fn record_direct_write(
        &self,
        actor: &str,
        write: crate::audit::DirectWrite,
        now: DateTime<Utc>,
    ) -> Result<AuditHead>;

    /// Records a change the service's watcher saw in Rancher, audited as `access_observed` (the matched request's
    /// entry when it names one), at most once per `key` across every replica: false when it was recorded already.
    async fn record_access_observed(
        &self,
        actor: &str,
        key: &str,
        observed: crate::audit::AccessObserved,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Records a reminder of a pending request (or its escalation), at most once per kind: true when it was
    /// written, false when the request is no longer pending or one was recorded already.
    async fn record_reminder(
        &self,
        id: &RequestId,
        actor: &str,
        reminded: crate::audit::Reminded,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// The audit entries of one request, in order (an indexed read, not a scan of the whole log).
    async fn audit_of_request(&self, request_id: &str) -> Result<Vec<AuditEntry>>;

    /// Stores service state (web sessions, dead letters; not audited): `value` under `ns`/`key`, replacing what
    /// was there, gone after `expires_at` when given.
    async fn state_put(&self, ns: &str, key: &str, value: &str, expires_at: Option<DateTime<Utc>>) -> Result<()>;

    /// Stores `value` under `ns`/`key` only when nothing is there that is still current at `now` (gone after
    /// `expires_at` when given): `true` when this call stored it, `false` when an unexpired value was there (left
    /// as it was). One write transaction, so of callers racing on one key across every process on the store,
    /// exactly one is told `true` (e.g. one replica takes a delivery that was sent to several).
    async fn state_put_new(
        &self,
        ns: &str,
        key: &str,
        value: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// The value under `ns`/`key`, or `None` when there is none or it expired by `now`.
    async fn state_get(&self, ns: &str, key: &str, now: DateTime<Utc>) -> Result<Option<String>>;

    /// Removes `ns`/`key`; whether it was there.
    async fn state_delete(&self, ns: &str, key: &str) -> Result<bool>;

    /// The entries of `ns` not expired by `now`, in key order, at most `limit`.
    async fn state_list(&self, ns: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<(String, String)>>;

    /// Removes every entry expired by `now` (leases included); how many.
    async fn state_purge(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Takes or renews lease `name` for `holder` until `until`: `true` when `holder` holds it now (it was free,
    /// expired, or already theirs), `false` while another holder's lease runs. One holder at a time across every
    /// process on the store; a holder that stops renewing loses it at `until`.
    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool>;

    /// Gives lease `name` up when `holder` holds it (another holder's lease is left alone).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
}

/// The storage primitives the shared transition logic needs, within one transaction.
#[async_trait::async_trait]
pub(crate) trait Tx: Send {
    /// The time to record for a change the caller dated `caller_now`: the caller's time, or the store's own clock.
    async fn clock(&mut self, caller_now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        Ok(caller_now)
    }
    /// Loads a request (in a write transaction: locked until commit).
    async fn load_request(&mut self, id: &RequestId) -> Result<Option<ApprovalRequest>>;
    /// Inserts or replaces.
    async fn save_request(&mut self, request: &ApprovalRequest) -> Result<()>;
    /// Requests in any of `states` (all when empty), ordered by id.
    async fn requests_in(&mut self, states: &[RequestState]) -> Result<Vec<ApprovalRequest>>;
    /// How many requests are in each state.
    async fn request_counts(&mut self) -> Result<Vec<(RequestState, u64)>> {
        let all = self.requests_in(&[]).await?;
        Ok(RequestState::ALL
            .iter()
            .map(|st| (*st, all.iter().filter(|r| r.state == *st).count() as u64))
            .filter(|(_, n)| *n > 0)
            .collect())
    }
    /// At most `limit` requests matching `filter` with an id before `before`, newest first. The default filters
    /// every request; the SQL stores push it all into one indexed query.
    async fn requests_page(
        &mut self,
        filter: &RequestFilter,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>> {
        let mut all = self.requests_in(&filter.states).await?;
        all.retain(|r| filter.matches(r) && before.is_none_or(|b| r.id.as_str() < b));
        all.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        all.truncate(limit);
        Ok(all)
    }
    async fn load_installation(&mut self, workflow_id: &str) -> Result<Option<Installation>>;
    /// Inserts or replaces.
    async fn save_installation(&mut self, installation: &Installation) -> Result<()>;
    async fn installations(&mut self) -> Result<Vec<Installation>>;
    async fn audit_head(&mut self) -> Result<AuditHead>;
    async fn audit_entries(&mut self) -> Result<Vec<AuditEntry>>;
    /// The entries of one request, in order.
    async fn audit_for_request(&mut self, request_id: &str) -> Result<Vec<AuditEntry>>;
    /// Entries after `after_seq`, at most `limit`.
    async fn audit_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>>;
    /// Appends the entry and moves the head to it.
    async fn append_audit(&mut self, entry: &AuditEntry) -> Result<()>;
    async fn delivery_cursor(&mut self, sink: &str) -> Result<u64>;
    async fn set_delivery_cursor(&mut self, sink: &str, seq: u64) -> Result<()>;
    /// Every delivery cursor, by sink.
    async fn delivery_cursors(&mut self) -> Result<Vec<(String, u64)>>;
    /// Loads a grant (in a write transaction: locked until commit).
    async fn load_grant(&mut self, id: &str) -> Result<Option<Grant>>;
    /// Inserts or replaces.
    async fn save_grant(&mut self, grant: &Grant) -> Result<()>;
    /// Grants matching `filter`, by id.
    async fn grants(&mut self, filter: &GrantFilter) -> Result<Vec<Grant>>;
    /// One service state entry: its value and expiry (milliseconds since the epoch), expired or not.
    async fn state_load(&mut self, ns: &str, key: &str) -> Result<Option<(String, Option<i64>)>>;
    /// Inserts or replaces one service state entry.
    async fn state_save(&mut self, ns: &str, key: &str, value: &str, expires_ms: Option<i64>) -> Result<()>;
    /// Removes one entry; whether it was there.
    async fn state_remove(&mut self, ns: &str, key: &str) -> Result<bool>;
    /// Entries of `ns` not expired at `now_ms`, in key order, at most `limit`.
    async fn state_scan(&mut self, ns: &str, now_ms: i64, limit: usize) -> Result<Vec<(String, String)>>;
    /// Removes the entries expired at `now_ms`; how many.
    async fn state_purge(&mut self, now_ms: i64) -> Result<u64>;
}

/// A stored record (request, installation) read back from its JSON body.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(what: impl FnOnce() -> String, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| crate::Error::Corrupt {
        what: what(),
        source: Box::new(e),
    })
}

/// A record's JSON body for storage.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store records always serialise")
}

/// The columns of one stored audit row (`seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash`).
pub(crate) type AuditRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

/// An audit entry from its stored columns; an unreadable time or detail breaks the chain at that entry (a kind
/// this build does not know is kept by name: [`crate::AuditKind::Other`]).
pub(crate) fn audit_entry(row: AuditRow) -> Result<AuditEntry> {
    let (seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash) = row;
    let seq = seq.max(0) as u64;
    let unreadable = |what: &str| crate::Error::AuditBroken {
        seq,
        problem: format!("its {what} cannot be read"),
    };
    Ok(AuditEntry {
        seq,
        at: DateTime::parse_from_rfc3339(&at)
            .map_err(|_| unreadable("time"))?
            .with_timezone(&Utc),
        actor,
        kind: crate::AuditKind::from_stored(&kind),
        request_id,
        workflow_id,
        detail: serde_json::from_str(&detail).map_err(|_| unreadable("detail"))?,
        prev_hash,
        hash,
    })
}

/// A transaction body: the shared logic run over a [`Tx`], boxed so every store can drive it its own way.
pub(crate) type TxBody<T> =
    Box<dyn for<'t> FnOnce(&'t mut dyn Tx) -> futures::future::BoxFuture<'t, Result<T>> + Send + 'static>;

/// Boxes a transaction body, fixing the higher-ranked closure type ([`TxBody`]).
pub(crate) fn body<T, F>(f: F) -> TxBody<T>
where
    F: for<'t> FnOnce(&'t mut dyn Tx) -> futures::future::BoxFuture<'t, Result<T>> + Send + 'static,
{
    Box::new(f)
}

/// Implements [`Store`] for a type with async `write` (read-modify-write transaction, committed on `Ok`) and
/// `read` methods taking a [`TxBody`]. Arguments are copied into the body so it may run on another thread.
macro_rules! store_via_ops {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $ty {
            async fn create_request(
                &self,
                new: $crate::NewRequest,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::ApprovalRequest> {
                self.write($crate::store::body(move |tx| {
                    Box::pin($crate::store::ops::create_request(tx, new, now))
                }))
                .await
            }
            async fn get_request(&self, id: &$crate::RequestId) -> $crate::Result<$crate::ApprovalRequest> {
                let id = id.clone();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::get_request(tx, &id).await })
                }))
                .await
            }
            async fn list_requests(
                &self,
                filter: &$crate::RequestFilter,
            ) -> $crate::Result<Vec<$crate::ApprovalRequest>> {
                let filter = filter.clone();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::list_requests(tx, &filter).await })
                }))
                .await
            }
            async fn page_requests(
                &self,
                filter: &$crate::RequestFilter,
                before: Option<&$crate::RequestId>,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::ApprovalRequest>> {
                let filter = filter.clone();
                let before = before.map(|b| b.as_str().to_owned());
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { tx.requests_page(&filter, before.as_deref(), limit).await })
                }))
                .await
            }
            async fn count_requests(&self) -> $crate::Result<Vec<($crate::RequestState, u64)>> {
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { tx.request_counts().await })
                }))
                .await
            }
            async fn decide(
                &self,
                id: &$crate::RequestId,
                reviewer: &$crate::Principal,
                decision: $crate::Decision,
                context: &$crate::EligibilityContext,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::DecideOutcome> {
                let (id, reviewer, context) = (id.clone(), reviewer.clone(), context.clone());
                self.write($crate::store::body(move |tx| {
                    Box::pin(
                        async move { $crate::store::ops::decide(tx, &id, &reviewer, decision, &context, now).await },
                    )
                }))
                .await?
            }
            async fn cancel(
                &self,
                id: &$crate::RequestId,
                by: &$crate::Principal,
                reason: Option<String>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::ApprovalRequest> {
                let (id, by) = (id.clone(), by.clone());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::cancel(tx, &id, &by, reason, now).await })
                }))
                .await?
            }
            async fn expire_due(&self, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<Vec<$crate::RequestId>> {
                self.write($crate::store::body(move |tx| {
                    Box::pin($crate::store::ops::expire_due(tx, now))
                }))
                .await
            }
            async fn claim_execution(
                &self,
                id: &$crate::RequestId,
                executor: &$crate::Executor,
                lease_until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::ExecutionClaim> {
                let (id, executor) = (id.clone(), executor.clone());
                self.write($crate::store::body(move |tx| {
                    Box::pin(
                        async move { $crate::store::ops::claim_execution(tx, &id, &executor, lease_until, now).await },
                    )
                }))
                .await?
            }
            async fn renew_lease(
                &self,
                claim: &$crate::ExecutionClaim,
                lease_until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::ExecutionClaim> {
                let claim = claim.clone();
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::renew_lease(tx, &claim, lease_until, now).await })
                }))
                .await
            }
            async fn record_outcome(
                &self,
                claim: &$crate::ExecutionClaim,
                outcome: $crate::Outcome,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::ApprovalRequest> {
                let claim = claim.clone();
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::record_outcome(tx, &claim, outcome, now).await })
                }))
                .await
            }
            async fn in_doubt(&self) -> $crate::Result<Vec<$crate::ApprovalRequest>> {
                self.read($crate::store::body(|tx| {
                    Box::pin(async move { tx.requests_in(&[$crate::RequestState::Executing]).await })
                }))
                .await
            }
            async fn take_over(
                &self,
                id: &$crate::RequestId,
                executor: &$crate::Executor,
                why: $crate::Takeover,
                seen_claim: &str,
                lease_until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::ExecutionClaim> {
                let (id, executor, seen) = (id.clone(), executor.clone(), seen_claim.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move {
                        $crate::store::ops::take_over(tx, &id, &executor, why, &seen, lease_until, now).await
                    })
                }))
                .await?
            }
            async fn resolve_in_doubt(
                &self,
                claim: &$crate::ExecutionClaim,
                outcome: $crate::Outcome,
                note: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::ApprovalRequest> {
                let (claim, note) = (claim.clone(), note.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::resolve_in_doubt(tx, &claim, outcome, &note, now).await })
                }))
                .await
            }
            async fn install(
                &self,
                workflow_id: &str,
                installer: &$crate::Principal,
                policy: $crate::Policy,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::Installation> {
                let (workflow_id, installer) = (workflow_id.to_owned(), installer.clone());
                self.write($crate::store::body(move |tx| {
                    Box::pin(
                        async move { $crate::store::ops::install(tx, &workflow_id, &installer, policy, now).await },
                    )
                }))
                .await
            }
            async fn get_installation(&self, workflow_id: &str) -> $crate::Result<Option<$crate::Installation>> {
                let workflow_id = workflow_id.to_owned();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { tx.load_installation(&workflow_id).await })
                }))
                .await
            }
            async fn list_installations(&self) -> $crate::Result<Vec<$crate::Installation>> {
                self.read($crate::store::body(|tx| tx.installations())).await
            }
            async fn set_policy(
                &self,
                workflow_id: &str,
                policy: $crate::Policy,
                changed_by: &$crate::Principal,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::Installation> {
                let (workflow_id, changed_by) = (workflow_id.to_owned(), changed_by.clone());
                self.write($crate::store::body(move |tx| {
                    Box::pin(
                        async move { $crate::store::ops::set_policy(tx, &workflow_id, policy, &changed_by, now).await },
                    )
                }))
                .await
            }
            async fn audit_entries(&self) -> $crate::Result<Vec<$crate::AuditEntry>> {
                self.read($crate::store::body(|tx| tx.audit_entries())).await
            }
            async fn audit_head(&self) -> $crate::Result<$crate::AuditHead> {
                self.read($crate::store::body(|tx| tx.audit_head())).await
            }
            async fn verify_audit(&self) -> $crate::Result<u64> {
                self.read($crate::store::body(|tx| Box::pin($crate::store::ops::verify(tx))))
                    .await
            }
            async fn audit_after(&self, after_seq: u64, limit: usize) -> $crate::Result<Vec<$crate::AuditEntry>> {
                self.read($crate::store::body(move |tx| tx.audit_after(after_seq, limit)))
                    .await
            }
            async fn delivery_cursor(&self, sink: &str) -> $crate::Result<u64> {
                let sink = sink.to_owned();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { tx.delivery_cursor(&sink).await })
                }))
                .await
            }
            async fn set_delivery_cursor(&self, sink: &str, seq: u64) -> $crate::Result<()> {
                let sink = sink.to_owned();
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { tx.set_delivery_cursor(&sink, seq).await })
                }))
                .await
            }
            async fn export_records(&self) -> $crate::Result<Vec<$crate::store::ExportRecord>> {
                self.read($crate::store::body(|tx| {
                    Box::pin($crate::store::transfer::export_records(tx))
                }))
                .await
            }
            async fn import_records(&self, records: Vec<$crate::store::ExportRecord>) -> $crate::Result<u64> {
                self.write($crate::store::body(move |tx| {
                    Box::pin($crate::store::transfer::import_records(tx, records))
                }))
                .await
            }
            async fn get_grant(&self, id: &str) -> $crate::Result<$crate::Grant> {
                let id = id.to_owned();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::get_grant(tx, &id).await })
                }))
                .await
            }
            async fn list_grants(&self, filter: &$crate::GrantFilter) -> $crate::Result<Vec<$crate::Grant>> {
                let filter = filter.clone();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { tx.grants(&filter).await })
                }))
                .await
            }
            async fn claim_revocation(
                &self,
                id: &str,
                process: &str,
                lease_until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::RevocationClaim> {
                let (id, process) = (id.to_owned(), process.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(
                        async move { $crate::store::ops::claim_revocation(tx, &id, &process, lease_until, now).await },
                    )
                }))
                .await
            }
            async fn record_revocation(
                &self,
                claim: &$crate::RevocationClaim,
                how: $crate::RevokedHow,
                note: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::Grant> {
                let (claim, note) = (claim.clone(), note.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::record_revocation(tx, &claim, how, &note, now).await })
                }))
                .await
            }
            async fn release_revocation(
                &self,
                claim: &$crate::RevocationClaim,
                error: &str,
                retry_at: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::Grant> {
                let (claim, error) = (claim.clone(), error.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(
                        async move { $crate::store::ops::release_revocation(tx, &claim, &error, retry_at, now).await },
                    )
                }))
                .await
            }
            async fn end_grant_early(
                &self,
                id: &str,
                by: &$crate::Principal,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::Grant> {
                let (id, by) = (id.to_owned(), by.clone());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::end_grant_early(tx, &id, &by, now).await })
                }))
                .await
            }
            async fn record_direct_write(
                &self,
                actor: &str,
                write: $crate::audit::DirectWrite,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::AuditHead> {
                let actor = actor.to_owned();
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::record_direct_write(tx, &actor, write, now).await })
                }))
                .await
            }
            async fn record_access_observed(
                &self,
                actor: &str,
                key: &str,
                observed: $crate::audit::AccessObserved,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let (actor, key) = (actor.to_owned(), key.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move {
                        $crate::store::ops::record_access_observed(tx, &actor, &key, observed, now).await
                    })
                }))
                .await
            }
            async fn record_reminder(
                &self,
                id: &$crate::RequestId,
                actor: &str,
                reminded: $crate::audit::Reminded,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let (id, actor) = (id.clone(), actor.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::ops::record_reminder(tx, &id, &actor, reminded, now).await })
                }))
                .await
            }
            async fn audit_of_request(&self, request_id: &str) -> $crate::Result<Vec<$crate::AuditEntry>> {
                let id = request_id.to_owned();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { tx.audit_for_request(&id).await })
                }))
                .await
            }
            async fn state_put(
                &self,
                ns: &str,
                key: &str,
                value: &str,
                expires_at: Option<chrono::DateTime<chrono::Utc>>,
            ) -> $crate::Result<()> {
                let (ns, key, value) = (ns.to_owned(), key.to_owned(), value.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::state::put(tx, &ns, &key, &value, expires_at).await })
                }))
                .await
            }
            async fn state_put_new(
                &self,
                ns: &str,
                key: &str,
                value: &str,
                expires_at: Option<chrono::DateTime<chrono::Utc>>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let (ns, key, value) = (ns.to_owned(), key.to_owned(), value.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::state::put_new(tx, &ns, &key, &value, expires_at, now).await })
                }))
                .await
            }
            async fn state_get(
                &self,
                ns: &str,
                key: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<String>> {
                let (ns, key) = (ns.to_owned(), key.to_owned());
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::state::get(tx, &ns, &key, now).await })
                }))
                .await
            }
            async fn state_delete(&self, ns: &str, key: &str) -> $crate::Result<bool> {
                $crate::store::state::check_namespace(ns, key)?;
                let (ns, key) = (ns.to_owned(), key.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { tx.state_remove(&ns, &key).await })
                }))
                .await
            }
            async fn state_list(
                &self,
                ns: &str,
                now: chrono::DateTime<chrono::Utc>,
                limit: usize,
            ) -> $crate::Result<Vec<(String, String)>> {
                let ns = ns.to_owned();
                self.read($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::state::list(tx, &ns, now, limit).await })
                }))
                .await
            }
            async fn state_purge(&self, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<u64> {
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::state::purge(tx, now).await })
                }))
                .await
            }
            async fn try_lease(
                &self,
                name: &str,
                holder: &str,
                until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let (name, holder) = (name.to_owned(), holder.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::state::try_lease(tx, &name, &holder, until, now).await })
                }))
                .await
            }
            async fn release_lease(&self, name: &str, holder: &str) -> $crate::Result<()> {
                let (name, holder) = (name.to_owned(), holder.to_owned());
                self.write($crate::store::body(move |tx| {
                    Box::pin(async move { $crate::store::state::release_lease(tx, &name, &holder).await })
                }))
                .await
            }
        }
    };
}

pub(crate) use store_via_ops;

#[cfg(test)]
mod tests;

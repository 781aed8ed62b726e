//! A store that tells an observer about every call it passes on: which operation, whether it succeeded, how long
//! it took and how many rows it handed out. The service times its store transactions with it
//! (`rancher_access_store_seconds`); tests count what a read handed out without timing anything. Each call also
//! runs in a `store` span (its operation), so a trace shows the store transactions beneath a request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::{DecideOutcome, ExecutionClaim, ExportRecord, Installation, RequestFilter, Store, Takeover};
use crate::{
    ApprovalRequest, AuditEntry, AuditHead, Decision, EligibilityContext, Executor, Grant, GrantFilter, NewRequest,
    Outcome, Policy, Principal, RequestId, RequestState, Result, RevocationClaim, RevokedHow,
};

/// One finished store call, as a [`StoreObserver`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCall {
    /// The [`Store`] method's name (`decide`, `claim_execution`, `list_requests`, ...).
    pub operation: &'static str,
    /// Whether it answered `Ok`.
    pub ok: bool,
    /// How long it took.
    pub elapsed: Duration,
    /// How many items a successful list call handed out (requests, audit entries, grants, ...); 0 for the rest.
    pub rows: usize,
}

/// Told about every call an [`ObservedStore`] passes on, on the calling task; keep it cheap.
pub trait StoreObserver: Send + Sync + 'static {
    /// `call` has just finished.
    fn observe(&self, call: &StoreCall);
}

/// A [`Store`] that passes every call to the store it wraps, unchanged, and tells its [`StoreObserver`].
pub struct ObservedStore {
    inner: Arc<dyn Store>,
    observer: Arc<dyn StoreObserver>,
}

impl ObservedStore {
    /// `inner`, observed by `observer`.
    pub fn wrap(inner: Arc<dyn Store>, observer: Arc<dyn StoreObserver>) -> Arc<dyn Store> {
        Arc::new(ObservedStore { inner, observer })
    }

    async fn observed<T>(
        &self,
        operation: &'static str,
        rows: fn(&T) -> usize,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = call.instrument(tracing::info_span!("store", operation)).await;
        self.observer.observe(&StoreCall {
            operation,
            ok: result.is_ok(),
            elapsed: started.elapsed(),
            rows: result.as_ref().map_or(0, rows),
        });
        result
    }
}

/// Not a list: no rows.
fn none<T>(_: &T) -> usize {
    0
}

/// A list: its length.
fn len<T>(v: &Vec<T>) -> usize {
    v.len()
}

/// One observed call: `timed!(self, "name", self.inner.name(args))`, with `rows` before the call for a list.
macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {
        $self.observed($op, none, $call).await
    };
    ($self:ident, $op:literal, rows, $call:expr) => {
        $self.observed($op, len, $call).await
    };
}

#[async_trait::async_trait]
impl Store for ObservedStore {
    async fn create_request(&self, new: NewRequest, now: DateTime<Utc>) -> Result<ApprovalRequest> {
        timed!(self, "create_request", self.inner.create_request(new, now))
    }
    async fn get_request(&self, id: &RequestId) -> Result<ApprovalRequest> {
        timed!(self, "get_request", self.inner.get_request(id))
    }
    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<ApprovalRequest>> {
        timed!(self, "list_requests", rows, self.inner.list_requests(filter))
    }
    async fn page_requests(
        &self,
        filter: &RequestFilter,
        before: Option<&RequestId>,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>> {
        timed!(
            self,
            "page_requests",
            rows,
            self.inner.page_requests(filter, before, limit)
        )
    }
    async fn count_requests(&self) -> Result<Vec<(RequestState, u64)>> {
        timed!(self, "count_requests", self.inner.count_requests())
    }
    async fn decide(
        &self,
        id: &RequestId,
        reviewer: &Principal,
        decision: Decision,
        context: &EligibilityContext,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome> {
        timed!(self, "decide", self.inner.decide(id, reviewer, decision, context, now))
    }
    async fn cancel(
        &self,
        id: &RequestId,
        by: &Principal,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest> {
        timed!(self, "cancel", self.inner.cancel(id, by, reason, now))
    }
    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<RequestId>> {
        timed!(self, "expire_due", rows, self.inner.expire_due(now))
    }
    async fn claim_execution(
        &self,
        id: &RequestId,
        executor: &Executor,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim> {
        timed!(
            self,
            "claim_execution",
            self.inner.claim_execution(id, executor, lease_until, now)
        )
    }
    async fn renew_lease(
        &self,
        claim: &ExecutionClaim,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim> {
        timed!(self, "renew_lease", self.inner.renew_lease(claim, lease_until, now))
    }
    async fn record_outcome(
        &self,
        claim: &ExecutionClaim,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest> {
        timed!(self, "record_outcome", self.inner.record_outcome(claim, outcome, now))
    }
    async fn in_doubt(&self) -> Result<Vec<ApprovalRequest>> {
        timed!(self, "in_doubt", rows, self.inner.in_doubt())
    }
    async fn take_over(
        &self,
        id: &RequestId,
        executor: &Executor,
        why: Takeover,
        seen_claim: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim> {
        timed!(
            self,
            "take_over",
            self.inner.take_over(id, executor, why, seen_claim, lease_until, now)
        )
    }
    async fn resolve_in_doubt(
        &self,
        claim: &ExecutionClaim,
        outcome: Outcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest> {
        timed!(
            self,
            "resolve_in_doubt",
            self.inner.resolve_in_doubt(claim, outcome, note, now)
        )
    }
    async fn install(
        &self,
        workflow_id: &str,
        installer: &Principal,
        policy: Policy,
        now: DateTime<Utc>,
    ) -> Result<Installation> {
        timed!(self, "install", self.inner.install(workflow_id, installer, policy, now))
    }
    async fn get_installation(&self, workflow_id: &str) -> Result<Option<Installation>> {
        timed!(self, "get_installation", self.inner.get_installation(workflow_id))
    }
    async fn list_installations(&self) -> Result<Vec<Installation>> {
        timed!(self, "list_installations", rows, self.inner.list_installations())
    }
    async fn set_policy(
        &self,
        workflow_id: &str,
        policy: Policy,
        changed_by: &Principal,
        now: DateTime<Utc>,
    ) -> Result<Installation> {
        timed!(
            self,
            "set_policy",
            self.inner.set_policy(workflow_id, policy, changed_by, now)
        )
    }
    async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        timed!(self, "audit_entries", rows, self.inner.audit_entries())
    }
    async fn audit_head(&self) -> Result<AuditHead> {
        timed!(self, "audit_head", self.inner.audit_head())
    }
    async fn verify_audit(&self) -> Result<u64> {
        timed!(self, "verify_audit", self.inner.verify_audit())
    }
    async fn verify_audit_from(&self, anchor: &AuditHead) -> Result<AuditHead> {
        timed!(self, "verify_audit_from", self.inner.verify_audit_from(anchor))
    }
    async fn audit_after(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        timed!(self, "audit_after", rows, self.inner.audit_after(after_seq, limit))
    }
    async fn delivery_cursor(&self, sink: &str) -> Result<u64> {
        timed!(self, "delivery_cursor", self.inner.delivery_cursor(sink))
    }
    async fn set_delivery_cursor(&self, sink: &str, seq: u64) -> Result<()> {
        timed!(self, "set_delivery_cursor", self.inner.set_delivery_cursor(sink, seq))
    }
    async fn export_records(&self) -> Result<Vec<ExportRecord>> {
        timed!(self, "export_records", rows, self.inner.export_records())
    }
    async fn import_records(&self, records: Vec<ExportRecord>) -> Result<u64> {
        timed!(self, "import_records", self.inner.import_records(records))
    }
    async fn get_grant(&self, id: &str) -> Result<Grant> {
        timed!(self, "get_grant", self.inner.get_grant(id))
    }
    async fn list_grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>> {
        timed!(self, "list_grants", rows, self.inner.list_grants(filter))
    }
    async fn claim_revocation(
        &self,
        id: &str,
        process: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RevocationClaim> {
        timed!(
            self,
            "claim_revocation",
            self.inner.claim_revocation(id, process, lease_until, now)
        )
    }
    async fn record_revocation(
        &self,
        claim: &RevocationClaim,
        how: RevokedHow,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
        timed!(
            self,
            "record_revocation",
            self.inner.record_revocation(claim, how, note, now)
        )
    }
    async fn release_revocation(
        &self,
        claim: &RevocationClaim,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
        timed!(
            self,
            "release_revocation",
            self.inner.release_revocation(claim, error, retry_at, now)
        )
    }
    async fn end_grant_early(&self, id: &str, by: &Principal, now: DateTime<Utc>) -> Result<Grant> {
        timed!(self, "end_grant_early", self.inner.end_grant_early(id, by, now))
    }
    async fn record_direct_write(
        &self,
        actor: &str,
        write: crate::audit::DirectWrite,
        now: DateTime<Utc>,
    ) -> Result<AuditHead> {
        timed!(
            self,
            "record_direct_write",
            self.inner.record_direct_write(actor, write, now)
        )
    }
    async fn record_access_observed(
        &self,
        actor: &str,
        key: &str,
        observed: crate::audit::AccessObserved,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        timed!(
            self,
            "record_access_observed",
            self.inner.record_access_observed(actor, key, observed, now)
        )
    }
    async fn record_reminder(
        &self,
        id: &RequestId,
        actor: &str,
        reminded: crate::audit::Reminded,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        timed!(
            self,
            "record_reminder",
            self.inner.record_reminder(id, actor, reminded, now)
        )
    }
    async fn audit_of_request(&self, request_id: &str) -> Result<Vec<AuditEntry>> {
        timed!(self, "audit_of_request", rows, self.inner.audit_of_request(request_id))
    }
    async fn state_put(&self, ns: &str, key: &str, value: &str, expires_at: Option<DateTime<Utc>>) -> Result<()> {
        timed!(self, "state_put", self.inner.state_put(ns, key, value, expires_at))
    }
    async fn state_put_new(
        &self,
        ns: &str,
        key: &str,
        value: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        timed!(
            self,
            "state_put_new",
            self.inner.state_put_new(ns, key, value, expires_at, now)
        )
    }
    async fn state_get(&self, ns: &str, key: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        timed!(self, "state_get", self.inner.state_get(ns, key, now))
    }
    async fn state_delete(&self, ns: &str, key: &str) -> Result<bool> {
        timed!(self, "state_delete", self.inner.state_delete(ns, key))
    }
    async fn state_list(&self, ns: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<(String, String)>> {
        timed!(self, "state_list", rows, self.inner.state_list(ns, now, limit))
    }
    async fn state_purge(&self, now: DateTime<Utc>) -> Result<u64> {
        timed!(self, "state_purge", self.inner.state_purge(now))
    }
    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        timed!(self, "try_lease", self.inner.try_lease(name, holder, until, now))
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        timed!(self, "release_lease", self.inner.release_lease(name, holder))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::MemoryStore;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(&'static str, bool, usize)>>);

    impl StoreObserver for Seen {
        fn observe(&self, call: &StoreCall) {
            self.0.lock().unwrap().push((call.operation, call.ok, call.rows));
        }
    }

    #[tokio::test]
    async fn each_call_is_told_with_its_result_and_rows_and_answers_as_the_inner_store() {
        let seen = Arc::new(Seen::default());
        let store = ObservedStore::wrap(Arc::new(MemoryStore::new()), seen.clone());
        assert_eq!(store.audit_head().await.unwrap(), AuditHead::genesis());
        assert!(store.get_request(&RequestId::generate()).await.is_err());
        store.state_put("ns", "a", "1", None).await.unwrap();
        store.state_put("ns", "b", "2", None).await.unwrap();
        assert_eq!(store.state_list("ns", Utc::now(), 10).await.unwrap().len(), 2);
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                ("audit_head", true, 0),
                ("get_request", false, 0),
                ("state_put", true, 0),
                ("state_put", true, 0),
                ("state_list", true, 2),
            ]
        );
    }
}

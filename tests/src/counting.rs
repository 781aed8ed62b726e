//! A store that counts what it reads: the stored requests and audit entries it hands out, so a test can tell a
//! bounded, indexed read from a scan without timing anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rancher_approval::{
    ApprovalRequest, AuditEntry, AuditHead, DecideOutcome, Decision, EligibilityContext, ExecutionClaim, Executor,
    ExportRecord, Grant, GrantFilter, Installation, NewRequest, Outcome, Policy, Principal, RequestFilter, RequestId,
    RequestState, Result, RevocationClaim, RevokedHow, Store, Takeover,
};

/// Wraps a store; every call goes through, and the reads of requests and audit entries are counted.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    rows_read: AtomicUsize,
    audit_entries_read: AtomicUsize,
}

impl CountingStore {
    /// Counts the reads of `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        CountingStore {
            inner,
            rows_read: AtomicUsize::new(0),
            audit_entries_read: AtomicUsize::new(0),
        }
    }

    /// Stored requests handed out by list and page reads so far.
    pub fn rows_read(&self) -> usize {
        self.rows_read.load(Ordering::SeqCst)
    }

    /// Audit entries handed out so far (whole-log and per-request reads).
    pub fn audit_entries_read(&self) -> usize {
        self.audit_entries_read.load(Ordering::SeqCst)
    }

    /// Starts counting afresh.
    pub fn reset(&self) {
        self.rows_read.store(0, Ordering::SeqCst);
        self.audit_entries_read.store(0, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Store for CountingStore {
    async fn create_request(&self, new: NewRequest, now: DateTime<Utc>) -> Result<ApprovalRequest> {
        self.inner.create_request(new, now).await
    }

    async fn get_request(&self, id: &RequestId) -> Result<ApprovalRequest> {
        self.inner.get_request(id).await
    }

    async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<ApprovalRequest>> {
        let all = self.inner.list_requests(filter).await?;
        self.rows_read.fetch_add(all.len(), Ordering::SeqCst);
        Ok(all)
    }

    async fn page_requests(
        &self,
        filter: &RequestFilter,
        before: Option<&RequestId>,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>> {
        let page = self.inner.page_requests(filter, before, limit).await?;
        self.rows_read.fetch_add(page.len(), Ordering::SeqCst);
        Ok(page)
    }

    async fn count_requests(&self) -> Result<Vec<(RequestState, u64)>> {
        self.inner.count_requests().await
    }

    async fn decide(
        &self,
        id: &RequestId,
        reviewer: &Principal,
        decision: Decision,
        context: &EligibilityContext,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome> {
        self.inner.decide(id, reviewer, decision, context, now).await
    }

    async fn cancel(
        &self,
        id: &RequestId,
        by: &Principal,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest> {
        self.inner.cancel(id, by, reason, now).await
    }

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<RequestId>> {
        self.inner.expire_due(now).await
    }

    async fn claim_execution(
        &self,
        id: &RequestId,
        executor: &Executor,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim> {
        self.inner.claim_execution(id, executor, lease_until, now).await
    }

    async fn renew_lease(
        &self,
        claim: &ExecutionClaim,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ExecutionClaim> {
        self.inner.renew_lease(claim, lease_until, now).await
    }

    async fn record_outcome(
        &self,
        claim: &ExecutionClaim,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest> {
        self.inner.record_outcome(claim, outcome, now).await
    }

    async fn in_doubt(&self) -> Result<Vec<ApprovalRequest>> {
        self.inner.in_doubt().await
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
        self.inner
            .take_over(id, executor, why, seen_claim, lease_until, now)
            .await
    }

    async fn resolve_in_doubt(
        &self,
        claim: &ExecutionClaim,
        outcome: Outcome,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest> {
        self.inner.resolve_in_doubt(claim, outcome, note, now).await
    }

    async fn install(
        &self,
        workflow_id: &str,
        installer: &Principal,
        policy: Policy,
        now: DateTime<Utc>,
    ) -> Result<Installation> {
        self.inner.install(workflow_id, installer, policy, now).await
    }

    async fn get_installation(&self, workflow_id: &str) -> Result<Option<Installation>> {
        self.inner.get_installation(workflow_id).await
    }

    async fn list_installations(&self) -> Result<Vec<Installation>> {
        self.inner.list_installations().await
    }

    async fn set_policy(
        &self,
        workflow_id: &str,
        policy: Policy,
        changed_by: &Principal,
        now: DateTime<Utc>,
    ) -> Result<Installation> {
        self.inner.set_policy(workflow_id, policy, changed_by, now).await
    }

    async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        let all = self.inner.audit_entries().await?;
        self.audit_entries_read.fetch_add(all.len(), Ordering::SeqCst);
        Ok(all)
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        self.inner.audit_head().await
    }

    async fn verify_audit(&self) -> Result<u64> {
        self.inner.verify_audit().await
    }

    async fn audit_after(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.inner.audit_after(after_seq, limit).await
    }

    async fn delivery_cursor(&self, sink: &str) -> Result<u64> {
        self.inner.delivery_cursor(sink).await
    }

    async fn set_delivery_cursor(&self, sink: &str, seq: u64) -> Result<()> {
        self.inner.set_delivery_cursor(sink, seq).await
    }

    async fn export_records(&self) -> Result<Vec<ExportRecord>> {
        self.inner.export_records().await
    }

    async fn import_records(&self, records: Vec<ExportRecord>) -> Result<u64> {
        self.inner.import_records(records).await
    }

    async fn get_grant(&self, id: &str) -> Result<Grant> {
        self.inner.get_grant(id).await
    }

    async fn list_grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>> {
        self.inner.list_grants(filter).await
    }

    async fn claim_revocation(
        &self,
        id: &str,
        process: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RevocationClaim> {
        self.inner.claim_revocation(id, process, lease_until, now).await
    }

    async fn record_revocation(
        &self,
        claim: &RevocationClaim,
        how: RevokedHow,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
        self.inner.record_revocation(claim, how, note, now).await
    }

    async fn release_revocation(
        &self,
        claim: &RevocationClaim,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
        self.inner.release_revocation(claim, error, retry_at, now).await
    }

    async fn end_grant_early(&self, id: &str, by: &Principal, now: DateTime<Utc>) -> Result<Grant> {
        self.inner.end_grant_early(id, by, now).await
    }

    async fn record_direct_write(
        &self,
        actor: &str,
        write: rancher_approval::audit::DirectWrite,
        now: DateTime<Utc>,
    ) -> Result<rancher_approval::AuditHead> {
        self.inner.record_direct_write(actor, write, now).await
    }
    async fn record_reminder(
        &self,
        id: &rancher_approval::RequestId,
        actor: &str,
        reminded: rancher_approval::audit::Reminded,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.inner.record_reminder(id, actor, reminded, now).await
    }

    async fn audit_of_request(&self, request_id: &str) -> Result<Vec<AuditEntry>> {
        let mine = self.inner.audit_of_request(request_id).await?;
        self.audit_entries_read.fetch_add(mine.len(), Ordering::SeqCst);
        Ok(mine)
    }

    async fn state_put(&self, ns: &str, key: &str, value: &str, expires_at: Option<DateTime<Utc>>) -> Result<()> {
        self.inner.state_put(ns, key, value, expires_at).await
    }

    async fn state_get(&self, ns: &str, key: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        self.inner.state_get(ns, key, now).await
    }

    async fn state_delete(&self, ns: &str, key: &str) -> Result<bool> {
        self.inner.state_delete(ns, key).await
    }

    async fn state_list(&self, ns: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<(String, String)>> {
        self.inner.state_list(ns, now, limit).await
    }

    async fn state_purge(&self, now: DateTime<Utc>) -> Result<u64> {
        self.inner.state_purge(now).await
    }

    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        self.inner.try_lease(name, holder, until, now).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.inner.release_lease(name, holder).await
    }
}

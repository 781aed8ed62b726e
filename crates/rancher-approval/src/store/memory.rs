//! An in-memory [`Store`](super::Store) for tests: same behaviour as SQLite, nothing durable.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{store_via_ops, Installation, Tx, TxBody};
use crate::audit::{AuditEntry, AuditHead};
use crate::error::Result;
use crate::grant::{Grant, GrantFilter};
use crate::request::{ApprovalRequest, RequestId, RequestState};

/// A [`Store`](super::Store) kept in memory. Operations are serialised by a mutex and roll back on error.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone)]
struct Inner {
    requests: BTreeMap<RequestId, ApprovalRequest>,
    installations: BTreeMap<String, Installation>,
    audit: Vec<AuditEntry>,
    head: AuditHead,
    cursors: BTreeMap<String, u64>,
    grants: BTreeMap<String, Grant>,
    /// Service state by (namespace, key): value and expiry in milliseconds.
    state: BTreeMap<(String, String), (String, Option<i64>)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // `write` only ever replaces the state with a completed copy, so even a lock poisoned by a panic inside
        // an operation guards consistent data.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on a copy and keeps the copy only if `f` succeeds: all or nothing, like a transaction. The body
    /// never waits (memory answers at once), so it is driven to completion right here under the lock.
    async fn write<T>(&self, f: TxBody<T>) -> Result<T> {
        let mut guard = self.lock();
        let mut work = guard.clone();
        let result = futures::executor::block_on(f(&mut work));
        if result.is_ok() {
            *guard = work;
        }
        result
    }

    async fn read<T>(&self, f: TxBody<T>) -> Result<T> {
        let mut guard = self.lock();
        futures::executor::block_on(f(&mut *guard))
    }
}

#[async_trait::async_trait]
impl Tx for Inner {
    async fn load_request(&mut self, id: &RequestId) -> Result<Option<ApprovalRequest>> {
        Ok(self.requests.get(id).cloned())
    }

    async fn save_request(&mut self, request: &ApprovalRequest) -> Result<()> {
        self.requests.insert(request.id.clone(), request.clone());
        Ok(())
    }

    async fn requests_in(&mut self, states: &[RequestState]) -> Result<Vec<ApprovalRequest>> {
        Ok(self
            .requests
            .values()
            .filter(|r| states.is_empty() || states.contains(&r.state))
            .cloned()
            .collect())
    }

    async fn load_installation(&mut self, workflow_id: &str) -> Result<Option<Installation>> {
        Ok(self.installations.get(workflow_id).cloned())
    }

    async fn save_installation(&mut self, installation: &Installation) -> Result<()> {
        self.installations
            .insert(installation.workflow_id.clone(), installation.clone());
        Ok(())
    }

    async fn installations(&mut self) -> Result<Vec<Installation>> {
        Ok(self.installations.values().cloned().collect())
    }

    async fn audit_head(&mut self) -> Result<AuditHead> {
        Ok(self.head.clone())
    }

    async fn audit_entries(&mut self) -> Result<Vec<AuditEntry>> {
        Ok(self.audit.clone())
    }

    async fn audit_for_request(&mut self, request_id: &str) -> Result<Vec<AuditEntry>> {
        Ok(self
            .audit
            .iter()
            .filter(|e| e.request_id.as_deref() == Some(request_id))
            .cloned()
            .collect())
    }

    async fn audit_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        Ok(self
            .audit
            .iter()
            .filter(|e| e.seq > after_seq)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn append_audit(&mut self, entry: &AuditEntry) -> Result<()> {
        self.audit.push(entry.clone());
        self.head = entry.head();
        Ok(())
    }

    async fn delivery_cursor(&mut self, sink: &str) -> Result<u64> {
        Ok(self.cursors.get(sink).copied().unwrap_or(0))
    }

    async fn delivery_cursors(&mut self) -> Result<Vec<(String, u64)>> {
        Ok(self.cursors.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }

    async fn set_delivery_cursor(&mut self, sink: &str, seq: u64) -> Result<()> {
        let at = self.cursors.entry(sink.to_owned()).or_insert(0);
        *at = (*at).max(seq);
        Ok(())
    }

    async fn load_grant(&mut self, id: &str) -> Result<Option<Grant>> {
        Ok(self.grants.get(id).cloned())
    }

    async fn save_grant(&mut self, grant: &Grant) -> Result<()> {
        self.grants.insert(grant.id.clone(), grant.clone());
        Ok(())
    }

    async fn grants(&mut self, filter: &GrantFilter) -> Result<Vec<Grant>> {
        Ok(self.grants.values().filter(|g| filter.matches(g)).cloned().collect())
    }

    async fn state_load(&mut self, ns: &str, key: &str) -> Result<Option<(String, Option<i64>)>> {
        Ok(self.state.get(&(ns.to_owned(), key.to_owned())).cloned())
    }

    async fn state_save(&mut self, ns: &str, key: &str, value: &str, expires_ms: Option<i64>) -> Result<()> {
        self.state
            .insert((ns.to_owned(), key.to_owned()), (value.to_owned(), expires_ms));
        Ok(())
    }

    async fn state_remove(&mut self, ns: &str, key: &str) -> Result<bool> {
        Ok(self.state.remove(&(ns.to_owned(), key.to_owned())).is_some())
    }

    async fn state_scan(&mut self, ns: &str, now_ms: i64, limit: usize) -> Result<Vec<(String, String)>> {
        Ok(self
            .state
            .range((ns.to_owned(), String::new())..)
            .take_while(|((n, _), _)| n == ns)
            .filter(|(_, (_, exp))| exp.is_none_or(|e| e > now_ms))
            .take(limit)
            .map(|((_, k), (v, _))| (k.clone(), v.clone()))
            .collect())
    }

    async fn state_purge(&mut self, now_ms: i64) -> Result<u64> {
        let before = self.state.len();
        self.state.retain(|_, (_, exp)| exp.is_none_or(|e| e > now_ms));
        Ok((before - self.state.len()) as u64)
    }
}

store_via_ops!(MemoryStore);

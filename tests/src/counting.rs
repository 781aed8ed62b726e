//! A store that counts what it reads: the stored requests and audit entries it hands out, so a test can tell a
//! bounded, indexed read from a scan without timing anything. Built on rancher-approval's [`ObservedStore`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rancher_approval::{ObservedStore, Store, StoreCall, StoreObserver};

/// Counts of what the observed store handed out.
#[derive(Default)]
struct Counts {
    rows_read: AtomicUsize,
    audit_entries_read: AtomicUsize,
}

impl StoreObserver for Counts {
    fn observe(&self, call: &StoreCall) {
        let counter = match call.operation {
            "list_requests" | "page_requests" => &self.rows_read,
            "audit_entries" | "audit_of_request" => &self.audit_entries_read,
            _ => return,
        };
        counter.fetch_add(call.rows, Ordering::SeqCst);
    }
}

/// Wraps a store; every call goes through, and the reads of requests and audit entries are counted.
pub struct CountingStore {
    store: Arc<dyn Store>,
    counts: Arc<Counts>,
}

impl CountingStore {
    /// Counts the reads of `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        let counts = Arc::new(Counts::default());
        CountingStore {
            store: ObservedStore::wrap(inner, counts.clone()),
            counts,
        }
    }

    /// The store to hand to the code under test.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Stored requests handed out by list and page reads so far.
    pub fn rows_read(&self) -> usize {
        self.counts.rows_read.load(Ordering::SeqCst)
    }

    /// Audit entries handed out so far (whole-log and per-request reads).
    pub fn audit_entries_read(&self) -> usize {
        self.counts.audit_entries_read.load(Ordering::SeqCst)
    }

    /// Starts counting afresh.
    pub fn reset(&self) {
        self.counts.rows_read.store(0, Ordering::SeqCst);
        self.counts.audit_entries_read.store(0, Ordering::SeqCst);
    }
}

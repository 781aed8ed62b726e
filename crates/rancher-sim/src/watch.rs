//! Watch streams on the RK-API, as the kube-apiserver serves them from its watch cache.
//!
//! `GET <collection>?watch=true` (or the deprecated `/watch/` path) answers `200` and keeps the connection open,
//! writing one JSON event per line as objects change: `{"type":"ADDED"|"MODIFIED"|"DELETED","object":{...}}`, the
//! object as it was right after that change. The rules, each after the Kubernetes source:
//!
//! - No `resourceVersion` (or `"0"`): the current objects first, each as `ADDED`, then the changes after them
//!   (k8s.io/apiserver `storage/cacher/watch_cache.go` `getAllEventsSinceLocked`: version 0 starts from the
//!   store's current state).
//! - `resourceVersion=N`: every change after `N`, nothing before. A version older than the kept history
//!   ([`crate::state::WATCH_HISTORY_LEN`] changes, or everything before a [`crate::SimHandle::compact_watch_history`])
//!   is not refused with an HTTP error: the answer is `200` with one `ERROR` event holding a `Status` of code 410,
//!   reason `Expired`, message `too old resource version: N (OLDEST)`, and the stream ends (`watch_cache.go`
//!   returns `errors.NewResourceExpired`; `cacher.go` `Watch` turns any such error into `newErrWatcher(err)`, "a
//!   watch event of type ERROR, rather than a directly returned error"). Clients list again and watch from the
//!   list's version.
//! - `allowWatchBookmarks=true`: now and then a `BOOKMARK` event whose object carries only `kind`, `apiVersion`
//!   and `metadata.resourceVersion`, the version up to which the stream has sent everything (`cacher.go`
//!   bookmarks; about once a minute there, [`crate::Faults::watch_bookmark_interval`] here).
//! - `timeoutSeconds=S`: the server ends the stream after `S` seconds (default 1800, the apiserver's
//!   `--min-request-timeout`); clients watch again from the last version they saw.
//! - A watcher that falls further behind than the kept history is cut (the stream ends; `cacher.go` stops a
//!   watcher whose buffer overflows), so its next watch from its last version gets the `Expired` event.
//! - The JSON stream's content type is plain `application/json` (`endpoints/handlers/watch.go`: `;stream=watch`
//!   is added to every media type but JSON), sent with chunked transfer encoding.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::auth::{Authz, Caller};
use crate::http::{k8s_status, Req, Resp};
use crate::rk::{check_field_selector, collection_allowed, field_selector_match, per_owner, write_obj, Target};
use crate::server::Shared;
use crate::state::{get_path, labels_match, s, Kind, Store};

/// The apiserver's default watch length (`--min-request-timeout`, 1800 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// The apiserver's bookmark cadence.
const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// What one watch asked for.
struct Filter {
    caller: Caller,
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
    label_sel: String,
    field_sel: String,
}

impl Filter {
    /// Whether the caller sees `obj` on this watch.
    fn wants(&self, authz: &Authz<'_>, all: bool, obj: &Value) -> bool {
        self.name.as_deref().is_none_or(|n| n == s(obj, "metadata.name"))
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| !self.kind.info().namespaced || n == s(obj, "metadata.namespace"))
            && (self.label_sel.is_empty() || labels_match(&self.label_sel, get_path(obj, "metadata.labels")))
            && (self.field_sel.is_empty() || field_selector_match(&self.field_sel, obj))
            && (all || authz.can("watch", self.kind, obj))
    }

    /// Whether every object of the kind is visible without a per-object check.
    fn all(&self, authz: &Authz<'_>) -> bool {
        authz.can_all("watch", self.kind) || (self.name.is_none() && !per_owner(self.kind))
    }

    fn event(&self, buf: &mut Vec<u8>, verb: &str, obj: &Value) {
        buf.extend_from_slice(format!("{{\"type\":\"{verb}\",\"object\":").as_bytes());
        write_obj(buf, self.kind, obj, &self.caller);
        buf.extend_from_slice(b"}\n");
    }
}

/// The `ERROR` event for a resourceVersion older than the kept history.
fn expired_event(rv: u64, oldest: u64) -> Vec<u8> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {rv} ({oldest})"),
        "reason": "Expired", "code": 410,
    });
    let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": status})).expect("in-memory JSON");
    line.push(b'\n');
    line
}

/// A `BOOKMARK` event at `rv`.
fn bookmark(kind: Kind, rv: u64) -> Vec<u8> {
    let info = kind.info();
    let obj = json!({
        "kind": info.kind_name,
        "apiVersion": format!("{}/{}", info.group, info.version),
        "metadata": {"resourceVersion": rv.to_string()},
    });
    let mut line = serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).expect("in-memory JSON");
    line.push(b'\n');
    line
}

/// Answers a watch request: checks it, then streams its events until the timeout or the client goes.
pub(crate) fn serve(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    let Some(shared) = shared.me.upgrade() else {
        return k8s_status(503, "ServiceUnavailable", "the server is shutting down", None);
    };
    let field_sel = req.q("fieldSelector").unwrap_or("").to_string();
    if let Err(r) = check_field_selector(&field_sel) {
        return r;
    }
    let since = match req.q("resourceVersion").filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => match r.parse::<u64>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return k8s_status(
                    400,
                    "BadRequest",
                    &format!("invalid resource version {r:?}: a watch resumes from a number a list or an event gave"),
                    None,
                )
            }
        },
    };
    let timeout = req
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = req.q("allowWatchBookmarks").is_some_and(|b| b == "true" || b == "1");
    let bookmark_every = shared
        .faults
        .lock()
        .expect("faults lock")
        .watch_bookmark_interval
        .unwrap_or(DEFAULT_BOOKMARK_INTERVAL)
        .max(Duration::from_millis(10));
    let filter = Filter {
        caller: caller.clone(),
        kind: t.kind,
        namespace: t.namespace.clone(),
        name: t.name.clone(),
        label_sel: req.q("labelSelector").unwrap_or("").to_string(),
        field_sel,
    };
    // The first chunk, under the same read as the starting version.
    let (first, cursor, rx, ended) = {
        let store = shared.store.read().expect("store lock");
        let authz = Authz::new(&store, caller);
        if t.name.is_none() {
            if let Err(r) = collection_allowed(&authz, "watch", t) {
                return r;
            }
        }
        let rx = store.changed.subscribe();
        let mut buf = Vec::new();
        match since {
            Some(rv) if rv < store.events_floor => (expired_event(rv, store.events_floor), rv, rx, true),
            Some(rv) => (buf, rv, rx, false),
            None => {
                let all = filter.all(&authz);
                for (_, item) in store.items(t.kind, t.namespace.as_deref(), None) {
                    let obj = item.value();
                    if filter.wants(&authz, all, &obj) {
                        filter.event(&mut buf, "ADDED", &obj);
                    }
                }
                (buf, store.rv, rx, false)
            }
        }
    };
    let now = Instant::now();
    let state = Stream {
        shared,
        filter,
        cursor,
        rx,
        first: Some(first),
        ended,
        bookmarks,
        bookmark_every,
        next_bookmark: now + bookmark_every,
        deadline: now + timeout,
    };
    let body = futures::stream::unfold(state, |mut st| async move {
        let chunk = st.next_chunk().await?;
        Some((Ok(Bytes::from(chunk)), st))
    });
    Resp::streaming(200, "application/json", Box::pin(body))
}

/// One open watch.
struct Stream {
    shared: Arc<Shared>,
    filter: Filter,
    /// Everything up to this resourceVersion has been sent.
    cursor: u64,
    rx: tokio::sync::watch::Receiver<u64>,
    first: Option<Vec<u8>>,
    ended: bool,
    bookmarks: bool,
    bookmark_every: Duration,
    next_bookmark: Instant,
    deadline: Instant,
}

impl Stream {
    /// The next chunk to send, or `None` when the stream ends.
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if let Some(first) = self.first.take().filter(|f| !f.is_empty()) {
            return Some(first);
        }
        if self.ended {
            return None;
        }
        loop {
            self.rx.borrow_and_update();
            // Rancher's controllers remove a deleted object once its finalizers are done, whether or not anyone
            // calls; the simulator does it on requests, and here for the watches that wait for it.
            let lingering = self.finish_deletions();
            let buf = {
                let shared = self.shared.clone();
                let store = shared.store.read().expect("store lock");
                match self.changes(&store) {
                    Some(buf) => buf,
                    None => {
                        // Fell behind the kept history: cut, as the apiserver cuts a watcher too slow to follow.
                        self.ended = true;
                        return None;
                    }
                }
            };
            if !buf.is_empty() {
                return Some(buf);
            }
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = tokio::time::sleep_until(self.next_bookmark), if self.bookmarks => {
                    self.next_bookmark = Instant::now() + self.bookmark_every;
                    return Some(bookmark(self.filter.kind, self.cursor));
                }
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = tokio::time::sleep(Duration::from_millis(50)), if lingering => {}
            }
        }
    }

    /// Removes the deleted objects whose finalizers are due; true while others still linger.
    fn finish_deletions(&self) -> bool {
        if self.shared.store.read().expect("store lock").terminating.is_empty() {
            return false;
        }
        let mut store = self.shared.store.write().expect("store lock");
        store.purge_terminating();
        !store.terminating.is_empty()
    }

    /// The events after the cursor this watch wants (the cursor moves to the store's version), or `None` when some
    /// of them are no longer kept.
    fn changes(&mut self, store: &Store) -> Option<Vec<u8>> {
        if self.cursor < store.events_floor {
            return None;
        }
        let authz = Authz::new(store, &self.filter.caller);
        let all = self.filter.all(&authz);
        let start = store.events.partition_point(|e| e.rv <= self.cursor);
        let mut buf = Vec::new();
        for e in store.events.range(start..) {
            if e.kind == self.filter.kind && self.filter.wants(&authz, all, &e.object) {
                self.filter.event(&mut buf, e.verb, &e.object);
            }
        }
        self.cursor = self.cursor.max(store.rv);
        Some(buf)
    }
}

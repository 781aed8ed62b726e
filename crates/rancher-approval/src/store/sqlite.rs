//! The embedded default store: SQLite in one file.
//!
//! # Durability and concurrency
//!
//! - The file is in WAL mode. By default `synchronous=FULL`: every commit syncs the write-ahead log before the
//!   call returns, so a decision that was acknowledged survives a process crash *and* a power loss.
//!   [`Synchronous::Normal`] is faster but may lose the last commits on a power loss (never on a process crash).
//!   FULL costs one fsync per decision, so its rate is the disk's fsync rate: the `store_decisions` example (release
//!   build) measured 2,400 decisions/s on this project's build machine when the disk was quiet and 330-360/s while
//!   other builds were writing; NORMAL measured 4,000-4,600/s either way.
//! - Every operation is one transaction that writes the state change and its audit entry together.
//!   Read-modify-write operations start with `BEGIN IMMEDIATE`, which takes the write lock first: two connections
//!   (two processes, or two [`SqliteStore`]s on one file) cannot both read `approved` and both claim the
//!   execution. A connection waits up to the busy timeout for the lock.
//! - The audit table refuses `UPDATE` and `DELETE` (triggers), and the head of the chain is kept in its own table,
//!   so a truncated log is detected by [`Store::verify_audit`](super::Store::verify_audit).
//! - The schema version is `PRAGMA user_version` ([`SCHEMA_VERSION`]); the file is marked with an
//!   `application_id`. A file that is not an SQLite database, is some other application's database, or has a
//!   newer schema is refused with a clear error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::group::{Deliver, Job, Queued};
use super::{audit_entry, decode, encode, page_query, store_via_ops, Installation, RequestFilter, Tx, TxBody};
use crate::audit::{format_time, AuditEntry, AuditHead};
use crate::error::{Error, Result};
use crate::grant::{Grant, GrantFilter};
use crate::request::{ApprovalRequest, RequestId, RequestState};

/// The schema version this build writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// `PRAGMA application_id` of our files: "RAPP".
const APPLICATION_ID: i64 = 0x5241_5050;

const SCHEMA: &str = r#"
CREATE TABLE requests (
    id          TEXT PRIMARY KEY NOT NULL,
    workflow_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    requester   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX requests_by_state ON requests (state, id);
CREATE TABLE installations (
    workflow_id TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL
);
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY NOT NULL,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    request_id  TEXT,
    workflow_id TEXT,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// Version 2: the audit entries of one request are found by index (execution checks them), the head only moves
/// forward, and webhook delivery cursors.
const SCHEMA_V2: &str = r#"
CREATE INDEX audit_by_request ON audit (request_id, seq);
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.seq <= OLD.seq
    BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    BEGIN SELECT RAISE(ABORT, 'the audit head cannot be removed'); END;
CREATE TABLE delivery_cursors (
    sink TEXT PRIMARY KEY NOT NULL,
    seq  INTEGER NOT NULL
);
"#;

/// Version 3: time-bound grants, recorded with the execution that made them; open ones are found by due time.
const SCHEMA_V3: &str = r#"
CREATE TABLE grants (
    id          TEXT PRIMARY KEY NOT NULL,
    workflow_id TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    revoked     INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX grants_open ON grants (revoked, due_at);
"#;

/// Version 4: the service's working state (web sessions, dead letters, leases), not audited; expiry in
/// milliseconds since the epoch.
const SCHEMA_V4: &str = r#"
CREATE TABLE service_state (
    ns         TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_ms INTEGER,
    PRIMARY KEY (ns, key)
);
CREATE INDEX service_state_expiry ON service_state (expires_ms) WHERE expires_ms IS NOT NULL;
"#;

/// SQLite's `synchronous` setting for the store (always in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Sync the log on every commit: acknowledged changes survive a power loss. The default.
    #[default]
    Full,
    /// Sync at checkpoints only: acknowledged changes survive a process crash, a power loss may lose the last few.
    Normal,
}

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of commits (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// How long to wait for another connection's write lock (default 10 s).
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The embedded [`Store`](super::Store): one SQLite file. Open several on one file (or one per process) freely.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Writes waiting for the next group commit (see [`SqliteStore::write`]).
    queue: Arc<Mutex<Vec<Box<dyn Job>>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase)
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the store at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let not_db = |e: rusqlite::Error| {
            if is_not_a_database(&e) {
                Error::NotADatabase {
                    path: path.clone(),
                    source: Some(e),
                }
            } else {
                Error::from(e)
            }
        };
        create_private(&path)?;
        let mut conn = Connection::open(&path).map_err(not_db)?;
        conn.busy_timeout(options.busy_timeout)?;
        // The first read of the header tells a non-database file apart.
        conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))
            .map_err(not_db)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(not_db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "approval store could not switch to WAL mode");
        }
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let app: i64 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if app != 0 && app != APPLICATION_ID {
            return Err(Error::NotADatabase { path, source: None });
        }
        if version == 0 {
            let tables: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Err(Error::NotADatabase { path, source: None });
            }
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_V3)?;
        }
        if version < 4 {
            tx.execute_batch(SCHEMA_V4)?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
            queue: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the store to `dest`, a new file created owner-only, while the store stays in
    /// use (SQLite's `VACUUM INTO`: one read snapshot, so writers in this or other processes carry on and the copy
    /// holds exactly the transactions committed before it began). An existing `dest` is never overwritten.
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_path_buf();
        self.blocking(move |conn| {
            let refused = |problem: String| Error::BackupTarget {
                path: dest.clone(),
                problem,
            };
            create_new_private(&dest).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => refused("the file exists (a backup never overwrites)".into()),
                _ => refused(e.to_string()),
            })?;
            let name = dest.to_str().ok_or_else(|| refused("the path is not UTF-8".into()))?;
            if let Err(e) = conn.execute("VACUUM INTO ?1", [name]) {
                let _ = std::fs::remove_file(&dest);
                return Err(refused(e.to_string()));
            }
            Ok(())
        })
        .await
    }

    #[cfg(test)]
    fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Runs `job` on the connection on tokio's blocking threads, so the file I/O (and the fsync of each commit)
    /// never holds up the async threads. A panic in `job` is passed on to the caller.
    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = lock(&conn);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
            if !conn.is_autocommit() {
                // A transaction abandoned by a panic (or a failed COMMIT): release the write lock at once.
                let _ = conn.execute_batch("ROLLBACK");
            }
            result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Stopped),
        }
    }

    /// One transaction of `begin` kind around `f`, committed only if `f` succeeds (and `commit` is set). The
    /// body's futures never wait (SQLite answers synchronously), so `block_on` drives them on the blocking thread.
    async fn transaction<T: Send + 'static>(&self, begin: &'static str, commit: bool, f: TxBody<T>) -> Result<T> {
        self.blocking(move |conn| {
            conn.execute_batch(begin)?;
            match futures::executor::block_on(f(&mut Sql(conn))) {
                Ok(value) if commit => {
                    conn.execute_batch("COMMIT")?;
                    Ok(value)
                }
                other => {
                    conn.execute_batch("ROLLBACK")?;
                    other
                }
            }
        })
        .await
    }

    /// One read-modify-write, committed only if `f` succeeds, by group commit ([`super::group`]): the write is
    /// queued, and whichever blocking task holds the connection next runs every queued write in one
    /// `BEGIN IMMEDIATE` transaction, each under its own savepoint, and commits once.
    async fn write<T: Send + 'static>(&self, f: TxBody<T>) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        lock(&self.queue).push(Box::new(Queued { body: f, reply }));
        let queue = Arc::clone(&self.queue);
        self.blocking(move |conn| {
            let jobs = std::mem::take(&mut *lock(&queue));
            if !jobs.is_empty() {
                commit_batch(conn, jobs);
            }
            Ok(())
        })
        .await?;
        answer.await.unwrap_or_else(|_| Err(Error::Stopped))
    }

    /// One read transaction: a consistent snapshot.
    async fn read<T: Send + 'static>(&self, f: TxBody<T>) -> Result<T> {
        self.transaction("BEGIN DEFERRED", false, f).await
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // `blocking` rolls back a transaction a panic left open before it releases the lock.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `jobs` in one transaction, each under a savepoint (a failed one is rolled back alone), commits once, and
/// answers each: its own result once committed, or the error that kept the transaction from committing. A body
/// that panics is passed on to the caller of this batch after the others were answered with an error.
fn commit_batch(conn: &mut Connection, jobs: Vec<Box<dyn Job>>) {
    // Each caller gets its own copy of the error that stopped the batch (`rusqlite::Error` is not `Clone`).
    let each = |e: &rusqlite::Error| Error::Storage { source: copy_error(e) };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        jobs.into_iter().for_each(|job| job.fail(each(&e)));
        return;
    }
    let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
    let mut broken: Option<rusqlite::Error> = None;
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        if let Err(e) = conn.execute_batch("SAVEPOINT rancher_approval_write") {
            job.fail(each(&e));
            broken = Some(e);
            break;
        }
        let (ok, deliver) = futures::executor::block_on(job.run(&mut Sql(conn)));
        delivers.push(deliver);
        let end = if ok {
            "RELEASE rancher_approval_write"
        } else {
            "ROLLBACK TO rancher_approval_write; RELEASE rancher_approval_write"
        };
        if let Err(e) = conn.execute_batch(end) {
            broken = Some(e);
            break;
        }
    }
    let outcome = match broken {
        None => conn.execute_batch("COMMIT"),
        Some(e) => Err(e),
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    match outcome {
        Ok(()) => delivers.into_iter().for_each(|d| d(None)),
        Err(e) => {
            delivers.into_iter().for_each(|d| d(Some(each(&e))));
            jobs.for_each(|job| job.fail(each(&e)));
        }
    }
}

/// The same SQLite failure (code and message), for one more caller.
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => rusqlite::Error::SqliteFailure(*code, message.clone()),
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

store_via_ops!(SqliteStore);

/// Creates the file readable and writable by its owner only (0600) when it does not exist yet, so the store is
/// never briefly open to others; SQLite gives its `-wal` and `-shm` files the same mode.
/// Creates `path` as a new file only its owner may read and write; fails when it exists.
fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn create_private(path: &Path) -> Result<()> {
    match create_new_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// [`Tx`] over a connection inside an open transaction.
struct Sql<'c>(&'c mut Connection);

impl Sql<'_> {
    fn entries<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            entries.push(audit_entry(row?)?);
        }
        Ok(entries)
    }

    fn bodies<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<String>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[async_trait::async_trait]
impl Tx for Sql<'_> {
    async fn load_request(&mut self, id: &RequestId) -> Result<Option<ApprovalRequest>> {
        let mut stmt = self.0.prepare_cached("SELECT body FROM requests WHERE id = ?1")?;
        let body: Option<String> = stmt.query_row([id.as_str()], |r| r.get(0)).optional()?;
        body.map(|b| decode(|| format!("approval request {id}"), &b))
            .transpose()
    }

    async fn save_request(&mut self, r: &ApprovalRequest) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO requests (id, workflow_id, state, requester, created_at, expires_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body",
        )?;
        stmt.execute(params![
            r.id.as_str(),
            r.workflow_id,
            r.state.as_str(),
            r.requester.id,
            format_time(r.created_at),
            format_time(r.expires_at),
            encode(r),
        ])?;
        Ok(())
    }

    async fn requests_in(&mut self, states: &[RequestState]) -> Result<Vec<ApprovalRequest>> {
        let bodies = if states.is_empty() {
            self.bodies("SELECT body FROM requests ORDER BY id", [])?
        } else {
            let marks = vec!["?"; states.len()].join(", ");
            let sql = format!("SELECT body FROM requests WHERE state IN ({marks}) ORDER BY id");
            self.bodies(&sql, rusqlite::params_from_iter(states.iter().map(|s| s.as_str())))?
        };
        bodies.iter().map(|b| decode(|| "approval request".into(), b)).collect()
    }

    async fn request_counts(&mut self) -> Result<Vec<(RequestState, u64)>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT state, count(*) FROM requests GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (state, n) = row?;
            out.push((
                state.parse::<RequestState>().map_err(|e| Error::Corrupt {
                    what: format!("request state `{state}`"),
                    source: e.into(),
                })?,
                n.max(0) as u64,
            ));
        }
        Ok(out)
    }

    async fn requests_page(
        &mut self,
        filter: &RequestFilter,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ApprovalRequest>> {
        let (sql, args) = page_query(filter, before, limit, |_| "?".to_string());
        let bodies = self.bodies(&sql, rusqlite::params_from_iter(args.iter()))?;
        bodies.iter().map(|b| decode(|| "approval request".into(), b)).collect()
    }

    async fn load_installation(&mut self, workflow_id: &str) -> Result<Option<Installation>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT body FROM installations WHERE workflow_id = ?1")?;
        let body: Option<String> = stmt.query_row([workflow_id], |r| r.get(0)).optional()?;
        body.map(|b| decode(|| format!("installation of {workflow_id}"), &b))
            .transpose()
    }

    async fn save_installation(&mut self, i: &Installation) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO installations (workflow_id, body) VALUES (?1, ?2)
             ON CONFLICT (workflow_id) DO UPDATE SET body = excluded.body",
        )?;
        stmt.execute(params![i.workflow_id, encode(i)])?;
        Ok(())
    }

    async fn installations(&mut self) -> Result<Vec<Installation>> {
        let bodies = self.bodies("SELECT body FROM installations ORDER BY workflow_id", [])?;
        bodies.iter().map(|b| decode(|| "installation".into(), b)).collect()
    }

    async fn audit_head(&mut self) -> Result<AuditHead> {
        let mut stmt = self.0.prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?;
        let head = stmt
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()?;
        Ok(head.map_or_else(AuditHead::genesis, |(seq, hash)| AuditHead {
            seq: seq.max(0) as u64,
            hash,
        }))
    }

    async fn audit_entries(&mut self) -> Result<Vec<AuditEntry>> {
        self.entries(
            "SELECT seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash FROM audit ORDER BY seq",
            [],
        )
    }

    async fn audit_for_request(&mut self, request_id: &str) -> Result<Vec<AuditEntry>> {
        self.entries(
            "SELECT seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash FROM audit WHERE request_id = ?1 ORDER BY seq",
            [request_id],
        )
    }

    async fn audit_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.entries(
            "SELECT seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after_seq as i64, limit.min(i64::MAX as usize) as i64],
        )
    }

    async fn delivery_cursor(&mut self, sink: &str) -> Result<u64> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT seq FROM delivery_cursors WHERE sink = ?1")?;
        let seq: Option<i64> = stmt.query_row([sink], |r| r.get(0)).optional()?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    async fn delivery_cursors(&mut self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT sink, seq FROM delivery_cursors ORDER BY sink")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    async fn set_delivery_cursor(&mut self, sink: &str, seq: u64) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO delivery_cursors (sink, seq) VALUES (?1, ?2)
             ON CONFLICT (sink) DO UPDATE SET seq = max(seq, excluded.seq)",
        )?;
        stmt.execute(params![sink, seq as i64])?;
        Ok(())
    }

    async fn load_grant(&mut self, id: &str) -> Result<Option<Grant>> {
        let mut stmt = self.0.prepare_cached("SELECT body FROM grants WHERE id = ?1")?;
        let body: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
        body.map(|b| decode(|| format!("grant {id}"), &b)).transpose()
    }

    async fn save_grant(&mut self, g: &Grant) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO grants (id, workflow_id, due_at, revoked, body) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, revoked = excluded.revoked, body = excluded.body",
        )?;
        stmt.execute(params![
            g.id,
            g.workflow_id,
            format_time(g.ends_at()),
            g.revocation.is_some() as i64,
            encode(g)
        ])?;
        Ok(())
    }

    async fn grants(&mut self, filter: &GrantFilter) -> Result<Vec<Grant>> {
        let sql = if filter.unrevoked || filter.due_by.is_some() {
            "SELECT body FROM grants WHERE revoked = 0 ORDER BY id"
        } else {
            "SELECT body FROM grants ORDER BY id"
        };
        let mut out = Vec::new();
        for b in self.bodies(sql, [])? {
            let g: Grant = decode(|| "grant".into(), &b)?;
            if filter.matches(&g) {
                out.push(g);
            }
        }
        Ok(out)
    }

    async fn state_load(&mut self, ns: &str, key: &str) -> Result<Option<(String, Option<i64>)>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT value, expires_ms FROM service_state WHERE ns = ?1 AND key = ?2")?;
        Ok(stmt.query_row([ns, key], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }

    async fn state_save(&mut self, ns: &str, key: &str, value: &str, expires_ms: Option<i64>) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO service_state (ns, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms",
        )?;
        stmt.execute(params![ns, key, value, expires_ms])?;
        Ok(())
    }

    async fn state_remove(&mut self, ns: &str, key: &str) -> Result<bool> {
        let mut stmt = self
            .0
            .prepare_cached("DELETE FROM service_state WHERE ns = ?1 AND key = ?2")?;
        Ok(stmt.execute([ns, key])? > 0)
    }

    async fn state_scan(&mut self, ns: &str, now_ms: i64, limit: usize) -> Result<Vec<(String, String)>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT key, value FROM service_state WHERE ns = ?1 AND (expires_ms IS NULL OR expires_ms > ?2) ORDER BY key LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![ns, now_ms, limit.min(i64::MAX as usize) as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    async fn state_purge(&mut self, now_ms: i64) -> Result<u64> {
        let mut stmt = self
            .0
            .prepare_cached("DELETE FROM service_state WHERE expires_ms IS NOT NULL AND expires_ms <= ?1")?;
        Ok(stmt.execute([now_ms])? as u64)
    }

    async fn append_audit(&mut self, e: &AuditEntry) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO audit (seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        stmt.execute(params![
            e.seq as i64,
            format_time(e.at),
            e.actor,
            e.kind.as_str(),
            e.request_id,
            e.workflow_id,
            encode(&e.detail),
            e.prev_hash,
            e.hash,
        ])?;
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )?;
        stmt.execute(params![e.seq as i64, e.hash])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod audit_pin;

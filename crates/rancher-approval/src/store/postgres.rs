//! The PostgreSQL store: several service replicas on one database.
//!
//! # Guarantees across replicas
//!
//! - Every operation is one transaction (`READ COMMITTED`) that writes the state change and its audit entry
//!   together; reads run in one `REPEATABLE READ READ ONLY` snapshot.
//! - A request read in a write transaction is locked (`SELECT ... FOR UPDATE`) until commit, and written back with
//!   one conditional update (`UPDATE ... WHERE id = $1 AND state = <the state read>`): of two replicas claiming
//!   the same approved request, exactly one moves it from `approved` to `executing`.
//! - Audit appends lock the head row (`FOR UPDATE`) before computing the next entry, so the hash chain stays one
//!   linear chain whatever the number of writers. The audit table refuses `UPDATE`, `DELETE` and `TRUNCATE`, and
//!   the head only moves forward (triggers), as in the SQLite store.
//! - Commits are durable when the server's `synchronous_commit` is `on` (PostgreSQL's default).
//! - **One clock.** With [`Clock::Database`] (the default) every write transaction takes its time from the
//!   database (`transaction_timestamp()`) instead of the caller's `now`, so expiry and leases are judged by one
//!   clock for all replicas; a lease end the caller asked for keeps its length (`lease_until - now`) and is moved
//!   onto the database's clock. [`Clock::Caller`] keeps the caller's time (tests).
//!
//! # Schema and migrations
//!
//! Versioned migrations run when a store connects, inside one transaction holding an advisory lock, so replicas
//! starting together do not race; the version is kept in `rancher_approval_schema`. A database written by a newer
//! version is refused ([`crate::Error::DatabaseSchemaTooNew`]).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::IsolationLevel;

use super::group::{Job, Queued, Deliver};
use super::{audit_entry, decode, encode, page_query, store_via_ops, Installation, RequestFilter, Tx, TxBody};
use crate::audit::{format_time, AuditEntry, AuditHead, GENESIS_HASH};
use crate::error::{Error, Result};
use crate::grant::{Grant, GrantFilter};
use crate::request::{ApprovalRequest, RequestId, RequestState};

/// The newest schema version of the PostgreSQL store this build writes and reads.
pub const POSTGRES_SCHEMA_VERSION: i64 = 2;

/// The advisory lock held while migrating ("RAPP" in ASCII).
const MIGRATION_LOCK: i64 = 0x5241_5050;

/// The migrations, in order: version and SQL.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2)];

/// Version 2: time-bound grants, recorded with the execution that made them; open ones are found by due time.
const V2: &str = r#"
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    revoked     BOOLEAN NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX grants_open ON grants (revoked, due_at);
"#;

const V1: &str = r#"
CREATE TABLE requests (
    id          TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    requester   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX requests_by_state ON requests (state, id);
CREATE TABLE installations (
    workflow_id TEXT PRIMARY KEY,
    body        TEXT NOT NULL
);
CREATE TABLE audit (
    seq         BIGINT PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    request_id  TEXT,
    workflow_id TEXT,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_by_request ON audit (request_id, seq);
CREATE TABLE audit_head (
    id   INT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE delivery_cursors (
    sink TEXT PRIMARY KEY,
    seq  BIGINT NOT NULL
);
CREATE FUNCTION rancher_approval_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION rancher_approval_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION rancher_approval_audit_append_only();
CREATE FUNCTION rancher_approval_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'the audit head cannot be removed';
    END IF;
    IF NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'the audit head only moves forward';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION rancher_approval_head_forward();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION rancher_approval_head_forward();
"#;

/// Whose clock dates changes in a [`PostgresStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The database's (`transaction_timestamp()`): one clock for every replica. The default.
    #[default]
    Database,
    /// The `now` each caller passes (tests that control time).
    Caller,
}

/// How to open a [`PostgresStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Whose clock dates changes (default [`Clock::Database`]).
    pub clock: Clock,
    /// Most connections the pool opens (default 16).
    pub max_connections: usize,
    /// How long to wait for a connection when the URL names no `connect_timeout` (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { clock: Clock::Database, max_connections: 16, connect_timeout: Duration::from_secs(10) }
    }
}

/// The [`Store`](super::Store) for several replicas: one PostgreSQL database, reached through a connection pool.
pub struct PostgresStore {
    pool: Pool,
    clock: Clock,
    name: String,
    /// The group-commit writer's queue (see [`PostgresStore::write`]).
    writes: tokio::sync::mpsc::Sender<Box<dyn Job>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("database", &self.name).field("clock", &self.clock).finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=..]`, or
    /// `postgres://USER@/DATABASE?host=/run/postgresql` for a unix socket) and migrates it to this build's schema.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`PostgresStore::connect`] with options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self> {
        let target = PostgresUrl::parse(url)?;
        let mut config = target.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let name = describe(&config);
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(target.root_cert.as_deref(), url)?);
        let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| Error::Postgres { problem: e.to_string() })?;
        let (writes, queue) = tokio::sync::mpsc::channel(MAX_BATCH * 4);
        let store = Self { pool, clock: options.clock, name, writes };
        let mut client = store.pool.get().await.map_err(|e| store.unreachable(e))?;
        migrate(&mut client, &store.name).await?;
        tokio::spawn(group_commit(Batcher { pool: store.pool.clone(), clock: store.clock, name: store.name.clone() }, queue));
        Ok(store)
    }

    /// Which database this is (user, host, name; never the password).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn unreachable(&self, e: deadpool_postgres::PoolError) -> Error {
        let problem = match e {
            deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => source_chain(&e),
            },
            other => other.to_string(),
        };
        Error::StoreUnreachable { store: self.name.clone(), problem }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| self.unreachable(e))
    }

    /// One read-modify-write, committed only if `f` succeeds, by group commit: writes that arrive while another
    /// batch commits run together in the next transaction, each under its own savepoint (a body that fails is
    /// rolled back alone), and are answered only after that transaction committed. Every write serializes on the
    /// audit head's row lock anyway, so one transaction per write would pay one WAL flush each; a batch pays one.
    async fn write<T: Send + 'static>(&self, f: TxBody<T>) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Box<dyn Job> = Box::new(Queued { body: f, reply });
        if let Err(tokio::sync::mpsc::error::SendError(job)) = self.writes.send(job).await {
            // The writer's runtime is gone (the store outlived the runtime that opened it): a batch of one, here.
            Batcher { pool: self.pool.clone(), clock: self.clock, name: self.name.clone() }.run(vec![job]).await;
        }
        answer.await.unwrap_or_else(|_| Err(Error::Postgres { problem: "the store's writer stopped before answering; nothing was committed for this change".into() }))
    }

    /// One read transaction: a consistent snapshot.
    async fn read<T: Send + 'static>(&self, f: TxBody<T>) -> Result<T> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let mut pg = Pg::new(tx, false, self.clock);
        let value = f(&mut pg).await;
        pg.tx.rollback().await?;
        value
    }
}

store_via_ops!(PostgresStore);

/// The most writes one group commit takes.
const MAX_BATCH: usize = 64;

/// What the group-commit writer needs to open transactions.
struct Batcher {
    pool: Pool,
    clock: Clock,
    name: String,
}

/// The writer task: takes the first queued write and every other already waiting (up to [`MAX_BATCH`]), commits
/// them in one transaction, and goes on until the store is dropped.
async fn group_commit(batcher: Batcher, mut queue: tokio::sync::mpsc::Receiver<Box<dyn Job>>) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        batcher.run(jobs).await;
    }
}

impl Batcher {
    /// One transaction for `jobs`, each under a savepoint; every job is answered exactly once.
    async fn run(&self, jobs: Vec<Box<dyn Job>>) {
        let failed = |problem: &str| Error::Postgres { problem: problem.to_owned() };
        let mut client = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                let problem = Error::from(e).to_string();
                for job in jobs {
                    job.fail(Error::StoreUnreachable { store: self.name.clone(), problem: problem.clone() });
                }
                return;
            }
        };
        let mut tx = match client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().await {
            Ok(tx) => tx,
            Err(e) => {
                let problem = Error::from(e).to_string();
                for job in jobs {
                    job.fail(failed(&problem));
                }
                return;
            }
        };
        let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
        // The audit head first: every write appends to the log, so batches (from every replica) take turns on
        // this one row before they lock any request, and two batches can never wait on each other's requests. The
        // batch then carries the head (and, on the database's clock, the transaction's time) from write to write,
        // and writes the head back once.
        let start = async {
            let row = tx.query_opt("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", &[]).await?;
            let head = row.map_or_else(AuditHead::genesis, |r| AuditHead { seq: r.get::<_, i64>(0).max(0) as u64, hash: r.get(1) });
            let now: Option<DateTime<Utc>> = match self.clock {
                Clock::Database => Some(tx.query_one("SELECT transaction_timestamp()", &[]).await?.get(0)),
                Clock::Caller => None,
            };
            Ok::<_, tokio_postgres::Error>((head, now))
        };
        let (mut head, now) = match start.await {
            Ok(x) => x,
            Err(e) => {
                let problem = Error::from(e).to_string();
                jobs.into_iter().for_each(|job| job.fail(failed(&problem)));
                return;
            }
        };
        let first_seq = head.seq;
        let mut broken: Option<String> = None;
        let mut jobs = jobs.into_iter();
        for job in jobs.by_ref() {
            let savepoint = match tx.savepoint("rancher_approval_write").await {
                Ok(sp) => sp,
                Err(e) => {
                    broken = Some(Error::from(e).to_string());
                    job.fail(failed(broken.as_deref().unwrap_or_default()));
                    break;
                }
            };
            let mut pg = Pg::new(savepoint, true, self.clock);
            pg.head = Some(head.clone());
            pg.now = now;
            // A body that panics is rolled back alone (its caller learns the write failed); the writer goes on.
            let ran = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(job.run(&mut pg))).await;
            let (ok, deliver) = ran.unwrap_or_else(|_| (false, Box::new(|_| {})));
            delivers.push(deliver);
            let moved = pg.head.take();
            let ended = if ok { pg.tx.commit().await } else { pg.tx.rollback().await };
            if let Err(e) = ended {
                broken = Some(Error::from(e).to_string());
                break;
            }
            if ok {
                head = moved.unwrap_or(head);
            }
        }
        if broken.is_none() && head.seq != first_seq {
            let seq = head.seq as i64;
            if let Err(e) = tx.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", &[&seq, &head.hash]).await {
                broken = Some(Error::from(e).to_string());
            }
        }
        let outcome = match broken {
            None => tx.commit().await.map_err(|e| Error::from(e).to_string()),
            Some(problem) => {
                let _ = tx.rollback().await;
                Err(problem)
            }
        };
        match outcome {
            Ok(()) => delivers.into_iter().for_each(|d| d(None)),
            Err(problem) => {
                delivers.into_iter().for_each(|d| d(Some(failed(&problem))));
                jobs.for_each(|job| job.fail(failed(&problem)));
            }
        }
    }
}

/// A parsed PostgreSQL store URL: the driver's configuration plus our own `sslrootcert`.
pub(crate) struct PostgresUrl {
    pub(crate) config: tokio_postgres::Config,
    root_cert: Option<String>,
}

impl PostgresUrl {
    /// Parses a libpq-style URL. `sslmode` may be `disable`, `prefer`, `require`, `verify-ca` or `verify-full`
    /// (with rustls every TLS connection checks the server's certificate, so the last three are the same);
    /// `sslrootcert=PATH` adds a CA (PEM) to the system's roots.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let bad = |problem: String| Error::BadStoreUrl { url: redact_url(url), problem };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad("it does not start with postgres:// or postgresql://".into()));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut root_cert = None;
        let mut kept = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match (key.as_ref(), value.as_ref()) {
                ("sslrootcert", path) => root_cert = Some(path.to_owned()),
                ("sslmode", "verify-ca" | "verify-full") => {
                    kept.append_pair(&key, "require");
                }
                _ => {
                    kept.append_pair(&key, &value);
                }
            }
        }
        let kept = kept.finish();
        let cleaned = if kept.is_empty() { base.to_owned() } else { format!("{base}?{kept}") };
        let config = tokio_postgres::Config::from_str(&cleaned).map_err(|e| bad(source_chain(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(bad("it names no host (give one, or `?host=/path/to/socket/dir`)".into()));
        }
        if config.get_dbname().is_none() {
            return Err(bad("it names no database (add `/DATABASE` after the host)".into()));
        }
        Ok(Self { config, root_cert })
    }
}

/// The URL with any password (in the user part or a `password=` parameter) replaced by `***`, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _)) => format!("{name}:***@{host}"),
                    None => format!("{user}@{host}"),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{out}?{}", pairs.join("&"));
    }
    out
}

/// "database D on HOST:PORT as USER".
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            match h {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                tokio_postgres::config::Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    format!(
        "`{}` on {} as {}",
        config.get_dbname().unwrap_or("?"),
        hosts.join(","),
        config.get_user().unwrap_or("the current user")
    )
}

/// An error's message followed by its sources' (the driver's `Display` often leaves out the cause).
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

fn tls_config(root_cert: Option<&str>, url: &str) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = root_cert {
        let bad = |problem: String| Error::BadStoreUrl { url: redact_url(url), problem };
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("sslrootcert {path} cannot be read ({e})")))?;
        for cert in certs {
            let cert = cert.map_err(|e| bad(format!("sslrootcert {path} is not PEM ({e})")))?;
            roots.add(cert).map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Postgres { problem: e.to_string() })
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// Brings the database to [`POSTGRES_SCHEMA_VERSION`] under an advisory lock, or refuses a newer one.
async fn migrate(client: &mut deadpool_postgres::Object, name: &str) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS rancher_approval_schema (
             id      INT PRIMARY KEY CHECK (id = 1),
             version BIGINT NOT NULL
         )",
    )
    .await?;
    let found: i64 = tx
        .query_opt("SELECT version FROM rancher_approval_schema WHERE id = 1", &[])
        .await?
        .map_or(0, |r| r.get(0));
    if found > POSTGRES_SCHEMA_VERSION {
        return Err(Error::DatabaseSchemaTooNew {
            store: name.to_owned(),
            found,
            supported: POSTGRES_SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await?;
        if *version == 1 {
            tx.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1)", &[&GENESIS_HASH]).await?;
        }
        tracing::info!(database = name, version, "approval store schema migrated");
    }
    tx.execute(
        "INSERT INTO rancher_approval_schema (id, version) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        &[&POSTGRES_SCHEMA_VERSION.max(found)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// [`Tx`] over one PostgreSQL transaction.
struct Pg<'c> {
    tx: deadpool_postgres::Transaction<'c>,
    /// A write transaction locks what it reads.
    write: bool,
    clock: Clock,
    /// The database's time, read once per transaction.
    now: Option<DateTime<Utc>>,
    /// The state each request had when this transaction read (and locked) it; `None`: it did not exist.
    requests: HashMap<String, Option<RequestState>>,
    /// Whether each installation read existed.
    installations: HashMap<String, bool>,
    /// In a group commit: the audit head as the batch knows it (locked at the batch's start, written back once
    /// before its commit), so a write neither reads nor updates the head row itself.
    head: Option<AuditHead>,
}

impl<'c> Pg<'c> {
    fn new(tx: deadpool_postgres::Transaction<'c>, write: bool, clock: Clock) -> Self {
        Self { tx, write, clock, now: None, requests: HashMap::new(), installations: HashMap::new(), head: None }
    }

    /// `sql`, with ` FOR UPDATE` appended in a write transaction.
    fn locking(&self, sql: &str) -> String {
        if self.write {
            format!("{sql} FOR UPDATE")
        } else {
            sql.to_owned()
        }
    }

    async fn requests(&mut self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<Vec<ApprovalRequest>> {
        let stmt = self.tx.prepare_cached(&self.locking(sql)).await?;
        let rows = self.tx.query(&stmt, params).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, state, body): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            self.requests.insert(id.clone(), state.parse::<RequestState>().ok());
            out.push(decode(|| format!("approval request {id}"), &body)?);
        }
        Ok(out)
    }

    async fn entries(&mut self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<Vec<AuditEntry>> {
        let stmt = self.tx.prepare_cached(sql).await?;
        let rows = self.tx.query(&stmt, params).await?;
        rows.iter()
            .map(|r| audit_entry((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8))))
            .collect()
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

const ENTRY_COLUMNS: &str = "seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash";

#[async_trait::async_trait]
impl Tx for Pg<'_> {
    async fn clock(&mut self, caller_now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        if self.clock == Clock::Caller {
            return Ok(caller_now);
        }
        if let Some(now) = self.now {
            return Ok(now);
        }
        let now: DateTime<Utc> = self.tx.query_one("SELECT transaction_timestamp()", &[]).await?.get(0);
        self.now = Some(now);
        Ok(now)
    }

    async fn load_request(&mut self, id: &RequestId) -> Result<Option<ApprovalRequest>> {
        let found = self.requests("SELECT id, state, body FROM requests WHERE id = $1", &[&id.as_str()]).await?;
        if found.is_empty() {
            self.requests.insert(id.to_string(), None);
        }
        Ok(found.into_iter().next())
    }

    async fn save_request(&mut self, r: &ApprovalRequest) -> Result<()> {
        let body = encode(r);
        match self.requests.get(r.id.as_str()).copied().flatten() {
            Some(read) => {
                // The conditional update: it applies only if nobody moved the request since this transaction read it.
                let stmt = self.tx.prepare_cached("UPDATE requests SET state = $2, body = $3 WHERE id = $1 AND state = $4").await?;
                let n = self.tx.execute(&stmt, &[&r.id.as_str(), &r.state.as_str(), &body, &read.as_str()]).await?;
                if n != 1 {
                    return Err(Error::Conflict { id: r.id.to_string() });
                }
            }
            None => {
                let stmt = self
                    .tx
                    .prepare_cached(
                        "INSERT INTO requests (id, workflow_id, state, requester, created_at, expires_at, body)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .await?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                    &r.id.as_str(),
                    &r.workflow_id,
                    &r.state.as_str(),
                    &r.requester.id,
                    &format_time(r.created_at),
                    &format_time(r.expires_at),
                    &body,
                ];
                self.tx.execute(&stmt, &params).await.map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::Conflict { id: r.id.to_string() }
                    } else {
                        e.into()
                    }
                })?;
            }
        }
        self.requests.insert(r.id.to_string(), Some(r.state));
        Ok(())
    }

    async fn requests_in(&mut self, states: &[RequestState]) -> Result<Vec<ApprovalRequest>> {
        if states.is_empty() {
            self.requests("SELECT id, state, body FROM requests ORDER BY id", &[]).await
        } else {
            let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            self.requests("SELECT id, state, body FROM requests WHERE state = ANY($1) ORDER BY id", &[&states]).await
        }
    }

    async fn request_counts(&mut self) -> Result<Vec<(RequestState, u64)>> {
        let stmt = self.tx.prepare_cached("SELECT state, count(*) FROM requests GROUP BY state").await?;
        let mut out = Vec::new();
        for row in self.tx.query(&stmt, &[]).await? {
            let (state, n): (String, i64) = (row.get(0), row.get(1));
            out.push((state.parse::<RequestState>().map_err(|e| Error::Corrupt { what: format!("request state `{state}`"), source: e.into() })?, n.max(0) as u64));
        }
        Ok(out)
    }

    async fn requests_page(&mut self, filter: &RequestFilter, before: Option<&str>, limit: usize) -> Result<Vec<ApprovalRequest>> {
        let (sql, args) = page_query(filter, before, limit, |n| format!("${n}"));
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args.iter().map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        self.requests(&sql.replace("SELECT body", "SELECT id, state, body"), &params).await
    }

    async fn load_installation(&mut self, workflow_id: &str) -> Result<Option<Installation>> {
        let stmt = self.tx.prepare_cached(&self.locking("SELECT body FROM installations WHERE workflow_id = $1")).await?;
        let row = self.tx.query_opt(&stmt, &[&workflow_id]).await?;
        self.installations.insert(workflow_id.to_owned(), row.is_some());
        row.map(|r| decode(|| format!("installation of {workflow_id}"), r.get(0))).transpose()
    }

    async fn save_installation(&mut self, i: &Installation) -> Result<()> {
        let body = encode(i);
        if self.installations.get(&i.workflow_id).copied().unwrap_or(false) {
            let stmt = self.tx.prepare_cached("UPDATE installations SET body = $2 WHERE workflow_id = $1").await?;
            self.tx.execute(&stmt, &[&i.workflow_id, &body]).await?;
        } else {
            let stmt = self.tx.prepare_cached("INSERT INTO installations (workflow_id, body) VALUES ($1, $2)").await?;
            self.tx.execute(&stmt, &[&i.workflow_id, &body]).await.map_err(|e| {
                if is_unique_violation(&e) {
                    Error::AlreadyInstalled { workflow_id: i.workflow_id.clone() }
                } else {
                    e.into()
                }
            })?;
        }
        self.installations.insert(i.workflow_id.clone(), true);
        Ok(())
    }

    async fn installations(&mut self) -> Result<Vec<Installation>> {
        let stmt = self.tx.prepare_cached("SELECT body FROM installations ORDER BY workflow_id").await?;
        let rows = self.tx.query(&stmt, &[]).await?;
        rows.iter().map(|r| decode(|| "installation".into(), r.get(0))).collect()
    }

    async fn load_grant(&mut self, id: &str) -> Result<Option<Grant>> {
        let stmt = self.tx.prepare_cached(&self.locking("SELECT body FROM grants WHERE id = $1")).await?;
        let row = self.tx.query_opt(&stmt, &[&id]).await?;
        row.map(|r| decode(|| format!("grant {id}"), r.get(0))).transpose()
    }

    async fn save_grant(&mut self, g: &Grant) -> Result<()> {
        let stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO grants (id, workflow_id, due_at, revoked, body) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, revoked = excluded.revoked, body = excluded.body",
            )
            .await?;
        let (due, revoked, body) = (format_time(g.due_at), g.revocation.is_some(), encode(g));
        self.tx.execute(&stmt, &[&g.id, &g.workflow_id, &due, &revoked, &body]).await?;
        Ok(())
    }

    async fn grants(&mut self, filter: &GrantFilter) -> Result<Vec<Grant>> {
        let sql = if filter.unrevoked || filter.due_by.is_some() {
            "SELECT body FROM grants WHERE NOT revoked ORDER BY id"
        } else {
            "SELECT body FROM grants ORDER BY id"
        };
        let stmt = self.tx.prepare_cached(sql).await?;
        let rows = self.tx.query(&stmt, &[]).await?;
        let mut out = Vec::new();
        for r in rows {
            let g: Grant = decode(|| "grant".into(), r.get(0))?;
            if filter.matches(&g) {
                out.push(g);
            }
        }
        Ok(out)
    }

    async fn audit_head(&mut self) -> Result<AuditHead> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        // In a write transaction this locks the head until commit: appends from every replica take turns.
        let stmt = self.tx.prepare_cached(&self.locking("SELECT seq, hash FROM audit_head WHERE id = 1")).await?;
        let row = self.tx.query_opt(&stmt, &[]).await?;
        Ok(row.map_or_else(AuditHead::genesis, |r| AuditHead { seq: r.get::<_, i64>(0).max(0) as u64, hash: r.get(1) }))
    }

    async fn audit_entries(&mut self) -> Result<Vec<AuditEntry>> {
        self.entries(&format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY seq"), &[]).await
    }

    async fn audit_for_request(&mut self, request_id: &str) -> Result<Vec<AuditEntry>> {
        self.entries(&format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE request_id = $1 ORDER BY seq"), &[&request_id])
            .await
    }

    async fn audit_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.entries(&format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"), &[&after, &limit])
            .await
    }

    async fn append_audit(&mut self, e: &AuditEntry) -> Result<()> {
        let seq = e.seq as i64;
        let stmt = self
            .tx
            .prepare_cached(&format!("INSERT INTO audit ({ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
            .await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &seq,
            &format_time(e.at),
            &e.actor,
            &e.kind.as_str(),
            &e.request_id,
            &e.workflow_id,
            &encode(&e.detail),
            &e.prev_hash,
            &e.hash,
        ];
        self.tx.execute(&stmt, &params).await?;
        if self.head.is_some() {
            // Written back once by the batch, before it commits.
            self.head = Some(e.head());
            return Ok(());
        }
        let stmt = self.tx.prepare_cached("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1").await?;
        self.tx.execute(&stmt, &[&seq, &e.hash]).await?;
        Ok(())
    }

    async fn delivery_cursor(&mut self, sink: &str) -> Result<u64> {
        let stmt = self.tx.prepare_cached("SELECT seq FROM delivery_cursors WHERE sink = $1").await?;
        let row = self.tx.query_opt(&stmt, &[&sink]).await?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    async fn delivery_cursors(&mut self) -> Result<Vec<(String, u64)>> {
        let stmt = self.tx.prepare_cached("SELECT sink, seq FROM delivery_cursors ORDER BY sink").await?;
        let rows = self.tx.query(&stmt, &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64)).collect())
    }

    async fn set_delivery_cursor(&mut self, sink: &str, seq: u64) -> Result<()> {
        let stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO delivery_cursors (sink, seq) VALUES ($1, $2)
                 ON CONFLICT (sink) DO UPDATE SET seq = GREATEST(delivery_cursors.seq, excluded.seq)",
            )
            .await?;
        self.tx.execute(&stmt, &[&sink, &(seq as i64)]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

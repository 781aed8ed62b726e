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

use super::group::{Deliver, Job, Queued};
use super::{audit_entry, decode, encode, page_query, store_via_ops, Installation, RequestFilter, Tx, TxBody};
use crate::audit::{format_time, AuditEntry, AuditHead, GENESIS_HASH};
use crate::error::{Error, Result};
use crate::grant::{Grant, GrantFilter};
use crate::request::{ApprovalRequest, RequestId, RequestState};

/// The newest schema version of the PostgreSQL store this build writes and reads.
pub const POSTGRES_SCHEMA_VERSION: i64 = 3;

/// The advisory lock held while migrating ("RAPP" in ASCII).
const MIGRATION_LOCK: i64 = 0x5241_5050;

/// The migrations, in order: version and SQL.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3)];

/// Version 3: the service's working state (web sessions, dead letters, leases), not audited; expiry in
/// milliseconds since the epoch.
const V3: &str = r#"
CREATE TABLE service_state (
    ns         TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_ms BIGINT,
    PRIMARY KEY (ns, key)
);
CREATE INDEX service_state_expiry ON service_state (expires_ms) WHERE expires_ms IS NOT NULL;
"#;

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
        Self {
            clock: Clock::Database,
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
        }
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
        f.debug_struct("PostgresStore")
            .field("database", &self.name)
            .field("clock", &self.clock)
            .finish()
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
        if let Some(w) = &target.warning {
            tracing::warn!("{w}");
        }
        let mut config = target.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let name = describe(&config);
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(target.root_cert.as_deref(), url)?);
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| Error::Postgres { problem: e.to_string() })?;
        let (writes, queue) = tokio::sync::mpsc::channel(MAX_BATCH * 4);
        let store = Self {
            pool,
            clock: options.clock,
            name,
            writes,
        };
        let mut client = store.pool.get().await.map_err(|e| store.unreachable(e))?;
        migrate(&mut client, &store.name).await?;
        tokio::spawn(group_commit(
            Batcher {
                pool: store.pool.clone(),
                clock: store.clock,
                name: store.name.clone(),
            },
            queue,
        ));
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
        Error::StoreUnreachable {
            store: self.name.clone(),
            problem,
        }
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
            Batcher {
                pool: self.pool.clone(),
                clock: self.clock,
                name: self.name.clone(),
            }
            .run(vec![job])
            .await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::Postgres {
                problem: "the store's writer stopped before answering; nothing was committed for this change".into(),
            })
        })
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
        let value = f(&mut Pg::new(&tx, false, self.clock)).await;
        tx.rollback().await?;
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
        let failed = |problem: &str| Error::Postgres {
            problem: problem.to_owned(),
        };
        let mut client = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                let problem = Error::from(e).to_string();
                for job in jobs {
                    job.fail(Error::StoreUnreachable {
                        store: self.name.clone(),
                        problem: problem.clone(),
                    });
                }
                return;
            }
        };
        let tx = match client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await
        {
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
            // One round trip for both (the head row exists from the first migration on and cannot be deleted).
            let row = tx
                .query_opt(
                    "SELECT seq, hash, transaction_timestamp() FROM audit_head WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .await?;
            let (head, now) = match row {
                Some(r) => (
                    AuditHead {
                        seq: r.get::<_, i64>(0).max(0) as u64,
                        hash: r.get(1),
                    },
                    r.get::<_, DateTime<Utc>>(2),
                ),
                None => (
                    AuditHead::genesis(),
                    tx.query_one("SELECT transaction_timestamp()", &[]).await?.get(0),
                ),
            };
            Ok::<_, tokio_postgres::Error>((head, (self.clock == Clock::Database).then_some(now)))
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
            let mut pg = Pg::new(&tx, true, self.clock);
            pg.head = Some(head.clone());
            pg.now = now;
            // A body that panics is rolled back alone (its caller learns the write failed); the writer goes on.
            let ran = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(job.run(&mut pg))).await;
            let (ran_ok, deliver) = ran.unwrap_or_else(|_| (false, Box::new(|_| {})));
            // The body's writes were deferred: send them now, in one round trip with the savepoint around them.
            let sent = if ran_ok { pg.flush(true).await } else { Ok(()) };
            let ok = ran_ok && sent.is_ok();
            let (moved, opened) = (pg.head.take(), pg.savepoint_open);
            drop(pg);
            match sent {
                // Failed when sent: this caller learns why now, whatever the batch does.
                Err(e) => deliver(Some(e)),
                Ok(()) => delivers.push(deliver),
            }
            if !ok && opened {
                if let Err(e) = tx.batch_execute(ROLLBACK_WRITE).await {
                    broken = Some(Error::from(e).to_string());
                    break;
                }
            }
            if ok {
                head = moved.unwrap_or(head);
            }
        }
        if broken.is_none() && head.seq != first_seq {
            let seq = head.seq as i64;
            if let Err(e) = tx
                .execute(
                    "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
                    &[&seq, &head.hash],
                )
                .await
            {
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
    /// Said when connecting: the URL asks for a session to a remote host that may run without TLS.
    pub(crate) warning: Option<String>,
}

impl PostgresUrl {
    /// Parses a libpq-style URL. `sslmode` may be `disable`, `prefer`, `require`, `verify-ca` or `verify-full`
    /// (with rustls every TLS connection checks the server's certificate and host name, so the last three are the
    /// same); `sslrootcert=PATH` adds a CA (PEM) to the system's roots. Without `sslmode`, a remote host gets
    /// `require` (a session someone on the network could strip of TLS could write the store), while unix sockets
    /// and loopback keep the driver's `prefer`; `disable` or `prefer` given for a remote host is kept, with a
    /// warning.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let bad = |problem: String| Error::BadStoreUrl {
            url: redact_url(url),
            problem,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad("it does not start with postgres:// or postgresql://".into()));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut root_cert = None;
        let mut explicit = false;
        let mut kept = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            explicit |= key == "sslmode";
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
        let cleaned = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{kept}")
        };
        let mut config = tokio_postgres::Config::from_str(&cleaned).map_err(|e| bad(source_chain(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(bad("it names no host (give one, or `?host=/path/to/socket/dir`)".into()));
        }
        if config.get_dbname().is_none() {
            return Err(bad("it names no database (add `/DATABASE` after the host)".into()));
        }
        let remote: Vec<&str> = config
            .get_hosts()
            .iter()
            .filter_map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) if !is_loopback(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let mut warning = None;
        if !remote.is_empty() {
            use tokio_postgres::config::SslMode;
            match (explicit, config.get_ssl_mode()) {
                (false, _) => {
                    config.ssl_mode(SslMode::Require);
                }
                (true, mode @ (SslMode::Disable | SslMode::Prefer)) => {
                    let how = if mode == SslMode::Disable { "disable" } else { "prefer" };
                    warning = Some(format!(
                        "the store URL says sslmode={how} for {}: the session may run in plaintext, and whoever can                          answer on the network path could read it and write the store (requests, decisions, the audit                          log); use sslmode=require (the certificate and host name are checked) unless the network is                          trusted",
                        remote.join(", ")
                    ));
                }
                _ => {}
            }
        }
        Ok(Self {
            config,
            root_cert,
            warning,
        })
    }
}

/// Whether a host name or address is this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
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
        let bad = |problem: String| Error::BadStoreUrl {
            url: redact_url(url),
            problem,
        };
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
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
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
            tx.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1)",
                &[&GENESIS_HASH],
            )
            .await?;
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

/// Opens the savepoint around one write of a group commit.
const SAVEPOINT_WRITE: &str = "SAVEPOINT rancher_approval_write";
/// Keeps one write of a group commit.
const RELEASE_WRITE: &str = "RELEASE SAVEPOINT rancher_approval_write";
/// Undoes one write of a group commit, and only it.
const ROLLBACK_WRITE: &str = "ROLLBACK TO SAVEPOINT rancher_approval_write; RELEASE SAVEPOINT rancher_approval_write";

/// A statement parameter owned by a deferred write.
type Param = Box<dyn tokio_postgres::types::ToSql + Send + Sync>;

/// A write statement held back until the write's body is done (or reads again), then sent with the others in one
/// round trip.
struct Deferred {
    sql: &'static str,
    params: Vec<Param>,
    /// The error when the statement changes no row (a conditional update that lost).
    unless_one: Option<Error>,
    /// The error a unique violation means (an insert of something that exists).
    on_duplicate: Option<Error>,
}

/// [`Tx`] over one PostgreSQL transaction.
///
/// In a write (always one of a group commit) the body's statements that only change rows are deferred: they are
/// sent together, pipelined after the savepoint that opens the write and before the one that releases it, when
/// the body reads again or ends. A decision is then two round trips (the request with its audit entries, then
/// the savepoint, the update, the audit append and the release) instead of six.
struct Pg<'a, 'c> {
    tx: &'a deadpool_postgres::Transaction<'c>,
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
    /// Writes not yet sent.
    deferred: Vec<Deferred>,
    /// Whether this write's savepoint was opened (and not yet released).
    savepoint_open: bool,
    /// Each request's audit entries, read with the request in a write: nobody else appends while the batch
    /// holds the head, and this write's own appends are added here as they are made.
    audit: HashMap<String, Vec<AuditEntry>>,
}

impl<'a, 'c> Pg<'a, 'c> {
    fn new(tx: &'a deadpool_postgres::Transaction<'c>, write: bool, clock: Clock) -> Self {
        Self {
            tx,
            write,
            clock,
            now: None,
            requests: HashMap::new(),
            installations: HashMap::new(),
            head: None,
            deferred: Vec::new(),
            savepoint_open: false,
            audit: HashMap::new(),
        }
    }

    /// `sql`, with ` FOR UPDATE` appended in a write transaction.
    fn locking(&self, sql: &str) -> String {
        if self.write {
            format!("{sql} FOR UPDATE")
        } else {
            sql.to_owned()
        }
    }

    /// Holds a write back until [`Pg::flush`].
    fn defer(&mut self, sql: &'static str, params: Vec<Param>) -> &mut Deferred {
        self.deferred.push(Deferred {
            sql,
            params,
            unless_one: None,
            on_duplicate: None,
        });
        self.deferred.last_mut().expect("just pushed")
    }

    /// Sends the deferred writes in one round trip: the savepoint first when this write has none yet, and its
    /// release last when `end`. Reads call it first (they must see this write's own changes).
    async fn flush(&mut self, end: bool) -> Result<()> {
        let open = !self.savepoint_open && !self.deferred.is_empty();
        let release = end && (self.savepoint_open || open);
        if self.deferred.is_empty() && !release {
            return Ok(());
        }
        let deferred = std::mem::take(&mut self.deferred);
        let mut statements = Vec::with_capacity(deferred.len());
        for d in &deferred {
            statements.push(self.tx.prepare_cached(d.sql).await?);
        }
        type Sent<'f> = futures::future::BoxFuture<'f, std::result::Result<u64, tokio_postgres::Error>>;
        let tx = self.tx;
        let simple =
            |sql: &'static str| -> Sent<'_> { Box::pin(async move { tx.batch_execute(sql).await.map(|()| 0) }) };
        let mut sent: Vec<Sent<'_>> = Vec::with_capacity(deferred.len() + 2);
        if open {
            sent.push(simple(SAVEPOINT_WRITE));
        }
        for (d, stmt) in deferred.iter().zip(&statements) {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = d
                .params
                .iter()
                .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            sent.push(Box::pin(async move { tx.execute(stmt, &params).await }));
        }
        if release {
            sent.push(simple(RELEASE_WRITE));
        }
        // Polled together, the statements go out back to back on the connection (tokio-postgres pipelines them).
        let mut answers = futures::future::join_all(sent).await.into_iter();
        if open {
            answers.next().expect("one answer per statement")?;
            self.savepoint_open = true;
        }
        for d in deferred {
            match answers.next().expect("one answer per statement") {
                Ok(1) => {}
                Ok(_) if d.unless_one.is_none() => {}
                Ok(_) => return Err(d.unless_one.expect("checked")),
                Err(e) if is_unique_violation(&e) && d.on_duplicate.is_some() => {
                    return Err(d.on_duplicate.expect("checked"))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if release {
            answers.next().expect("one answer per statement")?;
            self.savepoint_open = false;
        }
        Ok(())
    }

    async fn requests(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ApprovalRequest>> {
        self.flush(false).await?;
        let stmt = self.tx.prepare_cached(&self.locking(sql)).await?;
        let rows = self.tx.query(&stmt, params).await?;
        self.request_rows(rows)
    }

    fn request_rows(&mut self, rows: Vec<tokio_postgres::Row>) -> Result<Vec<ApprovalRequest>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, state, body): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            self.requests.insert(id.clone(), state.parse::<RequestState>().ok());
            out.push(decode(|| format!("approval request {id}"), &body)?);
        }
        Ok(out)
    }

    async fn entries(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<AuditEntry>> {
        self.flush(false).await?;
        let stmt = self.tx.prepare_cached(sql).await?;
        let rows = self.tx.query(&stmt, params).await?;
        entry_rows(&rows)
    }
}

fn entry_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<AuditEntry>> {
    rows.iter()
        .map(|r| {
            audit_entry((
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            ))
        })
        .collect()
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

const ENTRY_COLUMNS: &str = "seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash";
const APPEND_AUDIT: &str =
    "INSERT INTO audit (seq, at, actor, kind, request_id, workflow_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

#[async_trait::async_trait]
impl Tx for Pg<'_, '_> {
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
        const REQUEST: &str = "SELECT id, state, body FROM requests WHERE id = $1";
        let found = if self.write && !self.audit.contains_key(id.as_str()) {
            // A write that reads a request almost always checks it against its audit entries next: read both in
            // one round trip.
            self.flush(false).await?;
            let request = self.tx.prepare_cached(&self.locking(REQUEST)).await?;
            let audit = self
                .tx
                .prepare_cached(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit WHERE request_id = $1 ORDER BY seq"
                ))
                .await?;
            let key = id.as_str();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
            let (rows, entries) = futures::try_join!(self.tx.query(&request, &params), self.tx.query(&audit, &params))?;
            self.audit.insert(id.to_string(), entry_rows(&entries)?);
            self.request_rows(rows)?
        } else {
            self.requests(REQUEST, &[&id.as_str()]).await?
        };
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
                let params: Vec<Param> = vec![
                    Box::new(r.id.to_string()),
                    Box::new(r.state.as_str()),
                    Box::new(body),
                    Box::new(read.as_str()),
                ];
                self.defer(
                    "UPDATE requests SET state = $2, body = $3 WHERE id = $1 AND state = $4",
                    params,
                )
                .unless_one = Some(Error::Conflict { id: r.id.to_string() });
            }
            None => {
                let params: Vec<Param> = vec![
                    Box::new(r.id.to_string()),
                    Box::new(r.workflow_id.clone()),
                    Box::new(r.state.as_str()),
                    Box::new(r.requester.id.clone()),
                    Box::new(format_time(r.created_at)),
                    Box::new(format_time(r.expires_at)),
                    Box::new(body),
                ];
                self.defer(
                    "INSERT INTO requests (id, workflow_id, state, requester, created_at, expires_at, body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    params,
                )
                .on_duplicate = Some(Error::Conflict { id: r.id.to_string() });
            }
        }
        self.requests.insert(r.id.to_string(), Some(r.state));
        Ok(())
    }

    async fn requests_in(&mut self, states: &[RequestState]) -> Result<Vec<ApprovalRequest>> {
        if states.is_empty() {
            self.requests("SELECT id, state, body FROM requests ORDER BY id", &[])
                .await
        } else {
            let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            self.requests(
                "SELECT id, state, body FROM requests WHERE state = ANY($1) ORDER BY id",
                &[&states],
            )
            .await
        }
    }

    async fn request_counts(&mut self) -> Result<Vec<(RequestState, u64)>> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached("SELECT state, count(*) FROM requests GROUP BY state")
            .await?;
        let mut out = Vec::new();
        for row in self.tx.query(&stmt, &[]).await? {
            let (state, n): (String, i64) = (row.get(0), row.get(1));
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
        let (sql, args) = page_query(filter, before, limit, |n| format!("${n}"));
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        self.requests(&sql.replace("SELECT body", "SELECT id, state, body"), &params)
            .await
    }

    async fn load_installation(&mut self, workflow_id: &str) -> Result<Option<Installation>> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached(&self.locking("SELECT body FROM installations WHERE workflow_id = $1"))
            .await?;
        let row = self.tx.query_opt(&stmt, &[&workflow_id]).await?;
        self.installations.insert(workflow_id.to_owned(), row.is_some());
        row.map(|r| decode(|| format!("installation of {workflow_id}"), r.get(0)))
            .transpose()
    }

    async fn save_installation(&mut self, i: &Installation) -> Result<()> {
        let body = encode(i);
        let params: Vec<Param> = vec![Box::new(i.workflow_id.clone()), Box::new(body)];
        if self.installations.get(&i.workflow_id).copied().unwrap_or(false) {
            self.defer("UPDATE installations SET body = $2 WHERE workflow_id = $1", params);
        } else {
            self.defer("INSERT INTO installations (workflow_id, body) VALUES ($1, $2)", params)
                .on_duplicate = Some(Error::AlreadyInstalled {
                workflow_id: i.workflow_id.clone(),
            });
        }
        self.installations.insert(i.workflow_id.clone(), true);
        Ok(())
    }

    async fn installations(&mut self) -> Result<Vec<Installation>> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached("SELECT body FROM installations ORDER BY workflow_id")
            .await?;
        let rows = self.tx.query(&stmt, &[]).await?;
        rows.iter()
            .map(|r| decode(|| "installation".into(), r.get(0)))
            .collect()
    }

    async fn load_grant(&mut self, id: &str) -> Result<Option<Grant>> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached(&self.locking("SELECT body FROM grants WHERE id = $1"))
            .await?;
        let row = self.tx.query_opt(&stmt, &[&id]).await?;
        row.map(|r| decode(|| format!("grant {id}"), r.get(0))).transpose()
    }

    async fn save_grant(&mut self, g: &Grant) -> Result<()> {
        let params: Vec<Param> = vec![
            Box::new(g.id.clone()),
            Box::new(g.workflow_id.clone()),
            Box::new(format_time(g.ends_at())),
            Box::new(g.revocation.is_some()),
            Box::new(encode(g)),
        ];
        self.defer(
            "INSERT INTO grants (id, workflow_id, due_at, revoked, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, revoked = excluded.revoked, body = excluded.body",
            params,
        );
        Ok(())
    }

    async fn grants(&mut self, filter: &GrantFilter) -> Result<Vec<Grant>> {
        let sql = if filter.unrevoked || filter.due_by.is_some() {
            "SELECT body FROM grants WHERE NOT revoked ORDER BY id"
        } else {
            "SELECT body FROM grants ORDER BY id"
        };
        self.flush(false).await?;
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
        let stmt = self
            .tx
            .prepare_cached(&self.locking("SELECT seq, hash FROM audit_head WHERE id = 1"))
            .await?;
        let row = self.tx.query_opt(&stmt, &[]).await?;
        Ok(row.map_or_else(AuditHead::genesis, |r| AuditHead {
            seq: r.get::<_, i64>(0).max(0) as u64,
            hash: r.get(1),
        }))
    }

    async fn audit_entries(&mut self) -> Result<Vec<AuditEntry>> {
        self.entries(&format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY seq"), &[])
            .await
    }

    async fn audit_for_request(&mut self, request_id: &str) -> Result<Vec<AuditEntry>> {
        if let Some(entries) = self.audit.get(request_id) {
            return Ok(entries.clone());
        }
        self.entries(
            &format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE request_id = $1 ORDER BY seq"),
            &[&request_id],
        )
        .await
    }

    async fn audit_after(&mut self, after_seq: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.entries(
            &format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[&after, &limit],
        )
        .await
    }

    async fn append_audit(&mut self, e: &AuditEntry) -> Result<()> {
        let seq = e.seq as i64;
        let params: Vec<Param> = vec![
            Box::new(seq),
            Box::new(format_time(e.at)),
            Box::new(e.actor.clone()),
            Box::new(e.kind.as_str().to_owned()),
            Box::new(e.request_id.clone()),
            Box::new(e.workflow_id.clone()),
            Box::new(encode(&e.detail)),
            Box::new(e.prev_hash.clone()),
            Box::new(e.hash.clone()),
        ];
        self.defer(APPEND_AUDIT, params);
        if let Some(known) = e.request_id.as_deref().and_then(|id| self.audit.get_mut(id)) {
            known.push(e.clone());
        }
        if self.head.is_some() {
            // Written back once by the batch, before it commits.
            self.head = Some(e.head());
            return Ok(());
        }
        self.defer(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
            vec![Box::new(seq), Box::new(e.hash.clone())],
        );
        Ok(())
    }

    async fn delivery_cursor(&mut self, sink: &str) -> Result<u64> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached("SELECT seq FROM delivery_cursors WHERE sink = $1")
            .await?;
        let row = self.tx.query_opt(&stmt, &[&sink]).await?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    async fn delivery_cursors(&mut self) -> Result<Vec<(String, u64)>> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached("SELECT sink, seq FROM delivery_cursors ORDER BY sink")
            .await?;
        let rows = self.tx.query(&stmt, &[]).await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    async fn set_delivery_cursor(&mut self, sink: &str, seq: u64) -> Result<()> {
        self.defer(
            "INSERT INTO delivery_cursors (sink, seq) VALUES ($1, $2)
             ON CONFLICT (sink) DO UPDATE SET seq = GREATEST(delivery_cursors.seq, excluded.seq)",
            vec![Box::new(sink.to_owned()), Box::new(seq as i64)],
        );
        Ok(())
    }

    async fn state_load(&mut self, ns: &str, key: &str) -> Result<Option<(String, Option<i64>)>> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached(&self.locking("SELECT value, expires_ms FROM service_state WHERE ns = $1 AND key = $2"))
            .await?;
        Ok(self
            .tx
            .query_opt(&stmt, &[&ns, &key])
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }

    async fn state_save(&mut self, ns: &str, key: &str, value: &str, expires_ms: Option<i64>) -> Result<()> {
        self.defer(
            "INSERT INTO service_state (ns, key, value, expires_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms",
            vec![
                Box::new(ns.to_owned()),
                Box::new(key.to_owned()),
                Box::new(value.to_owned()),
                Box::new(expires_ms),
            ],
        );
        Ok(())
    }

    async fn state_remove(&mut self, ns: &str, key: &str) -> Result<bool> {
        // Read first (the write transaction holds the head lock, so nobody changes it in between), then defer the
        // delete like every other write so a failing body is rolled back whole.
        let there = self.state_load(ns, key).await?.is_some();
        if there {
            self.defer(
                "DELETE FROM service_state WHERE ns = $1 AND key = $2",
                vec![Box::new(ns.to_owned()), Box::new(key.to_owned())],
            );
        }
        Ok(there)
    }

    async fn state_scan(&mut self, ns: &str, now_ms: i64, limit: usize) -> Result<Vec<(String, String)>> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached("SELECT key, value FROM service_state WHERE ns = $1 AND (expires_ms IS NULL OR expires_ms > $2) ORDER BY key LIMIT $3")
            .await?;
        let limit = limit.min(i64::MAX as usize) as i64;
        Ok(self
            .tx
            .query(&stmt, &[&ns, &now_ms, &limit])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn state_purge(&mut self, now_ms: i64) -> Result<u64> {
        self.flush(false).await?;
        let stmt = self
            .tx
            .prepare_cached("SELECT count(*) FROM service_state WHERE expires_ms IS NOT NULL AND expires_ms <= $1")
            .await?;
        let n: i64 = self.tx.query_one(&stmt, &[&now_ms]).await?.get(0);
        if n > 0 {
            self.defer(
                "DELETE FROM service_state WHERE expires_ms IS NOT NULL AND expires_ms <= $1",
                vec![Box::new(now_ms)],
            );
        }
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests;

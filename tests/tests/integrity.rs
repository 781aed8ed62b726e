//! The approvals against whoever can write their store (second security review: N2 with S4, S9, N15), end to end
//! against rancher-sim over HTTPS, on real SQLite and PostgreSQL stores:
//! - a request filed normally and then set to `executing` in the store (with a lease that ran out) is never
//!   executed, neither by the service's reconcile nor by `rancherctl approvals reconcile`: no binding appears, the
//!   audit log has the refusal, and verification (`Store::verify_audit`, `approvals audit --verify`) names it;
//! - an executor paused before its write, whose execution was taken over meanwhile, sends nothing when it
//!   resumes, and the request makes exactly one binding.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rancher_access_tests::cli::{command, rancherctl, Run, SimCli};
use rancher_access_tests::server::{install, sim_and_service, Api};
use rancher_api::transport::{BoxFuture, HttpRequest, HttpResponse, ReqwestTransport, Transport, TransportError};
use rancher_approval::test_util::TestDatabase;
use rancher_approval::{AuditKind, RequestId, RequestState, SqliteStore, Store};
use rancher_sim::{RancherVersion, SimHandle};
use rancher_workflows::{Approved, Runner, Session, Submitted};
use serde_json::json;

/// The lease a store writer forges: held by a process on another host, run out long ago.
fn forged_execution() -> serde_json::Value {
    json!({"claim_id": "forged", "executor": "elsewhere", "host": "elsewhere", "pid": 1, "epoch": 1,
           "lease_until": "2020-01-01T00:00:00Z", "claimed_at": "2020-01-01T00:00:00Z"})
}

/// Sets request `id` to `executing` in a SQLite store file, as the review's reproduction A did with sqlite3.
fn forge_sqlite(path: &std::path::Path, id: &str) {
    let db = rusqlite::Connection::open(path).unwrap();
    let n = db
        .execute(
            "UPDATE requests SET state = 'executing', body = json_set(body, '$.state', 'executing', '$.execution', json(?1)) WHERE id = ?2",
            rusqlite::params![forged_execution().to_string(), id],
        )
        .unwrap();
    assert_eq!(n, 1, "the request row was forged");
}

/// The same in a PostgreSQL store, with the database's own credentials.
async fn forge_postgres(db: &TestDatabase, store: &dyn Store, id: &str) {
    let mut body = serde_json::to_value(store.get_request(&id.parse().unwrap()).await.unwrap()).unwrap();
    body["state"] = json!("executing");
    body["execution"] = forged_execution();
    let n = db
        .raw()
        .await
        .execute(
            "UPDATE requests SET state = 'executing', body = $1 WHERE id = $2",
            &[&body.to_string(), &id],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "the request row was forged");
}

/// A private state directory (rancherctl refuses one that others may read).
fn state_dir(root: &std::path::Path) -> std::path::PathBuf {
    let state = root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    state
}

/// `rancherctl approvals audit --verify` on a store: exit code and stderr.
fn cli_verify(state: &std::path::Path, store_url: &str) -> (i32, String) {
    let out = Command::new(rancherctl())
        .arg("--state-dir")
        .arg(state)
        .args(["approvals", "audit", "--verify"])
        .env("RANCHERCTL_STORE", store_url)
        .env("NO_COLOR", "1")
        .output()
        .expect("rancherctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The service files a request by a standard user to make carol an admin; the store's row is then forged to
/// `executing`. Answers the request id after the service's reconcile had time to act on it, and checks what must
/// hold on every store: nothing ran, the refusal is audited, the request is failed, verification names it.
async fn forged_execution_is_never_run_by_the_service<F, Fut>(store: Arc<dyn Store>, forge: F) -> String
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (sim, _svc, srv) = sim_and_service(store.clone()).await;
    let t = sim.tokens().clone();
    install(&Api::new(srv.url(), Some(&t.admin)), "create-global-role-binding").await;
    let (st, sub) = Api::new(srv.url(), Some(&t.user))
        .post("/api/v1/runs", json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}, "reason": "pls"}))
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();
    let carol = sim.user_id("carol").expect("carol exists");
    let creates = sim.writes("globalrolebindings", "create");

    forge(id.clone()).await;
    // The service's jobs run every 300 ms: wait (generously) until its reconcile has dealt with the request.
    let rid: RequestId = id.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let r = store.get_request(&rid).await.unwrap();
        if r.state != RequestState::Executing || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        settled.state,
        RequestState::Failed,
        "settled as failed, not run: {:?}",
        settled.execution
    );
    // Give a wrong reconcile every chance to run it anyway.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(!sim.has_binding(&carol, "admin"), "carol was made an admin");
    assert_eq!(
        sim.writes("globalrolebindings", "create"),
        creates,
        "no binding was created"
    );

    let refusals: Vec<_> = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::ExecutionRefused)
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].request_id.as_deref(), Some(id.as_str()));
    let err = store.verify_audit().await.unwrap_err().to_string();
    assert!(err.contains(&id) && err.contains("refused"), "{err}");
    let (st, body) = Api::new(srv.url(), Some(&t.admin)).get("/api/v1/audit/verify").await;
    assert_ne!(st, 200, "the service's own verification fails: {body}");
    assert!(body.to_string().contains(&id), "{body}");
    srv.shutdown().await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_a_request_forged_to_executing_in_sqlite_is_never_executed_by_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_dir(dir.path());
    let path = state.join("approvals.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let forged_path = path.clone();
    let id =
        forged_execution_is_never_run_by_the_service(store, |id| async move { forge_sqlite(&forged_path, &id) }).await;
    let (code, stderr) = cli_verify(&state, &format!("sqlite:{}", path.display()));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&id), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_a_request_forged_to_executing_in_postgres_is_never_executed_by_the_service() {
    let Some(db) = TestDatabase::create("n2_service").await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let (db_ref, store_ref) = (&db, store.clone());
    let id = forged_execution_is_never_run_by_the_service(store, |id| async move {
        forge_postgres(db_ref, store_ref.as_ref(), &id).await
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = cli_verify(&state_dir(dir.path()), db.url());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&id), "{stderr}");
}

/// Local mode (the review's reproduction B): someone who can write the shared SQLite file sets a pending request
/// (carol to become an admin) to `executing`; the admin's routine `approvals reconcile` refuses it and runs
/// nothing.
#[test]
fn n2_local_reconcile_never_runs_a_request_forged_to_executing() {
    let cli = SimCli::start(RancherVersion::V2_13, 5);
    let t = cli.sim.tokens().clone();
    let run = |token: &str, args: &[&str]| {
        Run::from_output(
            command(args, &cli.connected_env(Some(token)))
                .output()
                .expect("rancherctl runs"),
        )
    };
    run(&t.admin, &["workflows", "install", "create-global-role-binding"]).expect_code(0);
    let filed = run(
        &t.approver,
        &[
            "run",
            "create-global-role-binding",
            "-i",
            "user=carol",
            "-i",
            "role=admin",
            "-o",
            "json",
        ],
    );
    filed.expect_code(3);
    let id = serde_json::from_str::<serde_json::Value>(&filed.stdout).unwrap()["request"]
        .as_str()
        .unwrap()
        .to_string();
    let carol = cli.sim.user_id("carol").unwrap();
    let creates = cli.sim.writes("globalrolebindings", "create");

    forge_sqlite(&cli.tmp.path().join("state/approvals.db"), &id);
    let settle = run(&t.admin, &["approvals", "reconcile"]);
    assert!(
        settle.stdout.contains(&id) && settle.stdout.contains("failed"),
        "{}\n{}",
        settle.stdout,
        settle.stderr
    );
    assert!(!cli.sim.has_binding(&carol, "admin"), "carol was made an admin");
    assert_eq!(cli.sim.writes("globalrolebindings", "create"), creates);
    let show = run(&t.admin, &["approvals", "show", &id, "-o", "json"]);
    assert!(show.stdout.contains("refused"), "{}", show.stdout);
    let verify = run(&t.admin, &["approvals", "audit", "--verify"]);
    verify.expect_code(1);
    assert!(verify.stderr.contains(&id), "{}", verify.stderr);
    // A second reconcile has nothing left to do.
    let again = run(&t.admin, &["approvals", "reconcile"]);
    assert!(!again.stdout.contains(&id), "{}", again.stdout);
}

/// A transport in front of the real one that freezes its whole process once: after the first RK list of global
/// role bindings has been answered, it blocks the calling thread (the executor's only runtime thread, so its lease
/// renewer stops too, as in a paused process) until released, then hands back the answer, stale by then. It counts
/// the writes sent after that.
struct Freezing {
    inner: ReqwestTransport,
    armed: AtomicBool,
    frozen: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
    writes_after: AtomicUsize,
    resumed: AtomicBool,
}

impl std::fmt::Debug for Freezing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freezing")
            .field("writes_after", &self.writes_after)
            .finish_non_exhaustive()
    }
}

impl Transport for Freezing {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let freeze = request.method == http::Method::GET
            && request.url.path().starts_with("/apis/")
            && request.url.path().contains("globalrolebindings")
            && self.armed.swap(false, Ordering::SeqCst);
        if request.method != http::Method::GET && self.resumed.load(Ordering::SeqCst) {
            self.writes_after.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async move {
            let answer = self.inner.send(request).await;
            if freeze {
                if let Some(tx) = self.frozen.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                let _ = self.release.lock().unwrap().recv();
                self.resumed.store(true, Ordering::SeqCst);
            }
            answer
        })
    }
}

/// N15: an executor paused between its check and its write, whose execution was taken over meanwhile, sent its
/// create when it resumed (two bindings). Now each write first confirms the claim, so the resumed executor sends
/// nothing; the request's binding is named after it, and there is exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n15_an_executor_paused_before_its_write_sends_nothing_after_a_take_over() {
    let sim: SimHandle = rancher_access_tests::sim(RancherVersion::V2_13, 6).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let admin = rancher_access_tests::session(&sim, &t.admin).await;
    let reconciler = Runner::new(store.clone(), "reconciler");
    reconciler
        .install(&admin, "create-global-role-binding", None)
        .await
        .unwrap();
    let requester = rancher_access_tests::session(&sim, &t.approver).await;
    let id = match reconciler
        .submit(
            &requester,
            "create-global-role-binding",
            json!({"user": "carol", "role": "admin"}),
            Some("pls".into()),
            false,
        )
        .await
        .unwrap()
    {
        Submitted::Pending { request, .. } => request,
        other => panic!("expected a pending request, got {other:?}"),
    };
    let carol = sim.user_id("carol").unwrap();

    // The executor: the admin approves in a process of its own (a thread with a one-thread runtime).
    let (frozen_tx, frozen_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let ca = rancher_api::tls::parse_ca_bundle(sim.ca_pem().as_bytes()).unwrap();
    let tls = rancher_api::tls::client_config(&ca, false).unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .no_proxy()
        .build()
        .unwrap();
    let transport = Arc::new(Freezing {
        inner: ReqwestTransport::new(http, 64 << 20, Duration::from_secs(30)),
        armed: AtomicBool::new(true),
        frozen: Mutex::new(Some(frozen_tx)),
        release: Mutex::new(release_rx),
        writes_after: AtomicUsize::new(0),
        resumed: AtomicBool::new(false),
    });
    let client = rancher_api::Client::builder(sim.domain())
        .token(rancher_api::SecretString::from(t.admin.clone()))
        .transport(transport.clone())
        .build()
        .unwrap();
    let (exec_store, exec_id) = (store.clone(), id.clone());
    let executor = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let session = Session::open(client).await.unwrap();
            let runner = Runner::new(exec_store, "paused").with_lease(Duration::from_millis(900));
            runner
                .approve(&session, &exec_id, None)
                .await
                .map_err(|e| e.to_string())
        })
    });
    tokio::task::spawn_blocking(move || frozen_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the executor reached the list before its write and froze");
    let creates = sim.writes("globalrolebindings", "create");

    // Its lease runs out while it is frozen; the reconciler takes the execution over and runs it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let settled = reconciler.reconcile(&admin).await.unwrap();
    assert_eq!(
        settled.iter().map(|r| (r.id.to_string(), r.state)).collect::<Vec<_>>(),
        [(id.clone(), RequestState::Succeeded)]
    );
    assert_eq!(sim.writes("globalrolebindings", "create"), creates + 1);

    // The frozen executor resumes with its stale answer: it must not write.
    release_tx.send(()).unwrap();
    let resumed = tokio::task::spawn_blocking(move || executor.join().unwrap())
        .await
        .unwrap();
    assert!(
        !matches!(resumed, Ok(Approved::Succeeded { .. })),
        "the resumed executor claims success: {resumed:?}"
    );
    assert_eq!(
        transport.writes_after.load(Ordering::SeqCst),
        0,
        "the resumed executor sent a write"
    );
    assert_eq!(sim.writes("globalrolebindings", "create"), creates + 1);
    let bindings: Vec<_> = sim
        .objects("globalrolebindings")
        .into_iter()
        .filter(|b| b["userName"] == json!(carol) && b["globalRoleName"] == json!("admin"))
        .collect();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(
        bindings[0]["metadata"]["name"],
        json!(rancher_workflows::exec::binding_name(&id))
    );
    let done = store.get_request(&id.parse().unwrap()).await.unwrap();
    assert_eq!(
        (done.state, done.execution.unwrap().epoch),
        (RequestState::Succeeded, 2)
    );
    store.verify_audit().await.unwrap();
}

/// Reseals the whole audit log of a SQLite store file after changing entry 1's actor, head included, as someone
/// who can write the whole file could: the log is consistent in itself again (plain verification passes).
fn rewrite_history(path: &std::path::Path, entries: Vec<rancher_approval::AuditEntry>) {
    let db = rusqlite::Connection::open(path).unwrap();
    let triggers: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in triggers {
        db.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
    }
    let mut prev = rancher_approval::GENESIS_HASH.to_string();
    for mut e in entries {
        if e.seq == 1 {
            e.actor = "u-mallory".into();
        }
        e.prev_hash = prev;
        e.hash = e.compute_hash();
        db.execute(
            "UPDATE audit SET actor = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![e.actor, e.prev_hash, e.hash, e.seq as i64],
        )
        .unwrap();
        prev = e.hash.clone();
        db.execute(
            "UPDATE audit_head SET seq = ?1, hash = ?2",
            rusqlite::params![e.seq as i64, e.hash],
        )
        .unwrap();
    }
}

/// The approver files a request, through the service at `url`, to make `who` an admin; answers its id.
async fn file_admin_request(url: &str, approver: &str, who: &str) -> String {
    let (st, sub) = Api::new(url, Some(approver))
        .post(
            "/api/v1/runs",
            json!({"workflow": "create-global-role-binding", "inputs": {"user": who, "role": "admin"}, "reason": "on call"}),
        )
        .await;
    assert_eq!(st, 202, "{sub}");
    sub["request"].as_str().unwrap().to_string()
}

/// Waits (generously) until the service's anchor file holds the store's head.
async fn wait_anchored(anchor_file: &std::path::Path, store: &dyn Store) {
    let head = store.audit_head().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let saved: Option<rancher_approval::AuditHead> = std::fs::read_to_string(anchor_file)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        if saved.as_ref() == Some(&head) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the anchor file never reached the head {head:?}: {saved:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// S9: the service never compared the store with the heads it published. It now keeps the last one in an
/// owner-only file and checks the store from it at start and on every job run: a normal restart passes; history
/// rewritten below the anchor (consistent in itself) stops every execution, with the reason in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_a_store_rewritten_below_the_published_head_executes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let anchor_file = dir.path().join("audit-anchor.json");
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 6).await;
    let svc = rancher_access_tests::server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let serve = |store: Arc<dyn Store>| {
        rancher_access_tests::server::start(
            rancher_access_tests::server::config(&sim, &svc, store).anchor_file(&anchor_file),
        )
    };
    // Waits (generously) until the anchor file holds the store's head.

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let srv = serve(store.clone()).await;
    install(&Api::new(srv.url(), Some(&t.admin)), "create-global-role-binding").await;
    let first = file_admin_request(srv.url(), &t.approver, "carol").await;
    wait_anchored(&anchor_file, store.as_ref()).await;
    assert_eq!(
        std::fs::metadata(&anchor_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    srv.shutdown().await;

    // A normal restart: the store verifies from the anchor, and an approval executes.
    let srv = serve(store.clone()).await;
    assert_eq!(srv.integrity_problem(), None);
    let (st, ready) = Api::new(srv.url(), None).get("/readyz").await;
    assert_eq!((st, ready.get("audit")), (200, None), "{ready}");
    let (st, body) = Api::new(srv.url(), Some(&t.admin))
        .post(&format!("/api/v1/requests/{first}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(sim.has_binding(&sim.user_id("carol").unwrap(), "admin"));
    let second = file_admin_request(srv.url(), &t.approver, "dave").await;
    wait_anchored(&anchor_file, store.as_ref()).await;

    // History is rewritten under the running service, consistently: the next job run finds it.
    rewrite_history(&path, store.audit_entries().await.unwrap());
    store
        .verify_audit()
        .await
        .expect("the rewritten log is consistent in itself");
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.integrity_problem().is_none() {
        assert!(
            Instant::now() < deadline,
            "the service never noticed the rewritten history"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let problem = srv.integrity_problem().unwrap();
    assert!(problem.contains("rewritten"), "{problem}");
    let (st, ready) = Api::new(srv.url(), None).get("/readyz").await;
    assert_eq!((st, ready["audit"].as_str()), (503, Some("unverified")), "{ready}");
    let creates = sim.writes("globalrolebindings", "create");
    let (st, body) = Api::new(srv.url(), Some(&t.admin))
        .post(&format!("/api/v1/requests/{second}/approve"), json!({}))
        .await;
    assert_eq!(st, 409, "{body}");
    assert!(
        body.to_string()
            .contains("does not verify from the head this service published"),
        "{body}"
    );
    let dave = sim.user_id("dave").unwrap();
    assert!(!sim.has_binding(&dave, "admin"));
    let rid: RequestId = second.parse().unwrap();
    assert_eq!(
        store.get_request(&rid).await.unwrap().state,
        RequestState::Approved,
        "the decision is recorded, nothing claimed"
    );
    srv.shutdown().await;

    // A restart does not forget: the anchor file still holds the published head.
    let srv = serve(store.clone()).await;
    assert!(
        srv.integrity_problem().is_some_and(|p| p.contains("rewritten")),
        "{:?}",
        srv.integrity_problem()
    );
    let (st, body) = Api::new(srv.url(), Some(&t.admin))
        .post(&format!("/api/v1/requests/{second}/approve"), json!({}))
        .await;
    assert_eq!(st, 409, "{body}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(!sim.has_binding(&dave, "admin"));
    assert_eq!(sim.writes("globalrolebindings", "create"), creates);
    srv.shutdown().await;
}

/// `rancherctl <args>` on a store: exit code, stdout and stderr.
fn cli_on_store(state: &std::path::Path, store_url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(rancherctl())
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env("RANCHERCTL_STORE", store_url)
        .env("NO_COLOR", "1")
        .output()
        .expect("rancherctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How a scenario backs a store up and restores it.
trait BackupKind {
    /// Backs the live store up while the service runs; answers the head the backup holds.
    fn backup(&self, state: &std::path::Path) -> String;
    /// Puts the backup in place of the store (the service stopped); answers the restored store's URL.
    fn restore(&self) -> String;
}

/// SQLite: `rancherctl approvals backup FILE`, restored by copying the file back.
struct SqliteBackup {
    path: std::path::PathBuf,
    copy: std::path::PathBuf,
}

impl BackupKind for SqliteBackup {
    fn backup(&self, state: &std::path::Path) -> String {
        let url = format!("sqlite:{}", self.path.display());
        let (code, out, err) = cli_on_store(state, &url, &["approvals", "backup", self.copy.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("chain verified"), "{out}");
        assert_eq!(
            std::fs::metadata(&self.copy).unwrap().permissions().mode() & 0o777,
            0o600
        );
        out.split("head ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("the head")
            .to_string()
    }

    fn restore(&self) -> String {
        let dir = self.path.parent().unwrap();
        let name = self.path.file_name().unwrap().to_string_lossy().to_string();
        for f in [format!("{name}-wal"), format!("{name}-shm")] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        std::fs::copy(&self.copy, &self.path).unwrap();
        format!("sqlite:{}", self.path.display())
    }
}

/// PostgreSQL: `pg_dump -Fc` of the live database, `pg_restore` into a new one.
struct PostgresBackup {
    live: TestDatabase,
    restored: TestDatabase,
    dump: std::path::PathBuf,
}

impl BackupKind for PostgresBackup {
    fn backup(&self, _state: &std::path::Path) -> String {
        let head = {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { self.live.store().await.audit_head().await.unwrap() })
        };
        let pg_dump = rancher_approval::test_util::client_binary("pg_dump").expect("pg_dump beside the server");
        let out = Command::new(pg_dump)
            .args(["-Fc", "-f"])
            .arg(&self.dump)
            .arg(self.live.url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}:{}", head.seq, head.hash)
    }

    fn restore(&self) -> String {
        let pg_restore = rancher_approval::test_util::client_binary("pg_restore").expect("pg_restore");
        let out = Command::new(pg_restore)
            .args(["--no-owner", "-d", self.restored.url()])
            .arg(&self.dump)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.restored.url().to_string()
    }
}

/// Issue 33: a backup of a store the service is using, restored after the store has moved on: the restored store
/// verifies up to the backed-up head, the service finds it older than the head it published and executes nothing
/// until the operator moves the old anchor away (the explicit step), after which the restored chain serves again.
async fn a_backup_restores_and_an_older_one_waits_for_the_operator(
    live: Arc<dyn Store>,
    kind: Arc<dyn BackupKind + Send + Sync>,
) {
    let dir = tempfile::tempdir().unwrap();
    let state = state_dir(dir.path());
    let anchor_file = dir.path().join("audit-anchor.json");
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 6).await;
    let svc = rancher_access_tests::server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let serve = |store: Arc<dyn Store>| {
        rancher_access_tests::server::start(
            rancher_access_tests::server::config(&sim, &svc, store).anchor_file(&anchor_file),
        )
    };

    let srv = serve(live.clone()).await;
    install(&Api::new(srv.url(), Some(&t.admin)), "create-global-role-binding").await;
    let carol = file_admin_request(srv.url(), &t.approver, "carol").await;
    // The backup, taken by another process while the service runs.
    let head = tokio::task::spawn_blocking({
        let (kind, state) = (kind.clone(), state.clone());
        move || kind.backup(&state)
    })
    .await
    .unwrap();
    // The store moves on, and the service publishes the newer head.
    let dave = file_admin_request(srv.url(), &t.approver, "dave").await;
    wait_anchored(&anchor_file, live.as_ref()).await;
    srv.shutdown().await;
    drop(live);

    // Restore (as an operator would, with the service stopped) and check the restore against the saved head.
    let url = tokio::task::spawn_blocking({
        let kind = kind.clone();
        move || kind.restore()
    })
    .await
    .unwrap();
    let store = rancher_approval::StoreUrl::parse(&url).unwrap().open().await.unwrap();
    let (code, _, err) = tokio::task::spawn_blocking({
        let (state, url, head) = (state.clone(), url.clone(), head.clone());
        move || {
            cli_on_store(
                &state,
                &url,
                &["approvals", "audit", "--verify", "--expect-head", &head],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "the restored store holds the backed-up head: {err}");

    // Older than the anchor: the service starts, says why it is not ready, and executes nothing.
    let rid: RequestId = dave.parse().unwrap();
    assert!(
        store.get_request(&rid).await.is_err(),
        "the restore predates dave's request"
    );
    let srv = serve(store.clone()).await;
    assert!(
        srv.integrity_problem().is_some(),
        "a restore older than the anchor is noticed"
    );
    let (st, ready) = Api::new(srv.url(), None).get("/readyz").await;
    assert_eq!((st, ready["audit"].as_str()), (503, Some("unverified")), "{ready}");
    let (st, body) = Api::new(srv.url(), Some(&t.admin))
        .post(&format!("/api/v1/requests/{carol}/approve"), json!({}))
        .await;
    assert_eq!(st, 409, "{body}");
    assert!(!sim.has_binding(&sim.user_id("carol").unwrap(), "admin"));
    srv.shutdown().await;

    // The explicit step: the operator moves the old anchor away; the restored chain serves from its own head.
    std::fs::rename(&anchor_file, dir.path().join("audit-anchor.json.before-restore")).unwrap();
    let srv = serve(store.clone()).await;
    assert_eq!(srv.integrity_problem(), None);
    let (st, ready) = Api::new(srv.url(), None).get("/readyz").await;
    assert_eq!(st, 200, "{ready}");
    let rid: RequestId = carol.parse().unwrap();
    assert_eq!(
        store.get_request(&rid).await.unwrap().state,
        RequestState::Approved,
        "the refused approval was recorded, never claimed"
    );
    let creates = sim.writes("globalrolebindings", "create");
    // Dave's request was lost with the restore; filed again, it runs, once.
    let again = file_admin_request(srv.url(), &t.approver, "dave").await;
    let (st, body) = Api::new(srv.url(), Some(&t.admin))
        .post(&format!("/api/v1/requests/{again}/approve"), json!({}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(sim.has_binding(&sim.user_id("dave").unwrap(), "admin"));
    assert_eq!(
        sim.writes("globalrolebindings", "create"),
        creates + 1,
        "executed exactly once"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_backup_of_a_live_store_restores_and_an_older_one_waits_for_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let live: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let kind = SqliteBackup {
        copy: dir.path().join("backup.db"),
        path,
    };
    a_backup_restores_and_an_older_one_waits_for_the_operator(live, Arc::new(kind)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pg_dump_of_a_live_store_restores_and_an_older_one_waits_for_the_operator() {
    let Some(live_db) = TestDatabase::create("backup_live").await else {
        return;
    };
    let Some(restored) = TestDatabase::create("backup_restored").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let live: Arc<dyn Store> = Arc::new(live_db.store().await);
    let kind = PostgresBackup {
        live: live_db,
        restored,
        dump: dir.path().join("approvals.dump"),
    };
    a_backup_restores_and_an_older_one_waits_for_the_operator(live, Arc::new(kind)).await;
}

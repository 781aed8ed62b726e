//! `rancherctl serve` as a real process: the ready line, a clean stop on SIGTERM, the refusal of plain HTTP off
//! loopback, and a SIGKILL right after an execution was claimed, settled when the service starts again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use rancher_access_tests::process::{KillOnDrop, SpawnKilledOnDrop};
use std::time::{Duration, Instant};

use rancher_access_tests::cli::{command, SimCli};
use rancher_access_tests::server::{self, Api};
use rancher_approval::{RequestId, RequestState, SqliteStore, Store};
use rancher_sim::{Faults, RancherVersion};
use serde_json::json;

/// A running `rancherctl serve` and the URL it printed.
struct Served {
    child: KillOnDrop,
    url: String,
    stderr: std::thread::JoinHandle<String>,
    stdout_rest: std::thread::JoinHandle<String>,
}

fn serve(env: &[(&str, String)], args: &[&str]) -> Served {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let mut child = command(&all, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_killed_on_drop()
        .expect("rancherctl serve starts");
    let err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).expect("a line on stdout");
    let Some(url) = line.trim().strip_prefix("RANCHERCTL_SERVER=").map(str::to_string) else {
        let status = child.wait();
        panic!(
            "not the ready line: {line:?}; exit {status:?}; stderr:\n{}",
            stderr.join().unwrap_or_default()
        );
    };
    let stdout_rest = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    Served {
        child,
        url,
        stderr,
        stdout_rest,
    }
}

fn env_for(s: &SimCli, service_token: &str) -> Vec<(&'static str, String)> {
    s.connected_env(Some(service_token))
}

/// `rancherctl serve` for `s` with its own service account, on a SQLite store `db` in the test's directory.
fn serve_sqlite(s: &SimCli, db: &str) -> Served {
    let svc = s.rt.block_on(server::service_account(&s.sim));
    let db = s.tmp.path().join(db);
    serve(
        &env_for(s, &svc),
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            &format!("sqlite:{}", db.display()),
        ],
    )
}

/// The environment of a person using the service at `url` with `token`. No Rancher domain: the token only proves
/// who they are to the service.
fn through(s: &SimCli, url: &str, token: &str) -> Vec<(&'static str, String)> {
    let mut env = s.base_env();
    env.push(("RANCHER_TOKEN", token.to_string()));
    env.push(("RANCHERCTL_SERVER", url.to_string()));
    env
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} failed");
}

#[test]
fn serve_prints_one_ready_line_and_exits_0_on_sigterm() {
    let s = SimCli::start(RancherVersion::V2_13, 4);
    let svc = s.rt.block_on(server::service_account(&s.sim));
    let db = s.tmp.path().join("served.db");
    let mut served = serve(
        &env_for(&s, &svc),
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            &format!("sqlite:{}", db.display()),
        ],
    );
    assert!(served.url.starts_with("http://127.0.0.1:"), "{}", served.url);
    let api = Api::new(&served.url, Some(&s.sim.tokens().admin));
    let (st, me) = s.rt.block_on(api.get("/api/v1/me"));
    assert_eq!((st, me["username"].as_str()), (200, Some("admin")));
    let (st, _) = s.rt.block_on(Api::new(&served.url, None).get("/readyz"));
    assert_eq!(st, 200);
    signal(&served.child, "-TERM");
    let status = served.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {}", served.stderr.join().unwrap());
    assert_eq!(served.stdout_rest.join().unwrap(), "", "exactly one line on stdout");
    let err = served.stderr.join().unwrap();
    for secret in s
        .token_secrets()
        .iter()
        .chain([rancher_access_tests::cli::secret_of(&svc).to_string()].iter())
    {
        assert!(!err.contains(secret.as_str()), "a token secret is in the log");
    }
    assert!(db.exists());
}

#[test]
fn serve_refuses_plain_http_off_loopback() {
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let out = command(&["serve", "--listen", "0.0.0.0:0"], &env_for(&s, &s.sim.tokens().admin))
        .output()
        .unwrap();
    let run = rancher_access_tests::cli::Run::from_output(out);
    run.expect_code(1);
    assert!(
        run.stderr.contains("refusing plain HTTP on 0.0.0.0") && run.stderr.contains("--tls-cert"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn a_sigkill_after_the_claim_is_settled_when_the_service_starts_again() {
    let s = SimCli::start(RancherVersion::V2_13, 4);
    let svc = s.rt.block_on(server::service_account(&s.sim));
    let db = s.tmp.path().join("crash.db");
    let store_arg = format!("sqlite:{}", db.display());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--store",
        store_arg.as_str(),
        "--job-interval",
        "1",
    ];
    let mut served = serve(&env_for(&s, &svc), &args);
    let t = s.sim.tokens().clone();
    let (admin, approver) = (
        Api::new(&served.url, Some(&t.admin)),
        Api::new(&served.url, Some(&t.approver)),
    );
    s.rt.block_on(server::install(&admin, "create-global-role-binding"));
    let (st, sub) = s.rt.block_on(approver.post(
        "/api/v1/runs",
        json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}}),
    ));
    assert_eq!(st, 202, "{sub}");
    let id: RequestId = sub["request"].as_str().unwrap().parse().unwrap();
    let base = s.sim.writes("globalrolebindings", "create");

    // Every Rancher call now takes a while, so the execution is caught between its claim and its outcome.
    s.sim
        .set_faults(Faults::none().with_latency(Duration::from_millis(700)));
    let approving = s.rt.spawn({
        let (admin, id) = (admin.clone(), id.to_string());
        async move { admin.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await }
    });
    let reader = SqliteStore::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.rt.block_on(reader.get_request(&id)).unwrap().state != RequestState::Executing {
        assert!(Instant::now() < deadline, "the execution was never claimed");
        std::thread::sleep(Duration::from_millis(20));
    }
    served.child.kill().unwrap(); // SIGKILL
    served.child.wait().unwrap();
    approving.abort();
    s.sim.set_faults(Faults::none());
    assert_eq!(
        s.rt.block_on(reader.get_request(&id)).unwrap().state,
        RequestState::Executing,
        "left in doubt by the crash"
    );

    // Started again on the same store: the in-doubt execution is checked against Rancher and settled, audited.
    let mut again = serve(&env_for(&s, &svc), &args);
    let settled = s.rt.block_on(reader.get_request(&id)).unwrap();
    let carol = s.sim.user_id("carol").unwrap();
    let bound = s.sim.has_binding(&carol, "admin");
    match settled.state {
        RequestState::Succeeded => assert!(bound, "settled as succeeded, but there is no binding"),
        RequestState::Failed => assert!(!bound, "settled as failed, but the binding exists"),
        other => panic!("not settled at start: {other}"),
    }
    assert!(
        s.sim.writes("globalrolebindings", "create") <= base + 1,
        "never sent twice"
    );
    // Taken over under a new claim (audited), then settled: found applied (`reconciled`) or run now, once.
    let kinds: Vec<rancher_approval::AuditKind> =
        s.rt.block_on(reader.audit_entries())
            .unwrap()
            .into_iter()
            .filter(|e| e.request_id.as_deref() == Some(id.as_str()))
            .map(|e| e.kind)
            .collect();
    let taken = kinds
        .iter()
        .position(|k| *k == rancher_approval::AuditKind::ExecutionTakenOver)
        .unwrap_or_else(|| panic!("no takeover in {kinds:?}"));
    assert!(
        matches!(
            kinds[taken + 1..],
            [rancher_approval::AuditKind::Reconciled] | [rancher_approval::AuditKind::ExecutionFinished]
        ),
        "{kinds:?}"
    );
    let (st, shown) =
        s.rt.block_on(Api::new(&again.url, Some(&t.admin)).get(&format!("/api/v1/requests/{id}")));
    assert_eq!((st, shown["state"].as_str()), (200, Some(settled.state.as_str())));
    // Approving again changes nothing.
    let (st, _) =
        s.rt.block_on(Api::new(&again.url, Some(&t.admin)).post(&format!("/api/v1/requests/{id}/approve"), json!({})));
    assert_eq!(st, 409);
    assert!(s.sim.writes("globalrolebindings", "create") <= base + 1);
    signal(&again.child, "-TERM");
    assert_eq!(again.child.wait().unwrap().code(), Some(0));
    let _ = (again.stderr.join(), served.stderr.join());
}

/// `rancherctl --server URL` (and `RANCHERCTL_SERVER`): the same commands and exit codes as local mode, with the
/// store and the execution in the service. Each person uses their own token; none is stored in the client's state.
#[test]
fn the_cli_works_through_the_service_with_the_same_commands_and_exit_codes() {
    let s = SimCli::start(RancherVersion::V2_13, 4);
    let mut served = serve_sqlite(&s, "remote.db");
    let t = s.sim.tokens().clone();
    let person = |token: &str| through(&s, &served.url, token);
    let rc = |args: &[&str], token: &str| {
        rancher_access_tests::cli::Run::from_output(command(args, &person(token)).output().unwrap())
    };

    // Installing needs an admin, through the service as locally (`user` is a standard user; `approver` is the
    // second admin).
    let refused = rc(&["workflows", "install", "create-global-role-binding"], &t.user);
    refused.expect_code(1);
    assert!(refused.stderr.contains("admin"), "{}", refused.stderr);
    rc(&["workflows", "install", "create-global-role-binding"], &t.admin).expect_code(0);
    let listed = rc(&["-o", "json", "workflows", "list"], &t.approver);
    let docs: serde_json::Value = serde_json::from_str(&listed.expect_code(0).stdout).unwrap();
    let grb = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "create-global-role-binding")
        .unwrap();
    assert_eq!(grb["installed"], true, "the service's installation, not a local one");

    // A write files a request in the service: exit 3 with its id.
    let sub = rc(
        &[
            "-o",
            "json",
            "run",
            "create-global-role-binding",
            "--input",
            "user=carol",
            "--input",
            "role=admin",
        ],
        &t.approver,
    );
    let pending: serde_json::Value = serde_json::from_str(&sub.expect_code(3).stdout).unwrap();
    let id = pending["request"].as_str().unwrap().to_string();
    assert_eq!(pending["status"], "pending");
    assert!(
        !s.tmp.path().join("state").join("approvals.db").exists(),
        "no local store in server mode"
    );

    // Listed and shown from the service, in the local shapes.
    let list = rc(&["-o", "json", "approvals", "list", "--state", "pending"], &t.admin);
    let reqs: Vec<rancher_approval::ApprovalRequest> = serde_json::from_str(&list.expect_code(0).stdout).unwrap();
    assert_eq!(
        reqs.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
        std::slice::from_ref(&id)
    );
    let shown = rc(&["approvals", "show", &id], &t.admin);
    assert!(
        shown.expect_code(0).stdout.contains("carol") && shown.stdout.contains("requester:"),
        "{}",
        shown.stdout
    );

    // The requester may not approve their own request; an admin's approval runs it once, in the service.
    let own = rc(&["approvals", "approve", &id], &t.approver);
    own.expect_code(1);
    let base = s.sim.writes("globalrolebindings", "create");
    let ok = rc(&["-o", "json", "approvals", "approve", &id], &t.admin);
    let done: serde_json::Value = serde_json::from_str(&ok.expect_code(0).stdout).unwrap();
    assert_eq!(
        (done["status"].as_str(), done["request"].as_str()),
        (Some("succeeded"), Some(id.as_str())),
        "{done}"
    );
    assert_eq!(s.sim.writes("globalrolebindings", "create"), base + 1);
    assert!(s.sim.has_binding(&s.sim.user_id("carol").unwrap(), "admin"));
    let again = rc(&["approvals", "approve", &id], &t.admin);
    again.expect_code(1);
    assert!(again.stderr.contains("approvals service"), "{}", again.stderr);

    // The audit log is verified here from the entries the service sends.
    let audit = rc(&["approvals", "audit", "--verify"], &t.admin);
    assert!(
        audit.expect_code(0).stdout.contains("hash chain intact"),
        "{}",
        audit.stdout
    );
    // Store-level commands say where to run them; a bad URL says what to pass.
    let export = rc(&["approvals", "export"], &t.admin);
    assert!(export.expect_code(1).stderr.contains("--store"), "{}", export.stderr);
    let mut env = person(&t.admin);
    env.retain(|(k, _)| *k != "RANCHERCTL_SERVER");
    let plain = rancher_access_tests::cli::Run::from_output(
        command(&["--server", "http://approvals.example.com", "approvals", "list"], &env)
            .output()
            .unwrap(),
    );
    assert!(plain.expect_code(1).stderr.contains("https://"), "{}", plain.stderr);
    // A profile remembers the service: `connect --server URL` saves it; its approval commands then go there, and
    // `--server ''` uses the local store instead.
    let mut env = s.connected_env(Some(&t.admin));
    env.push(("RANCHERCTL_SERVER", served.url.clone()));
    let saved = rancher_access_tests::cli::Run::from_output(command(&["connect"], &env).output().unwrap());
    saved.expect_code(0);
    let shown = rancher_access_tests::cli::Run::from_output(
        command(&["-o", "json", "profiles", "show"], &s.base_env())
            .output()
            .unwrap(),
    );
    assert!(shown.expect_code(0).stdout.contains(&served.url), "{}", shown.stdout);
    let via_profile = rancher_access_tests::cli::Run::from_output(
        command(&["-o", "json", "approvals", "list"], &s.base_env())
            .output()
            .unwrap(),
    );
    let reqs: Vec<rancher_approval::ApprovalRequest> =
        serde_json::from_str(&via_profile.expect_code(0).stdout).unwrap();
    assert_eq!(reqs.len(), 1, "the service's requests, through the profile");
    let local = rancher_access_tests::cli::Run::from_output(
        command(&["--server", "", "-o", "json", "approvals", "list"], &s.base_env())
            .output()
            .unwrap(),
    );
    assert_eq!(local.expect_code(0).stdout.trim(), "[]", "the local store has none");
    for run in [&sub, &list, &ok, &audit, &saved, &shown, &via_profile] {
        rancher_access_tests::cli::assert_no_secrets(
            run,
            &s.token_secrets().iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    signal(&served.child, "-TERM");
    assert_eq!(served.child.wait().unwrap().code(), Some(0));
    let _ = served.stderr.join();
}

/// Two `rancherctl serve` replicas on one PostgreSQL database: 32 requests approved through both at once, one
/// replica SIGKILLed in the middle and started again. Every request ends executed exactly once (one binding per
/// request, one create each on the server), no acknowledged decision is lost, and the audit chain verifies.
#[test]
fn two_replicas_on_one_postgres_execute_each_request_once_across_a_sigkill() {
    const N: usize = 32;
    let s = SimCli::start(RancherVersion::V2_13, N);
    let Some(db) =
        s.rt.block_on(rancher_approval::test_util::TestDatabase::create("replicas"))
    else {
        return;
    };
    let svc = s.rt.block_on(server::service_account(&s.sim));
    let args = ["--listen", "127.0.0.1:0", "--store", db.url(), "--job-interval", "1"];
    let mut a = serve(&env_for(&s, &svc), &args);
    let b = serve(&env_for(&s, &svc), &args);
    let t = s.sim.tokens().clone();
    let api = |served: &Served, token: &str| Api::new(&served.url, Some(token));
    s.rt.block_on(server::install(&api(&a, &t.admin), "create-global-role-binding"));
    let users: Vec<String> = (1..=N).map(|i| format!("user{i:05}")).collect();
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let via = if i % 2 == 0 {
            api(&a, &t.approver)
        } else {
            api(&b, &t.approver)
        };
        let (st, sub) = s.rt.block_on(via.post(
            "/api/v1/runs",
            json!({"workflow": "create-global-role-binding", "inputs": {"user": u, "role": "admin"}}),
        ));
        assert_eq!(st, 202, "{sub}");
        ids.push(sub["request"].as_str().unwrap().parse::<RequestId>().unwrap());
    }
    let base = s.sim.writes("globalrolebindings", "create");
    let reader = s.rt.block_on(db.store());

    // Rancher is slow now, so executions are in flight on both replicas when one is killed.
    s.sim
        .set_faults(Faults::none().with_latency(Duration::from_millis(150)));
    let approvals: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let via = if i % 2 == 0 {
                api(&a, &t.admin)
            } else {
                api(&b, &t.admin)
            };
            let path = format!("/api/v1/requests/{id}/approve");
            s.rt.spawn(async move {
                via.try_post(&path, json!({}))
                    .await
                    .unwrap_or((0, serde_json::Value::Null))
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let executing =
            s.rt.block_on(reader.list_requests(&rancher_approval::RequestFilter::all().state(RequestState::Executing)))
                .unwrap();
        if executing.len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no execution got under way");
        std::thread::sleep(Duration::from_millis(10));
    }
    a.child.kill().unwrap(); // SIGKILL, executions in flight
    a.child.wait().unwrap();
    let answers: Vec<(u16, serde_json::Value)> = approvals.into_iter().map(|h| s.rt.block_on(h).unwrap()).collect();
    s.sim.set_faults(Faults::none());

    // An acknowledged approval is never lost: the request has left `pending` for good.
    for (id, (st, body)) in ids.iter().zip(&answers) {
        if *st == 200 {
            let now = s.rt.block_on(reader.get_request(id)).unwrap();
            assert_ne!(
                now.state,
                RequestState::Pending,
                "{id} was acknowledged ({body}) but is pending again"
            );
        }
    }
    // The replica is started again; the approvals it never answered are sent again through the other one (an
    // approved request that nobody claimed runs when an admin approves again; one in doubt is left to the
    // reconcile, which answers 409 here).
    let a2 = serve(&env_for(&s, &svc), &args);
    for id in &ids {
        let state = s.rt.block_on(reader.get_request(id)).unwrap().state;
        if matches!(state, RequestState::Pending | RequestState::Approved) {
            let (st, body) =
                s.rt.block_on(api(&b, &t.admin).post(&format!("/api/v1/requests/{id}/approve"), json!({})));
            assert!(st == 200 || st == 409, "{st} {body}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let states: Vec<RequestState> = ids
            .iter()
            .map(|id| s.rt.block_on(reader.get_request(id)).unwrap().state)
            .collect();
        if states.iter().all(|st| *st == RequestState::Succeeded) {
            break;
        }
        assert!(Instant::now() < deadline, "not all settled as succeeded: {states:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for u in &users {
        let id = s.sim.user_id(u).unwrap();
        assert_eq!(
            s.sim.roles_of(&id).iter().filter(|r| *r == "admin").count(),
            1,
            "{u}: one binding per request"
        );
    }
    assert_eq!(
        s.sim.writes("globalrolebindings", "create"),
        base + N as u64,
        "each binding was created exactly once"
    );
    s.rt.block_on(reader.verify_audit())
        .expect("one linear, verifiable chain");
    for mut served in [a2, b] {
        signal(&served.child, "-TERM");
        assert_eq!(served.child.wait().unwrap().code(), Some(0));
        let _ = served.stderr.join();
    }
    let _ = a.stderr.join();
}

/// `grants list|extend|revoke` through the service, which keeps the grants and revokes with its own account;
/// `grants expire` says to let the service do it (or to run it on its host).
#[test]
fn grants_go_through_the_service() {
    let s = SimCli::start(RancherVersion::V2_13, 4);
    let served = serve_sqlite(&s, "grants.db");
    let t = s.sim.tokens().clone();
    let person = |token: &str| through(&s, &served.url, token);
    let rc = |args: &[&str], token: &str| {
        rancher_access_tests::cli::Run::from_output(command(args, &person(token)).output().unwrap())
    };
    let json_of = |run: &rancher_access_tests::cli::Run| -> serde_json::Value {
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
    };

    rc(
        &["workflows", "install", "grant-project-role", "--policy", "none"],
        &t.admin,
    )
    .expect_code(0);
    let granted = rc(
        &[
            "run",
            "grant-project-role",
            "--input",
            "project=downstream/Default",
            "--input",
            "user=carol",
            "--input",
            "role=read-only",
            "--input",
            "duration=8h",
        ],
        &t.admin,
    );
    granted.expect_code(0);
    let list = rc(&["-o", "json", "grants", "list", "--active"], &t.admin);
    let grants = json_of(list.expect_code(0));
    let grants = grants.as_array().unwrap_or_else(|| panic!("{grants}"));
    assert_eq!(grants.len(), 1, "{grants:?}");
    let id = grants[0]["id"].as_str().unwrap().to_string();
    assert_eq!(grants[0]["status"], "active");
    // A standard user who neither asked, approved nor holds it does not see it.
    let theirs = rc(&["grants", "list"], &t.user);
    assert_eq!(theirs.expect_code(0).stdout.trim(), "no grants", "{}", theirs.stdout);

    let extended = rc(&["grants", "extend", &id, "--by", "2h"], &t.admin);
    extended.expect_code(0);
    let refused = rc(&["grants", "revoke", &id], &t.user);
    assert!(
        refused.expect_code(1).stderr.contains("approvals service"),
        "{}",
        refused.stderr
    );
    let revoked = rc(&["grants", "revoke", &id], &t.admin);
    assert!(
        revoked.expect_code(0).stdout.contains(&format!("revoked {id}")),
        "{}",
        revoked.stdout
    );
    let expired = rc(&["-o", "json", "grants", "list", "--expired"], &t.admin);
    assert_eq!(
        json_of(expired.expect_code(0)).as_array().map(Vec::len),
        Some(1),
        "{}",
        expired.stdout
    );
    let expire = rc(&["grants", "expire"], &t.admin);
    assert!(expire.expect_code(1).stderr.contains("by itself"), "{}", expire.stderr);
    assert!(
        !s.tmp.path().join("state").join("approvals.db").exists(),
        "no local store in server mode"
    );
}

/// A list run through the service streams: the service sends one JSON line per item (read with the caller's own
/// rights) and the CLI writes each as it arrives, in every format; a list that fails part way exits non-zero with
/// how far it got, its JSON left unclosed.
#[test]
fn lists_stream_through_the_service() {
    let s = SimCli::start(RancherVersion::V2_13, 1_200);
    let served = serve_sqlite(&s, "lists.db");
    let t = s.sim.tokens().clone();
    let env = through(&s, &served.url, &t.admin);
    let rc = |args: &[&str]| rancher_access_tests::cli::Run::from_output(command(args, &env).output().unwrap());
    rc(&["workflows", "install", "list-users"]).expect_code(0);
    let total = s.sim.count("users");

    let run = rc(&["-o", "json", "run", "list-users"]);
    let items: Vec<serde_json::Value> = serde_json::from_str(&run.expect_code(0).stdout).expect("one JSON array");
    assert_eq!(items.len(), total, "every user once");
    let table = rc(&["run", "list-users"]);
    let lines: Vec<&str> = table.expect_code(0).stdout.lines().collect();
    assert!(lines[0].contains("USERNAME"), "{}", lines[0]);
    assert_eq!(lines.last().copied(), Some(format!("{total} users").as_str()));
    let csv = rc(&["-o", "csv", "run", "list-users"]);
    assert_eq!(
        csv.expect_code(0).stdout.lines().count(),
        total + 1,
        "a header and a row per user"
    );

    // On the wire: a header line, one line per item, an end line with the count.
    let body = s.rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/runs", served.url.trim_end_matches('/')))
            .bearer_auth(&t.admin)
            .header("Accept", "application/x-ndjson")
            .json(&json!({"workflow": "list-users"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        resp.text().await.unwrap()
    });
    let lines: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        (lines[0]["status"].as_str(), lines[0]["noun"].as_str()),
        (Some("streaming"), Some("users")),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), total + 2);
    assert_eq!(lines[total + 1], json!({"end": {"count": total}}));

    // Every continue token expires: the first page arrives, then the list fails.
    s.sim.set_faults(Faults {
        continue_expire_rate: 1.0,
        ..Faults::none()
    });
    let failed = rc(&["-o", "json", "run", "list-users"]);
    assert_ne!(failed.code, 0, "{}", failed.stderr);
    assert!(failed.stderr.contains("stopped after 500 users"), "{}", failed.stderr);
    assert_eq!(failed.stderr.matches("stopped after").count(), 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("410") || failed.stderr.to_lowercase().contains("expired"),
        "the cause: {}",
        failed.stderr
    );
    assert!(
        failed.stdout.starts_with("[\n") && !failed.stdout.trim_end().ends_with(']'),
        "unclosed JSON"
    );
    let part: Vec<serde_json::Value> =
        serde_json::from_str(&format!("{}]", failed.stdout.trim_end())).expect("whole items");
    assert_eq!(part.len(), 500);
}

/// N14 (CLI): `approvals approve|deny` through the service read the request and send the content hash they read.
/// Between the CLI and the service a proxy changes the hash in what the CLI reads (as if the request had changed
/// after it was read): the service refuses the decision and nothing runs. Straight to the service, it goes through.
#[test]
fn n14_the_cli_sends_the_hash_of_the_request_it_read() {
    let s = SimCli::start(RancherVersion::V2_13, 4);
    let t = s.sim.tokens().clone();
    let (srv, proxy) = s.rt.block_on(async {
        let svc = server::service_account(&s.sim).await;
        let srv = server::start(server::config(
            &s.sim,
            &svc,
            std::sync::Arc::new(rancher_approval::MemoryStore::new()),
        ))
        .await;
        let proxy = hash_changing_proxy(srv.url().to_string()).await;
        (srv, proxy)
    });
    let admin = Api::new(srv.url(), Some(&t.admin));
    s.rt.block_on(server::install(&admin, "create-global-role-binding"));
    let (st, sub) = s.rt.block_on(Api::new(srv.url(), Some(&t.approver)).post(
        "/api/v1/runs",
        json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}}),
    ));
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();

    for verb in ["approve", "deny"] {
        let run = rancher_access_tests::cli::Run::from_output(
            command(&["approvals", verb, &id], &through(&s, &proxy, &t.admin))
                .output()
                .unwrap(),
        );
        run.expect_code(1);
        assert!(run.stderr.contains("changed"), "{verb}: {}", run.stderr);
    }
    let (_, shown) = s.rt.block_on(admin.get(&format!("/api/v1/requests/{id}")));
    assert_eq!(shown["state"], "pending", "{shown}");
    assert!(!s.sim.has_binding(&s.sim.user_id("carol").unwrap(), "admin"));

    let ok = rancher_access_tests::cli::Run::from_output(
        command(&["approvals", "approve", &id], &through(&s, srv.url(), &t.admin))
            .output()
            .unwrap(),
    );
    ok.expect_code(0);
    assert!(s.sim.has_binding(&s.sim.user_id("carol").unwrap(), "admin"));
    s.rt.block_on(srv.shutdown());
}

/// A loopback proxy in front of `target` that forwards everything, except that a request read
/// (`GET /api/v1/requests/ID`) comes back with another `content_hash`; answers its URL.
async fn hash_changing_proxy(target: String) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (http, target) = (http.clone(), target.clone());
        async move {
            let mut r = http
                .request(
                    method.clone(),
                    format!("{target}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")),
                )
                .body(body);
            for (k, v) in headers
                .iter()
                .filter(|(k, _)| *k == "authorization" || *k == "content-type" || *k == "accept")
            {
                r = r.header(k, v);
            }
            let resp = r.send().await.expect("the service answers");
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let mut body = resp.bytes().await.unwrap_or_default();
            if method == Method::GET && uri.path().starts_with("/api/v1/requests/") {
                if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    v["content_hash"] = json!("f".repeat(64));
                    body = Bytes::from(serde_json::to_vec(&v).unwrap());
                }
            }
            (status, [("content-type", "application/json")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Writes `text` to `name` in the test's directory, owner-only.
fn private_file(s: &SimCli, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = s.tmp.path().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A settings file naming the simulator, the service token (a relative path, from the file's directory) and a
/// SQLite store; `extra` is appended.
fn settings(s: &SimCli, extra: &str) -> std::path::PathBuf {
    if !s.tmp.path().join("service.token").exists() {
        let svc = s.rt.block_on(server::service_account(&s.sim));
        private_file(s, "service.token", &svc);
    }
    let text = format!(
        "domain = \"{}\"\nca-cert = \"ca.pem\"\ntoken-file = \"service.token\"\nstore = \"sqlite:{}\"\n{extra}",
        s.sim.domain(),
        s.tmp.path().join("approvals.db").display()
    );
    let path = s.tmp.path().join("serve.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn serve_takes_its_settings_from_a_config_file_and_flags_win() {
    let s = SimCli::start(RancherVersion::V2_13, 0);
    // The file asks for plain HTTP on every address, which serve refuses; the flag's loopback address wins.
    let file = settings(&s, "listen = \"0.0.0.0:0\"\njob-interval = 5\nlog-format = \"json\"\n");
    let config = file.display().to_string();
    let mut served = serve(&s.base_env(), &["--config", &config, "--listen", "127.0.0.1:0"]);
    assert!(served.url.starts_with("http://127.0.0.1:"), "{}", served.url);
    // Ready: the store and Rancher answer with the domain, CA and token the file named.
    let (st, _) = s.rt.block_on(Api::new(&served.url, None).get("/readyz"));
    assert_eq!(st, 200);
    let (st, me) =
        s.rt.block_on(Api::new(&served.url, Some(&s.sim.tokens().admin)).get("/api/v1/me"));
    assert_eq!((st, me["username"].as_str()), (200, Some("admin")));
    signal(&served.child, "-TERM");
    let status = served.child.wait().unwrap();
    let log = served.stderr.join().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {log}");
    let _ = served.stdout_rest.join();
    // `log-format = "json"`: every log line is one JSON object, the start among them.
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "approvals service started" && l["level"] == "INFO"),
        "{log}"
    );
    // Without the flag the file's listen address is used, and refused for what it is.
    let run = s.exec(&["serve", "--config", &config], &s.base_env());
    run.expect_code(1);
    assert!(
        run.stderr.contains("refusing plain HTTP on 0.0.0.0:0"),
        "{}",
        run.stderr
    );
}

#[test]
fn serve_check_config_checks_without_starting() {
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let metrics = private_file(&s, "metrics.token", "0123456789abcdef0123");
    let file = settings(&s, "listen = \"127.0.0.1:0\"\nmetrics-token-file = \"metrics.token\"\n");
    let config = file.display().to_string();
    let ok = s.exec(&["serve", "--config", &config, "--check-config"], &s.base_env());
    ok.expect_code(0);
    assert!(ok.stdout.contains("the settings are complete"), "{}", ok.stdout);
    assert!(!s.tmp.path().join("approvals.db").exists(), "the store was not opened");

    // A secret file others may read is refused, naming the fix.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&metrics, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bad = s.exec(&["serve", "--config", &config, "--check-config"], &s.base_env());
    bad.expect_code(1);
    assert!(bad.stderr.contains("chmod 600"), "{}", bad.stderr);

    // A misspelt key: usage error, the closest key named.
    let file = settings(&s, "job-intreval = 5\n");
    let typo = s.exec(
        &["serve", "--config", &file.display().to_string(), "--check-config"],
        &s.base_env(),
    );
    typo.expect_code(2);
    assert!(typo.stderr.contains("did you mean `job-interval`?"), "{}", typo.stderr);
    // A secret written into the file is refused without echoing it.
    let file = settings(&s, "token = \"abcdefghijklmnopqrstu\"\n");
    let secret = s.exec(
        &["serve", "--config", &file.display().to_string(), "--check-config"],
        &s.base_env(),
    );
    secret.expect_code(2);
    assert!(
        secret.stderr.contains("secrets are never written in the settings file"),
        "{}",
        secret.stderr
    );
    assert!(!secret.stderr.contains("abcdefghijklmnop"), "{}", secret.stderr);
    // A traces endpoint that is no collector URL: a usage error naming the setting and an example.
    let file = settings(
        &s,
        "listen = \"127.0.0.1:0\"\notlp-endpoint = \"otel-collector:4318\"\n",
    );
    let otlp = s.exec(
        &["serve", "--config", &file.display().to_string(), "--check-config"],
        &s.base_env(),
    );
    otlp.expect_code(2);
    assert!(
        otlp.stderr.contains("the OTLP endpoint `otel-collector:4318`")
            && otlp.stderr.contains("http://otel-collector:4318"),
        "{}",
        otlp.stderr
    );
}

/// Issue 33: a rolling restart of two replicas on one PostgreSQL database under a steady load of requests and
/// approvals. Each replica is replaced in turn: the new one starts, the old one leaves the client's list and gets
/// SIGTERM (it finishes what it has in flight and exits 0). Clients retry a refused connection once on another
/// replica (what a load balancer does). Every request is answered, every approval is executed exactly once, and
/// the audit chain verifies.
#[test]
fn a_rolling_restart_of_two_replicas_loses_and_doubles_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    const N: usize = 40;
    const WORKERS: usize = 4;
    let s = SimCli::start(RancherVersion::V2_13, N);
    let Some(db) =
        s.rt.block_on(rancher_approval::test_util::TestDatabase::create("rolling"))
    else {
        return;
    };
    let svc = s.rt.block_on(server::service_account(&s.sim));
    let args = ["--listen", "127.0.0.1:0", "--store", db.url(), "--job-interval", "1"];
    let a = serve(&env_for(&s, &svc), &args);
    let b = serve(&env_for(&s, &svc), &args);
    let t = s.sim.tokens().clone();
    s.rt.block_on(server::install(
        &Api::new(&a.url, Some(&t.admin)),
        "create-global-role-binding",
    ));
    let base = s.sim.writes("globalrolebindings", "create");
    // Rancher answers a little slowly, so executions are in flight when a replica is told to stop.
    s.sim.set_faults(Faults::none().with_latency(Duration::from_millis(40)));

    let live: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![a.url.clone(), b.url.clone()]));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let users: Vec<String> = (1..=N).map(|i| format!("user{i:05}")).collect();
    // One call through any live replica, retried once on another when the connection is refused or cut.
    async fn call(
        live: &Mutex<Vec<String>>,
        retries: &AtomicUsize,
        pick: usize,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        for attempt in 0..2 {
            let url = {
                let l = live.lock().unwrap();
                l[(pick + attempt) % l.len()].clone()
            };
            match Api::new(&url, Some(token)).try_post(path, body.clone()).await {
                Ok(answer) => return answer,
                Err(e) if attempt == 0 => {
                    retries.fetch_add(1, Ordering::SeqCst);
                    eprintln!("retrying {path} on another replica after: {e}");
                }
                Err(e) => panic!("{path} failed on two replicas: {e}"),
            }
        }
        unreachable!()
    }
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (live, next, done, retries, users, t) = (
                live.clone(),
                next.clone(),
                done.clone(),
                retries.clone(),
                users.clone(),
                t.clone(),
            );
            s.rt.spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(u) = users.get(i) else { break };
                    let (st, sub) = call(
                        &live,
                        &retries,
                        i,
                        &t.approver,
                        "/api/v1/runs",
                        json!({"workflow": "create-global-role-binding", "inputs": {"user": u, "role": "admin"}}),
                    )
                    .await;
                    assert_eq!(st, 202, "filing for {u} (worker {w}): {sub}");
                    let id = sub["request"].as_str().unwrap().to_string();
                    let path = format!("/api/v1/requests/{id}/approve");
                    let (st, body) = call(&live, &retries, i + 1, &t.admin, &path, json!({})).await;
                    assert_eq!(st, 200, "approving {id} for {u}: {body}");
                    ids.push(id);
                    done.fetch_add(1, Ordering::SeqCst);
                }
                ids
            })
        })
        .collect();

    // Replace each replica in turn while the load runs.
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while done.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the load stalled at {}",
                done.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut survivors = Vec::new();
    for (old, after) in [(a, N / 4), (b, N / 2)] {
        wait_for(after);
        let new = serve(&env_for(&s, &svc), &args);
        {
            let mut l = live.lock().unwrap();
            l.retain(|u| *u != old.url);
            l.push(new.url.clone());
        }
        let mut old = old;
        signal(&old.child, "-TERM");
        let status = old.child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "a replica stops cleanly: {}",
            old.stderr.join().unwrap_or_default()
        );
        survivors.push(new);
    }
    let ids: Vec<String> = workers.into_iter().flat_map(|h| s.rt.block_on(h).unwrap()).collect();
    s.sim.set_faults(Faults::none());
    assert_eq!(ids.len(), N, "every request was filed and approved");

    let reader = s.rt.block_on(db.store());
    for id in &ids {
        let id: RequestId = id.parse().unwrap();
        assert_eq!(
            s.rt.block_on(reader.get_request(&id)).unwrap().state,
            RequestState::Succeeded,
            "{id}"
        );
    }
    for u in &users {
        let id = s.sim.user_id(u).unwrap();
        assert_eq!(
            s.sim.roles_of(&id).iter().filter(|r| *r == "admin").count(),
            1,
            "{u}: one binding"
        );
    }
    assert_eq!(
        s.sim.writes("globalrolebindings", "create"),
        base + N as u64,
        "each binding created once"
    );
    s.rt.block_on(reader.verify_audit())
        .expect("one linear, verifiable chain");
    eprintln!(
        "rolling restart: {N} requests, {} retried connections",
        retries.load(Ordering::SeqCst)
    );
    for mut served in survivors {
        signal(&served.child, "-TERM");
        assert_eq!(served.child.wait().unwrap().code(), Some(0));
        let _ = served.stderr.join();
    }
}

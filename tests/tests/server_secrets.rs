//! No person's token (nor the service account's, nor a password) ends up in the approvals service's store,
//! logs, answers, pages or webhook events: every flow runs under a capturing TRACE subscriber, then the SQLite
//! files (with WAL), the captured log, every answer and every delivered event are searched.

use std::sync::Arc;

use rancher_access_tests::cli::secret_of;
use rancher_access_tests::server::{self, Api, Browser};
use rancher_access_tests::Capture;
use rancher_approval::SqliteStore;
use rancher_sim::RancherVersion;
use serde_json::json;

#[track_caller]
fn scan(what: &str, text: &[u8], secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.windows(s.len()).any(|w| w == s.as_bytes()),
            "a secret is in the {what}"
        );
    }
}

#[test]
fn no_token_or_password_reaches_the_store_logs_answers_or_pages() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this test binary");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("approvals.db");
    let mut seen: Vec<u8> = Vec::new();

    let (secrets, config_debug) = rt.block_on(async {
        let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
        let svc = server::service_account(&sim).await;
        let t = sim.tokens().clone();
        let mut secrets: Vec<String> = [&t.admin, &t.approver, &t.user, &t.expired, &svc].iter().map(|s| secret_of(s).to_string()).collect();
        secrets.push(rancher_sim::DEFAULT_PASSWORD.to_string());
        secrets.push(server::SERVICE_PASSWORD.to_string());
        let config = server::config(&sim, &svc, Arc::new(SqliteStore::open(&db).unwrap()));
        let config_debug = format!("{config:?}");
        let srv = server::start(config).await;
        let (admin, approver, alice) = (Api::new(srv.url(), Some(&t.admin)), Api::new(srv.url(), Some(&t.approver)), Api::new(srv.url(), Some(&t.user)));
        let mut answers = Vec::new();
        server::install(&admin, "create-global-role-binding").await;
        server::install(&admin, "list-users").await;
        answers.push(admin.post("/api/v1/runs", json!({"workflow": "list-users"})).await);
        answers.push(alice.post("/api/v1/runs", json!({"workflow": "list-users"})).await);
        let (_, sub) = approver.post("/api/v1/runs", json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}, "reason": "r"})).await;
        let id = sub["request"].as_str().unwrap().to_string();
        answers.push(alice.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await);
        answers.push(approver.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await);
        answers.push(admin.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await);
        answers.push(admin.get(&format!("/api/v1/requests/{id}")).await);
        answers.push(admin.get("/api/v1/audit").await);
        answers.push(Api::new(srv.url(), Some(&t.expired)).get("/api/v1/me").await);
        answers.push(Api::new(srv.url(), Some(&format!("{}x", t.admin))).get("/api/v1/me").await);
        answers.push(Api::new(srv.url(), None).get("/metrics").await);
        for (_, v) in &answers {
            seen.extend_from_slice(v.to_string().as_bytes());
        }
        let mut b = Browser::new(srv.url(), None);
        b.sign_in_with_token(&t.admin).await;
        seen.extend_from_slice(b.last_set_cookie.join("\n").as_bytes());
        for path in ["/", "/history", "/admin", &format!("/requests/{id}")] {
            seen.extend_from_slice(b.get(path).await.html.as_bytes());
        }
        let mut p = Browser::new(srv.url(), None);
        let login = p.get("/login").await;
        let page = p.post("/login", &[("csrf", &login.csrf()), ("username", "approver"), ("password", rancher_sim::DEFAULT_PASSWORD)]).await;
        seen.extend_from_slice(page.html.as_bytes());
        seen.extend_from_slice(p.get("/").await.html.as_bytes());
        let bad = p.post("/login", &[("csrf", "x"), ("token", &t.user)]).await;
        seen.extend_from_slice(bad.html.as_bytes());
        srv.shutdown().await;
        (secrets, config_debug)
    });

    scan("answers and pages", &seen, &secrets);
    scan("configuration's Debug", config_debug.as_bytes(), &secrets);
    let log = capture.0.lock().unwrap().clone();
    assert!(!log.is_empty(), "the TRACE capture saw the service");
    scan("log", &log, &secrets);
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        scan(
            &format!("store file {}", p.display()),
            &std::fs::read(&p).unwrap(),
            &secrets,
        );
        files += 1;
    }
    assert!(files >= 1);
}

//! Inputs are data, never host paths (review 2026-12b, N1 and S5), end to end through the approvals service over
//! real HTTPS against the simulator, with a SQLite store and a webhook receiver: a path in an input is refused
//! with the fix named and nothing of the file reaches the answer, the store, the audit log or a webhook; settings
//! and test credentials sent inline are shown masked by an allow-list, held in memory for their one request, used
//! once, and gone after a restart.
//!
//! Only this file's tests touch the process-wide held secrets (`forget_all` stands for a restart), so they are
//! kept in one test binary of their own.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use rancher_access_tests::server::{self, Api};
use rancher_approval::SqliteStore;
use rancher_sim::RancherVersion;
use serde_json::{json, Value};

type Bodies = Arc<Mutex<Vec<String>>>;

/// Everything the process logs, at TRACE, from the first call on (one global subscriber for this test binary).
fn logs() -> &'static rancher_access_tests::Capture {
    static CAPTURE: std::sync::OnceLock<rancher_access_tests::Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = rancher_access_tests::Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this test binary");
        capture
    })
}

/// A webhook receiver on loopback keeping every raw body.
async fn receiver(bodies: Bodies) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let bodies = bodies.clone();
            async move {
                bodies.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    format!("http://{addr}/hook").parse().unwrap()
}

fn webhook_secret(dir: &Path) -> secrecy::SecretString {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join("webhook.secret");
    std::fs::write(&f, "a-long-random-webhook-secret-0123456789\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    rancher_server::config::read_secret_file(&f).unwrap()
}

/// Every byte the store keeps on disk (the database and its journal files), as text.
fn store_bytes(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("approvals.db") {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
        }
    }
    all
}

async fn wait_for(bodies: &Bodies, what: &str, pred: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pred(&bodies.lock().unwrap()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Active Directory settings inline, with a secret and a field nobody listed as harmless.
fn ad_settings() -> Value {
    json!({"servers": ["ad.example.com"], "serviceAccountUsername": "svc", "serviceAccountPassword": "svc-S3cret-inline",
           "userSearchBase": "dc=example,dc=com", "customLdapHint": "internal-hint-value"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n1_a_standard_user_filing_a_host_path_gets_400_and_nothing_of_the_file_anywhere() {
    let log = logs();
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 2).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let bodies: Bodies = Arc::default();
    let hook = receiver(bodies.clone()).await;
    let db = dir.path().join("approvals.db");
    let srv = server::start(
        server::config(&sim, &svc, Arc::new(SqliteStore::open(&db).unwrap()))
            .webhook(hook)
            .webhook_secret(webhook_secret(dir.path())),
    )
    .await;
    let admin = Api::new(srv.url(), Some(&t.admin));
    let alice = Api::new(srv.url(), Some(&t.user));
    server::install(&admin, "access-control-enable").await;

    // A JSON file of the service's host holding a secret (a kubeconfig, say), and the host's name file.
    let host = tempfile::tempdir().unwrap();
    let kube = host.path().join("kubeconfig.json");
    std::fs::write(
        &kube,
        r#"{"users": [{"name": "ops", "user": {"token": "kube-token-MARKER-do-not-leak"}}]}"#,
    )
    .unwrap();
    let pw = host.path().join("service.token");
    std::fs::write(&pw, "svc-token-MARKER-secret\n").unwrap();
    let files = [
        json!({"provider": "openldap", "config": "/etc/hostname", "test-user": "x", "test-password-file": "/etc/hostname"}),
        json!({"provider": "openldap", "config": kube.display().to_string(), "test-user": "x", "test-password-file": pw.display().to_string()}),
        json!({"provider": "openldap", "config": {"servers": ["ldap"]}, "test-user": "x", "test-password-file": pw.display().to_string()}),
        json!({"provider": "github", "config": "./kubeconfig.json", "test-code-file": "/dev/zero"}),
    ];
    let mut answers = String::new();
    for inputs in files {
        let (st, body) = alice
            .post(
                "/api/v1/runs",
                json!({"workflow": "access-control-enable", "inputs": inputs}),
            )
            .await;
        assert_eq!(st, 400, "a path is refused: {body}");
        let e = body["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("never reads files on its own host") && e.contains("inline"),
            "the error names the fix: {e}"
        );
        answers.push_str(&body.to_string());
    }
    let (st, list) = admin.get("/api/v1/requests").await;
    assert_eq!(st, 200);
    answers.push_str(&list.to_string());
    assert!(
        !list.to_string().contains("access-control-enable"),
        "no request was filed: {list}"
    );

    // A request that is filed (inline settings) reaches the receiver, so any earlier event would have too.
    let (st, sub) = alice
        .post("/api/v1/runs", json!({"workflow": "access-control-enable", "inputs": {"provider": "activedirectory", "config": ad_settings(), "test-user": "jdoe", "test-password": "jdoe-password"}}))
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();
    wait_for(&bodies, "the inline request's event", |b| {
        b.iter().any(|x| x.contains(&id))
    })
    .await;

    let hostname = std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let hooks = bodies.lock().unwrap().join("\n");
    let logged = String::from_utf8_lossy(&log.bytes()).into_owned();
    for (name, text) in [
        ("the answers", &answers),
        ("the store and its audit log", &store_bytes(dir.path())),
        ("the webhook", &hooks),
        ("the logs", &logged),
    ] {
        for marker in [
            "kube-token-MARKER",
            "svc-token-MARKER",
            "kubeconfig.json",
            "service.token",
        ] {
            assert!(!text.contains(marker), "{marker} reached {name}");
        }
        if hostname.len() >= 8 {
            assert!(!text.contains(&hostname), "the host name reached {name}");
        }
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n1_inline_settings_and_test_password_are_masked_held_once_and_gone_after_a_restart() {
    let log = logs();
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 2).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let bodies: Bodies = Arc::default();
    let hook = receiver(bodies.clone()).await;
    let secret = webhook_secret(dir.path());
    let db = dir.path().join("approvals.db");
    let config = || {
        server::config(&sim, &svc, Arc::new(SqliteStore::open(&db).unwrap()))
            .webhook(hook.clone())
            .webhook_secret(secret.clone())
    };
    let srv = server::start(config()).await;
    server::install(&Api::new(srv.url(), Some(&t.admin)), "access-control-enable").await;
    let inputs = json!({"provider": "activedirectory", "config": ad_settings(), "mode": "required", "allow": "Engineering", "test-user": "jdoe", "test-password": "jdoe-password"});
    let file = |srv: &rancher_server::RunningServer| {
        let (alice, inputs) = (Api::new(srv.url(), Some(&t.user)), inputs.clone());
        async move {
            let (st, sub) = alice
                .post(
                    "/api/v1/runs",
                    json!({"workflow": "access-control-enable", "inputs": inputs}),
                )
                .await;
            assert_eq!(st, 202, "{sub}");
            sub["request"].as_str().unwrap().to_string()
        }
    };

    // Filed, then the service restarts (the process's memory is gone) before the approval.
    let first = file(&srv).await;
    let (_, shown) = Api::new(srv.url(), Some(&t.admin))
        .get(&format!("/api/v1/requests/{first}"))
        .await;
    let settings = &shown["inputs"]["settings-shown"];
    assert_eq!(
        settings["servers"],
        json!(["ad.example.com"]),
        "approvers see the known fields: {shown}"
    );
    assert_eq!(settings["serviceAccountPassword"], json!("<masked>"));
    assert_eq!(
        settings["customLdapHint"],
        json!("<masked>"),
        "a field nobody listed is masked, not shown"
    );
    let held = shown["inputs"]["held-secrets"]["held"].as_str().unwrap_or_default();
    assert!(
        held.contains("never stored") && held.contains("restart"),
        "the request says where the secrets are: {shown}"
    );
    srv.shutdown().await;
    rancher_workflows::held::forget_all();
    let srv = server::start(config()).await;
    let admin = Api::new(srv.url(), Some(&t.admin));
    let (st, after) = admin
        .post(&format!("/api/v1/requests/{first}/approve"), json!({"reason": "ok"}))
        .await;
    assert_eq!(st, 200, "{after}");
    let text = after.to_string();
    assert!(
        text.contains("are gone") && text.contains("File the request again"),
        "the run says why and what to do: {after}"
    );
    assert_eq!(
        sim.object("authconfigs", "activedirectory").unwrap()["enabled"],
        json!(false),
        "nothing was sent"
    );

    // Filed again and approved: the held secrets are used once, and the provider is on.
    let second = file(&srv).await;
    let (st, done) = admin
        .post(&format!("/api/v1/requests/{second}/approve"), json!({"reason": "ok"}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    let on = sim.object("authconfigs", "activedirectory").unwrap();
    assert_eq!(on["enabled"], json!(true));
    assert_eq!(
        on["serviceAccountPassword"],
        json!("svc-S3cret-inline"),
        "the secret was sent from memory"
    );
    wait_for(&bodies, "the second request's events", |b| {
        b.iter().filter(|x| x.contains(&second)).count() >= 3
    })
    .await;

    let (_, list) = admin.get("/api/v1/requests").await;
    let hooks = bodies.lock().unwrap().join("\n");
    let logged = String::from_utf8_lossy(&log.bytes()).into_owned();
    assert!(!logged.is_empty(), "the service logged (so the scan means something)");
    for (name, text) in [
        ("the answers", format!("{shown}{after}{done}{list}")),
        ("the store and its audit log", store_bytes(dir.path())),
        ("the webhook", hooks),
        ("the logs", logged),
    ] {
        for secret in ["svc-S3cret-inline", "jdoe-password", "internal-hint-value"] {
            assert!(!text.contains(secret), "{secret} reached {name}");
        }
    }
    srv.shutdown().await;
}

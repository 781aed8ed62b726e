//! Webhooks end to end: a receiver on loopback gets every request event, signed with the secret from a mode-600
//! file, with a readable `text`; it keeps getting them after it was down for a while (the service retries) and
//! after the service itself restarted (the cursor is in the store); no event holds a token or a secret. An event
//! the receiver refuses is dead-lettered and the next ones still arrive (N8); requester text forms no extra line
//! or markup (N9); two replicas on one store deliver each event once (N20).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rancher_access_tests::cli::secret_of;
use rancher_access_tests::server::{self, Api};
use rancher_approval::SqliteStore;
use rancher_sim::RancherVersion;
use secrecy::SecretString;
use serde_json::{json, Value};

/// What the receiver got: (delivery id, event name, signature ok, body).
type Seen = Arc<Mutex<Vec<(u64, String, bool, Value, String)>>>;

struct Receiver {
    task: tokio::task::JoinHandle<()>,
}

/// How the receiver answers an event.
type Answer = Arc<dyn Fn(&Value) -> StatusCode + Send + Sync>;

async fn receiver(addr: SocketAddr, secret: SecretString, seen: Seen) -> Receiver {
    answering(addr, secret, seen, Arc::new(|_| StatusCode::NO_CONTENT), Duration::ZERO).await
}

/// A receiver answering each event as `answer` says, after `delay`.
async fn answering(addr: SocketAddr, secret: SecretString, seen: Seen, answer: Answer, delay: Duration) -> Receiver {
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (seen, secret, answer) = (seen.clone(), secret.clone(), answer.clone());
            async move {
                let sig = headers
                    .get("x-rancher-access-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // The timestamped format, checked against now (the replay window).
                let ok = sig.starts_with("t=") && rancher_server::webhooks::verify(&secret, &body, sig);
                let id = headers
                    .get("x-rancher-access-delivery")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let event = headers
                    .get("x-rancher-access-event")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let raw = String::from_utf8_lossy(&body).into_owned();
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let status = answer(&v);
                seen.lock().unwrap().push((id, event, ok, v, raw));
                tokio::time::sleep(delay).await;
                status
            }
        }),
    );
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("receiver cannot bind {addr}: {e}"),
        }
    };
    Receiver {
        task: tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    }
}

async fn wait_for(seen: &Seen, what: &str, pred: impl Fn(&[(u64, String, bool, Value, String)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pred(&seen.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; got {:?}",
            seen.lock()
                .unwrap()
                .iter()
                .map(|s| (s.0, s.1.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.to_ascii_lowercase());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_arrive_signed_survive_restarts_and_hold_no_secret() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, "a-long-random-webhook-secret-0123456789\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let secret = rancher_server::config::read_secret_file(&secret_file).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let hook: url::Url = format!("http://127.0.0.1:{port}/hook").parse().unwrap();
    let seen: Seen = Arc::default();
    let rx = receiver(addr, secret.clone(), seen.clone()).await;

    let db = dir.path().join("approvals.db");
    let config = || {
        server::config(&sim, &svc, Arc::new(SqliteStore::open(&db).unwrap()))
            .webhook(hook.clone())
            .webhook_secret(secret.clone())
    };
    let srv = server::start(config()).await;
    let (admin, approver) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
    );
    server::install(&admin, "create-global-role-binding").await;
    let submit = |user: &'static str| {
        let approver = approver.clone();
        async move {
            let (st, sub) = approver.post("/api/v1/runs", json!({"workflow": "create-global-role-binding", "inputs": {"user": user, "role": "admin"}, "reason": "<@channel> rotation"})).await;
            assert_eq!(st, 202, "{sub}");
            sub["request"].as_str().unwrap().to_string()
        }
    };
    let a = submit("carol").await;
    let (st, _) = admin
        .post(&format!("/api/v1/requests/{a}/approve"), json!({"reason": "ok"}))
        .await;
    assert_eq!(st, 200);
    wait_for(&seen, "created, decided, executed", |s| {
        s.iter().filter(|e| e.3["request"] == a.as_str()).count() >= 3
    })
    .await;

    // The receiver goes down; events keep happening; they arrive once it is back (on the same port).
    rx.task.abort();
    let _ = rx.task.await;
    let b = submit("dave").await;
    let (st, _) = admin
        .post(&format!("/api/v1/requests/{b}/deny"), json!({"reason": "no"}))
        .await;
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, failures) = srv.webhook_counts();
    assert!(
        failures > 0,
        "deliveries to the stopped receiver failed and are retried"
    );
    let rx = receiver(addr, secret.clone(), seen.clone()).await;
    wait_for(&seen, "the events made while the receiver was down", |s| {
        s.iter().filter(|e| e.3["request"] == b.as_str()).count() >= 2
    })
    .await;

    // The service restarts on the same store: it resumes from its cursor.
    srv.shutdown().await;
    let before = seen.lock().unwrap().len();
    let srv = server::start(config()).await;
    let approver = Api::new(srv.url(), Some(&t.approver));
    let (_, sub) = approver
        .post(
            "/api/v1/runs",
            json!({"workflow": "create-global-role-binding", "inputs": {"user": "bob", "role": "admin"}}),
        )
        .await;
    let c = sub["request"].as_str().unwrap().to_string();
    let (st, _) = approver
        .post(&format!("/api/v1/requests/{c}/cancel"), json!({"reason": "typo"}))
        .await;
    assert_eq!(st, 200);
    wait_for(&seen, "events after the service restarted", |s| {
        s.iter().filter(|e| e.3["request"] == c.as_str()).count() >= 2
    })
    .await;
    srv.shutdown().await;
    rx.task.abort();

    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > before);
    // Every event, in order, at least once; all signed; each with a readable text.
    let mut by_id: BTreeMap<u64, (String, Value)> = BTreeMap::new();
    for (id, event, ok, body, _) in &seen {
        assert!(ok, "a bad signature on {event}: {body}");
        assert_eq!(body["event"].as_str(), Some(event.as_str()));
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty() && !t.contains('\n')),
            "{body}"
        );
        // Each event carries the audit head after it: an anchor kept outside the store (security review item 9).
        assert_eq!(
            body["audit_head"]
                .as_str()
                .and_then(|h| h.split_once(':'))
                .map(|(seq, hash)| (seq.to_string(), hash.len())),
            Some((id.to_string(), 64)),
            "{body}"
        );
        by_id.insert(*id, (event.clone(), body.clone()));
    }
    let names: Vec<(&str, &str)> = by_id
        .values()
        .map(|(e, b)| (b["request"].as_str().unwrap(), e.as_str()))
        .collect();
    let expect = [
        (a.as_str(), "request.created"),
        (a.as_str(), "request.decided"),
        (a.as_str(), "request.executed"),
        (b.as_str(), "request.created"),
        (b.as_str(), "request.decided"),
        (c.as_str(), "request.created"),
        (c.as_str(), "request.cancelled"),
    ];
    assert_eq!(names, expect);
    let created = &by_id.values().next().unwrap().1;
    assert!(
        created["text"].as_str().unwrap().contains("&lt;@channel&gt;"),
        "chat markup is escaped: {created}"
    );
    assert!(
        created["text"]
            .as_str()
            .unwrap()
            .contains("approver asks: will create a GlobalRoleBinding of"),
        "the plan in the names pinned at filing: {created}"
    );

    // No token, password or the webhook secret; no field named like one.
    let mut secrets: Vec<String> = [&t.admin, &t.approver, &t.user, &svc]
        .iter()
        .map(|s| secret_of(s).to_string())
        .collect();
    secrets.push("a-long-random-webhook-secret-0123456789".into());
    for (_, _, _, body, raw) in &seen {
        for s in &secrets {
            assert!(!raw.contains(s.as_str()), "a secret is in an event");
        }
        let mut k = Vec::new();
        keys(body, &mut k);
        assert!(
            !k.iter()
                .any(|k| k.contains("token") || k.contains("secret") || k.contains("password")),
            "{k:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_refused_off_loopback_http_and_without_a_private_secret() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let base = || {
        server::config(
            &sim,
            &sim.tokens().admin,
            Arc::new(rancher_approval::MemoryStore::new()),
        )
    };
    let e = rancher_server::start(
        base()
            .webhook("http://hooks.example.com/T0/B0/secretpath".parse().unwrap())
            .webhook_secret(SecretString::from("0123456789abcdefgh".to_string())),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("plain HTTP off loopback") && !e.contains("secretpath"),
        "{e}"
    );
    let e = rancher_server::start(base().webhook("https://hooks.example.com/x".parse().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--webhook-secret-file"), "{e}");
    let f = dir.path().join("s");
    std::fs::write(&f, "0123456789abcdefgh").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = rancher_server::config::read_secret_file(&f).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}

/// A secret (mode 600 file), a free loopback port and its hook URL.
fn hook_setup(dir: &std::path::Path) -> (SecretString, SocketAddr, url::Url) {
    let secret_file = dir.join("webhook.secret");
    std::fs::write(&secret_file, "a-long-random-webhook-secret-0123456789\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let secret = rancher_server::config::read_secret_file(&secret_file).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (
        secret,
        ([127, 0, 0, 1], port).into(),
        format!("http://127.0.0.1:{port}/hook").parse().unwrap(),
    )
}

/// Files a request for `user` with `reason` as `api`; answers its id.
async fn file(api: &Api, user: &str, reason: &str) -> String {
    let (st, sub) = api.post("/api/v1/runs", json!({"workflow": "create-global-role-binding", "inputs": {"user": user, "role": "admin"}, "reason": reason})).await;
    assert_eq!(st, 202, "{sub}");
    sub["request"].as_str().unwrap().to_string()
}

fn created_of<'a>(
    seen: &'a [(u64, String, bool, Value, String)],
    id: &str,
) -> Vec<&'a (u64, String, bool, Value, String)> {
    seen.iter()
        .filter(|e| e.3["request"] == id && e.1 == "request.created")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n8_a_refused_event_is_dead_lettered_and_every_later_event_still_arrives() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let (secret, addr, hook) = hook_setup(dir.path());
    let seen: Seen = Arc::default();
    // The receiver refuses one event for good (400: too large, malformed...), fails another for a while (503),
    // and takes every other one.
    let answer: Answer = Arc::new(|v: &Value| {
        let reason = v["data"]["reason"].as_str().unwrap_or("");
        if reason.contains("refused-event") {
            StatusCode::BAD_REQUEST
        } else if reason.contains("failing-event") {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::NO_CONTENT
        }
    });
    let rx = answering(addr, secret.clone(), seen.clone(), answer, Duration::ZERO).await;
    let config = server::config(&sim, &svc, Arc::new(rancher_approval::MemoryStore::new()))
        .webhook(hook)
        .webhook_secret(secret)
        .webhook_give_up(3, Duration::from_secs(2));
    let srv = server::start(config).await;
    let (admin, approver, user) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
        Api::new(srv.url(), Some(&t.user)),
    );
    server::install(&admin, "create-global-role-binding").await;

    let refused = file(&approver, "carol", "refused-event").await;
    let failing = file(&approver, "dave", "failing-event").await;
    let later: Vec<String> =
        futures::future::join_all(["bob", "alice", "carol"].map(|u| file(&approver, u, "an ordinary reason"))).await;
    wait_for(&seen, "every later event", |s| {
        later.iter().all(|id| !created_of(s, id).is_empty())
    })
    .await;
    {
        let s = seen.lock().unwrap();
        assert_eq!(
            created_of(&s, &refused).len(),
            3,
            "a refused event is tried 3 times, then given up on"
        );
        assert!(
            created_of(&s, &failing).len() >= 2,
            "an event failing with 503 is retried"
        );
        for id in &later {
            assert_eq!(created_of(&s, id).len(), 1, "each later event arrives, once");
        }
    }

    // Both are dead letters, listed for admins, counted in the metrics.
    let (st, letters) = admin.get("/api/v1/webhooks/dead-letters").await;
    assert_eq!(st, 200, "{letters}");
    let items = letters["items"].as_array().unwrap();
    let of = |id: &str| {
        items
            .iter()
            .find(|l| l["request"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no dead letter for {id} in {letters}"))
    };
    let (r, f) = (of(&refused), of(&failing));
    assert_eq!(
        (r["event"].as_str(), r["status"].as_u64(), r["attempts"].as_u64()),
        (Some("request.created"), Some(400), Some(3)),
        "{r}"
    );
    assert!(r["why"].as_str().unwrap().contains("answered 400"), "{r}");
    assert_eq!(f["status"].as_u64(), Some(503), "{f}");
    assert!(
        r["webhook"].as_str().unwrap().starts_with("http://127.0.0.1:") && !r.to_string().contains("/hook"),
        "the URL is shown without its path: {r}"
    );
    let (st, _) = user.get("/api/v1/webhooks/dead-letters").await;
    assert_eq!(st, 403, "dead letters are for admins");
    let (_, metrics) = Api::new(srv.url(), None).get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("rancher_access_webhook_dead_letters_total 2"),
        "{metrics}"
    );
    // Everything is delivered or given up on: nothing waits for the webhook any more.
    assert!(
        metrics
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l.starts_with("rancher_access_webhook_queue_age_seconds{webhook=\"") && l.ends_with("} 0")),
        "{metrics}"
    );
    srv.shutdown().await;
    rx.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n9_a_forged_approved_line_in_a_reason_stays_inside_one_plain_line() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let (secret, addr, hook) = hook_setup(dir.path());
    let seen: Seen = Arc::default();
    let rx = receiver(addr, secret.clone(), seen.clone()).await;
    let srv = server::start(
        server::config(&sim, &svc, Arc::new(rancher_approval::MemoryStore::new()))
            .webhook(hook)
            .webhook_secret(secret),
    )
    .await;
    let (admin, approver) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
    );
    server::install(&admin, "create-global-role-binding").await;
    let forged = format!("routine\n:white_check_mark: *admin approved req-01m9aaaa (create-global-role-binding); it is now approved*\n{}", "x".repeat(20_000));
    let id = file(&approver, "carol", &forged).await;
    wait_for(&seen, "the created event", |s| !created_of(s, &id).is_empty()).await;
    let body = created_of(&seen.lock().unwrap(), &id)[0].3.clone();
    let text = body["text"].as_str().unwrap();
    assert!(!text.contains('\n') && !text.contains('\r'), "one line: {text:?}");
    assert!(
        !text.contains('*') && !text.contains(":white_check_mark:"),
        "no bold and no emoji code: {text}"
    );
    assert!(text.chars().count() < 600, "{}", text.chars().count());
    assert!(
        text.starts_with("approver asks: will create a GlobalRoleBinding of"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("; waiting for approval: {id}")),
        "the request id ends the line, after the cut reason: {text}"
    );
    srv.shutdown().await;
    rx.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n20_two_replicas_on_one_store_deliver_each_event_once() {
    let store: Arc<dyn rancher_approval::Store> = Arc::new(rancher_approval::MemoryStore::new());
    two_replicas_deliver_once(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n20_two_replicas_on_one_sqlite_file_deliver_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("approvals.db");
    two_replicas_deliver_once(
        Arc::new(SqliteStore::open(&db).unwrap()),
        Arc::new(SqliteStore::open(&db).unwrap()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n20_two_replicas_on_one_postgres_deliver_each_event_once() {
    let Some(db) = rancher_approval::test_util::TestDatabase::create("webhook_lease").await else {
        return;
    };
    two_replicas_deliver_once(Arc::new(db.store().await), Arc::new(db.store().await)).await;
}

/// Two services, each on its own handle of one store, with one webhook: each event arrives once; when one stops,
/// the other delivers.
async fn two_replicas_deliver_once(first: Arc<dyn rancher_approval::Store>, second: Arc<dyn rancher_approval::Store>) {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let dir = tempfile::tempdir().unwrap();
    let (secret, addr, hook) = hook_setup(dir.path());
    let seen: Seen = Arc::default();
    // A receiver slow enough that both replicas are awake while a batch is being posted.
    let rx = answering(
        addr,
        secret.clone(),
        seen.clone(),
        Arc::new(|_| StatusCode::NO_CONTENT),
        Duration::from_millis(100),
    )
    .await;
    let config = |store: &Arc<dyn rancher_approval::Store>| {
        server::config(&sim, &svc, store.clone())
            .webhook(hook.clone())
            .webhook_secret(secret.clone())
    };
    let (one, two) = (
        server::start(config(&first).executor("replica-one")).await,
        server::start(config(&second).executor("replica-two")).await,
    );
    server::install(&Api::new(one.url(), Some(&t.admin)), "create-global-role-binding").await;
    let (a1, a2) = (
        Api::new(one.url(), Some(&t.approver)),
        Api::new(two.url(), Some(&t.approver)),
    );
    let ids: Vec<String> = futures::future::join_all((0..8).map(|i| {
        let api = if i % 2 == 0 { a1.clone() } else { a2.clone() };
        async move { file(&api, ["carol", "dave", "bob", "alice"][i % 4], &format!("rota {i}")).await }
    }))
    .await;
    wait_for(&seen, "the created events", |s| {
        ids.iter().all(|id| !created_of(s, id).is_empty())
    })
    .await;
    // Time for a second replica's duplicates to arrive, if it sent any.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut by_delivery: BTreeMap<u64, usize> = BTreeMap::new();
    for e in seen.lock().unwrap().iter() {
        *by_delivery.entry(e.0).or_default() += 1;
    }
    assert!(
        by_delivery.values().all(|n| *n == 1),
        "each event once, not once per replica: {by_delivery:?}"
    );

    // The replica holding the lease stops; the other takes over the deliveries.
    one.shutdown().await;
    let after = file(
        &Api::new(two.url(), Some(&t.approver)),
        "carol",
        "after the first replica stopped",
    )
    .await;
    wait_for(&seen, "an event after one replica stopped", |s| {
        created_of(s, &after).len() == 1
    })
    .await;
    two.shutdown().await;
    rx.task.abort();
}

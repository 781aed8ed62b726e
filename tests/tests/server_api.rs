//! The approvals service's JSON API end to end: the service started as a library on loopback, its own service
//! account on rancher-sim, and people calling it with their own Rancher tokens over real HTTP.

use std::sync::Arc;

use rancher_access_tests::server::{self, Api};
use rancher_approval::{MemoryStore, SqliteStore, Store};
use rancher_sim::RancherVersion;
use serde_json::{json, Value};

async fn setup() -> (rancher_sim::SimHandle, rancher_server::RunningServer) {
    let (sim, _svc, srv) = server::sim_and_service(Arc::new(MemoryStore::new())).await;
    (sim, srv)
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap_or_else(|| panic!("no items in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_travels_from_requester_to_approver_and_runs_once_with_the_service_account() {
    let (sim, srv) = setup().await;
    let t = sim.tokens().clone();
    let (admin, approver, alice) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
        Api::new(srv.url(), Some(&t.user)),
    );

    let (st, me) = approver.get("/api/v1/me").await;
    assert_eq!(
        (st, me["username"].as_str(), me["is_admin"].as_bool()),
        (200, Some("approver"), Some(true)),
        "{me}"
    );
    let (st, me) = alice.get("/api/v1/me").await;
    assert_eq!((st, me["is_admin"].as_bool()), (200, Some(false)), "{me}");

    // Installing needs an admin; the admin becomes the installer (installer approval by default).
    let (st, e) = alice
        .post("/api/v1/workflows/create-global-role-binding/install", json!({}))
        .await;
    assert_eq!(st, 403, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("only an admin may install"),
        "{e}"
    );
    server::install(&admin, "create-global-role-binding").await;
    let (st, cat) = alice.get("/api/v1/workflows").await;
    assert_eq!(st, 200);
    let entry = items(&cat)
        .iter()
        .find(|w| w["id"] == "create-global-role-binding")
        .expect("in the catalog");
    assert_eq!(entry["installed"], true);

    // The second admin asks to make carol an admin: it waits.
    let carol = sim.user_id("carol").expect("carol");
    let (st, sub) = approver
        .post("/api/v1/runs", json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}, "reason": "on-call rotation"}))
        .await;
    assert_eq!(st, 202, "{sub}");
    assert_eq!(sub["status"], "pending");
    let id = sub["request"].as_str().expect("request id").to_string();
    assert!(!sim.has_binding(&carol, "admin"));

    let (st, pending) = admin.get("/api/v1/requests?state=pending").await;
    assert_eq!(st, 200);
    assert_eq!(items(&pending).len(), 1);
    assert_eq!(items(&pending)[0]["id"], id.as_str());
    assert!(
        items(&pending)[0]["who_may_approve"]
            .as_str()
            .unwrap()
            .contains("admin"),
        "{pending}"
    );

    // A standard user and the requester may not approve.
    let (st, e) = alice.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(st, 403, "{e}");
    let (st, e) = approver
        .post(&format!("/api/v1/requests/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, 403, "{e}");
    assert!(e["error"].as_str().unwrap().contains("may not decide"), "{e}");
    // Alice is neither requester nor approver: the request is not hers to see.
    let (st, _) = alice.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(st, 403);
    let (_, mine) = alice.get("/api/v1/requests").await;
    assert!(items(&mine).is_empty(), "{mine}");

    // The installer approves: the service runs it, once, and answers the new state.
    let (st, done) = admin
        .post(&format!("/api/v1/requests/{id}/approve"), json!({"reason": "checked"}))
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(sim.has_binding(&carol, "admin"));
    assert_eq!(
        sim.writes("globalrolebindings", "create"),
        1 + 1,
        "the service account's own admin binding, then carol's"
    );
    let (_, with_audit) = admin.get(&format!("/api/v1/requests/{id}")).await;
    let claimed = items(&json!({"items": with_audit["audit"]}))
        .iter()
        .find(|e| e["kind"] == "execution_claimed")
        .cloned()
        .expect("claimed entry");
    // Executed by the service's own account, not by the approver's.
    let service_id = sim.user_id(server::SERVICE_USER).expect("the service account");
    assert_eq!(
        claimed["detail"]["executor"]["principal"].as_str(),
        Some(service_id.as_str()),
        "{claimed}"
    );
    assert!(
        claimed["detail"]["executor"]["process"]
            .as_str()
            .unwrap()
            .starts_with("e2e-server"),
        "{claimed}"
    );

    // Approving again is refused clearly, and nothing runs twice.
    let (st, e) = admin.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(sim.writes("globalrolebindings", "create"), 2);

    // The request shows inputs, policy, decisions, outcome and audit entries.
    let (st, shown) = approver.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(shown["inputs"]["role"], "admin");
    assert_eq!(shown["reason"], "on-call rotation");
    assert!(
        shown["policy"].is_object() && shown["policy_text"].is_string(),
        "{shown}"
    );
    assert_eq!(shown["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(shown["outcome"]["status"], "succeeded", "{shown}");
    let kinds: Vec<&str> = shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["request_created", "decided", "execution_claimed", "execution_finished"]
    );

    // The audit log: admins read and verify it; others may not.
    let (st, v) = admin.get("/api/v1/audit/verify").await;
    assert_eq!((st, v["ok"].as_bool()), (200, Some(true)), "{v}");
    let (st, a) = admin.get("/api/v1/audit").await;
    assert_eq!((st, a["verified"].as_bool()), (200, Some(true)));
    assert!(items(&a).iter().any(|e| e["kind"] == "installed"));
    let (st, _) = alice.get("/api/v1/audit").await;
    assert_eq!(st, 403);
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_and_cancel_answer_the_new_state() {
    let (sim, srv) = setup().await;
    let t = sim.tokens().clone();
    let (admin, approver, alice) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
        Api::new(srv.url(), Some(&t.user)),
    );
    server::install(&admin, "create-global-role-binding").await;
    // Two different requests (an identical second one would be refused as a duplicate of the first).
    let submit = |user: &'static str| {
        approver.post(
            "/api/v1/runs",
            json!({"workflow": "create-global-role-binding", "inputs": {"user": user, "role": "admin"}}),
        )
    };
    let (_, a) = submit("dave").await;
    let (_, b) = submit("carol").await;
    let (a, b) = (
        a["request"].as_str().unwrap().to_string(),
        b["request"].as_str().unwrap().to_string(),
    );
    let (st, d) = admin
        .post(&format!("/api/v1/requests/{a}/deny"), json!({"reason": "not today"}))
        .await;
    assert_eq!((st, d["state"].as_str()), (200, Some("denied")), "{d}");
    let (st, e) = alice.post(&format!("/api/v1/requests/{b}/cancel"), json!({})).await;
    assert_eq!(st, 403, "{e}");
    let (st, c) = approver
        .post(&format!("/api/v1/requests/{b}/cancel"), json!({"reason": "wrong user"}))
        .await;
    assert_eq!((st, c["state"].as_str()), (200, Some("cancelled")), "{c}");
    let (_, hist) = admin.get("/api/v1/requests?state=denied").await;
    assert_eq!(items(&hist).len(), 1);
    let (st, e) = admin.get("/api/v1/requests?state=nonsense").await;
    assert_eq!(st, 400);
    assert!(e["error"].as_str().unwrap().contains("unknown state"), "{e}");
    assert_eq!(
        sim.writes("globalrolebindings", "create"),
        1,
        "only the service account's own binding"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_without_approval_use_the_callers_own_rights() {
    let (sim, srv) = setup().await;
    let t = sim.tokens().clone();
    let (admin, alice) = (Api::new(srv.url(), Some(&t.admin)), Api::new(srv.url(), Some(&t.user)));
    server::install(&admin, "list-users").await;
    let (st, r) = admin.post("/api/v1/runs", json!({"workflow": "list-users"})).await;
    assert_eq!((st, r["status"].as_str()), (200, Some("succeeded")), "{r}");
    let all = r["result"]["result"].as_array().expect("users").len();
    assert!(all >= 6, "{all}");
    // Alice is a standard user: Rancher does not let her list every user, and the service does not lend her
    // its account.
    let (st, r) = alice.post("/api/v1/runs", json!({"workflow": "list-users"})).await;
    let seen = r["result"]["result"].as_array().map(Vec::len).unwrap_or(0);
    assert!(st != 200 || seen < all, "alice saw {seen} of {all} users: {r}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_bodies_are_checked_and_errors_are_json() {
    let (sim, srv) = setup().await;
    let anon = Api::new(srv.url(), None);
    let (st, e) = anon.get("/api/v1/requests").await;
    assert_eq!(st, 401);
    assert!(e["error"].as_str().unwrap().contains("Authorization"), "{e}");
    let (st, e) = Api::new(
        srv.url(),
        Some("token-zzzzz:abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzab"),
    )
    .get("/api/v1/requests")
    .await;
    assert_eq!(st, 401, "{e}");
    assert!(e["error"].as_str().unwrap().contains("Rancher refused"), "{e}");
    let (st, e) = Api::new(srv.url(), Some(&sim.tokens().expired)).get("/api/v1/me").await;
    assert_eq!(st, 401, "{e}");

    let admin = Api::new(srv.url(), Some(&sim.tokens().admin));
    // The service answers 413 as soon as it sees the length and closes the connection, which can cut the client
    // off while it is still sending; a send cut off that way is tried again until the answer is read.
    let too_large = json!({"workflow": "list-users", "inputs": {"x": "y".repeat(100_000)}});
    let mut answer = None;
    for _ in 0..10 {
        let sent = reqwest::Client::new()
            .post(format!("{}/api/v1/runs", srv.url().trim_end_matches('/')))
            .bearer_auth(&sim.tokens().admin)
            .json(&too_large)
            .send()
            .await;
        if let Ok(resp) = sent {
            let st = resp.status().as_u16();
            answer = Some((st, resp.json::<Value>().await.unwrap_or(Value::Null)));
            break;
        }
    }
    let (st, e) = answer.expect("the oversized body was answered");
    assert_eq!(st, 413, "{e}");
    assert!(e["error"].as_str().unwrap().contains("too large"), "{e}");
    let (st, e) = admin.post("/api/v1/runs", json!({"inputs": {}})).await;
    assert_eq!(st, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("workflow"), "{e}");
    let (st, e) = admin.post("/api/v1/runs", json!({"workflow": "no-such-thing"})).await;
    assert_eq!(st, 404, "{e}");
    let (st, e) = admin.get("/api/v1/requests/req-nope").await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = admin.get("/api/v1/nothing-here").await;
    assert_eq!(st, 404, "{e}");
    assert!(e["error"].is_string());

    let (st, h) = anon.get("/healthz").await;
    assert_eq!((st, h["status"].as_str()), (200, Some("ok")));
    let (st, r) = anon.get("/readyz").await;
    assert_eq!((st, r["status"].as_str()), (200, Some("ready")), "{r}");
    let (st, m) = anon.get("/metrics").await;
    assert_eq!(st, 200);
    let m = m.as_str().expect("metrics text");
    for name in [
        "rancher_access_pending_requests",
        "rancher_access_decisions_total",
        "rancher_access_executions_total",
        "rancher_access_webhook_deliveries_total",
        "rancher_access_rancher_call_seconds_count",
    ] {
        assert!(m.contains(name), "{name} missing from\n{m}");
    }
    // As Prometheus reads it: every line parses, and the latency histograms carry their buckets and labels.
    let lines = m.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("{e}\n{m}"));
    let histogram = |name: &str, label: &str, value: &str| {
        scrape.samples.iter().any(|s| {
            s.metric == name
                && s.labels.get(label) == Some(value)
                && matches!(&s.value, prometheus_parse::Value::Histogram(b) if b.len() >= 10)
        })
    };
    assert!(
        histogram("rancher_access_http_request_seconds", "route", "/api/v1/runs"),
        "no latency histogram for the runs route in\n{m}"
    );
    assert!(
        histogram("rancher_access_rancher_call_seconds", "operation", "public.ping.get"),
        "no Rancher call histogram for the readiness ping in\n{m}"
    );
    assert!(
        histogram("rancher_access_store_seconds", "operation", "audit_head"),
        "no store transaction histogram for the readiness check's audit head in\n{m}"
    );
    assert!(
        !m.contains("req-nope"),
        "request ids never become labels (routes are patterns)"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_racing_approvals_over_http_create_one_binding() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("approvals.db")).unwrap());
    let (sim, _svc, srv) = server::sim_and_service(store).await;
    let t = sim.tokens().clone();
    let (admin, approver) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
    );
    server::install(&admin, "create-global-role-binding").await;
    let before = sim.writes("globalrolebindings", "create");
    for round in 0..3 {
        let user = ["bob", "carol", "dave"][round];
        let (_, sub) = approver
            .post(
                "/api/v1/runs",
                json!({"workflow": "create-global-role-binding", "inputs": {"user": user, "role": "admin"}}),
            )
            .await;
        let id = sub["request"].as_str().unwrap().to_string();
        let answers = futures::future::join_all((0..4).map(|_| {
            let (admin, id) = (admin.clone(), id.clone());
            tokio::spawn(async move { admin.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await })
        }))
        .await;
        let answers: Vec<(u16, Value)> = answers.into_iter().map(|a| a.unwrap()).collect();
        let ok: Vec<&(u16, Value)> = answers.iter().filter(|(st, _)| *st == 200).collect();
        assert_eq!(ok.len(), 1, "exactly one approval executes: {answers:?}");
        assert_eq!(ok[0].1["state"], "succeeded");
        for (st, v) in answers.iter().filter(|(st, _)| *st != 200) {
            assert_eq!(*st, 409, "{v}");
            let msg = v["error"].as_str().unwrap();
            assert!(
                msg.contains("no longer pending") || msg.contains("already claimed"),
                "{msg}"
            );
        }
        assert_eq!(
            sim.writes("globalrolebindings", "create"),
            before + round as u64 + 1,
            "one binding per request"
        );
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_and_the_committed_copy_is_fresh() {
    let (_sim, srv) = setup().await;
    let (st, served) = Api::new(srv.url(), None).get("/api/v1/openapi.json").await;
    assert_eq!(st, 200);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/rancher-server/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, committed,
        "the served document differs from crates/rancher-server/openapi.json"
    );
    for path in [
        "/api/v1/runs",
        "/api/v1/requests",
        "/api/v1/requests/{id}/approve",
        "/api/v1/audit/verify",
    ] {
        assert!(served["paths"][path].is_object(), "{path} undocumented");
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_off_loopback_is_refused_with_a_clear_error() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let mut cfg = server::config(&sim, &sim.tokens().admin, Arc::new(MemoryStore::new()));
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let e = rancher_server::start(cfg).await.unwrap_err().to_string();
    assert!(
        e.contains("refusing plain HTTP on 0.0.0.0") && e.contains("--tls-cert"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_does_a_round_trip_and_keeps_the_token_to_itself() {
    use rancher_auth::BearerToken;
    use rancher_server::{RunAnswer, ServerClient};
    let (sim, srv) = setup().await;
    let t = sim.tokens().clone();
    let client = |tok: &str| ServerClient::new(srv.url(), BearerToken::parse(tok).unwrap(), None).unwrap();
    let (admin, approver, alice) = (client(&t.admin), client(&t.approver), client(&t.user));
    assert!(!format!("{admin:?}").contains(rancher_access_tests::cli::secret_of(&t.admin)));
    let e = ServerClient::new(
        "http://approvals.example.com",
        BearerToken::parse(&t.admin).unwrap(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("refusing to send your token"), "{e}");

    admin.install("create-global-role-binding", None).await.unwrap();
    assert!(admin
        .workflows()
        .await
        .unwrap()
        .iter()
        .any(|w| w.id == "create-global-role-binding" && w.installed));
    let RunAnswer::Pending { request, .. } = approver
        .run(
            "create-global-role-binding",
            json!({"user": "bob", "role": "admin"}).into(),
            Some("why"),
            false,
        )
        .await
        .unwrap()
    else {
        panic!("should wait for approval")
    };
    let id = request.as_str();
    let e = alice.approve(id, None, None).await.unwrap_err();
    assert_eq!(e.status, Some(403), "{e}");
    assert_eq!(
        admin
            .requests(rancher_server::wire::RequestQuery {
                state: Some("pending".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    let done = admin.approve(id, Some("ok"), None).await.unwrap();
    assert_eq!(done.stored.state, rancher_approval::RequestState::Succeeded);
    let seen = serde_json::to_value(approver.request(id).await.unwrap()).unwrap();
    assert_eq!(seen["outcome"]["status"], "succeeded");
    assert!(admin.audit().await.unwrap().verified);
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_list_pages_newest_first() {
    let (sim, srv) = setup().await;
    let t = sim.tokens().clone();
    let (admin, approver) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
    );
    server::install(&admin, "create-global-role-binding").await;
    let mut ids = Vec::new();
    // Five different requests: identical ones would be refused as duplicates of the first.
    for (user, role) in [
        ("bob", "admin"),
        ("carol", "admin"),
        ("dave", "admin"),
        ("alice", "admin"),
        ("bob", "clusters-create"),
    ] {
        let (_, sub) = approver
            .post(
                "/api/v1/runs",
                json!({"workflow": "create-global-role-binding", "inputs": {"user": user, "role": role}}),
            )
            .await;
        ids.push(
            sub["request"]
                .as_str()
                .unwrap_or_else(|| panic!("filed: {sub}"))
                .to_string(),
        );
    }
    ids.reverse();
    let (_, p1) = admin.get("/api/v1/requests?state=pending&limit=2").await;
    let got: Vec<&str> = items(&p1).iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let (_, p2) = admin
        .get(&format!(
            "/api/v1/requests?state=pending&limit=2&before={}",
            p1["next"].as_str().unwrap()
        ))
        .await;
    let (_, p3) = admin
        .get(&format!(
            "/api/v1/requests?state=pending&limit=2&before={}",
            p2["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(items(&p3).len(), 1);
    assert!(p3["next"].is_null());
    let (st, _) = admin.get("/api/v1/requests?limit=0").await;
    assert_eq!(st, 400);
    let (st, body) = admin.get("/api/v1/requests?before=not-an-id").await;
    assert_eq!(st, 400, "{body}");
    assert!(body.to_string().contains("next"), "the error says what to pass: {body}");
    // A standard user pages through only what they may see: their own requests, all of them, and no others.
    let (_, mine) = approver.get("/api/v1/requests?limit=1").await;
    let (_, rest) = approver
        .get(&format!("/api/v1/requests?before={}", mine["next"].as_str().unwrap()))
        .await;
    let mut seen: Vec<&str> = items(&mine)
        .iter()
        .chain(items(&rest).iter())
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    seen.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(seen, want);
    srv.shutdown().await;
}

/// N17: a request view reads that request's own audit entries (not the log), and a list for someone who may see
/// few of many requests reads a bounded number of them and answers a partial page with a cursor to go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n17_views_read_their_own_audit_entries_and_lists_are_bounded() {
    use rancher_access_tests::counting::CountingStore;
    let dir = tempfile::tempdir().unwrap();
    let counting = CountingStore::new(Arc::new(SqliteStore::open(dir.path().join("approvals.db")).unwrap()));
    let sim = rancher_access_tests::sim(rancher_sim::RancherVersion::V2_13, 2).await;
    let svc = server::service_account(&sim).await;
    let srv = server::start(server::config(&sim, &svc, counting.store())).await;
    let t = sim.tokens().clone();
    server::install(&Api::new(srv.url(), Some(&t.admin)), "create-global-role-binding").await;
    let alice = Api::new(srv.url(), Some(&t.user));
    let (st, sub) = alice
        .post(
            "/api/v1/runs",
            json!({"workflow": "create-global-role-binding", "inputs": {"user": "bob", "role": "admin"}}),
        )
        .await;
    assert_eq!(st, 202, "{sub}");
    let mine = sub["request"].as_str().unwrap().to_string();
    // 1,200 newer requests of someone else that alice may not see (each with its audit entry).
    let other = rancher_approval::Principal::new("u-someone-else");
    let policy = rancher_approval::Policy::any_of([rancher_approval::ApproverRef::user("u-nobody")]);
    for _ in 0..1_200 {
        counting
            .store()
            .create_request(
                rancher_approval::NewRequest::new("create-global-role-binding", other.clone(), policy.clone()),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }

    counting.reset();
    let (st, view) = alice.get(&format!("/api/v1/requests/{mine}")).await;
    assert_eq!(st, 200, "{view}");
    assert!(!view["audit"].as_array().unwrap().is_empty());
    assert!(
        counting.audit_entries_read() < 10,
        "the view read {} audit entries (the log holds 1,200+)",
        counting.audit_entries_read()
    );

    counting.reset();
    let (st, page) = alice.get("/api/v1/requests?limit=10").await;
    assert_eq!(st, 200, "{page}");
    let read = counting.rows_read();
    assert!(
        read <= 1_100,
        "one list call read {read} stored requests (1,201 are stored)"
    );
    let next = page["next"]
        .as_str()
        .expect("a partial page goes on with a cursor")
        .to_string();
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["request"] != mine.as_str()),
        "not reached yet"
    );
    let (_, rest) = alice.get(&format!("/api/v1/requests?limit=10&before={next}")).await;
    assert!(
        rest["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["request"] == mine.as_str()),
        "{rest}"
    );

    // The page: the pending list reads a bounded number too and links on; her request page reads its own entries.
    let mut b = server::Browser::new(srv.url(), None);
    b.sign_in_with_token(&t.user).await;
    counting.reset();
    let pending = b.get("/").await;
    assert!(
        counting.rows_read() <= 1_100,
        "the pending page read {} stored requests",
        counting.rows_read()
    );
    let link = pending
        .html
        .split("id=\"older\" href=\"")
        .nth(1)
        .expect("a link on")
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(
        b.get(&link).await.html.contains(&mine),
        "her request is on the next page"
    );
    counting.reset();
    assert_eq!(b.get(&format!("/requests/{mine}")).await.status, 200);
    assert!(
        counting.audit_entries_read() < 10,
        "the page read {} audit entries",
        counting.audit_entries_read()
    );
    srv.shutdown().await;
}

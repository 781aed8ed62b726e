//! Policy rules in the approvals service (`serve --policies`), end to end: rancher-sim over HTTPS, the service
//! started as a library, and a fake PagerDuty on loopback speaking its REST API (token auth, `/oncalls`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use rancher_access_tests::server::{config, install, login_token, service_account, start, Api};
use rancher_access_tests::sim;
use rancher_approval::rules::{OnCall, RuleVerdict};
use rancher_approval::{ApprovalRequest, AuditKind, MemoryStore, RequestFilter, RequestState, Store};
use rancher_server::oncall::{OnCallConfig, Provider};
use rancher_sim::{RancherVersion, SimHandle};
use secrecy::SecretString;
use serde_json::{json, Value};

const PD_KEY: &str = "pd-test-key-u+2Xq7Rz9Lm";
const SCHEDULE: &str = "PSCHED1";

const RULES: &str = r#"
rules:
  - id: no-owner-for-standard-users
    when: 'role.id == "cluster-owner" && !requester.admin'
    deny: only admins may hold cluster-owner; ask for cluster-member
  - id: prod-needs-ticket
    when: 'has(cluster.labels.env) && cluster.labels.env == "prod"'
    require_reason: 'INC-\d+'
  - id: oncall-prod-short
    when: >-
      has(cluster.labels.env) && cluster.labels.env == "prod"
      && duration <= duration("2h") && oncall("PSCHED1")
    auto_approve: true
"#;

/// A fake PagerDuty: `GET /oncalls?schedule_ids[]=PSCHED1&include[]=users` answers alice (by e-mail) as on call,
/// in the documented shape; a wrong token is 401 with PagerDuty's error body. Answers its URL and a call count.
async fn fake_pagerduty() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/oncalls",
        get(move |headers: HeaderMap, RawQuery(q): RawQuery| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
                if auth != Some(&format!("Token token={PD_KEY}")) || !accept.contains("application/vnd.pagerduty+json") {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": {"message": "Unauthorized", "code": 2006}})),
                    );
                }
                let q = q.unwrap_or_default();
                let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
                let schedules: Vec<&str> = pairs
                    .iter()
                    .filter(|(k, _)| k == "schedule_ids[]")
                    .map(|(_, v)| v.as_str())
                    .collect();
                let oncalls: Vec<Value> = schedules
                    .iter()
                    .filter(|s| **s == SCHEDULE)
                    .map(|s| {
                        json!({
                            "escalation_policy": {"id": "PEP1", "type": "escalation_policy_reference"},
                            "escalation_level": 1,
                            "schedule": {"id": s, "type": "schedule_reference"},
                            "user": {"id": "PU1", "type": "user", "name": "Alice Example", "email": "alice@example.com"},
                            "start": "2026-12-01T00:00:00Z",
                            "end": "2027-01-01T00:00:00Z"
                        })
                    })
                    .collect();
                (
                    StatusCode::OK,
                    axum::Json(json!({"oncalls": oncalls, "limit": 25, "offset": 0, "more": false, "total": null})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls, task)
}

/// Labels the simulator's downstream cluster `env=prod`; answers its id.
fn label_prod(sim: &SimHandle) -> String {
    let id = sim.users().downstream_cluster.clone();
    let mut c = sim.object("clusters", &id).expect("the downstream cluster");
    c["metadata"]["labels"] = json!({"env": "prod"});
    assert!(sim.insert_object("clusters", c));
    id
}

/// Whether `user` holds `role` through a cluster role template binding (one being deleted, marked with a
/// `deletionTimestamp` while Rancher's finalizer runs, no longer counts).
fn crtb_of(sim: &SimHandle, user: &str, role: &str) -> bool {
    sim.objects("clusterroletemplatebindings").iter().any(|b| {
        b["userName"] == json!(user)
            && b["roleTemplateName"] == json!(role)
            && b.pointer("/metadata/deletionTimestamp").is_none()
    })
}

fn rules_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("10-rules.yaml"), RULES).unwrap();
    d
}

fn pagerduty_at(url: &str) -> OnCallConfig {
    OnCallConfig {
        pagerduty: Some(Provider {
            url: url.parse().unwrap(),
            key: SecretString::from(PD_KEY),
        }),
        ..OnCallConfig::default()
    }
}

async fn requests_of(store: &Arc<dyn Store>, user: &str) -> Vec<ApprovalRequest> {
    store
        .list_requests(&RequestFilter {
            states: vec![],
            workflow_id: None,
            requester: Some(user.to_string()),
        })
        .await
        .unwrap()
}

fn grant(cluster: &str, user: &str, role: &str, reason: &str) -> Value {
    json!({"workflow": "grant-cluster-role",
           "inputs": {"cluster": cluster, "user": user, "role": role, "duration": "1h"},
           "reason": reason})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_auto_approves_with_no_human_and_not_on_call_stays_pending() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let cluster = label_prod(&sim);
    let svc = service_account(&sim).await;
    let (pd, calls, _fake) = fake_pagerduty().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let dir = rules_dir();
    let srv = start(
        config(&sim, &svc, store.clone())
            .policies(dir.path())
            .oncall(pagerduty_at(&pd)),
    )
    .await;
    install(&Api::new(srv.url(), Some(&sim.tokens().admin)), "grant-cluster-role").await;
    let pw = sim.users().password.clone();
    let alice = sim.users().standard[0].clone();
    let bob = sim.users().standard[1].clone();
    assert_eq!((alice.username.as_str(), bob.username.as_str()), ("alice", "bob"));
    let as_alice = Api::new(srv.url(), Some(&login_token(&sim, "alice", &pw).await));
    let as_bob = Api::new(srv.url(), Some(&login_token(&sim, "bob", &pw).await));

    // alice is on call: her one-hour grant on prod runs at once, decided by the rule, with no person's decision.
    let (st, body) = as_alice
        .post(
            "/api/v1/runs",
            grant(&cluster, "alice", "nodes-view", "INC-7 disk full"),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "succeeded", "{body}");
    assert!(crtb_of(&sim, &alice.id, "nodes-view"), "the binding exists at once");
    let mine = requests_of(&store, &alice.id).await;
    assert_eq!(mine.len(), 1);
    let r = &mine[0];
    assert!(r.decisions.is_empty(), "no human decided: {:?}", r.decisions);
    let rec = r.rules.as_ref().expect("the request records the rules");
    assert_eq!(rec.rule.as_deref(), Some("oncall-prod-short"));
    assert_eq!(
        rec.verdict,
        RuleVerdict::AutoApproved {
            rule: "oncall-prod-short".into()
        }
    );
    assert_eq!(rec.facts.oncall.get(SCHEDULE), Some(&OnCall::Known(true)));
    assert_eq!(rec.facts.cluster.as_ref().unwrap().labels["env"], "prod");
    assert_eq!(rec.facts.duration, Some(3600));
    assert!(rec.facts.role.as_ref().unwrap().verbs.iter().any(|v| v == "get"));
    let audit = store.audit_of_request(r.id.as_str()).await.unwrap();
    let created = audit
        .iter()
        .find(|e| e.kind == AuditKind::RequestCreated)
        .expect("request_created");
    let detail = created.detail.to_string();
    assert!(
        detail.contains("oncall-prod-short") && detail.contains(SCHEDULE),
        "the audit names the rule and the schedule: {detail}"
    );
    assert_eq!(created.detail["rules"]["ruleset"], json!(rec.ruleset));

    // bob is not on call: his request waits for the installer, under the workflow's own policy.
    let (st, body) = as_bob
        .post("/api/v1/runs", grant(&cluster, "bob", "nodes-view", "INC-8 deploy"))
        .await;
    assert_eq!(st, 202, "{body}");
    assert!(!crtb_of(&sim, &bob.id, "nodes-view"));
    let his = requests_of(&store, &bob.id).await;
    assert_eq!(his.len(), 1);
    assert_eq!(his[0].state, RequestState::Pending);
    let rec = his[0].rules.as_ref().expect("recorded");
    assert_eq!(rec.verdict, RuleVerdict::Fallback);
    assert_eq!(rec.facts.oncall.get(SCHEDULE), Some(&OnCall::Known(false)));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the schedule's answer is cached");

    // A deny rule: 403 with the rule's message, and nothing is filed.
    let (st, body) = as_bob
        .post("/api/v1/runs", grant(&cluster, "bob", "cluster-owner", "INC-9"))
        .await;
    assert_eq!(st, 403, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("only admins may hold cluster-owner"), "{msg}");
    assert!(msg.contains("no-owner-for-standard-users"), "{msg}");
    // A reason without a ticket on prod: refused when filed, nothing filed.
    let (st, body) = as_bob
        .post("/api/v1/runs", grant(&cluster, "bob", "projects-view", "because"))
        .await;
    assert_eq!(st, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("prod-needs-ticket"), "{body}");
    assert_eq!(requests_of(&store, &bob.id).await.len(), 1, "refusals file nothing");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_on_call_source_down_the_request_stays_pending_with_the_reason() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let cluster = label_prod(&sim);
    let svc = service_account(&sim).await;
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let dir = rules_dir();
    let srv = start(
        config(&sim, &svc, store.clone())
            .policies(dir.path())
            .oncall(pagerduty_at(&closed)),
    )
    .await;
    install(&Api::new(srv.url(), Some(&sim.tokens().admin)), "grant-cluster-role").await;
    let alice = sim.users().standard[0].clone();
    let as_alice = Api::new(
        srv.url(),
        Some(&login_token(&sim, "alice", &sim.users().password).await),
    );
    let (st, body) = as_alice
        .post(
            "/api/v1/runs",
            grant(&cluster, "alice", "nodes-view", "INC-7 disk full"),
        )
        .await;
    assert_eq!(st, 202, "fails closed: {body}");
    assert!(!crtb_of(&sim, &alice.id, "nodes-view"));
    let mine = requests_of(&store, &alice.id).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, RequestState::Pending);
    let rec = mine[0].rules.as_ref().expect("recorded");
    assert!(
        matches!(rec.facts.oncall.get(SCHEDULE), Some(OnCall::Unknown { unknown }) if unknown.contains("on-call source unavailable")),
        "{:?}",
        rec.facts.oncall
    );
    assert!(
        rec.unknown
            .iter()
            .any(|u| u.id == "oncall-prod-short" && u.problem.contains("on-call source unavailable")),
        "the reason is kept with the request: {:?}",
        rec.unknown
    );
    // And the API's view of the request says it.
    let (st, view) = as_alice.get(&format!("/api/v1/requests/{}", mine[0].id)).await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(view["state"], "pending");
    assert!(
        view["rules"]["unknown"][0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("on-call source unavailable")),
        "{view}"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_that_does_not_load_stops_the_start_naming_the_file_and_the_rule() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let svc = service_account(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-ok.yaml"), RULES).unwrap();
    std::fs::write(
        dir.path().join("20-bad.yaml"),
        "rules:\n  - id: typo\n    when: 'requestor.admin'\n    auto_approve: true\n",
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let e = rancher_server::start(config(&sim, &svc, store).policies(dir.path()))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("20-bad.yaml") && e.contains("typo"), "{e}");
}

const BREAKGLASS_RULES: &str = r#"
rules:
  - id: sre-breakglass
    when: '"openldap_group://cn=sre-breakglass,ou=groups,dc=example,dc=org" in requester.groups'
    break_glass: true
"#;

/// A webhook receiver on loopback: answers its URL and every event body it got.
async fn receiver() -> (url::Url, Arc<std::sync::Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    g.lock().unwrap().push(v);
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got, task)
}

async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if cond().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: still not so after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_runs_at_once_for_a_permitted_user_is_reviewed_and_revoked_and_is_403_for_anyone_else() {
    use std::sync::atomic::AtomicI64;
    let sim = sim(RancherVersion::V2_13, 0).await;
    let cluster = sim.users().downstream_cluster.clone();
    let svc = service_account(&sim).await;
    let bob = sim.users().standard[1].clone();
    let alice = sim.users().standard[0].clone();
    // bob's group, as an OpenLDAP login records it in his UserAttribute (a local login later keeps it: each provider
    // has its own entry).
    assert!(sim.insert_object(
        "userattributes",
        json!({"metadata": {"name": bob.id}, "UserName": bob.id,
               "GroupPrincipals": {"openldap": {"Items": [
                   {"metadata": {"name": "openldap_group://cn=sre-breakglass,ou=groups,dc=example,dc=org"}, "principalType": "group", "memberOf": true}]}},
               "ExtraByProvider": {}, "LastRefresh": "", "NeedsRefresh": false}),
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-breakglass.yaml"), BREAKGLASS_RULES).unwrap();
    let (hook, events, _rx) = receiver().await;
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let clock: rancher_server::config::Clock =
        Arc::new(move || chrono::Utc::now() + chrono::TimeDelta::seconds(o.load(Ordering::SeqCst)));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let srv = start(
        config(&sim, &svc, store.clone())
            .policies(dir.path())
            .webhook(hook)
            .webhook_secret(SecretString::from("breakglass-webhook-secret-0123"))
            .clock(clock),
    )
    .await;
    install(&Api::new(srv.url(), Some(&sim.tokens().admin)), "grant-cluster-role").await;
    let pw = sim.users().password.clone();
    let as_bob = Api::new(srv.url(), Some(&login_token(&sim, "bob", &pw).await));
    let as_alice = Api::new(srv.url(), Some(&login_token(&sim, "alice", &pw).await));
    let glass = |user: &str| {
        json!({"workflow": "grant-cluster-role",
               "inputs": {"cluster": cluster, "user": user, "role": "nodes-view", "duration": "4h"},
               "reason": "INC-123 the API is down", "break_glass": true})
    };

    // Anyone no rule permits: 403 with the rules' message, and nothing is created.
    let (st, body) = as_alice.post("/api/v1/runs", glass("alice")).await;
    assert_eq!(st, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("break-glass"), "{body}");
    assert!(requests_of(&store, &alice.id).await.is_empty(), "nothing filed");
    assert!(!crtb_of(&sim, &alice.id, "nodes-view"));

    // bob, in sre-breakglass: the binding exists after one call, for at most an hour.
    let before = chrono::Utc::now();
    let (st, body) = as_bob.post("/api/v1/runs", glass("bob")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "succeeded", "{body}");
    assert!(crtb_of(&sim, &bob.id, "nodes-view"), "bound at once");
    let grants = store
        .list_grants(&rancher_approval::GrantFilter::unrevoked())
        .await
        .unwrap();
    let g = grants
        .iter()
        .find(|g| g.granted.subject == bob.id)
        .expect("a time-bound grant");
    assert!(
        g.due_at <= before + chrono::TimeDelta::seconds(3600 + 60),
        "capped at one hour: due {}",
        g.due_at
    );
    let his = requests_of(&store, &bob.id).await;
    let grant_req = his
        .iter()
        .find(|r| r.workflow_id == "grant-cluster-role")
        .expect("the grant's request");
    assert!(grant_req.decisions.is_empty(), "no person decided");
    let rec = grant_req.rules.as_ref().expect("recorded");
    assert!(
        matches!(&rec.verdict, RuleVerdict::BreakGlass { rule, cap_secs } if rule == "sre-breakglass" && *cap_secs <= 3600)
    );
    // The mandatory review waits, and the metric counts it.
    let review = his
        .iter()
        .find(|r| r.workflow_id == rancher_workflows::REVIEW_WORKFLOW)
        .expect("the review request");
    assert_eq!(review.state, RequestState::Pending);
    assert!(
        review.expires_at > chrono::Utc::now() + chrono::TimeDelta::days(29),
        "a review waits for its reviewer: expires {}",
        review.expires_at
    );
    assert!(review
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains(grant_req.id.as_str()));
    let (st, text) = {
        let r = reqwest::get(format!("{}/metrics", srv.url())).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(st, 200);
    assert!(text.contains("rancher_access_breakglass_unreviewed 1"), "{text}");

    // grant.breakglass is delivered once.
    let count = || {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "grant.breakglass")
            .count()
    };
    eventually("grant.breakglass delivered", async || count() >= 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(count(), 1, "delivered once");
    let ev = events
        .lock()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "grant.breakglass")
        .cloned()
        .unwrap();
    assert_eq!(ev["request"], json!(grant_req.id.as_str()));
    assert!(ev["text"].as_str().unwrap().contains("sre-breakglass"), "{ev}");

    // Revoked when due, reviewed or not.
    offset.store(3600 + 120, Ordering::SeqCst);
    let mut revoked = false;
    for _ in 0..300 {
        if !crtb_of(&sim, &bob.id, "nodes-view") {
            revoked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !revoked {
        let g = store.list_grants(&rancher_approval::GrantFilter::all()).await.unwrap();
        let ready = reqwest::get(format!("{}/readyz", srv.url()))
            .await
            .unwrap()
            .text()
            .await;
        let b: Vec<Value> = sim
            .objects("clusterroletemplatebindings")
            .into_iter()
            .filter(|b| b["userName"] == json!(bob.id))
            .collect();
        panic!("the break-glass grant is not revoked after 30 s: grants {g:?}; readyz {ready:?}; bindings {b:?}");
    }
    let g = store.list_grants(&rancher_approval::GrantFilter::all()).await.unwrap();
    assert!(g.iter().all(|g| g.revocation.is_some()), "recorded as revoked: {g:?}");
    srv.shutdown().await;
}

/// `rancherctl serve` as a process: the policy and on-call flags, a policy file that does not load, and
/// `rancherctl run --break-glass` through the service (permitted for bob's group, refused for alice).
#[test]
fn rancherctl_serve_takes_the_policy_flags_and_run_break_glass_goes_through_it() {
    use rancher_access_tests::cli::{command, Run, SimCli};
    use rancher_access_tests::process::SpawnKilledOnDrop;
    use std::io::BufRead as _;
    use std::os::unix::fs::PermissionsExt as _;

    let s = SimCli::start(RancherVersion::V2_13, 0);
    let bob = s.sim.users().standard[1].clone();
    assert!(s.sim.insert_object(
        "userattributes",
        json!({"metadata": {"name": bob.id}, "UserName": bob.id,
               "GroupPrincipals": {"openldap": {"Items": [
                   {"metadata": {"name": "openldap_group://cn=sre-breakglass,ou=groups,dc=example,dc=org"},
                    "principalType": "group", "memberOf": true}]}},
               "ExtraByProvider": {}, "LastRefresh": "", "NeedsRefresh": false}),
    ));
    let svc = s.rt.block_on(service_account(&s.sim));
    let rules = s.tmp.path().join("policies");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("10-breakglass.yaml"), BREAKGLASS_RULES).unwrap();
    let key = s.tmp.path().join("pagerduty.key");
    std::fs::write(&key, PD_KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let db = format!("sqlite:{}", s.tmp.path().join("policy.db").display());
    let env = s.connected_env(Some(&svc));
    let flags = |dir: &std::path::Path| {
        vec![
            "serve".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--store".into(),
            db.clone(),
            "--policies".into(),
            dir.display().to_string(),
            "--pagerduty-key-file".into(),
            key.display().to_string(),
            "--pagerduty-url".into(),
            "http://127.0.0.1:9".into(),
        ]
    };

    // A rule that does not load: refused before anything starts, naming the file and the rule.
    let broken = s.tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("10-typo.yaml"),
        "rules:\n  - id: typo\n    when: 'requestor.admin'\n    auto_approve: true\n",
    )
    .unwrap();
    let mut check: Vec<String> = flags(&broken);
    check.push("--check-config".into());
    let args: Vec<&str> = check.iter().map(String::as_str).collect();
    let refused = Run::from_output(command(&args, &env).output().unwrap());
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("10-typo.yaml") && refused.stderr.contains("typo"),
        "{}",
        refused.stderr
    );

    let serve: Vec<String> = flags(&rules);
    let args: Vec<&str> = serve.iter().map(String::as_str).collect();
    let mut child = command(&args, &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn_killed_on_drop()
        .expect("rancherctl serve starts");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("RANCHERCTL_SERVER=")
        .unwrap_or_else(|| panic!("not the ready line: {line:?}"))
        .to_string();
    let person = |token: &str| {
        let mut e = s.base_env();
        e.push(("RANCHER_TOKEN", token.to_string()));
        e.push(("RANCHERCTL_SERVER", url.clone()));
        e
    };
    let rc = |args: &[&str], token: &str| Run::from_output(command(args, &person(token)).output().unwrap());
    rc(&["workflows", "install", "grant-cluster-role"], &s.sim.tokens().admin).expect_code(0);
    let pw = s.sim.users().password.clone();
    let cluster = s.sim.users().downstream_cluster.clone();
    let glass = |user: &str| {
        vec![
            "run".to_string(),
            "grant-cluster-role".into(),
            "-i".into(),
            format!("cluster={cluster}"),
            "-i".into(),
            format!("user={user}"),
            "-i".into(),
            "role=nodes-view".into(),
            "-i".into(),
            "duration=2h".into(),
            "--break-glass".into(),
            "--reason".into(),
            "INC-5 outage".into(),
        ]
    };
    let alice_token = s.rt.block_on(login_token(&s.sim, "alice", &pw));
    let bob_token = s.rt.block_on(login_token(&s.sim, "bob", &pw));
    let a = glass("alice");
    let refused = rc(&a.iter().map(String::as_str).collect::<Vec<_>>(), &alice_token);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("no rule permits break-glass"),
        "{}",
        refused.stderr
    );
    let b = glass("bob");
    rc(&b.iter().map(String::as_str).collect::<Vec<_>>(), &bob_token).expect_code(0);
    assert!(crtb_of(&s.sim, &bob.id, "nodes-view"), "bound at once");
    // Without a reason, the command line itself refuses.
    let no_reason: Vec<&str> = b.iter().map(String::as_str).take(b.len() - 2).collect();
    assert_eq!(rc(&no_reason, &bob_token).code, 2);
    drop(child);
}

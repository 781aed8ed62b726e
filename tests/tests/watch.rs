//! Watching Rancher's access objects (issue 32): stock kubectl follows the simulator's watch streams; the
//! service's watcher links each binding change to its request or reports it as out of band.

use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::Duration;

use rancher_access_tests::process::SpawnKilledOnDrop;
use rancher_access_tests::sim;
use rancher_sim::{RancherVersion, SimHandle};
use serde_json::{json, Value};

use rancher_access_tests::kubectl::{kubeconfig, path as kubectl_path};

/// Waits (up to 30 s, a guard against hanging) until the simulator has been asked for a watch of `plural`.
async fn watch_opened(sim: &SimHandle, plural: &str) {
    for _ in 0..300 {
        if sim
            .request_log()
            .iter()
            .any(|r| r.path.contains(plural) && r.path.contains("watch=true"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no watch of {plural} was opened within 30 s");
}

/// The next value kubectl printed (a 30 s guard against hanging, not a timing assertion).
async fn next_value(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("kubectl prints the event within 30 s")
        .expect("kubectl still runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_kubectl_follows_a_watch_of_bindings() {
    let Some(kubectl) = kubectl_path() else {
        eprintln!("NOTE: kubectl is not installed on this machine: the kubectl watch test did not run (set KUBECTL to its path)");
        return;
    };
    let sim = sim(RancherVersion::V2_13, 10).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = kubeconfig(&sim, dir.path());
    let mut child = Command::new(&kubectl)
        .env_clear()
        .env("KUBECONFIG", &config)
        .env("HOME", dir.path())
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args([
            "get",
            "clusterroletemplatebindings.management.cattle.io",
            "--all-namespaces",
            "--watch-only",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_killed_on_drop()
        .expect("kubectl starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for v in serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>() {
            match v {
                Ok(v) => {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    watch_opened(&sim, "clusterroletemplatebindings").await;

    let cluster = sim.users().downstream_cluster.clone();
    let bob = sim.user_id("bob").expect("seeded bob");
    let http = rancher_access_tests::server::sim_http(&sim);
    let base = format!(
        "{}/apis/management.cattle.io/v3/namespaces/{cluster}/clusterroletemplatebindings",
        sim.base_url()
    );
    let made: Value = http
        .post(&base)
        .bearer_auth(&sim.tokens().admin)
        .json(
            &json!({"metadata": {"generateName": "crtb-", "namespace": cluster}, "clusterName": cluster,
                      "roleTemplateName": "cluster-member", "userName": bob}),
        )
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("created binding");
    let name = made["metadata"]["name"].as_str().expect("name").to_string();
    let e = next_value(&mut rx).await;
    assert_eq!(e["type"], "ADDED", "{e}");
    assert_eq!(e["object"]["metadata"]["name"], name.as_str(), "{e}");
    assert_eq!(e["object"]["userName"], bob.as_str(), "{e}");

    let st = http
        .delete(format!("{base}/{name}"))
        .bearer_auth(&sim.tokens().admin)
        .send()
        .await
        .expect("delete")
        .status();
    assert!(st.is_success(), "{st}");
    let mut types = Vec::new();
    while types.last() != Some(&"DELETED".to_string()) {
        let e = next_value(&mut rx).await;
        assert_eq!(e["object"]["metadata"]["name"], name.as_str(), "{e}");
        types.push(e["type"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(types, ["MODIFIED", "DELETED"], "the finalizer's mark, then the removal");
    drop(child);
}

// ---------------------------------------------------------------------------------------------------------------
// The service's watcher, end to end against the simulator over HTTPS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rancher_access_tests::server::{config, service_account, start};
use rancher_access_tests::session;
use rancher_approval::{AuditEntry, AuditKind, MemoryStore, Policy, Store};
use rancher_workflows::{Runner, Submitted};

/// The webhook events received: (event name, body, when received in ms since the epoch).
type Received = Arc<Mutex<Vec<(String, Value, i64)>>>;

/// A webhook receiver on loopback; answers its URL.
async fn receiver(seen: Received) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let at = chrono::Utc::now().timestamp_millis();
                let name = headers
                    .get("x-rancher-access-event")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock().unwrap().push((name, v, at));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook").parse().expect("url")
}

/// Waits (30 s at most, a guard against hanging) until every watched kind has a saved position: the watchers run.
async fn watching(store: &Arc<dyn Store>) {
    for _ in 0..300 {
        let mut ready = true;
        for kind in [
            "globalrolebindings",
            "clusterroletemplatebindings",
            "projectroletemplatebindings",
        ] {
            ready &= store
                .state_get("watch-position", kind, chrono::Utc::now())
                .await
                .unwrap()
                .is_some();
        }
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the watchers did not start within 30 s");
}

/// The `access_observed` entries of the audit log about binding `name`.
async fn observed(store: &Arc<dyn Store>, name: &str) -> Vec<AuditEntry> {
    store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::AccessObserved && e.detail["name"] == name)
        .collect()
}

/// Waits (30 s at most) until `n` changes of binding `name` are recorded, then answers them.
async fn wait_observed(store: &Arc<dyn Store>, name: &str, n: usize) -> Vec<AuditEntry> {
    for _ in 0..300 {
        let found = observed(store, name).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {n} recorded changes of {name} after 30 s: {:?}",
        observed(store, name).await
    );
}

/// Creates a cluster role binding straight on Rancher with `token` through /v3 (as the UI does), so Rancher records
/// its creator; answers the binding's name.
async fn crtb_direct(sim: &SimHandle, token: &str, user: &str, role: &str) -> String {
    let http = rancher_access_tests::server::sim_http(sim);
    let cluster = sim.users().downstream_cluster.clone();
    let resp = http
        .post(format!("{}/v3/clusterroletemplatebindings", sim.base_url()))
        .bearer_auth(token)
        .json(&json!({"type": "clusterRoleTemplateBinding", "clusterId": cluster, "roleTemplateId": role, "userId": user}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status().as_u16(), 201);
    let v: Value = resp.json().await.expect("binding");
    let id = v["id"].as_str().expect("id");
    id.rsplit(':').next().expect("name").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binding_made_with_the_admin_token_is_reported_out_of_band_within_two_seconds() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let seen: Received = Arc::default();
    let hook = receiver(seen.clone()).await;
    let srv = start(
        config(&sim, &svc, store.clone())
            .watch_access(false)
            .webhook(hook)
            .webhook_secret(secrecy::SecretString::from("a-long-random-webhook-secret-0123456789")),
    )
    .await;
    watching(&store).await;

    let bob = sim.user_id("bob").expect("bob");
    let admin_id = sim.users().admin.id.clone();
    let name = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-member").await;
    let made_at = sim
        .request_log()
        .iter()
        .rev()
        .find(|r| r.method == "POST" && r.path.starts_with("/v3/clusterroletemplatebindings") && r.status == 201)
        .expect("the create is logged")
        .at_ms;
    let mut event = None;
    for _ in 0..300 {
        event = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(n, v, _)| n == "binding.out_of_band" && v["data"]["name"] == name.as_str())
            .cloned();
        if event.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body, received_at) = event.expect("a binding.out_of_band event within 6 s");
    // Measured from the simulator's answer to the create to the receiver's arrival, on one clock. The bound is the
    // issue's 2 s; the path is a watch event, a store write and one webhook poll (every 200 ms).
    let lag = received_at - made_at;
    eprintln!("out-of-band binding reported {lag} ms after it was made");
    assert!(lag <= 2_000, "reported {lag} ms after it was made (the bound is 2 s)");
    let d = &body["data"];
    assert_eq!(d["change"], "created");
    assert_eq!(d["kind"], "ClusterRoleTemplateBinding");
    assert_eq!(d["subject"], bob.as_str(), "{body}");
    assert!(
        d["subject_name"].as_str().is_some_and(|n| n.contains("bob")),
        "subject by name: {body}"
    );
    assert_eq!(d["role"], "cluster-member");
    assert_eq!(d["role_name"], "Cluster Member", "{body}");
    assert_eq!(
        d["creator"],
        admin_id.as_str(),
        "the creator from field.cattle.io/creatorId: {body}"
    );
    assert!(
        d["creator_name"].as_str().is_some_and(|n| n.contains("admin")),
        "{body}"
    );
    assert!(d["changed_at"].is_string(), "when: {body}");
    assert_eq!(d["out_of_band"], true);
    assert!(body["text"].as_str().unwrap().contains("OUT OF BAND"), "{body}");

    // One event: a second binding's event comes after any duplicate of the first would have (events go in order).
    let marker = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-owner").await;
    for _ in 0..300 {
        if seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, v, _)| v["data"]["name"] == marker.as_str())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, v, _)| v["data"]["name"] == name.as_str())
        .count();
    assert_eq!(n, 1, "one event for the binding");
    // The metric counts it.
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", srv.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "rancher_access_access_changes_observed_total{kind=\"ClusterRoleTemplateBinding\",change=\"created\",attribution=\"out_of_band\"} 2"
        ),
        "{}",
        metrics.lines().filter(|l| l.contains("observed")).collect::<Vec<_>>().join("\n")
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_through_the_product_is_reported_with_its_request_and_not_out_of_band() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let srv = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    watching(&store).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(store.clone(), "cli");
    r.install(&admin, "grant-project-role", Some(Policy::none()))
        .await
        .unwrap();
    let user = sim.users().standard[1].clone();
    let inputs = json!({"project": "downstream/Default", "user": user.username, "role": "read-only", "duration": "3s"});
    let Submitted::Succeeded { result } = r
        .submit(&admin, "grant-project-role", inputs, None, false)
        .await
        .unwrap()
    else {
        panic!("no approval needed")
    };
    assert_eq!(result.result["created"], json!(true), "{}", result.summary);
    let prtb = sim
        .objects("projectroletemplatebindings")
        .into_iter()
        .find(|b| b["userName"] == user.id.as_str() && b["roleTemplateName"] == "read-only")
        .expect("the binding");
    let name = prtb["metadata"]["name"].as_str().unwrap().to_string();
    let request = prtb["metadata"]["annotations"]["rancher-access.io/request"]
        .as_str()
        .unwrap_or_else(|| panic!("the binding names its request: {prtb}"))
        .to_string();

    // Made, then removed when the 3 s grant ends: both matched to the request, neither out of band.
    let entries = wait_observed(&store, &name, 2).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let entries = if observed(&store, &name).await.len() > entries.len() {
        observed(&store, &name).await
    } else {
        entries
    };
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in &entries {
        assert_eq!(
            e.request_id.as_deref(),
            Some(request.as_str()),
            "the entry is the request's: {e:?}"
        );
        assert_eq!(e.detail["out_of_band"], false, "{e:?}");
        assert_eq!(e.detail["request"], request.as_str());
    }
    assert_eq!(entries[0].detail["change"], "created");
    assert_eq!(entries[1].detail["change"], "deleted");
    let events: Vec<_> = entries
        .iter()
        .filter_map(rancher_server::webhooks::event_for)
        .map(|e| (e.event.as_str(), e.request))
        .collect();
    assert_eq!(
        events,
        [
            ("binding.created", request.clone()),
            ("binding.deleted", request.clone())
        ],
        "the webhook events name the request"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_made_while_the_watcher_was_down_are_reported_once_after_it_restarts() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let srv = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    watching(&store).await;
    let bob = sim.user_id("bob").unwrap();
    let before = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-member").await;
    wait_observed(&store, &before, 1).await;
    srv.shutdown().await;

    // Down: two bindings made.
    let one = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-owner").await;
    let two = crtb_direct(&sim, &sim.tokens().admin, &bob, "projects-create").await;
    let srv = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    wait_observed(&store, &one, 1).await;
    wait_observed(&store, &two, 1).await;
    // A beat more, so a late duplicate would show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for name in [&before, &one, &two] {
        assert_eq!(observed(&store, name).await.len(), 1, "{name} reported exactly once");
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forced_410_relists_and_reports_what_it_missed_without_duplicates() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let srv = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    watching(&store).await;
    let bob = sim.user_id("bob").unwrap();
    let before = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-member").await;
    wait_observed(&store, &before, 1).await;
    srv.shutdown().await;

    let missed = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-owner").await;
    // Rancher forgets its history: the saved position is now too old.
    sim.compact_watch_history();
    sim.clear_request_log();
    let srv = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    wait_observed(&store, &missed, 1).await;
    let after = crtb_direct(&sim, &sim.tokens().admin, &bob, "projects-create").await;
    wait_observed(&store, &after, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for name in [&before, &missed, &after] {
        assert_eq!(observed(&store, name).await.len(), 1, "{name} reported exactly once");
    }
    let relisted = sim.request_log().iter().any(|r| {
        r.path.contains("clusterroletemplatebindings") && r.path.contains("limit=") && !r.path.contains("watch")
    });
    assert!(relisted, "the watcher listed again after the 410");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_report_each_change_once() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    let b = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    watching(&store).await;
    let bob = sim.user_id("bob").unwrap();
    let mut names = Vec::new();
    for role in ["cluster-member", "cluster-owner", "projects-create"] {
        names.push(crtb_direct(&sim, &sim.tokens().admin, &bob, role).await);
    }
    // The replica following the bindings stops; the other takes over and goes on from the saved position.
    a.shutdown().await;
    names.push(crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-admin").await);
    for n in &names {
        wait_observed(&store, n, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in &names {
        assert_eq!(observed(&store, n).await.len(), 1, "{n} reported exactly once");
    }
    let watches = sim
        .request_log()
        .iter()
        .filter(|r| r.path.contains("clusterroletemplatebindings?") && r.path.contains("watch=true"))
        .count();
    assert!(watches >= 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_switch_on_an_out_of_band_grant_gets_a_revoke_request_filed() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(store.clone(), "cli");
    r.install(&admin, "revoke-cluster-role", None).await.unwrap();
    let srv = start(config(&sim, &svc, store.clone()).watch_access(true)).await;
    watching(&store).await;
    let bob = sim.user_id("bob").unwrap();
    let name = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-owner").await;
    wait_observed(&store, &name, 1).await;
    let mut filed = Vec::new();
    for _ in 0..100 {
        filed = store
            .list_requests(&rancher_approval::RequestFilter {
                workflow_id: Some("revoke-cluster-role".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if !filed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(filed.len(), 1, "one revoke request: {filed:?}");
    let req = &filed[0];
    assert_eq!(req.inputs["binding"], name.as_str());
    assert_eq!(
        req.state,
        rancher_approval::RequestState::Pending,
        "it waits for approval like any other"
    );
    assert!(
        req.reason.as_deref().is_some_and(|r| r.contains(&name)),
        "{:?}",
        req.reason
    );
    assert!(
        sim.object(
            "clusterroletemplatebindings",
            &format!("{}:{name}", sim.users().downstream_cluster)
        )
        .is_some(),
        "nothing is removed before someone approves"
    );
    srv.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------
// The audit log to syslog (RFC 5424), checked by loopback receivers.

/// Splits an RFC 5424 message into its header fields and its body (after the BOM).
fn rfc5424(m: &str) -> (Vec<String>, Value) {
    let (header, body) = m
        .split_once(" \u{feff}")
        .unwrap_or_else(|| panic!("no BOM before the body: {m:?}"));
    let fields: Vec<String> = header.split(' ').map(str::to_string).collect();
    assert_eq!(
        fields.len(),
        7,
        "PRI+VERSION TIMESTAMP HOST APP PROCID MSGID SD: {header}"
    );
    assert!(fields[0].starts_with('<') && fields[0].ends_with(">1"), "{header}");
    assert!(chrono::DateTime::parse_from_rfc3339(&fields[1]).is_ok(), "{header}");
    assert_eq!(fields[3], "rancher-access");
    (
        fields,
        serde_json::from_str(body).expect("the body is one JSON document"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_log_goes_to_syslog_over_udp_and_tcp_as_rfc_5424() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;

    // UDP, OCSF bodies: an out-of-band binding arrives as a warning (facility 13 log audit: <108>).
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("udp://{}?format=ocsf", udp.local_addr().unwrap());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let srv = start(
        config(&sim, &svc, store.clone())
            .watch_access(false)
            .syslog(target.parse().unwrap()),
    )
    .await;
    watching(&store).await;
    let bob = sim.user_id("bob").unwrap();
    let name = crtb_direct(&sim, &sim.tokens().admin, &bob, "cluster-owner").await;
    let mut buf = vec![0u8; 65536];
    let mut found = None;
    for _ in 0..50 {
        let (n, _) = tokio::time::timeout(Duration::from_secs(30), udp.recv_from(&mut buf))
            .await
            .expect("a datagram within 30 s")
            .unwrap();
        let m = String::from_utf8(buf[..n].to_vec()).expect("UTF-8");
        let (fields, body) = rfc5424(&m);
        if fields[5] == "access_observed" {
            found = Some((fields, body));
            break;
        }
    }
    let (fields, body) = found.expect("the observed binding's message");
    assert_eq!(fields[0], "<108>1", "out of band: a warning");
    assert_eq!(body["class_uid"], 3005);
    assert_eq!(body["resources"][0]["name"], name.as_str());
    assert!(
        body["unmapped"]["rancher_access"]["hash"].is_string(),
        "the chain fields ride along"
    );
    srv.shutdown().await;

    // TCP, JSON-lines bodies, octet-counted frames: the entries in order from the first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(store.clone(), "cli");
    r.install(&admin, "revoke-cluster-role", None).await.unwrap();
    r.install(&admin, "grant-cluster-role", None).await.unwrap();
    let srv = start(config(&sim, &svc, store.clone()).syslog(target.parse().unwrap())).await;
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the service connects within 30 s")
        .unwrap();
    let mut got = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    while got.len() < 2 {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut chunk))
            .await
            .expect("frames within 30 s")
            .unwrap();
        assert!(n > 0, "the connection stays open");
        pending.extend_from_slice(&chunk[..n]);
        // LENGTH SP MESSAGE, LENGTH in octets.
        while let Some(sp) = pending.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&pending[..sp]).unwrap().parse().expect("a length");
            if pending.len() < sp + 1 + len {
                break;
            }
            let msg = String::from_utf8(pending[sp + 1..sp + 1 + len].to_vec()).unwrap();
            pending.drain(..sp + 1 + len);
            got.push(rfc5424(&msg));
        }
    }
    assert_eq!(got[0].0[0], "<110>1", "informational");
    assert_eq!((got[0].0[5].as_str(), got[1].0[5].as_str()), ("installed", "installed"));
    assert_eq!((got[0].1["seq"].clone(), got[1].1["seq"].clone()), (json!(1), json!(2)));
    assert_eq!(
        got[1].1["prev_hash"], got[0].1["hash"],
        "the chain, verifiable from the messages"
    );
    srv.shutdown().await;
}

/// Watch-to-record latency at 1,000 binding changes a second (issue 32's bench, target p99 < 1 s). Run by hand:
/// `cargo test -p rancher-access-tests --release --test watch -- --ignored --nocapture bench_`. Bindings are put
/// in the simulator as Rancher's controllers would (no HTTP request each), 1,000 a second for 5 s; the latency of
/// each is from its insertion to its audit entry's time (one clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a bench: run by hand with --ignored --nocapture"]
async fn bench_watch_to_event_latency_at_1000_changes_a_second() {
    let sim = sim(RancherVersion::V2_13, 4).await;
    let svc = service_account(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(rancher_approval::SqliteStore::open(dir.path().join("approvals.db")).unwrap());
    let srv = start(config(&sim, &svc, store.clone()).watch_access(false)).await;
    watching(&store).await;
    let cluster = sim.users().downstream_cluster.clone();
    let bob = sim.user_id("bob").unwrap();
    let total = 5_000usize;
    let mut made = std::collections::HashMap::new();
    let start = std::time::Instant::now();
    for i in 0..total {
        // 1,000 a second: the i-th at i ms.
        let due = start + Duration::from_millis(i as u64);
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let name = format!("crtb-bench-{i:05}");
        made.insert(name.clone(), chrono::Utc::now().timestamp_millis());
        assert!(sim.insert_object(
            "clusterroletemplatebindings",
            json!({"metadata": {"name": name, "namespace": cluster}, "clusterName": cluster,
                   "roleTemplateName": "cluster-member", "userName": bob}),
        ));
    }
    let sent_secs = start.elapsed().as_secs_f64();
    let mut lags = Vec::new();
    for _ in 0..120 {
        let entries = store.audit_after(0, usize::MAX).await.unwrap();
        lags = entries
            .iter()
            .filter(|e| e.kind == AuditKind::AccessObserved)
            .filter_map(|e| {
                let at = made.get(e.detail["name"].as_str()?)?;
                Some(e.at.timestamp_millis() - at)
            })
            .collect();
        if lags.len() == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("bench: {} of {total} changes recorded", lags.len());
    assert_eq!(lags.len(), total, "every change recorded once");
    lags.sort_unstable();
    let p = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).min(lags.len()) - 1];
    eprintln!(
        "bench: {total} changes in {sent_secs:.2} s; watch-to-record latency p50 {} ms, p99 {} ms, max {} ms",
        p(0.50),
        p(0.99),
        lags[lags.len() - 1]
    );
    assert!(p(0.99) < 1_000, "p99 {} ms (target < 1 s)", p(0.99));
    srv.shutdown().await;
}

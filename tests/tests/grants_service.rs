//! Time-bound grants through the approvals service (injected clock) and through the CLI (the one test with real,
//! short durations), against the simulator.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use rancher_access_tests::cli::{assert_no_secrets, command, Run, SimCli};
use rancher_access_tests::server::{config, service_account, start};
use rancher_access_tests::{session, sim};
use rancher_approval::{AuditKind, GrantFilter, MemoryStore, Policy, RevokedHow, Store};
use rancher_sim::{Faults, RancherVersion};
use rancher_workflows::{Runner, Submitted};
use serde_json::{json, Value};

async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if cond().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: still not so after 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_revokes_at_start_after_a_restart_and_retries_while_rancher_is_down() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(store.clone(), "cli");
    r.install(&admin, "grant-project-role", Some(Policy::none()))
        .await
        .unwrap();
    let users = sim.users().standard.clone();
    let mut ids = Vec::new();
    for (user, role, duration) in [(&users[3], "read-only", "1h"), (&users[2], "workloads-view", "5h")] {
        let inputs =
            json!({"project": "downstream/Default", "user": user.username, "role": role, "duration": duration});
        let Submitted::Succeeded { result } = r
            .submit(&admin, "grant-project-role", inputs, None, false)
            .await
            .unwrap()
        else {
            panic!("no approval needed")
        };
        assert_eq!(result.result["created"], json!(true), "{}", result.summary);
        ids.push(
            store
                .list_grants(&GrantFilter::all())
                .await
                .unwrap()
                .into_iter()
                .find(|g| g.granted.subject == user.id)
                .unwrap()
                .id,
        );
    }
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let clock: rancher_server::config::Clock =
        Arc::new(move || Utc::now() + TimeDelta::seconds(o.load(Ordering::SeqCst)));

    // Running before anything is due: nothing happens. Then it stops.
    let first = start(config(&sim, &svc, store.clone()).clock(clock.clone())).await;
    assert!(store.list_grants(&GrantFilter::unrevoked()).await.unwrap().len() == 2);
    first.shutdown().await;

    // Restarted two hours later: the overdue grant is revoked before the service serves.
    offset.store(2 * 3600, Ordering::SeqCst);
    let srv = start(config(&sim, &svc, store.clone()).clock(clock.clone())).await;
    let g0 = store.get_grant(&ids[0]).await.unwrap();
    let rev = g0.revocation.clone().expect("revoked at start");
    assert_eq!(rev.how, RevokedHow::Deleted);
    assert!(rev.process.starts_with("e2e-server@"), "{}", rev.process);
    assert!(
        store.get_grant(&ids[1]).await.unwrap().revocation.is_none(),
        "the other is not due"
    );

    // Rancher is down when the second comes due: it stays overdue, visible in the metrics and as an event.
    sim.set_faults(Faults {
        rate_503: 1.0,
        ..Faults::none()
    });
    offset.store(6 * 3600, Ordering::SeqCst);
    eventually("a failed attempt is recorded", async || {
        store.get_grant(&ids[1]).await.unwrap().failures >= 1
    })
    .await;
    let metrics = reqwest::get(format!("{}/metrics", srv.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rancher_access_grants{status=\"overdue\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rancher_access_grant_revocation_failures_total"),
        "{metrics}"
    );
    let audit = store.audit_entries().await.unwrap();
    let overdue = audit
        .iter()
        .find(|e| e.kind == AuditKind::GrantOverdue)
        .expect("an overdue entry");
    let event = serde_json::to_value(rancher_server::webhooks::event_for(overdue).expect("an overdue event")).unwrap();
    assert_eq!(event["event"], json!("grant.overdue"));
    assert_eq!(event["data"]["grant"], json!(ids[1]));

    // Back: revoked on the next attempt after the backoff.
    sim.set_faults(Faults::none());
    offset.store(8 * 3600, Ordering::SeqCst);
    eventually("revoked once Rancher is back", async || {
        store.get_grant(&ids[1]).await.unwrap().revocation.is_some()
    })
    .await;
    let audit = store.audit_entries().await.unwrap();
    let revoked: Vec<_> = audit.iter().filter(|e| e.kind == AuditKind::GrantRevoked).collect();
    assert_eq!(revoked.len(), 2, "each revoked once");
    let event = serde_json::to_value(rancher_server::webhooks::event_for(revoked[1]).unwrap()).unwrap();
    assert_eq!(event["event"], json!("grant.revoked"));
    assert!(event["text"].as_str().unwrap().contains("workloads-view"), "{event}");
    let metrics = reqwest::get(format!("{}/metrics", srv.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rancher_access_grants{status=\"overdue\"} 0"),
        "{metrics}"
    );
    store.verify_audit().await.unwrap();
    srv.shutdown().await;
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

#[test]
fn grants_through_the_cli_with_real_short_durations() {
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let env = s.connected_env(Some(&s.sim.tokens().admin));
    let secrets = s.token_secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let rc = |args: &[&str]| {
        let run = Run::from_output(command(args, &env).output().expect("rancherctl runs"));
        assert_no_secrets(&run, &secrets);
        run
    };
    rc(&["workflows", "install", "grant-project-role", "--policy", "none"]).expect_code(0);
    let dave = s.sim.users().standard[3].username.clone();
    let carol = s.sim.users().standard[2].username.clone();
    let run = rc(&[
        "run",
        "grant-project-role",
        "--input",
        "project=downstream/Default",
        "--input",
        &format!("user={dave}"),
        "--input",
        "role=Read-only",
        "--input",
        "duration=2s",
    ]);
    run.expect_code(0);
    assert!(run.stdout.contains("for 2s"), "{}", run.stdout);
    rc(&[
        "run",
        "grant-project-role",
        "--input",
        "project=downstream/Default",
        "--input",
        &format!("user={carol}"),
        "--input",
        "role=Read-only",
        "--input",
        "duration=1h",
    ])
    .expect_code(0);
    let active = json_of(rc(&["grants", "list", "--active", "-o", "json"]).expect_code(0));
    assert_eq!(active.as_array().unwrap().len(), 2, "{active}");
    let table = rc(&["grants", "list"]);
    assert!(
        table.stdout.contains("downstream") || table.stdout.contains("read-only"),
        "{}",
        table.stdout
    );
    let carol_grant = active
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["duration_secs"] == json!(3600))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Extending needs no approval under this policy: it runs at once.
    rc(&["grants", "extend", &carol_grant, "--by", "30m"]).expect_code(0);
    let extended = json_of(rc(&["grants", "list", "-o", "json"]).expect_code(0));
    let c = extended
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == json!(carol_grant))
        .unwrap()
        .clone();
    assert_eq!(c["extensions"].as_array().unwrap().len(), 1, "{c}");

    std::thread::sleep(std::time::Duration::from_millis(2500));
    let overdue = json_of(rc(&["grants", "list", "--overdue", "-o", "json"]).expect_code(0));
    assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");
    let expired = rc(&["grants", "expire"]);
    expired.expect_code(0);
    assert!(
        expired.stdout.contains("revoked") && expired.stdout.contains("(deleted)"),
        "{}",
        expired.stdout
    );
    let again = rc(&["grants", "expire"]);
    again.expect_code(0);
    assert!(again.stdout.contains("no grants due"), "{}", again.stdout);

    // Ending the other early.
    let early = rc(&["grants", "revoke", &carol_grant]);
    early.expect_code(0);
    assert!(early.stdout.contains("revoked"), "{}", early.stdout);
    let ended = json_of(rc(&["grants", "list", "--expired", "-o", "json"]).expect_code(0));
    assert_eq!(ended.as_array().unwrap().len(), 2, "{ended}");
    assert!(rc(&["grants", "list", "--active", "-o", "json"]).stdout.trim() == "[]");
    let bad = rc(&["grants", "extend", &carol_grant, "--by", "2 hours"]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("e.g. 30m, 8h, 7d"), "{}", bad.stderr);

    // A policy limit is enforced at submit, with the limit named.
    rc(&[
        "workflows",
        "set-policy",
        "grant-project-role",
        "--policy",
        "none",
        "--max-duration",
        "1h",
        "--require-duration",
    ])
    .expect_code(0);
    let long = rc(&[
        "run",
        "grant-project-role",
        "--input",
        "project=downstream/Default",
        "--input",
        &format!("user={carol}"),
        "--input",
        "role=Read-only",
        "--input",
        "duration=3h",
    ]);
    long.expect_code(1);
    assert!(
        long.stderr.contains("longer than its policy allows (1h)"),
        "{}",
        long.stderr
    );
    let shown = rc(&["workflows", "show", "grant-project-role"]);
    assert!(shown.stdout.contains("grants for at most 1h"), "{}", shown.stdout);
}

/// The grants API: people see the grants they asked for, approved or hold (admins all), ask for more time under
/// the grant's own policy, and end their own grants early; the service revokes with its own account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_listed_extended_and_ended_through_the_service() {
    use rancher_access_tests::server::{install, sim_and_service, Api};
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (sim, _svc, srv) = sim_and_service(store.clone()).await;
    let t = sim.tokens().clone();
    let (admin, approver, alice) = (
        Api::new(srv.url(), Some(&t.admin)),
        Api::new(srv.url(), Some(&t.approver)),
        Api::new(srv.url(), Some(&t.user)),
    );
    install(&admin, "grant-project-role").await;
    // Two grants, each approved by the installer: one alice asked for herself, one the approver asked for carol.
    let mut ids = Vec::new();
    for (who, user) in [(&alice, "alice"), (&approver, "carol")] {
        let inputs = json!({"project": "downstream/Default", "user": user, "role": "read-only", "duration": "8h"});
        let (st, sub) = who
            .post(
                "/api/v1/runs",
                json!({"workflow": "grant-project-role", "inputs": inputs}),
            )
            .await;
        assert_eq!(st, 202, "{sub}");
        let id = sub["request"].as_str().unwrap().to_string();
        let (st, done) = admin.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_eq!((st, done["state"].as_str()), (200, Some("succeeded")), "{done}");
        ids.push(id);
    }
    let listed = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (st, all) = admin.get("/api/v1/grants?status=active").await;
    assert_eq!((st, listed(&all).len()), (200, 2), "{all}");
    let (_, mine) = alice.get("/api/v1/grants").await;
    assert_eq!(listed(&mine), [ids[0].clone()], "alice sees her own grant only");
    assert_eq!(mine["items"][0]["status"], "active");
    let (st, e) = alice.get("/api/v1/grants?status=soon").await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("active, overdue, expired or revoked"),
        "{e}"
    );

    // More time: someone else's grant is refused; her own files a request under the grant's policy.
    let (st, e) = alice
        .post(&format!("/api/v1/grants/{}/extend", ids[1]), json!({"by": "2h"}))
        .await;
    assert_eq!(st, 403, "{e}");
    let (st, e) = alice
        .post(&format!("/api/v1/grants/{}/extend", ids[0]), json!({"by": "a while"}))
        .await;
    assert_eq!(st, 400, "{e}");
    let (st, ext) = alice
        .post(
            &format!("/api/v1/grants/{}/extend", ids[0]),
            json!({"by": "2h", "reason": "incident"}),
        )
        .await;
    assert_eq!(
        (st, ext["status"].as_str(), ext["workflow"].as_str()),
        (202, Some("pending"), Some("grant-project-role")),
        "{ext}"
    );
    let (_, req) = alice
        .get(&format!("/api/v1/requests/{}", ext["request"].as_str().unwrap()))
        .await;
    assert_eq!(
        (req["inputs"]["extends"].as_str(), req["inputs"]["duration"].as_str()),
        (Some(ids[0].as_str()), Some("2h")),
        "{req}"
    );

    // Ending early: not someone else's; her own is revoked by the service, once.
    let (st, e) = alice
        .post(&format!("/api/v1/grants/{}/revoke", ids[1]), json!({}))
        .await;
    assert_eq!(st, 403, "{e}");
    let binding = store.get_grant(&ids[0]).await.unwrap().granted.binding.clone();
    let (st, out) = alice
        .post(&format!("/api/v1/grants/{}/revoke", ids[0]), json!({}))
        .await;
    assert_eq!(
        (st, out["status"].as_str(), out["grant"].as_str()),
        (200, Some("revoked"), Some(ids[0].as_str())),
        "{out}"
    );
    let g = store.get_grant(&ids[0]).await.unwrap();
    assert_eq!(g.revocation.map(|r| r.how), Some(RevokedHow::Deleted));
    assert!(g.ended_early_by.is_some());
    let (_, expired) = admin.get("/api/v1/grants?status=expired").await;
    assert_eq!(listed(&expired), [ids[0].clone()]);
    let (st, again) = alice
        .post(&format!("/api/v1/grants/{}/revoke", ids[0]), json!({}))
        .await;
    assert_eq!(st, 409, "a second revocation does nothing: {again}");
    assert!(again["error"].as_str().unwrap().contains("already revoked"), "{again}");
    assert_eq!(
        store
            .audit_entries()
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == AuditKind::GrantRevoked)
            .count(),
        1
    );
    assert!(!binding.is_empty());
    store.verify_audit().await.unwrap();
    srv.shutdown().await;
}

//! Regression tests of the second security review (2026-12b) against the simulator over HTTPS: N4 (a time-bound
//! grant of a role that can grant roles is refused unless the policy allows it, and its revocation reports, and
//! optionally removes, the bindings made during the window), N13 (an edit of a global role targets every holder,
//! and approvers see the change) and N19 (token expiry judged by Rancher's clock, not a skewed local one).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rancher_access_tests::server::{self, Api};
use rancher_access_tests::{client, runner, session, sim};
use rancher_approval::{AuditKind, MemoryStore, Policy};
use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator};
use rancher_workflows::grants::{revoke_due, RevokeOutcome};
use rancher_workflows::review::CleanupTokens;
use rancher_workflows::{Submitted, Workflow};
use serde_json::{json, Value};

fn user_id(sim: &SimHandle, username: &str) -> String {
    sim.users()
        .standard
        .iter()
        .find(|u| u.username == username)
        .unwrap_or_else(|| panic!("no {username}"))
        .id
        .clone()
}

fn global_bindings_of(sim: &SimHandle, user: &str) -> Vec<String> {
    sim.objects("globalrolebindings")
        .into_iter()
        .filter(|b| b["userName"] == json!(user))
        .map(|b| b["metadata"]["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn n4_a_timed_grant_of_a_role_granting_role_is_refused_then_warned_and_its_window_is_reported_at_revocation() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    r.install(&admin, "create-global-role-binding", None).await.unwrap();
    let (dave, carol, bob) = (user_id(&sim, "dave"), user_id(&sim, "carol"), user_id(&sim, "bob"));

    // Refused by default, naming the option.
    let e = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": "dave", "role": "admin", "duration": "1m"}),
            None,
            false,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("allow_role_granting_grants") && e.contains("not contained"),
        "{e}"
    );
    assert!(
        r.store().list_requests(&Default::default()).await.unwrap().is_empty(),
        "nothing was filed"
    );

    // Allowed by the policy: filed with the warning approvers see.
    let mut policy = Policy::installer();
    policy.options.allow_role_granting_grants = true;
    r.set_policy(&admin, "create-global-role-binding", policy.clone())
        .await
        .unwrap();
    let Submitted::Pending { request, .. } = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": "dave", "role": "admin", "duration": "1m"}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("installer approval")
    };
    let pending = r.get(&request).await.unwrap();
    let warning = pending.inputs["grants-roles"]["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("not contained"),
        "approvers are warned: {}",
        pending.inputs
    );
    r.approve(&approver, &request, None).await.unwrap();
    assert!(sim.has_binding(&dave, "admin"));

    // During the window dave makes himself a lasting admin (Kubernetes API) and carol one (norman /v3).
    let dave_token = server::login_token(&sim, "dave", rancher_sim::DEFAULT_PASSWORD).await;
    let dave_api = client(&sim, &dave_token);
    let own = dave_api
        .call(
            "rk.globalrolebindings.create",
            &[],
            Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "admin", "userName": dave})),
        )
        .await
        .unwrap();
    let own = own["metadata"]["name"].as_str().unwrap().to_string();
    let given = dave_api
        .call(
            "v3.globalrolebindings.create",
            &[],
            Some(json!({"globalRoleId": "admin", "userId": carol})),
        )
        .await
        .unwrap();
    let given = given["id"].as_str().unwrap().to_string();

    let g = r.store().get_grant(&request).await.unwrap();
    let done = revoke_due(&admin, r.store().as_ref(), "svc", g.due_at).await.unwrap();
    let [RevokeOutcome::Revoked { note, .. }] = &done.outcomes[..] else {
        panic!("{done:?}")
    };
    assert!(
        note.contains(&own) && note.contains(&given) && note.contains("NOT removed"),
        "both bindings reported: {note}"
    );
    assert!(
        note.contains(&format!("made by {dave}")),
        "the creator is named: {note}"
    );
    let audit = r.store().audit_entries().await.unwrap();
    let revoked: Vec<_> = audit.iter().filter(|a| a.kind == AuditKind::GrantRevoked).collect();
    assert!(
        revoked.iter().any(|a| a.detail.to_string().contains(&own)),
        "in the grant.revoked record: {revoked:?}"
    );
    assert!(
        global_bindings_of(&sim, &dave).contains(&own),
        "reported, not removed, by default"
    );

    // With `remove_bindings_made_during_grant`, they go too.
    policy.options.remove_bindings_made_during_grant = true;
    r.set_policy(&admin, "create-global-role-binding", policy)
        .await
        .unwrap();
    let Submitted::Pending { request, .. } = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": "bob", "role": "admin", "duration": "1m"}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("installer approval")
    };
    r.approve(&approver, &request, None).await.unwrap();
    let bob_token = server::login_token(&sim, "bob", rancher_sim::DEFAULT_PASSWORD).await;
    let kept = client(&sim, &bob_token)
        .call(
            "rk.globalrolebindings.create",
            &[],
            Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "admin", "userName": bob})),
        )
        .await
        .unwrap();
    let kept = kept["metadata"]["name"].as_str().unwrap().to_string();
    let g = r.store().get_grant(&request).await.unwrap();
    let done = revoke_due(&admin, r.store().as_ref(), "svc", g.due_at).await.unwrap();
    let [RevokeOutcome::Revoked { note, .. }] = &done.outcomes[..] else {
        panic!("{done:?}")
    };
    assert!(note.contains(&kept) && note.contains("were removed"), "{note}");
    // Rancher removes bindings through finalizers: wait (at most 5 s) for them to go.
    for _ in 0..100 {
        if !sim.has_binding(&bob, "admin") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let _ = rancher_workflows::grants::bindings::list_global(&admin).await;
    }
    assert!(
        !sim.has_binding(&bob, "admin"),
        "bob is no admin after the window: {:?}",
        global_bindings_of(&sim, &bob)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n13_a_patch_of_global_role_user_targets_its_holders_and_shows_the_change() {
    let (sim, _svc, srv) = server::sim_and_service(Arc::new(MemoryStore::new())).await;
    let t = sim.tokens().clone();
    let admin = Api::new(srv.url(), Some(&t.admin));
    server::install(&admin, "rancher-api-request").await;
    let admin_id = sim.users().admin.id.clone();
    if !sim.has_binding(&admin_id, "user") {
        let r = server::sim_http(&sim)
            .post(format!("https://{}/v3/globalrolebindings", sim.domain()))
            .bearer_auth(&t.admin)
            .json(&json!({"userId": admin_id, "globalRoleId": "user"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let before = sim.object("globalroles", "user").unwrap();
    let everything = json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    let bob = Api::new(
        srv.url(),
        Some(&server::login_token(&sim, "bob", rancher_sim::DEFAULT_PASSWORD).await),
    );
    let (st, sub) = bob
        .post("/api/v1/runs", json!({"workflow": "rancher-api-request", "inputs": {"operation": "rk.globalroles.patch", "params": {"name": "user"}, "body": everything}}))
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();
    let (_, req) = admin.get(&format!("/api/v1/requests/{id}")).await;
    let targets: BTreeSet<String> = req["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    assert!(
        targets.contains(&admin_id),
        "the admin holds `user`, so is a target: {targets:?}"
    );
    assert!(targets.contains(&user_id(&sim, "bob")), "{targets:?}");
    let change = &req["inputs"]["role-change"];
    assert_eq!(
        change["after"]["rules"], everything["rules"],
        "approvers see the rules after the patch: {change}"
    );
    assert_eq!(change["before"]["rules"], before["rules"], "and before");
    assert!(
        change["holders"].as_u64().unwrap_or(0) >= 2
            && change["warning"].as_str().unwrap_or_default().contains("holders"),
        "{change}"
    );

    // The admin holds the role, so may not approve the change to it.
    let (st, out) = admin
        .post(&format!("/api/v1/requests/{id}/approve"), json!({"reason": "ok"}))
        .await;
    assert!(st >= 400, "a holder of the role may not approve: {st} {out}");
    assert_eq!(
        sim.object("globalroles", "user").unwrap()["rules"],
        before["rules"],
        "the role is unchanged"
    );
    srv.shutdown().await;
}

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// Every token the server holds with its expiry (ttl 0: never).
fn expiries(sim: &SimHandle) -> Vec<(String, Option<DateTime<Utc>>)> {
    let mut out = Vec::new();
    for t in sim.objects("tokens") {
        let e = if t["ttl"].as_i64().unwrap_or(0) > 0 {
            time(t.get("expiresAt"))
        } else {
            None
        };
        out.push((t["metadata"]["name"].as_str().unwrap().to_string(), e));
    }
    for t in sim.objects("exttokens") {
        let e = if t["spec"]["ttl"].as_i64().unwrap_or(0) > 0 {
            time(t.pointer("/status/expiresAt"))
        } else {
            None
        };
        out.push((format!("ext/{}", t["metadata"]["name"].as_str().unwrap()), e));
    }
    out
}

#[tokio::test]
async fn n19_a_skewed_local_clock_pins_no_token_rancher_still_honours() {
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(30)
            .tokens(2000)
            .seed(11)
            .port(0),
    )
    .await
    .expect("simulator starts");
    let admin = session(&sim, &sim.tokens().admin).await;
    let now = Utc::now();
    let all = expiries(&sim);
    let honoured_but_soon: BTreeSet<&str> = all
        .iter()
        .filter(|(_, e)| e.is_some_and(|e| e > now + Duration::minutes(5) && e <= now + Duration::days(30)))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        !honoured_but_soon.is_empty(),
        "the seed has tokens that expire within 30 days"
    );
    // This host's clock runs 30 days ahead of Rancher's.
    let ahead: rancher_workflows::review::LocalClock = || Utc::now() + Duration::days(30);
    let pinned = CleanupTokens::with_local_clock(ahead)
        .prepare(&admin, json!({"filter": "expired"}).into())
        .await
        .unwrap();
    let names: BTreeSet<&str> = pinned.inputs["pinned"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!names.is_empty(), "tokens Rancher considers expired are still found");
    let wrongly: Vec<&&str> = names.intersection(&honoured_but_soon).collect();
    assert!(wrongly.is_empty(), "pinned tokens Rancher still honours: {wrongly:?}");
    let expired_now: BTreeSet<&str> = all
        .iter()
        .filter(|(_, e)| e.is_some_and(|e| e <= Utc::now()))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        names.is_subset(&expired_now),
        "only tokens past expiry on Rancher's clock"
    );
    let clock = pinned.inputs["shown"]["clock"].as_str().unwrap_or_default();
    assert!(
        clock.contains("ahead of Rancher's"),
        "approvers are told the clocks differ: {}",
        pinned.inputs["shown"]
    );
}

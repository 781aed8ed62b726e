//! Basic wire behaviour: TLS, version probes, users and bindings on both surfaces, the 401 quirk.

mod common;

use common::*;
use rancher_sim::RancherVersion;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn serves_https_with_its_ca_and_probes() {
    let sim = start(RancherVersion::V2_13).await;
    let c = client(&sim);
    let ping = c.get(format!("{}/ping", sim.base_url())).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    assert_eq!(ping.text().await.unwrap(), "pong");
    let (st, v) = call(&sim, Method::GET, "/rancherversion", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(v["Version"], "v2.13.1");
    // 2.x tells itself apart by the 401 with a string status on /v1/token.
    let (st, v) = call(&sim, Method::GET, "/v1/token", None, None).await;
    assert_eq!(st, 401);
    assert_eq!(
        v,
        json!({"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"})
    );
}

#[tokio::test]
async fn users_and_bindings_on_both_surfaces() {
    let sim = start(RancherVersion::V2_13).await;
    let (st, v) = admin_get(&sim, "/v3/users").await;
    assert_eq!(st, 200);
    assert_eq!(v["type"], "collection");
    assert_eq!(v["resourceType"], "user");
    assert_eq!(v["pagination"]["total"], 6);
    let (st, v) = admin_get(&sim, "/apis/management.cattle.io/v3/users").await;
    assert_eq!(st, 200);
    assert_eq!(v["kind"], "UserList");
    // The RK list also shows the two per-cluster `system://` users that /v3 hides (rancher/rancher
    // pkg/auth/api/user/user_store.go).
    assert_eq!(v["items"].as_array().unwrap().len(), 8);
    let (st, v) = admin_get(&sim, "/v3/globalRoleBindings").await;
    assert_eq!(st, 200);
    assert_eq!(v["resourceType"], "globalRoleBinding");
    let alice = sim.users().user.id.clone();
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v3/globalrolebindings",
        Some(&admin),
        Some(json!({"globalRoleId": "users-manage", "userId": alice})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("grb-"));
    assert_eq!(sim.writes("globalrolebindings", "create"), 1);
    assert!(sim.has_binding(&alice, "users-manage"));
}

//! Wire behaviour over plain HTTPS (reqwest): error shapes and representative responses (insta),
//! authorization, paging across 10,000 objects, version modes, faults, ext tokens, patches, logins.

mod common;

use std::collections::BTreeSet;

use common::*;
use rancher_sim::{Faults, RancherVersion, SimConfig, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// Replaces run-dependent values (host:port, times, secrets) so snapshots are stable.
fn redact(v: &mut Value, host: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let timey = matches!(
                    k.as_str(),
                    "created"
                        | "createdTS"
                        | "creationTimestamp"
                        | "lastUpdateTime"
                        | "expiresAt"
                        | "lastTransitionTime"
                        | "lastUsedAt"
                );
                if timey && !x.is_null() && x != "" && x != "2025-01-01T00:00:00Z" && x != 1735689600000i64 {
                    *x = json!("[time]");
                } else if matches!(
                    k.as_str(),
                    "token" | "value" | "bearerToken" | "hash" | "config" | "jwt"
                ) && x.is_string()
                {
                    *x = json!("[secret]");
                } else if k == "resourceVersion" && x.is_string() && x != "" {
                    // Every authenticated request can stamp its token's lastUsedAt (2.10+), once a second, and each
                    // stamp takes a resourceVersion: the numbers depend on the clock, their presence does not.
                    *x = json!("[rv]");
                } else if k == "continue" && x.is_string() {
                    *x = json!("[continue]");
                } else {
                    redact(x, host);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact(x, host)),
        Value::String(s) if s.contains(host) => *s = s.replace(host, "[host]"),
        _ => {}
    }
}

fn snap(sim: &rancher_sim::SimHandle, entries: Vec<(&str, StatusCode, Value)>) -> Value {
    let mut m = Map::new();
    for (name, st, mut v) in entries {
        redact(&mut v, &sim.domain());
        m.insert(name.to_string(), json!({"status": st.as_u16(), "body": v}));
    }
    Value::Object(m)
}

#[tokio::test]
async fn error_shapes() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let alice = sim.users().user.id.clone();
    let mut out = Vec::new();
    macro_rules! rec {
        ($name:expr, $m:expr, $p:expr, $tok:expr, $b:expr) => {{
            let (st, v) = call(&sim, $m, $p, $tok, $b).await;
            out.push(($name, st, v));
        }};
    }
    rec!("v3 no token", Method::GET, "/v3/users", None, None);
    rec!("v3 expired token", Method::GET, "/v3/users", Some(&t.expired), None);
    rec!(
        "v3 cluster-scoped token on users",
        Method::GET,
        "/v3/users",
        Some(&t.cluster_scoped),
        None
    );
    rec!("v3 unknown type", Method::GET, "/v3/nosuchthings", Some(&t.admin), None);
    rec!(
        "v3 missing user",
        Method::GET,
        "/v3/users/u-zzzzz",
        Some(&t.admin),
        None
    );
    rec!(
        "v3 malformed namespaced id",
        Method::GET,
        "/v3/projects/p-zzzzz",
        Some(&t.admin),
        None
    );
    rec!(
        "v3 grb unknown role",
        Method::POST,
        "/v3/globalrolebindings",
        Some(&t.admin),
        Some(json!({"globalRoleId": "nope", "userId": alice}))
    );
    rec!(
        "v3 grb no subject",
        Method::POST,
        "/v3/globalrolebindings",
        Some(&t.admin),
        Some(json!({"globalRoleId": "admin"}))
    );
    rec!(
        "v3 grb two subjects",
        Method::POST,
        "/v3/globalrolebindings",
        Some(&t.admin),
        Some(json!({"globalRoleId": "admin", "userId": alice, "groupPrincipalId": "github_org://1"}))
    );
    rec!(
        "v3 grb missing role",
        Method::POST,
        "/v3/globalrolebindings",
        Some(&t.admin),
        Some(json!({"userId": alice}))
    );
    rec!(
        "v3 standard user creates grb",
        Method::POST,
        "/v3/globalrolebindings",
        Some(&t.user),
        Some(json!({"globalRoleId": "admin", "userId": alice}))
    );
    rec!(
        "v3 username taken",
        Method::POST,
        "/v3/users",
        Some(&t.admin),
        Some(json!({"username": "alice", "password": "long-enough-password"}))
    );
    rec!(
        "v3 short password",
        Method::POST,
        "/v3/users",
        Some(&t.admin),
        Some(json!({"username": "zed", "password": "short"}))
    );
    rec!(
        "v3 put cluster",
        Method::PUT,
        "/v3/clusters/local",
        Some(&t.admin),
        Some(json!({}))
    );
    rec!(
        "v3 delete builtin role",
        Method::DELETE,
        "/v3/globalroles/admin",
        Some(&t.admin),
        None
    );
    rec!(
        "v3 crtb project role",
        Method::POST,
        "/v3/clusterroletemplatebindings",
        Some(&t.admin),
        Some(json!({"clusterId": "local", "roleTemplateId": "project-owner", "userId": alice}))
    );
    rec!(
        "v3 bad json",
        Method::POST,
        "/v3/globalroles",
        Some(&t.admin),
        Some(json!("not an object"))
    );
    rec!(
        "v3 delete own session-less token",
        Method::PUT,
        "/v3/tokens/token-zzzzz",
        Some(&t.admin),
        Some(json!({}))
    );
    rec!(
        "rk no token",
        Method::GET,
        "/apis/management.cattle.io/v3/globalroles",
        None,
        None
    );
    rec!(
        "rk missing",
        Method::GET,
        "/apis/management.cattle.io/v3/globalroles/nope",
        Some(&t.admin),
        None
    );
    rec!(
        "rk standard user creates grb",
        Method::POST,
        "/apis/management.cattle.io/v3/globalrolebindings",
        Some(&t.user),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "admin", "userName": alice}))
    );
    rec!(
        "rk standard user gets other user",
        Method::GET,
        &format!("/apis/management.cattle.io/v3/users/{}", sim.users().admin.id),
        Some(&t.user),
        None
    );
    rec!(
        "rk already exists",
        Method::POST,
        "/apis/management.cattle.io/v3/globalroles",
        Some(&t.admin),
        Some(json!({"metadata": {"name": "admin"}, "displayName": "x"}))
    );
    rec!(
        "rk invalid no name",
        Method::POST,
        "/apis/management.cattle.io/v3/globalroles",
        Some(&t.admin),
        Some(json!({"displayName": "x"}))
    );
    rec!(
        "rk invalid grb",
        Method::POST,
        "/apis/management.cattle.io/v3/globalrolebindings",
        Some(&t.admin),
        Some(json!({"metadata": {"generateName": "grb-"}, "userName": alice}))
    );
    rec!(
        "rk stale put",
        Method::PUT,
        "/apis/management.cattle.io/v3/globalroles/user",
        Some(&t.admin),
        Some(json!({"metadata": {"name": "user", "resourceVersion": "1"}, "displayName": "Standard User"}))
    );
    rec!(
        "rk unsupported patch",
        Method::PATCH,
        "/apis/management.cattle.io/v3/globalroles/user",
        Some(&t.admin),
        Some(json!({}))
    );
    rec!(
        "rk unknown resource",
        Method::GET,
        "/apis/management.cattle.io/v3/widgets",
        Some(&t.admin),
        None
    );
    rec!(
        "rk method not allowed",
        Method::POST,
        "/apis/management.cattle.io/v3/projects",
        Some(&t.admin),
        Some(json!({}))
    );
    rec!(
        "public bad login",
        Method::POST,
        "/v3-public/localProviders/local?action=login",
        None,
        Some(json!({"username": "admin", "password": "wrong-password"}))
    );
    rec!(
        "public v1 bad login",
        Method::POST,
        "/v1-public/login",
        None,
        Some(json!({"type": "localProvider", "username": "admin", "password": "wrong-password"}))
    );
    insta::assert_json_snapshot!("error_shapes", snap(&sim, out));
}

#[tokio::test]
async fn representative_responses() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let alice = sim.users().user.id.clone();
    let mut out = Vec::new();
    for (name, path, tok) in [
        ("v3 user", format!("/v3/users/{alice}"), t.admin.clone()),
        (
            "v3 grbs of alice",
            format!("/v3/globalRoleBindings?userId={alice}"),
            t.admin.clone(),
        ),
        ("v3 tokens of alice", "/v3/tokens".to_string(), t.user.clone()),
        ("v3 principals of alice", "/v3/principals".to_string(), t.user.clone()),
        ("v3 projects of alice", "/v3/projects".to_string(), t.user.clone()),
        (
            "v3 github config",
            "/v3/authconfigs/github".to_string(),
            t.admin.clone(),
        ),
        (
            "v3 server version",
            "/v3/settings/server-version".to_string(),
            t.admin.clone(),
        ),
        (
            "rk grb list limit 2",
            "/apis/management.cattle.io/v3/globalrolebindings?limit=2".to_string(),
            t.admin.clone(),
        ),
        ("rk discovery", "/apis".to_string(), t.admin.clone()),
        (
            "rk management resources",
            "/apis/management.cattle.io/v3".to_string(),
            t.admin.clone(),
        ),
        (
            "rk audit policy",
            "/apis/auditlog.cattle.io/v1/auditpolicies/redact-generic-info".to_string(),
            t.admin.clone(),
        ),
    ] {
        let (st, v) = call(&sim, Method::GET, &path, Some(&tok), None).await;
        out.push((name, st, v));
    }
    let (st, v) = call(&sim, Method::GET, "/v3-public/authProviders", None, None).await;
    out.push(("public auth providers", st, v));
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v3/principals?action=search",
        Some(&t.admin),
        Some(json!({"name": "al"})),
    )
    .await;
    out.push(("v3 principal search", st, v));
    insta::assert_json_snapshot!("representative", snap(&sim, out));
}

#[tokio::test]
async fn standard_user_sees_only_itself_and_cannot_bind() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let alice = sim.users().user.id.clone();
    let (st, v) = call(&sim, Method::GET, "/v3/users", Some(&t.user), None).await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![alice.as_str()]);
    assert!(v["createTypes"].as_object().unwrap().is_empty());
    // The RK list is Kubernetes RBAC: all or nothing (rancher/steve pkg/proxy/proxy.go impersonates the caller).
    let (st, _) = call(
        &sim,
        Method::GET,
        "/apis/management.cattle.io/v3/users",
        Some(&t.user),
        None,
    )
    .await;
    assert_eq!(st, 403);
    let (_, v) = call(&sim, Method::GET, "/v3/globalrolebindings", Some(&t.user), None).await;
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["userId"] == alice.as_str()));
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert!(v["data"][0]["links"].get("remove").is_none());
    // role_data.go gives the `user` role no rule on globalroles.
    let (st, v) = call(&sim, Method::GET, "/v3/globalroles", Some(&t.user), None).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/management.cattle.io/v3/globalrolebindings",
        Some(&t.user),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "admin", "userName": alice})),
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(v["message"], format!("globalrolebindings.management.cattle.io is forbidden: User \"{alice}\" cannot create resource \"globalrolebindings\" in API group \"management.cattle.io\" at the cluster scope"));
    let grb = sim
        .objects("globalrolebindings")
        .into_iter()
        .find(|g| g["userName"] == alice.as_str())
        .unwrap();
    let (st, _) = call(
        &sim,
        Method::DELETE,
        &format!("/v3/globalrolebindings/{}", grb["metadata"]["name"].as_str().unwrap()),
        Some(&t.user),
        None,
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(
        sim.writes("globalrolebindings", "create") + sim.writes("globalrolebindings", "delete"),
        0
    );
}

#[tokio::test]
async fn token_kinds_authenticate_as_rancher_does() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let c = sim.users().downstream_cluster.clone();
    // Cluster-scoped: only its own cluster.
    let (st, _) = call(
        &sim,
        Method::GET,
        &format!("/v3/clusters/{c}"),
        Some(&t.cluster_scoped),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("/v3/clusters/{c}?action=generateKubeconfig"),
        Some(&t.cluster_scoped),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["type"], "generateKubeConfigOutput");
    let config = v["config"].as_str().unwrap();
    assert!(config.contains(&format!("/k8s/clusters/{c}")));
    let bearer = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    assert!(bearer.starts_with("kubeconfig-user-"));
    let (st, _) = call(&sim, Method::GET, "/v3/users", Some(&bearer), None).await;
    assert_eq!(st, 200, "the derived kubeconfig token authenticates");
    for path in [
        "/v3/users",
        "/v3/clusters/local",
        "/v3/tokens",
        "/apis/management.cattle.io/v3/globalroles",
    ] {
        let (st, _) = call(&sim, Method::GET, path, Some(&t.cluster_scoped), None).await;
        assert_eq!(st, 401, "{path}");
    }
    // Basic auth and the R_SESS cookie.
    let (name, secret) = t.admin.split_once(':').unwrap();
    let r = client(&sim)
        .get(format!("{}/v3/users?me=true", sim.base_url()))
        .basic_auth(name, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["username"], "admin");
    let r = client(&sim)
        .get(format!("{}/v3/users", sim.base_url()))
        .header("cookie", format!("R_SESS={}", t.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A new API key, then deleted: 401 afterwards.
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v3/tokens",
        Some(&t.admin),
        Some(json!({"type": "token", "description": "t", "ttl": 0})),
    )
    .await;
    assert_eq!(st, 201);
    let key = v["token"].as_str().unwrap().to_string();
    assert_eq!(key.split_once(':').unwrap().1.len(), 54);
    assert_ne!(v["expiresAt"], "", "ttl 0 is turned into the maximum");
    assert!(v["userPrincipal"]
        .as_str()
        .unwrap()
        .starts_with("map[displayName:Default Admin"));
    let (st, v) = call(
        &sim,
        Method::GET,
        &format!("/v3/tokens/{}", v["id"].as_str().unwrap()),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(v.get("token").is_none());
    let id = v["id"].as_str().unwrap().to_string();
    let (st, _) = call(&sim, Method::DELETE, &format!("/v3/tokens/{id}"), Some(&t.admin), None).await;
    assert_eq!(st, 204);
    let (st, _) = call(&sim, Method::GET, "/v3/users", Some(&key), None).await;
    assert_eq!(st, 401);
    // Tokens list: only the caller's, unpaginated.
    let (_, v) = call(&sim, Method::GET, "/v3/tokens", Some(&t.user), None).await;
    assert_eq!(v["pagination"], json!({"limit": 1000}));
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["userId"] == sim.users().user.id.as_str()));
    assert!(v["data"].as_array().unwrap().iter().any(|x| x["expired"] == true));
}

#[tokio::test]
async fn ext_tokens_and_kubeconfigs() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let (st, v) = call(&sim, Method::POST, "/apis/ext.cattle.io/v1/tokens", Some(&t.user),
        Some(json!({"apiVersion": "ext.cattle.io/v1", "kind": "Token", "metadata": {"name": "ignored"}, "spec": {"description": "ci", "ttl": 3600000}}))).await;
    assert_eq!(st, 201, "{v}");
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("token-") && name != "ignored");
    let bearer = v["status"]["bearerToken"].as_str().unwrap().to_string();
    assert!(bearer.starts_with("ext/token-"));
    assert_eq!(v["status"]["value"].as_str().unwrap().len(), 54);
    let (st, v) = call(
        &sim,
        Method::GET,
        &format!("/apis/ext.cattle.io/v1/tokens/{name}"),
        Some(&bearer),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(v["status"].get("value").is_none());
    assert_eq!(v["status"]["current"], true);
    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/kubeconfigs",
        Some(&t.admin),
        Some(json!({"spec": {"clusters": ["local"], "ttl": 3600}})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert!(v["status"]["value"].as_str().unwrap().contains("current-context"));
    let (st, v) = call(
        &sim,
        Method::GET,
        &format!(
            "/apis/ext.cattle.io/v1/kubeconfigs/{}",
            v["metadata"]["name"].as_str().unwrap()
        ),
        Some(&t.admin),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(v["status"].get("value").is_none());
    // 2.11 has no ext tokens: the ext/ bearer is not accepted either.
    let old = start(RancherVersion::V2_11).await;
    let (st, _) = call(
        &old,
        Method::GET,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&old.tokens().admin.clone()),
        None,
    )
    .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn rk_crud_patch_status_and_conflicts() {
    let sim = start(RancherVersion::V2_13).await;
    let a = sim.tokens().admin.clone();
    let alice = sim.users().user.id.clone();
    let base = "/apis/management.cattle.io/v3/globalrolebindings";
    let (st, v) = call(
        &sim,
        Method::POST,
        base,
        Some(&a),
        Some(json!({"metadata": {"name": "my-grb"}, "globalRoleName": "user", "userName": alice})),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(v["userPrincipalName"], format!("local://{alice}"));
    let (st, v) = call(
        &sim,
        Method::POST,
        base,
        Some(&a),
        Some(json!({"metadata": {"name": "my-grb"}, "globalRoleName": "user", "userName": alice})),
    )
    .await;
    assert_eq!(
        (st, v["reason"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyExists"))
    );
    // Same subject and role under another name: GRBs have no duplicate prevention.
    let (st, _) = call(
        &sim,
        Method::POST,
        base,
        Some(&a),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "user", "userName": alice})),
    )
    .await;
    assert_eq!(st, 201);
    let (st, v) = call_ct(
        &sim,
        Method::PATCH,
        &format!("{base}/my-grb"),
        Some(&a),
        Some(json!({"metadata": {"labels": {"team": "a"}}})),
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["metadata"]["labels"]["team"], "a");
    let rv = v["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let mut changed = v.clone();
    changed["globalRoleName"] = json!("admin");
    let (st, v) = call(&sim, Method::PUT, &format!("{base}/my-grb"), Some(&a), Some(changed)).await;
    // An immutable field is the webhook's 400 (rancher/webhook globalrolebinding validateUpdateFields).
    assert_eq!(
        (st, v["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadRequest")),
        "{v}"
    );
    let (st, v) = call(&sim, Method::GET, &format!("{base}/my-grb/status"), Some(&a), None).await;
    assert_eq!(st, 200);
    let mut status = v.clone();
    status["status"]["summary"] = json!("Error");
    status["metadata"]["resourceVersion"] = json!(rv);
    let (st, v) = call(
        &sim,
        Method::PUT,
        &format!("{base}/my-grb/status"),
        Some(&a),
        Some(status),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"]["summary"], "Error");
    let (st, v) = call(&sim, Method::DELETE, &format!("{base}/my-grb"), Some(&a), None).await;
    assert_eq!(st, 200);
    // The object comes back, held by its finalizer (kube-apiserver; Rancher's lifecycle finalizers).
    assert_eq!(v["kind"].as_str(), Some("GlobalRoleBinding"));
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    assert_eq!(sim.writes("globalrolebindings", "create"), 2);
    assert_eq!(sim.writes("globalrolebindings", "patch"), 1);
    assert_eq!(sim.writes("globalrolebindings", "delete"), 1);
    // Namespaced kinds: CRTB in the cluster namespace, listed across namespaces too.
    let c = sim.users().downstream_cluster.clone();
    let (st, v) = call(&sim, Method::POST, &format!("/apis/management.cattle.io/v3/namespaces/{c}/clusterroletemplatebindings"), Some(&a),
        Some(json!({"metadata": {"generateName": "crtb-"}, "clusterName": c, "roleTemplateName": "cluster-member", "userName": alice}))).await;
    assert_eq!(st, 201, "{v}");
    let (_, v) = call(
        &sim,
        Method::GET,
        "/apis/management.cattle.io/v3/clusterroletemplatebindings",
        Some(&a),
        None,
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn duplicate_bindings_rejected_when_configured() {
    let sim = Simulator::start(SimConfig::default().seed(7).reject_duplicate_bindings(true))
        .await
        .unwrap();
    let a = sim.tokens().admin.clone();
    let bob = sim.users().standard[1].id.clone();
    let body = json!({"clusterId": "local", "roleTemplateId": "cluster-member", "userId": bob});
    let (st, _) = call(
        &sim,
        Method::POST,
        "/v3/clusterroletemplatebindings",
        Some(&a),
        Some(body.clone()),
    )
    .await;
    assert_eq!(st, 201);
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v3/clusterroletemplatebindings",
        Some(&a),
        Some(body),
    )
    .await;
    assert_eq!(st, 409);
    assert_eq!(v["code"], "Conflict");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .ends_with("denied the request: duplicate crtb not allowed"));
    // Default (<= 2.13): duplicates are accepted.
    let plain = start(RancherVersion::V2_13).await;
    let a = plain.tokens().admin.clone();
    let body =
        json!({"clusterId": "local", "roleTemplateId": "cluster-member", "userId": plain.users().standard[1].id});
    for _ in 0..2 {
        let (st, _) = call(
            &plain,
            Method::POST,
            "/v3/clusterroletemplatebindings",
            Some(&a),
            Some(body.clone()),
        )
        .await;
        assert_eq!(st, 201);
    }
}

#[tokio::test]
async fn paging_10000_users_each_exactly_once() {
    let sim = Simulator::start(SimConfig::default().users(10_000).seed(3))
        .await
        .unwrap();
    let total = sim.count("users");
    let a = sim.tokens().admin.clone();
    // RK-API continue.
    let mut seen = BTreeSet::new();
    let mut cont = String::new();
    let mut pages = 0;
    loop {
        let path = if cont.is_empty() {
            "/apis/management.cattle.io/v3/users?limit=700".to_string()
        } else {
            format!(
                "/apis/management.cattle.io/v3/users?limit=700&continue={}",
                urlencode(&cont)
            )
        };
        let (st, v) = call(&sim, Method::GET, &path, Some(&a), None).await;
        assert_eq!(st, 200);
        pages += 1;
        for i in v["items"].as_array().unwrap() {
            assert!(
                seen.insert(i["metadata"]["name"].as_str().unwrap().to_string()),
                "duplicate item"
            );
        }
        match v["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => {
                assert_eq!(
                    v["metadata"]["remainingItemCount"].as_u64().unwrap() as usize,
                    total - seen.len()
                );
                cont = c.to_string();
            }
            _ => break,
        }
    }
    assert_eq!(seen.len(), total);
    assert_eq!(pages, total.div_ceil(700));
    // Norman marker / next.
    let mut seen = BTreeSet::new();
    let mut url = format!("{}/v3/users?limit=1000", sim.base_url());
    loop {
        let r = client(&sim).get(&url).bearer_auth(&a).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        // /v3 hides the two `system://` users.
        assert_eq!(v["pagination"]["total"].as_u64().unwrap() as usize, total - 2);
        for i in v["data"].as_array().unwrap() {
            assert!(seen.insert(i["id"].as_str().unwrap().to_string()), "duplicate item");
        }
        match v["pagination"]["next"].as_str() {
            Some(n) => {
                assert_eq!(v["pagination"]["partial"], true);
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), total - 2);
}

fn urlencode(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn continue_tokens_expire() {
    let sim = start(RancherVersion::V2_13).await;
    sim.set_faults(Faults {
        continue_expire_after_pages: Some(1),
        ..Faults::default()
    });
    let a = sim.tokens().admin.clone();
    let (_, v) = call(
        &sim,
        Method::GET,
        "/apis/management.cattle.io/v3/globalroles?limit=3",
        Some(&a),
        None,
    )
    .await;
    let c = v["metadata"]["continue"].as_str().unwrap().to_string();
    let (st, v) = call(
        &sim,
        Method::GET,
        &format!(
            "/apis/management.cattle.io/v3/globalroles?limit=3&continue={}",
            url_escape(&c)
        ),
        Some(&a),
        None,
    )
    .await;
    assert_eq!(st, 410);
    assert_eq!(v["reason"], "Expired");
    assert!(v["metadata"]["continue"].as_str().is_some());
}

#[tokio::test]
async fn versions_hide_what_they_should() {
    let v211 = start(RancherVersion::V2_11).await;
    let a = v211.tokens().admin.clone();
    // Users are off the RK proxy's allow-list before 2.13: served only with local-cluster access (disallow.go).
    assert_eq!(
        call(
            &v211,
            Method::GET,
            "/apis/management.cattle.io/v3/users",
            Some(&a),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &v211,
            Method::GET,
            "/apis/management.cattle.io/v3/users",
            Some(&v211.tokens().user),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &v211,
            Method::GET,
            "/apis/management.cattle.io/v3/globalroles",
            Some(&a),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &v211,
            Method::GET,
            "/apis/auditlog.cattle.io/v1/auditpolicies",
            Some(&a),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(&v211, Method::GET, "/v1-public/authproviders", None, None).await.0,
        404
    );
    let v28 = start(RancherVersion::V2_8).await;
    let a = v28.tokens().admin.clone();
    // The RK-API arrived in 2.8.0 (rancher-docs openapi/swagger-v2.8.json); ext tokens in 2.12.
    for p in [
        "/apis/management.cattle.io/v3/globalroles",
        "/apis/management.cattle.io/v3/namespaces/local/projects",
    ] {
        assert_eq!(call(&v28, Method::GET, p, Some(&a), None).await.0, 200, "{p}");
    }
    assert_eq!(
        call(&v28, Method::GET, "/apis/ext.cattle.io/v1/tokens", Some(&a), None)
            .await
            .0,
        404
    );
    assert_eq!(call(&v28, Method::GET, "/v3/users", Some(&a), None).await.0, 200);
    let (_, v) = call(&v28, Method::GET, "/v3/globalroles/restricted-admin", Some(&a), None).await;
    assert_eq!(v["id"], "restricted-admin");
    let v16 = start(RancherVersion::V1_6).await;
    let a = v16.tokens().admin.clone();
    assert_eq!(call(&v16, Method::GET, "/v3/users", Some(&a), None).await.0, 404);
    assert_eq!(
        call(
            &v16,
            Method::GET,
            "/apis/management.cattle.io/v3/globalroles",
            Some(&a),
            None
        )
        .await
        .0,
        404
    );
    let (st, v) = call(&v16, Method::GET, "/v1/token", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"][0]["authProvider"], "localAuthConfig");
    let v212 = start(RancherVersion::V2_12).await;
    let (st, v) = call(
        &v212,
        Method::POST,
        "/v3-public/localProviders/local?action=login",
        None,
        Some(json!({"username": "admin", "password": rancher_sim::DEFAULT_PASSWORD})),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(v["type"], "token");
    assert!(v.get("userPrincipal").is_some(), "2.12 returns the full token object");
    let v213 = start(RancherVersion::V2_13).await;
    let (st, v) = call(
        &v213,
        Method::POST,
        "/v1-public/login",
        None,
        Some(json!({"type": "localProvider", "username": "alice", "password": rancher_sim::DEFAULT_PASSWORD})),
    )
    .await;
    assert_eq!(st, 201);
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["baseType", "expiresAt", "id", "token", "type"]));
    let (st, _) = call(
        &v213,
        Method::GET,
        "/v3/users",
        Some(v["token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn faults_are_injected_and_writes_counted_once() {
    let sim = start(RancherVersion::V2_13).await;
    let a = sim.tokens().admin.clone();
    let alice = sim.users().user.id.clone();
    let body = json!({"globalRoleId": "users-manage", "userId": alice});
    let send = || {
        client(&sim)
            .post(format!("{}/v3/globalrolebindings", sim.base_url()))
            .bearer_auth(&a)
            .json(&body)
            .send()
    };
    sim.set_faults(Faults {
        drop_before_write: 1.0,
        ..Faults::default()
    });
    assert!(send().await.is_err());
    assert_eq!(sim.writes("globalrolebindings", "create"), 0);
    sim.set_faults(Faults {
        drop_after_write: 1.0,
        ..Faults::default()
    });
    assert!(send().await.is_err());
    assert_eq!(
        sim.writes("globalrolebindings", "create"),
        1,
        "applied although the client saw no answer"
    );
    sim.set_faults(Faults {
        rate_429: 1.0,
        retry_after_secs: 3,
        ..Faults::default()
    });
    let r = client(&sim)
        .get(format!("{}/v3/users", sim.base_url()))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    sim.set_faults(Faults {
        rate_503: 1.0,
        ..Faults::default()
    });
    assert_eq!(
        call(&sim, Method::GET, "/apis/management.cattle.io/v3/users", Some(&a), None)
            .await
            .0,
        503
    );
    sim.set_faults(Faults::none());
    assert_eq!(call(&sim, Method::GET, "/v3/users", Some(&a), None).await.0, 200);
    assert_eq!(sim.count("globalrolebindings"), 7, "inspection is never faulted");
    let log = sim.request_log();
    assert_eq!(log.iter().filter(|r| r.fault.is_some()).count(), 4);
}

#[tokio::test]
async fn same_seed_same_data() {
    let a = Simulator::start(SimConfig::default().seed(11).users(50)).await.unwrap();
    let b = Simulator::start(SimConfig::default().seed(11).users(50)).await.unwrap();
    assert_eq!(a.users(), b.users());
    assert_eq!(a.tokens(), b.tokens());
    assert_eq!(a.objects("users"), b.objects("users"));
    assert!(a.users().admin.id.starts_with("user-"));
    assert!(a.users().approver.id.starts_with("u-"));
    let lines = a.env_lines(std::path::Path::new("/tmp/ca.pem"));
    let keys: Vec<&str> = lines.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "RANCHER_DOMAIN",
            "RANCHER_CA_CERT",
            "RANCHER_TOKEN",
            "RANCHER_TOKEN_APPROVER",
            "RANCHER_TOKEN_USER",
            "RANCHER_TOKEN_CLUSTER_SCOPED",
            "RANCHER_TOKEN_EXPIRED"
        ]
    );
}

#[tokio::test]
async fn seeds_50000_users() {
    let sim = Simulator::start(SimConfig::default().users(50_000)).await.unwrap();
    assert_eq!(sim.count("users"), 50_008);
    let a = sim.tokens().admin.clone();
    let (st, v) = call(&sim, Method::GET, "/v3/users?username=user49999", Some(&a), None).await;
    assert_eq!(st, 200);
    assert_eq!(v["pagination"]["total"], 1);
}

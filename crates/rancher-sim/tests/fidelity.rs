//! The simulator behaves as real Rancher does where it used to be kinder (issue 17; docs/fidelity.md lists each
//! difference, what Rancher does and the Rancher source it comes from). Each test names that source.

mod common;

use common::*;
use rancher_sim::{RancherVersion, SimHandle, DEFAULT_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MG: &str = "/apis/management.cattle.io/v3";

/// Logs `username` in with the seeded password and returns its session token.
async fn login(sim: &SimHandle, username: &str) -> String {
    let (st, v) = call(
        sim,
        Method::POST,
        "/v3-public/localProviders/local?action=login",
        None,
        Some(json!({"username": username, "password": DEFAULT_PASSWORD, "responseType": "json"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["token"].as_str().expect("login answer carries the token").to_string()
}

/// Admin gives `user_id` the global role `role`.
async fn bind(sim: &SimHandle, user_id: &str, role: &str) {
    let t = sim.tokens().admin.clone();
    let (st, v) = call(
        sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&t),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": role, "userName": user_id})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// Admin creates a custom global role with `rules`.
async fn custom_role(sim: &SimHandle, name: &str, rules: Value) {
    let t = sim.tokens().admin.clone();
    let (st, v) = call(
        sim,
        Method::POST,
        &format!("{MG}/globalroles"),
        Some(&t),
        Some(json!({"metadata": {"name": name}, "rules": rules})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// A user with exactly the global role `role` (besides the seeded `user`), logged in.
async fn user_with(sim: &SimHandle, username: &str, role: &str) -> (String, String) {
    let id = sim.user_id(username).expect("seeded user");
    bind(sim, &id, role).await;
    (id, login(sim, username).await)
}

/// Raw request: status, content type, body bytes.
async fn raw(sim: &SimHandle, method: Method, path: &str, token: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut rb = client(sim).request(method, format!("{}{}", sim.base_url(), path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("answered");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    (r.status(), ct, r.bytes().await.expect("body").to_vec())
}

async fn merge_patch(sim: &SimHandle, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call_ct(
        sim,
        Method::PATCH,
        path,
        Some(token),
        Some(body),
        "application/merge-patch+json",
    )
    .await
}

// ---- 1. Escalation --------------------------------------------------------------------------------------------

/// rancher/webhook pkg/resources/management.cattle.io/v3/globalrolebinding/validator.go: `auth.ConfirmNoEscalation`
/// -> `admission.ResponseFailedEscalation` (403 "errors due to escalation"), bypassed by the `bind` verb on the
/// GlobalRole; the check runs on create and update, never on delete.
#[tokio::test]
async fn grb_escalation_is_refused_unless_the_caller_holds_the_rules_or_bind() {
    let sim = start(RancherVersion::V2_13).await;
    let (bob, bob_t) = user_with(&sim, "bob", "users-manage").await;
    let body = json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "admin", "userName": bob});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&bob_t),
        Some(body.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["reason"], "Forbidden");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("errors due to escalation") && msg.contains("not currently held"),
        "{msg}"
    );
    assert!(!sim.has_binding(&bob, "admin"));

    // A role whose rules bob already holds may be granted.
    custom_role(
        &sim,
        "users-viewer",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["users"], "verbs": ["get", "list"]}]),
    )
    .await;
    let alice = sim.users().user.id.clone();
    let ok = json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "users-viewer", "userName": alice});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&bob_t),
        Some(ok),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    // Updating the admin binding of another user (even a label) is checked like a create (issue 29 N1:
    // globalrolebinding/validator.go runs `Admit` on Update); deleting it is not checked at all (`Operations()` has
    // no Delete, release/v0.4 to v0.10).
    let admin_grb = sim
        .objects("globalrolebindings")
        .into_iter()
        .find(|g| g["globalRoleName"] == "admin" && g["userName"] == json!(sim.users().approver.id))
        .unwrap();
    let path = format!(
        "{MG}/globalrolebindings/{}",
        admin_grb["metadata"]["name"].as_str().unwrap()
    );
    let (st, v) = merge_patch(&sim, &path, &bob_t, json!({"metadata": {"labels": {"x": "y"}}})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("errors due to escalation"),
        "{v}"
    );
    let (st, v) = call(&sim, Method::DELETE, &path, Some(&bob_t), None).await;
    assert_eq!(st, StatusCode::OK, "a delete needs only RBAC delete: {v}");

    // With `bind` on globalroles the escalation check is bypassed.
    custom_role(
        &sim,
        "binder",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["globalroles"], "verbs": ["bind"]}]),
    )
    .await;
    bind(&sim, &bob, "binder").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&bob_t),
        Some(body),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// rancher/webhook globalrole/validator.go (GlobalRole.md: "Escalation checks are bypassed if a user has the
/// `escalate` verb") and roletemplate/validator.go (same, `escalate` on roletemplates).
#[tokio::test]
async fn globalrole_and_roletemplate_escalation_need_escalate() {
    let sim = start(RancherVersion::V2_13).await;
    // Role templates sit behind the local-cluster gate, hence `get` on clusters/local.
    custom_role(&sim, "gr-author", json!([
        {"apiGroups": ["management.cattle.io"], "resources": ["globalroles", "roletemplates"], "verbs": ["create", "get", "list"]},
        {"apiGroups": ["management.cattle.io"], "resources": ["clusters"], "resourceNames": ["local"], "verbs": ["get"]}])).await;
    let (carol, carol_t) = user_with(&sim, "carol", "gr-author").await;
    let gr = json!({"metadata": {"name": "everything"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalroles"),
        Some(&carol_t),
        Some(gr.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("errors due to escalation"),
        "{v}"
    );
    let rt = json!({"metadata": {"name": "rt-everything"}, "context": "cluster", "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/roletemplates"),
        Some(&carol_t),
        Some(rt.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // rancher/webhook roletemplate/validator.go answers Kubernetes' escalation text without the GlobalRole prefix.
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("not currently held") && !msg.contains("errors due to escalation"),
        "{v}"
    );
    // A role within the author's own rules is fine.
    let small = json!({"metadata": {"name": "small"}, "rules": [{"apiGroups": ["management.cattle.io"], "resources": ["globalroles"], "verbs": ["get"]}]});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalroles"),
        Some(&carol_t),
        Some(small),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    custom_role(&sim, "escalator", json!([{"apiGroups": ["management.cattle.io"], "resources": ["globalroles", "roletemplates"], "verbs": ["escalate"]}])).await;
    bind(&sim, &carol, "escalator").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalroles"),
        Some(&carol_t),
        Some(gr),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/roletemplates"),
        Some(&carol_t),
        Some(rt),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// rancher/webhook users/validator.go (v0.4 to v0.9): "request is attempting to modify user with more permissions
/// than requester" (400 `ConfirmNoEscalationError`), bypassed by the `manage-users` verb on users.
#[tokio::test]
async fn user_updates_need_the_target_users_permissions_or_manage_users() {
    let sim = start(RancherVersion::V2_13).await;
    custom_role(&sim, "user-editor", json!([{"apiGroups": ["management.cattle.io"], "resources": ["users"], "verbs": ["get", "list", "patch", "update"]}])).await;
    let (_dave, dave_t) = user_with(&sim, "dave", "user-editor").await;
    let admin = sim.users().admin.id.clone();
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/users/{admin}"),
        &dave_t,
        json!({"displayName": "pwned"}),
    )
    .await;
    // Issue 29 N7: the webhook answers reason `ConfirmNoEscalationError` without a code, which the apiserver turns
    // into 400 (statuserror.go `ToStatusErr`), with Kubernetes' escalation detail appended.
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["reason"], "ConfirmNoEscalationError", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("request is attempting to modify user with more permissions than requester user \"")
            && msg.contains("is attempting to grant RBAC permissions not currently held"),
        "{v}"
    );

    // users-manage has `*` on users, which includes manage-users.
    let (_bob, bob_t) = user_with(&sim, "bob", "users-manage").await;
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/users/{admin}"),
        &bob_t,
        json!({"displayName": "Renamed Admin"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// rancher/webhook clusterroletemplatebinding/validator.go and projectroletemplatebinding/validator.go: the rules
/// of the role template must be held by the caller in that cluster/project (escalation check, 422, no bypass).
#[tokio::test]
async fn crtb_escalation_is_refused() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().admin.clone();
    let cluster = sim
        .objects("clusters")
        .into_iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
        .find(|c| c != "local")
        .unwrap();
    let dave = sim.user_id("dave").unwrap();
    let bob = sim.user_id("bob").unwrap();
    let crtb = |user: &str, role: &str| json!({"metadata": {"generateName": "crtb-", "namespace": cluster}, "clusterName": cluster, "roleTemplateName": role, "userName": user});
    let path = format!("{MG}/namespaces/{cluster}/clusterroletemplatebindings");
    let (st, v) = call(
        &sim,
        Method::POST,
        &path,
        Some(&t),
        Some(crtb(&dave, "clusterroletemplatebindings-manage")),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let dave_t = login(&sim, "dave").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &path,
        Some(&dave_t),
        Some(crtb(&bob, "cluster-owner")),
    )
    .await;
    // Issue 29 N6: pkg/auth/escalation.go `SetEscalationResponse` answers 422 `Invalid` with Kubernetes' text (no
    // "errors due to escalation" prefix), and no verb bypasses it: `bind` on roletemplates does not help.
    let refused = |st: StatusCode, v: &Value| {
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["reason"], "Invalid", "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("is attempting to grant RBAC permissions not currently held")
                && !msg.contains("errors due to escalation"),
            "{v}"
        );
    };
    refused(st, &v);
    custom_role(
        &sim,
        "rt-binder",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["roletemplates"], "verbs": ["bind"]}]),
    )
    .await;
    bind(&sim, &dave, "rt-binder").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &path,
        Some(&dave_t),
        Some(crtb(&bob, "cluster-owner")),
    )
    .await;
    refused(st, &v);
    // A role within dave's own rules in that cluster may be granted.
    let (st, v) = call(
        &sim,
        Method::POST,
        &path,
        Some(&dave_t),
        Some(crtb(&bob, "clusterroletemplatebindings-view")),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

// ---- 2. List authorization --------------------------------------------------------------------------------------

/// Kubernetes RBAC through impersonation (rancher/steve pkg/proxy/proxy.go) never filters a list; the only per-user
/// grant on users is `get` with resourceNames (rancher/rancher pkg/auth/providers/common/usermanager.go).
#[tokio::test]
async fn standard_users_get_403_on_lists_and_may_get_only_themselves() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().user.clone();
    for path in ["users", "globalroles", "globalrolebindings", "projects"] {
        let (st, v) = call(&sim, Method::GET, &format!("{MG}/{path}"), Some(&t), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {v}");
        assert_eq!(v["reason"], "Forbidden", "{path}");
    }
    let me = sim.users().user.id.clone();
    let (st, _) = call(&sim, Method::GET, &format!("{MG}/users/{me}"), Some(&t), None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(
        &sim,
        Method::GET,
        &format!("{MG}/users/{}", sim.users().admin.id),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// rancher/rancher pkg/api/steve/proxy/proxy.go `authLocalCluster` + pkg/api/steve/disallow/disallow.go: kinds off
/// the allow-list (roletemplates always; users before 2.13) need local-cluster access: 403 with an empty body.
#[tokio::test]
async fn roletemplates_need_local_cluster_access_and_answer_an_empty_403() {
    let sim = start(RancherVersion::V2_13).await;
    let (_, carol_t) = user_with(&sim, "carol", "roles-manage").await;
    for token in [
        carol_t.as_str(),
        sim.tokens().user.as_str(),
        "token-nope:doesnotexistatall",
    ] {
        let (st, _, body) = raw(&sim, Method::GET, &format!("{MG}/roletemplates"), Some(token)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
    }
    let (st, v) = admin_get(&sim, &format!("{MG}/roletemplates")).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let old = start(RancherVersion::V2_8).await;
    let (st, _, body) = raw(&old, Method::GET, &format!("{MG}/users"), Some(&old.tokens().user)).await;
    assert_eq!((st, body.len()), (StatusCode::FORBIDDEN, 0));
    let (st, v) = admin_get(&old, &format!("{MG}/users")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// rancher/rancher pkg/data/management/role_data.go: `user` has no globalroles rule, `roles-manage` is roletemplates
/// only, `authn-manage` is get/list/watch/update on authconfigs.
#[tokio::test]
async fn seeded_roles_are_rancher_role_data() {
    let sim = start(RancherVersion::V2_13).await;
    let rules = |name: &str| {
        let gr = sim.object("globalroles", name).unwrap();
        gr["rules"].as_array().unwrap().clone()
    };
    let resources = |rs: &[Value]| {
        rs.iter()
            .flat_map(|r| r["resources"].as_array().cloned().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert!(!resources(&rules("user")).contains(&json!("globalroles")));
    assert!(resources(&rules("user")).contains(&json!("roletemplates")));
    assert_eq!(resources(&rules("roles-manage")), vec![json!("roletemplates")]);
    assert_eq!(
        rules("authn-manage")[0]["verbs"],
        json!(["get", "list", "watch", "update"])
    );
}

// ---- 3. Token lifetimes -----------------------------------------------------------------------------------------

/// rancher/rancher pkg/ext/stores/tokens/tokens.go: `clampMaxTTL` (negative -> max) and `update` ("forbidden to
/// extend time-to-live", 400, for users without full permission).
#[tokio::test]
async fn ext_token_ttls_are_clamped_and_not_extendable_by_users() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().user.clone();
    let path = "/apis/ext.cattle.io/v1/tokens";
    let (st, v) = call(&sim, Method::POST, path, Some(&t), Some(json!({"spec": {"ttl": -1}}))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["spec"]["ttl"], json!(129_600i64 * 60_000), "{v}");
    assert_ne!(v["status"]["expiresAt"], "", "{v}");

    let (st, v) = call(
        &sim,
        Method::POST,
        path,
        Some(&t),
        Some(json!({"spec": {"ttl": 60000}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    let (st, v) = merge_patch(
        &sim,
        &format!("{path}/{name}"),
        &t,
        json!({"spec": {"ttl": 7_776_000_000i64}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("forbidden to extend time-to-live"),
        "{v}"
    );
    let (st, v) = merge_patch(&sim, &format!("{path}/{name}"), &t, json!({"spec": {"ttl": 30000}})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Admins may extend.
    let a = sim.tokens().admin.clone();
    let (st, v) = merge_patch(&sim, &format!("{path}/{name}"), &a, json!({"spec": {"ttl": 90000}})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// rancher/rancher pkg/ext/stores/kubeconfig/store.go `Create`: negative ttl 400, over the max 400, 0 = default.
#[tokio::test]
async fn kubeconfig_ttl_rules() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().user.clone();
    let path = "/apis/ext.cattle.io/v1/kubeconfigs";
    let (st, v) = call(
        &sim,
        Method::POST,
        path,
        Some(&t),
        Some(json!({"spec": {"clusters": ["local"], "ttl": -5}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("spec.ttl can't be negative"),
        "{v}"
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        path,
        Some(&t),
        Some(json!({"spec": {"clusters": ["local"], "ttl": 99_999_999_999i64}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("exceeds max ttl"), "{v}");
    let (st, v) = call(
        &sim,
        Method::POST,
        path,
        Some(&t),
        Some(json!({"spec": {"clusters": ["local"], "ttl": 0}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["spec"]["ttl"].as_i64().unwrap() > 0, "{v}");
    let tok = v["status"]["tokens"][0].as_str().unwrap();
    let stored = sim.object("tokens", tok).unwrap();
    assert_ne!(stored["expiresAt"], "", "{stored}");
}

// ---- 4. Versions ------------------------------------------------------------------------------------------------

/// rancher-docs openapi/swagger-v2.8.json documents globalrolebindings, globalroles, CRTB/PRTB and projects;
/// rancher/rancher pkg/api/steve/disallow/disallow.go (2.8) allow-lists them.
#[tokio::test]
async fn rancher_2_8_serves_the_management_kinds() {
    let sim = start(RancherVersion::V2_8).await;
    for path in [
        "globalroles",
        "globalrolebindings",
        "projects",
        "clusterroletemplatebindings",
        "projectroletemplatebindings",
        "roletemplates",
    ] {
        let (st, v) = admin_get(&sim, &format!("{MG}/{path}")).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
    }
}

// ---- 5. Deletes with finalizers ---------------------------------------------------------------------------------

/// rancher/rancher pkg/controllers/management/auth/globalroles/register.go adds lifecycle finalizers; the
/// kube-apiserver then answers a DELETE with the object carrying `deletionTimestamp`, and it lingers until the
/// controller is done. pkg/ext/stores/tokens/tokens.go `Delete` returns the Token.
#[tokio::test]
async fn deletes_return_the_object_which_lingers_briefly() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().admin.clone();
    let alice = sim.users().user.id.clone();
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&t),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "user-base", "userName": alice})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(
        v["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()),
        "{v}"
    );
    let path = format!("{MG}/globalrolebindings/{}", v["metadata"]["name"].as_str().unwrap());
    let (st, v) = call(&sim, Method::DELETE, &path, Some(&t), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "GlobalRoleBinding", "{v}");
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    let (st, v) = call(&sim, Method::GET, &path, Some(&t), None).await;
    assert_eq!(st, StatusCode::OK, "still terminating: {v}");
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if call(&sim, Method::GET, &path, Some(&t), None).await.0 == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
    }
    assert!(gone, "the finalizer is removed within 5 s");

    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&t),
        Some(json!({"spec": {"ttl": 60000}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = call(
        &sim,
        Method::DELETE,
        &format!(
            "/apis/ext.cattle.io/v1/tokens/{}",
            v["metadata"]["name"].as_str().unwrap()
        ),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "Token", "{v}");
}

// ---- 6. Users on 2.13 -------------------------------------------------------------------------------------------

/// rancher/webhook release/v0.9 users/validator.go: "can't deactivate yourself", "can't delete yourself",
/// principalIds immutable (400).
#[tokio::test]
async fn user_self_rules_on_2_13() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().admin.clone();
    let admin = sim.users().admin.id.clone();
    let (st, v) = merge_patch(&sim, &format!("{MG}/users/{admin}"), &t, json!({"enabled": false})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("can't deactivate yourself"),
        "{v}"
    );
    let (st, v) = call(&sim, Method::DELETE, &format!("{MG}/users/{admin}"), Some(&t), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("can't delete yourself"), "{v}");
    let alice = sim.users().user.id.clone();
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/users/{alice}"),
        &t,
        json!({"principalIds": ["local://u-someoneelse"]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        sim.object("users", &alice).unwrap()["principalIds"],
        json!([format!("local://{alice}")])
    );
}

// ---- 7. Status codes of webhook and store denials ---------------------------------------------------------------

/// rancher/webhook globalrolebinding validateUpdateFields -> ResponseBadRequest (400); globalrole/validator.go
/// validateDelete (400 "cannot delete builtin GlobalRoles"); RoleTemplate.md deletion check (builtin allowed unless
/// referenced); rancher/rancher pkg/ext/stores/tokens/tokens.go (400 for another user's token, 404 on theirs).
#[tokio::test]
async fn denial_status_codes_are_rancher_s() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().admin.clone();
    let grb = sim
        .objects("globalrolebindings")
        .into_iter()
        .find(|g| g["globalRoleName"] == "user")
        .unwrap();
    let path = format!("{MG}/globalrolebindings/{}", grb["metadata"]["name"].as_str().unwrap());
    let (st, v) = merge_patch(&sim, &path, &t, json!({"userName": "u-other"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("field is immutable"), "{v}");

    let (st, v) = call(&sim, Method::DELETE, &format!("{MG}/globalroles/user"), Some(&t), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("cannot delete builtin GlobalRoles"),
        "{v}"
    );

    let (st, v) = call(
        &sim,
        Method::DELETE,
        &format!("{MG}/roletemplates/nodes-view"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // A role template another one inherits (roleTemplateNames) may not be deleted.
    let rt = json!({"metadata": {"name": "wrapper"}, "context": "project", "roleTemplateNames": ["view"], "rules": []});
    let (st, v) = call(&sim, Method::POST, &format!("{MG}/roletemplates"), Some(&t), Some(rt)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = call(
        &sim,
        Method::DELETE,
        &format!("{MG}/roletemplates/view"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let alice = sim.users().user.id.clone();
    let user_t = sim.tokens().user.clone();
    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&user_t),
        Some(json!({"spec": {"userID": sim.users().admin.id, "ttl": 60000}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&t),
        Some(json!({"spec": {"ttl": 60000}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let admins = format!(
        "/apis/ext.cattle.io/v1/tokens/{}",
        v["metadata"]["name"].as_str().unwrap()
    );
    for m in [Method::GET, Method::DELETE] {
        let (st, v) = call(&sim, m.clone(), &admins, Some(&user_t), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m}: {v}");
    }
    let (st, v) = merge_patch(&sim, &admins, &user_t, json!({"spec": {"description": "x"}})).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let _ = alice;
}

// ---- 8. /v3 tokens of other users -------------------------------------------------------------------------------

/// rancher/rancher pkg/auth/tokens/manager.go `getTokenByID`: another user's token is 404, admin or not.
#[tokio::test]
async fn v3_token_of_another_user_is_404_even_for_admin() {
    let sim = start(RancherVersion::V2_13).await;
    let alice_token = sim.tokens().user.clone();
    let name = alice_token.split(':').next().unwrap();
    let (st, v) = call(
        &sim,
        Method::DELETE,
        &format!("/v3/tokens/{name}"),
        Some(&sim.tokens().admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, _) = call(&sim, Method::GET, "/v3/users?limit=1", Some(&alice_token), None).await;
    assert_eq!(st, StatusCode::OK, "alice's token still works");
}

// ---- 9. GlobalRoleBinding subjects ------------------------------------------------------------------------------

/// rancher/webhook globalrolebinding validator.go `validateCreate`: user and group together is Forbidden (400);
/// userPrincipalName alone is refused by v0.4-v0.6 (2.8-2.10) and accepted from v0.7 (2.11), after which
/// rancher/rancher globalrolebinding_handler.go `reconcileSubject` links or creates the user.
#[tokio::test]
async fn grb_subject_rules() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().admin.clone();
    let alice = sim.users().user.id.clone();
    let both = json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "user-base", "userName": alice, "groupPrincipalName": "local://g-x"});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&t),
        Some(both),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let by_principal = json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "user-base", "userPrincipalName": format!("local://{alice}")});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&t),
        Some(by_principal.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["userName"],
        json!(alice),
        "the controller links the existing user: {v}"
    );

    let old = start(RancherVersion::V2_8).await;
    let (st, v) = call(
        &old,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&old.tokens().admin.clone()),
        Some(by_principal),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

// ---- 10. dryRun=All ---------------------------------------------------------------------------------------------

/// Kubernetes runs authorization and admission on dry-run requests; rancher/webhook pkg/admission/admission.go
/// registers its webhooks with SideEffects None, so they run too.
#[tokio::test]
async fn dry_run_still_authorizes_and_validates() {
    let sim = start(RancherVersion::V2_13).await;
    let user_t = sim.tokens().user.clone();
    let (st, v) = call(
        &sim,
        Method::DELETE,
        &format!("{MG}/globalroles/admin?dryRun=All"),
        Some(&user_t),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let t = sim.tokens().admin.clone();
    let grb = sim
        .objects("globalrolebindings")
        .into_iter()
        .find(|g| g["globalRoleName"] == "user")
        .unwrap();
    let path = format!(
        "{MG}/globalrolebindings/{}?dryRun=All",
        grb["metadata"]["name"].as_str().unwrap()
    );
    let (st, v) = merge_patch(&sim, &path, &t, json!({"globalRoleName": "admin"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = merge_patch(&sim, &path, &user_t, json!({"metadata": {"labels": {"x": "y"}}})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
}

// ---- 11. Error bodies -------------------------------------------------------------------------------------------

/// rancher/steve pkg/proxy/proxy.go: without credentials `http.Error(rw, "not authorized", 401)` (text/plain).
#[tokio::test]
async fn anonymous_rk_requests_get_plain_text_401() {
    let sim = start(RancherVersion::V2_13).await;
    let (st, ct, body) = raw(&sim, Method::GET, &format!("{MG}/globalroles"), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(String::from_utf8_lossy(&body).trim(), "not authorized");
}

// ---- 12. 2.13 details -------------------------------------------------------------------------------------------

/// rancher/rancher pkg/auth/api/user/user_store.go hides `system://` users from /v3 only; tokens.go blanks
/// status.hash and labels tokens with authn.management.cattle.io/kind; status.go SummaryCompleted; CRDs declare
/// no selectableFields (fieldSelector only on metadata.name/namespace).
#[tokio::test]
async fn rancher_2_13_details() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().admin.clone();
    let (_, rk) = admin_get(&sim, &format!("{MG}/users")).await;
    let system = |u: &Value| {
        u["principalIds"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x.as_str().is_some_and(|s| s.starts_with("system://"))))
    };
    assert!(
        rk["items"].as_array().unwrap().iter().any(system),
        "RK lists system users"
    );
    let (_, v3) = admin_get(&sim, "/v3/users").await;
    assert!(!v3["data"].as_array().unwrap().iter().any(system), "/v3 hides them");

    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&t),
        Some(json!({"spec": {"ttl": 60000}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    let (_, got) = admin_get(&sim, &format!("/apis/ext.cattle.io/v1/tokens/{name}")).await;
    assert!(got["status"]["hash"].as_str().unwrap_or("").is_empty(), "{got}");
    assert!(
        got["metadata"]["labels"]["authn.management.cattle.io/kind"].is_string(),
        "{got}"
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&t),
        Some(json!({"spec": {"clusterName": "c-nope"}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let (_, gr) = admin_get(&sim, &format!("{MG}/globalroles/user")).await;
    assert_eq!(gr["status"]["summary"], "Completed", "{gr}");
    let (st, v) = admin_get(
        &sim,
        &format!("{MG}/globalrolebindings?fieldSelector=globalRoleName%3Dadmin"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = admin_get(&sim, &format!("{MG}/globalroles?fieldSelector=metadata.name%3Dadmin")).await;
    assert_eq!(st, StatusCode::OK);
}

// ---- 13. Rancher 1.x ---------------------------------------------------------------------------------------------

/// rancher/cattle (1.6): `OpenLDAPConfigManager.java` validates allowedIdentities for restricted/required (both
/// supported); `AbstractTokenUtil.isAllowed` denies with 403 `AuthError` "Your account does not have access";
/// `iaas-api/defaults.properties` `api.auth.jwt.token.expiry=57600000` (16 h); since Aug 2016 the Token has
/// `redirectUrl`/`originalLogin`/`authenticatedAsAccountId` and no `clientId`/`hostname`/`scheme`.
#[tokio::test]
async fn rancher_1_6_access_control_details() {
    let sim = start(RancherVersion::V1_6).await;
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(&sim, Method::POST, "/v1/openldapconfig", Some(&admin),
        Some(json!({"enabled": false, "accessMode": "restricted", "server": "ldap.example.com", "allowedIdentities": []}))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["accessMode"], "restricted");

    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/token",
        None,
        Some(json!({"code": format!("admin:{DEFAULT_PASSWORD}")})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    for gone in ["clientId", "hostname", "scheme"] {
        assert!(v.get(gone).is_none(), "{gone} in {v}");
    }
    for field in ["redirectUrl", "originalLogin", "authenticatedAsAccountId"] {
        assert!(v.get(field).is_some(), "{field} missing in {v}");
    }

    // A login the access mode denies: 403 AuthError.
    let cfg = json!({"enabled": false, "accessMode": "required", "server": "ad.example.com", "serviceAccountUsername": "svc",
                     "serviceAccountPassword": "s3cret", "allowedIdentities": []});
    assert_eq!(
        call(&sim, Method::POST, "/v1/ldapconfig", Some(&admin), Some(cfg))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/localauthconfig",
            Some(&admin),
            Some(json!({"enabled": false}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/token",
        None,
        Some(json!({"code": "mlee:mlee-password"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "AuthError");
    assert_eq!(v["message"], "Your account does not have access");
}

/// cattle `api.auth.jwt.token.expiry=57600000`: a 1.x login token lasts 16 hours.
#[tokio::test]
async fn rancher_1_6_login_tokens_last_16_hours() {
    let sim = start(RancherVersion::V1_6).await;
    let before = now_ms();
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/token",
        None,
        Some(json!({"code": format!("admin:{DEFAULT_PASSWORD}")})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let jwt = v["jwt"].as_str().unwrap().to_string();
    let expires = sim.legacy_token_expiry_ms(&jwt).expect("the token is stored");
    let hours = (expires - before) as f64 / 3_600_000.0;
    assert!((15.9..16.1).contains(&hours), "{hours} h");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// From 1.2 GitHub is configured in the auth service, not cattle (cattle 55272585b, Aug 2016):
/// rancher/rancher-auth-service service/routes.go serves `/v1-auth/config`; model/auth_config.go is the envelope;
/// service/route_handlers.go UpdateConfig answers 400 without a provider; its errors carry `status` as text
/// (ReturnHTTPError); providers/github GetSettings keeps the stored secret when an empty one is sent. cattle's
/// proxy lets only admins reach it.
#[tokio::test]
async fn rancher_1_6_github_is_configured_in_the_auth_service() {
    let sim = start(RancherVersion::V1_6).await;
    let admin = sim.tokens().admin.clone();
    let (st, _) = call(&sim, Method::GET, "/v1/githubconfig", Some(&admin), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "no githubconfig in cattle 1.2+");

    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1-auth/config",
        Some(&admin),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        (v["type"].as_str(), v["status"].as_str()),
        (Some("error"), Some("400")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("Provider is a required field"),
        "{v}"
    );

    let body = json!({"provider": "githubconfig", "enabled": false, "accessMode": "restricted", "allowedIdentities": [],
                      "githubConfig": {"hostname": "github.example.com", "scheme": "https://", "clientId": "abc", "clientSecret": "gh-S3cret"}});
    let (st, v) = call(&sim, Method::POST, "/v1-auth/config", Some(&admin), Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["provider"].as_str(), v["accessMode"].as_str()),
        (Some("githubconfig"), Some("restricted"))
    );
    assert_eq!(v["githubConfig"]["clientId"], "abc");
    assert_eq!(v["githubConfig"]["clientSecret"], "", "the secret never reads back");
    // An empty secret keeps the stored one: a login with the saved config still works.
    let keep = json!({"provider": "githubconfig", "githubConfig": {"hostname": "github.example.com", "scheme": "https://", "clientId": "abc", "clientSecret": ""}});
    assert_eq!(
        call(&sim, Method::POST, "/v1-auth/config", Some(&admin), Some(keep))
            .await
            .0,
        StatusCode::OK
    );
    let (st, v) = call(&sim, Method::GET, "/v1-auth/config", Some(&admin), None).await;
    assert_eq!(
        (st, v["githubConfig"]["hostname"].as_str()),
        (StatusCode::OK, Some("github.example.com"))
    );
    // With access control off, a login tests the config saved last: GitHub's, through the auth service.
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/localauthconfig",
            Some(&admin),
            Some(json!({"enabled": false}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let keep = json!({"provider": "githubconfig", "accessMode": "unrestricted", "githubConfig": {"clientId": "abc"}});
    assert_eq!(
        call(&sim, Method::POST, "/v1-auth/config", Some(&admin), Some(keep))
            .await
            .0,
        StatusCode::OK
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/token",
        None,
        Some(json!({"code": "octocat:octocat-password"})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "the saved GitHub config is what a login tests: {v}"
    );
    assert_eq!(v["authProvider"], "githubconfig");
}

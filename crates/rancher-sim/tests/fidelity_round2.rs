//! Second fidelity round (issue 29): how Rancher stores group memberships, cleans up a disabled auth provider,
//! inherits cluster roles from global roles, and answers its webhooks' refusals. Each test names the Rancher source
//! of the rule and the Rancher versions it applies to.

mod common;

use common::*;
use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator, DEFAULT_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MG: &str = "/apis/management.cattle.io/v3";
const ENGINEERING: &str = "activedirectory_group://CN=Engineering,OU=Groups,DC=example,DC=com";

/// Logs a seeded local user in; returns the session token.
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
    v["token"].as_str().expect("token").to_string()
}

/// Admin enables Active Directory (unrestricted) with `testAndApply`, as jdoe.
async fn enable_ad(sim: &SimHandle) {
    let admin = sim.tokens().admin.clone();
    let body = json!({
        "activeDirectoryConfig": {"servers": ["ad.example.com"], "serviceAccountUsername": "svc", "serviceAccountPassword": "pw",
                                  "userSearchBase": "dc=example,dc=com", "accessMode": "unrestricted"},
        "username": "jdoe", "password": "jdoe-password", "enabled": true});
    let (st, v) = call(
        sim,
        Method::POST,
        "/v3/activeDirectoryConfigs/activedirectory?action=testAndApply",
        Some(&admin),
        Some(body),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// A directory user logs in through AD; returns (token, token name).
async fn ad_login(sim: &SimHandle, login: &str) -> (String, String) {
    let (st, v) = call(
        sim,
        Method::POST,
        "/v3-public/activeDirectoryProviders/activedirectory?action=login",
        None,
        Some(json!({"username": login, "password": format!("{login}-password"), "responseType": "json"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let t = v["token"].as_str().expect("token").to_string();
    let name = t.split(':').next().unwrap().to_string();
    (t, name)
}

/// The user id of the directory user whose principal contains `cn`.
fn user_with_principal(sim: &SimHandle, cn: &str) -> String {
    sim.objects("users")
        .into_iter()
        .find(|u| {
            u["principalIds"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p.as_str().is_some_and(|p| p.contains(cn))))
        })
        .and_then(|u| u["metadata"]["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("a user with principal {cn}"))
}

async fn admin_create(sim: &SimHandle, path: &str, body: Value) -> Value {
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(sim, Method::POST, path, Some(&admin), Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

// ---- N2, N3: group memberships ----------------------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/rancher pkg/auth/tokens/manager.go `NewLoginToken` builds the login token without
/// group principals; the groups a provider reports are kept per provider in the user's `UserAttribute`
/// (pkg/apis/management.cattle.io/v3/authn_types.go, written by `UserAttributeCreateOrUpdate` at login). Norman
/// imports the type without methods (pkg/schemas/management.cattle.io/v3/schema.go `userTypes`): 405 on /v3.
#[tokio::test]
async fn a_directory_login_records_groups_in_the_user_attribute_not_on_the_token() {
    let sim = start(RancherVersion::V2_13).await;
    enable_ad(&sim).await;
    let (_, token_name) = ad_login(&sim, "asmith").await;
    let uid = user_with_principal(&sim, "Anna Smith");
    let admin = sim.tokens().admin.clone();

    let (st, tok) = call(
        &sim,
        Method::GET,
        &format!("{MG}/tokens/{token_name}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{tok}");
    assert!(
        tok.get("groupPrincipals")
            .is_none_or(|g| g.as_array().is_none_or(|a| a.is_empty())),
        "the login token carries no groups: {tok}"
    );

    let (st, attr) = call(
        &sim,
        Method::GET,
        &format!("{MG}/userattributes/{uid}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{attr}");
    assert_eq!(attr["kind"], "UserAttribute");
    assert_eq!(attr["UserName"], json!(uid));
    let items: Vec<&str> = attr["GroupPrincipals"]["activedirectory"]["Items"]
        .as_array()
        .expect("the AD entry")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(items, vec![ENGINEERING]);
    assert!(attr["lastLogin"].as_str().is_some_and(|s| s.ends_with('Z')), "{attr}");

    // A standard user may not read attributes (behind the local-cluster gate, like every non-allow-listed kind).
    let alice = login(&sim, "alice").await;
    let (st, _) = call(&sim, Method::GET, &format!("{MG}/userattributes"), Some(&alice), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Norman knows the schema but serves no method.
    let (st, v) = call(&sim, Method::GET, "/v3/userattributes", Some(&admin), None).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED, "{v}");
}

/// Rancher 2.8-2.13. A group's bindings reach its members: the GRB controller binds the group
/// (pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go), CRTB/PRTB subjects come from
/// pkg/rbac/common.go `BuildSubjectFromRTB` (`Group` kind), and pkg/auth/requests/authenticate.go gives the caller
/// the UserAttribute's groups.
#[tokio::test]
async fn group_bindings_grant_what_they_say_to_members() {
    let sim = start(RancherVersion::V2_13).await;
    enable_ad(&sim).await;
    let (anna, _) = ad_login(&sim, "asmith").await;
    let (st, _) = call(&sim, Method::GET, &format!("{MG}/globalroles"), Some(&anna), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a standard user before the group grant");

    admin_create(
        &sim,
        &format!("{MG}/globalrolebindings"),
        json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "admin", "groupPrincipalName": ENGINEERING}),
    )
    .await;
    let (st, v) = call(&sim, Method::GET, &format!("{MG}/globalroles"), Some(&anna), None).await;
    assert_eq!(st, StatusCode::OK, "admin through the group: {v}");

    // A group CRTB: mlee (no groups) is unaffected; a member of the group may list CRTBs in that cluster.
    let sim = start(RancherVersion::V2_13).await;
    enable_ad(&sim).await;
    let (anna, _) = ad_login(&sim, "asmith").await;
    let ds = sim.users().downstream_cluster.clone();
    admin_create(
        &sim,
        &format!("{MG}/namespaces/{ds}/clusterroletemplatebindings"),
        json!({"metadata": {"generateName": "crtb-", "namespace": ds}, "clusterName": ds, "roleTemplateName": "cluster-owner", "groupPrincipalName": ENGINEERING}),
    )
    .await;
    let (st, v) = call(
        &sim,
        Method::GET,
        &format!("{MG}/namespaces/{ds}/clusterroletemplatebindings"),
        Some(&anna),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "cluster owner through the group: {v}");
    let (mlee, _) = ad_login(&sim, "mlee").await;
    let (st, _) = call(
        &sim,
        Method::GET,
        &format!("{MG}/namespaces/{ds}/clusterroletemplatebindings"),
        Some(&mlee),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// Rancher 2.8-2.13. A refresh re-reads the groups into the UserAttribute and stamps `LastRefresh`
/// (rancher/rancher pkg/auth/providerrefresh/refresher.go `refreshSingleUser`).
#[tokio::test]
async fn a_refresh_rewrites_the_user_attribute() {
    let sim = start(RancherVersion::V2_13).await;
    enable_ad(&sim).await;
    ad_login(&sim, "asmith").await;
    let uid = user_with_principal(&sim, "Anna Smith");
    let mut attr = sim.object("userattributes", &uid).expect("written at login");
    attr["GroupPrincipals"]["activedirectory"]["Items"] = json!([]);
    assert!(sim.insert_object("userattributes", attr));
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("/v3/users/{uid}?action=refreshauthprovideraccess"),
        Some(&admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let attr = sim.object("userattributes", &uid).unwrap();
    assert_eq!(
        attr["GroupPrincipals"]["activedirectory"]["Items"][0]["metadata"]["name"],
        ENGINEERING
    );
    assert!(attr["LastRefresh"].as_str().is_some_and(|s| !s.is_empty()), "{attr}");
}

// ---- N4: disabling a provider cleans up ---------------------------------------------------------------------------

/// AD on, asmith logged in, a group GRB, a group CRTB and a user PRTB of AD principals.
async fn ad_world(sim: &SimHandle) -> String {
    enable_ad(sim).await;
    ad_login(sim, "asmith").await;
    let anna = user_with_principal(sim, "Anna Smith");
    let ds = sim.users().downstream_cluster.clone();
    admin_create(
        sim,
        &format!("{MG}/globalrolebindings"),
        json!({"metadata": {"name": "grb-eng"}, "globalRoleName": "user-base", "groupPrincipalName": ENGINEERING}),
    )
    .await;
    admin_create(
        sim,
        &format!("{MG}/namespaces/{ds}/clusterroletemplatebindings"),
        json!({"metadata": {"name": "crtb-eng", "namespace": ds}, "clusterName": ds, "roleTemplateName": "cluster-member", "groupPrincipalName": ENGINEERING}),
    )
    .await;
    anna
}

fn names(sim: &SimHandle, kind: &str) -> Vec<String> {
    sim.objects(kind)
        .into_iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Rancher 2.8-2.13. rancher/rancher pkg/controllers/management/auth/auth_config.go `sync`: a disabled provider whose
/// cleanup annotation is `unlocked` has its config reset (`resetAuthConfig`) and its resources deleted
/// (pkg/auth/cleanup/service.go `Run`: group GRBs, CRTBs/PRTBs, never-local users, tokens; once-local users keep only
/// their local principal), then the annotation becomes `rancher-locked`.
#[tokio::test]
async fn disabling_a_provider_resets_it_and_deletes_its_users_bindings_and_tokens() {
    let sim = start(RancherVersion::V2_13).await;
    let anna = ad_world(&sim).await;
    let cfg = sim.object("authconfigs", "activedirectory").unwrap();
    assert_eq!(
        cfg["metadata"]["annotations"]["management.cattle.io/auth-provider-cleanup"], "unlocked",
        "{cfg}"
    );
    let admin = sim.tokens().admin.clone();
    let admin_id = sim.users().admin.id.clone();
    assert!(sim.object("users", &admin_id).unwrap()["principalIds"]
        .to_string()
        .contains("activedirectory_user"));
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v3/activeDirectoryConfigs/activedirectory?action=disable",
        Some(&admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let cfg = sim.object("authconfigs", "activedirectory").unwrap();
    assert!(
        cfg.get("servers").is_none() && cfg.get("serviceAccountPassword").is_none(),
        "{cfg}"
    );
    assert_eq!(
        cfg["metadata"]["annotations"]["management.cattle.io/auth-provider-cleanup"],
        "rancher-locked"
    );
    assert!(sim.object("users", &anna).is_none(), "the AD-only user is deleted");
    assert!(!names(&sim, "globalrolebindings").contains(&"grb-eng".to_string()));
    assert!(!names(&sim, "clusterroletemplatebindings").contains(&"crtb-eng".to_string()));
    assert!(sim
        .objects("tokens")
        .iter()
        .all(|t| t["authProvider"] != "activedirectory"));
    let ids = sim.object("users", &admin_id).unwrap()["principalIds"].clone();
    assert_eq!(ids, json!([format!("local://{admin_id}")]), "the admin is local again");
    // Local keys live on.
    let (st, _) = call(&sim, Method::GET, "/v3/users?limit=1", Some(&admin), None).await;
    assert_eq!(st, StatusCode::OK);
}

/// Same source: `user-locked` (set by an admin beforehand) keeps the config and every resource.
#[tokio::test]
async fn a_user_locked_provider_keeps_everything_when_disabled() {
    let sim = start(RancherVersion::V2_13).await;
    let anna = ad_world(&sim).await;
    let mut cfg = sim.object("authconfigs", "activedirectory").unwrap();
    cfg["metadata"]["annotations"]["management.cattle.io/auth-provider-cleanup"] = json!("user-locked");
    assert!(sim.insert_object("authconfigs", cfg));
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v3/activeDirectoryConfigs/activedirectory?action=disable",
        Some(&admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let cfg = sim.object("authconfigs", "activedirectory").unwrap();
    assert_eq!(cfg["servers"], json!(["ad.example.com"]), "{cfg}");
    assert!(sim.object("users", &anna).is_some());
    assert!(names(&sim, "globalrolebindings").contains(&"grb-eng".to_string()));
    assert!(names(&sim, "clusterroletemplatebindings").contains(&"crtb-eng".to_string()));
}

// ---- N5: inheritedClusterRoles -------------------------------------------------------------------------------------

/// Admin binds `user_id` to a new global role `name` with `rules`; returns nothing (asserts 201).
async fn role_for(sim: &SimHandle, user_id: &str, name: &str, rules: Value) {
    admin_create(
        sim,
        &format!("{MG}/globalroles"),
        json!({"metadata": {"name": name}, "rules": rules}),
    )
    .await;
    admin_create(
        sim,
        &format!("{MG}/globalrolebindings"),
        json!({"metadata": {"generateName": "grb-"}, "globalRoleName": name, "userName": user_id}),
    )
    .await;
}

/// Rancher 2.8-2.13. rancher/webhook globalrole/validator.go `validateInheritedClusterRoles` (cluster context, not
/// locked: 400) and the cluster-rules escalation check (`ClusterRulesFromRole`, 403, bypass `escalate`);
/// globalrolebinding/validator.go checks the same cluster rules before the global ones (403, bypass `bind`).
#[tokio::test]
async fn inherited_cluster_roles_are_checked_for_escalation() {
    let sim = start(RancherVersion::V2_13).await;
    let dave = sim.user_id("dave").unwrap();
    role_for(
        &sim,
        &dave,
        "gr-creator",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["globalroles"], "verbs": ["create", "get", "list"]}]),
    )
    .await;
    let dave_t = login(&sim, "dave").await;
    let everywhere = json!({"metadata": {"name": "owners-everywhere"}, "inheritedClusterRoles": ["cluster-owner"]});
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalroles"),
        Some(&dave_t),
        Some(everywhere.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("errors due to escalation"),
        "{v}"
    );

    admin_create(&sim, &format!("{MG}/globalroles"), everywhere).await;
    let bob = sim.user_id("bob").unwrap();
    let alice = sim.user_id("alice").unwrap();
    admin_create(
        &sim,
        &format!("{MG}/globalrolebindings"),
        json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "users-manage", "userName": bob}),
    )
    .await;
    let bob_t = login(&sim, "bob").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&bob_t),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "owners-everywhere", "userName": alice})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");

    let admin = sim.tokens().admin.clone();
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalroles"),
        Some(&admin),
        Some(json!({"metadata": {"name": "project-owners"}, "inheritedClusterRoles": ["project-owner"]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("non-cluster context"), "{v}");
}

/// Rancher 2.8-2.13. rancher/rancher pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go
/// `reconcileClusterPermissions`: a `crtb-grb-*` CRTB per inherited role template in every non-local cluster,
/// labelled `authz.management.cattle.io/grb-owner`, owned by the binding (and removed with it).
#[tokio::test]
async fn a_binding_of_a_role_with_inherited_cluster_roles_creates_crtbs_downstream() {
    let sim = start(RancherVersion::V2_13).await;
    admin_create(
        &sim,
        &format!("{MG}/globalroles"),
        json!({"metadata": {"name": "owners-everywhere"}, "inheritedClusterRoles": ["cluster-owner"]}),
    )
    .await;
    let alice = sim.user_id("alice").unwrap();
    admin_create(
        &sim,
        &format!("{MG}/globalrolebindings"),
        json!({"metadata": {"name": "grb-alice-owner"}, "globalRoleName": "owners-everywhere", "userName": alice}),
    )
    .await;
    let ds = sim.users().downstream_cluster.clone();
    let owned: Vec<Value> = sim
        .objects("clusterroletemplatebindings")
        .into_iter()
        .filter(|b| b["metadata"]["labels"]["authz.management.cattle.io/grb-owner"] == "grb-alice-owner")
        .collect();
    let downstream = sim.objects("clusters").len() - 1;
    assert_eq!(owned.len(), downstream, "one per non-local cluster: {owned:?}");
    let b = owned
        .iter()
        .find(|b| b["clusterName"] == json!(ds))
        .expect("in the downstream cluster");
    assert!(b["metadata"]["name"].as_str().unwrap().starts_with("crtb-grb-"), "{b}");
    assert_eq!(b["roleTemplateName"], "cluster-owner");
    assert_eq!(b["userName"], json!(alice));
    assert!(owned.iter().all(|b| b["clusterName"] != "local"));

    let admin = sim.tokens().admin.clone();
    let (st, v) = call(
        &sim,
        Method::DELETE,
        &format!("{MG}/globalrolebindings/grb-alice-owner"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Deletes may linger while the finalizer runs; the owned CRTBs go with the binding.
    for _ in 0..100 {
        let _ = call(
            &sim,
            Method::GET,
            &format!("{MG}/globalrolebindings"),
            Some(&admin),
            None,
        )
        .await;
        if sim.object("globalrolebindings", "grb-alice-owner").is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sim
        .objects("clusterroletemplatebindings")
        .iter()
        .all(|b| b["metadata"]["labels"]["authz.management.cattle.io/grb-owner"] != "grb-alice-owner"));
}

// ---- N13: the management tokens kind is gated ----------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/rancher pkg/api/steve/proxy/proxy.go `matchManagementCRDs` gates every management kind
/// not in pkg/api/steve/disallow/disallow.go `AllowAll`; `tokens` is not in it: without `get` on
/// `clusters.management.cattle.io/local` the list is 403 with an empty body.
#[tokio::test]
async fn management_tokens_sit_behind_the_local_cluster_gate() {
    let sim = start(RancherVersion::V2_13).await;
    let carol = sim.user_id("carol").unwrap();
    role_for(
        &sim,
        &carol,
        "token-lister",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["tokens"], "verbs": ["get", "list"]}]),
    )
    .await;
    let carol_t = login(&sim, "carol").await;
    let (st, v) = call(&sim, Method::GET, &format!("{MG}/tokens"), Some(&carol_t), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v, Value::Null, "an empty body");
    role_for(
        &sim,
        &carol,
        "local-getter",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["clusters"], "resourceNames": ["local"], "verbs": ["get"]}]),
    )
    .await;
    let (st, v) = call(&sim, Method::GET, &format!("{MG}/tokens"), Some(&carol_t), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

// ---- N17: the System project ---------------------------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/webhook project/validator.go `admitDelete`: a project labelled
/// `authz.management.cattle.io/system-project: "true"` cannot be deleted (400), for admins too, dry run included.
#[tokio::test]
async fn the_system_project_cannot_be_deleted() {
    let sim = start(RancherVersion::V2_13).await;
    let system = sim
        .objects("projects")
        .into_iter()
        .find(|p| p["metadata"]["labels"]["authz.management.cattle.io/system-project"] == "true")
        .expect("a seeded System project");
    let path = format!(
        "{MG}/namespaces/{}/projects/{}?dryRun=All",
        system["metadata"]["namespace"].as_str().unwrap(),
        system["metadata"]["name"].as_str().unwrap()
    );
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(&sim, Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("System Project cannot be deleted"),
        "{v}"
    );
}

// ---- N14: service-account PRTBs -------------------------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/webhook projectroletemplatebinding/validator.go `validateCreateFields`: exactly one of
/// a user, a group or a service account.
#[tokio::test]
async fn a_prtb_may_target_a_service_account() {
    let sim = start(RancherVersion::V2_13).await;
    let seeded = sim
        .objects("projectroletemplatebindings")
        .into_iter()
        .next()
        .expect("a seeded PRTB");
    let ns = seeded["metadata"]["namespace"].as_str().unwrap().to_string();
    let path = format!("{MG}/namespaces/{ns}/projectroletemplatebindings");
    let body = json!({"metadata": {"generateName": "prtb-", "namespace": ns}, "projectName": seeded["projectName"],
                      "roleTemplateName": "read-only", "serviceAccount": "default:builder"});
    admin_create(&sim, &path, body.clone()).await;
    let mut both = body;
    both["userName"] = json!(sim.user_id("alice").unwrap());
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(&sim, Method::POST, &path, Some(&admin), Some(both)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("OR a [serviceAccount]"), "{v}");
}

// ---- N8: lastUsedAt ------------------------------------------------------------------------------------------------

/// The token's recorded last use, as the admin reads it over the Kubernetes API, with its resourceVersion.
async fn last_use(sim: &SimHandle, path: &str, field: &str) -> (Option<String>, String) {
    let (st, v) = admin_get(sim, path).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let at = v.pointer(field).and_then(Value::as_str).map(str::to_string);
    (
        at,
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Rancher 2.10+: rancher/rancher pkg/auth/requests/authenticate.go `Authenticate` writes `lastUsedAt` on each
/// authenticated request (once per second at most), and norman's /v3 view shows it; ext tokens (2.12+) get
/// `status.lastUsedAt` (pkg/ext/stores/tokens/tokens.go `UpdateLastUsedAt`). Before 2.10 the field does not exist
/// (pkg/apis/management.cattle.io/v3/authn_types.go on release/v2.8 and v2.9).
#[tokio::test]
async fn a_used_token_records_its_last_use_from_2_10() {
    let sim = start(RancherVersion::V2_13).await;
    let alice = login(&sim, "alice").await;
    let name = alice.split(':').next().unwrap().to_string();
    let path = format!("{MG}/tokens/{name}");
    let (before, _) = last_use(&sim, &path, "/lastUsedAt").await;
    assert_eq!(before, None, "a token not yet used has no lastUsedAt");

    let start_ms = chrono::Utc::now().timestamp() * 1000;
    let (st, v) = call(&sim, Method::GET, "/v3/users?me=true", Some(&alice), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (at, _) = last_use(&sim, &path, "/lastUsedAt").await;
    let at = at.expect("lastUsedAt is set by the use");
    let at_ms = chrono::DateTime::parse_from_rfc3339(&at)
        .expect("RFC 3339")
        .timestamp_millis();
    assert!(at_ms >= start_ms, "{at} is not before the request");

    // The /v3 view shows it too.
    let (st, v) = call(&sim, Method::GET, &format!("/v3/tokens/{name}"), Some(&alice), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["lastUsedAt"].is_string(), "{v}");

    // Uses within the same second write once: the object is not rewritten when the time would not change.
    let mut checked = false;
    for _ in 0..5 {
        call(&sim, Method::GET, "/v3/users?me=true", Some(&alice), None).await;
        let (a1, rv1) = last_use(&sim, &path, "/lastUsedAt").await;
        call(&sim, Method::GET, "/v3/users?me=true", Some(&alice), None).await;
        let (a2, rv2) = last_use(&sim, &path, "/lastUsedAt").await;
        if a1 == a2 {
            assert_eq!(rv1, rv2, "no write when lastUsedAt stays the same");
            checked = true;
            break;
        }
    }
    assert!(checked, "two uses within one second");

    // An ext token records its use in status.
    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&alice),
        Some(json!({"spec": {"ttl": 600000}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let ext_name = v["metadata"]["name"].as_str().unwrap().to_string();
    let bearer = v["status"]["bearerToken"].as_str().expect("bearer").to_string();
    let ext_path = format!("/apis/ext.cattle.io/v1/tokens/{ext_name}");
    assert_eq!(last_use(&sim, &ext_path, "/status/lastUsedAt").await.0, None);
    let (st, v) = call(&sim, Method::GET, "/v3/users?me=true", Some(&bearer), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(last_use(&sim, &ext_path, "/status/lastUsedAt").await.0.is_some());
}

/// Rancher 2.8/2.9: v3 Tokens have no `lastUsedAt` (authn_types.go), so neither use nor the seeded sprawl shows one.
#[tokio::test]
async fn tokens_have_no_last_use_before_2_10() {
    let sim = rancher_sim::Simulator::start(
        rancher_sim::SimConfig::default()
            .rancher_version(RancherVersion::V2_8)
            .seed(7)
            .tokens(40),
    )
    .await
    .expect("simulator starts");
    let alice = login(&sim, "alice").await;
    let name = alice.split(':').next().unwrap().to_string();
    let (st, v) = call(&sim, Method::GET, "/v3/users?me=true", Some(&alice), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (at, _) = last_use(&sim, &format!("{MG}/tokens/{name}"), "/lastUsedAt").await;
    assert_eq!(at, None);
    let (st, v) = call(&sim, Method::GET, &format!("/v3/tokens/{name}"), Some(&alice), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.get("lastUsedAt").is_none(), "{v}");
    assert!(
        sim.objects("tokens").iter().all(|t| t.get("lastUsedAt").is_none()),
        "no seeded token has a last use on 2.8"
    );
}

// ---- N16: CRTB/PRTB refusal texts ----------------------------------------------------------------------------------

/// POSTs as admin and returns the refusal's status and message.
async fn refused(sim: &SimHandle, path: &str, body: Value) -> (StatusCode, String) {
    let admin = sim.tokens().admin.clone();
    let (st, v) = call(sim, Method::POST, path, Some(&admin), Some(body)).await;
    (st, v["message"].as_str().unwrap_or_default().to_string())
}

/// Rancher 2.8-2.13. rancher/webhook clusterroletemplatebinding/validator.go and projectroletemplatebinding/validator.go
/// `validateCreateFields`: Kubernetes field errors on `clusterroletemplatebinding` / `projectroletemplatebinding`
/// (singular), 400; the PRTB's locked-role text quotes the display name.
#[tokio::test]
async fn crtb_and_prtb_refusals_carry_the_webhooks_field_paths() {
    let sim = start(RancherVersion::V2_13).await;
    let ds = sim.users().downstream_cluster.clone();
    let alice = sim.user_id("alice").unwrap();
    admin_create(
        &sim,
        &format!("{MG}/roletemplates"),
        json!({"metadata": {"name": "old-role"}, "displayName": "Old Role", "context": "cluster", "locked": true, "rules": []}),
    )
    .await;
    admin_create(
        &sim,
        &format!("{MG}/roletemplates"),
        json!({"metadata": {"name": "old-project-role"}, "displayName": "Old Project Role", "context": "project", "locked": true, "rules": []}),
    )
    .await;
    let crtbs = format!("{MG}/namespaces/{ds}/clusterroletemplatebindings");
    let crtb = |cluster: &str, rt: &str| json!({"metadata": {"generateName": "crtb-", "namespace": ds}, "clusterName": cluster, "roleTemplateName": rt, "userName": alice});
    let cases = [
        (crtb("local", "cluster-member"), "clusterroletemplatebinding: Forbidden: clusterName and namespace must be the same value".to_string()),
        (crtb(&ds, "nope"), "clusterroletemplatebinding.roleTemplateName: Invalid value: \"nope\": the referenced role template was not found".to_string()),
        (crtb(&ds, "old-role"), "clusterroletemplatebinding.roleTemplate: Forbidden: referenced role Old Role is locked and cannot be assigned".to_string()),
        (crtb(&ds, "project-member"), "clusterroletemplatebinding.roleTemplate.context: Unsupported value: \"project\": supported values: \"cluster\"".to_string()),
    ];
    for (body, want) in cases {
        let (st, msg) = refused(&sim, &crtbs, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{msg}");
        assert!(msg.ends_with(&want), "{msg}\n  wanted: {want}");
    }
    // A CRTB in the namespace of a cluster that does not exist.
    let (st, msg) = refused(
        &sim,
        &format!("{MG}/namespaces/c-nope/clusterroletemplatebindings"),
        json!({"metadata": {"generateName": "crtb-", "namespace": "c-nope"}, "clusterName": "c-nope", "roleTemplateName": "cluster-member", "userName": alice}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{msg}");
    assert!(
        msg.ends_with(
            "clusterroletemplatebinding.clusterName: Invalid value: \"c-nope\": specified cluster c-nope not found"
        ),
        "{msg}"
    );

    let seeded = sim
        .objects("projectroletemplatebindings")
        .into_iter()
        .next()
        .expect("a seeded PRTB");
    let ns = seeded["metadata"]["namespace"].as_str().unwrap().to_string();
    let project = seeded["projectName"].as_str().unwrap().to_string();
    let prtbs = format!("{MG}/namespaces/{ns}/projectroletemplatebindings");
    let prtb = |rt: &str| json!({"metadata": {"generateName": "prtb-", "namespace": ns}, "projectName": project, "roleTemplateName": rt, "userName": alice});
    let cases = [
        (prtb("nope"), "projectroletemplatebinding.roleTemplateName: Invalid value: \"nope\": the referenced role template was not found"),
        (prtb("old-project-role"), "projectroletemplatebinding.roleTemplate: Forbidden: referenced role 'Old Project Role' is locked and cannot be assigned"),
        (prtb("cluster-member"), "projectroletemplatebinding.roleTemplate.context: Unsupported value: \"cluster\": supported values: \"project\""),
    ];
    for (body, want) in cases {
        let (st, msg) = refused(&sim, &prtbs, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{msg}");
        assert!(msg.ends_with(want), "{msg}\n  wanted: {want}");
    }
}

// ---- N15: immutability ---------------------------------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/webhook globalrolebinding/validator.go `validateUpdateFields` checks only `userName`,
/// `groupPrincipalName` and `globalRoleName`; clusterroletemplatebinding/ and projectroletemplatebinding/validator.go
/// let an empty subject field be set once, never change a PRTB's service account ("update is not allowed"), and
/// compare a PUT body as it is (an omitted `userName` is a change to "").
#[tokio::test]
async fn immutable_fields_follow_the_webhooks_update_rules() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let alice = sim.user_id("alice").unwrap();
    let grb = admin_create(
        &sim,
        &format!("{MG}/globalrolebindings"),
        json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "user", "userName": alice}),
    )
    .await;
    let grb_path = format!("{MG}/globalrolebindings/{}", grb["metadata"]["name"].as_str().unwrap());
    let (st, v) = merge_patch(
        &sim,
        &grb_path,
        &admin,
        json!({"userPrincipalName": "local://someone-else"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "a GRB's userPrincipalName may change: {v}");
    let (st, v) = merge_patch(&sim, &grb_path, &admin, json!({"globalRoleName": "admin"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("globalrolebinding.globalRoleName: Invalid value: \"admin\": field is immutable"),
        "{v}"
    );

    // A group CRTB may get its empty groupName set once; its userName may not appear next to the group.
    let ds = sim.users().downstream_cluster.clone();
    let crtb = admin_create(
        &sim,
        &format!("{MG}/namespaces/{ds}/clusterroletemplatebindings"),
        json!({"metadata": {"generateName": "crtb-", "namespace": ds}, "clusterName": ds, "roleTemplateName": "cluster-member", "userName": alice}),
    )
    .await;
    let crtb_path = format!(
        "{MG}/namespaces/{ds}/clusterroletemplatebindings/{}",
        crtb["metadata"]["name"].as_str().unwrap()
    );
    let (st, v) = merge_patch(&sim, &crtb_path, &admin, json!({"userName": "u-other"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("clusterroletemplatebinding.userName: Invalid value: \"u-other\": field is immutable"),
        "{v}"
    );
    // A PUT that leaves userName out changes it to "".
    let mut put = crtb.clone();
    put.as_object_mut().unwrap().remove("userName");
    let (st, v) = call(&sim, Method::PUT, &crtb_path, Some(&admin), Some(put)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("clusterroletemplatebinding.userName"),
        "{v}"
    );

    // A PRTB's service account never changes, not even from empty.
    let seeded = sim
        .objects("projectroletemplatebindings")
        .into_iter()
        .find(|p| p["userName"].is_string())
        .expect("a seeded user PRTB");
    let ns = seeded["metadata"]["namespace"].as_str().unwrap();
    let prtb_path = format!(
        "{MG}/namespaces/{ns}/projectroletemplatebindings/{}",
        seeded["metadata"]["name"].as_str().unwrap()
    );
    let (st, v) = merge_patch(&sim, &prtb_path, &admin, json!({"serviceAccount": "default:builder"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("projectroletemplatebinding.serviceAccount: Forbidden: update is not allowed"),
        "{v}"
    );
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

// ---- N12: GlobalRole / RoleTemplate updates ------------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/webhook roletemplate/validator.go `Admit`: an update is escalation-checked with the
/// rules it inherits (`RulesFromTemplate`), bypass `escalate`; `validateUpdateFields`: a builtin RoleTemplate may
/// change only its creator defaults and `locked`, a builtin GlobalRole only `newUserDefault` (globalrole/validator.go);
/// `validateContextValue`: only cluster roles can be administrative.
#[tokio::test]
async fn role_updates_follow_the_webhooks_rules() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let carol = sim.user_id("carol").unwrap();
    role_for(
        &sim,
        &carol,
        "rt-author",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["roletemplates"], "verbs": ["get", "list", "create", "update", "patch"]},
               {"apiGroups": ["management.cattle.io"], "resources": ["clusters"], "resourceNames": ["local"], "verbs": ["get"]}]),
    )
    .await;
    let carol_t = login(&sim, "carol").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/roletemplates"),
        Some(&carol_t),
        Some(json!({"metadata": {"name": "carols-role"}, "displayName": "Carol's role", "context": "cluster", "rules": []})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/roletemplates/carols-role"),
        &carol_t,
        json!({"roleTemplateNames": ["cluster-owner"]}),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "inheriting cluster-owner escalates: {v}");

    // Builtin role templates: rules are fixed, `locked` may change.
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/roletemplates/cluster-member"),
        &admin,
        json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap().ends_with(
            "roletemplate: Forbidden: updates to builtIn RoleTemplates for fields other than CreatorDefault are forbidden"
        ),
        "{v}"
    );
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/roletemplates/cluster-member"),
        &admin,
        json!({"locked": true}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Builtin global roles: only newUserDefault.
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/globalroles/user"),
        &admin,
        json!({"displayName": "Renamed"}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap().ends_with(
            "globalrole: Forbidden: updates to builtIn GlobalRoles for fields other than 'newUserDefault' are forbidden"
        ),
        "{v}"
    );
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/globalroles/user"),
        &admin,
        json!({"newUserDefault": false}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Administrative only in cluster context.
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/roletemplates"),
        Some(&admin),
        Some(json!({"metadata": {"name": "admin-project-role"}, "displayName": "x", "context": "project", "administrative": true, "rules": []})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("roletemplate.administrative: Forbidden: only cluster roles can be administrative"),
        "{v}"
    );
}

// ---- N10: principal-only CRTB/PRTB ---------------------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/rancher pkg/controllers/management/auth/crtb_handler.go / prtb_handler.go
/// `reconcileSubject`: a binding with a user principal and no `userName` links or creates that user and records it.
#[tokio::test]
async fn a_principal_only_crtb_gets_its_user() {
    let sim = start(RancherVersion::V2_13).await;
    let ds = sim.users().downstream_cluster.clone();
    let principal = "activedirectory_user://CN=Never Logged In,OU=Users,DC=example,DC=com";
    let crtb = admin_create(
        &sim,
        &format!("{MG}/namespaces/{ds}/clusterroletemplatebindings"),
        json!({"metadata": {"generateName": "crtb-", "namespace": ds}, "clusterName": ds, "roleTemplateName": "cluster-member", "userPrincipalName": principal}),
    )
    .await;
    let user = crtb["userName"].as_str().expect("userName is set").to_string();
    assert!(user.starts_with("u-"), "{crtb}");
    let (st, u) = admin_get(&sim, &format!("{MG}/users/{user}")).await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert!(
        u["principalIds"].as_array().unwrap().iter().any(|p| p == principal),
        "{u}"
    );
}

// ---- N19: /v3 user actions -----------------------------------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/rancher pkg/auth/api/user/user_actions.go: `setpassword` and `changepassword` clear
/// `mustChangePassword` and refuse a password equal to the username (`validatePassword`); `refreshauthprovideraccess`
/// needs `create` on users (`userCanRefresh`).
#[tokio::test]
async fn password_actions_clear_must_change_password() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let alice = sim.user_id("alice").unwrap();
    let (st, v) = merge_patch(
        &sim,
        &format!("{MG}/users/{alice}"),
        &admin,
        json!({"mustChangePassword": true}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let action = format!("/v3/users/{alice}?action=setpassword");
    let (st, v) = call(
        &sim,
        Method::POST,
        &action,
        Some(&admin),
        Some(json!({"newPassword": "alice"})),
    )
    .await;
    assert_eq!(st.as_u16(), 422, "{v}");
    let (st, v) = call(
        &sim,
        Method::POST,
        &action,
        Some(&admin),
        Some(json!({"newPassword": "a-new-password-for-alice"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["mustChangePassword"], json!(false), "{v}");
    let (_, u) = admin_get(&sim, &format!("{MG}/users/{alice}")).await;
    assert_eq!(u["mustChangePassword"], json!(false), "{u}");

    // A caller with `update` but not `create` on users may not trigger a refresh.
    let carol = sim.user_id("carol").unwrap();
    role_for(
        &sim,
        &carol,
        "user-updater",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["users"], "verbs": ["get", "list", "update"]}]),
    )
    .await;
    let carol_t = login(&sim, "carol").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v3/users?action=refreshauthprovideraccess",
        Some(&carol_t),
        None,
    )
    .await;
    assert_eq!(st.as_u16(), 500, "{v}");
}

// ---- N11: builtin role templates ------------------------------------------------------------------------------------

/// Rancher 2.8-2.13 (every 2.x the simulator plays). rancher/rancher pkg/data/management/role_data.go `addRoles`:
/// `addRoleTemplate(display, name, context, external, hidden, administrative)` and `setRoleTemplateNames`:
/// project-owner inherits `admin`, project-member `edit`, read-only / projects-view / project-monitoring-readonly
/// `view`; the Kubernetes roles (`cluster-admin`, `admin`, `edit`, `view`) are external and hidden, `cluster-admin`,
/// `cluster-owner` and `clustercatalogs-manage` administrative. rancher/webhook roletemplate/validator.go
/// `validateDelete` then refuses deleting an inherited template (400).
#[tokio::test]
async fn builtin_role_templates_inherit_and_carry_rancher_flags() {
    for version in [RancherVersion::V2_8, RancherVersion::V2_13] {
        let sim = start(version).await;
        let rt = |name: &str| {
            sim.objects("roletemplates")
                .into_iter()
                .find(|o| o["metadata"]["name"] == json!(name))
                .unwrap_or_else(|| panic!("role template {name}"))
        };
        for (name, inherits) in [
            ("project-owner", "admin"),
            ("project-member", "edit"),
            ("read-only", "view"),
            ("projects-view", "view"),
            ("project-monitoring-readonly", "view"),
        ] {
            assert_eq!(
                rt(name)["roleTemplateNames"],
                json!([inherits]),
                "{name} on {version:?}"
            );
        }
        assert!(rt("cluster-member")
            .get("roleTemplateNames")
            .is_none_or(|v| v == &json!([])));
        // (external, hidden, administrative)
        let flags = |name: &str| {
            let o = rt(name);
            let f = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
            (f("external"), f("hidden"), f("administrative"))
        };
        for name in ["admin", "edit", "view"] {
            assert_eq!(flags(name), (true, true, false), "{name}");
        }
        assert_eq!(flags("cluster-admin"), (true, true, true));
        assert_eq!(rt("cluster-admin")["displayName"], json!("Kubernetes cluster-admin"));
        assert_eq!(flags("cluster-owner"), (false, false, true));
        assert_eq!(flags("clustercatalogs-manage"), (false, false, true));
        assert_eq!(flags("cluster-member"), (false, false, false));
        assert_eq!(flags("project-monitoring-readonly"), (false, true, false));
        assert_eq!(flags("monitoring-ui-view"), (true, false, false));
        assert_eq!(flags("project-owner"), (false, false, false));

        // An inherited template cannot be deleted; the refusal names every template that inherits it.
        let admin = sim.tokens().admin.clone();
        let (st, v) = call(
            &sim,
            Method::DELETE,
            &format!("{MG}/roletemplates/view?dryRun=All"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["message"].as_str().unwrap().ends_with(
                "roletemplate \"view\" cannot be deleted because it is inherited by roletemplate(s) \"project-monitoring-readonly, projects-view, read-only\""
            ),
            "{v}"
        );
    }
}

/// Rancher 2.8-2.13. What a project member holds includes what `edit` grants (role_data.go `setRoleTemplateNames`;
/// the webhook's escalation check resolves inherited rules with `RulesFromTemplate`): a project member who may manage
/// the project's members may grant `edit` (pods included) without holding `escalate`.
#[tokio::test]
async fn a_project_member_holds_what_edit_grants() {
    let sim = start(RancherVersion::V2_13).await;
    let project = sim.users().projects[2].clone();
    let ns = project.split(':').nth(1).unwrap().to_string();
    let prtbs = format!("{MG}/namespaces/{ns}/projectroletemplatebindings");
    let dave = sim.user_id("dave").unwrap();
    let carol = sim.user_id("carol").unwrap();
    for rt in ["project-member", "projectroletemplatebindings-manage"] {
        admin_create(
            &sim,
            &prtbs,
            json!({"metadata": {"generateName": "prtb-", "namespace": ns}, "projectName": project, "roleTemplateName": rt, "userName": dave}),
        )
        .await;
    }
    let dave_t = login(&sim, "dave").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &prtbs,
        Some(&dave_t),
        Some(
            json!({"metadata": {"generateName": "prtb-", "namespace": ns}, "projectName": project, "roleTemplateName": "edit", "userName": carol}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // Not more than that: `admin` (everything) is still an escalation.
    let (st, v) = call(
        &sim,
        Method::POST,
        &prtbs,
        Some(&dave_t),
        Some(
            json!({"metadata": {"generateName": "prtb-", "namespace": ns}, "projectName": project, "roleTemplateName": "admin", "userName": carol}),
        ),
    )
    .await;
    assert_eq!(st.as_u16(), 422, "{v}");
}

// ---- N12 (rest): cycles, externalRules, rule shapes, escalation text -----------------------------------------------

/// Rancher 2.8-2.13. rancher/webhook roletemplate/validator.go `Admit`, in its order: `checkCircularRef` (400
/// "Circular Reference: …"; an inherited template that does not exist is an internal error, 500), `externalRules`
/// only with `external: true` (400), the rule shapes of every rule including inherited ones (`common.ValidateRules`,
/// Kubernetes `ValidatePolicyRule`: 400), the `escalate` bypass, then externalRules need `escalate` (403) and the
/// escalation check (403, Kubernetes' text with no "errors due to escalation" prefix). globalrole/validator.go checks
/// the rule shapes of a GlobalRole too (400).
#[tokio::test]
async fn role_template_checks_follow_the_webhooks_order() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let rts = format!("{MG}/roletemplates");
    let rt = |name: &str, extra: Value| {
        let mut b = json!({"metadata": {"name": name}, "displayName": name, "context": "cluster", "rules": []});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    admin_create(&sim, &rts, rt("rt-a", json!({}))).await;
    admin_create(&sim, &rts, rt("rt-b", json!({"roleTemplateNames": ["rt-a"]}))).await;
    let (st, v) = merge_patch(
        &sim,
        &format!("{rts}/rt-a"),
        &admin,
        json!({"roleTemplateNames": ["rt-b"]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("Circular Reference: RoleTemplate rt-b already inherits RoleTemplate rt-a"),
        "{v}"
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        &rts,
        Some(&admin),
        Some(rt("rt-self", json!({"roleTemplateNames": ["rt-self"]}))),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("Circular Reference: RoleTemplate rt-self already inherits RoleTemplate rt-self"),
        "{v}"
    );

    // An inherited template that does not exist: the webhook fails (500), it does not refuse.
    let (st, v) = call(
        &sim,
        Method::POST,
        &rts,
        Some(&admin),
        Some(rt("rt-ghost", json!({"roleTemplateNames": ["no-such-role"]}))),
    )
    .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{v}");

    // externalRules need external: true.
    let ext_rules = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    let (st, v) = call(
        &sim,
        Method::POST,
        &rts,
        Some(&admin),
        Some(rt("rt-ext", json!({"externalRules": ext_rules}))),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("ExternalRules can't be set in RoleTemplates with external=false"),
        "{v}"
    );

    // Rule shapes.
    let (st, v) = call(
        &sim,
        Method::POST,
        &rts,
        Some(&admin),
        Some(rt(
            "rt-noverbs",
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("roletemplate.rules[0].verbs: Required value: verbs must contain at least one value"),
        "{v}"
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalroles"),
        Some(&admin),
        Some(json!({"metadata": {"name": "gr-noverbs"}, "rules": [{"apiGroups": ["management.cattle.io"], "resources": ["users"]}]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("globalrole.rules[0].verbs: Required value: verbs must contain at least one value"),
        "{v}"
    );

    // Without `escalate`: externalRules are refused outright, and an escalation is Kubernetes' text.
    let carol = sim.user_id("carol").unwrap();
    role_for(
        &sim,
        &carol,
        "rt-author",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["roletemplates"], "verbs": ["get", "list", "create", "update", "patch"]},
               {"apiGroups": ["management.cattle.io"], "resources": ["clusters"], "resourceNames": ["local"], "verbs": ["get"]}]),
    )
    .await;
    let carol_t = login(&sim, "carol").await;
    let (st, v) = call(
        &sim,
        Method::POST,
        &rts,
        Some(&carol_t),
        Some(rt("carol-ext", json!({"external": true, "externalRules": ext_rules}))),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["message"].as_str().unwrap().ends_with(
            "External RoleTemplates with ExternalRules can only be created for users with 'escalate' permissions"
        ),
        "{v}"
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        &rts,
        Some(&carol_t),
        Some(rt("carol-owner", json!({"roleTemplateNames": ["cluster-owner"]}))),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(
        m.contains("is attempting to grant RBAC permissions not currently held"),
        "{v}"
    );
    assert!(!m.contains("errors due to escalation"), "{v}");
    // The admin holds `escalate`: an external template with externalRules is accepted.
    admin_create(
        &sim,
        &rts,
        rt("rt-ext-ok", json!({"external": true, "externalRules": ext_rules})),
    )
    .await;
}

// ---- N9: user retention --------------------------------------------------------------------------------------------

/// The labels of user `id` (read from the simulator's store: the simulator's 2.8 serves no RK users).
fn user_labels(sim: &SimHandle, id: &str) -> Value {
    sim.objects("users")
        .into_iter()
        .find(|u| u["metadata"]["name"] == json!(id))
        .map(|u| u["metadata"]["labels"].clone())
        .unwrap_or_else(|| panic!("user {id}"))
}

fn epoch_label(labels: &Value, key: &str) -> Option<i64> {
    labels
        .get(key)
        .and_then(Value::as_str)
        .map(|s| s.parse().expect("epoch seconds"))
}

/// Admin sets a setting through norman (served on every version).
async fn set_setting(sim: &SimHandle, name: &str, value: &str) {
    let admin = sim.tokens().admin.clone();
    let path = format!("/v3/settings/{name}");
    let (st, v) = call(sim, Method::PUT, &path, Some(&admin), Some(json!({"value": value}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Rancher 2.8-2.13. rancher/rancher pkg/settings/setting.go: `disable-inactive-user-after`,
/// `delete-inactive-user-after`, `user-last-login-default`, `user-retention-cron` (empty by default) and
/// `user-retention-dry-run` (`false`); `auth-user-session-idle-ttl-minutes` (960) only from 2.13.
/// pkg/auth/userretention/label.go `setLabels`: a user's `cattle.io/last-login` is the UserAttribute's `lastLogin`
/// in epoch seconds; `cattle.io/disable-after` / `cattle.io/delete-after` are last login plus the setting (or the
/// UserAttribute's own `disableAfter` / `deleteAfter`), never on the default admin; settings.go `readSettings`
/// parses Go durations. The labeler runs when a UserAttribute changes and, for everyone, when a setting changes.
#[tokio::test]
async fn retention_settings_and_user_labels() {
    for version in [RancherVersion::V2_8, RancherVersion::V2_13] {
        let sim = start(version).await;
        let admin = sim.tokens().admin.clone();
        for (name, value) in [
            ("disable-inactive-user-after", ""),
            ("delete-inactive-user-after", ""),
            ("user-last-login-default", ""),
            ("user-retention-cron", ""),
            ("user-retention-dry-run", "false"),
        ] {
            let (st, v) = admin_get(&sim, &format!("/v3/settings/{name}")).await;
            assert_eq!(st, StatusCode::OK, "{name} on {version:?}: {v}");
            assert_eq!(v["default"], json!(value), "{v}");
        }
        let (st, v) = admin_get(&sim, "/v3/settings/auth-user-session-idle-ttl-minutes").await;
        if version == RancherVersion::V2_13 {
            assert_eq!((st, v["default"].clone()), (StatusCode::OK, json!("960")), "{v}");
        } else {
            assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        }

        let alice = sim.user_id("alice").unwrap();
        let admin_id = sim.users().admin.id.clone();
        assert!(user_labels(&sim, &alice).get("cattle.io/last-login").is_none());
        let before = epoch_now();
        login(&sim, "alice").await;
        login(&sim, "admin").await;
        let labels = user_labels(&sim, &alice);
        let last = epoch_label(&labels, "cattle.io/last-login").expect("last-login label");
        assert!((before - 5..=epoch_now() + 5).contains(&last), "{labels}");
        assert!(
            labels.get("cattle.io/disable-after").is_none(),
            "no retention configured: {labels}"
        );

        // Turning retention on labels every user who has logged in; never the default admin.
        set_setting(&sim, "disable-inactive-user-after", "720h").await;
        set_setting(&sim, "delete-inactive-user-after", "8760h").await;
        let labels = user_labels(&sim, &alice);
        assert_eq!(
            epoch_label(&labels, "cattle.io/disable-after"),
            Some(last + 720 * 3600),
            "{labels}"
        );
        assert_eq!(
            epoch_label(&labels, "cattle.io/delete-after"),
            Some(last + 8760 * 3600),
            "{labels}"
        );
        let admin_labels = user_labels(&sim, &admin_id);
        assert!(
            epoch_label(&admin_labels, "cattle.io/last-login").is_some(),
            "{admin_labels}"
        );
        assert!(admin_labels.get("cattle.io/disable-after").is_none(), "{admin_labels}");

        // A per-user override in the UserAttribute wins (edited over the RK API: 2.11+ in the simulator).
        if version == RancherVersion::V2_13 {
            let path = format!("{MG}/userattributes/{alice}");
            let (st, v) = merge_patch(&sim, &path, &admin, json!({"disableAfter": "1h30m"})).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            let labels = user_labels(&sim, &alice);
            assert_eq!(
                epoch_label(&labels, "cattle.io/disable-after"),
                Some(last + 5400),
                "{labels}"
            );
        }

        // Turning it off again removes the label.
        set_setting(&sim, "delete-inactive-user-after", "").await;
        assert!(user_labels(&sim, &alice).get("cattle.io/delete-after").is_none());
    }
}

// ---- N18: deactivating a user ---------------------------------------------------------------------------------------

/// Rancher 2.12-2.13 (the versions with ext tokens). rancher/rancher pkg/controllers/management/auth/user.go
/// `userLifecycle.Updated`: once a user is disabled, each of their ext tokens that is derived (an API key) gets
/// `spec.enabled: false` and each ext login token (kind `session`) is deleted, so enabling the user again revives
/// no session and no key. v3 tokens are left to the provider refresher (pkg/auth/providerrefresh/refresher.go).
#[tokio::test]
async fn deactivating_a_user_disables_their_ext_keys_and_ends_their_ext_sessions() {
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .seed(7)
            .tokens(600),
    )
    .await
    .expect("simulator starts");
    let admin = sim.tokens().admin.clone();
    let ext = sim.objects("exttokens");
    let owner_of = |t: &Value| t["spec"]["userID"].as_str().unwrap_or_default().to_string();
    let is_session = |t: &Value| t["spec"]["kind"] == json!("session");
    let admin_id = sim.users().admin.id.clone();
    let owner = ext
        .iter()
        .filter(|t| is_session(t))
        .map(owner_of)
        .find(|o| *o != admin_id && ext.iter().any(|t| !is_session(t) && owner_of(t) == *o))
        .expect("a user with an ext session and an ext API key");
    let theirs = |sim: &SimHandle| -> Vec<Value> {
        sim.objects("exttokens")
            .into_iter()
            .filter(|t| owner_of(t) == owner)
            .collect()
    };
    let others_before: Vec<Value> = sim
        .objects("exttokens")
        .into_iter()
        .filter(|t| owner_of(t) != owner)
        .collect();

    let path = format!("{MG}/users/{owner}");
    for enabled in [false, true] {
        let (st, v) = merge_patch(&sim, &path, &admin, json!({"enabled": enabled})).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let after = theirs(&sim);
    assert!(
        after.iter().all(|t| !is_session(t)),
        "no ext session survives: {after:?}"
    );
    assert!(!after.is_empty(), "the API keys stay");
    assert!(
        after.iter().all(|t| t["spec"]["enabled"] == json!(false)),
        "every ext API key is disabled: {after:?}"
    );
    let others_after: Vec<Value> = sim
        .objects("exttokens")
        .into_iter()
        .filter(|t| owner_of(t) != owner)
        .collect();
    assert_eq!(
        others_before.len(),
        others_after.len(),
        "other users' tokens are untouched"
    );
    assert!(others_after
        .iter()
        .all(|t| t["spec"]["enabled"] != json!(false) || others_before.contains(t)));
}

// ---- N10 (rest): the user Rancher creates for a principal ------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/rancher pkg/auth/providers/common/usermanager.go `EnsureUser`: a principal without a
/// user gets one named `u-` + the first 10 characters of the lower-cased, unpadded base32 of the principal's sha256,
/// with the `authz.management.cattle.io/creator-role-bindings` annotation listing the new-user-default global roles;
/// `createUsersBindings` then binds each of them (`user` by default) and marks `InitialRolesPopulated`.
#[tokio::test]
async fn a_user_created_for_a_principal_is_named_after_it_and_gets_the_default_roles() {
    let sim = start(RancherVersion::V2_13).await;
    let ds = sim.users().downstream_cluster.clone();
    let project = sim.users().projects[2].clone();
    let ns = project.split(':').nth(1).unwrap().to_string();
    for (path, body, expected) in [
        (
            format!("{MG}/namespaces/{ds}/clusterroletemplatebindings"),
            json!({"metadata": {"generateName": "crtb-", "namespace": ds}, "clusterName": ds, "roleTemplateName": "cluster-member",
                   "userPrincipalName": "activedirectory_user://CN=Never Logged In,OU=Users,DC=example,DC=com"}),
            "u-f5xwsfmq7d",
        ),
        (
            format!("{MG}/namespaces/{ns}/projectroletemplatebindings"),
            json!({"metadata": {"generateName": "prtb-", "namespace": ns}, "projectName": project, "roleTemplateName": "read-only",
                   "userPrincipalName": "activedirectory_user://CN=Pat Prtb,OU=Users,DC=example,DC=com"}),
            "u-zxt5x6khhb",
        ),
    ] {
        let b = admin_create(&sim, &path, body).await;
        assert_eq!(b["userName"], json!(expected), "{b}");
        let (st, u) = admin_get(&sim, &format!("{MG}/users/{expected}")).await;
        assert_eq!(st, StatusCode::OK, "{u}");
        let ann = u["metadata"]["annotations"]["authz.management.cattle.io/creator-role-bindings"]
            .as_str()
            .unwrap_or_default();
        let ann: Value = serde_json::from_str(ann).unwrap_or_else(|_| panic!("annotation: {u}"));
        assert_eq!(ann["required"], json!(["user"]), "{u}");
        assert_eq!(ann["created"], json!(["user"]), "{u}");
        let grbs: Vec<Value> = sim
            .objects("globalrolebindings")
            .into_iter()
            .filter(|g| g["userName"] == json!(expected))
            .collect();
        assert_eq!(grbs.len(), 1, "{grbs:?}");
        assert_eq!(grbs[0]["globalRoleName"], json!("user"));
    }
}

// ---- N20: kubeconfig tokens --------------------------------------------------------------------------------------------

/// Rancher 2.12-2.13 (ext kubeconfigs). rancher/rancher pkg/ext/stores/kubeconfig/store.go `Create`: one shared
/// token (`kubeconfig-<user>` randomized, kind `kubeconfig`, label `authn.management.cattle.io/kubeconfig-id`) serves
/// the default `rancher` entry (the Rancher URL) and every cluster without an authorized cluster endpoint; only ACE
/// clusters get a token of their own. No clusters means only the `rancher` entry; an unknown cluster is a 400
/// `cluster <id> not found`, a repeated one `spec.clusters must be unique`.
#[tokio::test]
async fn a_kubeconfig_shares_one_token_across_its_clusters() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let admin_id = sim.users().admin.id.clone();
    let ds = sim.users().downstream_cluster.clone();
    let kcs = "/apis/ext.cattle.io/v1/kubeconfigs";
    let (st, v) = call(
        &sim,
        Method::POST,
        kcs,
        Some(&admin),
        Some(json!({"spec": {"clusters": ["local", ds]}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let kc_name = v["metadata"]["name"].as_str().unwrap().to_string();
    let tokens: Vec<String> = v["status"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens.len(), 1, "one shared token: {v}");
    assert!(tokens[0].starts_with(&format!("kubeconfig-{admin_id}")), "{tokens:?}");
    let tok = sim
        .objects("tokens")
        .into_iter()
        .find(|t| t["metadata"]["name"] == json!(tokens[0]))
        .expect("the shared token");
    assert_eq!(
        tok["metadata"]["labels"]["authn.management.cattle.io/kubeconfig-id"],
        json!(kc_name),
        "{tok}"
    );
    assert_eq!(
        tok["metadata"]["labels"]["authn.management.cattle.io/kind"],
        json!("kubeconfig"),
        "{tok}"
    );
    let yaml = v["status"]["value"].as_str().unwrap();
    for context in ["- name: \"rancher\"", "- name: \"local\"", "- name: \"downstream\""] {
        assert!(yaml.contains(context), "{context} in {yaml}");
    }
    assert_eq!(
        yaml.matches("token: ").count(),
        1,
        "one user entry carries the token: {yaml}"
    );
    assert!(yaml.contains("current-context: \"local\""), "{yaml}");

    // No clusters: only the Rancher entry.
    let (st, v) = call(&sim, Method::POST, kcs, Some(&admin), Some(json!({"spec": {}}))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["spec"]["clusters"], Value::Null, "{v}");
    let yaml = v["status"]["value"].as_str().unwrap();
    assert!(
        yaml.contains("current-context: \"rancher\"") && !yaml.contains("/k8s/clusters/"),
        "{yaml}"
    );

    // An ACE cluster (authorized cluster endpoint) gets a token of its own, scoped to it.
    assert!(sim.insert_object(
        "clusters",
        json!({"metadata": {"name": "c-ace"}, "spec": {"displayName": "ace", "localClusterAuthEndpoint": {"enabled": true}},
               "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    ));
    let body = json!({"spec": {"clusters": ["local", "c-ace"]}});
    let (st, v) = call(&sim, Method::POST, kcs, Some(&admin), Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let tokens = v["status"]["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2, "shared + the ACE cluster's: {v}");
    let ace_token = sim
        .objects("tokens")
        .into_iter()
        .find(|t| t["metadata"]["name"] == tokens[1])
        .expect("the ACE token");
    assert_eq!(ace_token["clusterName"], json!("c-ace"), "{ace_token}");
    let yaml = v["status"]["value"].as_str().unwrap();
    assert_eq!(yaml.matches("token: ").count(), 2, "{yaml}");
    assert!(
        yaml.contains("- name: \"ace\"\n  context:\n    user: \"ace\""),
        "{yaml}"
    );
    assert!(
        yaml.contains("- name: \"local\"\n  context:\n    user: \"rancher\""),
        "{yaml}"
    );

    for (clusters, msg) in [
        (json!(["c-nope"]), "cluster c-nope not found"),
        (json!(["local", "local"]), "spec.clusters must be unique"),
    ] {
        let (st, v) = call(
            &sim,
            Method::POST,
            kcs,
            Some(&admin),
            Some(json!({"spec": {"clusters": clusters}})),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["message"], json!(msg), "{v}");
    }
}

// ---- N19 (rest): password-min-length, the user actions ------------------------------------------------------------

/// Rancher 2.8-2.13. rancher/rancher pkg/auth/api/user/user_actions.go `validatePassword` takes the minimum length
/// from the `password-min-length` setting (default 12; "Password must be at least N characters"); `UserFormatter`
/// and `CollectionFormatter` offer `refreshauthprovideraccess` only to callers who may create users
/// (`userCanRefresh`), `setpassword` / `changepassword` regardless.
#[tokio::test]
async fn password_length_follows_the_setting_and_refresh_is_offered_to_user_creators() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let alice = sim.user_id("alice").unwrap();
    let (st, v) = call(
        &sim,
        Method::PUT,
        "/v3/settings/password-min-length",
        Some(&admin),
        Some(json!({"value": "16"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let action = format!("/v3/users/{alice}?action=setpassword");
    let (st, v) = call(
        &sim,
        Method::POST,
        &action,
        Some(&admin),
        Some(json!({"newPassword": "fourteen-chars"})),
    )
    .await;
    assert_eq!(st.as_u16(), 422, "{v}");
    assert_eq!(v["message"], json!("Password must be at least 16 characters"), "{v}");
    let (st, v) = call(
        &sim,
        Method::POST,
        &action,
        Some(&admin),
        Some(json!({"newPassword": "sixteen-chars-ok"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Refresh is offered to those who may create users only.
    let (_, u) = admin_get(&sim, &format!("/v3/users/{alice}")).await;
    assert!(u["actions"].get("refreshauthprovideraccess").is_some(), "{u}");
    let carol = sim.user_id("carol").unwrap();
    role_for(
        &sim,
        &carol,
        "user-updater",
        json!([{"apiGroups": ["management.cattle.io"], "resources": ["users"], "verbs": ["get", "list", "update"]}]),
    )
    .await;
    let carol_t = login(&sim, "carol").await;
    let (st, u) = call(&sim, Method::GET, &format!("/v3/users/{alice}"), Some(&carol_t), None).await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert!(u["actions"].get("setpassword").is_some(), "{u}");
    assert!(u["actions"].get("refreshauthprovideraccess").is_none(), "{u}");
    let (st, list) = call(&sim, Method::GET, "/v3/users", Some(&carol_t), None).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert!(list["actions"].get("changepassword").is_some(), "{}", list["actions"]);
    assert!(
        list["actions"].get("refreshauthprovideraccess").is_none(),
        "{}",
        list["actions"]
    );
    let (_, list) = admin_get(&sim, "/v3/users").await;
    assert!(
        list["actions"].get("refreshauthprovideraccess").is_some(),
        "{}",
        list["actions"]
    );
}

// ---- N21: paging is a snapshot -------------------------------------------------------------------------------------

/// Kubernetes (the etcd3 store behind every RK kind, all RK versions the simulator serves): the pages after the first
/// are served at the first page's resourceVersion, so objects created, changed or deleted in between do not show
/// (or still show, as they were) until a new list starts; a continue token older than the kept history is 410
/// `Expired` (compaction). k8s.io/apiserver pkg/storage/etcd3/store.go `GetList` reads `continue` pages `WithRev`.
#[tokio::test]
async fn later_pages_are_served_at_the_first_pages_resource_version() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let grs = format!("{MG}/globalroles");
    for name in ["x-changed", "x-doomed"] {
        admin_create(
            &sim,
            &grs,
            json!({"metadata": {"name": name}, "displayName": "before", "rules": []}),
        )
        .await;
    }
    let (st, first) = admin_get(&sim, &format!("{grs}?limit=3")).await;
    assert_eq!(st, StatusCode::OK, "{first}");
    let rv = first["metadata"]["resourceVersion"].clone();
    let mut cont = first["metadata"]["continue"].as_str().expect("more pages").to_string();

    // Between pages: one created after the cursor, one deleted, one changed.
    admin_create(&sim, &grs, json!({"metadata": {"name": "zz-late"}, "rules": []})).await;
    let (st, v) = call(&sim, Method::DELETE, &format!("{grs}/x-doomed"), Some(&admin), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = merge_patch(
        &sim,
        &format!("{grs}/x-changed"),
        &admin,
        json!({"displayName": "after"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let mut rest = Vec::new();
    loop {
        let (st, page) = admin_get(&sim, &format!("{grs}?limit=3&continue={cont}")).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert_eq!(
            page["metadata"]["resourceVersion"], rv,
            "every page reports the first page's version"
        );
        rest.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = c.to_string(),
            _ => break,
        }
    }
    let named = |n: &str| rest.iter().find(|o| o["metadata"]["name"] == json!(n)).cloned();
    assert!(
        named("zz-late").is_none(),
        "created after the first page: not in this list"
    );
    let doomed = named("x-doomed").expect("deleted after the first page: still in this list");
    assert!(
        doomed["metadata"].get("deletionTimestamp").is_none(),
        "as it was: {doomed}"
    );
    assert_eq!(named("x-changed").expect("x-changed")["displayName"], json!("before"));

    // A new list sees the present (a deleted role may linger, marked, while its finalizer runs).
    let (_, fresh) = admin_get(&sim, &grs).await;
    let items = fresh["items"].as_array().unwrap();
    let now = |n: &str| items.iter().find(|o| o["metadata"]["name"] == json!(n));
    assert!(now("zz-late").is_some(), "{fresh}");
    assert!(
        now("x-doomed").is_none_or(|o| o["metadata"].get("deletionTimestamp").is_some()),
        "{fresh}"
    );
    assert_eq!(now("x-changed").expect("x-changed")["displayName"], json!("after"));

    // A continue token older than the history the store keeps is expired, as after an etcd compaction.
    let (_, first) = admin_get(&sim, &format!("{grs}?limit=3")).await;
    let cont = first["metadata"]["continue"].as_str().expect("more pages").to_string();
    for i in 0..20_001 {
        assert!(sim.insert_object(
            "settings",
            json!({"metadata": {"name": format!("churn-{i}")}, "value": ""})
        ));
    }
    let (st, v) = admin_get(&sim, &format!("{grs}?limit=3&continue={cont}")).await;
    assert_eq!(st.as_u16(), 410, "{v}");
    assert_eq!(v["reason"], json!("Expired"), "{v}");
}

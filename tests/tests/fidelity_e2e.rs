//! The client, the connection test and the workflows against a simulator that behaves as Rancher does (issue 17,
//! docs/fidelity.md): escalation refusals, all-or-nothing RK lists, 2.8's RK kinds, deletes held by finalizers.

use rancher_access_tests::{client, runner, session, sim};
use rancher_api::requests::{RkGlobalrolebindingsCreate, RkGlobalrolebindingsDelete, RkGlobalrolebindingsList};
use rancher_approval::Policy;
use rancher_auth::{Access, BearerToken, CaSource, Connection, InstanceDomain, Warning};
use rancher_sim::{RancherVersion, SimHandle, DEFAULT_PASSWORD};
use rancher_workflows::Submitted;
use serde_json::{json, Value};

const MG: &str = "/apis/management.cattle.io/v3";

/// A raw HTTPS call to the simulator (reqwest trusting only its CA).
async fn raw(
    sim: &SimHandle,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let mut rb = http.request(method, format!("{}{path}", sim.base_url()));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("answered");
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// `username` logs in with the seeded password; returns the session token.
async fn login(sim: &SimHandle, username: &str) -> String {
    let (st, v) = raw(
        sim,
        reqwest::Method::POST,
        "/v3-public/localProviders/local?action=login",
        None,
        Some(json!({"username": username, "password": DEFAULT_PASSWORD, "responseType": "json"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// Admin creates the global role `name` (when rules are given) and binds `user_id` to it.
async fn grant(sim: &SimHandle, user_id: &str, name: &str, rules: Option<Value>) {
    let admin = sim.tokens().admin.clone();
    if let Some(rules) = rules {
        let (st, v) = raw(
            sim,
            reqwest::Method::POST,
            &format!("{MG}/globalroles"),
            Some(&admin),
            Some(json!({"metadata": {"name": name}, "rules": rules})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = raw(
        sim,
        reqwest::Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&admin),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": name, "userName": user_id})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
}

async fn verify(sim: &SimHandle, token: &str) -> rancher_auth::Verification {
    Connection::new(
        InstanceDomain::parse(&sim.domain()).expect("domain"),
        BearerToken::parse(token).expect("token"),
    )
    .with_ca(Some(CaSource::Pem(sim.ca_pem())))
    .verify()
    .await
    .expect("the connection works")
}

/// rancher/webhook globalrolebinding/validator.go: creating a binding is accepted only for roles whose rules the
/// caller holds, unless they have `bind` on globalroles; `create globalrolebindings` alone is not enough.
#[tokio::test]
async fn may_manage_bindings_means_what_rancher_accepts() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let bob = sim.user_id("bob").unwrap();
    grant(&sim, &bob, "users-manage", None).await;
    let bob_t = login(&sim, "bob").await;
    let v = verify(&sim, &bob_t).await;
    assert_eq!(
        v.permissions.create_global_role_bindings,
        Access::Denied,
        "{:?}",
        v.permissions
    );
    assert!(v.warnings.contains(&Warning::CannotManageBindings), "{:?}", v.warnings);
    // Deletes never reach the GRB webhook (its `Operations()` are Create and Update): `delete` is enough.
    assert_eq!(
        v.permissions.delete_global_role_bindings,
        Access::Allowed,
        "{:?}",
        v.permissions
    );
    let text = Warning::CannotManageBindings.to_string();
    assert!(text.contains("bind"), "{text}");

    grant(
        &sim,
        &bob,
        "binder",
        Some(json!([{"apiGroups": ["management.cattle.io"], "resources": ["globalroles"], "verbs": ["bind"]}])),
    )
    .await;
    let v = verify(&sim, &bob_t).await;
    assert_eq!(
        v.permissions.create_global_role_bindings,
        Access::Allowed,
        "{:?}",
        v.permissions
    );
    let admin = verify(&sim, &sim.tokens().admin).await;
    assert_eq!(admin.permissions.create_global_role_bindings, Access::Allowed);
}

/// rancher-docs openapi/swagger-v2.8.json: 2.8 serves globalrolebindings on the RK-API, and the typed client no
/// longer refuses it there.
#[tokio::test]
async fn the_typed_client_uses_rk_kinds_on_2_8() {
    let sim = sim(RancherVersion::V2_8, 0).await;
    let c = client(&sim, &sim.tokens().admin);
    let page = c
        .global_role_bindings()
        .list_page(RkGlobalrolebindingsList::new())
        .await
        .expect("2.8 serves the RK kind");
    assert!(page.items.is_some_and(|i| !i.is_empty()));
}

/// kube-apiserver + Rancher's lifecycle finalizers: DELETE answers with the object and its `deletionTimestamp`.
#[tokio::test]
async fn a_typed_delete_reads_the_object_rancher_returns() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let c = client(&sim, &sim.tokens().admin);
    let body = rancher_api::types::GlobalRoleBinding {
        global_role_name: Some("user-base".into()),
        user_name: Some(sim.users().user.id.clone()),
        metadata: Some(rancher_api::types::ObjectMeta {
            generate_name: Some("grb-".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = c
        .global_role_bindings()
        .create(RkGlobalrolebindingsCreate::new(body))
        .await
        .expect("created");
    let name = created.metadata.and_then(|m| m.name).expect("name");
    let gone = c
        .global_role_bindings()
        .delete(RkGlobalrolebindingsDelete::new(name))
        .await
        .expect("deleted");
    assert_eq!(gone.kind.as_deref(), Some("GlobalRoleBinding"));
    assert!(gone.metadata.and_then(|m| m.deletion_timestamp).is_some());
}

/// rancher/webhook globalrolebinding/validator.go: the refusal is 403 `errors due to escalation`; the workflow says
/// so in plain words.
#[tokio::test]
async fn create_binding_explains_an_escalation_refusal() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let bob = sim.user_id("bob").unwrap();
    grant(&sim, &bob, "users-manage", None).await;
    let bob_s = session(&sim, &login(&sim, "bob").await).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "create-global-role-binding", Some(Policy::none()))
        .await
        .expect("installed");
    let err = r
        .submit(
            &bob_s,
            "create-global-role-binding",
            json!({"user": "alice", "role": "admin"}),
            None,
            false,
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("escalation"), "{text}");
    assert!(
        text.contains("permissions it does not hold") && text.contains("`bind`"),
        "{text}"
    );
    assert!(!sim.has_binding(&sim.users().user.id, "admin"));
}

/// rancher/rancher pkg/api/steve/proxy/proxy.go `authLocalCluster`: role templates answer 403 (empty) to callers
/// without local-cluster access, even with `roles-manage`; the workflow falls back to /v3.
#[tokio::test]
async fn list_role_templates_falls_back_when_the_rk_list_is_refused() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let carol = sim.user_id("carol").unwrap();
    grant(&sim, &carol, "roles-manage", None).await;
    let carol_s = session(&sim, &login(&sim, "carol").await).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "list-role-templates", None).await.expect("installed");
    let Submitted::Succeeded { result } = r
        .submit(&carol_s, "list-role-templates", json!({}), None, false)
        .await
        .expect("runs")
    else {
        panic!("reads run at once")
    };
    assert!(
        result.result.as_array().is_some_and(|a| a.len() > 5),
        "{}",
        result.summary
    );
}

/// A standard user's RK list is refused (Kubernetes RBAC, all or nothing); the workflow says what it needs.
#[tokio::test]
async fn list_global_roles_explains_a_refused_list() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let user = session(&sim, &sim.tokens().user).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "list-global-roles", None).await.expect("installed");
    let err = r
        .submit(&user, "list-global-roles", json!({}), None, false)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("403") && text.contains("may not list"), "{text}");
}

/// Deletes are held by finalizers for a moment: the workflow reports done only once the binding is gone.
#[tokio::test]
async fn delete_binding_waits_until_the_binding_is_gone() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "create-global-role-binding", Some(Policy::none()))
        .await
        .expect("installed");
    r.install(&admin, "delete-global-role-binding", Some(Policy::none()))
        .await
        .expect("installed");
    let bob = sim.user_id("bob").unwrap();
    let Submitted::Succeeded { .. } = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob, "role": "user-base"}),
            None,
            false,
        )
        .await
        .expect("created")
    else {
        panic!("no approval needed")
    };
    let Submitted::Succeeded { result } = r
        .submit(
            &admin,
            "delete-global-role-binding",
            json!({"user": bob, "role": "user-base"}),
            None,
            false,
        )
        .await
        .expect("deleted")
    else {
        panic!("no approval needed")
    };
    assert!(result.summary.starts_with("deleted"), "{}", result.summary);
    assert!(
        !sim.has_binding(&bob, "user-base"),
        "gone when the workflow says deleted"
    );
}

/// `rancherctl check` / `connect` on Rancher 1.x: the connection test speaks /v1 (settings, identities, accounts)
/// with the 1.x token instead of failing on the missing /v3.
#[tokio::test]
async fn the_connection_test_works_on_rancher_1_6() {
    let sim = sim(RancherVersion::V1_6, 0).await;
    let v = verify(&sim, &sim.tokens().admin).await;
    assert_eq!(v.rancher_version.as_deref(), Some("v1.6.30"));
    assert_eq!(v.identity.username.as_deref(), Some("admin"));
    assert_eq!(v.permissions.list_users, Access::Allowed);
    assert!(v.users_listed >= 4, "{v:?}");
    // A standard 1.x user sees only its own account: the same diagnosis as on 2.x.
    let d = Connection::new(
        InstanceDomain::parse(&sim.domain()).expect("domain"),
        BearerToken::parse(&sim.tokens().user).expect("token"),
    )
    .with_ca(Some(CaSource::Pem(sim.ca_pem())))
    .verify()
    .await
    .expect_err("a standard user may not list users");
    assert_eq!(d.cause, rancher_auth::Cause::CannotListUsers, "{d}");
    assert!(d.to_string().contains("alice"), "{d}");
}

/// `rancherctl check` against Rancher 1.6 exits 0 and names the user.
#[tokio::test(flavor = "multi_thread")]
async fn rancherctl_check_works_on_rancher_1_6() {
    use rancher_access_tests::cli::{command, Run};
    let sim = sim(RancherVersion::V1_6, 0).await;
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem()).expect("CA written");
    let env = vec![
        ("RANCHER_DOMAIN", sim.domain()),
        ("RANCHER_TOKEN", sim.tokens().admin.clone()),
        ("RANCHER_CA_CERT", ca.display().to_string()),
        ("RANCHERCTL_CONFIG_DIR", dir.path().join("config").display().to_string()),
        ("RANCHERCTL_STATE_DIR", dir.path().join("state").display().to_string()),
    ];
    let run = tokio::task::spawn_blocking(move || {
        Run::from_output(command(&["check"], &env).output().expect("rancherctl runs"))
    })
    .await
    .expect("joined");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("admin"), "{}", run.stdout);
}

/// rancher/rancher pkg/auth/tokens/manager.go `createDerivedToken`: an API key inherits its session's auth provider,
/// and disabling the provider deletes its tokens (pkg/controllers/management/auth/auth_config.go `sync` ->
/// pkg/auth/cleanup/service.go `deleteTokens`, 2.8-2.13): the disable workflow's plan lists them and the disable
/// needs the plan's acknowledgement.
#[tokio::test]
async fn api_keys_die_with_the_provider_of_their_session() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    for wf in ["access-control-enable", "access-control-disable"] {
        r.install(&admin, wf, Some(Policy::none())).await.expect("installed");
    }
    let dir = tempfile::tempdir().expect("dir");
    let private = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("written");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("0600");
        p.display().to_string()
    };
    let cfg = private("ad.yaml", "servers: [ad.example.com]\nserviceAccountUsername: svc\nserviceAccountPassword: svc-S3cret\nuserSearchBase: dc=example,dc=com\n");
    let pw = private("pw", "jdoe-password");
    let inputs =
        json!({"provider": "ad", "config": cfg, "mode": "unrestricted", "test-user": "jdoe", "test-password-file": pw});
    let Submitted::Succeeded { .. } = r
        .submit(&admin, "access-control-enable", inputs, None, false)
        .await
        .expect("enabled")
    else {
        panic!("no approval needed")
    };
    let (st, v) = raw(
        &sim,
        reqwest::Method::POST,
        "/v3-public/activeDirectoryProviders/activedirectory?action=login",
        None,
        Some(json!({"username": "jdoe", "password": "jdoe-password", "responseType": "json"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let ad_session = v["token"].as_str().expect("token").to_string();
    let (st, v) = raw(
        &sim,
        reqwest::Method::POST,
        "/v3/tokens",
        Some(&ad_session),
        Some(json!({"type": "token", "description": "from an AD session"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let key = v["token"].as_str().expect("token").to_string();
    assert_eq!(v["authProvider"], "activedirectory", "{v}");
    assert_eq!(
        raw(&sim, reqwest::Method::GET, "/v3/users?limit=1", Some(&key), None)
            .await
            .0,
        200
    );

    // Rancher deletes the provider's tokens on disable (pkg/auth/cleanup/service.go `deleteTokens`): the plan lists
    // them, and the disable goes ahead only with the plan's acknowledgement code.
    let Submitted::Succeeded { result: plan } = r
        .submit(&admin, "access-control-disable", json!({}), None, true)
        .await
        .expect("planned")
    else {
        panic!("a dry run")
    };
    let planned: Vec<String> = plan.result["cleanup"]["tokens_deleted"]
        .as_array()
        .expect("the tokens Rancher deletes")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let key_name = key.split(':').next().unwrap().to_string();
    assert!(planned.contains(&key_name), "{}", plan.result);
    assert!(plan.summary.contains("acknowledge=delete-"), "{}", plan.summary);
    let e = r
        .submit(&admin, "access-control-disable", json!({}), None, false)
        .await
        .expect_err("refused without the acknowledgement");
    assert!(e.to_string().contains("acknowledge=delete-"), "{e}");
    assert!(sim.object("authconfigs", "activedirectory").unwrap()["enabled"] == json!(true));
    let code = plan.result["acknowledge"].as_str().unwrap().to_string();
    let Submitted::Succeeded { .. } = r
        .submit(
            &admin,
            "access-control-disable",
            json!({"acknowledge": code}),
            None,
            false,
        )
        .await
        .expect("disabled")
    else {
        panic!("no approval needed")
    };
    assert!(
        sim.objects("tokens")
            .iter()
            .all(|t| t["authProvider"] != "activedirectory"),
        "exactly the planned tokens are gone"
    );
    assert!(planned.iter().all(|n| sim.object("tokens", n).is_none()));
    assert_eq!(
        raw(&sim, reqwest::Method::GET, "/v3/users?limit=1", Some(&key), None)
            .await
            .0,
        401,
        "the key died with its provider"
    );
    assert_eq!(
        raw(
            &sim,
            reqwest::Method::GET,
            "/v3/users?limit=1",
            Some(&sim.tokens().admin),
            None
        )
        .await
        .0,
        200,
        "local keys live on"
    );
}

const ENGINEERING: &str = "activedirectory_group://CN=Engineering,OU=Groups,DC=example,DC=com";

/// Admin turns Active Directory on (unrestricted) with the simulator's `testAndApply`, tested as jdoe.
async fn enable_ad(sim: &SimHandle) {
    let body = json!({
        "activeDirectoryConfig": {"servers": ["ad.example.com"], "serviceAccountUsername": "svc", "serviceAccountPassword": "pw",
                                  "userSearchBase": "dc=example,dc=com", "accessMode": "unrestricted"},
        "username": "jdoe", "password": "jdoe-password", "enabled": true});
    let (st, v) = raw(
        sim,
        reqwest::Method::POST,
        "/v3/activeDirectoryConfigs/activedirectory?action=testAndApply",
        Some(&sim.tokens().admin),
        Some(body),
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

/// `login` logs in through Active Directory; returns the session token.
async fn ad_login(sim: &SimHandle, login: &str) -> String {
    let (st, v) = raw(
        sim,
        reqwest::Method::POST,
        "/v3-public/activeDirectoryProviders/activedirectory?action=login",
        None,
        Some(json!({"username": login, "password": format!("{login}-password"), "responseType": "json"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// rancher/rancher pkg/auth/tokens/manager.go `NewLoginToken` (2.8-2.13): login tokens carry no groups; they live in
/// the user's UserAttribute (pkg/apis/management.cattle.io/v3/authn_types.go). A user who is admin only through an
/// AD group is named as admin by the access review, with the group as the path, and the group data's age is shown.
#[tokio::test]
async fn the_access_review_takes_group_memberships_from_user_attributes() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    enable_ad(&sim).await;
    let anna_t = ad_login(&sim, "asmith").await;
    let anna = sim
        .objects("users")
        .into_iter()
        .find(|u| u["principalIds"].to_string().contains("Anna Smith"))
        .and_then(|u| u["metadata"]["name"].as_str().map(str::to_string))
        .expect("asmith's user");
    let (st, v) = raw(
        &sim,
        reqwest::Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&sim.tokens().admin),
        Some(json!({"metadata": {"name": "grb-engineering-admins"}, "globalRoleName": "admin", "groupPrincipalName": ENGINEERING})),
    )
    .await;
    assert_eq!(st, 201, "{v}");

    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "access-review", None).await.expect("installed");
    let Submitted::Succeeded { result } = r
        .submit(&admin, "access-review", json!({"user": anna}), None, false)
        .await
        .expect("reviewed")
    else {
        panic!("a review runs at once")
    };
    let row = result.result["users"]
        .as_array()
        .and_then(|u| u.iter().find(|x| x["user"] == json!(anna)))
        .cloned()
        .unwrap_or_else(|| panic!("asmith in the review: {}", result.result));
    assert_eq!(row["admin"], json!(true), "{row}");
    assert_eq!(row["groups"], json!([ENGINEERING]), "{row}");
    assert!(row["groups_as_of"].as_str().is_some(), "{row}");
    let grant = row["global_roles"]
        .as_array()
        .and_then(|g| g.iter().find(|x| x["role"] == "admin"))
        .unwrap_or_else(|| panic!("the admin grant: {row}"));
    assert_eq!(grant["via"], json!(format!("group {ENGINEERING}")));
    assert_eq!(grant["binding"], "globalrolebinding/grb-engineering-admins");

    // And Rancher (here: the simulator) treats her as the admin she is.
    let (st, _) = raw(
        &sim,
        reqwest::Method::GET,
        &format!("{MG}/globalroles"),
        Some(&anna_t),
        None,
    )
    .await;
    assert_eq!(st, 200);
}

/// A user who is admin only through a directory group (rancher/rancher pkg/auth/requests/authenticate.go: the
/// caller's groups come from its UserAttribute; the group's GlobalRoleBinding makes it admin) is an admin to the
/// product too: it may install workflows.
#[tokio::test]
async fn an_admin_through_a_group_may_install_workflows() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    enable_ad(&sim).await;
    let anna_t = ad_login(&sim, "asmith").await;
    let anna = session(&sim, &anna_t).await;
    assert!(!anna.is_admin, "no admin grant yet");
    let r = runner();
    r.install(&anna, "access-review", None)
        .await
        .expect_err("a standard user may not install");
    let (st, v) = raw(
        &sim,
        reqwest::Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&sim.tokens().admin),
        Some(json!({"metadata": {"name": "grb-engineering-admins"}, "globalRoleName": "admin", "groupPrincipalName": ENGINEERING})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let anna = session(&sim, &anna_t).await;
    assert!(anna.is_admin, "admin through {ENGINEERING}");
    r.install(&anna, "access-review", None)
        .await
        .expect("a group admin may install");
}

/// rancher/rancher pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go
/// `reconcileClusterPermissions` (2.8-2.13): a global role's `inheritedClusterRoles` become `crtb-grb-*` CRTBs in
/// every downstream cluster; the access review shows them as the global role binding's grants, not separate ones.
#[tokio::test]
async fn the_access_review_attributes_generated_crtbs_to_their_global_role_binding() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin_t = sim.tokens().admin.clone();
    let (st, v) = raw(
        &sim,
        reqwest::Method::POST,
        &format!("{MG}/globalroles"),
        Some(&admin_t),
        Some(json!({"metadata": {"name": "owners-everywhere"}, "inheritedClusterRoles": ["cluster-owner"]})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let alice = sim.user_id("alice").unwrap();
    let (st, v) = raw(
        &sim,
        reqwest::Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&admin_t),
        Some(
            json!({"metadata": {"name": "grb-alice-owner"}, "globalRoleName": "owners-everywhere", "userName": alice}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{v}");

    let admin = session(&sim, &admin_t).await;
    let r = runner();
    r.install(&admin, "access-review", None).await.expect("installed");
    let Submitted::Succeeded { result } = r
        .submit(&admin, "access-review", json!({"user": alice}), None, false)
        .await
        .expect("reviewed")
    else {
        panic!("a review runs at once")
    };
    let row = result.result["users"]
        .as_array()
        .and_then(|u| u.iter().find(|x| x["user"] == json!(alice)))
        .cloned()
        .expect("alice in the review");
    let cluster = row["cluster_roles"].as_array().expect("cluster roles");
    let owner = cluster
        .iter()
        .find(|g| g["role"] == "cluster-owner")
        .unwrap_or_else(|| panic!("cluster-owner through the global role: {row}"));
    assert_eq!(owner["binding"], "globalrolebinding/grb-alice-owner", "{row}");
    assert!(
        cluster
            .iter()
            .all(|g| !g["binding"].as_str().unwrap_or("").contains("crtb-grb-")),
        "{row}"
    );
}

/// Every object of the kinds Rancher's provider cleanup touches, named as the cleanup plan names them (deleting
/// ones count as gone).
fn cleanup_kinds(sim: &SimHandle) -> std::collections::BTreeSet<String> {
    let live = |o: &Value| o["metadata"]["deletionTimestamp"].is_null();
    let name = |o: &Value| o["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let ns = |o: &Value| o["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let mut out = std::collections::BTreeSet::new();
    for o in sim.objects("users").iter().filter(|o| live(o)) {
        out.insert(format!("user {}", name(o)));
    }
    for o in sim.objects("tokens").iter().filter(|o| live(o)) {
        out.insert(format!("token {}", name(o)));
    }
    for o in sim.objects("exttokens").iter().filter(|o| live(o)) {
        out.insert(format!("token ext/{}", name(o)));
    }
    for o in sim.objects("globalrolebindings").iter().filter(|o| live(o)) {
        out.insert(format!("binding globalrolebinding/{}", name(o)));
    }
    for (kind, long) in [
        ("clusterroletemplatebindings", "clusterroletemplatebinding"),
        ("projectroletemplatebindings", "projectroletemplatebinding"),
    ] {
        for o in sim.objects(kind).iter().filter(|o| live(o)) {
            out.insert(format!("binding {long}/{}/{}", ns(o), name(o)));
        }
    }
    out
}

/// Issue 29's end-to-end case. Active Directory is on; asmith is admin only through her AD group's global role
/// binding. The access review names that admin grant with the group as the path. She files the disable of AD
/// through the approved workflow: the request pins what Rancher will delete (rancher/rancher
/// pkg/auth/cleanup/service.go `Run`, 2.8-2.13) before anyone approves, and once the installer approves, the
/// simulator has deleted exactly those objects.
#[tokio::test]
async fn disabling_ad_through_an_approval_deletes_exactly_what_the_request_pinned() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    enable_ad(&sim).await;
    let anna_t = ad_login(&sim, "asmith").await;
    let anna_id = sim
        .objects("users")
        .into_iter()
        .find(|u| u["principalIds"].to_string().contains("Anna Smith"))
        .and_then(|u| u["metadata"]["name"].as_str().map(str::to_string))
        .expect("asmith's user");
    let (st, v) = raw(
        &sim,
        reqwest::Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&sim.tokens().admin),
        Some(json!({"metadata": {"name": "grb-engineering-admins"}, "globalRoleName": "admin", "groupPrincipalName": ENGINEERING})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let admin = session(&sim, &sim.tokens().admin).await;
    let anna = session(&sim, &anna_t).await;
    assert!(anna.is_admin, "admin through her group");
    let r = runner();
    r.install(&admin, "access-review", None).await.expect("installed");
    r.install(&admin, "access-control-disable", Some(Policy::installer()))
        .await
        .expect("installed");

    // The review: admin, through the group.
    let Submitted::Succeeded { result } = r
        .submit(&anna, "access-review", json!({"user": anna_id}), None, false)
        .await
        .expect("reviewed")
    else {
        panic!("a review runs at once")
    };
    let row = result.result["users"]
        .as_array()
        .and_then(|u| u.iter().find(|x| x["user"] == json!(anna_id)))
        .cloned()
        .unwrap_or_else(|| panic!("asmith in the review: {}", result.result));
    assert_eq!(row["admin"], json!(true), "{row}");
    let grant = row["global_roles"]
        .as_array()
        .and_then(|g| g.iter().find(|x| x["role"] == "admin"))
        .unwrap_or_else(|| panic!("the admin grant: {row}"));
    assert_eq!(grant["via"], json!(format!("group {ENGINEERING}")), "{row}");
    assert!(
        result
            .summary
            .contains("group data as Rancher last read it from the providers"),
        "the review says how old the group data is: {}",
        result.summary
    );

    // Offboarding her shows approvers the admin grant she holds through the group: not hers to delete.
    r.install(&admin, "offboard-user", None).await.expect("installed");
    let Submitted::Pending { request, .. } = r
        .submit(&admin, "offboard-user", json!({"user": anna_id}), None, false)
        .await
        .expect("filed")
    else {
        panic!("the installer approves")
    };
    let kept = r.get(&request).await.expect("the request").inputs["plan"]["kept"].clone();
    assert!(
        kept.as_array().is_some_and(|k| k.iter().any(|x| x
            .as_str()
            .is_some_and(|x| x.contains("admin through group") && x.contains(ENGINEERING)))),
        "{kept}"
    );
    r.cancel(&admin, &request, None).await.expect("cancelled");

    // Without the acknowledgement nothing is filed; with it, the request pins the set for the approver.
    let Submitted::Succeeded { result: plan } = r
        .submit(&anna, "access-control-disable", json!({}), None, true)
        .await
        .expect("planned")
    else {
        panic!("a dry run")
    };
    let code = plan.result["acknowledge"].as_str().expect("code").to_string();
    let Submitted::Pending { request, .. } = r
        .submit(
            &anna,
            "access-control-disable",
            json!({"acknowledge": code}),
            Some("leaving AD".into()),
            false,
        )
        .await
        .expect("filed")
    else {
        panic!("the installer approves")
    };
    let filed = r.get(&request).await.expect("the request");
    let pinned = filed.inputs["deletions"]["deletes"].clone();
    assert_eq!(pinned, plan.result["cleanup"], "the request pins what the plan showed");
    assert_eq!(filed.inputs["deletions"]["acknowledge"], json!(code));
    let names = |key: &str, prefix: &str| -> Vec<String> {
        pinned[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in {pinned}"))
            .iter()
            .map(|x| format!("{prefix} {}", x.as_str().unwrap()))
            .collect()
    };
    let mut expected: std::collections::BTreeSet<String> = names("users_deleted", "user").into_iter().collect();
    expected.extend(names("bindings_deleted", "binding"));
    expected.extend(names("tokens_deleted", "token"));
    assert!(expected.contains(&format!("user {anna_id}")), "{pinned}");
    assert!(
        expected.contains("binding globalrolebinding/grb-engineering-admins"),
        "{pinned}"
    );
    assert!(
        sim.object("authconfigs", "activedirectory").unwrap()["enabled"] == json!(true),
        "nothing happens before the approval"
    );

    let before = cleanup_kinds(&sim);
    match r.approve(&admin, &request, None).await.expect("approved") {
        rancher_workflows::Approved::Succeeded { result, .. } => {
            assert!(
                result.summary.contains("disabled Active Directory"),
                "{}",
                result.summary
            )
        }
        other => panic!("{other:?}"),
    }
    let after = cleanup_kinds(&sim);
    let gone: std::collections::BTreeSet<String> = before.difference(&after).cloned().collect();
    assert_eq!(gone, expected, "the simulator deleted exactly what the request pinned");
    assert!(after.is_subset(&before), "nothing was created");
    let me = sim.object("users", &admin.principal.id).expect("the local admin stays");
    assert!(
        me["principalIds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.as_str().unwrap().starts_with("local://")),
        "{me}"
    );
}

/// The access review can ask Rancher to re-read group memberships first (norman `refreshauthprovideraccess`,
/// rancher/rancher pkg/auth/api/user/user_actions.go, 2.8-2.13): a UserAttribute left stale (no groups, read in
/// 2020) is read again from the directory, and the review says when it asked.
#[tokio::test]
async fn the_access_review_can_ask_rancher_to_refresh_group_memberships() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    enable_ad(&sim).await;
    ad_login(&sim, "asmith").await;
    let anna = sim
        .objects("users")
        .into_iter()
        .find(|u| u["principalIds"].to_string().contains("Anna Smith"))
        .and_then(|u| u["metadata"]["name"].as_str().map(str::to_string))
        .expect("asmith's user");
    let mut stale = sim.object("userattributes", &anna).expect("her attribute");
    stale["GroupPrincipals"] = json!({"activedirectory": {"Items": []}});
    stale["lastLogin"] = json!("2020-01-01T00:00:00Z");
    stale["LastRefresh"] = json!("2020-01-01T00:00:00Z");
    assert!(sim.insert_object("userattributes", stale));
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "access-review", None).await.expect("installed");
    let review = |inputs: Value| {
        let (r, admin) = (&r, &admin);
        async move {
            let Submitted::Succeeded { result } = r
                .submit(admin, "access-review", inputs, None, false)
                .await
                .expect("reviewed")
            else {
                panic!("a review runs at once")
            };
            result
        }
    };
    let before = review(json!({"user": anna})).await;
    let row = &before.result["users"][0];
    assert_eq!(row["groups"], json!([]), "{row}");
    assert!(row["groups_as_of"].as_str().unwrap().starts_with("2020-01-01"), "{row}");
    assert!(before.summary.contains("oldest 2020-01-01"), "{}", before.summary);

    let after = review(json!({"user": anna, "refresh-groups": "yes"})).await;
    let row = &after.result["users"][0];
    assert_eq!(row["groups"], json!([ENGINEERING]), "{row}");
    assert!(!row["groups_as_of"].as_str().unwrap().starts_with("2020"), "{row}");
    assert!(after.result["groups_refresh_requested"].is_string(), "{}", after.result);
    assert!(after.summary.contains("asked Rancher at"), "{}", after.summary);
}

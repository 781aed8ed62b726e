//! Regression tests for the adversarial security review (docs/reliability.md, "Security review"): each test
//! reproduces one finding against the simulator over HTTPS and shows that it is closed.

use rancher_access_tests::{client, runner, session, sim};
use rancher_approval::Policy;
use rancher_sim::RancherVersion;
use serde_json::json;

/// Item 1 (critical): a path value `.` made a delete of one binding a delete of the whole collection. It is now
/// refused before anything is sent: directly, through an approved generic request, and as a role name.
#[tokio::test]
async fn dot_path_values_never_reach_a_collection() {
    let sim = sim(RancherVersion::V2_13, 20).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let (bindings, users) = (sim.count("globalrolebindings"), sim.count("users"));

    let direct = client(&sim, &sim.tokens().admin);
    for value in [".", ".."] {
        let e = direct
            .call("rk.users.delete", &[("name", value)], None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("collection"), "{e}");
        let e = direct
            .call("rk.globalrolebindings.delete", &[("name", value)], None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("collection"), "{e}");
    }

    let r = runner();
    r.install(&admin, "rancher-api-request", None).await.unwrap();
    let e = r
        .submit(
            &admin,
            "rancher-api-request",
            json!({"operation": "rk.globalrolebindings.delete", "params": {"name": "."}}),
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("collection"),
        "refused at submit, before a request is filed: {e}"
    );
    assert!(r.list(None).await.unwrap().is_empty(), "no request was filed");
    // The dry run shows the refusal too, never a harmless-looking path.
    let e = r
        .submit(
            &admin,
            "rancher-api-request",
            json!({"operation": "rk.users.delete", "params": {"name": ".."}}),
            None,
            true,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("collection"), "{e}");

    r.install(&admin, "create-global-role-binding", Some(Policy::installer()))
        .await
        .unwrap();
    let bob = &sim.users().standard[1];
    for role in [".", ".."] {
        let e = r
            .submit(
                &admin,
                "create-global-role-binding",
                json!({"user": bob.username, "role": role}),
                None,
                false,
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(role),
            "the role `{role}` does not pass the existence check: {e}"
        );
    }

    assert_eq!(
        (sim.count("globalrolebindings"), sim.count("users")),
        (bindings, users),
        "nothing was deleted or created"
    );
    assert_eq!(
        sim.writes("globalrolebindings", "delete") + sim.writes("users", "delete"),
        0
    );
}

async fn sim_seeded(seed: u64) -> rancher_sim::SimHandle {
    rancher_sim::Simulator::start(
        rancher_sim::SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(5)
            .seed(seed)
            .port(0),
    )
    .await
    .expect("simulator starts")
}

/// Item 3: a vote recorded through another server that claimed "you are the approver" counted toward a real
/// request. A second simulator with the same seed plays the fake server: same user ids, other domain and
/// installation. Its votes are refused, and the real request still needs its two real approvals.
#[tokio::test]
async fn votes_through_another_server_do_not_count() {
    let real = sim_seeded(7).await;
    let fake = sim_seeded(7).await;
    assert_eq!(
        real.users().approver.id,
        fake.users().approver.id,
        "the fake server claims the same identities"
    );
    let admin = session(&real, &real.tokens().admin).await;
    // Rancher's `user` role may not read global roles (role_data.go), which submitting this workflow does: give alice
    // that read, and nothing more.
    let c = client(&real, &real.tokens().admin);
    c.call("rk.globalroles.create", &[], Some(json!({"apiVersion": "management.cattle.io/v3", "kind": "GlobalRole", "metadata": {"name": "roles-reader"},
        "rules": [{"apiGroups": ["management.cattle.io"], "resources": ["globalroles", "globalrolebindings"], "verbs": ["get", "list"]}]}))).await.unwrap();
    c.call("rk.globalrolebindings.create", &[], Some(json!({"apiVersion": "management.cattle.io/v3", "kind": "GlobalRoleBinding", "metadata": {"generateName": "grb-"},
        "globalRoleName": "roles-reader", "userName": real.users().user.id}))).await.unwrap();
    let alice = session(&real, &real.tokens().user).await;
    let approver_on_fake = session(&fake, &fake.tokens().approver).await;
    assert_ne!(admin.server, approver_on_fake.server);
    let r = runner();
    let both = Policy::at_least(
        2,
        [&real.users().admin.id, &real.users().approver.id].map(|id| rancher_approval::ApproverRef::user(id.as_str())),
    );
    r.install(&admin, "create-global-role-binding", Some(both))
        .await
        .unwrap();
    let rancher_workflows::Submitted::Pending { request, .. } = r
        .submit(
            &alice,
            "create-global-role-binding",
            json!({"user": "alice", "role": "admin"}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("needs approval")
    };
    let e = r.approve(&approver_on_fake, &request, None).await.unwrap_err();
    assert!(e.to_string().contains("belongs to the Rancher server"), "{e}");
    let after_one = r.approve(&admin, &request, None).await.unwrap();
    assert!(
        matches!(after_one, rancher_workflows::Approved::Pending { .. }),
        "one real approval of two: {after_one:?}"
    );
    assert!(!real.has_binding(&real.users().user.id, "admin"));
}

/// Item 7: a standard user installed workflows (becoming the approval authority) and writes under `none` left
/// no audit entry. Installing needs an admin, and every write is claimed and audited.
#[tokio::test]
async fn only_admins_install_and_every_write_is_audited() {
    let sim = sim(RancherVersion::V2_13, 5).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let alice = session(&sim, &sim.tokens().user).await;
    let r = runner();
    let e = r
        .install(&alice, "delete-global-role-binding", Some(Policy::none()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("only an admin may install"), "{e}");
    assert!(r.installation("delete-global-role-binding").await.unwrap().is_none());
    r.install(&admin, "create-global-role-binding", Some(Policy::none()))
        .await
        .unwrap();
    let bob = &sim.users().standard[1];
    r.submit(
        &admin,
        "create-global-role-binding",
        json!({"user": bob.username, "role": "user"}),
        None,
        false,
    )
    .await
    .unwrap();
    let entries = r.store().audit_entries().await.unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .filter(|e| e.request_id.is_some())
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["request_created", "execution_claimed", "execution_finished"]);
    assert_eq!(
        entries.last().unwrap().actor,
        admin.principal.id,
        "the actor is the principal id"
    );
    assert!(
        entries.last().unwrap().detail["executor"]
            .as_str()
            .unwrap()
            .contains(" pid "),
        "the process is recorded apart"
    );
    // Reads are not requests.
    r.install(&admin, "list-users", None).await.unwrap();
    r.submit(&admin, "list-users", json!({}), None, false).await.unwrap();
    assert_eq!(r.list(None).await.unwrap().len(), 1);
}

/// Item 10: the target user was looked up by name again at execution, so after a delete and re-create under the
/// same name the grant went to the new account. The id is pinned at submit and approvers see it.
#[tokio::test]
async fn the_target_is_pinned_to_its_id() {
    let sim = sim(RancherVersion::V2_13, 5).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    r.install(&admin, "create-global-role-binding", Some(Policy::installer()))
        .await
        .unwrap();
    let old_id = sim.user_id("user00001").unwrap();
    let rancher_workflows::Submitted::Pending { request, .. } = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": "user00001", "role": "users-manage"}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("needs approval")
    };
    let stored = r.get(&request).await.unwrap();
    assert_eq!(stored.inputs["user"], json!(old_id), "executed by id");
    assert_eq!(stored.targets, std::slice::from_ref(&old_id));
    assert_eq!(
        stored.target_labels[&old_id], "user00001",
        "approvers see the name beside the id"
    );

    let c = client(&sim, &sim.tokens().admin);
    c.call("rk.users.delete", &[("name", &old_id)], None).await.unwrap();
    // Rancher's finalizer holds the deleted user (and its username) for a moment: re-create once it is gone.
    for _ in 0..100 {
        if c.call("rk.users.get", &[("name", &old_id)], None)
            .await
            .is_err_and(|e| e.is_not_found())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    c.call("rk.users.create", &[], Some(json!({"apiVersion": "management.cattle.io/v3", "kind": "User", "metadata": {"generateName": "u-"}, "username": "user00001"})))
        .await
        .unwrap();
    let new_id = sim.user_id("user00001").unwrap();
    assert_ne!(new_id, old_id);
    let out = r.approve(&approver, &request, None).await.unwrap();
    let rancher_workflows::Approved::Failed { error, .. } = out else {
        panic!("the deleted account cannot get the grant: {out:?}")
    };
    assert!(error.contains(&format!("user id `{old_id}` does not exist")), "{error}");
    assert!(
        !sim.has_binding(&new_id, "users-manage"),
        "the re-created account got nothing"
    );
}

/// Item 12: the "target may not approve" rule was skipped for the generic request (no targets recorded): an
/// approver approved their own role grant. Targets now come from the operation and its body.
#[tokio::test]
async fn a_grant_to_the_approver_through_the_generic_request_is_not_theirs_to_approve() {
    let sim = sim(RancherVersion::V2_13, 5).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    r.install(&admin, "rancher-api-request", None).await.unwrap();
    let body = json!({"apiVersion": "management.cattle.io/v3", "kind": "GlobalRoleBinding", "metadata": {"generateName": "grb-"},
                      "globalRoleName": "roles-manage", "userName": approver.principal.id});
    let rancher_workflows::Submitted::Pending { request, .. } = r
        .submit(
            &admin,
            "rancher-api-request",
            json!({"operation": "rk.globalrolebindings.create", "body": body}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("a write needs approval")
    };
    assert_eq!(
        r.get(&request).await.unwrap().targets,
        std::slice::from_ref(&approver.principal.id)
    );
    let e = r.approve(&approver, &request, None).await.unwrap_err();
    assert!(e.to_string().contains("target"), "{e}");
    assert!(!sim.has_binding(&approver.principal.id, "roles-manage"));
}

/// Item 6: redaction by key name made an approved user's password the literal `***`, and secrets under other
/// names were stored in plain text. A request holding a secret field is refused before anything is stored; a
/// run that needs no approval sends the real value and stores it masked.
#[tokio::test]
async fn secrets_are_never_stored_nor_replaced() {
    let sim = sim(RancherVersion::V2_13, 5).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "rancher-api-request", None).await.unwrap();
    let password = "Corr3ct-Horse-Battery-Staple-2026";
    let create = json!({"operation": "rk.users.create", "body": {"apiVersion": "management.cattle.io/v3", "kind": "User",
        "metadata": {"generateName": "u-"}, "username": "eve", "password": password}});
    let e = r
        .submit(&admin, "rancher-api-request", create.clone(), None, false)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("body.password") && e.to_string().contains("never holds a secret"),
        "{e}"
    );
    let ad = json!({"operation": "v3.authconfigs.update", "params": {"kind": "activeDirectory", "id": "activedirectory"},
        "body": {"serviceAccountUsername": "svc", "serviceAccountPassword": "AD-Sv3c-P4ss-do-not-leak"}});
    let e = r
        .submit(&admin, "rancher-api-request", ad, None, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("serviceAccountPassword"), "{e}");
    assert!(r.list(None).await.unwrap().is_empty(), "nothing filed");

    r.set_policy(&admin, "rancher-api-request", Policy::none())
        .await
        .unwrap();
    r.submit(&admin, "rancher-api-request", create, None, false)
        .await
        .unwrap();
    let stored =
        serde_json::to_string(&(r.store().audit_entries().await.unwrap(), r.list(None).await.unwrap())).unwrap();
    assert!(!stored.contains(password), "the password is not in the store");
    let login = client(&sim, &sim.tokens().admin)
        .call(
            "public.local-login.create",
            &[],
            Some(json!({"username": "eve", "password": password})),
        )
        .await;
    assert!(login.is_ok(), "the real password was sent, not a mask: {login:?}");
}

fn private_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

/// Item 5: `access-control-enable` read its files when the approved request ran, so a config swapped after
/// approval enabled an attacker's directory server. The files are pinned by absolute path and content hash at
/// submit, approvers see the settings (not the secrets), and a changed file refuses execution.
#[tokio::test]
async fn access_control_files_are_pinned_at_submit() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    r.install(&admin, "access-control-enable", None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = private_file(
        dir.path(),
        "gh.json",
        r#"{"clientId": "abc123", "clientSecret": "gh-S3cret", "hostname": "github.example.com"}"#,
    );
    let code = private_file(dir.path(), "code", "octocat:octocat-password");
    let inputs = json!({"provider": "github", "config": cfg, "mode": "restricted", "test-code-file": code});
    let rancher_workflows::Submitted::Pending { request, .. } = r
        .submit(&approver, "access-control-enable", inputs, None, false)
        .await
        .unwrap()
    else {
        panic!("installer approval by default")
    };
    let stored = r.get(&request).await.unwrap();
    assert_eq!(
        stored.inputs["settings-shown"]["hostname"],
        json!("github.example.com"),
        "approvers see the settings"
    );
    let text = serde_json::to_string(&stored).unwrap();
    assert!(
        !text.contains("gh-S3cret") && !text.contains("octocat-password"),
        "but no secret: {text}"
    );
    assert_eq!(
        stored.inputs["pinned-files"]["config"]["sha256"].as_str().map(str::len),
        Some(64)
    );

    // After review, the file is swapped for an attacker's server.
    std::fs::write(
        &cfg,
        r#"{"clientId": "abc123", "clientSecret": "gh-S3cret", "hostname": "github.attacker.example"}"#,
    )
    .unwrap();
    let out = r.approve(&admin, &request, None).await.unwrap();
    let rancher_workflows::Approved::Failed { error, .. } = out else {
        panic!("a changed file never runs: {out:?}")
    };
    assert!(error.contains("changed after the request was approved"), "{error}");
    assert_eq!(
        sim.object("authconfigs", "github").unwrap()["enabled"],
        json!(false),
        "nothing was sent"
    );
    assert_ne!(
        sim.object("authconfigs", "github").unwrap()["hostname"],
        json!("github.attacker.example")
    );
}

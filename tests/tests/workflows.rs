//! Every prebuilt workflow against the simulator over HTTPS, on current and older servers, with the approval
//! round trip and exactly-once execution.

use rancher_access_tests::{runner, session, sim};
use rancher_approval::{Policy, RequestState};
use rancher_sim::RancherVersion;
use rancher_workflows::{Approved, Submitted};
use serde_json::{json, Value};

async fn run_now(
    r: &rancher_workflows::Runner,
    s: &rancher_workflows::Session,
    wf: &str,
    inputs: Value,
) -> rancher_workflows::RunOutput {
    r.install(s, wf, Some(Policy::none())).await.ok();
    match r.submit(s, wf, inputs, None, false).await.unwrap() {
        Submitted::Succeeded { result } => *result,
        other => panic!("expected a result, got {other:?}"),
    }
}

#[tokio::test]
async fn list_workflows_return_every_item_once_across_pages() {
    let sim = sim(RancherVersion::V2_13, 1_200).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    let users = run_now(&r, &admin, "list-users", json!({})).await;
    let arr = users.result.as_array().unwrap();
    assert_eq!(arr.len(), sim.count("users"), "every user, across pages of 500");
    let mut names: Vec<&str> = arr.iter().map(|u| u["metadata"]["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), arr.len(), "no user twice");
    for wf in [
        "list-global-roles",
        "list-global-role-bindings",
        "list-projects",
        "list-role-templates",
    ] {
        let out = run_now(&r, &admin, wf, json!({})).await;
        assert!(!out.result.as_array().unwrap().is_empty(), "{wf} returned nothing");
        assert!(out.table.is_some(), "{wf} has a table");
    }
    let bindings = run_now(&r, &admin, "list-global-role-bindings", json!({})).await;
    let t = bindings.table.unwrap();
    assert!(
        t.rows.iter().any(|row| row[1] == "admin" && row[4] == "admin"),
        "the admin binding shows the username: {:?}",
        &t.rows[..3.min(t.rows.len())]
    );
}

#[tokio::test]
async fn older_servers_fall_back_to_norman() {
    for version in [RancherVersion::V2_11, RancherVersion::V2_8] {
        let sim = sim(version, 30).await;
        let admin = session(&sim, &sim.tokens().admin).await;
        let r = runner();
        let users = run_now(&r, &admin, "list-users", json!({})).await;
        // /v3 hides Rancher's own `system://` users (rancher/rancher pkg/auth/api/user/user_store.go).
        let system = sim
            .objects("users")
            .iter()
            .filter(|u| u["principalIds"].to_string().contains("system://"))
            .count();
        assert_eq!(
            users.result.as_array().unwrap().len(),
            sim.count("users") - system,
            "{version:?}"
        );
        assert!(
            users.result[0].get("id").is_some(),
            "norman users carry ids on {version:?}"
        );
        let bob = &sim.users().standard[0];
        let created = run_now(
            &r,
            &admin,
            "create-global-role-binding",
            json!({"user": bob.username, "role": "admin"}),
        )
        .await;
        assert_eq!(
            created.result["created"],
            json!(true),
            "{version:?}: {}",
            created.summary
        );
        assert!(sim.has_binding(&bob.id, "admin"));
        let deleted = run_now(
            &r,
            &admin,
            "delete-global-role-binding",
            json!({"user": bob.id, "role": "admin"}),
        )
        .await;
        assert!(deleted.summary.starts_with("deleted"), "{}", deleted.summary);
        assert!(!sim.has_binding(&bob.id, "admin"));
        let roles = run_now(&r, &admin, "list-role-templates", json!({})).await;
        assert!(roles.result.as_array().unwrap().len() > 5);
    }
}

#[tokio::test]
async fn create_is_idempotent_and_delete_of_nothing_is_clear() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    let bob = sim.users().standard[0].clone();
    let before = sim.count("globalrolebindings");
    let first = run_now(
        &r,
        &admin,
        "create-global-role-binding",
        json!({"user": bob.id, "role": "admin"}),
    )
    .await;
    assert_eq!(first.result["created"], json!(true));
    // The same again, with no approval needed: the idempotent no-op (a policy that needs approval refuses it before
    // filing instead: issue 27 #16).
    let second = run_now(
        &r,
        &admin,
        "create-global-role-binding",
        json!({"user": bob.username, "role": "admin"}),
    )
    .await;
    assert_eq!(second.result["created"], json!(false));
    assert!(second.summary.contains("already holds admin"), "{}", second.summary);
    assert_eq!(sim.count("globalrolebindings"), before + 1);
    assert_eq!(sim.writes("globalrolebindings", "create"), 1);

    let nothing = run_now(
        &r,
        &admin,
        "delete-global-role-binding",
        json!({"binding": "grb-zzzzz"}),
    )
    .await;
    assert_eq!(nothing.summary, "nothing to delete: binding `grb-zzzzz` does not exist");

    let err = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": "nobody-here", "role": "admin"}),
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("user `nobody-here` does not exist"), "{err}");
    let err = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob.id, "role": "emperor"}),
            None,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("global role `emperor` does not exist; existing roles: admin"),
        "{err}"
    );
    let err = r
        .submit(&admin, "create-global-role-binding", json!({"usr": "x"}), None, false)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown input; did you mean `user`? this workflow takes user, role"),
        "{err}"
    );
}

#[tokio::test]
async fn dry_run_sends_no_write() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "create-global-role-binding", None).await.unwrap();
    let bob = sim.users().standard[0].clone();
    let Submitted::Succeeded { result } = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob.id, "role": "admin"}),
            None,
            true,
        )
        .await
        .unwrap()
    else {
        panic!("a dry run needs no approval")
    };
    assert!(result.dry_run);
    assert_eq!(result.planned.len(), 1);
    assert_eq!(result.planned[0].method, "POST");
    assert_eq!(
        result.planned[0].path,
        "/apis/management.cattle.io/v3/globalrolebindings"
    );
    assert_eq!(result.planned[0].body.as_ref().unwrap()["userName"], json!(bob.id));
    assert_eq!(sim.writes("globalrolebindings", "create"), 0);
    assert!(!sim.has_binding(&bob.id, "admin"));
}

#[tokio::test]
async fn approval_round_trip_executes_exactly_once() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let user = session(&sim, &sim.tokens().user).await;
    assert!(admin.is_admin && approver.is_admin && !user.is_admin);
    let r = runner();
    r.install(&admin, "create-global-role-binding", None).await.unwrap();
    let bob = sim.users().standard[0].clone();

    // The installer asks: self-approval is not allowed, so another admin must approve.
    let Submitted::Pending { request, approvers, .. } = r
        .submit(
            &admin,
            "create-global-role-binding",
            json!({"user": bob.username, "role": "admin"}),
            Some("on call".into()),
            false,
        )
        .await
        .unwrap()
    else {
        panic!("installer approval is needed")
    };
    assert!(approvers.contains(&sim.users().approver.id), "{approvers}");
    assert_eq!(
        sim.writes("globalrolebindings", "create"),
        0,
        "nothing runs before approval"
    );

    let err = r.approve(&admin, &request, None).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("self"),
        "the requester cannot approve: {err}"
    );
    let err = r.approve(&user, &request, None).await.unwrap_err();
    assert!(err.to_string().contains("not"), "a standard user cannot approve: {err}");

    match r.approve(&approver, &request, Some("ok".into())).await.unwrap() {
        Approved::Succeeded { result, .. } => assert_eq!(result.result["created"], json!(true)),
        other => panic!("{other:?}"),
    }
    assert!(sim.has_binding(&bob.id, "admin"));
    // Approving again, or executing again, does nothing more.
    assert!(r.approve(&approver, &request, None).await.is_err());
    assert!(r.execute_approved(&approver, &request.parse().unwrap()).await.is_err());
    assert_eq!(sim.writes("globalrolebindings", "create"), 1);
    let done = r.get(&request).await.unwrap();
    assert_eq!(done.state, RequestState::Succeeded);
    assert_eq!(
        r.store().verify_audit().await.unwrap() as usize,
        r.store().audit_entries().await.unwrap().len()
    );
}

#[tokio::test]
async fn server_errors_surface_intact_and_reads_skip_approval() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let user = session(&sim, &sim.tokens().user).await;
    let r = runner();
    r.install(&admin, "rancher-api-request", None).await.unwrap();
    // A read needs no approval even though writes do.
    // (A standard user may read their own User; Rancher's `user` role has no rule on globalroles.)
    let me = sim.users().user.id.clone();
    let Submitted::Succeeded { result } = r
        .submit(
            &user,
            "rancher-api-request",
            json!({"operation": "rk.users.get", "params": {"name": me}}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("reads run at once")
    };
    assert_eq!(result.result["metadata"]["name"], json!(me));
    // The standard user's write is forbidden by the server, and the server's words come through.
    r.install(&admin, "create-global-role-binding", Some(Policy::none()))
        .await
        .ok();
    let bob = sim.users().standard[0].clone();
    let err = r
        .submit(
            &user,
            "create-global-role-binding",
            json!({"user": bob.id, "role": "admin"}),
            None,
            false,
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("403") && text.contains("forbidden"), "{text}");
    // Running a workflow that is not installed says how to install it.
    let r2 = runner();
    let err = r2
        .submit(&admin, "list-users", json!({}), None, false)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "workflow `list-users` is not installed; install it with `rancherctl workflows install list-users`"
    );
}

#[tokio::test]
async fn policies_change_only_by_installer_or_admin_and_denials_stop_a_request() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let user = session(&sim, &sim.tokens().user).await;
    let r = runner();
    let inst = r.install(&admin, "delete-global-role-binding", None).await.unwrap();
    assert_eq!(inst.policy, Policy::installer());
    let err = r
        .set_policy(&user, "delete-global-role-binding", Policy::none())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only the installer"), "{err}");
    let changed = r
        .set_policy(
            &approver,
            "delete-global-role-binding",
            Policy::at_least(1, [rancher_approval::ApproverRef::user(admin.principal.id.clone())]),
        )
        .await
        .unwrap();
    assert_ne!(changed.policy, Policy::installer());
    let kinds: Vec<String> = r
        .store()
        .audit_entries()
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{:?}", e.kind))
        .collect();
    assert!(
        kinds.iter().any(|k| k.contains("Policy")),
        "the change is audited: {kinds:?}"
    );

    // Under the new policy the approver asks and the admin denies: nothing runs. (The admin may not decide on a
    // request that targets the admin itself; that is covered by the approval crate.)
    let bob = sim.users().standard[0].clone();
    let Submitted::Pending { request, .. } = r
        .submit(
            &approver,
            "delete-global-role-binding",
            json!({"user": bob.id, "role": "user"}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("approval needed")
    };
    let denied = r.deny(&admin, &request, Some("not today".into())).await.unwrap();
    assert_eq!(denied.state, RequestState::Denied);
    assert_eq!(sim.writes("globalrolebindings", "delete"), 0);
    assert!(
        r.approve(&admin, &request, None).await.is_err(),
        "a denied request cannot be approved later"
    );
}

#[tokio::test]
async fn secrets_in_answers_of_writes_are_never_kept() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    r.install(&admin, "rancher-api-request", Some(Policy::none()))
        .await
        .unwrap();
    let body = json!({"apiVersion": "ext.cattle.io/v1", "kind": "Token", "metadata": {"generateName": "token-"},
                      "spec": {"userPrincipal": {"name": format!("local://{}", admin.principal.id)}, "description": "ci", "ttl": 3_600_000}});
    let Submitted::Succeeded { result } = r
        .submit(
            &admin,
            "rancher-api-request",
            json!({"operation": "rk.tokens.create", "body": body}),
            None,
            false,
        )
        .await
        .unwrap()
    else {
        panic!("runs at once under the none policy")
    };
    assert_eq!(
        result.result["status"]["value"],
        json!(rancher_api::REDACTED),
        "{}",
        result.result
    );
    assert!(result.result["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("token-"));
}

/// Requests filed before the built-ins parsed their inputs into structs hold the inputs as JSON in the store; they
/// must still load and run exactly as approved. The inputs below are stored as literal JSON in the shapes `prepare`
/// has always written (names already pinned to ids, a timed grant's fixed binding name, the generic request's
/// operation, parameters and body), bypassing today's submit.
#[tokio::test]
async fn requests_stored_with_the_json_input_shape_still_execute() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    let (bob, carol) = (sim.users().standard[0].clone(), sim.users().standard[1].clone());
    for wf in [
        "create-global-role-binding",
        "delete-global-role-binding",
        "rancher-api-request",
    ] {
        r.install(&admin, wf, None).await.unwrap();
    }
    let file = |wf: &'static str, inputs: Value, targets: Vec<String>| {
        let (r, admin) = (&r, &admin);
        async move {
            let inst = r.installation(wf).await.unwrap().expect("installed");
            let new = rancher_approval::NewRequest::for_installation(&inst, admin.principal.clone())
                .inputs(inputs, Vec::<String>::new())
                .targets(targets)
                .server(admin.server.clone());
            let req = r.store().create_request(new, chrono::Utc::now()).await.unwrap();
            assert_eq!(req.state, RequestState::Pending, "{wf} waits for approval");
            req.id.to_string()
        }
    };
    let approve = |id: String| {
        let (r, approver) = (&r, &approver);
        async move {
            match r.approve(approver, &id, None).await.unwrap() {
                Approved::Succeeded { result, .. } => *result,
                other => panic!("{id}: {other:?}"),
            }
        }
    };

    // An untimed global role binding, the user pinned to its id.
    let id = file(
        "create-global-role-binding",
        json!({"user": bob.id, "role": "admin"}),
        vec![bob.id.clone()],
    )
    .await;
    let out = approve(id.clone()).await;
    assert_eq!(out.result["created"], json!(true), "{out:?}");
    assert!(sim.has_binding(&bob.id, "admin"));
    assert_eq!(
        out.result["binding"]["metadata"]["name"],
        json!(rancher_workflows::exec::binding_name(&id)),
        "named after the request it executes"
    );

    // Its removal by user and role.
    let id = file(
        "delete-global-role-binding",
        json!({"user": bob.id, "role": "admin"}),
        vec![bob.id.clone()],
    )
    .await;
    let out = approve(id).await;
    assert!(!sim.has_binding(&bob.id, "admin"), "{out:?}");

    // A time-bound grant: the fixed binding name was set when it was filed.
    let id = file(
        "create-global-role-binding",
        json!({"user": carol.id, "role": "admin", "duration": "2h", "binding": "grb-ra-0123456789ab"}),
        vec![carol.id.clone()],
    )
    .await;
    let out = approve(id).await;
    assert!(sim.has_binding(&carol.id, "admin"), "{out:?}");
    assert!(out.grant.is_some(), "the grant is recorded: {out:?}");
    assert!(
        sim.objects("globalrolebindings")
            .iter()
            .any(|b| b["metadata"]["name"] == json!("grb-ra-0123456789ab")),
        "under the name stored with the request"
    );

    // The generic request: an operation with its parameters, as filed.
    let deletes = sim.writes("globalrolebindings", "delete");
    let id = file(
        "rancher-api-request",
        json!({"operation": "rk.globalrolebindings.delete", "params": {"name": "grb-ra-0123456789ab"}}),
        Vec::new(),
    )
    .await;
    let out = approve(id).await;
    assert_eq!(out.workflow, "rancher-api-request");
    assert_eq!(out.summary, "DELETE rk.globalrolebindings.delete done", "{out:?}");
    assert_eq!(sim.writes("globalrolebindings", "delete"), deletes + 1, "sent once");
}

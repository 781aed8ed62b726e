//! Access control end to end against the simulator over HTTPS: discovery without a token, the safe three-step
//! enable (and a failed test that leaves everything off), access modes deciding who may log in, the version
//! matrix refusing before anything is sent, allow/disallow keeping stored secrets, and the switch plan.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rancher_access_tests::{client, runner, session, sim};
use rancher_api::Client;
use rancher_approval::Policy;
use rancher_sim::{RancherVersion, SimHandle};
use rancher_workflows::access::{discover, Generation};
use rancher_workflows::{Approved, Error, RunOutput, Runner, Session, Submitted};
use serde_json::{json, Value};

const ACCESS_WORKFLOWS: &[&str] = &[
    "access-control-status",
    "access-control-enable",
    "access-control-allow",
    "access-control-disallow",
    "access-control-disable",
    "access-control-switch-plan",
    "identities-search",
];

async fn install_all(r: &Runner, s: &Session) {
    for wf in ACCESS_WORKFLOWS {
        r.install(s, wf, Some(Policy::none())).await.unwrap();
    }
}

async fn run(r: &Runner, s: &Session, wf: &str, inputs: Value) -> Result<RunOutput, Error> {
    match r.submit(s, wf, inputs, None, false).await? {
        Submitted::Succeeded { result } => Ok(*result),
        other => panic!("{wf}: expected a result, got {other:?}"),
    }
}

/// An Active Directory config file (`ad.yaml`, owner-only) with a service account, followed by `more` lines.
fn ad_config(dir: &Path, more: &str) -> PathBuf {
    let base = "servers: [ad.example.com]\nserviceAccountUsername: svc\nserviceAccountPassword: svc-S3cret\nuserSearchBase: dc=example,dc=com\n";
    private_file(dir, "ad.yaml", &format!("{base}{more}"))
}

fn private_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn anonymous(sim: &SimHandle) -> Client {
    Client::builder(sim.domain())
        .ca_pem(sim.ca_pem().into_bytes())
        .without_system_roots()
        .build()
        .unwrap()
}

/// Logs in on 1.x with `user:password`; the HTTP status (201 or the refusal).
async fn v1_login(sim: &SimHandle, code: &str) -> u16 {
    match anonymous(sim)
        .call("v1.token.create", &[], Some(json!({"code": code})))
        .await
    {
        Ok(_) => 201,
        Err(e) => e.status().unwrap_or(0),
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn discovery_needs_no_token_on_either_generation() {
    let old = sim(RancherVersion::V1_6, 0).await;
    let d = discover(&anonymous(&old)).await.unwrap();
    assert_eq!(d.generation, Generation::V1);
    assert!(d.security);
    assert_eq!(d.providers[0].id, "local");
    let new = sim(RancherVersion::V2_13, 0).await;
    let d = discover(&anonymous(&new)).await.unwrap();
    assert_eq!(d.generation, Generation::V2);
    assert!(d.providers.iter().any(|p| p.id == "local"), "{:?}", d.providers);
    let d = discover(&anonymous(&sim(RancherVersion::V2_8, 0).await)).await.unwrap();
    assert_eq!(
        d.generation,
        Generation::V2,
        "2.8 has no /v1-public: the /v3-public fallback answers"
    );
}

#[tokio::test]
async fn legacy_safe_enable_modes_allow_and_disallow() {
    let sim = sim(RancherVersion::V1_6, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    assert!(admin.is_legacy() && admin.is_admin, "1.x session: admin account");
    let r = runner();
    install_all(&r, &admin).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = private_file(
        dir.path(),
        "ad.json",
        r#"{"server": "ad.example.com", "port": 389, "domain": "dc=example,dc=com", "serviceAccountUsername": "svc-rancher", "serviceAccountPassword": "svc-S3cret!"}"#,
    );
    let good = private_file(dir.path(), "jdoe.pw", "jdoe-password\n");
    let wrong = private_file(dir.path(), "wrong.pw", "not-the-password\n");

    let st = run(&r, &admin, "access-control-status", json!({})).await.unwrap();
    assert!(st.summary.contains("on with local"), "{}", st.summary);

    // Another provider is on: enabling refuses and points at the switch plan.
    let enable = |pw: &Path, mode: &str| json!({"provider": "activedirectory", "config": s(&cfg), "mode": mode, "allow": "Domain Admins", "test-user": "jdoe", "test-password-file": s(pw)});
    let e = run(&r, &admin, "access-control-enable", enable(&good, "restricted"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("switch-plan --to activedirectory"), "{e}");

    let plan = run(
        &r,
        &admin,
        "access-control-switch-plan",
        json!({"to": "activedirectory"}),
    )
    .await
    .unwrap();
    assert_eq!(
        plan.result["accounts"].as_array().unwrap().len(),
        4,
        "every local account must be re-mapped: {}",
        plan.result
    );
    assert!(
        plan.summary.contains("2 admins") && plan.summary.contains("advises against"),
        "{}",
        plan.summary
    );

    let off = run(&r, &admin, "access-control-disable", json!({})).await.unwrap();
    assert!(off.summary.contains("access control is OFF"), "{}", off.summary);

    // A failed test stops after saving disabled settings: access control stays off, the admin keeps working.
    let e = run(&r, &admin, "access-control-enable", enable(&wrong, "restricted"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TestFailed(_)), "{e}");
    assert!(e.to_string().contains("still disabled, so nobody is locked out"), "{e}");
    assert!(
        !discover(&anonymous(&sim)).await.unwrap().security,
        "still off after the failed test"
    );
    let st = run(&r, &admin, "access-control-status", json!({})).await.unwrap();
    assert!(st.summary.contains("OFF"), "the admin still gets in: {}", st.summary);

    // The safe enable: the tester (jdoe) takes over the admin account, so nobody is locked out.
    let on = run(&r, &admin, "access-control-enable", enable(&good, "restricted"))
        .await
        .unwrap();
    assert_eq!(on.result["tested_as"]["kind"], json!("admin"), "{}", on.result);
    let d = discover(&anonymous(&sim)).await.unwrap();
    assert!(d.security && d.providers[0].id == "activedirectory", "{d:?}");
    let allowed: Vec<&str> = on.result["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        allowed.iter().any(|a| a.contains("Domain Admins")) && allowed.iter().any(|a| a.contains("John Doe")),
        "{allowed:?}"
    );

    // restricted: allowed identities plus environment members (Anna is a member); Min is neither.
    assert_eq!(
        v1_login(&sim, "asmith:asmith-password").await,
        201,
        "restricted lets a project member in"
    );
    assert_eq!(v1_login(&sim, "mlee:mlee-password").await, 403);

    // From now on act as jdoe, through AD.
    let jdoe_jwt = anonymous(&sim)
        .call("v1.token.create", &[], Some(json!({"code": "jdoe:jdoe-password"})))
        .await
        .unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_string();
    let jdoe = session(&sim, &jdoe_jwt).await;
    assert!(jdoe.is_admin, "the enabling identity is admin");

    let found = run(&r, &jdoe, "identities-search", json!({"name": "min"}))
        .await
        .unwrap();
    assert!(
        found
            .result
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"].as_str().unwrap().starts_with("ldap_user:CN=Min Lee")),
        "{}",
        found.result
    );

    // required: only allowed identities; a member must be allowed too.
    let allow = run(
        &r,
        &jdoe,
        "access-control-allow",
        json!({"identities": "Min Lee", "mode": "required"}),
    )
    .await
    .unwrap();
    assert!(allow.summary.contains("stored secrets kept"), "{}", allow.summary);
    assert_eq!(v1_login(&sim, "mlee:mlee-password").await, 201);
    assert_eq!(
        v1_login(&sim, "asmith:asmith-password").await,
        403,
        "required does not let a mere member in"
    );

    // Secrets were sent as null and kept.
    let stored = sim
        .objects("providerconfigs")
        .into_iter()
        .find(|c| c["path"] == "ldapconfig")
        .unwrap();
    assert_eq!(stored["serviceAccountPassword"], json!("svc-S3cret!"));
    assert_eq!(stored["accessMode"], json!("required"));

    // Disallowing every identity jdoe logs in with would lock them out: refused, nothing sent.
    let e = run(
        &r,
        &jdoe,
        "access-control-disallow",
        json!({"identities": "Domain Admins,John Doe,Engineering"}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("would lock you out"), "{e}");
    let out = run(&r, &jdoe, "access-control-disallow", json!({"identities": "mlee"}))
        .await
        .unwrap();
    assert_eq!(out.result["changed"].as_array().unwrap().len(), 1, "{}", out.result);
    assert_eq!(v1_login(&sim, "mlee:mlee-password").await, 403);
    let stored = sim
        .objects("providerconfigs")
        .into_iter()
        .find(|c| c["path"] == "ldapconfig")
        .unwrap();
    assert_eq!(
        stored["serviceAccountPassword"],
        json!("svc-S3cret!"),
        "still kept after disallow"
    );
}

#[tokio::test]
async fn the_version_matrix_refuses_before_anything_is_sent() {
    let sim = sim(RancherVersion::V1_6, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    install_all(&r, &admin).await;
    r.set_policy(&admin, "access-control-enable", Policy::installer())
        .await
        .unwrap();
    run(&r, &admin, "access-control-disable", json!({})).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pw = private_file(dir.path(), "pw", "jdoe-password");
    sim.clear_request_log();
    let e = r
        .submit(
            &admin,
            "access-control-enable",
            json!({"provider": "azuread", "mode": "restricted", "test-user": "jdoe", "test-password-file": s(&pw)}),
            None,
            false,
        )
        .await
        .unwrap_err()
        .to_string();
    // (OpenLDAP offers restricted/required on 1.6: rancher/cattle OpenLDAPConfigManager; Azure AD never did in 1.x.)
    assert!(
        e.starts_with("Azure AD offers only `unrestricted` on Rancher 1.x"),
        "{e}"
    );
    assert!(
        sim.request_log().iter().all(|q| q.method == "GET"),
        "nothing written: {:?}",
        sim.request_log()
    );
    assert!(
        r.list(None)
            .await
            .unwrap()
            .iter()
            .all(|q| q.workflow_id != "access-control-enable"),
        "no approval request was filed"
    );

    // A dry run shows the three steps with every secret masked, and writes nothing.
    let cfg = private_file(dir.path(), "gh.yaml", "clientId: abc123\nclientSecret: gh-S3cret\n");
    let code = private_file(dir.path(), "code", "octocat:octocat-password");
    let out = match r
        .submit(
            &admin,
            "access-control-enable",
            json!({"provider": "github", "config": s(&cfg), "mode": "required", "test-code-file": s(&code)}),
            None,
            true,
        )
        .await
        .unwrap()
    {
        Submitted::Succeeded { result } => *result,
        other => panic!("{other:?}"),
    };
    let planned = serde_json::to_string(&out.planned).unwrap();
    assert_eq!(out.planned.len(), 3, "{planned}");
    assert!(
        !planned.contains("gh-S3cret") && !planned.contains("octocat-password"),
        "{planned}"
    );
    assert!(
        sim.objects("providerconfigs")
            .iter()
            .all(|c| c["enabled"] == json!(false)),
        "dry run changed nothing"
    );
}

#[tokio::test]
async fn an_approved_enable_runs_once_with_files_read_at_execution() {
    let sim = sim(RancherVersion::V1_6, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    install_all(&r, &admin).await;
    r.set_policy(&admin, "access-control-enable", Policy::installer())
        .await
        .unwrap();
    run(&r, &admin, "access-control-disable", json!({})).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = private_file(
        dir.path(),
        "gh.json",
        r#"{"clientId": "abc123", "clientSecret": "gh-S3cret", "hostname": "github.example.com"}"#,
    );
    let code = private_file(dir.path(), "code", "octocat:octocat-password");
    let inputs = json!({"provider": "github", "config": s(&cfg), "mode": "restricted", "test-code-file": s(&code)});
    let Submitted::Pending { request, .. } = r
        .submit(
            &approver,
            "access-control-enable",
            inputs,
            Some("move to GitHub".into()),
            false,
        )
        .await
        .unwrap()
    else {
        panic!("installer approval by default")
    };
    let stored = serde_json::to_string(&r.get(&request).await.unwrap()).unwrap();
    assert!(
        !stored.contains("gh-S3cret") && !stored.contains("octocat-password"),
        "no secret in the store: {stored}"
    );
    sim.clear_request_log();
    match r.approve(&admin, &request, None).await.unwrap() {
        Approved::Succeeded { result, .. } => assert!(
            result.summary.contains("GitHub is on in mode restricted"),
            "{}",
            result.summary
        ),
        other => panic!("{other:?}"),
    }
    // On 1.2+ GitHub is saved through the auth service (`/v1-auth/config`), never cattle's old `/v1/githubconfig`.
    let log = sim.request_log();
    assert_eq!(
        log.iter()
            .filter(|q| q.method == "POST" && q.path == "/v1-auth/config")
            .count(),
        2,
        "saved disabled, then enabled: {log:?}"
    );
    assert!(log.iter().all(|q| !q.path.starts_with("/v1/githubconfig")), "{log:?}");
    assert!(
        r.approve(&admin, &request, None).await.is_err(),
        "a second approval does not run it again"
    );
    let d = discover(&anonymous(&sim)).await.unwrap();
    assert_eq!(d.providers[0].id, "github");
    assert_eq!(d.public.hostname.as_deref(), Some("github.example.com"));
}

#[tokio::test]
async fn rancher_2_enable_allow_plan_and_disable() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    install_all(&r, &admin).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ad_config(dir.path(), "");
    let good = private_file(dir.path(), "pw", "jdoe-password");
    let wrong = private_file(dir.path(), "bad", "nope");
    let inputs = |pw: &Path| json!({"provider": "ad", "config": s(&cfg), "mode": "required", "allow": "Engineering", "test-user": "jdoe", "test-password-file": s(pw)});

    let e = run(&r, &admin, "access-control-enable", inputs(&wrong))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TestFailed(_)), "{e}");
    assert_eq!(
        sim.object("authconfigs", "activedirectory").unwrap()["enabled"],
        json!(false),
        "left off"
    );

    let on = run(&r, &admin, "access-control-enable", inputs(&good)).await.unwrap();
    let allowed = on.result["allowed"].to_string();
    assert!(
        allowed.contains("activedirectory_user://CN=John Doe")
            && allowed.contains("activedirectory_group://CN=Engineering"),
        "{allowed}"
    );
    let st = run(&r, &admin, "access-control-status", json!({})).await.unwrap();
    assert!(st.summary.contains("on with activedirectory"), "{}", st.summary);

    let found = run(&r, &admin, "identities-search", json!({"name": "anna", "type": "user"}))
        .await
        .unwrap();
    assert_eq!(found.result.as_array().unwrap().len(), 1, "{}", found.result);
    run(&r, &admin, "access-control-allow", json!({"identities": "Anna Smith"}))
        .await
        .unwrap();
    run(
        &r,
        &admin,
        "access-control-disallow",
        json!({"identities": "Engineering"}),
    )
    .await
    .unwrap();
    let stored = sim.object("authconfigs", "activedirectory").unwrap();
    assert_eq!(
        stored["serviceAccountPassword"],
        json!("svc-S3cret"),
        "secrets kept: {stored}"
    );
    let ids = stored["allowedPrincipalIds"].to_string();
    assert!(ids.contains("Anna Smith") && !ids.contains("Engineering"), "{ids}");

    let plan = run(&r, &admin, "access-control-switch-plan", json!({"to": "github"}))
        .await
        .unwrap();
    let users = plan.result["users"].as_array().unwrap();
    assert!(
        users
            .iter()
            .any(|u| u["id"] == json!(admin.principal.id) && u["admin"] == json!(true)),
        "the admin got the AD principal: {}",
        plan.result
    );

    let off = run(&r, &admin, "access-control-disable", json!({})).await.unwrap();
    assert!(off.summary.starts_with("disabled Active Directory"), "{}", off.summary);
    // Rancher resets a disabled provider's config to its type and metadata (`enabled` goes too: false).
    assert_ne!(
        sim.object("authconfigs", "activedirectory").unwrap()["enabled"],
        json!(true)
    );
    let again = run(&r, &admin, "access-control-disable", json!({})).await.unwrap();
    assert!(again.summary.starts_with("nothing to disable"), "{}", again.summary);
    let _ = client(&sim, &sim.tokens().admin);
}

async fn dry_run(r: &Runner, s: &Session, wf: &str, inputs: Value) -> RunOutput {
    match r.submit(s, wf, inputs, None, true).await.unwrap() {
        Submitted::Succeeded { result } => *result,
        other => panic!("{wf}: expected a dry run, got {other:?}"),
    }
}

/// The one provider-config write a dry run planned (method, path, body).
fn planned_save(out: &RunOutput) -> &Value {
    let saves: Vec<_> = out.planned.iter().filter(|p| p.method != "GET").collect();
    assert_eq!(saves.len(), 1, "one save planned: {:?}", out.planned);
    saves[0].body.as_ref().expect("a body")
}

/// A field the generated types do not name (set by a newer server, or another tool) goes back to the server as it
/// was read on every read-modify-write, on both generations, and secrets go back `null`.
#[tokio::test]
async fn a_field_the_types_do_not_name_survives_enable_allow_and_disable() {
    // Rancher 2.x.
    let sim2 = sim(RancherVersion::V2_13, 0).await;
    let admin = session(&sim2, &sim2.tokens().admin).await;
    let r = runner();
    install_all(&r, &admin).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ad_config(dir.path(), "futureSetting: {keep: me}\n");
    let pw = private_file(dir.path(), "pw", "jdoe-password");
    let on = json!({"provider": "ad", "config": s(&cfg), "mode": "required", "allow": "Engineering", "test-user": "jdoe", "test-password-file": s(&pw)});
    run(&r, &admin, "access-control-enable", on).await.unwrap();
    assert_eq!(
        sim2.object("authconfigs", "activedirectory").unwrap()["futureSetting"],
        json!({"keep": "me"}),
        "saved with the settings"
    );
    let plan = dry_run(&r, &admin, "access-control-allow", json!({"identities": "Anna Smith"})).await;
    let body = planned_save(&plan);
    assert_eq!(
        body["futureSetting"],
        json!({"keep": "me"}),
        "sent back as read: {body}"
    );
    assert_eq!(body["servers"], json!(["ad.example.com"]), "{body}");
    assert!(
        body.get("links").is_none() && body.get("baseType").is_none(),
        "bookkeeping dropped: {body}"
    );
    run(&r, &admin, "access-control-allow", json!({"identities": "Anna Smith"}))
        .await
        .unwrap();
    run(&r, &admin, "access-control-disable", json!({})).await.unwrap();
    // Rancher 2.x resets a disabled provider's settings (rancher/rancher pkg/controllers/management/auth/
    // auth_config.go `resetAuthConfig`): nothing of them, known or not, survives a disable.
    let stored = sim2.object("authconfigs", "activedirectory").unwrap();
    assert!(stored.get("futureSetting").is_none(), "{stored}");
    assert!(stored.get("serviceAccountPassword").is_none(), "{stored}");

    // Rancher 1.x: local auth is on; its config goes back whole on disable.
    let sim1 = sim(RancherVersion::V1_6, 0).await;
    let admin = session(&sim1, &sim1.tokens().admin).await;
    let r = runner();
    install_all(&r, &admin).await;
    let ad = private_file(
        dir.path(),
        "ad.json",
        r#"{"server": "ad.example.com", "serviceAccountUsername": "svc", "serviceAccountPassword": "svc-S3cret!", "futureSetting": 7}"#,
    );
    let good = private_file(dir.path(), "jdoe.pw", "jdoe-password\n");
    run(&r, &admin, "access-control-disable", json!({})).await.unwrap();
    let on = json!({"provider": "activedirectory", "config": s(&ad), "mode": "unrestricted", "test-user": "jdoe", "test-password-file": s(&good)});
    run(&r, &admin, "access-control-enable", on).await.unwrap();
    let jwt = anonymous(&sim1)
        .call("v1.token.create", &[], Some(json!({"code": "jdoe:jdoe-password"})))
        .await
        .unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_string();
    let jdoe = session(&sim1, &jwt).await;
    let plan = dry_run(&r, &jdoe, "access-control-disable", json!({})).await;
    let body = planned_save(&plan);
    assert_eq!(body["futureSetting"], json!(7), "sent back as read: {body}");
    assert_eq!(body["server"], json!("ad.example.com"), "{body}");
    assert_eq!(body["enabled"], json!(false), "{body}");
    assert!(
        body.get("serviceAccountPassword").is_some_and(Value::is_null),
        "the secret goes back null (kept): {body}"
    );
    run(&r, &jdoe, "access-control-disable", json!({})).await.unwrap();
    let stored = sim1
        .objects("providerconfigs")
        .into_iter()
        .find(|c| c["path"] == "ldapconfig")
        .unwrap();
    assert_eq!(stored["futureSetting"], json!(7), "{stored}");
    assert_eq!(stored["serviceAccountPassword"], json!("svc-S3cret!"), "{stored}");
}

/// A crash after the claim: reconcile reads the server to settle the request, applied or not.
#[tokio::test]
async fn a_crashed_access_change_is_settled_by_reading_the_server() {
    use rancher_approval::{Decision, EligibilityContext, RequestId, RequestState};
    let sim = sim(RancherVersion::V1_6, 0).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    install_all(&r, &admin).await;
    r.set_policy(&admin, "access-control-disable", Policy::installer())
        .await
        .unwrap();
    let store = r.store().clone();
    let crashed = |applied: bool| {
        let (r, admin, approver, store) = (&r, &admin, &approver, store.clone());
        async move {
            let Submitted::Pending { request, .. } = r
                .submit(approver, "access-control-disable", json!({}), None, false)
                .await
                .unwrap()
            else {
                panic!("pending")
            };
            let id: RequestId = request.parse().unwrap();
            let ctx = EligibilityContext::with_fallback_approvers(admin.admin_user_ids().await.unwrap());
            store
                .decide(
                    &id,
                    &admin.principal,
                    Decision::approve().through(admin.server.clone()),
                    &ctx,
                    chrono::Utc::now(),
                )
                .await
                .unwrap();
            // A lease that has already run out: the crashed executor is gone.
            let crashed =
                rancher_approval::Executor::new(admin.principal.id.clone(), "crashed").on(admin.server.clone());
            store
                .claim_execution(&id, &crashed, chrono::Utc::now(), chrono::Utc::now())
                .await
                .unwrap();
            if applied {
                // The executor reached the server, then died before recording the outcome.
                let def = rancher_workflows::find_workflow("access-control-disable").unwrap();
                rancher_workflows::Exec::new(admin, false)
                    .run(def, &json!({}))
                    .await
                    .unwrap();
            }
            id
        }
    };
    let not_applied = crashed(false).await;
    let settled = r.reconcile(&admin).await.unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(
        r.get(not_applied.as_str()).await.unwrap().state,
        RequestState::Succeeded,
        "local auth was still on: not applied, so the taken-over claim ran it, once"
    );
    let applied = crashed(true).await;
    r.reconcile(&admin).await.unwrap();
    assert_eq!(
        r.get(applied.as_str()).await.unwrap().state,
        RequestState::Succeeded,
        "access control is off: applied"
    );
    let audit = serde_json::to_string(&store.audit_entries().await.unwrap()).unwrap_or_default();
    assert!(
        audit.contains("the change is on the server"),
        "the settlement is audited"
    );
}

//! The example workflow through the real runner against rancher-sim over HTTPS: registered next to the built-ins,
//! installed by an admin, submitted (it waits), approved by a second admin, run exactly once, audited.

use rancher_access_tests::{runner, session, sim};
use rancher_sim::RancherVersion;
use rancher_workflows::approval::RequestState;
use rancher_workflows::{Approved, Submitted};
use serde_json::json;

#[tokio::test]
async fn disable_user_runs_once_after_a_second_admins_approval() {
    let sim = sim(RancherVersion::V2_13, 10).await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner().with_registry(custom_workflow::registry());
    assert!(r.registry().defs().iter().any(|d| d.id == "disable-user"));
    r.install(&admin, "disable-user", None)
        .await
        .expect("an admin installs it (installer approval)");

    let bob = sim.users().standard[0].clone();
    // A dry run sends nothing and shows the typed request it would send.
    let Submitted::Succeeded { result } = r
        .submit(&admin, "disable-user", json!({"user": bob.username}), None, true)
        .await
        .unwrap()
    else {
        panic!("a dry run runs")
    };
    assert_eq!(result.planned.len(), 1);
    assert_eq!(
        (result.planned[0].method.as_str(), result.planned[0].path.as_str()),
        (
            "PATCH",
            format!("/apis/management.cattle.io/v3/users/{}", bob.id).as_str()
        )
    );
    assert_eq!(result.planned[0].body, Some(json!({"enabled": false})));
    assert_eq!(sim.writes("users", "patch"), 0);

    // Submitted by the installer: it waits, pinned to bob's id.
    let Submitted::Pending { request, .. } = r
        .submit(&admin, "disable-user", json!({"user": bob.username}), None, false)
        .await
        .unwrap()
    else {
        panic!("a write waits for approval")
    };
    let stored = r.get(&request).await.unwrap();
    assert_eq!(
        stored.inputs,
        json!({"user": bob.id}),
        "the name is pinned to the id at submit"
    );
    assert_eq!(stored.state, RequestState::Pending);
    let user = sim.object("users", &bob.id).unwrap();
    assert_ne!(user["enabled"], json!(false));

    // The installer may not approve their own request; a second admin does, and it runs once.
    assert!(
        r.approve(&admin, &request, None).await.is_err(),
        "the requester cannot approve"
    );
    match r.approve(&approver, &request, None).await.unwrap() {
        Approved::Succeeded { result, .. } => assert!(result.summary.starts_with("disabled"), "{}", result.summary),
        other => panic!("expected it to run, got {other:?}"),
    }
    assert_eq!(sim.object("users", &bob.id).unwrap()["enabled"], json!(false));
    assert_eq!(sim.writes("users", "patch"), 1);

    // Approving again does not run it again.
    let again = r.approve(&approver, &request, None).await;
    assert!(!matches!(again, Ok(Approved::Succeeded { .. })), "{again:?}");
    assert_eq!(sim.writes("users", "patch"), 1, "exactly once");
    let done = r.get(&request).await.unwrap();
    assert_eq!(done.state, RequestState::Succeeded);

    // Disabling yourself is refused before anything is filed.
    let me = admin.principal.id.clone();
    let e = r
        .submit(&admin, "disable-user", json!({"user": me}), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("lockout"), "{e}");
}

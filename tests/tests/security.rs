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
        let e = direct.call("rk.users.delete", &[("name", value)], None).await.unwrap_err();
        assert!(e.to_string().contains("collection"), "{e}");
        let e = direct.call("rk.globalrolebindings.delete", &[("name", value)], None).await.unwrap_err();
        assert!(e.to_string().contains("collection"), "{e}");
    }

    let r = runner();
    r.install(&admin, "rancher-api-request", None).await.unwrap();
    let e = r
        .submit(&admin, "rancher-api-request", json!({"operation": "rk.globalrolebindings.delete", "params": {"name": "."}}), None, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("collection"), "refused at submit, before a request is filed: {e}");
    assert!(r.list(None).await.unwrap().is_empty(), "no request was filed");
    // The dry run shows the refusal too, never a harmless-looking path.
    let e = r
        .submit(&admin, "rancher-api-request", json!({"operation": "rk.users.delete", "params": {"name": ".."}}), None, true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("collection"), "{e}");

    r.install(&admin, "create-global-role-binding", Some(Policy::installer())).await.unwrap();
    let bob = &sim.users().standard[1];
    for role in [".", ".."] {
        let e = r.submit(&admin, "create-global-role-binding", json!({"user": bob.username, "role": role}), None, false).await.unwrap_err();
        assert!(e.to_string().contains(role), "the role `{role}` does not pass the existence check: {e}");
    }

    assert_eq!((sim.count("globalrolebindings"), sim.count("users")), (bindings, users), "nothing was deleted or created");
    assert_eq!(sim.writes("globalrolebindings", "delete") + sim.writes("users", "delete"), 0);
}

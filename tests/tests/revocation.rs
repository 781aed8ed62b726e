//! Revocation on time (issue 32): the service's timer revokes a time-bound grant at its due time, with two replicas
//! sharing one store, once. The periodic sweep is set far apart here, so only the timer can be on time.

use std::sync::Arc;
use std::time::Duration;

use rancher_access_tests::server::{config, service_account, start};
use rancher_access_tests::{session, sim};
use rancher_approval::{AuditKind, GrantFilter, MemoryStore, Policy, Store};
use rancher_sim::RancherVersion;
use rancher_workflows::{Runner, Submitted};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_second_grant_is_revoked_on_time_once_with_two_replicas() {
    let sim = sim(RancherVersion::V2_13, 0).await;
    let svc = service_account(&sim).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(store.clone(), "cli");
    r.install(&admin, "grant-project-role", Some(Policy::none()))
        .await
        .unwrap();
    // Two replicas on one store; the sweep every ten minutes (it runs once at start, before anything is granted).
    let sweep = Duration::from_secs(600);
    let a = start(config(&sim, &svc, store.clone()).job_interval(sweep)).await;
    let b = start(config(&sim, &svc, store.clone()).job_interval(sweep)).await;

    let user = sim.users().standard[1].clone();
    let inputs = json!({"project": "downstream/Default", "user": user.username, "role": "read-only", "duration": "6s"});
    let Submitted::Succeeded { result } = r
        .submit(&admin, "grant-project-role", inputs, None, false)
        .await
        .unwrap()
    else {
        panic!("no approval needed")
    };
    assert_eq!(result.result["created"], json!(true), "{}", result.summary);
    let g = store
        .list_grants(&GrantFilter::all())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.granted.subject == user.id)
        .expect("the grant is recorded");
    let binding = g.granted.binding.clone();
    let due_ms = g.due_at.timestamp_millis();

    // Wait for the revocation (well past the 2 s bound: a late one is measured below, not timed out here).
    let mut revoked = None;
    for _ in 0..200 {
        let now = store.get_grant(&g.id).await.unwrap();
        if now.revocation.is_some() {
            revoked = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revoked = revoked.unwrap_or_else(|| panic!("grant {} still not revoked 20 s after it was granted (6 s)", g.id));
    // One more beat, so a second replica's late duplicate would show.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Measured at the simulator: when the binding's DELETE was answered.
    let deletes: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|rec| rec.method == "DELETE" && rec.path.contains(&binding))
        .collect();
    assert_eq!(deletes.len(), 1, "the binding is deleted once: {deletes:?}");
    eprintln!("revoked {} ms after its due time", deletes[0].at_ms - due_ms);
    assert!(deletes[0].status < 300, "the delete succeeded: {:?}", deletes[0]);
    let lag_ms = deletes[0].at_ms - due_ms;
    assert!(lag_ms >= 0, "revoked {} ms before its due time", -lag_ms);
    assert!(
        lag_ms <= 2_000,
        "revoked {lag_ms} ms after its due time (the bound is 2 s)"
    );

    // Only this grant exists, so every grant.revoked entry is its.
    let audit = store.audit_entries().await.unwrap();
    let entries: Vec<_> = audit.iter().filter(|e| e.kind == AuditKind::GrantRevoked).collect();
    assert_eq!(entries.len(), 1, "one grant.revoked entry: {entries:?}");
    assert_eq!(revoked.revocation.as_ref().map(|r| r.by.as_str()), Some("system"));
    a.shutdown().await;
    b.shutdown().await;
}

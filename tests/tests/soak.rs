//! A soak: 64 workflows at once, over and over (lists, creates and deletes, approval round trips) against
//! rancher-sim, with no error and flat memory (VmRSS from /proc/self/status, sampled as the runs go).
//!
//! The test suite runs a bounded version (a few rounds, seconds). `RANCHER_SOAK_SECS=300 cargo test -p
//! rancher-access-tests --test soak -- --nocapture` runs it for that long and prints the RSS samples.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rancher_access_tests::client_builder;
use rancher_approval::{Policy, RequestFilter, RequestState, SqliteStore};
use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator};
use rancher_workflows::{Approved, Runner, Session, Submitted};
use serde_json::json;

const WORKERS: usize = 64;
/// Rounds per worker in the bounded version.
const ROUNDS: usize = 4;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn session(sim: &SimHandle, token: &str) -> Session {
    Session::open(client_builder(sim, token).page_size(50).build().expect("client"))
        .await
        .expect("session")
}

/// One workflow run of worker `w` in round `round`; panics on any error.
async fn one_run(
    w: usize,
    round: usize,
    user: &str,
    direct: &Runner,
    approvals: &Runner,
    admin: &Session,
    approver: &Session,
) {
    let ok = |out: Result<Submitted, rancher_workflows::Error>, what: &str| match out {
        Ok(Submitted::Succeeded { result }) => result,
        other => panic!("worker {w} round {round}: {what}: {other:?}"),
    };
    let binding = json!({"user": user, "role": "clusters-create"});
    match (w + round) % 4 {
        0 => {
            let out = ok(
                direct.submit(admin, "list-users", json!({}), None, false).await,
                "list-users",
            );
            assert!(out.result.as_array().is_some_and(|a| a.len() > WORKERS));
        }
        1 => {
            ok(
                direct
                    .submit(admin, "list-global-role-bindings", json!({}), None, false)
                    .await,
                "list-global-role-bindings",
            );
        }
        2 => {
            let out = ok(
                direct
                    .submit(admin, "create-global-role-binding", binding.clone(), None, false)
                    .await,
                "create",
            );
            assert_eq!(out.result["created"], json!(true), "worker {w}: {}", out.summary);
            ok(
                direct
                    .submit(admin, "delete-global-role-binding", binding, None, false)
                    .await,
                "delete",
            );
        }
        _ => {
            let request = match approvals
                .submit(admin, "create-global-role-binding", binding.clone(), None, false)
                .await
            {
                Ok(Submitted::Pending { request, .. }) => request,
                other => panic!("worker {w} round {round}: submit: {other:?}"),
            };
            match approvals.approve(approver, &request, None).await {
                Ok(Approved::Succeeded { .. }) => {}
                other => panic!("worker {w} round {round}: approve: {other:?}"),
            }
            ok(
                direct
                    .submit(admin, "delete-global-role-binding", binding, None, false)
                    .await,
                "delete",
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_workflows_without_errors_and_with_flat_memory() {
    let soak_for = std::env::var("RANCHER_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let sim = Arc::new(
        Simulator::start(
            SimConfig::default()
                .rancher_version(RancherVersion::V2_13)
                .users(WORKERS + 4)
                .seed(64)
                .port(0),
        )
        .await
        .expect("simulator starts"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("approvals.db")).expect("store"));
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let direct = Runner::new(store.clone(), "soak-direct");
    for wf in [
        "list-users",
        "list-global-role-bindings",
        "create-global-role-binding",
        "delete-global-role-binding",
    ] {
        direct
            .install(&admin, wf, Some(Policy::none()))
            .await
            .expect("installs");
    }
    // The approval runs use their own installation (installer approval) in a second store file.
    let approvals = Runner::new(
        Arc::new(SqliteStore::open(dir.path().join("approvals-2.db")).expect("store")),
        "soak-approvals",
    );
    approvals
        .install(&admin, "create-global-role-binding", None)
        .await
        .expect("installs");
    let users: Vec<String> = (1..=WORKERS)
        .map(|i| sim.user_id(&format!("user{i:05}")).expect("user"))
        .collect();

    let runs = Arc::new(AtomicUsize::new(0));
    let samples: Arc<Mutex<Vec<(usize, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, user) in users.iter().cloned().enumerate() {
        let (direct, approvals, admin, approver) = (direct.clone(), approvals.clone(), admin.clone(), approver.clone());
        let (runs, samples, sim) = (runs.clone(), samples.clone(), sim.clone());
        tasks.push(tokio::spawn(async move {
            let mut round = 0;
            loop {
                let more = match soak_for {
                    Some(d) => started.elapsed() < d,
                    None => round < ROUNDS,
                };
                if !more {
                    break;
                }
                one_run(w, round, &user, &direct, &approvals, &admin, &approver).await;
                round += 1;
                let n = runs.fetch_add(1, Ordering::Relaxed) + 1;
                if n % WORKERS == 0 {
                    // The simulator's own request log grows with every request; it is not the client's memory.
                    sim.clear_request_log();
                    samples.lock().expect("samples").push((n, rss_kib()));
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a worker failed");
    }
    let took = started.elapsed();
    let total = runs.load(Ordering::Relaxed);

    // No errors (each run asserted its own), nothing left behind, every approval executed once.
    for user in &users {
        assert!(!sim.has_binding(user, "clusters-create"), "{user} kept a binding");
    }
    let reqs = approvals
        .store()
        .list_requests(&RequestFilter::all())
        .await
        .expect("requests");
    assert!(
        reqs.iter().all(|r| r.state == RequestState::Succeeded),
        "every approved request ran once"
    );
    assert_eq!(
        sim.writes("globalrolebindings", "create") as usize,
        sim.writes("globalrolebindings", "delete") as usize
    );
    approvals.store().verify_audit().await.expect("audit chain");

    // Memory: after the first rounds (pools, caches, the store warmed up), RSS stays flat.
    let samples = samples.lock().expect("samples").clone();
    assert!(samples.len() >= 4, "{samples:?}");
    let warm = samples[samples.len() / 4].1;
    let end = samples.last().expect("a sample").1;
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    eprintln!(
        "soak: {WORKERS} workers, {total} runs in {:.1} s ({} approval round trips); RSS KiB: first {}, warm {warm}, end {end}, peak {peak}; samples {:?}",
        took.as_secs_f64(),
        reqs.len(),
        samples[0].1,
        samples.iter().map(|s| s.1).collect::<Vec<_>>()
    );
    // Generous: allocator noise is allowed, a leak per run is not (a leaked page per run would add megabytes).
    let slack = (warm / 4).max(24 * 1024);
    assert!(
        end <= warm + slack,
        "RSS grew from {warm} KiB (warm) to {end} KiB (end) over {total} runs"
    );
}

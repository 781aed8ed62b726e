//! Case 4: durable approval decisions per second in the SQLite store, with `synchronous = FULL` (the default:
//! a decision survives a power loss once acknowledged) and `NORMAL`.

use std::time::Instant;

use anyhow::{ensure, Result};
use chrono::Utc;
use rancher_approval::{
    Decision, EligibilityContext, NewRequest, Policy, Principal, RequestState, SqliteOptions,
    SqliteStore, Store, Synchronous,
};

use crate::harness::temp_dir_in;
use crate::stats::{Figure, Unit};
use crate::Options;

/// Decisions per second over `n` pending requests decided one after another, each its own transaction.
fn decisions_per_second(opts: &Options, sync: Synchronous, n: usize) -> Result<f64> {
    // On the work directory's file system (a real disk), not a RAM disk: the point is the fsync.
    let dir = temp_dir_in(&opts.work_dir, "approvals-")?;
    let store = SqliteStore::open_with(
        dir.path().join("approvals.db"),
        SqliteOptions {
            synchronous: sync,
            ..SqliteOptions::default()
        },
    )?;
    let alice = Principal::new("u-alice").with_username("alice");
    let bob = Principal::new("u-bob").with_username("bob");
    let now = Utc::now();
    let installation = store.install(
        "create-global-role-binding",
        &alice,
        Policy::installer(),
        now,
    )?;
    let ids: Vec<_> = (0..n)
        .map(|i| {
            let new = NewRequest::for_installation(&installation, bob.clone()).inputs(
                serde_json::json!({"user": format!("u-{i:05}"), "role": "admin"}),
                ["token"],
            );
            store.create_request(new, now).map(|r| r.id)
        })
        .collect::<rancher_approval::Result<_>>()?;
    let ctx = EligibilityContext::default();
    let start = Instant::now();
    for id in &ids {
        let out = store.decide(id, &alice, Decision::approve(), &ctx, now)?;
        ensure!(
            out.request.state == RequestState::Approved,
            "a decision left the request {:?}",
            out.request.state
        );
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(n as f64 / secs)
}

/// Runs the case: `n` decisions per run, for both settings.
pub fn run(opts: &Options, n: usize) -> Result<Vec<Figure>> {
    let runs = opts.runs();
    let mut figures = Vec::new();
    for (key, sync, what) in [
        ("approvals.full", Synchronous::Full, "FULL (default)"),
        ("approvals.normal", Synchronous::Normal, "NORMAL"),
    ] {
        let samples = (0..runs)
            .map(|_| decisions_per_second(opts, sync, n))
            .collect::<Result<Vec<_>>>()?;
        figures.push(
            Figure::new(
                key,
                4,
                format!("approval decisions, SQLite WAL, synchronous={what}"),
                Unit::PerSecond,
                samples,
            )
            .with_note(format!(
                "{n} approvals per run, one transaction each, with its audit entry"
            )),
        );
    }
    Ok(figures)
}

//! Records many durable decisions in a fresh SQLite store and prints the rate.
//!
//! `cargo run --release -p rancher-approval --example store_decisions -- [DECISIONS] [full|normal]`

use std::time::Instant;

use chrono::Utc;
use rancher_approval::{
    ApproverRef, Decision, EligibilityContext, NewRequest, Policy, Principal, SqliteOptions, SqliteStore, Store,
    Synchronous,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let decisions: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5_000);
    let synchronous = match args.next().as_deref() {
        None | Some("full") => Synchronous::Full,
        Some("normal") => Synchronous::Normal,
        Some(other) => return Err(format!("expected full or normal, not {other}").into()),
    };
    let dir = std::env::temp_dir().join(format!("rancher-approval-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("approvals.db");
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            synchronous,
            ..Default::default()
        },
    )?;

    // Each request needs 3 of 5 approvers; every decision is its own durable transaction.
    let approvers: Vec<Principal> = (0..5).map(|i| Principal::new(format!("u-{i}"))).collect();
    let policy = Policy::at_least(3, approvers.iter().map(|p| ApproverRef::user(p.id.clone())));
    let mut requests = Vec::new();
    for _ in 0..decisions.div_ceil(3) {
        requests.push(
            store
                .create_request(
                    NewRequest::new("wf", Principal::new("u-req"), policy.clone()),
                    Utc::now(),
                )
                .await?,
        );
    }
    let ctx = EligibilityContext::default();
    let start = Instant::now();
    let mut done = 0;
    'outer: for request in &requests {
        for approver in &approvers[..3] {
            if done == decisions {
                break 'outer;
            }
            store
                .decide(&request.id, approver, Decision::approve(), &ctx, Utc::now())
                .await?;
            done += 1;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{done} durable decisions ({synchronous:?}) in {:.3} s: {:.0} decisions/s; audit verified: {} entries",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        store.verify_audit().await?
    );
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

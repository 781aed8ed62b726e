//! Case 4: durable approval decisions per second in the SQLite store, with `synchronous = FULL` (the default:
//! a decision survives a power loss once acknowledged) and `NORMAL`, and in the PostgreSQL store
//! (`synchronous_commit = on`) on a throwaway local cluster, with 1 and 8 concurrent deciders.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Result};
use chrono::Utc;
use rancher_approval::test_util::Cluster;
use rancher_approval::{
    Decision, EligibilityContext, NewRequest, Policy, PostgresStore, Principal, RequestState, SqliteOptions,
    SqliteStore, Store, Synchronous,
};

use crate::harness::{client_runtime, temp_dir_in};
use crate::stats::{Figure, Unit};
use crate::Options;

/// Where the decisions go.
#[derive(Clone, Copy)]
enum Target<'a> {
    Sqlite(Synchronous),
    Postgres(&'a Cluster),
}

/// Decisions per second over `n` pending requests decided by `deciders` concurrent tasks (each its share, one
/// after another), every decision its own durable transaction.
async fn decisions_per_second(opts: &Options, target: Target<'_>, deciders: usize, n: usize) -> Result<f64> {
    // On the work directory's file system (a real disk), not a RAM disk: the point is the fsync.
    let dir = temp_dir_in(&opts.work_dir, "approvals-")?;
    let store: Arc<dyn Store> = match target {
        Target::Sqlite(synchronous) => Arc::new(SqliteStore::open_with(
            dir.path().join("approvals.db"),
            SqliteOptions {
                synchronous,
                ..SqliteOptions::default()
            },
        )?),
        Target::Postgres(cluster) => Arc::new(fresh_database(cluster).await?),
    };
    let alice = Principal::new("u-alice").with_username("alice");
    let bob = Principal::new("u-bob").with_username("bob");
    let now = Utc::now();
    let installation = store
        .install("create-global-role-binding", &alice, Policy::installer(), now)
        .await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let new = NewRequest::for_installation(&installation, bob.clone()).inputs(
            serde_json::json!({"user": format!("u-{i:05}"), "role": "admin"}),
            ["token"],
        );
        ids.push(store.create_request(new, now).await?.id);
    }
    let ctx = EligibilityContext::default();
    let share = n.div_ceil(deciders.max(1));
    let start = Instant::now();
    let tasks = ids.chunks(share).map(|chunk| {
        let (store, alice, ctx, chunk) = (store.clone(), alice.clone(), ctx.clone(), chunk.to_vec());
        tokio::spawn(async move {
            for id in &chunk {
                let out = store.decide(id, &alice, Decision::approve(), &ctx, Utc::now()).await?;
                ensure!(
                    out.request.state == RequestState::Approved,
                    "a decision left the request {:?}",
                    out.request.state
                );
            }
            Ok(())
        })
    });
    for task in futures::future::join_all(tasks).await {
        task??;
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        store.verify_audit().await? as usize == 1 + 2 * n,
        "the audit chain does not hold every decision"
    );
    Ok(n as f64 / secs)
}

/// A new database on `cluster` with a migrated store on it (the database's clock, as in production).
async fn fresh_database(cluster: &Cluster) -> Result<PostgresStore> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("bench_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let (client, connection) = tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    Ok(PostgresStore::connect(&cluster.url(&name)).await?)
}

/// Runs the case: `n` decisions per run, on SQLite (FULL with 1 and 8 deciders, NORMAL) and on PostgreSQL
/// (`synchronous_commit = on`, 1 and 8 deciders) when a throwaway cluster can be started here.
pub fn run(opts: &Options, n: usize) -> Result<Vec<Figure>> {
    let rt = client_runtime()?;
    let runs = opts.runs();
    let cluster = Cluster::start();
    let mut cases = vec![
        (
            "approvals.full",
            Target::Sqlite(Synchronous::Full),
            1,
            "SQLite WAL, synchronous=FULL (default), 1 decider",
        ),
        (
            "approvals.full8",
            Target::Sqlite(Synchronous::Full),
            8,
            "SQLite WAL, synchronous=FULL (default), 8 deciders",
        ),
        (
            "approvals.normal",
            Target::Sqlite(Synchronous::Normal),
            1,
            "SQLite WAL, synchronous=NORMAL, 1 decider",
        ),
    ];
    if let Ok(cluster) = &cluster {
        cases.push((
            "approvals.pg1",
            Target::Postgres(cluster),
            1,
            "PostgreSQL, synchronous_commit=on, 1 decider",
        ));
        cases.push((
            "approvals.pg8",
            Target::Postgres(cluster),
            8,
            "PostgreSQL, synchronous_commit=on, 8 deciders",
        ));
    }
    let mut figures = Vec::new();
    for (key, target, deciders, what) in cases {
        let samples = (0..runs)
            .map(|_| rt.block_on(decisions_per_second(opts, target, deciders, n)))
            .collect::<Result<Vec<_>>>()?;
        figures.push(
            Figure::new(key, 4, format!("approval decisions, {what}"), Unit::PerSecond, samples).with_note(format!(
                "{n} approvals per run, one transaction each, with its audit entry"
            )),
        );
    }
    if let Err(problem) = cluster {
        eprintln!("bench: case 4: PostgreSQL not measured: {problem}");
    }
    Ok(figures)
}

//! Case 3: creating global role bindings against injected latency, with bounded concurrency and one at a time;
//! afterwards the simulator is asked what it holds (exactly one binding per user, none twice).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::{StreamExt, TryStreamExt};
use rancher_api::requests::RkGlobalrolebindingsCreate;
use rancher_api::types::{GlobalRoleBinding, ObjectMeta};
use rancher_api::Client;
use rancher_sim::{Faults, SimConfig};

use crate::harness::Sim;
use crate::stats::{Figure, Unit};
use crate::Options;

/// Requests in flight at once for the concurrent run.
pub const CONCURRENCY: usize = 64;

/// The role every created binding grants.
const ROLE: &str = "user";

/// What the bindings case measured.
#[derive(Debug, Clone)]
pub struct BindingsResult {
    /// `grb.concurrent` (all creations) and `grb.sequential` (a subset, one at a time).
    pub figures: Vec<Figure>,
    /// Bindings created per concurrent run.
    pub total: usize,
    /// Bindings created per sequential run (the subset).
    pub sequential_subset: usize,
    /// After every concurrent run: bindings of the role for the bench's users, and how many distinct users they
    /// name. Both must equal `total`.
    pub counts: Vec<(usize, usize)>,
    /// Create requests the simulator applied over HTTP, per concurrent run.
    pub creates_applied: Vec<u64>,
}

fn binding(user_id: &str) -> GlobalRoleBinding {
    GlobalRoleBinding {
        global_role_name: Some(ROLE.into()),
        user_name: Some(user_id.into()),
        metadata: Some(ObjectMeta {
            generate_name: Some("grb-".into()),
            ..ObjectMeta::default()
        }),
        ..GlobalRoleBinding::default()
    }
}

async fn create_all(client: &Client, users: &[String], concurrency: usize) -> Result<Duration> {
    let start = Instant::now();
    futures::stream::iter(users.iter())
        .map(|u| async move {
            client
                .global_role_bindings()
                .create(RkGlobalrolebindingsCreate::new(binding(u)))
                .await
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(start.elapsed())
}

fn bench_users(sim: &Sim, n: usize) -> Result<Vec<String>> {
    (1..=n)
        .map(|i| {
            sim.handle()
                .user_id(&format!("user{i:05}"))
                .with_context(|| format!("seeded user{i:05} is missing"))
        })
        .collect()
}

/// Bindings of [`ROLE`] naming one of `users`, and the distinct users among them.
fn count(sim: &Sim, users: &[String]) -> (usize, usize) {
    let wanted: HashSet<&str> = users.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    let mut n = 0;
    for b in sim.handle().objects("globalrolebindings") {
        let user = b.get("userName").and_then(|v| v.as_str()).unwrap_or("");
        if b.get("globalRoleName").and_then(|v| v.as_str()) == Some(ROLE) && wanted.contains(user) {
            n += 1;
            seen.insert(user.to_string());
        }
    }
    (n, seen.len())
}

/// Runs the case: `total` creations per concurrent run, `subset` per sequential run, `latency` added by the server.
pub fn run(
    opts: &Options,
    rt: &tokio::runtime::Runtime,
    total: usize,
    subset: usize,
    latency: Duration,
) -> Result<BindingsResult> {
    let runs = opts.runs();
    let mut concurrent = Vec::new();
    let mut counts = Vec::new();
    let mut creates_applied = Vec::new();
    for _ in 0..runs {
        let sim = Sim::start(
            SimConfig::default()
                .users(total)
                .seed(3)
                .faults(Faults::none().with_latency(latency)),
        )?;
        let users = bench_users(&sim, total)?;
        let client = sim.client(CONCURRENCY)?;
        concurrent.push(rt.block_on(create_all(&client, &users, CONCURRENCY))?);
        let c = count(&sim, &users);
        counts.push(c);
        creates_applied.push(sim.handle().writes("globalrolebindings", "create"));
        ensure!(
            c == (total, total),
            "after {total} creations the simulator holds {} bindings for {} distinct users",
            c.0,
            c.1
        );
    }
    let mut sequential = Vec::new();
    for _ in 0..runs {
        let sim = Sim::start(
            SimConfig::default()
                .users(subset)
                .seed(4)
                .faults(Faults::none().with_latency(latency)),
        )?;
        let users = bench_users(&sim, subset)?;
        let client = sim.client(1)?;
        sequential.push(rt.block_on(create_all(&client, &users, 1))?);
        let c = count(&sim, &users);
        ensure!(
            c == (subset, subset),
            "after {subset} sequential creations the simulator holds {} bindings for {} users",
            c.0,
            c.1
        );
    }
    let ms = latency.as_millis();
    let figures = vec![
        Figure::timings(
            "grb.concurrent",
            3,
            format!("create {total} global role bindings, {CONCURRENCY} in flight, {ms} ms latency"),
            Unit::Seconds,
            &concurrent,
        )
        .with_work(total as f64, "bindings"),
        Figure::timings(
            "grb.sequential",
            3,
            format!("create {subset} global role bindings one at a time, {ms} ms latency"),
            Unit::Seconds,
            &sequential,
        )
        .with_work(subset as f64, "bindings")
        .with_note(format!(
            "a subset of {subset}; the ratio extrapolates it linearly to {total}"
        )),
    ];
    Ok(BindingsResult {
        figures,
        total,
        sequential_subset: subset,
        counts,
        creates_applied,
    })
}

//! Case 7: the approvals service (rancher-server) over its HTTP API: approval decisions per second from 8
//! concurrent approvers, and the p99 latency of the pending list with 10,000 requests stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use chrono::Utc;
use rancher_approval::{
    ApproverRef, NewRequest, Policy, Principal, RequestId, SqliteOptions, SqliteStore, Store, Synchronous,
};
use rancher_auth::{BearerToken, CaSource, Connection, InstanceDomain};
use rancher_server::{RunningServer, ServerConfig};
use rancher_sim::SimConfig;

use crate::harness::{temp_dir_in, Sim};
use crate::stats::{Figure, Unit};
use crate::Options;

/// Concurrent approvers.
pub const APPROVERS: usize = 8;

/// The service on its own runtime (as in production, not scheduled on the measuring client's threads).
struct Service {
    server: Option<RunningServer>,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start(opts: &Options, sim: &Sim, sync: Synchronous) -> Result<Service> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rancher-server")
            .enable_all()
            .build()?;
        let dir = temp_dir_in(&opts.work_dir, "server-")?;
        let store = Arc::new(SqliteStore::open_with(
            dir.path().join("approvals.db"),
            SqliteOptions {
                synchronous: sync,
                ..SqliteOptions::default()
            },
        )?);
        let h = sim.handle();
        // The bench lends the admin's key to the service (a dedicated account changes nothing measured).
        let conn = Connection::new(
            InstanceDomain::parse(&h.domain())?,
            BearerToken::parse(&h.tokens().admin)?,
        )
        .with_ca(Some(CaSource::Pem(h.ca_pem())));
        let config = ServerConfig::new("127.0.0.1:0".parse()?, store, conn)
            .executor("rancher-bench")
            .job_interval(Duration::from_secs(3600));
        let server = rt
            .block_on(rancher_server::start(config))
            .context("starting the approvals service")?;
        Ok(Service {
            server: Some(server),
            rt,
            _dir: dir,
        })
    }

    fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("running until dropped")
    }

    fn store(&self) -> Arc<dyn Store> {
        self.server().runner().store().clone()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// `n` pending requests by a requester nobody can be confused with, each needing 2 of the two admins: an
/// approval is recorded (a decision) and leaves the request pending, so the figure is decisions, not executions.
fn pending_requests(store: &dyn Store, sim: &Sim, n: usize) -> Result<Vec<RequestId>> {
    let u = sim.handle().users();
    let policy = Policy::at_least(
        2,
        [
            ApproverRef::user(u.admin.id.clone()),
            ApproverRef::user(u.approver.id.clone()),
        ],
    );
    let requester = Principal::new("u-requester").with_username("requester");
    let now = Utc::now();
    crate::harness::client_runtime()?.block_on(async {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let new = NewRequest::new("create-global-role-binding", requester.clone(), policy.clone()).inputs(
                serde_json::json!({"user": format!("u-{i:05}"), "role": "admin"}),
                ["token"],
            );
            ids.push(store.create_request(new, now).await?.id);
        }
        Ok(ids)
    })
}

/// Decisions per second through `POST /api/v1/requests/{id}/approve`, `APPROVERS` at a time.
fn decisions_per_second(
    opts: &Options,
    rt: &tokio::runtime::Runtime,
    sim: &Sim,
    n: usize,
    sync: Synchronous,
) -> Result<f64> {
    let svc = Service::start(opts, sim, sync)?;
    let ids = pending_requests(svc.store().as_ref(), sim, n)?;
    let url = svc.server().url().to_string();
    let tokens = [
        sim.handle().tokens().admin.clone(),
        sim.handle().tokens().approver.clone(),
    ];
    let http = reqwest::Client::builder().pool_max_idle_per_host(APPROVERS).build()?;
    let queue = Arc::new(std::sync::Mutex::new(ids));
    rt.block_on(async {
        // Warm the identity cache: people's tokens are checked once, then reused for a short time.
        for t in &tokens {
            http.get(format!("{url}/api/v1/me"))
                .bearer_auth(t)
                .send()
                .await?
                .error_for_status()?;
        }
        let start = Instant::now();
        let tasks: Vec<_> = (0..APPROVERS)
            .map(|i| {
                let (http, url, token, queue) = (http.clone(), url.clone(), tokens[i % 2].clone(), queue.clone());
                tokio::spawn(async move {
                    let mut done = 0u64;
                    loop {
                        let Some(id) = queue.lock().expect("queue").pop() else {
                            return Ok::<u64, anyhow::Error>(done);
                        };
                        let r = http
                            .post(format!("{url}/api/v1/requests/{id}/approve"))
                            .bearer_auth(&token)
                            .json(&serde_json::json!({}))
                            .send()
                            .await?;
                        ensure!(r.status().is_success(), "an approval answered {}", r.status());
                        let v: serde_json::Value = r.json().await?;
                        ensure!(
                            v["state"] == "pending",
                            "a first approval left the request {}",
                            v["state"]
                        );
                        done += 1;
                    }
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await??;
        }
        ensure!(total as usize == n, "{total} of {n} decisions");
        Ok(n as f64 / start.elapsed().as_secs_f64())
    })
}

/// Latencies (ms) of `GET /api/v1/requests?state=pending` with `stored` requests in the store (half pending).
fn pending_list_latencies(
    opts: &Options,
    rt: &tokio::runtime::Runtime,
    sim: &Sim,
    stored: usize,
    samples: usize,
) -> Result<Vec<f64>> {
    let svc = Service::start(opts, sim, Synchronous::Full)?;
    let store = svc.store();
    let ids = pending_requests(store.as_ref(), sim, stored)?;
    let admin = Principal::new(sim.handle().users().admin.id.clone());
    for id in ids.iter().step_by(2) {
        rt.block_on(store.cancel(id, &admin, None, Utc::now()))?;
    }
    let url = format!("{}/api/v1/requests?state=pending", svc.server().url());
    let token = sim.handle().tokens().admin.clone();
    let http = reqwest::Client::new();
    rt.block_on(async {
        let mut out = Vec::with_capacity(samples);
        for i in 0..samples + 5 {
            let start = Instant::now();
            let r = http.get(&url).bearer_auth(&token).send().await?;
            ensure!(r.status().is_success(), "the pending list answered {}", r.status());
            let v: serde_json::Value = r.json().await?;
            ensure!(
                v["items"].as_array().is_some_and(|a| !a.is_empty()),
                "an empty pending list"
            );
            if i >= 5 {
                out.push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Ok(out)
    })
}

/// The `p`-th percentile (0..=100) of `samples`, nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// Runs the case: `decisions` approvals per run; the pending list with `stored` requests, `gets` requests.
pub fn run(
    opts: &Options,
    rt: &tokio::runtime::Runtime,
    decisions: usize,
    stored: usize,
    gets: usize,
) -> Result<Vec<Figure>> {
    let sim = Sim::start(SimConfig::default().users(20).seed(7))?;
    let mut figures = Vec::new();
    for (key, sync, what) in [
        ("server.decisions", Synchronous::Full, "FULL (default)"),
        ("server.decisions.normal", Synchronous::Normal, "NORMAL"),
    ] {
        let samples = (0..opts.runs())
            .map(|_| decisions_per_second(opts, rt, &sim, decisions, sync))
            .collect::<Result<Vec<_>>>()?;
        figures.push(
            Figure::new(key, 7, format!("approval decisions through the service's HTTP API, {APPROVERS} concurrent approvers, synchronous={what}"), Unit::PerSecond, samples)
                .with_note(format!("{decisions} approvals per run over HTTP/1.1 on loopback; each checks the approvers with Rancher and records a decision and its audit entry")),
        );
    }
    let lat = pending_list_latencies(opts, rt, &sim, stored, gets)?;
    let p99 = percentile(&lat, 99.0);
    let listed = Figure::new(
        "server.pending_p99",
        7,
        format!("GET /api/v1/requests?state=pending, {stored} requests stored: p99"),
        Unit::Millis,
        vec![p99],
    )
    .with_note(format!(
        "{gets} sequential GETs, {} pending (first page of 100 answered); median {:.1} ms",
        stored / 2,
        crate::stats::median(&lat)
    ));
    figures.push(listed);
    Ok(figures)
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentile_is_nearest_rank() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::percentile(&s, 99.0), 99.0);
        assert_eq!(super::percentile(&s, 50.0), 50.0);
        assert_eq!(super::percentile(&[3.0], 99.0), 3.0);
    }
}

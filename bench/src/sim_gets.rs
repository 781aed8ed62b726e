//! Case 6: how many small authenticated GETs per second the simulator answers (one user by name, admin token),
//! from 16 concurrent keep-alive connections for a fixed time.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use rancher_api::ExposeSecret;
use rancher_sim::SimConfig;

use crate::harness::Sim;
use crate::stats::{Figure, Unit};
use crate::Options;

/// Concurrent connections.
pub const CONNECTIONS: usize = 16;

async fn gets_for(http: reqwest::Client, url: String, token: String, deadline: Instant) -> Result<u64> {
    let mut n = 0u64;
    while Instant::now() < deadline {
        let resp = http
            .get(&url)
            .bearer_auth(&token)
            .header("accept", "application/json")
            .send()
            .await?;
        ensure!(resp.status().is_success(), "a GET answered {}", resp.status());
        let _ = resp.bytes().await?;
        n += 1;
    }
    Ok(n)
}

/// Runs the case against a simulator holding `users` extra users, each run lasting `duration`.
pub fn run(opts: &Options, rt: &tokio::runtime::Runtime, users: usize, duration: Duration) -> Result<Figure> {
    let sim = Sim::start(SimConfig::default().users(users).seed(6))?;
    let http = sim.bare_client(CONNECTIONS)?;
    let url = format!(
        "{}/apis/management.cattle.io/v3/users/{}",
        sim.base_url(),
        sim.handle().users().user.id
    );
    let token = sim.admin_token().expose_secret().to_string();
    let one_run = |d: Duration| -> Result<f64> {
        rt.block_on(async {
            let start = Instant::now();
            let deadline = start + d;
            let tasks: Vec<_> = (0..CONNECTIONS)
                .map(|_| tokio::spawn(gets_for(http.clone(), url.clone(), token.clone(), deadline)))
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await??;
            }
            Ok(total as f64 / start.elapsed().as_secs_f64())
        })
    };
    one_run(duration / 4)?; // warm-up: connections and handshakes
    let samples = (0..opts.runs())
        .map(|_| one_run(duration))
        .collect::<Result<Vec<_>>>()?;
    Ok(Figure::new(
        "sim.gets",
        6,
        format!("rancher-sim: GET one user by name, {CONNECTIONS} connections"),
        Unit::PerSecond,
        samples,
    )
    .with_note(format!(
        "{:.1} s per run; client and simulator share the machine",
        duration.as_secs_f64()
    )))
}

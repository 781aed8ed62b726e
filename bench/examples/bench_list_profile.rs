//! A target for profilers (perf, valgrind --tool=callgrind): lists the users of a simulator again and again.
//!
//! `cargo run --release -p rancher-bench --example bench_list_profile -- parse|stream|transport [USERS] [ROUNDS]`
//! - `parse`: the page bytes are fetched once, then deserialized into our types ROUNDS times (the parse floor);
//! - `stream`: the typed stream end to end, ROUNDS times;
//! - `transport`: a bare reqwest loop over the same pages, ROUNDS times.

use std::time::Instant;

use anyhow::{bail, Result};
use futures::TryStreamExt;
use rancher_api::requests::RkUsersList;
use rancher_api::types::UserList;
use rancher_api::ExposeSecret;
use rancher_bench::harness::{client_runtime, Sim};
use rancher_sim::SimConfig;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("parse").to_string();
    let users: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let rt = client_runtime()?;
    let sim = Sim::start(SimConfig::default().users(users).seed(1))?;
    let client = sim.client(16)?;
    let http = sim.bare_client(1)?;
    let token = sim.admin_token();
    // Record the pages once (URLs and bodies), as the bench does.
    let (urls, bodies) = rt.block_on(async {
        let mut urls = Vec::new();
        let mut bodies = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!("{}/apis/management.cattle.io/v3/users", sim.base_url()))?;
            if let Some(c) = &next {
                url.query_pairs_mut().append_pair("continue", c);
            }
            url.query_pairs_mut().append_pair("limit", "500");
            let body = http
                .get(url.clone())
                .bearer_auth(token.expose_secret())
                .send()
                .await?
                .bytes()
                .await?
                .to_vec();
            let page: UserList = serde_json::from_slice(&body)?;
            next = page.metadata.and_then(|m| m.continue_).filter(|c| !c.is_empty());
            urls.push(url);
            bodies.push(body);
            if next.is_none() {
                break;
            }
        }
        anyhow::Ok((urls, bodies))
    })?;
    for round in 0..rounds {
        let cpu0 = cpu_secs();
        let start = Instant::now();
        let n = match mode.as_str() {
            "parse" => bodies
                .iter()
                .map(|b| serde_json::from_slice::<UserList>(b).map(|p| p.items.map(|i| i.len()).unwrap_or(0)))
                .sum::<Result<usize, _>>()?,
            "stream" => rt.block_on(
                client
                    .users()
                    .list(RkUsersList::new().limit(500))
                    .try_fold(0usize, |n, _| async move { Ok(n + 1) }),
            )?,
            "transport" => rt.block_on(async {
                let mut bytes = 0;
                for u in &urls {
                    bytes += http
                        .get(u.clone())
                        .bearer_auth(token.expose_secret())
                        .send()
                        .await?
                        .bytes()
                        .await?
                        .len();
                }
                anyhow::Ok(bytes)
            })?,
            other => bail!("unknown mode `{other}`: parse, stream or transport"),
        };
        eprintln!(
            "round {round}: {n} in {:.3} s wall, {:.3} s CPU (all threads, simulator included)",
            start.elapsed().as_secs_f64(),
            cpu_secs() - cpu0
        );
    }
    Ok(())
}

/// CPU time of this process so far (user + system, every thread), from `/proc/self/stat`, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

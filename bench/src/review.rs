//! Case 8: access review and token hygiene, end to end as the user runs them: seeding the simulator with
//! 155,000 tokens over 1,465 users; `rancherctl run token-report -o json` over them (wall time and peak RSS of
//! the process); `rancherctl run access-review -o json` over 10,000 users and 30,000 global role bindings.
//! Peak RSS is the child's `VmHWM`, sampled every 2 ms while it runs (a high-water mark, so a late sample holds
//! every earlier peak).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rancher_api::ExposeSecret;
use rancher_sim::SimConfig;

use crate::harness::{temp_dir_in, Sim};
use crate::stats::{Figure, Unit};
use crate::Options;

/// Sizes of this case.
#[derive(Debug, Clone, Copy)]
pub struct ReviewSizes {
    /// Users holding the tokens (the six named ones plus bulk users).
    pub token_users: usize,
    /// Tokens seeded.
    pub tokens: usize,
    /// Users of the access review.
    pub review_users: usize,
    /// Global role bindings of the access review.
    pub review_bindings: usize,
}

/// What the case measured.
#[derive(Debug, Clone)]
pub struct ReviewResult {
    /// `review.seed`, `review.token_report`, `review.token_report_rss`, `review.access_review`.
    pub figures: Vec<Figure>,
}

/// The named users rancher-sim always seeds (admin, approver, alice, bob, carol, dave).
const NAMED_USERS: usize = 6;

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `rancherctl ARGS` against `sim`, returns (wall time, peak RSS KiB, stdout).
fn rancherctl(bin: &Path, sim: &Sim, state: &Path, ca: &Path, args: &[&str]) -> Result<(Duration, u64, Vec<u8>)> {
    let out_file = state.join("out.json");
    let stdout = std::fs::File::create(&out_file)?;
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["--state-dir", &state.display().to_string()])
        .args(args)
        .env("RANCHER_DOMAIN", sim.handle().domain())
        .env("RANCHER_CA_CERT", ca)
        .env("RANCHER_TOKEN", sim.admin_token().expose_secret())
        .env("HOME", state)
        .env_remove("RANCHER_PROFILE")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let mut peak = 0u64;
    let status = loop {
        if let Some(k) = vm_hwm_kib(child.id()) {
            peak = peak.max(k);
        }
        if let Some(st) = child.try_wait()? {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("`rancherctl {}` exited with {status}: {}", args.join(" "), err.trim());
    }
    Ok((took, peak, std::fs::read(&out_file)?))
}

/// Runs the case once (its targets are end-to-end times of one run).
pub fn run(opts: &Options, rancherctl_bin: &Path, sizes: ReviewSizes) -> Result<ReviewResult> {
    let dir = temp_dir_in(&opts.work_dir, "review-")?;
    let mut figures = Vec::new();

    // Token sprawl: seeding, then the report.
    let bulk = sizes.token_users.saturating_sub(NAMED_USERS);
    let start = Instant::now();
    let sim = Sim::start(SimConfig::default().users(bulk).tokens(sizes.tokens).seed(3))?;
    let seeded = start.elapsed();
    figures.push(
        Figure::timings(
            "review.seed",
            8,
            format!(
                "simulator start, seeding {} tokens over {} users",
                sizes.tokens, sizes.token_users
            ),
            Unit::Seconds,
            &[seeded],
        )
        .with_note("includes its TLS set-up and the other seeded data"),
    );
    let state = dir.path().join("tokens");
    std::fs::create_dir_all(&state)?;
    let ca = dir.path().join("ca-tokens.pem");
    std::fs::write(&ca, sim.handle().ca_pem())?;
    rancherctl(
        rancherctl_bin,
        &sim,
        &state,
        &ca,
        &["workflows", "install", "token-report"],
    )?;
    let (took, peak, out) = rancherctl(
        rancherctl_bin,
        &sim,
        &state,
        &ca,
        &["run", "token-report", "-o", "json"],
    )?;
    let doc: serde_json::Value = serde_json::from_slice(&out).context("token-report printed no JSON document")?;
    let counted = doc["totals"]["tokens"].as_u64().unwrap_or(0);
    let held = (sim.handle().count("tokens") + sim.handle().count("exttokens")) as u64;
    ensure!(
        counted == held,
        "token-report counted {counted} tokens, the simulator holds {held}"
    );
    figures.push(
        Figure::timings(
            "review.token_report",
            8,
            format!("`rancherctl run token-report -o json`, {held} tokens"),
            Unit::Seconds,
            &[took],
        )
        .with_note(format!("{} users in the report", doc["totals"]["users"])),
    );
    figures.push(
        Figure::new(
            "review.token_report_rss",
            8,
            "peak RSS of that process",
            Unit::MiB,
            vec![peak as f64 / 1024.0],
        )
        .with_note("VmHWM sampled every 2 ms"),
    );
    drop(sim);

    // Access review over many users and bindings.
    let sim = Sim::start(
        SimConfig::default()
            .users(sizes.review_users)
            .bindings(sizes.review_bindings)
            .seed(4),
    )?;
    let state = dir.path().join("review");
    std::fs::create_dir_all(&state)?;
    let ca = dir.path().join("ca-review.pem");
    std::fs::write(&ca, sim.handle().ca_pem())?;
    rancherctl(
        rancherctl_bin,
        &sim,
        &state,
        &ca,
        &["workflows", "install", "access-review"],
    )?;
    let (took, peak, out) = rancherctl(
        rancherctl_bin,
        &sim,
        &state,
        &ca,
        &["run", "access-review", "-o", "json"],
    )?;
    let doc: serde_json::Value = serde_json::from_slice(&out).context("access-review printed no JSON document")?;
    let users = doc["users"].as_array().map(Vec::len).unwrap_or(0);
    ensure!(
        users >= sizes.review_users,
        "access-review showed {users} users, expected at least {}",
        sizes.review_users
    );
    figures.push(
        Figure::timings(
            "review.access_review",
            8,
            format!(
                "`rancherctl run access-review -o json`, {} users, {} bindings",
                users,
                sim.handle().count("globalrolebindings")
            ),
            Unit::Seconds,
            &[took],
        )
        .with_note(format!("peak RSS {:.1} MiB", peak as f64 / 1024.0)),
    );
    Ok(ReviewResult { figures })
}

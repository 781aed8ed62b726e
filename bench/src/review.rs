//! Case 9: access review and token hygiene, end to end as the user runs them: seeding the simulator with the
//! tokens (1,550,000 over 14,650 users in a full run, ten times the largest report we know of); `rancherctl run
//! token-report -o json` over them, and the Python kubernetes client and kubectl doing the same reading, when
//! present; `rancherctl run cleanup-tokens` filed by one admin and approved (and so executed) by another, over the
//! same tokens; `rancherctl run access-review -o json` over 10,000 users and 30,000 global role bindings.
//! Peak RSS is the child's `VmHWM`, sampled every 2 ms while it runs (a high-water mark, so a late sample holds
//! every earlier peak).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rancher_api::ExposeSecret;
use rancher_sim::SimConfig;

use crate::harness::{temp_dir_in, write_private, Sim};
use crate::peers::Peer;
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
    /// Role bindings of the access review (global, cluster and project; a tenth through groups).
    pub review_bindings: usize,
    /// Runs of each token measurement (seeding, report, cleanup).
    pub runs: usize,
}

/// What the case measured.
#[derive(Debug, Clone)]
pub struct ReviewResult {
    /// `review.seed`, `review.token_report` (+ `_rss`), `review.cleanup` (+ `_rss`), `review.python` /
    /// `review.kubectl` (+ `_rss`) when run, `review.access_review`.
    pub figures: Vec<Figure>,
    /// Peers run or skipped, and how the cleanup was chosen.
    pub notes: Vec<String>,
}

/// The named users rancher-sim always seeds (admin, approver, alice, bob, carol, dave).
const NAMED_USERS: usize = 6;

/// Longest any one measured process of ours may take.
const LIMIT: Duration = Duration::from_secs(600);
/// Longest a peer may take (a peer that cannot finish in this time is reported as such, not waited for).
const PEER_LIMIT: Duration = Duration::from_secs(300);
/// Most memory a peer may take before it is stopped (kubectl holds the whole list: past 8 GiB at 1.55 M tokens).
const PEER_RSS_KIB: u64 = 2 * 1024 * 1024;

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `cmd` (stdout to `out`), returns (wall time, peak RSS KiB, exit code).
fn measure(cmd: Command, out: &Path, what: &str) -> Result<(Duration, u64, i32)> {
    measure_within(cmd, out, what, LIMIT, u64::MAX)
}

/// [`measure`] with its own time limit.
fn measure_within(
    mut cmd: Command,
    out: &Path,
    what: &str,
    limit: Duration,
    max_rss_kib: u64,
) -> Result<(Duration, u64, i32)> {
    let stdout = std::fs::File::create(out)?;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let mut peak = 0u64;
    let status = loop {
        if let Some(k) = vm_hwm_kib(child.id()) {
            peak = peak.max(k);
        }
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what}: gave up after {} s", limit.as_secs());
        }
        if peak > max_rss_kib {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{what}: stopped at {} MiB of RSS after {:.1} s",
                peak / 1024,
                start.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    let code = status.code().unwrap_or(-1);
    if !matches!(code, 0 | 3) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{what} exited with {status}: {}", err.trim());
    }
    Ok((took, peak, code))
}

/// `rancherctl` against `sim` as the holder of `token`, with its state in `state`.
fn rancherctl_cmd(bin: &Path, sim: &Sim, state: &Path, ca: &Path, token: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(["--state-dir", &state.display().to_string()])
        .args(args)
        .env("RANCHER_DOMAIN", sim.handle().domain())
        .env("RANCHER_CA_CERT", ca)
        .env("RANCHER_TOKEN", token)
        .env("HOME", state)
        .env_remove("RANCHER_PROFILE")
        .env_remove("RUST_LOG");
    c
}

/// Runs `rancherctl ARGS` against `sim` as the admin, returns (wall time, peak RSS KiB, stdout).
fn rancherctl(bin: &Path, sim: &Sim, state: &Path, ca: &Path, args: &[&str]) -> Result<(Duration, u64, Vec<u8>)> {
    let token = sim.admin_token();
    let out = state.join("out.json");
    let cmd = rancherctl_cmd(bin, sim, state, ca, token.expose_secret(), args);
    let (took, peak, code) = measure(cmd, &out, &format!("`rancherctl {}`", args.join(" ")))?;
    ensure!(code == 0, "`rancherctl {}` exited with {code}", args.join(" "));
    Ok((took, peak, std::fs::read(&out)?))
}

/// The Python peer of `token-report`: every token of both APIs, page by page (2,000 a page, as ours), counted per
/// user, the way an admin would script it with the kubernetes client. Prints how many tokens it read. The token
/// comes from `BENCH_TOKEN`, never from the command line.
pub const PYTHON_TOKENS: &str = r#"
import os, sys
from collections import Counter
from kubernetes import client

cfg = client.Configuration()
cfg.host = sys.argv[1]
cfg.ssl_ca_cert = sys.argv[2]
cfg.api_key = {"authorization": os.environ["BENCH_TOKEN"]}
cfg.api_key_prefix = {"authorization": "Bearer"}
api = client.CustomObjectsApi(client.ApiClient(cfg))
per_user = Counter()
expired = 0
for group, version, owner in (("management.cattle.io", "v3", lambda t: t.get("userId")),
                              ("ext.cattle.io", "v1", lambda t: (t.get("spec") or {}).get("userID"))):
    if group == "ext.cattle.io" and sys.argv[3] != "ext":
        continue
    token = None
    while True:
        kwargs = {"limit": 2000}
        if token:
            kwargs["_continue"] = token
        page = api.list_cluster_custom_object(group, version, "tokens", **kwargs)
        for t in page["items"]:
            per_user[owner(t)] += 1
            expired += bool(t.get("expired") or (t.get("status") or {}).get("expired"))
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            break
print(sum(per_user.values()), len(per_user), expired)
"#;

/// Runs the case (token measurements `sizes.runs` times each, the access review once).
pub fn run(opts: &Options, rancherctl_bin: &Path, python: Option<&Peer>, sizes: ReviewSizes) -> Result<ReviewResult> {
    let dir = temp_dir_in(&opts.work_dir, "review-")?;
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    let runs = sizes.runs.max(1);

    // Token sprawl: seeding (each run a fresh simulator; the last one is kept), then the report and the cleanup.
    let bulk = sizes.token_users.saturating_sub(NAMED_USERS);
    let config = SimConfig::default().users(bulk).tokens(sizes.tokens).seed(3);
    let mut seeded = Vec::new();
    let mut sim = None;
    for _ in 0..runs {
        drop(sim.take());
        let start = Instant::now();
        sim = Some(Sim::start(config.clone())?);
        seeded.push(start.elapsed());
    }
    let sim = sim.expect("at least one run");
    figures.push(
        Figure::timings(
            "review.seed",
            9,
            format!(
                "simulator start, seeding {} tokens over {} users",
                sizes.tokens, sizes.token_users
            ),
            Unit::Seconds,
            &seeded,
        )
        .with_work(sizes.tokens as f64, "tokens")
        .with_note("includes its TLS set-up and the other seeded data"),
    );
    let state = dir.path().join("tokens");
    std::fs::create_dir_all(&state)?;
    let ca = dir.path().join("ca-tokens.pem");
    std::fs::write(&ca, sim.handle().ca_pem())?;
    for w in ["token-report", "cleanup-tokens"] {
        rancherctl(rancherctl_bin, &sim, &state, &ca, &["workflows", "install", w])?;
    }
    let held = (sim.handle().count("tokens") + sim.handle().count("exttokens")) as u64;
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    let mut doc = serde_json::Value::Null;
    for _ in 0..runs {
        let (took, peak, out) = rancherctl(
            rancherctl_bin,
            &sim,
            &state,
            &ca,
            &["run", "token-report", "-o", "json"],
        )?;
        doc = serde_json::from_slice(&out).context("token-report printed no JSON document")?;
        let counted = doc["totals"]["tokens"].as_u64().unwrap_or(0);
        ensure!(
            counted == held,
            "token-report counted {counted} tokens, the simulator holds {held}"
        );
        times.push(took);
        peaks.push(peak as f64 / 1024.0);
    }
    let users_in_report = doc["totals"]["users"].as_u64().unwrap_or(0);
    figures.push(
        Figure::timings(
            "review.token_report",
            9,
            format!("`rancherctl run token-report -o json`, {held} tokens, whole process"),
            Unit::Seconds,
            &times,
        )
        .with_work(held as f64, "tokens")
        .with_note(format!("{users_in_report} users in the report")),
    );
    figures.push(
        Figure::new(
            "review.token_report_rss",
            9,
            "peak RSS of `rancherctl run token-report -o json`",
            Unit::MiB,
            peaks,
        )
        .with_note("VmHWM sampled every 2 ms"),
    );

    // The peers, reading the same tokens.
    let ext = if sim.handle().count("exttokens") > 0 {
        "ext"
    } else {
        "v3"
    };
    match python {
        None => notes.push(
            "case 9: the Python kubernetes client was not run (not installed under the peers directory, or --no-peers)"
                .into(),
        ),
        Some(py) => {
            let script = dir.path().join("tokens.py");
            std::fs::write(&script, PYTHON_TOKENS)?;
            let mut cmd = Command::new(&py.program);
            cmd.arg(&script)
                .arg(sim.base_url())
                .arg(&ca)
                .arg(ext)
                .env("BENCH_TOKEN", sim.admin_token().expose_secret());
            let out = dir.path().join("python.out");
            match measure_within(cmd, &out, "the Python peer", PEER_LIMIT, PEER_RSS_KIB) {
                Ok((took, peak, _)) => {
                    let said = std::fs::read_to_string(&out).unwrap_or_default();
                    let read: u64 = said.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    ensure!(
                        read == held,
                        "the Python peer read {read} tokens, the simulator holds {held}"
                    );
                    figures.push(
                        Figure::timings(
                            "review.python",
                            9,
                            format!(
                                "Python kubernetes client {}: every token, counted per user, whole process",
                                py.version
                            ),
                            Unit::Seconds,
                            &[took],
                        )
                        .with_work(held as f64, "tokens")
                        .with_note(format!("peak RSS {:.1} MiB; one run", peak as f64 / 1024.0)),
                    );
                }
                Err(e) => notes.push(format!("case 9: the Python peer failed: {e:#}")),
            }
        }
    }
    match crate::harness::which("kubectl").filter(|_| opts.peers) {
        None => notes.push("case 9: kubectl was not run (not on PATH, or --no-peers)".into()),
        Some(kubectl) => {
            let kubeconfig = dir.path().join("kubeconfig");
            write_private(
                &kubeconfig,
                crate::peers::kubeconfig(&sim.base_url(), &ca, sim.admin_token().expose_secret()).as_bytes(),
            )?;
            let mut cmd = Command::new(kubectl);
            cmd.args(["get", "tokens.management.cattle.io", "--chunk-size=2000", "-o", "name"])
                .env("KUBECONFIG", &kubeconfig);
            let out = dir.path().join("kubectl.out");
            match measure_within(cmd, &out, "kubectl", PEER_LIMIT, PEER_RSS_KIB) {
                Ok((took, peak, _)) => {
                    let read = std::fs::read_to_string(&out).unwrap_or_default().lines().count() as u64;
                    let v3 = sim.handle().count("tokens") as u64;
                    ensure!(
                        read == v3,
                        "kubectl listed {read} tokens, the simulator holds {v3} v3 tokens"
                    );
                    figures.push(
                        Figure::timings(
                            "review.kubectl",
                            9,
                            "`kubectl get tokens.management.cattle.io --chunk-size=2000 -o name`, whole process",
                            Unit::Seconds,
                            &[took],
                        )
                        .with_work(v3 as f64, "tokens")
                        .with_note(format!(
                            "names only, v3 tokens only ({v3}): less work than the report; peak RSS {:.1} MiB; one run",
                            peak as f64 / 1024.0
                        )),
                    );
                }
                Err(e) => notes.push(format!("case 9: kubectl failed: {e:#}")),
            }
        }
    }

    // The cleanup: each run files one for a different one of the heaviest holders (their expired tokens), as the
    // approver, and the admin approves it, which executes it; both processes read every token.
    let users = doc["users"].as_array().cloned().unwrap_or_default();
    let approver = sim.handle().tokens().approver.clone();
    let admin = sim.admin_token();
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    let mut deleted_total = 0u64;
    for run in 0..runs {
        let Some(user) = users.get(run).and_then(|u| u["user"].as_str()) else {
            bail!("the report has fewer than {runs} users to clean up after");
        };
        let out = state.join("cleanup.json");
        let filed = rancherctl_cmd(
            rancherctl_bin,
            &sim,
            &state,
            &ca,
            &approver,
            &[
                "run",
                "cleanup-tokens",
                "--input",
                &format!("user={user}"),
                "--input",
                "filter=expired",
                "-o",
                "json",
            ],
        );
        let (t1, p1, code) = measure(filed, &out, "rancherctl run cleanup-tokens")?;
        ensure!(code == 3, "the cleanup did not wait for approval (exit {code})");
        let pending: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
        let request = pending["request"]
            .as_str()
            .context("no request id in the pending answer")?
            .to_string();
        let approve = rancherctl_cmd(
            rancherctl_bin,
            &sim,
            &state,
            &ca,
            admin.expose_secret(),
            &["approvals", "approve", &request, "-o", "json"],
        );
        let (t2, p2, code) = measure(approve, &out, "rancherctl approvals approve")?;
        ensure!(code == 0, "approving the cleanup exited with {code}");
        let done: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
        let result = done
            .pointer("/result/result")
            .or_else(|| done.get("result"))
            .cloned()
            .unwrap_or_default();
        let deleted = result["deleted"].as_u64().unwrap_or(0);
        ensure!(
            deleted > 0 && result["failed"].as_u64() == Some(0),
            "the cleanup deleted {deleted} tokens: {result}"
        );
        deleted_total += deleted;
        times.push(t1 + t2);
        peaks.push(p1.max(p2) as f64 / 1024.0);
    }
    figures.push(
        Figure::timings(
            "review.cleanup",
            9,
            format!(
                "`rancherctl run cleanup-tokens` filed and approved (run), {held} tokens read twice, both processes"
            ),
            Unit::Seconds,
            &times,
        )
        .with_note(format!(
            "filter=expired for one of the {runs} heaviest holders per run; {} tokens deleted per run on average",
            deleted_total / runs as u64
        )),
    );
    figures.push(
        Figure::new(
            "review.cleanup_rss",
            9,
            "peak RSS of the two cleanup processes (the larger)",
            Unit::MiB,
            peaks,
        )
        .with_note("VmHWM sampled every 2 ms"),
    );
    drop(sim);

    let (more, more_notes) = run_access(rancherctl_bin, &dir, sizes)?;
    figures.extend(more);
    notes.extend(more_notes);
    Ok(ReviewResult { figures, notes })
}

/// The access-review part of the case alone: the review (and who-can, and an offboarding plan) over many users
/// and bindings (global, cluster and project; a tenth through groups), at full scale and at a tenth of it: memory
/// must follow the bindings' index and a page of users, not the users. Returns the figures and notes.
pub fn run_access(
    rancherctl_bin: &Path,
    dir: &tempfile::TempDir,
    sizes: ReviewSizes,
) -> Result<(Vec<Figure>, Vec<String>)> {
    let mut figures = Vec::new();
    let notes = Vec::new();
    for (tag, users, bindings) in [
        ("_tenth", sizes.review_users / 10, sizes.review_bindings / 10),
        ("", sizes.review_users, sizes.review_bindings),
    ] {
        let start = Instant::now();
        let sim = Sim::start(
            SimConfig::default()
                .users(users)
                .bindings(bindings)
                .mixed_bindings()
                .seed(4),
        )?;
        let seeded = start.elapsed();
        let state = dir.path().join(format!("review{tag}"));
        std::fs::create_dir_all(&state)?;
        let ca = dir.path().join(format!("ca-review{tag}.pem"));
        std::fs::write(&ca, sim.handle().ca_pem())?;
        for w in ["access-review", "who-can", "offboard-user"] {
            rancherctl(rancherctl_bin, &sim, &state, &ca, &["workflows", "install", w])?;
        }
        let held = sim.handle().count("globalrolebindings")
            + sim.handle().count("clusterroletemplatebindings")
            + sim.handle().count("projectroletemplatebindings");
        let (mut took, mut peaks) = (Vec::new(), Vec::new());
        for _ in 0..sizes.runs {
            let (t, peak, out) = rancherctl(
                rancherctl_bin,
                &sim,
                &state,
                &ca,
                &["run", "access-review", "-o", "json"],
            )?;
            let doc: serde_json::Value =
                serde_json::from_slice(&out).context("access-review printed no JSON document")?;
            let shown = doc["users"].as_array().map(Vec::len).unwrap_or(0);
            ensure!(
                shown >= users,
                "access-review showed {shown} users, expected at least {users}"
            );
            took.push(t);
            peaks.push(peak as f64 / 1024.0);
        }
        figures.push(
            Figure::timings(
                format!("review.access_review{tag}"),
                9,
                format!("`rancherctl run access-review -o json`, {users} users, {held} bindings (mixed)"),
                Unit::Seconds,
                &took,
            )
            .with_note(format!("simulator seeded in {:.1} s", seeded.as_secs_f64())),
        );
        figures.push(
            Figure::new(
                format!("review.access_review{tag}_rss"),
                9,
                format!("peak RSS of `rancherctl run access-review -o json`, {users} users"),
                Unit::MiB,
                peaks,
            )
            .with_note("VmHWM sampled every 2 ms"),
        );
        // who-can (who holds the admin global role: every user streams past the index) and an offboarding plan
        // (a dry run for one bulk user: the admins and the target are kept, the other users stream past).
        let target = format!("user{:05}", users / 2);
        for (key, what, args) in [
            (
                "who_can",
                "`rancherctl run who-can --input global-role=admin -o json`".to_string(),
                vec!["run", "who-can", "--input", "global-role=admin", "-o", "json"],
            ),
            (
                "offboard",
                format!("`rancherctl run offboard-user --input user={target} --dry-run -o json`"),
                vec![
                    "run",
                    "offboard-user",
                    "--input",
                    &format!("user={target}"),
                    "--dry-run",
                    "-o",
                    "json",
                ],
            ),
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (mut took, mut peaks) = (Vec::new(), Vec::new());
            for _ in 0..sizes.runs {
                let (t, peak, out) = rancherctl(rancherctl_bin, &sim, &state, &ca, &args)?;
                let _: serde_json::Value =
                    serde_json::from_slice(&out).with_context(|| format!("{what} printed no JSON document"))?;
                took.push(t);
                peaks.push(peak as f64 / 1024.0);
            }
            figures.push(Figure::timings(
                format!("review.{key}{tag}"),
                9,
                format!("{what}, {users} users, {held} bindings (mixed)"),
                Unit::Seconds,
                &took,
            ));
            figures.push(
                Figure::new(
                    format!("review.{key}{tag}_rss"),
                    9,
                    format!("peak RSS of {what}, {users} users"),
                    Unit::MiB,
                    peaks,
                )
                .with_note("VmHWM sampled every 2 ms"),
            );
        }
        drop(sim);
    }
    Ok((figures, notes))
}

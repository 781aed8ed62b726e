//! Case 8: the product path, whole process against whole process. `rancherctl run list-users -o json` (and
//! `-o table`) lists every user of a simulator seeded with 50,000 and 100,000 extra users and writes them to a
//! file; the Python `kubernetes` client does the same job (every page of the RK users, every item written to a
//! file as one JSON array, or as table rows). Each run is a fresh process: its wall time, and its peak RSS read
//! from `/proc/PID/status` (`VmHWM`, the kernel's high-water mark) every 2 ms until it exits.

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

/// The Python peer's program: lists every RK user with `limit`/`continue` through `CustomObjectsApi` and writes
/// each page's items to the output file as they arrive, as one JSON array (`json`) or as padded rows (`table`).
/// The token comes from the `BENCH_TOKEN` environment variable, never from the command line.
pub const PYTHON_WRITE: &str = r#"
import json, os, sys
from kubernetes import client

cfg = client.Configuration()
cfg.host = sys.argv[1]
cfg.ssl_ca_cert = sys.argv[2]
cfg.api_key = {"authorization": os.environ["BENCH_TOKEN"]}
cfg.api_key_prefix = {"authorization": "Bearer"}
api = client.CustomObjectsApi(client.ApiClient(cfg))
fmt, out_path = sys.argv[3], sys.argv[4]
count, token = 0, None
with open(out_path, "w") as out:
    if fmt == "json":
        out.write("[")
    else:
        out.write("%-12s  %-12s  %-20s  %s\n" % ("ID", "USERNAME", "NAME", "ENABLED"))
    while True:
        kwargs = {"limit": 500}
        if token:
            kwargs["_continue"] = token
        page = api.list_cluster_custom_object("management.cattle.io", "v3", "users", **kwargs)
        for item in page["items"]:
            if fmt == "json":
                out.write(",\n" if count else "\n")
                out.write(json.dumps(item, indent=2))
            else:
                md = item.get("metadata") or {}
                out.write("%-12s  %-12s  %-20s  %s\n" % (md.get("name", ""), item.get("username", ""),
                          item.get("displayName", ""), "no" if item.get("enabled") is False else "yes"))
            count += 1
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            break
    if fmt == "json":
        out.write("\n]\n")
print(count)
"#;

/// One finished run: wall time and peak RSS (MiB).
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    peak_mib: f64,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `cmd` (its stdout already pointed somewhere) to completion, sampling its `VmHWM` every 2 ms (a lower
/// bound of the true peak that misses at most the growth of its last 2 ms).
fn measure(cmd: &mut Command) -> Result<Sample> {
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let pid = child.id();
    let mut peak = 0u64;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            bail!("gave up after 600 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        bail!("exited with {status}: {}", err.lines().next().unwrap_or(""));
    }
    ensure!(peak > 0, "no /proc/PID/status reading (not Linux?)");
    Ok(Sample {
        wall,
        peak_mib: peak as f64 / 1024.0,
    })
}

/// What case 8 measured.
#[derive(Debug, Clone)]
pub struct ProcessResult {
    /// Figures `proc.<tool>.<format>.<N>.time` (s) and `.rss` (MiB), tool `rancherctl` or `python`.
    pub figures: Vec<Figure>,
    /// The totals, smallest first.
    pub sizes: Vec<usize>,
}

/// Measures `rancherctl` (and the Python peer, when given) at each size, `runs` times each, alternating.
pub fn run(
    opts: &Options,
    rancherctl: &Path,
    python: Option<&Peer>,
    sizes: &[usize],
    runs: usize,
) -> Result<ProcessResult> {
    let dir = temp_dir_in(&opts.work_dir, "process-")?;
    let script = dir.path().join("list_write.py");
    std::fs::write(&script, PYTHON_WRITE)?;
    let mut figures = Vec::new();
    for &n in sizes {
        let sim = Sim::start(SimConfig::default().users(n).seed(3))?;
        let ca = dir.path().join(format!("ca-{n}.pem"));
        write_private(&ca, sim.handle().ca_pem().as_bytes())?;
        let token = sim.admin_token();
        let state = dir.path().join(format!("state-{n}"));
        let config = dir.path().join(format!("config-{n}"));
        let ours = |args: &[&str]| -> Command {
            let mut c = Command::new(rancherctl);
            c.args(args)
                .env("RANCHER_DOMAIN", sim.handle().domain())
                .env("RANCHER_CA_CERT", &ca)
                .env("RANCHER_TOKEN", token.expose_secret())
                .env("RANCHERCTL_STATE_DIR", &state)
                .env("RANCHERCTL_CONFIG_DIR", &config)
                .env("HOME", dir.path())
                .env_remove("RANCHER_PROFILE")
                .env_remove("RUST_LOG");
            c
        };
        let install = ours(&["workflows", "install", "list-users"])
            .output()
            .context("installing list-users")?;
        ensure!(
            install.status.success(),
            "rancherctl workflows install list-users failed: {}",
            String::from_utf8_lossy(&install.stderr).trim()
        );
        for format in ["json", "table"] {
            let out = dir.path().join(format!("out-{n}.{format}"));
            let mut ours_s = Vec::new();
            let mut py_s = Vec::new();
            for _ in 0..runs {
                // `rancherctl ... > file`, without a shell.
                let mut cmd = ours(&["run", "list-users", "-o", format]);
                cmd.stdout(std::fs::File::create(&out)?);
                ours_s.push(measure(&mut cmd).with_context(|| format!("rancherctl run list-users -o {format}"))?);
                check_output(&out, format, n)?;
                if let Some(py) = python {
                    let mut cmd = Command::new(&py.program);
                    cmd.arg(&script)
                        .arg(sim.base_url())
                        .arg(&ca)
                        .arg(format)
                        .arg(&out)
                        .env("BENCH_TOKEN", token.expose_secret())
                        .stdout(Stdio::null());
                    py_s.push(measure(&mut cmd).with_context(|| format!("the Python peer, {format}"))?);
                    check_output(&out, format, n)?;
                }
            }
            let _ = std::fs::remove_file(&out);
            for (tool, samples, words) in [
                (
                    "rancherctl",
                    &ours_s,
                    format!("`rancherctl run list-users -o {format}` > file"),
                ),
                (
                    "python",
                    &py_s,
                    format!("Python kubernetes client, every page, items written as {format} to a file"),
                ),
            ] {
                if samples.is_empty() {
                    continue;
                }
                let walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
                figures.push(
                    Figure::timings(
                        format!("proc.{tool}.{format}.{n}.time"),
                        8,
                        format!("{words}, {n} users, whole process"),
                        Unit::Seconds,
                        &walls,
                    )
                    .with_work(n as f64, "users"),
                );
                figures.push(Figure::new(
                    format!("proc.{tool}.{format}.{n}.rss"),
                    8,
                    format!("peak RSS of {words}, {n} users"),
                    Unit::MiB,
                    samples.iter().map(|s| s.peak_mib).collect(),
                ));
            }
        }
    }
    Ok(ProcessResult {
        figures,
        sizes: sizes.to_vec(),
    })
}

/// Checks that a run wrote every user: a JSON array of at least `n` items, or at least `n` table rows.
fn check_output(path: &Path, format: &str, n: usize) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let items = if format == "json" {
        serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&text)
            .context("the output is not one JSON array")?
            .len()
    } else {
        text.lines().count().saturating_sub(2)
    };
    ensure!(items >= n, "the output holds {items} users, expected at least {n}");
    Ok(())
}

//! Case 2: peak memory of a process that streams every user against one that collects them, as the total grows.
//! Each measurement is a fresh child process (`rancher-bench-rss`) that reads its own `VmHWM`.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use rancher_api::ExposeSecret;
use rancher_sim::SimConfig;

use crate::harness::{temp_dir_in, Sim};
use crate::stats::{Figure, Unit};
use crate::Options;

/// The environment variable that carries the token to the child (never a command-line argument).
pub const TOKEN_ENV: &str = "RANCHER_BENCH_TOKEN";

/// What the child reports, one JSON line on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RssReport {
    /// Users seen.
    pub items: usize,
    /// Peak RSS before listing (runtime and client built), KiB.
    pub baseline_kib: u64,
    /// Peak RSS at the end, KiB.
    pub peak_kib: u64,
}

/// How the child lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count users as they stream by, keeping none.
    Stream,
    /// Collect every user into a `Vec`.
    Collect,
}

impl Mode {
    /// The child's command-line word.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Stream => "stream",
            Mode::Collect => "collect",
        }
    }
}

fn child(bin: &Path, mode: Mode, sim: &Sim, ca_file: &Path) -> Result<RssReport> {
    let out = Command::new(bin)
        .arg(mode.as_str())
        .arg(sim.handle().domain())
        .arg(ca_file)
        .env(TOKEN_ENV, sim.admin_token().expose_secret())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            bin.display(),
            mode.as_str(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("the memory child printed no report")
}

/// What the memory case measured.
#[derive(Debug, Clone)]
pub struct MemoryResult {
    /// Figures `mem.stream.<N>` and `mem.collect.<N>` (peak RSS in MiB).
    pub figures: Vec<Figure>,
    /// The totals measured, smallest first.
    pub sizes: Vec<usize>,
}

/// Measures streaming and collecting at each size in `sizes`.
pub fn run(opts: &Options, sizes: &[usize]) -> Result<MemoryResult> {
    let runs = if opts.quick { 1 } else { 3 };
    let dir = temp_dir_in(&opts.work_dir, "memory-")?;
    let mut figures = Vec::new();
    for &n in sizes {
        let sim = Sim::start(SimConfig::default().users(n).seed(2))?;
        let ca_file = dir.path().join(format!("ca-{n}.pem"));
        std::fs::write(&ca_file, sim.handle().ca_pem())?;
        for mode in [Mode::Stream, Mode::Collect] {
            let mut peaks = Vec::new();
            let mut baselines = Vec::new();
            for _ in 0..runs {
                let r = child(&opts.rss_bin, mode, &sim, &ca_file)?;
                if r.items < n {
                    bail!("the memory child saw {} users, expected at least {n}", r.items);
                }
                peaks.push(r.peak_kib as f64 / 1024.0);
                baselines.push(r.baseline_kib as f64 / 1024.0);
            }
            let base = crate::stats::median(&baselines);
            figures.push(
                Figure::new(
                    format!("mem.{}.{n}", mode.as_str()),
                    2,
                    format!(
                        "peak RSS, {} {n} users",
                        if mode == Mode::Stream {
                            "streaming"
                        } else {
                            "collecting"
                        }
                    ),
                    Unit::MiB,
                    peaks,
                )
                .with_note(format!("baseline before listing {base:.1} MiB")),
            );
        }
    }
    Ok(MemoryResult {
        figures,
        sizes: sizes.to_vec(),
    })
}

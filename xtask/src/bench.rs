//! `cargo xtask bench [--quick]`: builds the bench (crate `rancher-bench`) and `rancherctl` in release mode, then
//! runs every case against rancher-sim. A full run prints the table and writes it into docs/benchmarks.md; a quick
//! run (toy sizes, no peer installation, no speed verdicts) only prints it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The usage line.
pub const USAGE: &str = "usage: cargo xtask bench [--quick]";

fn target_dir(root: &Path, cargo: &str) -> Result<PathBuf> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    meta.get("target_directory")
        .and_then(|t| t.as_str())
        .map(PathBuf::from)
        .context("cargo metadata names no target directory")
}

/// Runs the bench from the workspace at `root` with the arguments after `bench`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut quick = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            other => bail!("unknown bench flag `{other}`; {USAGE}"),
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "rancher-bench", "-p", "rancher-cli"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the bench failed");
    }
    let target = target_dir(root, &cargo)?;
    let release = target.join("release");
    let exe = |name: &str| release.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut bench = Command::new(exe("rancher-bench"));
    bench
        .current_dir(root)
        .arg("--rancherctl")
        .arg(exe("rancherctl"))
        .arg("--work-dir")
        .arg(target.join("bench-work"))
        .arg("--peers-dir")
        .arg(target.join("bench-peers"));
    if quick {
        bench.arg("--quick");
    } else {
        bench.arg("--out").arg(root.join("docs").join("benchmarks.md"));
    }
    let status = bench.status().context("running rancher-bench")?;
    if !status.success() {
        bail!("the bench failed ({status})");
    }
    Ok(())
}

//! Case 5: start-up time of `rancherctl workflows list`, a fresh process each run, with an approval store that
//! holds an installation (so the store file is opened and read, as on a real machine).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use chrono::Utc;
use rancher_approval::{Policy, Principal, SqliteStore, Store};

use crate::harness::temp_dir_in;
use crate::stats::{Figure, Unit};
use crate::Options;

/// Environment variables rancherctl reads that must not leak in from the caller.
const CLEARED: &[&str] = &[
    "RANCHER_TOKEN",
    "RANCHER_DOMAIN",
    "RANCHER_CA_CERT",
    "RANCHER_PROFILE",
    "RANCHERCTL_STATE_DIR",
    "RANCHERCTL_CONFIG_DIR",
];

/// Runs `rancherctl workflows list` `runs` times (after three warm-up runs) and returns the wall times.
pub fn run(opts: &Options, rancherctl: &Path, runs: usize) -> Result<Figure> {
    let dir = temp_dir_in(&opts.work_dir, "startup-")?;
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state)?;
    {
        let store = SqliteStore::open(state.join("approvals.db"))?;
        let alice = Principal::new("u-alice");
        let install = store.install("create-global-role-binding", &alice, Policy::installer(), Utc::now());
        crate::harness::client_runtime()?.block_on(install)?;
    }
    let config = dir.path().join("config");
    let once = || -> Result<std::time::Duration> {
        let mut cmd = Command::new(rancherctl);
        cmd.arg("--state-dir")
            .arg(&state)
            .args(["workflows", "list"])
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_DATA_HOME", dir.path());
        for v in CLEARED {
            cmd.env_remove(v);
        }
        let start = Instant::now();
        let status = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {}", rancherctl.display()))?;
        let d = start.elapsed();
        ensure!(status.success(), "`rancherctl workflows list` exited with {status}");
        Ok(d)
    };
    for _ in 0..3 {
        once()?;
    }
    let times = (0..runs).map(|_| once()).collect::<Result<Vec<_>>>()?;
    Ok(Figure::timings(
        "startup.workflows_list",
        5,
        "`rancherctl workflows list`, fresh process",
        Unit::Millis,
        &times,
    )
    .with_note(format!("{runs} runs of the release binary, output to /dev/null")))
}

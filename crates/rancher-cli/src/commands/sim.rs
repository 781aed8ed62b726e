//! `rancherctl sim`: the simulator for people; stdout carries only shell-sourceable lines.

use anyhow::Context as _;
use rancher_sim::{RancherVersion, SimConfig};

use crate::cli::SimArgs;
use crate::context::Context;
use crate::error::{Exit, Failure};

/// Starts the simulator, writes its CA into the state directory and serves until Ctrl-C.
pub async fn sim(ctx: &Context, args: SimArgs) -> anyhow::Result<Exit> {
    let version = RancherVersion::parse(&args.rancher_version).ok_or_else(|| {
        Failure::new(format!("unknown Rancher version `{}`", args.rancher_version), "use one of 2.13, 2.12, 2.11, 2.8, 1.6")
    })?;
    let dir = ctx.state_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the state directory {}", dir.display()))?;
    let ca_path = dir.join("sim-ca.pem");
    eprintln!("rancher-sim: Rancher {} with {} extra users; CA in {}; Ctrl-C stops it", version.full(), args.users, ca_path.display());
    eprintln!("rancher-sim: in another shell, export the lines printed below, then run rancherctl as usual");
    rancher_sim::run_until_signal(SimConfig::default().rancher_version(version).users(args.users).port(args.port), &ca_path)
        .await
        .map_err(|e| anyhow::anyhow!("the simulator failed: {e}"))?;
    Ok(Exit::Done)
}

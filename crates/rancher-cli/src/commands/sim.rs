//! `rancherctl sim`: the simulator for people; stdout carries only shell-sourceable lines.

use std::path::Path;

use anyhow::Context as _;
use rancher_sim::{RancherVersion, SimConfig};

use crate::cli::SimArgs;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

/// Starts the simulator, writes its CA into the state directory and serves until Ctrl-C.
pub async fn sim(ctx: &Context, args: SimArgs) -> anyhow::Result<Exit> {
    let version = RancherVersion::parse(&args.rancher_version).ok_or_else(|| {
        Failure::new(format!("unknown Rancher version `{}`", args.rancher_version), "use one of 2.13, 2.12, 2.11, 2.8, 1.6")
    })?;
    let dir = ctx.ensure_state_dir()?;
    let ca_path = dir.join("sim-ca.pem");
    // Every file written here is the owner's only (the simulator rewrites it in place, keeping the mode).
    private_file(&ca_path).with_context(|| format!("creating {}", ca_path.display()))?;
    warn_if_stdout_is_shared();
    eprintln!("rancher-sim: Rancher {} with {} extra users and {} extra tokens; CA in {}; Ctrl-C stops it", version.full(), args.users, args.tokens, ca_path.display());
    eprintln!("rancher-sim: in another shell, export the lines printed below, then run rancherctl as usual");
    rancher_sim::run_until_signal(SimConfig::default().rancher_version(version).users(args.users).tokens(args.tokens).port(args.port), &ca_path)
        .await
        .map_err(|e| anyhow::anyhow!("the simulator failed: {e}"))?;
    Ok(Exit::Done)
}

/// Creates (or empties) `path` with mode 0600.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    drop(f);
    Ok(())
}

/// The lines on stdout hold the simulator's tokens: warn when stdout is a file others may read
/// (`rancherctl sim > sim.env` under the usual umask 022).
fn warn_if_stdout_is_shared() {
    #[cfg(unix)]
    if let Ok(st) = rustix::fs::fstat(std::io::stdout()) {
        let mode = st.st_mode & 0o777;
        if rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() && mode & 0o077 != 0 {
            output::warn(format!(
                "stdout is a file others may read (mode {mode:o}) and it receives the simulator's tokens: `chmod 600` it, or run `umask 077` before redirecting"
            ));
        }
    }
}

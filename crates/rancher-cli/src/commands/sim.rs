//! `rancherctl sim`: the simulator for people; stdout carries only shell-sourceable lines.

use std::path::Path;

use anyhow::Context as _;
use rancher_sim::{RancherVersion, SimConfig};

use crate::cli::SimArgs;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

/// Starts the simulator, writes its CA into the state directory (a file of its own port, so a second simulator
/// never replaces the CA a first one's users trust), prints the environment lines on stdout (and into
/// `--env-file`) and serves until Ctrl-C or SIGTERM; the CA file is removed when it stops.
pub async fn sim(ctx: &Context, args: SimArgs) -> anyhow::Result<Exit> {
    let version = RancherVersion::parse(&args.rancher_version).ok_or_else(|| {
        Failure::new(
            format!("unknown Rancher version `{}`", args.rancher_version),
            "use one of 2.13, 2.12, 2.11, 2.8, 1.6",
        )
    })?;
    let dir = ctx.ensure_state_dir()?;
    warn_if_stdout_is_shared();
    let handle = rancher_sim::Simulator::start(
        SimConfig::default()
            .rancher_version(version)
            .users(args.users)
            .tokens(args.tokens)
            .port(args.port),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the simulator failed to start: {e}"))?;
    let ca_path = dir.join(format!("sim-ca-{}.pem", handle.port()));
    write_private(&ca_path, handle.ca_pem().as_bytes()).with_context(|| format!("writing {}", ca_path.display()))?;
    let lines = export_lines(&handle.env_lines(&ca_path));
    if let Some(path) = &args.env_file {
        write_private(path, lines.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "rancher-sim: Rancher {} on {} with {} extra users and {} extra tokens; CA in {}; Ctrl-C stops it",
        version.full(),
        handle.domain(),
        args.users,
        args.tokens,
        ca_path.display()
    );
    match &args.env_file {
        Some(path) => eprintln!("rancher-sim: in another shell, run `set -a; . {}; set +a`, then rancherctl as usual", path.display()),
        None => eprintln!("rancher-sim: in another shell, load the lines printed on stdout (`set -a; . ./sim.env; set +a` after `rancherctl sim > sim.env &`), then run rancherctl as usual"),
    }
    output::stdout_or_quit(lines.as_bytes());
    crate::commands::serve::stop_signal().await;
    handle.shutdown().await;
    let _ = std::fs::remove_file(&ca_path);
    Ok(Exit::Done)
}

/// `KEY=VALUE` lines as `export KEY=VALUE`: sourced or `eval`ed, they reach the commands run afterwards.
fn export_lines(lines: &str) -> String {
    lines
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("export {l}\n"))
        .collect()
}

/// Writes `bytes` to `path` with mode 0600 (replacing the file), through a temporary file in the same directory.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    private_file(&tmp)?;
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
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

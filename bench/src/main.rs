//! `rancher-bench [--quick] [--only N,N...] [--no-peers] [--out FILE] [--rancherctl PATH] [--work-dir DIR] [--peers-dir DIR]`: runs every case,
//! prints the table, and (full runs with `--out`) writes it into FILE between the bench markers.
//! Usually started by `cargo xtask bench`, which builds it and rancherctl in release mode first.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use rancher_bench::report::splice;
use rancher_bench::{run, Options};

/// The same allocator as rancherctl, so the library figures are what its users get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: rancher-bench [--quick] [--only N,N...] [--no-peers] [--out FILE] [--rancherctl PATH] [--work-dir DIR] [--peers-dir DIR]";

fn main() -> Result<()> {
    let exe = std::env::current_exe().context("locating this program")?;
    let mut opts = Options::full(exe.with_file_name(format!("rancher-bench-rss{}", std::env::consts::EXE_SUFFIX)));
    let sibling = exe.with_file_name(format!("rancherctl{}", std::env::consts::EXE_SUFFIX));
    opts.rancherctl = sibling.is_file().then_some(sibling);
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .map(PathBuf::from)
                .with_context(|| format!("{name} needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--out" => out = Some(value("--out")?),
            "--no-peers" => opts.peers = false,
            "--only" => {
                let list = value("--only")?;
                for n in list.to_string_lossy().split(',') {
                    match n.trim().parse::<u8>() {
                        Ok(n @ 1..=10) => opts.only.push(n),
                        _ => bail!("--only takes case numbers 1 to 10, e.g. --only 1,3; {USAGE}"),
                    }
                }
            }
            "--rancherctl" => opts.rancherctl = Some(value("--rancherctl")?),
            "--work-dir" => opts.work_dir = value("--work-dir")?,
            "--peers-dir" => opts.peers_dir = value("--peers-dir")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`; {USAGE}"),
        }
    }
    let report = run(&opts)?;
    let md = report.markdown();
    println!("{md}");
    match (&out, opts.quick || !opts.only.is_empty() || !opts.peers) {
        (Some(path), false) => {
            let doc = std::fs::read_to_string(path).unwrap_or_default();
            std::fs::write(path, splice(&doc, &md)).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("bench: wrote {}", path.display());
        }
        (Some(path), true) => eprintln!("bench: quick or partial run: {} left as it is", path.display()),
        (None, _) => {}
    }
    if !report.failures.is_empty() {
        bail!(
            "{} case(s) failed: {}",
            report.failures.len(),
            report.failures.join("; ")
        );
    }
    Ok(())
}

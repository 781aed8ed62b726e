//! The access-review part of case 9 alone (access-review, who-can, an offboarding plan, at a tenth of the size and
//! at full size), for measuring and profiling without the token part.
//!
//! `cargo run --release -p rancher-bench --example bench_review -- RANCHERCTL [USERS] [BINDINGS] [RUNS]`
//! (defaults: 100000 users, 300000 bindings, 1 run); prints one line per figure: min / median / max.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rancher_bench::review::{run_access, ReviewSizes};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = PathBuf::from(args.first().context("give the rancherctl binary to measure")?);
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let sizes = ReviewSizes {
        token_users: 0,
        tokens: 0,
        review_users: num(1, 100_000),
        review_bindings: num(2, 300_000),
        runs: num(3, 1),
    };
    let dir = tempfile::Builder::new().prefix("bench-review-").tempdir()?;
    let (figures, notes) = run_access(&bin, &dir, sizes)?;
    for f in figures {
        let note = f.note.clone().unwrap_or_default();
        println!(
            "{:32} {:>10.3} {:>10.3} {:>10.3}  {} ({note})",
            f.key,
            f.min(),
            f.median(),
            f.max(),
            f.label
        );
    }
    for n in notes {
        println!("note: {n}");
    }
    Ok(())
}

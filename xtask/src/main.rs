//! `cargo xtask <task>`: maintainer tasks.
use anyhow::{bail, Result};

mod bench;

const USAGE: &str = "usage: cargo xtask codegen [--check] | cargo xtask bench [--quick]";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = xtask::codegen::workspace_root();
    match args.first().map(String::as_str) {
        Some("codegen") => {
            let check = match args.get(1).map(String::as_str) {
                None => false,
                Some("--check") => true,
                Some(other) => bail!("unknown codegen flag `{other}`; usage: cargo xtask codegen [--check]"),
            };
            xtask::codegen::run(&root, check)
        }
        Some("bench") => bench::run(&root, &args[1..]),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

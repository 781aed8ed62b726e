//! `cargo xtask <task>`: maintainer tasks.
use anyhow::{bail, Result};

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
        _ => {
            eprintln!("usage: cargo xtask codegen [--check]");
            std::process::exit(2);
        }
    }
}

//! `rancherctl`: the operator's command-line tool.

/// mimalloc: decoding a long list allocates and frees many small strings; it is measurably cheaper there than
/// the system allocator (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    rancher_cli::harden_process();
    std::process::exit(rancher_cli::run_from(std::env::args_os()));
}

//! `rancherctl`: the operator's command-line tool.

/// mimalloc: decoding a page allocates a string per field; with glibc's malloc, decoding 50,000 users spent most
/// of its time in `_int_malloc` / `malloc_consolidate` (bench case 1's parse floor: about 0.45 s, 0.1 s with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    rancher_cli::harden_process();
    std::process::exit(rancher_cli::run_from(std::env::args_os()));
}

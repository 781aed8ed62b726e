//! `rancherctl`: the operator's command-line tool.

/// mimalloc (its v2 line, pinned in the workspace): decoding a page allocates a string per field, and with glibc's
/// malloc most of the decoding time went to `_int_malloc` / `malloc_consolidate`. v3 was tried and left out: it
/// commits its arenas eagerly (about 60 MiB peak listing 50,000 users, against about 42 MiB with v2).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    rancher_cli::harden_process();
    std::process::exit(rancher_cli::run_from(std::env::args_os()));
}

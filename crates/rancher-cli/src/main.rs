//! `rancherctl`: the operator's command-line tool.

fn main() {
    rancher_cli::harden_process();
    std::process::exit(rancher_cli::run_from(std::env::args_os()));
}

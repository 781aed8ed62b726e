//! `rancherctl`: the operator's command-line tool.
fn main() {
    eprintln!("rancherctl: not built yet");
    std::process::exit(1);
}

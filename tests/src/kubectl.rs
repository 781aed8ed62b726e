//! The stock kubectl as a peer of the simulator: where it is, and a kubeconfig that points it at the simulator.

use std::path::{Path, PathBuf};

use rancher_sim::SimHandle;

/// The kubectl binary (`KUBECTL`, else the usual places), if this machine has one.
pub fn path() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("KUBECTL").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/kubectl")),
        Some(PathBuf::from("/usr/local/bin/kubectl")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// A kubeconfig for the simulator's local cluster with the admin token, written to `dir` (a test's temporary
/// directory) with the simulator's CA beside it.
pub fn kubeconfig(sim: &SimHandle, dir: &Path) -> PathBuf {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sim.ca_pem()).expect("CA written");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: admin\ncurrent-context: sim\n",
        sim.base_url(),
        ca.display(),
        sim.tokens().admin
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).expect("kubeconfig written");
    path
}

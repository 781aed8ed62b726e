//! Stock kubectl against the simulator: discovery, get, list in chunks, create with kubectl's default client-side
//! validation (which downloads the server's OpenAPI documents) and delete. Uses the machine's kubectl; when there
//! is none the test says so on stderr and passes, never silently.

use std::path::Path;
use std::process::{Command, Output};

use rancher_access_tests::sim;
use rancher_sim::RancherVersion;

use rancher_access_tests::kubectl::{kubeconfig, path as kubectl_path};

fn run(kubectl: &Path, config: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(kubectl)
        .env_clear()
        .env("KUBECONFIG", config)
        .env("HOME", cache)
        .arg("--cache-dir")
        .arg(cache.join("cache"))
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_kubectl_gets_lists_creates_and_deletes() {
    let Some(kubectl) = kubectl_path() else {
        eprintln!("NOTE: kubectl is not installed on this machine: the stock-kubectl test did not run (set KUBECTL to its path)");
        return;
    };
    let sim = sim(RancherVersion::V2_13, 40).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = kubeconfig(&sim, dir.path());
    let d = dir.path().to_path_buf();
    let k = kubectl.clone();
    let alice = sim.users().user.id.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut outs = Vec::new();
        outs.push(("get one", run(&k, &config, &d, &["get", "globalroles.management.cattle.io", "admin", "-o", "name"])));
        outs.push(("list in chunks", run(&k, &config, &d, &["get", "users.management.cattle.io", "--chunk-size=7", "-o", "name"])));
        let manifest = d.join("grb.yaml");
        std::fs::write(
            &manifest,
            format!("apiVersion: management.cattle.io/v3\nkind: GlobalRoleBinding\nmetadata:\n  name: kubectl-grb\nglobalRoleName: user-base\nuserName: {alice}\n"),
        )
        .expect("manifest");
        outs.push(("create (validated)", run(&k, &config, &d, &["create", "-f", manifest.to_str().expect("path")])));
        outs.push(("get created", run(&k, &config, &d, &["get", "globalrolebindings.management.cattle.io", "kubectl-grb", "-o", "jsonpath={.globalRoleName}"])));
        outs.push(("delete", run(&k, &config, &d, &["delete", "globalrolebindings.management.cattle.io", "kubectl-grb", "--wait=true", "--timeout=20s"])));
        outs
    })
    .await
    .expect("joined");
    let mut outs = out.into_iter();
    let (w, o) = outs.next().expect("get");
    assert_eq!(ok(&o, w).trim(), "globalrole.management.cattle.io/admin");
    let (w, o) = outs.next().expect("list");
    let names = ok(&o, w);
    assert_eq!(
        names.lines().count(),
        sim.count("users"),
        "every user across chunks of 7"
    );
    let (w, o) = outs.next().expect("create");
    assert!(ok(&o, w).contains("kubectl-grb created"));
    let (w, o) = outs.next().expect("get created");
    assert_eq!(ok(&o, w), "user-base");
    let (w, o) = outs.next().expect("delete");
    assert!(ok(&o, w).contains("deleted"));
    assert!(
        sim.object("globalrolebindings", "kubectl-grb").is_none(),
        "gone after kubectl's wait"
    );
}

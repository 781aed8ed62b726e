//! Watching Rancher's access objects (issue 32): stock kubectl follows the simulator's watch streams; the
//! service's watcher links each binding change to its request or reports it as out of band.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rancher_access_tests::process::SpawnKilledOnDrop;
use rancher_access_tests::sim;
use rancher_sim::{RancherVersion, SimHandle};
use serde_json::{json, Value};

fn kubectl_path() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("KUBECTL").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/kubectl")),
        Some(PathBuf::from("/usr/local/bin/kubectl")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// A kubeconfig for the simulator's local cluster with the admin token, written to `dir`.
fn kubeconfig(sim: &SimHandle, dir: &Path) -> PathBuf {
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

/// Waits (up to 30 s, a guard against hanging) until the simulator has been asked for a watch of `plural`.
async fn watch_opened(sim: &SimHandle, plural: &str) {
    for _ in 0..300 {
        if sim
            .request_log()
            .iter()
            .any(|r| r.path.contains(plural) && r.path.contains("watch=true"))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no watch of {plural} was opened within 30 s");
}

/// The next value kubectl printed (a 30 s guard against hanging, not a timing assertion).
async fn next_value(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("kubectl prints the event within 30 s")
        .expect("kubectl still runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_kubectl_follows_a_watch_of_bindings() {
    let Some(kubectl) = kubectl_path() else {
        eprintln!("NOTE: kubectl is not installed on this machine: the kubectl watch test did not run (set KUBECTL to its path)");
        return;
    };
    let sim = sim(RancherVersion::V2_13, 10).await;
    let dir = tempfile::tempdir().expect("dir");
    let config = kubeconfig(&sim, dir.path());
    let mut child = Command::new(&kubectl)
        .env_clear()
        .env("KUBECONFIG", &config)
        .env("HOME", dir.path())
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args([
            "get",
            "clusterroletemplatebindings.management.cattle.io",
            "--all-namespaces",
            "--watch-only",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_killed_on_drop()
        .expect("kubectl starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for v in serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>() {
            match v {
                Ok(v) => {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    watch_opened(&sim, "clusterroletemplatebindings").await;

    let cluster = sim.users().downstream_cluster.clone();
    let bob = sim.user_id("bob").expect("seeded bob");
    let http = rancher_access_tests::server::sim_http(&sim);
    let base = format!(
        "{}/apis/management.cattle.io/v3/namespaces/{cluster}/clusterroletemplatebindings",
        sim.base_url()
    );
    let made: Value = http
        .post(&base)
        .bearer_auth(&sim.tokens().admin)
        .json(
            &json!({"metadata": {"generateName": "crtb-", "namespace": cluster}, "clusterName": cluster,
                      "roleTemplateName": "cluster-member", "userName": bob}),
        )
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("created binding");
    let name = made["metadata"]["name"].as_str().expect("name").to_string();
    let e = next_value(&mut rx).await;
    assert_eq!(e["type"], "ADDED", "{e}");
    assert_eq!(e["object"]["metadata"]["name"], name.as_str(), "{e}");
    assert_eq!(e["object"]["userName"], bob.as_str(), "{e}");

    let st = http
        .delete(format!("{base}/{name}"))
        .bearer_auth(&sim.tokens().admin)
        .send()
        .await
        .expect("delete")
        .status();
    assert!(st.is_success(), "{st}");
    let mut types = Vec::new();
    while types.last() != Some(&"DELETED".to_string()) {
        let e = next_value(&mut rx).await;
        assert_eq!(e["object"]["metadata"]["name"], name.as_str(), "{e}");
        types.push(e["type"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(types, ["MODIFIED", "DELETED"], "the finalizer's mark, then the removal");
    drop(child);
}

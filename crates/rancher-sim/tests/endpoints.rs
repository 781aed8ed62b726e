//! Every operation of the endpoint list (crates/rancher-api/endpoints/*.yaml) is routed by the simulator
//! playing a version where the operation exists: none may answer "no such route" (or 405).

mod common;

use common::*;
use rancher_sim::RancherVersion;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    operations: Vec<Op>,
}

#[derive(Debug, Deserialize)]
struct Op {
    id: String,
    surface: String,
    method: String,
    path: String,
    since: String,
    #[serde(default)]
    removed: Option<String>,
}

fn ver(text: &str) -> (u32, u32) {
    let mut p = text.trim_start_matches('v').split('.');
    (
        p.next().and_then(|x| x.parse().ok()).unwrap_or(0),
        p.next().and_then(|x| x.parse().ok()).unwrap_or(0),
    )
}

/// The newest generation we play in which the operation exists.
fn pick(op: &Op) -> Option<RancherVersion> {
    [
        RancherVersion::V2_13,
        RancherVersion::V2_12,
        RancherVersion::V2_11,
        RancherVersion::V2_8,
        RancherVersion::V1_6,
    ]
    .into_iter()
    .find(|v| {
        let mm = v.major_minor();
        mm >= ver(&op.since) && op.removed.as_deref().is_none_or(|r| mm < ver(r))
    })
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Fills `{param}`s with seeded objects.
fn fill(sim: &rancher_sim::SimHandle, path: &str) -> String {
    let segs: Vec<&str> = path.split(['/', '?']).collect();
    let mut out = path.to_string();
    if path.starts_with("/apis/") {
        let plural = segs
            .iter()
            .rev()
            .find(|s| !s.starts_with('{') && **s != "status" && !s.is_empty())
            .copied()
            .unwrap_or("");
        let kind = match (path.contains("ext.cattle.io"), plural) {
            (true, "tokens") => "exttokens",
            (_, p) => p,
        };
        let obj = sim.objects(kind).into_iter().next().unwrap_or(Value::Null);
        let name = obj["metadata"]["name"].as_str().unwrap_or("x").to_string();
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("local").to_string();
        out = out.replace("{namespace}", &ns).replace("{name}", &name);
    } else if path.starts_with("/v3/") {
        if path.contains("{kind}Configs") {
            out = out.replace("{kind}", "github").replace("{id}", "github");
        }
        let ty = segs.get(2).copied().unwrap_or("");
        let id = match ty {
            "users" => sim.users().standard[3].id.clone(),
            "globalroles" => "user".to_string(),
            "globalrolebindings"
            | "clusterroletemplatebindings"
            | "projectroletemplatebindings"
            | "projects"
            | "roletemplates" => {
                let kind = ty;
                let o = sim.objects(kind).into_iter().last().unwrap_or(Value::Null);
                let n = o["metadata"]["name"].as_str().unwrap_or("x").to_string();
                match o["metadata"]["namespace"].as_str() {
                    Some(ns) => format!("{ns}:{n}"),
                    None => n,
                }
            }
            "tokens" => sim
                .objects("tokens")
                .into_iter()
                .find(|t| t["userId"] == sim.users().standard[1].id.as_str())
                .and_then(|t| t["metadata"]["name"].as_str().map(str::to_string))
                .unwrap_or_default(),
            "clusters" => sim.users().downstream_cluster.clone(),
            "principals" => enc(&format!("local://{}", sim.users().admin.id)),
            "settings" => "server-version".to_string(),
            "authconfigs" => "github".to_string(),
            _ => "x".to_string(),
        };
        out = out.replace("{id}", &id);
    }
    out
}

/// Operations that only versions older than every simulated one serve (the simulator plays 1.6 for 1.x): GitHub's
/// config left cattle for the auth service in 1.2 (`v1.auth-config.*` from then on).
const ONLY_BEFORE_SIMULATED_VERSIONS: &[&str] = &["v1.githubconfig.get", "v1.githubconfig.update"];

#[tokio::test]
async fn every_listed_operation_is_routed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rancher-api/endpoints");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no endpoint list at {}; skipping", dir.display());
        return;
    };
    let mut ops = Vec::new();
    for e in entries.flatten() {
        if e.path().extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let f: File = serde_norway::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            ops.extend(f.operations);
        }
    }
    assert!(ops.len() > 50, "the endpoint list has operations");
    let mut failures = Vec::new();
    for op in &ops {
        let Some(v) = pick(op) else {
            if !ONLY_BEFORE_SIMULATED_VERSIONS.contains(&op.id.as_str()) {
                failures.push(format!("{}: no playable version (since {})", op.id, op.since));
            }
            continue;
        };
        // A fresh server per operation, so deletes cannot disturb the others.
        let sim = start(v).await;
        let path = fill(&sim, &op.path);
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let token = sim.tokens().admin.clone();
        let token = if op.surface == "public" || path == "/v1/token" {
            None
        } else {
            Some(token.as_str())
        };
        let mut rb = client(&sim).request(method.clone(), format!("{}{}", sim.base_url(), path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            let ct = if method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            rb = rb.header("content-type", ct).body("{}");
        }
        let r = rb.send().await.unwrap();
        let no_route = r.headers().get("x-sim-route").is_some();
        if no_route || r.status() == 405 {
            failures.push(format!(
                "{} {} {} (as {:?}) -> {}",
                op.id,
                op.method,
                path,
                v,
                r.status()
            ));
        }
    }
    assert!(failures.is_empty(), "unrouted operations:\n{}", failures.join("\n"));
}

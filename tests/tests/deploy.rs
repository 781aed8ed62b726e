//! The Kubernetes manifests in `deploy/kubernetes`: every overlay renders with `kubectl kustomize`, every object
//! it yields is a valid Kubernetes object (read into the k8s-openapi types; a field the API does not know fails the
//! test instead of being dropped), and the objects fit together: every secret, config map, key, volume, port and
//! selector they name exists, the pods meet the "restricted" Pod Security Standard, and the service's arguments
//! are flags `rancherctl serve` has and files the pod holds.
//!
//! kubectl is on the CI machines; where it is missing the test says so on stderr and checks nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodSpec, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rancher_access_tests::cli::rancherctl;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

const OVERLAYS: [&str; 2] = ["production", "local-postgres"];
/// The files the overlays read into secrets; the test writes placeholders for them.
const SECRET_FILES: [&str; 9] = [
    "service.token",
    "metrics.token",
    "webhook.secret",
    "slack-bot.token",
    "slack-signing.secret",
    "tls.crt",
    "tls.key",
    "database-url",
    "postgres-password",
];

/// The rendered objects of one overlay, typed.
#[derive(Default)]
struct Rendered {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
    stateful_sets: Vec<StatefulSet>,
    budgets: Vec<PodDisruptionBudget>,
    policies: Vec<NetworkPolicy>,
}

#[test]
fn every_overlay_renders_to_valid_objects_that_fit_together() {
    if Command::new("kubectl").args(["version", "--client"]).output().is_err() {
        eprintln!("NOTE: kubectl is not installed: deploy/kubernetes was NOT rendered or checked");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
    copy_dir(&root, &work.path().join("kubernetes"));
    let serve_help = help_of_serve();
    for overlay in OVERLAYS {
        let dir = work.path().join("kubernetes/overlays").join(overlay);
        for f in SECRET_FILES {
            std::fs::write(
                dir.join("secrets").join(f),
                format!("placeholder-{f}-0123456789abcdef\n"),
            )
            .unwrap();
        }
        let out = Command::new("kubectl").arg("kustomize").arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "kubectl kustomize {overlay}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rendered = parse(overlay, &String::from_utf8(out.stdout).unwrap());
        check(overlay, &rendered, &serve_help);
    }
}

/// `rancherctl serve --help`, to check the manifests' flags against.
fn help_of_serve() -> String {
    let out = Command::new(rancherctl()).args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Reads every YAML document into its Kubernetes type.
fn parse(overlay: &str, yaml: &str) -> Rendered {
    let mut r = Rendered::default();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let at = format!("{overlay}: {kind} {}", doc["metadata"]["name"].as_str().unwrap_or("?"));
        match kind.as_str() {
            "Namespace" => r.namespaces.push(typed(&at, &doc)),
            "ServiceAccount" => r.service_accounts.push(typed(&at, &doc)),
            "ConfigMap" => r.config_maps.push(typed(&at, &doc)),
            "Secret" => r.secrets.push(typed(&at, &doc)),
            "Service" => r.services.push(typed(&at, &doc)),
            "Deployment" => r.deployments.push(typed(&at, &doc)),
            "StatefulSet" => r.stateful_sets.push(typed(&at, &doc)),
            "PodDisruptionBudget" => r.budgets.push(typed(&at, &doc)),
            "NetworkPolicy" => r.policies.push(typed(&at, &doc)),
            other => panic!("{at}: the test does not know kind {other:?}; add it to `parse`"),
        }
    }
    r
}

/// Reads `doc` as a `T` and refuses anything the type dropped: the object written back must hold every field and
/// value of the document (a misspelt or misplaced field would otherwise vanish silently).
fn typed<T: DeserializeOwned + Serialize>(at: &str, doc: &Value) -> T {
    let value: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{at}: not a valid object: {e}"));
    let back = serde_json::to_value(&value).unwrap();
    let mut lost = Vec::new();
    dropped(doc, &back, String::new(), &mut lost);
    assert!(
        lost.is_empty(),
        "{at}: fields the Kubernetes API does not have (or with other values): {lost:#?}"
    );
    value
}

fn dropped(original: &Value, back: &Value, path: String, lost: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                match b.get(k) {
                    Some(w) => dropped(v, w, format!("{path}.{k}"), lost),
                    None => lost.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) if o.len() == b.len() => {
            for (i, (v, w)) in o.iter().zip(b).enumerate() {
                dropped(v, w, format!("{path}[{i}]"), lost);
            }
        }
        (o, b) if o == b => {}
        (o, b) => lost.push(format!("{path}: {o} became {b}")),
    }
}

fn check(overlay: &str, r: &Rendered, serve_help: &str) {
    assert_eq!(r.namespaces.len(), 1, "{overlay}: one namespace");
    let ns = &r.namespaces[0];
    let ns_name = ns.metadata.name.as_deref().unwrap();
    let ns_labels = ns.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        ns_labels.get("pod-security.kubernetes.io/enforce").map(String::as_str),
        Some("restricted"),
        "{overlay}: the namespace enforces the restricted Pod Security Standard"
    );
    for (kind, namespace) in r
        .config_maps
        .iter()
        .map(|o| ("ConfigMap", &o.metadata.namespace))
        .chain(r.secrets.iter().map(|o| ("Secret", &o.metadata.namespace)))
        .chain(r.services.iter().map(|o| ("Service", &o.metadata.namespace)))
        .chain(r.deployments.iter().map(|o| ("Deployment", &o.metadata.namespace)))
        .chain(r.stateful_sets.iter().map(|o| ("StatefulSet", &o.metadata.namespace)))
        .chain(r.budgets.iter().map(|o| ("PodDisruptionBudget", &o.metadata.namespace)))
        .chain(r.policies.iter().map(|o| ("NetworkPolicy", &o.metadata.namespace)))
        .chain(
            r.service_accounts
                .iter()
                .map(|o| ("ServiceAccount", &o.metadata.namespace)),
        )
    {
        assert_eq!(
            namespace.as_deref(),
            Some(ns_name),
            "{overlay}: a {kind} outside namespace {ns_name}"
        );
    }

    assert_eq!(r.deployments.len(), 1, "{overlay}: one Deployment, the service");
    let deployment = &r.deployments[0];
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2), "{overlay}: two replicas");
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    assert!(
        !selector.is_empty() && is_subset(&selector, &pod_labels),
        "{overlay}: the Deployment selects its pods"
    );
    let pod = spec.template.spec.as_ref().unwrap();
    check_pod(overlay, "the service", pod, &[], r);
    assert_eq!(
        pod.automount_service_account_token,
        Some(false),
        "{overlay}: no Kubernetes token is mounted"
    );
    let sa = pod.service_account_name.as_deref().unwrap();
    assert!(
        r.service_accounts
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(sa)),
        "{overlay}: service account {sa} is rendered"
    );

    let service = pod
        .containers
        .iter()
        .find(|c| c.name == "rancherctl")
        .expect("the rancherctl container");
    let port_names: BTreeSet<&str> = service
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.name.as_deref())
        .collect();
    let probe = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        let get = p.as_ref().and_then(|p| p.http_get.as_ref()).expect("an HTTP probe");
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"), "{overlay}: probes speak HTTPS");
        assert!(
            named_port(&get.port, &port_names),
            "{overlay}: probe port {:?} is a container port",
            get.port
        );
        get.path.clone().unwrap_or_default()
    };
    assert_eq!(probe(&service.liveness_probe), "/healthz");
    assert_eq!(probe(&service.startup_probe), "/healthz");
    assert_eq!(probe(&service.readiness_probe), "/readyz");
    check_serve_args(overlay, service, pod, serve_help);

    for s in &r.services {
        let sel = s.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        let target = pods_matching(r, &sel);
        assert_eq!(
            target.len(),
            1,
            "{overlay}: Service {:?} selects exactly one workload",
            s.metadata.name
        );
        let names: BTreeSet<&str> = target[0]
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| p.name.as_deref())
            .collect();
        for p in s.spec.as_ref().unwrap().ports.iter().flatten() {
            let t = p.target_port.as_ref().expect("a named target port");
            assert!(
                named_port(t, &names),
                "{overlay}: Service port {t:?} is a container port"
            );
        }
    }
    assert_eq!(r.budgets.len(), 1, "{overlay}: one PodDisruptionBudget");
    let budget = r.budgets[0].spec.as_ref().unwrap();
    assert_eq!(
        budget.selector.as_ref().and_then(|s| s.match_labels.clone()).as_ref(),
        Some(&selector),
        "{overlay}: the budget covers the service's pods"
    );
    assert_eq!(
        budget.min_available,
        Some(IntOrString::Int(1)),
        "{overlay}: a drain keeps one replica"
    );

    for p in &r.policies {
        let sel = policy_selector(p);
        assert_eq!(
            pods_matching(r, &sel).len(),
            1,
            "{overlay}: NetworkPolicy {:?} selects one workload",
            p.metadata.name
        );
    }
    let service_policy = r
        .policies
        .iter()
        .find(|p| {
            let sel = policy_selector(p);
            is_subset(&sel, &pod_labels)
        })
        .expect("a NetworkPolicy for the service");
    let types = service_policy
        .spec
        .as_ref()
        .unwrap()
        .policy_types
        .clone()
        .unwrap_or_default();
    assert!(types.contains(&"Ingress".to_string()) && types.contains(&"Egress".to_string()));

    for set in &r.stateful_sets {
        let s = set.spec.as_ref().unwrap();
        let pod = s.template.spec.as_ref().unwrap();
        let name = set.metadata.name.clone().unwrap_or_default();
        let claims: Vec<String> = s
            .volume_claim_templates
            .iter()
            .flatten()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        check_pod(overlay, &name, pod, &claims, r);
        assert!(
            r.services
                .iter()
                .any(|svc| svc.metadata.name.as_deref() == Some(s.service_name.as_deref().unwrap_or(""))),
            "{overlay}: the StatefulSet's service {:?} is rendered",
            s.service_name
        );
        // Only the service's pods may reach the database.
        let labels = s
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let guard = r
            .policies
            .iter()
            .find(|p| {
                let sel = policy_selector(p);
                is_subset(&sel, &labels)
            })
            .unwrap_or_else(|| panic!("{overlay}: a NetworkPolicy guards {name}"));
        let rules = guard.spec.as_ref().unwrap().ingress.clone().unwrap_or_default();
        assert_eq!(rules.len(), 1, "{overlay}: one ingress rule for {name}");
        let from = rules[0].from.clone().unwrap_or_default();
        assert!(
            !from.is_empty()
                && from.iter().all(|peer| {
                    let sel = peer
                        .pod_selector
                        .clone()
                        .unwrap_or_default()
                        .match_labels
                        .unwrap_or_default();
                    peer.namespace_selector.is_none() && peer.ip_block.is_none() && is_subset(&sel, &pod_labels)
                }),
            "{overlay}: only the service's pods may connect to {name}"
        );
    }
}

/// The "restricted" Pod Security Standard, resources, and every secret, config map, key and volume the pod names.
fn check_pod(overlay: &str, what: &str, pod: &PodSpec, claims: &[String], r: &Rendered) {
    let sc = pod.security_context.as_ref().expect("a pod security context");
    assert_eq!(sc.run_as_non_root, Some(true), "{overlay}: {what} runs as non-root");
    assert!(
        sc.run_as_user.is_some_and(|u| u != 0),
        "{overlay}: {what} names a non-root user"
    );
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault"),
        "{overlay}: {what} uses the runtime's seccomp profile"
    );
    let volumes: BTreeMap<&str, &k8s_openapi::api::core::v1::Volume> =
        pod.volumes.iter().flatten().map(|v| (v.name.as_str(), v)).collect();
    for c in pod.init_containers.iter().flatten().chain(&pod.containers) {
        let at = format!("{overlay}: {what}, container {}", c.name);
        let csc = c
            .security_context
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: a security context"));
        assert_eq!(
            csc.allow_privilege_escalation,
            Some(false),
            "{at}: no privilege escalation"
        );
        assert_eq!(
            csc.read_only_root_filesystem,
            Some(true),
            "{at}: read-only root filesystem"
        );
        assert_eq!(
            csc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_string()]),
            "{at}: drops every capability"
        );
        let res = c.resources.as_ref().unwrap_or_else(|| panic!("{at}: resources"));
        let requests = res.requests.clone().unwrap_or_default();
        assert!(
            requests.contains_key("cpu") && requests.contains_key("memory"),
            "{at}: requests cpu and memory"
        );
        assert!(
            res.limits.clone().unwrap_or_default().contains_key("memory"),
            "{at}: a memory limit"
        );
        let image = c.image.as_deref().unwrap_or_default();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(
            !tag.is_empty() && tag != "latest" && !tag.contains('/'),
            "{at}: image {image} has a fixed tag"
        );
        for m in c.volume_mounts.iter().flatten() {
            assert!(
                volumes.contains_key(m.name.as_str()) || claims.contains(&m.name),
                "{at}: mounts volume {} that the pod lacks",
                m.name
            );
        }
        for e in c.env.iter().flatten() {
            assert!(
                !e.value.as_deref().unwrap_or_default().contains("$("),
                "{at}: env {} expands nothing",
                e.name
            );
            if let Some(from) = &e.value_from {
                if let Some(k) = &from.secret_key_ref {
                    assert!(
                        secret_has(r, &k.name, &k.key),
                        "{at}: env {} needs secret {}/{}",
                        e.name,
                        k.name,
                        k.key
                    );
                }
                if let Some(k) = &from.config_map_key_ref {
                    let found = r.config_maps.iter().any(|m| {
                        m.metadata.name.as_deref() == Some(k.name.as_str())
                            && m.data.as_ref().is_some_and(|d| d.contains_key(&k.key))
                    });
                    assert!(found, "{at}: env {} needs config map {}/{}", e.name, k.name, k.key);
                }
            }
        }
    }
    for v in volumes.values() {
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            assert!(
                secret_has(r, &name, ""),
                "{overlay}: {what} mounts secret {name} that is not rendered"
            );
            for item in s.items.iter().flatten() {
                assert!(
                    secret_has(r, &name, &item.key),
                    "{overlay}: {what} mounts {name}/{} that is missing",
                    item.key
                );
            }
        }
    }
}

/// Every flag the service is started with is one `rancherctl serve` has, and every file it reads is one the init
/// container copied into the private volume.
fn check_serve_args(overlay: &str, service: &Container, pod: &PodSpec, serve_help: &str) {
    let args = service.args.clone().unwrap_or_default();
    assert_eq!(
        args.first().map(String::as_str),
        Some("serve"),
        "{overlay}: the container runs `rancherctl serve`"
    );
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            serve_help.contains(&format!("{flag} ")) || serve_help.contains(&format!("{flag}\n")),
            "{overlay}: `rancherctl serve` has no flag {flag}"
        );
    }
    // The files the init container copies: the items of the token secret and the TLS pair.
    let mut copied = BTreeSet::new();
    for v in pod.volumes.iter().flatten() {
        if let Some(s) = &v.secret {
            for item in s.items.iter().flatten() {
                copied.insert(item.path.clone());
            }
            if s.items.is_none() {
                copied.extend(["tls.crt".to_string(), "tls.key".to_string()]);
            }
        }
    }
    let private = service
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "private")
        .map(|m| PathBuf::from(&m.mount_path))
        .expect("the private volume is mounted");
    for pair in args.windows(2) {
        if pair[0].ends_with("-file") || pair[0] == "--tls-cert" || pair[0] == "--tls-key" {
            let path = Path::new(&pair[1]);
            assert_eq!(
                path.parent(),
                Some(private.as_path()),
                "{overlay}: {} reads from the private volume",
                pair[0]
            );
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                copied.contains(&name),
                "{overlay}: {} names {name}, which no secret provides",
                pair[0]
            );
        }
    }
}

fn secret_has(r: &Rendered, name: &str, key: &str) -> bool {
    r.secrets.iter().any(|s| {
        s.metadata.name.as_deref() == Some(name)
            && (key.is_empty()
                || s.data.as_ref().is_some_and(|d| d.contains_key(key))
                || s.string_data.as_ref().is_some_and(|d| d.contains_key(key)))
    })
}

fn pods_matching<'a>(r: &'a Rendered, selector: &BTreeMap<String, String>) -> Vec<&'a PodSpec> {
    let deployments = r
        .deployments
        .iter()
        .filter_map(|d| d.spec.as_ref().map(|s| &s.template));
    let sets = r
        .stateful_sets
        .iter()
        .filter_map(|d| d.spec.as_ref().map(|s| &s.template));
    deployments
        .chain(sets)
        .filter(|t| {
            let labels = t.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
            !selector.is_empty() && is_subset(selector, &labels)
        })
        .filter_map(|t| t.spec.as_ref())
        .collect()
}

/// The labels a NetworkPolicy's pod selector asks for.
fn policy_selector(p: &NetworkPolicy) -> BTreeMap<String, String> {
    p.spec
        .as_ref()
        .and_then(|s| s.pod_selector.clone())
        .and_then(|s| s.match_labels)
        .unwrap_or_default()
}

fn is_subset(sel: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn named_port(port: &IntOrString, names: &BTreeSet<&str>) -> bool {
    matches!(port, IntOrString::String(n) if names.contains(n.as_str()))
}

//! The token never leaks: the end-to-end flows run with the simulator's tokens (long random secrets, easy to find),
//! and every captured stdout, stderr, log line (a capturing tracing subscriber at TRACE; `RUST_LOG=trace` for the
//! binary), `Debug`/`Display` of results and errors, and every state file (the SQLite store with its WAL, the
//! profiles directory) is searched for them. A secret may appear in one place only: the profile's token file,
//! readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use rancher_access_tests::cli::{command, secret_of, Run};
use rancher_access_tests::client_builder;
use rancher_access_tests::process::SpawnKilledOnDrop;
use rancher_access_tests::Capture;
use rancher_approval::{Policy, SqliteStore};
use rancher_auth::{BearerToken, CaSource, InstanceDomain, ProfileStore, ProfileUpdate};
use rancher_sim::{Faults, RancherVersion, SimConfig, SimHandle, Simulator};
use rancher_workflows::{Approved, Runner, Session, Submitted};
use serde_json::json;

fn secrets(sim: &SimHandle) -> Vec<String> {
    let t = sim.tokens();
    [&t.admin, &t.approver, &t.user, &t.cluster_scoped, &t.expired]
        .iter()
        .map(|s| secret_of(s).to_string())
        .collect()
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = p;
        0o600
    }
}

/// Searches every file under `dirs`: a secret may only be in a `.token` file of mode 0600. Returns the files
/// searched.
#[track_caller]
fn scan_files(dirs: &[PathBuf], secrets: &[String]) -> usize {
    let mut n = 0;
    for dir in dirs {
        for file in files(dir) {
            n += 1;
            let bytes = std::fs::read(&file).expect("read");
            for s in secrets {
                if bytes.windows(s.len()).any(|w| w == s.as_bytes()) {
                    let name = file.display().to_string();
                    assert!(name.ends_with(".token"), "a token secret is stored in {name}");
                    assert_eq!(mode(&file), 0o600, "{name} holds a token and must be its owner's only");
                }
            }
        }
    }
    n
}

#[track_caller]
fn scan_text(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "a token secret is in the {what}");
    }
}

/// The library flows, with every log line captured.
#[test]
fn library_flows_leak_no_secret_into_logs_errors_or_files() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this test binary");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (state, profiles) = (dir.path().join("state"), dir.path().join("profiles"));
    std::fs::create_dir_all(&state).expect("state dir");
    let mut seen = String::new();
    let sim = rt
        .block_on(Simulator::start(
            SimConfig::default()
                .rancher_version(RancherVersion::V2_13)
                .users(20)
                .seed(99)
                .port(0),
        ))
        .expect("simulator");
    let secrets = secrets(&sim);
    rt.block_on(async {
        let t = sim.tokens().clone();
        // Profiles: the connection test, then the token goes to its owner-only file.
        let store = ProfileStore::open(Some(profiles.clone())).expect("profiles");
        for (name, token) in [("admin", &t.admin), ("approver", &t.approver)] {
            let update = ProfileUpdate {
                domain: Some(InstanceDomain::parse(&sim.domain()).expect("domain")),
                token: Some(BearerToken::parse(token).expect("token")),
                ca: Some(CaSource::Pem(sim.ca_pem())),
                ..Default::default()
            };
            let saved = store.save(name, update).await.expect("saved");
            seen.push_str(&format!("{saved:?}\n{:?}\n", store.list().expect("list")));
        }
        // Refused by the connection test: a standard user, an expired and a cluster-scoped token.
        for token in [&t.user, &t.expired, &t.cluster_scoped] {
            let update = ProfileUpdate {
                domain: InstanceDomain::parse(&sim.domain()).ok(),
                token: BearerToken::parse(token).ok(),
                ca: Some(CaSource::Pem(sim.ca_pem())),
                ..Default::default()
            };
            let e = store.save("refused", update).await.expect_err("refused");
            seen.push_str(&format!("{e:?}\n{e}\n"));
        }
        // Every workflow, an approval round trip, and the generic request, with the SQLite store.
        let admin = Session::open(client_builder(&sim, &t.admin).build().expect("client"))
            .await
            .expect("admin");
        let approver = Session::open(client_builder(&sim, &t.approver).build().expect("client"))
            .await
            .expect("approver");
        let alice = Session::open(client_builder(&sim, &t.user).build().expect("client"))
            .await
            .expect("alice");
        seen.push_str(&format!("{admin:?}\n{approver:?}\n{alice:?}\n"));
        let runner = Runner::new(
            Arc::new(SqliteStore::open(state.join("approvals.db")).expect("store")),
            "secrets",
        );
        for wf in [
            "list-users",
            "list-global-roles",
            "list-global-role-bindings",
            "list-projects",
            "list-role-templates",
            "delete-global-role-binding",
            "rancher-api-request",
        ] {
            runner.install(&admin, wf, Some(Policy::none())).await.expect("install");
        }
        runner
            .install(&admin, "create-global-role-binding", None)
            .await
            .expect("install");
        for wf in [
            "list-users",
            "list-global-roles",
            "list-global-role-bindings",
            "list-projects",
            "list-role-templates",
        ] {
            seen.push_str(&format!(
                "{:?}\n",
                runner.submit(&admin, wf, json!({}), None, false).await.expect("list")
            ));
        }
        let bob = sim.users().standard[1].id.clone();
        let Submitted::Pending { request, .. } = runner
            .submit(
                &admin,
                "create-global-role-binding",
                json!({"user": bob, "role": "admin"}),
                Some("secrets".into()),
                false,
            )
            .await
            .expect("submit")
        else {
            panic!("installer approval")
        };
        let approved = runner.approve(&approver, &request, None).await.expect("approve");
        assert!(matches!(approved, Approved::Succeeded { .. }));
        seen.push_str(&format!("{approved:?}\n{:?}\n", runner.list(None).await.expect("list")));
        seen.push_str(&format!(
            "{:?}\n",
            runner
                .submit(
                    &admin,
                    "delete-global-role-binding",
                    json!({"user": bob, "role": "admin"}),
                    None,
                    false
                )
                .await
        ));
        for op in ["v3.tokens.list", "rk.exttokens.list", "v3.users.list"] {
            seen.push_str(&format!(
                "{:?}\n",
                runner
                    .submit(&admin, "rancher-api-request", json!({"operation": op}), None, false)
                    .await
            ));
        }
        // Refusals and failures: a standard user, a wrong token, faults with retries.
        seen.push_str(&format!(
            "{:?}\n",
            runner.submit(&alice, "list-users", json!({}), None, false).await
        ));
        seen.push_str(&format!("{:?}\n", runner.approve(&alice, &request, None).await));
        let wrong = format!("{}x", t.admin);
        seen.push_str(&format!(
            "{:?}\n",
            Session::open(client_builder(&sim, &wrong).build().expect("client")).await
        ));
        sim.set_faults(Faults {
            retry_after_secs: 0,
            ..Faults::flaky(0.3)
        });
        for _ in 0..5 {
            seen.push_str(&format!(
                "{:?}\n",
                runner
                    .submit(&admin, "list-users", json!({}), None, false)
                    .await
                    .map(|_| ())
            ));
        }
        sim.set_faults(Faults::none());
        // The connection test for every token.
        for token in [&t.admin, &t.user, &t.expired, &t.cluster_scoped] {
            let c = store
                .connection("admin")
                .expect("profile")
                .with_ca(Some(CaSource::Pem(sim.ca_pem())));
            let c = rancher_auth::Connection::new(c.domain().clone(), BearerToken::parse(token).expect("token"))
                .with_ca(Some(CaSource::Pem(sim.ca_pem())));
            match c.verify().await {
                Ok(v) => seen.push_str(&format!("{v:?}\n{}\n", v.summary_lines().join("\n"))),
                Err(d) => seen.push_str(&format!("{d:?}\n{}\n", d.explain())),
            }
        }
    });
    tracing::info!("end of capture");
    let logs = String::from_utf8_lossy(&capture.0.lock().expect("capture")).into_owned();
    assert!(
        logs.contains("end of capture") && (logs.contains("TRACE") || logs.contains("DEBUG")),
        "the capture works"
    );
    scan_text("logs", &logs, &secrets);
    scan_text("Debug/Display of results and errors", &seen, &secrets);
    let searched = scan_files(&[state.clone(), profiles.clone()], &secrets);
    assert!(
        files(&state).iter().any(|f| f.ends_with("approvals.db")),
        "the store was written"
    );
    let token_files = files(&profiles)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "token"))
        .count();
    assert_eq!(
        token_files, 2,
        "one token file per saved profile, none for the refused ones"
    );
    eprintln!(
        "secrets (library): {} log bytes, {} bytes of Debug/Display, {searched} files searched",
        logs.len(),
        seen.len()
    );
}

/// `rancherctl` with `RUST_LOG=trace`: every output and every file it writes.
#[test]
fn rancherctl_flows_leak_no_secret_into_output_logs_or_files() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt
        .block_on(Simulator::start(
            SimConfig::default()
                .rancher_version(RancherVersion::V2_13)
                .users(20)
                .seed(98)
                .port(0),
        ))
        .expect("simulator");
    let secrets = secrets(&sim);
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, state) = (dir.path().join("config"), dir.path().join("state"));
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem()).expect("CA");
    // Without a token the profile is used, and used whole: no domain or CA from the environment either.
    let base = |token: Option<&str>| {
        let mut env = vec![
            ("RANCHERCTL_CONFIG_DIR", config.display().to_string()),
            ("RANCHERCTL_STATE_DIR", state.display().to_string()),
            ("RUST_LOG", "trace".to_string()),
        ];
        if let Some(t) = token {
            env.push(("RANCHER_CA_CERT", ca.display().to_string()));
            env.push(("RANCHER_DOMAIN", sim.domain()));
            env.push(("RANCHER_TOKEN", t.to_string()));
        }
        env
    };
    let t = sim.tokens().clone();
    let mut runs: Vec<Run> = Vec::new();
    let mut exec = |args: &[&str], token: Option<&str>| {
        let run = Run::from_output(command(args, &base(token)).output().expect("rancherctl runs"));
        runs.push(run.clone());
        run
    };
    // A profile saved from stdin, then used (its output is checked with the others below).
    let (domain, ca_text) = (sim.domain(), ca.display().to_string());
    let mut child = command(
        &[
            "connect",
            "--profile",
            "default",
            "--token-stdin",
            "--domain",
            &domain,
            "--ca-cert",
            &ca_text,
        ],
        &base(None),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn_killed_on_drop()
    .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", t.admin).as_bytes())
        .expect("token on stdin");
    let connect = Run::from_output(child.wait_with_output().expect("connect"));
    connect.expect_code(0);
    exec(&["check"], None).expect_code(0);
    exec(&["profiles", "list", "-o", "json"], None).expect_code(0);
    exec(&["profiles", "show", "default", "-o", "yaml"], None).expect_code(0);
    exec(&["workflows", "install", "list-users"], None).expect_code(0);
    exec(&["workflows", "install", "create-global-role-binding"], None).expect_code(0);
    exec(&["run", "list-users", "-o", "json"], None).expect_code(0);
    let bob = sim.users().standard[1].id.clone();
    let pending = exec(
        &[
            "run",
            "create-global-role-binding",
            "-i",
            &format!("user={bob}"),
            "-i",
            "role=admin",
            "-o",
            "json",
        ],
        None,
    );
    pending.expect_code(3);
    let request = serde_json::from_str::<serde_json::Value>(&pending.stdout).expect("json")["request"]
        .as_str()
        .expect("request id")
        .to_string();
    exec(&["approvals", "approve", &request], Some(&t.user)).expect_code(1);
    exec(&["approvals", "approve", &request, "-o", "json"], Some(&t.approver)).expect_code(0);
    exec(&["approvals", "show", &request, "-o", "json"], None).expect_code(0);
    exec(&["approvals", "audit", "--verify"], None).expect_code(0);
    exec(&["api", "v3.tokens.list", "-o", "json"], None).expect_code(0);
    exec(&["check"], Some(&t.expired)).expect_code(1);
    exec(&["check"], Some(&t.cluster_scoped)).expect_code(1);
    exec(&["run", "list-users"], Some(&format!("{}x", t.admin))).expect_code(1);
    exec(&["check"], Some(&format!("Bearer {}", t.admin))).expect_code(1);

    runs.push(connect);
    let logged: usize = runs.iter().map(|r| r.stderr.len()).sum();
    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("TRACE") || r.stderr.contains("DEBUG")),
        "RUST_LOG=trace took effect"
    );
    for run in &runs {
        scan_text("stdout", &run.stdout, &secrets);
        scan_text("stderr (logs)", &run.stderr, &secrets);
    }
    let searched = scan_files(&[config.clone(), state.clone()], &secrets);
    let token_file = config.join("default.token");
    assert_eq!(mode(&token_file), 0o600);
    assert!(
        std::fs::read_to_string(&token_file)
            .expect("token file")
            .contains(secret_of(&t.admin)),
        "the profile keeps its token"
    );
    eprintln!(
        "secrets (rancherctl): {} runs, {logged} bytes of stderr at RUST_LOG=trace, {searched} files searched",
        runs.len()
    );
}

//! A profile's token goes only to the approvals service saved in that profile (review 2026-12b, N6 and S8): the
//! binary is run with a saved profile and a service URL from `--server` or `RANCHERCTL_SERVER` pointing at a
//! loopback listener that records every `Authorization` header; it must see none, and the refusal names where
//! the token and the URL came from and the fix. A URL from the environment still works with a token that also
//! comes from the environment.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rancher_access_tests::cli::{command, Run, SimCli};
use rancher_sim::RancherVersion;

/// A loopback HTTP listener answering 404 to everything, recording each request's `Authorization` header.
fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let (url, seen, _) = recorder_with_bodies();
    (url, seen)
}

/// [`recorder`], also keeping each request's body.
fn recorder_with_bodies() -> (String, Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let (keep, keep_bodies) = (seen.clone(), bodies.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let mut length = 0usize;
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.trim().is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("authorization:") {
                    keep.lock().unwrap().push(line.trim().to_string());
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; length.min(1 << 20)];
            if std::io::Read::read_exact(&mut reader, &mut body).is_ok() {
                keep_bodies
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            let mut s = stream;
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen, bodies)
}

#[test]
fn n6_a_profiles_token_never_goes_to_a_service_url_from_flags_or_the_environment() {
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let t = s.sim.tokens().clone();
    let saved = Run::from_output(
        command(&["connect", "--profile", "prod"], &s.connected_env(Some(&t.admin)))
            .output()
            .unwrap(),
    );
    saved.expect_code(0);
    let (url, seen) = recorder();

    // From the environment.
    let mut env = s.base_env();
    env.push(("RANCHERCTL_SERVER", url.clone()));
    let run = Run::from_output(
        command(&["--profile", "prod", "approvals", "list"], &env)
            .output()
            .unwrap(),
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("profile `prod`") && run.stderr.contains("RANCHERCTL_SERVER"),
        "names both sources: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unset RANCHERCTL_SERVER")
            && run.stderr.contains("rancherctl connect --profile prod --server"),
        "names the fix: {}",
        run.stderr
    );

    // From the flag.
    let run = Run::from_output(
        command(
            &["--profile", "prod", "--server", &url, "approvals", "list"],
            &s.base_env(),
        )
        .output()
        .unwrap(),
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("--server") && run.stderr.contains("drop --server"),
        "{}",
        run.stderr
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        seen.lock().unwrap().is_empty(),
        "the listener got a token: {:?}",
        seen.lock().unwrap()
    );

    // A token from the environment goes to a service from the environment.
    let mut env = s.base_env();
    env.push(("RANCHERCTL_SERVER", url.clone()));
    env.push(("RANCHER_TOKEN", t.user.clone()));
    let _ = Run::from_output(command(&["approvals", "list"], &env).output().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let got = seen.lock().unwrap().clone();
    assert!(
        !got.is_empty()
            && got
                .iter()
                .all(|h| h.contains(rancher_access_tests::cli::secret_of(&t.user))),
        "only the environment's token: {got:?}"
    );
}

#[test]
fn n1_rancherctl_with_server_reads_the_files_locally_and_sends_contents_not_paths() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ad.yaml");
    std::fs::write(
        &cfg,
        "servers: [ad.example.com]\nserviceAccountUsername: svc\nuserSearchBase: dc=example,dc=com\n",
    )
    .unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "jdoe-password\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let (url, _, bodies) = recorder_with_bodies();
    let env = vec![
        ("RANCHERCTL_STATE_DIR", state.path().join("state").display().to_string()),
        (
            "RANCHERCTL_CONFIG_DIR",
            state.path().join("config").display().to_string(),
        ),
        ("RANCHERCTL_SERVER", url),
        (
            "RANCHER_TOKEN",
            "token-abcde:0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefgh".to_string(),
        ),
    ];
    let args = [
        "access-control",
        "enable",
        "--provider",
        "activedirectory",
        "--config",
        cfg.to_str().unwrap(),
        "--test-user",
        "jdoe",
        "--test-password-file",
        pw.to_str().unwrap(),
    ];
    let _ = Run::from_output(command(&args, &env).output().unwrap());
    let sent = bodies.lock().unwrap().clone();
    let run: serde_json::Value = sent
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .find(|v: &serde_json::Value| v["workflow"] == "access-control-enable")
        .expect("the run was sent");
    let inputs = &run["inputs"];
    assert_eq!(
        inputs["config"]["servers"],
        serde_json::json!(["ad.example.com"]),
        "the settings, not the path: {inputs}"
    );
    assert_eq!(inputs["test-password"], serde_json::json!("jdoe-password"));
    assert!(
        inputs.get("test-password-file").is_none() && !run.to_string().contains(dir.path().to_str().unwrap()),
        "no path is sent: {run}"
    );

    // A symlink or a pipe given as the password file is refused here, before anything is sent.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&pw, &link).unwrap();
    let before = bodies.lock().unwrap().len();
    let args = [
        "access-control",
        "enable",
        "--provider",
        "activedirectory",
        "--config",
        cfg.to_str().unwrap(),
        "--test-user",
        "jdoe",
        "--test-password-file",
        link.to_str().unwrap(),
    ];
    let refused = Run::from_output(command(&args, &env).output().unwrap());
    refused.expect_code(1);
    assert!(refused.stderr.contains("symbolic link"), "{}", refused.stderr);
    assert_eq!(bodies.lock().unwrap().len(), before, "nothing was sent");
}

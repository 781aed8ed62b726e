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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.trim().is_empty() {
                    break;
                }
                if line.to_ascii_lowercase().starts_with("authorization:") {
                    keep.lock().unwrap().push(line.trim().to_string());
                }
                line.clear();
            }
            let mut s = stream;
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[test]
fn n6_a_profiles_token_never_goes_to_a_service_url_from_flags_or_the_environment() {
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let t = s.sim.tokens().clone();
    let saved = Run::from_output(command(&["connect", "--profile", "prod"], &s.connected_env(Some(&t.admin))).output().unwrap());
    saved.expect_code(0);
    let (url, seen) = recorder();

    // From the environment.
    let mut env = s.base_env();
    env.push(("RANCHERCTL_SERVER", url.clone()));
    let run = Run::from_output(command(&["--profile", "prod", "approvals", "list"], &env).output().unwrap());
    run.expect_code(1);
    assert!(run.stderr.contains("profile `prod`") && run.stderr.contains("RANCHERCTL_SERVER"), "names both sources: {}", run.stderr);
    assert!(run.stderr.contains("unset RANCHERCTL_SERVER") && run.stderr.contains("rancherctl connect --profile prod --server"), "names the fix: {}", run.stderr);

    // From the flag.
    let run = Run::from_output(command(&["--profile", "prod", "--server", &url, "approvals", "list"], &s.base_env()).output().unwrap());
    run.expect_code(1);
    assert!(run.stderr.contains("--server") && run.stderr.contains("drop --server"), "{}", run.stderr);
    std::thread::sleep(Duration::from_millis(200));
    assert!(seen.lock().unwrap().is_empty(), "the listener got a token: {:?}", seen.lock().unwrap());

    // A token from the environment goes to a service from the environment.
    let mut env = s.base_env();
    env.push(("RANCHERCTL_SERVER", url.clone()));
    env.push(("RANCHER_TOKEN", t.user.clone()));
    let _ = Run::from_output(command(&["approvals", "list"], &env).output().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let got = seen.lock().unwrap().clone();
    assert!(!got.is_empty() && got.iter().all(|h| h.contains(rancher_access_tests::cli::secret_of(&t.user))), "only the environment's token: {got:?}");
}

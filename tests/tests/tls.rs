//! TLS is never optional: an expired certificate, a certificate for another name, an untrusted self-signed
//! certificate and a plain-HTTP server are each refused, by the client (a classified connect failure), by the
//! connection test (the matching diagnosis) and by `rancherctl check` (exit 1, the cause named). No flag, option or
//! environment variable turns verification off.

use std::time::Duration;

use rancher_access_tests::cli::{command, Run};
use rancher_api::{Client, ConnectFailure, Error};
use rancher_auth::{BearerToken, CaSource, Cause, Connection, InstanceDomain};
use rancher_sim::testing::{self, BrokenServer};

const TOKEN: &str = "token-abcde:tlstlstlstlstlstlstlstlstlstlstlstlstlstlstlstlstlstls";

struct Case {
    name: &'static str,
    server: BrokenServer,
    /// Trust the server's CA (for the expired and wrong-name cases: the chain is fine, the certificate is not).
    trust_ca: bool,
    failure: ConnectFailure,
    cause: Cause,
    /// Words `rancherctl check` must print.
    says: &'static str,
}

async fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "expired certificate",
            server: testing::expired_cert_server().await.expect("server"),
            trust_ca: true,
            failure: ConnectFailure::ExpiredCertificate,
            cause: Cause::ExpiredCertificate,
            says: "expired",
        },
        Case {
            name: "certificate for another name",
            server: testing::wrong_host_server().await.expect("server"),
            trust_ca: true,
            failure: ConnectFailure::WrongHostname,
            cause: Cause::WrongHostname,
            says: "127.0.0.1",
        },
        Case {
            name: "untrusted self-signed certificate",
            server: testing::self_signed_server().await.expect("server"),
            trust_ca: false,
            failure: ConnectFailure::UntrustedCertificate,
            cause: Cause::UntrustedCertificate,
            says: "--ca-cert",
        },
        Case {
            name: "plain HTTP",
            server: testing::plain_http_server().await.expect("server"),
            trust_ca: false,
            failure: ConnectFailure::NotTls,
            cause: Cause::NotHttps,
            says: "HTTPS",
        },
    ]
}

#[tokio::test]
async fn the_client_and_the_connection_test_refuse_each_with_its_cause() {
    for case in cases().await {
        let mut b = Client::builder(case.server.domain())
            .token(rancher_api::SecretString::from(TOKEN.to_string()))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10));
        if case.trust_ca {
            b = b.ca_pem(case.server.ca_pem.clone().into_bytes());
        }
        let e = b
            .build()
            .expect("client")
            .call("v3.users.list", &[], None)
            .await
            .unwrap_err();
        match &e {
            Error::Connect { failure, .. } => assert_eq!(failure, &case.failure, "{}: {e}", case.name),
            other => panic!("{}: not a connect failure: {other:?}", case.name),
        }
        assert!(!e.to_string().contains("tlstlstls"), "no token in errors");

        let conn = Connection::new(
            InstanceDomain::parse(&case.server.domain()).expect("domain"),
            BearerToken::parse(TOKEN).expect("token"),
        )
        .with_ca(case.trust_ca.then(|| CaSource::Pem(case.server.ca_pem.clone())))
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(10));
        let d = conn.verify().await.expect_err(case.name);
        assert_eq!(d.cause, case.cause, "{}: {}", case.name, d.explain());
    }
}

#[test]
fn rancherctl_check_refuses_each_and_names_the_cause() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cases = rt.block_on(cases());
    let dir = tempfile::tempdir().expect("temp dir");
    for case in &cases {
        let ca = dir.path().join(format!("{}.pem", case.server.port));
        std::fs::write(&ca, &case.server.ca_pem).expect("CA written");
        let mut env = vec![
            ("RANCHER_DOMAIN", case.server.domain()),
            ("RANCHER_TOKEN", TOKEN.to_string()),
            ("RANCHERCTL_CONFIG_DIR", dir.path().join("config").display().to_string()),
            ("RANCHERCTL_STATE_DIR", dir.path().join("state").display().to_string()),
            // Names a user might try: none of them exists, none may weaken anything.
            ("RANCHER_INSECURE", "true".to_string()),
            ("RANCHER_INSECURE_SKIP_TLS_VERIFY", "true".to_string()),
            ("RANCHER_TLS_VERIFY", "false".to_string()),
        ];
        if case.trust_ca {
            env.push(("RANCHER_CA_CERT", ca.display().to_string()));
        }
        let run = Run::from_output(command(&["check"], &env).output().expect("rancherctl runs"));
        run.expect_code(1);
        assert!(
            run.stderr.starts_with("error: connection test failed:"),
            "{}: {}",
            case.name,
            run.stderr
        );
        assert!(
            run.stderr.contains(case.says),
            "{}: the cause is not named:\n{}",
            case.name,
            run.stderr
        );
        assert!(
            !run.stderr.contains("tlstlstls") && !run.stdout.contains("tlstlstls"),
            "no token in the output"
        );
        // Flags that exist elsewhere to disable verification are usage errors here.
        for flag in [
            "--insecure",
            "--insecure-skip-tls-verify",
            "--skip-tls-verify",
            "-k",
            "--no-verify",
        ] {
            let run = Run::from_output(command(&["check", flag], &env).output().expect("rancherctl runs"));
            assert_eq!(run.code, 2, "{flag} must not exist: {}", run.stderr);
        }
    }
}

/// The subcommand paths of `rancherctl` (from the `Commands:` section of each help page), depth first.
fn subcommands(prefix: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    args.push("--help");
    let run = Run::from_output(command(&args, &[]).output().expect("rancherctl runs"));
    run.expect_code(0);
    let mut found = Vec::new();
    let mut in_commands = false;
    for line in run.stdout.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            // "  name   description"; continuation lines are indented further.
            if line.starts_with("   ") {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if !name.is_empty() && name != "help" {
                let mut path = prefix.to_vec();
                path.push(name.to_string());
                found.push(path.clone());
                found.extend(subcommands(&path));
            }
        }
    }
    found
}

#[test]
fn no_flag_or_option_disables_certificate_verification() {
    let mut paths = vec![Vec::new()];
    paths.extend(subcommands(&[]));
    assert!(paths.len() > 20, "the walk found the subcommands: {paths:?}");
    let banned = [
        "insecure",
        "skip-verify",
        "skip-tls",
        "no-verify",
        "noverify",
        "verify=false",
        "danger",
        "accept-invalid",
        "trust-all",
        "tls-verify",
        "verify-tls",
    ];
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = Run::from_output(command(&args, &[]).output().expect("rancherctl runs"));
        run.expect_code(0);
        let help = run.stdout.to_lowercase();
        for word in banned {
            assert!(
                !help.contains(word),
                "`rancherctl {}` offers `{word}`:\n{}",
                path.join(" "),
                run.stdout
            );
        }
    }
    // The libraries have no switch either: nothing in their sources turns rustls' verification off.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["rancher-api", "rancher-auth", "rancher-workflows", "rancher-cli"] {
        for file in rust_files(&root.join("crates").join(krate).join("src")) {
            let text = std::fs::read_to_string(&file).expect("source");
            for word in ["danger_accept_invalid", "NoVerifier", "danger_accept_invalid_hostnames"] {
                assert!(!text.contains(word), "{} contains `{word}`", file.display());
            }
            // One verifier exists, in rancher-api's tls.rs: WebPKI first, and only a certificate byte-identical to one
            // the user gave is let through its `CA:TRUE` refusal (tests/tests/fidelity_tls.rs checks the name and the
            // dates are still enforced).
            let own_verifier = file.ends_with("rancher-api/src/tls.rs");
            for word in [".dangerous()", "ServerCertVerifier for"] {
                let n = text.matches(word).count();
                if own_verifier {
                    assert_eq!(n, 1, "{} has {n} `{word}`", file.display());
                } else {
                    assert_eq!(n, 0, "{} contains `{word}`", file.display());
                }
            }
            if own_verifier {
                for needed in [
                    "self.inner.verify_server_cert(",
                    "is_ca_used_as_end_entity(&e) && self.given.iter().any(|g| g.as_ref() == end_entity.as_ref())",
                    "verify_server_name(",
                ] {
                    // Compared without whitespace, so rustfmt's line breaks do not matter.
                    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
                    assert!(
                        squeeze(&text).contains(&squeeze(needed)),
                        "{} no longer has `{needed}`",
                        file.display()
                    );
                }
            }
        }
    }
}

fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

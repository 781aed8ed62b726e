//! `rancherctl access-control ...` and `rancherctl identities search` end to end: the real binary against a
//! Rancher 1.6 and a 2.13 simulator over HTTPS. No secret (tokens, service account passwords, test passwords)
//! in any output.

use std::os::unix::fs::PermissionsExt;

use rancher_access_tests::cli::{assert_no_secrets, command, Run, SimCli};
use rancher_sim::RancherVersion;
use serde_json::Value;

const FILE_SECRETS: &[&str] = &["svc-S3cret-pass", "jdoe-password", "octocat-password"];

struct Env(SimCli);

impl std::ops::Deref for Env {
    type Target = SimCli;
    fn deref(&self) -> &SimCli {
        &self.0
    }
}

impl Env {
    fn start(version: RancherVersion) -> Env {
        Env(SimCli::start(version, 5))
    }

    fn private(&self, name: &str, text: &str) -> String {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    }

    fn run_as(&self, token: Option<&str>, args: &[&str]) -> Run {
        let run = Run::from_output(
            command(args, &self.connected_env(token))
                .output()
                .expect("rancherctl runs"),
        );
        let tokens = self.token_secrets();
        let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
        secrets.extend(FILE_SECRETS);
        assert_no_secrets(&run, &secrets);
        run
    }

    /// Logs in on 1.x with `user:password`; the bearer (jwt).
    fn legacy_login(&self, code: &str) -> String {
        let client = rancher_api::Client::builder(self.sim.domain())
            .ca_pem(self.sim.ca_pem().into_bytes())
            .without_system_roots()
            .build()
            .unwrap();
        let token = self
            .rt
            .block_on(client.call("v1.token.create", &[], Some(serde_json::json!({"code": code}))))
            .expect("login");
        token["jwt"].as_str().unwrap().to_string()
    }

    fn admin(&self, args: &[&str]) -> Run {
        let t = self.sim.tokens().admin.clone();
        self.run_as(Some(&t), args)
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

#[test]
fn status_without_a_token_tells_the_generation_on_both() {
    let old = Env::start(RancherVersion::V1_6);
    let run = old.run_as(None, &["access-control", "status"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("Rancher 1.x server") && run.stdout.contains("enabled providers: local"),
        "{}",
        run.stdout
    );
    let new = Env::start(RancherVersion::V2_13);
    let run = new.run_as(None, &["-o", "json", "access-control", "status"]);
    run.expect_code(0);
    assert_eq!(json(&run)["generation"], "v2");
}

#[test]
fn legacy_enable_search_allow_and_the_version_matrix_from_the_command_line() {
    let env = Env::start(RancherVersion::V1_6);
    for wf in [
        "access-control-disable",
        "access-control-enable",
        "access-control-allow",
    ] {
        env.admin(&["workflows", "install", wf, "--policy", "none"])
            .expect_code(0);
    }
    let cfg = env.private(
        "ad.json",
        r#"{"server": "ad.example.com", "serviceAccountUsername": "svc", "serviceAccountPassword": "svc-S3cret-pass"}"#,
    );
    let pw = env.private("pw", "jdoe-password\n");
    let bad = env.private("bad", "wrong\n");

    let with_status = env.admin(&["access-control", "status"]);
    with_status.expect_code(0);
    assert!(
        with_status.stdout.contains("PROVIDER") && with_status.stdout.contains("access control is on with local"),
        "{}",
        with_status.stdout
    );

    env.admin(&["access-control", "disable"]).expect_code(0);

    // The version matrix: a clear line, exit 1, nothing sent.
    // (OpenLDAP offers required on 1.6: rancher/cattle OpenLDAPConfigManager; Azure AD never did in 1.x.)
    let run = env.admin(&[
        "access-control",
        "enable",
        "--provider",
        "azuread",
        "--mode",
        "required",
        "--test-user",
        "jdoe",
        "--test-password-file",
        &pw,
    ]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("Azure AD offers only `unrestricted` on Rancher 1.x"),
        "{}",
        run.stderr
    );

    // A dry run shows the steps, secrets masked.
    let args = |pwf: &str| {
        vec![
            "access-control",
            "enable",
            "--provider",
            "activedirectory",
            "--config",
            &cfg,
            "--mode",
            "restricted",
            "--allow",
            "Domain Admins",
            "--test-user",
            "jdoe",
            "--test-password-file",
            pwf,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let mut dry = args(&pw);
    dry.push("--dry-run".into());
    let run = env.admin(&dry.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(0);
    assert_eq!(run.stdout.matches("would send: POST").count(), 3, "{}", run.stdout);
    assert!(run.stdout.contains("<redacted>"), "{}", run.stdout);

    // A failed test: exit 1, says access control was left off.
    let run = env.admin(&args(&bad).iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(1);
    assert!(run.stderr.contains("nobody is locked out"), "{}", run.stderr);

    let run = env.admin(&args(&pw).iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(0);
    assert!(
        run.stdout.contains("Active Directory is on in mode restricted"),
        "{}",
        run.stdout
    );

    // The admin account now belongs to jdoe's AD identity: the old local token no longer maps to an account.
    let run = env.admin(&["identities", "search", "min"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("no account is tied to the identity rancher_id:1a1"),
        "{}",
        run.stderr
    );
    let jwt = env.legacy_login("jdoe:jdoe-password");
    let jdoe = |args: &[&str]| env.run_as(Some(&jwt), args);
    let found = jdoe(&["-o", "json", "identities", "search", "min", "--type", "user"]);
    found.expect_code(0);
    let ids: Vec<String> = json(&found)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["ldap_user:CN=Min Lee,OU=Users,DC=example,DC=com"]);

    let run = jdoe(&["access-control", "allow", &ids[0], "--mode", "required"]);
    run.expect_code(0);
    assert!(run.stdout.contains("stored secrets kept"), "{}", run.stdout);

    let plan = jdoe(&["access-control", "switch-plan", "--to", "github"]);
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("advises against") && plan.stdout.contains("ldap_user"),
        "{}",
        plan.stdout
    );
}

#[test]
fn an_enable_waits_for_the_installer_then_runs_once() {
    let env = Env::start(RancherVersion::V2_13);
    env.admin(&["workflows", "install", "access-control-enable"])
        .expect_code(0);
    let cfg = env.private("gh.yaml", "clientId: abc\nclientSecret: svc-S3cret-pass\n");
    let code = env.private("code", "octocat:octocat-password");
    let approver = env.sim.tokens().approver.clone();
    let run = env.run_as(
        Some(&approver),
        &[
            "-o",
            "json",
            "access-control",
            "enable",
            "--provider",
            "github",
            "--config",
            &cfg,
            "--test-code-file",
            &code,
            "--reason",
            "GitHub SSO",
        ],
    );
    run.expect_code(3);
    let id = json(&run)["request"].as_str().unwrap().to_string();
    let run = env.admin(&["approvals", "approve", &id]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("GitHub is on in mode unrestricted"),
        "{}",
        run.stdout
    );
    env.admin(&["approvals", "approve", &id]).expect_code(1);
    let run = env.run_as(None, &["access-control", "status"]);
    assert!(run.stdout.contains("github"), "{}", run.stdout);
}

/// Rancher 2.8-2.13 delete a provider's users, bindings and tokens when it is disabled (rancher/rancher
/// pkg/controllers/management/auth/auth_config.go `sync` -> pkg/auth/cleanup/service.go `Run`). From the command
/// line: `switch-plan` lists what leaving the provider deletes and the acknowledgement code; `disable` is refused
/// without it, refused with a wrong one, and goes ahead with `--acknowledge CODE`.
#[test]
fn disable_needs_the_acknowledgement_of_what_rancher_deletes() {
    let env = Env::start(RancherVersion::V2_13);
    for wf in ["access-control-enable", "access-control-disable"] {
        env.admin(&["workflows", "install", wf, "--policy", "none"])
            .expect_code(0);
    }
    let cfg = env.private(
        "ad.yaml",
        "servers: [ad.example.com]\nserviceAccountUsername: svc\nserviceAccountPassword: svc-S3cret-pass\nuserSearchBase: dc=example,dc=com\n",
    );
    let pw = env.private("pw", "jdoe-password\n");
    env.admin(&[
        "access-control",
        "enable",
        "--provider",
        "activedirectory",
        "--config",
        &cfg,
        "--test-user",
        "jdoe",
        "--test-password-file",
        &pw,
    ])
    .expect_code(0);
    // asmith logs in through AD: Rancher makes her user (never local) and a login token of the provider.
    let base = env.sim.base_url();
    let ca = env.sim.ca_pem();
    let login = env.rt.block_on(async move {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .build()
            .unwrap();
        let r = http
            .post(format!(
                "{base}/v3-public/activeDirectoryProviders/activedirectory?action=login"
            ))
            .json(&serde_json::json!({"username": "asmith", "password": "asmith-password", "responseType": "json"}))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    });
    assert_eq!(login, 201);

    let plan = env.admin(&["-o", "json", "access-control", "switch-plan", "--to", "github"]);
    plan.expect_code(0);
    let plan = json(&plan);
    let leaving = &plan["result"]["cleanup"]["activedirectory"];
    assert_eq!(leaving["users_deleted"].as_array().map(Vec::len), Some(1), "{plan}");
    assert!(!leaving["tokens_deleted"].as_array().unwrap().is_empty(), "{plan}");
    let code = leaving["acknowledge"].as_str().expect("the code").to_string();
    assert!(code.starts_with("delete-"), "{plan}");

    let run = env.admin(&["access-control", "disable"]);
    run.expect_code(1);
    assert!(run.stderr.contains(&format!("--acknowledge {code}")), "{}", run.stderr);
    let run = env.admin(&["access-control", "disable", "--acknowledge", "delete-0000000000000000"]);
    run.expect_code(1);
    assert!(run.stderr.contains("names a different set"), "{}", run.stderr);
    assert_eq!(
        env.sim.object("authconfigs", "activedirectory").unwrap()["enabled"],
        true
    );

    let run = env.admin(&["access-control", "disable", "--acknowledge", &code]);
    run.expect_code(0);
    assert!(run.stdout.contains("disabled Active Directory"), "{}", run.stdout);
    assert!(env
        .sim
        .objects("tokens")
        .iter()
        .all(|t| t["authProvider"] != "activedirectory"));
}

//! `rancherctl --store URL` / `RANCHERCTL_STORE` and `approvals export | import`: a team moves its approvals from
//! the SQLite file to PostgreSQL, and the CLI works on the new store. Real PostgreSQL (a throwaway cluster, or
//! `RANCHER_TEST_DATABASE_URL`).

use std::process::Command;

use chrono::Utc;
use rancher_access_tests::cli::rancherctl;
use rancher_approval::test_util::TestDatabase;
use rancher_approval::{NewRequest, Policy, Principal, SqliteStore, Store};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(state: &std::path::Path, store: Option<&str>, args: &[&str]) -> Out {
    let mut cmd = Command::new(rancherctl());
    cmd.arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("RANCHERCTL_STORE")
        .env("NO_COLOR", "1");
    if let Some(url) = store {
        cmd.env("RANCHERCTL_STORE", url);
    }
    let out = cmd.output().expect("rancherctl runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_moves_its_store_to_postgres_with_the_cli() {
    let Some(db) = TestDatabase::create("cli_move").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    {
        let store = SqliteStore::open(state.join("approvals.db")).unwrap();
        let alice = Principal::new("u-alice").with_username("alice");
        let inst = store
            .install("create-global-role-binding", &alice, Policy::installer(), Utc::now())
            .await
            .unwrap();
        for user in ["u-carol", "u-dave"] {
            let new = NewRequest::for_installation(&inst, Principal::new("u-bob"))
                .inputs(serde_json::json!({"user": user, "role": "admin"}), ["token"]);
            store.create_request(new, Utc::now()).await.unwrap();
        }
    }
    let export = run(&state, None, &["approvals", "export"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert_eq!(export.stdout.lines().count(), 1 + 1 + 2 + 3, "{}", export.stdout);
    let file = dir.path().join("approvals.jsonl");
    std::fs::write(&file, &export.stdout).unwrap();

    let import = run(&state, Some(db.url()), &["approvals", "import", file.to_str().unwrap()]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert!(
        import.stdout.contains("2 requests") && import.stdout.contains("3 audit entries (chain verified)"),
        "{}",
        import.stdout
    );
    assert!(
        import.stderr.contains("audit head: 3:"),
        "the new head is printed: {}",
        import.stderr
    );

    // The CLI reads the PostgreSQL store now: the same requests, the same verified chain.
    let list = run(&state, Some(db.url()), &["approvals", "list", "-o", "json"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let listed: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let verify = run(&state, Some(db.url()), &["approvals", "audit", "--verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(verify.stdout.contains("3 entries"), "{}", verify.stdout);
    let workflows = run(&state, Some(db.url()), &["workflows", "list", "-o", "json"]);
    assert!(workflows.stdout.contains("\"installed\": true"), "{}", workflows.stdout);

    // A second import into the now non-empty store is refused, in one line saying why.
    let again = run(&state, Some(db.url()), &["approvals", "import", file.to_str().unwrap()]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
}

#[test]
fn bad_store_urls_and_unreachable_databases_are_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket_dir = dir.path().display().to_string();
    for (url, says) in [
        (
            "mysql://app:hunter2@db/approvals".to_string(),
            "not a usable approval store URL",
        ),
        (
            format!("postgres://app:hunter2@/approvals?host={socket_dir}"),
            "cannot reach the approval store database",
        ),
    ] {
        let out = run(dir.path(), Some(&url), &["approvals", "list"]);
        assert_ne!(out.code, 0, "{url}");
        assert!(out.stderr.contains(says), "{url}: {}", out.stderr);
        assert!(
            !out.stderr.contains("hunter2") && !out.stdout.contains("hunter2"),
            "the password leaked: {}",
            out.stderr
        );
    }
}

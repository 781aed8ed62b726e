//! Policies as files (issue 31): `rancherctl policies plan|apply|export` against the rules installed in the local
//! store and in the approvals service, with the apply going through an admins' approval of its own.

use std::path::{Path, PathBuf};

use rancher_access_tests::cli::{Run, SimCli};
use rancher_access_tests::server;
use rancher_sim::RancherVersion;
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/rules")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// Runs the whole cycle with `as_admin`, `as_approver` and `as_user` running rancherctl as the simulator's admin,
/// its second admin and a standard user (locally or through a service).
fn plan_apply_export(s: &SimCli, run: &dyn Fn(&str, &[&str]) -> Run) {
    let tokens = s.sim.tokens();
    let (admin, approver, user) = (tokens.admin.as_str(), tokens.approver.as_str(), tokens.user.as_str());
    let rules = examples();
    run(admin, &["workflows", "install", "apply-policies"]).expect_code(0);

    // Nothing installed: every rule is added.
    let plan = json(run(admin, &["policies", "plan", "-f", path(&rules), "-o", "json"]).expect_code(0));
    assert_eq!(plan["old_hash"], Value::Null);
    assert_eq!(plan["added"].as_array().unwrap().len(), 7, "{plan}");
    let new_hash = plan["new_hash"].as_str().unwrap().to_string();
    let shown = run(admin, &["policies", "plan", "-f", path(&rules)])
        .expect_code(0)
        .stdout
        .clone();
    assert!(shown.contains("+ contractors-no-wildcard"), "{shown}");
    assert!(shown.contains(&format!("(none installed) -> {new_hash}")), "{shown}");

    // Apply files a request that waits; a standard user may not approve it; an admin may, and it is installed.
    let filed = json(
        run(
            admin,
            &[
                "policies",
                "apply",
                "-f",
                path(&rules),
                "--reason",
                "adopt rules",
                "-o",
                "json",
            ],
        )
        .expect_code(3),
    );
    let id = filed["request"].as_str().expect("a request id").to_string();
    run(user, &["approvals", "approve", &id]).expect_code(1);
    let approved = json(run(approver, &["approvals", "approve", &id, "-o", "json"]).expect_code(0));
    assert_eq!(approved["status"], "succeeded", "{approved}");
    let shown = run(admin, &["approvals", "show", &id, "-o", "json"])
        .expect_code(0)
        .stdout
        .clone();
    assert!(shown.contains(&new_hash), "the outcome names the new hash: {shown}");

    // The installed rules judge what is filed from now on, locally and in the service alike: a grant longer than a
    // day is refused by `at-most-a-day`, and nothing is filed.
    run(admin, &["workflows", "install", "grant-project-role"]).expect_code(0);
    let bob = s.sim.users().standard[3].username.clone();
    let user_input = format!("user={bob}");
    let long = [
        "run",
        "grant-project-role",
        "--input",
        "project=downstream/Default",
        "--input",
        user_input.as_str(),
        "--input",
        "role=Read-only",
        "--input",
        "duration=48h",
    ];
    let refused = run(admin, &long);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("at-most-a-day"),
        "the refusal names the installed rule: {}",
        refused.stderr
    );
    let pending = json(run(admin, &["approvals", "list", "--state", "pending", "-o", "json"]).expect_code(0));
    assert_eq!(pending.as_array().unwrap().len(), 0, "nothing was filed: {pending}");

    // Now the plan of the same files is no change, and applying them again files nothing.
    let again = run(admin, &["policies", "plan", "-f", path(&rules)])
        .expect_code(0)
        .stdout
        .clone();
    assert!(
        again.contains(&format!("no change: rule set {new_hash} is installed")),
        "{again}"
    );
    let twice = run(admin, &["policies", "apply", "-f", path(&rules)])
        .expect_code(0)
        .stdout
        .clone();
    assert!(twice.contains("nothing was filed"), "{twice}");
    let pending = json(run(admin, &["approvals", "list", "--state", "pending", "-o", "json"]).expect_code(0));
    assert_eq!(pending.as_array().unwrap().len(), 0, "{pending}");

    // Export writes files whose plan is no change.
    let out = s.tmp.path().join("exported");
    run(admin, &["policies", "export", "-f", path(&out)]).expect_code(0);
    assert!(out.join("10-refuse.yaml").is_file());
    let exported = json(run(admin, &["policies", "plan", "-f", path(&out), "-o", "json"]).expect_code(0));
    assert_eq!(exported["old_hash"], exported["new_hash"]);
    assert_eq!(exported["added"].as_array().unwrap().len(), 0);

    // A changed file: the plan names the changed rule, with both hashes.
    let edited = s.tmp.path().join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    for f in ["10-refuse.yaml", "20-routine.yaml"] {
        std::fs::copy(out.join(f), edited.join(f)).unwrap();
    }
    std::fs::remove_file(edited.join("20-routine.yaml")).unwrap();
    let p = json(run(admin, &["policies", "plan", "-f", path(&edited), "-o", "json"]).expect_code(0));
    assert_eq!(p["old_hash"].as_str(), Some(new_hash.as_str()));
    assert_ne!(p["new_hash"].as_str(), Some(new_hash.as_str()));
    assert!(!p["removed"].as_array().unwrap().is_empty(), "{p}");
}

#[test]
fn plan_apply_export_in_local_mode() {
    let s = SimCli::start(RancherVersion::V2_13, 2);
    plan_apply_export(&s, &|token, args| s.run_as(token, args));
}

#[test]
fn plan_apply_export_through_the_service() {
    let s = SimCli::start(RancherVersion::V2_13, 2);
    let svc = s.rt.block_on(server::service_account(&s.sim));
    let store: std::sync::Arc<dyn rancher_approval::Store> = std::sync::Arc::new(rancher_approval::MemoryStore::new());
    let running = s.rt.block_on(server::start(server::config(&s.sim, &svc, store)));
    let url = running.url().to_string();
    plan_apply_export(&s, &|token, args| {
        let mut env = s.base_env();
        env.push(("RANCHER_TOKEN", token.to_string()));
        env.push(("RANCHERCTL_SERVER", url.clone()));
        s.exec(args, &env)
    });
    drop(running);
}

//! Approval rules as files (issue 31): `rancherctl policies check|test` on the shipped examples
//! (`examples/policies/`), run as a user or a CI job would.

use std::path::{Path, PathBuf};

use rancher_access_tests::cli::{command, Run};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

fn rancherctl(args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("a home");
    let env = [
        ("HOME", home.path().display().to_string()),
        ("XDG_CONFIG_HOME", home.path().display().to_string()),
    ];
    Run::from_output(command(args, &env).output().expect("rancherctl runs"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn policies_test_passes_on_the_shipped_examples() {
    let rules = examples().join("rules");
    let tests = examples().join("tests.yaml");
    let run = rancherctl(&["policies", "test", "-f", path(&rules), "-t", path(&tests)]);
    run.expect_code(0);
    for case in [
        "ok    cluster-owner on a prod cluster requires two of the platform team",
        "ok    the same on a dev cluster for four hours is auto-approved",
        "ok    a contractor asking for a role with * verbs is denied with the rule's message",
        "ok    a prod request without an incident in its reason is refused when filed",
    ] {
        assert!(run.stdout.contains(case), "{case}\n{}", run.stdout);
    }
    assert!(run.stdout.contains("8 passed, 0 failed"), "{}", run.stdout);
}

#[test]
fn a_failing_case_prints_the_rules_that_matched_in_order_and_exits_1() {
    let rules = examples().join("rules");
    let tests = examples().join("broken-tests.yaml");
    let run = rancherctl(&["policies", "test", "-f", path(&rules), "-t", path(&tests)]);
    run.expect_code(1);
    let out = &run.stdout;
    assert!(out.contains("FAIL  prod cluster-owner for eight hours"), "{out}");
    assert!(out.contains("expected auto-approved, got requires-approval"), "{out}");
    let first = out
        .find("1. prod-needs-ticket (require_reason)")
        .expect("the first matching rule");
    let second = out.find("2. at-most-a-day (max_duration)").expect("the second");
    let third = out.find("3. prod-two-platform (require)").expect("the third");
    assert!(first < second && second < third, "{out}");
    assert!(run.stderr.contains("1 of 1 policy tests failed"), "{}", run.stderr);
}

#[test]
fn json_output_carries_each_decision_and_the_rule_set_hash() {
    let rules = examples().join("rules");
    let tests = examples().join("tests.yaml");
    let run = rancherctl(&["policies", "test", "-f", path(&rules), "-t", path(&tests), "-o", "json"]);
    run.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let check = rancherctl(&["policies", "check", "-f", path(&rules), "-o", "json"]);
    check.expect_code(0);
    let c: serde_json::Value = serde_json::from_str(&check.stdout).expect("JSON");
    assert_eq!(v["hash"], c["hash"]);
    assert_eq!(v["passed"], 8);
    assert_eq!(v["cases"][0]["decision"]["verdict"]["verdict"], "requires_approval");
    assert_eq!(c["schedules"], serde_json::json!(["PRIMARY"]));
}

#[test]
fn a_pathological_or_broken_rule_is_refused_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow.yaml"),
        "rules:\n  - id: slow\n    when: 'requester.groups.all(a, requester.groups.all(b, requester.groups.all(c, a != b + c)))'\n    auto_approve: true\n",
    )
    .unwrap();
    let run = rancherctl(&["policies", "check", "-f", path(dir.path())]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("rule 1 (slow)") && run.stderr.contains("estimated cost"),
        "{}",
        run.stderr
    );
    // Escape sequences in a rule id are shown escaped, never acted on.
    std::fs::write(
        dir.path().join("slow.yaml"),
        "rules: [{id: \"\\e[31mred\", when: 'true', deny: x}]\n",
    )
    .unwrap();
    let run = rancherctl(&["policies", "check", "-f", path(dir.path())]);
    run.expect_code(1);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}

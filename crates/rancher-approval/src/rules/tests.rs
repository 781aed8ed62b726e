use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::policy::{ApproverRef, Count};

const EXAMPLE: &str = r#"
time_zone: "+01:00"
rules:
  - id: contractors-no-wildcard
    when: '"local://g-contractors" in requester.groups && role.wildcard'
    deny: contractors may not receive a role that allows every verb
  - id: prod-ticket
    when: 'has(cluster.labels.env) && cluster.labels.env == "prod"'
    require_reason: 'INC-\d+'
  - id: oncall-prod
    when: 'oncall("PSCHED1") && has(cluster.labels.env) && cluster.labels.env == "prod" && duration <= duration("2h")'
    auto_approve: true
  - id: dev-short
    when: 'has(cluster.labels.env) && cluster.labels.env == "dev" && duration <= duration("4h")'
    auto_approve: true
  - id: prod-two-platform
    when: 'has(cluster.labels.env) && cluster.labels.env == "prod"'
    require:
      thresholds: [{count: 2, of: [{group: "local://g-platform"}], label: platform team}]
  - id: cap-8h
    when: "true"
    max_duration: 8h
  - id: sre-breakglass
    when: '"local://g-sre" in requester.groups'
    break_glass: true
"#;

fn set() -> RuleSet {
    RuleSet::from_yaml(EXAMPLE).expect("the example loads")
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 11, 0, 0).unwrap()
}

fn facts(env: &str, groups: &[&str], verbs: &[&str], hours: u64, reason: &str) -> Facts {
    Facts {
        workflow: "grant-cluster-role".into(),
        role: Some(RoleFacts {
            id: "cluster-owner".into(),
            name: "Cluster Owner".into(),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
        }),
        cluster: Some(ScopeFacts {
            id: "c-1".into(),
            name: env.into(),
            labels: BTreeMap::from([("env".to_string(), env.to_string())]),
        }),
        requester: RequesterFacts {
            id: "u-alice".into(),
            name: "alice".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            admin: false,
        },
        duration: Some(hours * 3600),
        reason: reason.into(),
        ..Facts::default()
    }
}

#[test]
fn prod_needs_two_of_the_platform_team() {
    let d = set().evaluate(&facts("prod", &[], &["get"], 2, "INC-42 disk"), noon());
    assert_eq!(
        d.verdict,
        RuleVerdict::RequiresApproval {
            rule: "prod-two-platform".into(),
            combine: Combine::Any,
            thresholds: vec![Threshold {
                count: Count::AtLeast(2),
                of: vec![ApproverRef::group("local://g-platform")],
                label: Some("platform team".into()),
            }],
        }
    );
    // prod-ticket (satisfied), prod-two-platform, cap-8h; oncall-prod could not be evaluated (no on-call facts).
    let ids: Vec<_> = d.matched.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["prod-ticket", "prod-two-platform", "cap-8h"]);
    assert_eq!(d.unknown.len(), 1);
    assert_eq!(d.unknown[0].id, "oncall-prod");
    assert!(d.unknown[0].problem.contains("PSCHED1"), "{}", d.unknown[0].problem);
    assert_eq!(d.ruleset, set().hash());
    assert_eq!(d.max_duration, Some(8 * 3600));
}

#[test]
fn dev_up_to_four_hours_is_auto_approved_and_longer_is_not() {
    let d = set().evaluate(&facts("dev", &[], &["get"], 4, ""), noon());
    assert_eq!(
        d.verdict,
        RuleVerdict::AutoApproved {
            rule: "dev-short".into()
        }
    );
    assert_eq!(d.deciding_rule(), Some("dev-short"));
    let d = set().evaluate(&facts("dev", &[], &["get"], 5, ""), noon());
    assert_eq!(d.verdict, RuleVerdict::Fallback);
    let d = set().evaluate(&facts("dev", &[], &["get"], 9, ""), noon());
    assert!(
        matches!(d.verdict, RuleVerdict::Denied { rule: Some(ref r), .. } if r == "cap-8h"),
        "{d:?}"
    );
}

#[test]
fn contractors_never_get_wildcard_roles_and_the_first_refusal_wins() {
    let d = set().evaluate(
        &facts("prod", &["local://g-contractors"], &["get", "*"], 1, "no ticket"),
        noon(),
    );
    assert_eq!(
        d.verdict,
        RuleVerdict::Denied {
            rule: Some("contractors-no-wildcard".into()),
            message: "contractors may not receive a role that allows every verb".into(),
        }
    );
    // The same without `*`: the missing ticket refuses it instead.
    let d = set().evaluate(
        &facts("prod", &["local://g-contractors"], &["get"], 1, "no ticket"),
        noon(),
    );
    match d.verdict {
        RuleVerdict::Denied { rule, message } => {
            assert_eq!(rule.as_deref(), Some("prod-ticket"));
            assert!(message.contains(r"INC-\d+"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn on_call_auto_approves_and_unknown_fails_closed() {
    let mut f = facts("prod", &[], &["get"], 1, "INC-7");
    f.oncall.insert("PSCHED1".into(), OnCall::Known(true));
    assert_eq!(
        set().evaluate(&f, noon()).verdict,
        RuleVerdict::AutoApproved {
            rule: "oncall-prod".into()
        }
    );
    f.oncall.insert("PSCHED1".into(), OnCall::Known(false));
    assert!(matches!(
        set().evaluate(&f, noon()).verdict,
        RuleVerdict::RequiresApproval { .. }
    ));
    f.oncall.insert(
        "PSCHED1".into(),
        OnCall::Unknown {
            unknown: "on-call source unavailable".into(),
        },
    );
    let d = set().evaluate(&f, noon());
    assert!(matches!(d.verdict, RuleVerdict::RequiresApproval { .. }), "{d:?}");
    assert!(
        d.unknown[0].problem.contains("on-call source unavailable"),
        "{:?}",
        d.unknown
    );
    assert_eq!(set().schedules().iter().collect::<Vec<_>>(), ["PSCHED1"]);
}

#[test]
fn break_glass_needs_a_permitting_rule_and_is_capped_at_one_hour() {
    let mut f = facts("prod", &["local://g-sre"], &["*"], 3, "INC-9 outage");
    f.break_glass = true;
    assert_eq!(
        set().evaluate(&f, noon()).verdict,
        RuleVerdict::BreakGlass {
            rule: "sre-breakglass".into(),
            cap_secs: 3600,
        }
    );
    f.requester.groups.clear();
    match set().evaluate(&f, noon()).verdict {
        RuleVerdict::Denied { rule: None, message } => assert!(message.contains("break-glass"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn time_of_day_and_weekday_are_seen_in_the_configured_zone() {
    let rules = r#"
time_zone: "+01:00"
rules:
  - id: office-hours
    when: 'time.hour >= 9 && time.hour < 18 && !(time.weekday in ["sat", "sun"])'
    auto_approve: true
"#;
    let set = RuleSet::from_yaml(rules).unwrap();
    let f = Facts::default();
    // Monday 07 Dec 2026, 08:30 UTC is 09:30 at +01:00.
    let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).unwrap();
    assert!(matches!(
        set.evaluate(&f, at(8, 30)).verdict,
        RuleVerdict::AutoApproved { .. }
    ));
    assert_eq!(set.evaluate(&f, at(7, 30)).verdict, RuleVerdict::Fallback);
    // Saturday.
    let sat = Utc.with_ymd_and_hms(2026, 12, 12, 12, 0, 0).unwrap();
    assert_eq!(set.evaluate(&f, sat).verdict, RuleVerdict::Fallback);
}

#[test]
fn an_iana_zone_moves_office_hours_with_daylight_saving() {
    let rules = r#"
time_zone: Europe/Berlin
rules:
  - id: office-hours
    when: 'time.hour >= 9 && time.hour < 18 && !(time.weekday in ["sat", "sun"])'
    auto_approve: true
"#;
    let set = RuleSet::from_yaml(rules).unwrap();
    let f = Facts::default();
    let auto = |t: DateTime<Utc>| matches!(set.evaluate(&f, t).verdict, RuleVerdict::AutoApproved { .. });
    // 07:30 UTC is 08:30 in Berlin's winter (closed) and 09:30 in its summer (open).
    assert!(!auto(Utc.with_ymd_and_hms(2026, 12, 7, 7, 30, 0).unwrap()));
    assert!(auto(Utc.with_ymd_and_hms(2026, 7, 6, 7, 30, 0).unwrap()));
    // 16:30 UTC is 17:30 in winter (open) and 18:30 in summer (closed).
    assert!(auto(Utc.with_ymd_and_hms(2026, 12, 7, 16, 30, 0).unwrap()));
    assert!(!auto(Utc.with_ymd_and_hms(2026, 7, 6, 16, 30, 0).unwrap()));
    // The interpreter sees the same clock as the fast path.
    for t in [
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 29, 7, 1, 0).unwrap(),
    ] {
        assert_eq!(set.evaluate_with(&f, t, true), set.evaluate_with(&f, t, false));
    }
}

#[test]
fn an_unknown_time_zone_is_a_load_error_naming_it() {
    let err = RuleSet::from_yaml("time_zone: Europe/Berln\nrules: []").unwrap_err();
    assert_eq!(err.at, "time_zone");
    assert!(err.problem.contains("\"Europe/Berln\" is not a time zone"), "{err}");
    assert!(err.problem.contains("Europe/Berlin"), "{err}");
}

#[test]
fn typed_inputs_and_targets_are_facts() {
    let rules = r#"
rules:
  - id: small
    when: 'workflow == "scale" && inputs.replicas <= 3 && inputs.dry && "u-bob" in target.users && size(inputs.tags) == 2'
    auto_approve: true
"#;
    let set = RuleSet::from_yaml(rules).unwrap();
    let f: Facts =
        super::from_yaml("workflow: scale\ninputs: {replicas: 2, dry: true, tags: [a, b]}\ntarget: {users: [u-bob]}\n")
            .unwrap();
    assert!(matches!(
        set.evaluate(&f, noon()).verdict,
        RuleVerdict::AutoApproved { .. }
    ));
}

#[test]
fn loading_refuses_bad_rules_with_the_rule_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        ("rules: [{id: a, when: 'true &&', deny: x}]", "not valid CEL"),
        (
            "rules: [{id: a, when: 'nobody == 1', auto_approve: true}]",
            "`nobody` is not a fact",
        ),
        (
            "rules: [{id: a, when: 'exec(\"x\")', auto_approve: true}]",
            "not a function rules may call",
        ),
        ("rules: [{id: a, when: 'true'}]", "exactly one outcome"),
        (
            "rules: [{id: a, when: 'true', deny: x, auto_approve: true}]",
            "exactly one outcome",
        ),
        (
            "rules: [{id: a, when: 'true', auto_approve: true}, {id: a, when: 'true', deny: x}]",
            "unique",
        ),
        ("rules: [{id: 'a b', when: 'true', deny: x}]", "must be 1 to 64"),
        (
            "rules: [{id: a, when: 'true', require_reason: '('}]",
            "not a regular expression",
        ),
        ("rules: [{id: a, when: 'true', max_duration: 'soon'}]", "max_duration"),
        ("rules: [{id: a, when: 'true', require: {thresholds: []}}]", "require"),
        (
            "rules: [{id: a, when: 'oncall(reason)', auto_approve: true}]",
            "schedule id in quotes",
        ),
        ("time_zone: Mars/Olympus\nrules: []", "not a time zone"),
        ("rules: [{id: a, when: 'true', deny: x, colour: red}]", "colour"),
    ];
    for (text, expected) in cases {
        let err = RuleSet::from_yaml(text).expect_err(text).to_string();
        assert!(err.contains(expected), "{text}: {err}");
        assert!(!err.contains('\n'), "one line: {err:?}");
    }
}

#[test]
fn a_pathological_rule_is_refused_at_load_time_by_its_cost() {
    // A loop inside a loop inside a loop: 100 × 100 × 100 steps by the cost model.
    let text = r#"rules: [{id: slow, when: 'requester.groups.all(a, requester.groups.all(b, requester.groups.exists(c, a + b == c)))', auto_approve: true}]"#;
    let err = RuleSet::from_yaml(text).unwrap_err().to_string();
    assert!(err.contains("estimated cost") && err.contains("rule 1 (slow)"), "{err}");
    // One loop is fine, and its cost is what the model says: range 2 + init 1 + result 1 + 100 × body.
    let ok = RuleSet::from_yaml(
        r#"rules: [{id: one, when: 'requester.groups.exists(g, g.startsWith("local://"))', auto_approve: true}]"#,
    )
    .unwrap();
    assert!(
        ok.costs()[0] > LIST_BOUND && ok.costs()[0] < MAX_COST,
        "{:?}",
        ok.costs()
    );
}

#[test]
fn the_hash_ignores_formatting_and_changes_with_the_rules() {
    let a = RuleSet::from_yaml("rules: [{id: a, when: 'true', deny: no}]").unwrap();
    let b = RuleSet::from_yaml("rules:\n  - deny: no\n    when: 'true'\n    id: a\n").unwrap();
    let c = RuleSet::from_yaml("rules: [{id: a, when: 'true', deny: nope}]").unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_ne!(a.hash(), c.hash());
    // The written form reads back to the same set.
    let text = super::to_yaml(set().spec()).unwrap();
    assert_eq!(RuleSet::from_yaml(&text).unwrap().hash(), set().hash());
}

#[test]
fn a_when_that_is_not_a_bool_fails_closed() {
    let set = RuleSet::from_yaml(
        "rules: [{id: d, when: 'reason', deny: odd}, {id: ok, when: 'requester.id', auto_approve: true}]",
    )
    .unwrap();
    let d = set.evaluate(&Facts::default(), noon());
    assert_eq!(
        d.verdict,
        RuleVerdict::Denied {
            rule: Some("d".into()),
            message: "odd".into(),
        }
    );
    assert_eq!(d.unknown.len(), 2);
}

fn arb_facts() -> impl Strategy<Value = Facts> {
    (
        prop::sample::select(vec!["prod", "dev", "staging"]),
        prop::collection::vec(
            prop::sample::select(vec![
                "local://g-contractors",
                "local://g-sre",
                "local://g-platform",
                "x",
            ]),
            0..4,
        ),
        prop::collection::vec(prop::sample::select(vec!["get", "list", "*", "bind", "escalate"]), 0..4),
        0u64..12,
        prop::sample::select(vec!["", "INC-12", "because", "INC-"]),
        any::<bool>(),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(env, groups, verbs, hours, reason, glass, oncall)| {
            let mut f = facts(env, &groups, &verbs, hours, reason);
            f.break_glass = glass;
            if let Some(on) = oncall {
                f.oncall.insert("PSCHED1".into(), OnCall::Known(on));
            }
            f
        })
}

fn arb_now() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

proptest! {
    #[test]
    fn evaluation_is_a_pure_function_of_rules_facts_and_now(f in arb_facts(), now in arb_now()) {
        let a = set();
        let b = set();
        prop_assert_eq!(a.evaluate(&f, now), b.evaluate(&f, now));
        prop_assert_eq!(a.evaluate(&f, now), a.evaluate(&f, now));
    }

    #[test]
    fn the_first_refusal_wins_and_rules_that_never_match_change_nothing(f in arb_facts(), now in arb_now()) {
        let base = set().evaluate(&f, now);
        // A deny that always holds, put first, decides everything.
        let mut spec = set().spec().clone();
        spec.rules.insert(0, RuleSpec {
            id: "stop".into(), description: None, when: "true".into(),
            outcome: RuleOutcome::Deny { message: "stopped".into() },
        });
        let denied = RuleSet::load(spec).unwrap().evaluate(&f, now);
        prop_assert_eq!(denied.verdict, RuleVerdict::Denied { rule: Some("stop".into()), message: "stopped".into() });
        // Rules that never hold, anywhere in the list, leave the verdict as it was.
        let mut spec = set().spec().clone();
        for (i, outcome) in [RuleOutcome::AutoApprove, RuleOutcome::BreakGlass, RuleOutcome::Deny { message: "x".into() }]
            .into_iter().enumerate()
        {
            let at = (i * 3).min(spec.rules.len());
            spec.rules.insert(at, RuleSpec { id: format!("never-{i}"), description: None, when: "false".into(), outcome });
        }
        let padded = RuleSet::load(spec).unwrap().evaluate(&f, now);
        prop_assert_eq!(padded.verdict, base.verdict.clone());
        // A verdict names a rule of the set (or none), and auto-approval never comes from an unknown.
        if let Some(id) = base.deciding_rule() {
            prop_assert!(base.matched.iter().any(|m| m.id == id));
            let auto = matches!(base.verdict, RuleVerdict::AutoApproved { .. });
            prop_assert!(!(auto && base.unknown.iter().any(|u| u.id == id)), "auto-approved by an unknown rule");
        }
        // Break-glass never lasts more than an hour.
        if let RuleVerdict::BreakGlass { cap_secs, .. } = base.verdict {
            prop_assert!(cap_secs <= BREAK_GLASS_CAP_SECS);
        }
    }

    #[test]
    fn loading_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = RuleSet::from_yaml(&text);
        let _ = RuleSet::from_yaml(&format!("rules: [{{id: r, when: {text:?}, auto_approve: true}}]"));
    }
}

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

#[test]
fn the_shipped_example_policies_pass_their_tests() {
    let set = files::load_dir(&examples().join("rules")).expect("the examples load");
    let tests = files::TestFile::read(&examples().join("tests.yaml")).expect("the tests read");
    let results = files::run_tests(&set, &tests);
    assert!(results.len() >= 4);
    for r in &results {
        assert!(r.passed, "{}: {:?} {:?}", r.name, r.problems, r.decision);
    }
    // The rules of both files, in file-name order.
    assert_eq!(set.spec().rules[0].id, "contractors-no-wildcard");
    assert_eq!(set.spec().time_zone.as_deref(), Some("UTC"));
}

#[test]
fn the_broken_example_fails_and_names_the_rules_that_matched() {
    let set = files::load_dir(&examples().join("rules")).unwrap();
    let tests = files::TestFile::read(&examples().join("broken-tests.yaml")).unwrap();
    let results = files::run_tests(&set, &tests);
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed);
    assert_eq!(results[0].problems, ["expected auto-approved, got requires-approval"]);
    let ids: Vec<_> = results[0].decision.matched.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["prod-needs-ticket", "at-most-a-day", "prod-two-platform"]);
}

#[test]
fn a_directory_with_two_time_zones_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "time_zone: UTC\nrules: []\n").unwrap();
    std::fs::write(dir.path().join("b.yml"), "time_zone: '+01:00'\nrules: []\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not read").unwrap();
    let err = files::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("b.yml") && err.contains("a.yaml"), "{err}");
    let err = files::load_dir(&dir.path().join("missing")).unwrap_err().to_string();
    assert!(err.contains("cannot read the policy directory"), "{err}");
}

mod recorded {
    use super::*;
    use crate::{AuditDetail, MemoryStore, NewRequest, Policy, Principal, RequestState, Store};

    fn alice() -> Principal {
        Principal::new("u-alice").with_username("alice")
    }

    async fn file(store: &MemoryStore, set: &RuleSet, f: &Facts) -> Result<crate::ApprovalRequest, String> {
        let d = set.evaluate(f, noon());
        let new = NewRequest::new("grant-cluster-role", alice(), Policy::installer())
            .inputs(serde_json::json!({"cluster": "c-1"}), Vec::<String>::new())
            .under_rules(&d, f)?;
        Ok(store.create_request(new, noon()).await.expect("filed"))
    }

    #[tokio::test]
    async fn an_auto_approval_is_the_rules_audited_decision_and_replays_to_the_same_outcome() {
        let store = MemoryStore::new();
        let f = facts("dev", &[], &["get"], 2, "");
        let req = file(&store, &set(), &f).await.unwrap();
        assert_eq!(req.state, RequestState::Approved, "approved when filed, by the rule");
        assert!(req.decisions.is_empty(), "no person decided");
        let record = req.rules.clone().expect("the decision is recorded");
        assert_eq!(record.rule.as_deref(), Some("dev-short"));
        assert_eq!(record.ruleset, set().hash());
        // The audit entry of the filing names the rule and the rule set, and the chain verifies.
        let entries = store.audit_of_request(req.id.as_str()).await.unwrap();
        let created = entries.first().expect("the filing's entry");
        match created.details() {
            AuditDetail::RequestCreated(c) => {
                assert_eq!(c.state, RequestState::Approved);
                let r = c.rules.expect("rules in the audit entry");
                assert_eq!(r.rule.as_deref(), Some("dev-short"));
                // Replaying the recorded facts on the same rules gives the same verdict; on other rules it does not.
                assert!(r.replays_on(&set(), req.created_at));
                let other = RuleSet::from_yaml("rules: [{id: x, when: 'true', deny: no}]").unwrap();
                assert!(!r.replays_on(&other, req.created_at));
            }
            other => panic!("{other:?}"),
        }
        store.verify_audit().await.expect("the chain verifies");
        // The content hash covers the rule set and the rule.
        let mut edited = req.clone();
        edited.rules.as_mut().unwrap().rule = Some("prod-two-platform".into());
        assert_ne!(edited.compute_content_hash(), req.content_hash);
    }

    /// A changed policy file changes the rule set's hash only for requests filed after it is installed: a request
    /// filed before keeps the hash (and content hash) it was filed under, and still replays on that set.
    #[tokio::test]
    async fn a_changed_file_changes_the_hash_only_for_requests_filed_after_it() {
        use crate::rules::installed;
        let store = MemoryStore::new();
        let mut policy_files = BTreeMap::from([("10-rules.yaml".to_string(), EXAMPLE.to_string())]);
        installed::install(&store, policy_files.clone(), None, None, noon())
            .await
            .unwrap();
        let (_, before_set) = installed::installed(&store, noon()).await.unwrap().unwrap();
        let f = facts("prod", &[], &["get"], 2, "INC-7 disk full");
        let before = file(&store, &before_set, &f).await.unwrap();

        // One file changes: a rule's condition.
        let changed = EXAMPLE.replace("duration(\"4h\")", "duration(\"3h\")");
        assert_ne!(changed, EXAMPLE);
        policy_files.insert("10-rules.yaml".into(), changed);
        let outcome = installed::install(&store, policy_files, None, None, noon())
            .await
            .unwrap();
        assert!(outcome.changed);
        assert_eq!(outcome.old_hash.as_deref(), Some(before_set.hash()));
        let (_, after_set) = installed::installed(&store, noon()).await.unwrap().unwrap();
        assert_ne!(after_set.hash(), before_set.hash());
        let after = file(&store, &after_set, &f).await.unwrap();

        // The request filed after carries the new hash; the one filed before, read back, still the old one.
        assert_eq!(after.rules.as_ref().unwrap().ruleset, after_set.hash());
        let reread = store.get_request(&before.id).await.unwrap();
        assert_eq!(reread.rules.as_ref().unwrap().ruleset, before_set.hash());
        assert_eq!(reread.content_hash, before.content_hash);
        assert_eq!(reread.compute_content_hash(), before.content_hash);
        assert!(reread
            .rules
            .as_ref()
            .unwrap()
            .replays_on(&before_set, reread.created_at));
        assert!(!reread.rules.as_ref().unwrap().replays_on(&after_set, reread.created_at));
        store.verify_audit().await.expect("the chain verifies");
    }

    #[tokio::test]
    async fn a_required_threshold_becomes_the_requests_policy_and_a_refusal_files_nothing() {
        let store = MemoryStore::new();
        let f = facts("prod", &[], &["get"], 2, "INC-5");
        let req = file(&store, &set(), &f).await.unwrap();
        assert_eq!(req.state, RequestState::Pending);
        assert!(
            matches!(req.policy.rule, crate::policy::Rule::Approvers { .. }),
            "{:?}",
            req.policy
        );
        assert_eq!(req.rules.as_ref().unwrap().rule.as_deref(), Some("prod-two-platform"));
        let refused = file(&store, &set(), &facts("prod", &[], &["get"], 2, "no ticket")).await;
        assert!(refused.unwrap_err().contains(r"INC-\d+"));
        assert_eq!(
            store.list_requests(&Default::default()).await.unwrap().len(),
            1,
            "nothing filed"
        );
    }

    #[tokio::test]
    async fn a_request_filed_without_rules_keeps_its_old_content_hash() {
        let store = MemoryStore::new();
        let new = NewRequest::new("w", alice(), Policy::installer());
        let req = store.create_request(new, noon()).await.unwrap();
        assert!(req.rules.is_none());
        assert!(!req.content().as_object().unwrap().contains_key("rules"));
        let json = serde_json::to_value(&req).unwrap();
        assert!(
            json.get("rules").is_none(),
            "nothing new is stored for requests without rules"
        );
    }
}

/// Expressions of many shapes: ones the fast path models, ones it gives up on at run time (missing keys, values
/// that are not bools, lists compared), and ones it never compiles (methods, `size`, map comprehensions).
const SHAPES: &[&str] = &[
    r#"has(cluster.labels.env) && cluster.labels.env == "prod""#,
    r#"cluster.labels.env == "prod""#,
    r#"cluster.labels["env"] == "dev""#,
    r#""env" in cluster.labels"#,
    r#"has(project.labels.env) || project.id == """#,
    r#"requester.groups.exists(g, g == "local://g-sre")"#,
    r#"requester.groups.all(g, g.startsWith("local://"))"#,
    r#"requester.groups.exists(requester, requester == "x")"#,
    r#"requester.groups.exists(g, g)"#,
    r#"role.verbs.exists(v, v in ["*", "bind"])"#,
    r#"role.verbs.all(v, v != "*")"#,
    r#"target.users.exists(u, u == requester.id)"#,
    r#"requester.groups.exists_one(g, g == "x")"#,
    r#"inputs.cluster == "c-1""#,
    r#"has(inputs.hours) && inputs.hours > 2"#,
    r#"inputs["flags"] == ["a"]"#,
    r#""a" in inputs.flags"#,
    r#"inputs.exists(k, k == "cluster")"#,
    r#"duration <= duration("4h") || reason == """#,
    r#"duration == 3600"#,
    r#"false || reason"#,
    r#"reason"#,
    r#"!break_glass"#,
    r#"!reason"#,
    r#"reason < 1"#,
    r#""INC" in reason"#,
    r#"workflow == 1"#,
    r#"time.hour >= 9 && time.hour < 18 && time.weekday in ["mon", "tue"]"#,
    r#"time.weekday == "sat" ? oncall("PSCHED1") : requester.admin"#,
    r#"oncall("PSCHED1")"#,
    r#"oncall("OTHER")"#,
    r#"role.wildcard || role.can_grant"#,
    r#"has(role.nope)"#,
    r#"role.nope"#,
    r#"size(requester.groups) > 1"#,
    r#"requester.groups == ["x"]"#,
    r#"1 == 1u"#,
    r#"time.minute == 0 || time.minute > 29"#,
];

fn shapes_set() -> RuleSet {
    let rules = SHAPES
        .iter()
        .enumerate()
        .map(|(i, when)| RuleSpec {
            id: format!("r{i}"),
            description: None,
            when: (*when).into(),
            outcome: RuleOutcome::Deny {
                message: format!("rule {i}"),
            },
        })
        .collect();
    RuleSet::load(RuleSetSpec {
        time_zone: Some("-03:30".into()),
        rules,
    })
    .expect("the shapes load")
}

fn arb_rich_facts() -> impl Strategy<Value = Facts> {
    (
        arb_facts(),
        any::<bool>(),
        prop::option::of(0i64..5),
        prop::collection::vec(prop::sample::select(vec!["a", "b"]), 0..3),
        prop::collection::vec(prop::sample::select(vec!["u-alice", "u-bob", "x"]), 0..3),
        prop::option::of(prop::sample::select(vec!["prod", "dev"])),
    )
        .prop_map(|(mut f, cluster_input, hours, flags, users, project_env)| {
            if cluster_input {
                f.inputs.insert("cluster".into(), InputFact::Text("c-1".into()));
            }
            if let Some(h) = hours {
                f.inputs.insert("hours".into(), InputFact::Int(h));
            }
            f.inputs.insert(
                "flags".into(),
                InputFact::List(flags.iter().map(|s| s.to_string()).collect()),
            );
            f.target.users = users.iter().map(|s| s.to_string()).collect();
            f.project = project_env.map(|env| ScopeFacts {
                id: "c-1:p-1".into(),
                name: "web".into(),
                labels: BTreeMap::from([("env".to_string(), env.to_string())]),
            });
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The fast path decides exactly as the CEL interpreter alone: the verdict, every matched rule and every
    /// unknown, with its message.
    #[test]
    fn the_fast_path_decides_exactly_as_the_interpreter(f in arb_rich_facts(), now in arb_now()) {
        static SETS: std::sync::OnceLock<[RuleSet; 2]> = std::sync::OnceLock::new();
        for set in SETS.get_or_init(|| [shapes_set(), set()]) {
            prop_assert_eq!(set.evaluate_with(&f, now, true), set.evaluate_with(&f, now, false));
        }
    }
}

#[test]
fn the_fast_path_covers_the_common_shapes() {
    let set = shapes_set();
    let fast: Vec<&str> = SHAPES
        .iter()
        .zip(&set.compiled)
        .filter(|(_, c)| c.fast.is_some())
        .map(|(s, _)| *s)
        .collect();
    // Conditions on labels, groups, roles, durations, time and on-call are all compiled.
    for shape in [
        SHAPES[0], SHAPES[5], SHAPES[9], SHAPES[14], SHAPES[18], SHAPES[27], SHAPES[28],
    ] {
        assert!(fast.contains(&shape), "{shape} is not on the fast path");
    }
    // Methods, `size` and uint literals go to the interpreter.
    for shape in [SHAPES[6], SHAPES[34], SHAPES[36]] {
        assert!(!fast.contains(&shape), "{shape} is on the fast path");
    }
    // And where compiled, it answers without the interpreter for ordinary facts.
    let f = facts("prod", &["local://g-sre"], &["*"], 2, "INC-1");
    let view = fast::View::new(&f, set.zone.clock(noon()));
    assert_eq!(set.compiled[0].fast.as_ref().unwrap().eval(&view), Some(true));
    assert_eq!(set.compiled[5].fast.as_ref().unwrap().eval(&view), Some(true));
    assert_eq!(set.compiled[1].fast.as_ref().unwrap().eval(&view), Some(true));
}

/// The CEL interpreter panics on a loop over a value that is neither a list nor a map (`reason.exists(...)`); a
/// request must never take the service down with it: the rule is unknown and fails closed, like any error.
#[test]
fn a_rule_the_interpreter_panics_on_fails_closed() {
    let set = RuleSet::from_yaml(
        "rules: [{id: loop, when: 'reason.exists(c, true)', deny: looped}, {id: ok, when: 'true', auto_approve: true}]",
    )
    .unwrap();
    let mut f = Facts::default();
    f.reason = "INC-1".into();
    let d = set.evaluate(&f, noon());
    assert_eq!(
        d.verdict,
        RuleVerdict::Denied {
            rule: Some("loop".into()),
            message: "looped".into(),
        }
    );
    assert_eq!(d.unknown.len(), 1, "{:?}", d.unknown);
    assert!(d.unknown[0].problem.contains("rewrite"), "{}", d.unknown[0].problem);
}

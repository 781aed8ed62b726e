//! Entry functions for rancher-approval's parsers: the policy rule loader.

use chrono::{TimeZone, Utc};
use rancher_approval::rules::{self, Facts, RuleSet};

fn one_bounded_line(what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: an empty message");
    assert!(
        !text.contains(char::is_control),
        "{what}: not one printable line: {text:?}"
    );
}

fn check(loaded: Result<RuleSet, rules::LoadError>) {
    match loaded {
        Ok(set) => {
            // A loaded set writes out and reads back to the same hash, and evaluates without panicking.
            let text = rules::to_yaml(set.spec()).expect("a loaded set writes out");
            let again = RuleSet::from_yaml(&text).expect("a written set loads again");
            assert_eq!(again.hash(), set.hash(), "the hash survives a round trip");
            assert!(
                set.costs().iter().all(|c| *c <= rules::MAX_COST),
                "a loaded rule is within the cost limit"
            );
            let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
            let decision = set.evaluate(&Facts::default(), now);
            assert_eq!(
                decision,
                set.evaluate(&Facts::default(), now),
                "evaluation is deterministic"
            );
            for u in &decision.unknown {
                one_bounded_line("rule problem", &u.problem);
            }
        }
        Err(e) => one_bounded_line("rule set refusal", &e.to_string()),
    }
}

/// `RuleSet::from_yaml` on the input as a whole file, and the input as one rule's `when` expression: refusals are
/// one line; a loaded set round-trips to the same hash, stays within the cost limit and evaluates deterministically.
pub fn rules(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    check(RuleSet::from_yaml(&input));
    let spec = rules::RuleSetSpec {
        time_zone: None,
        rules: vec![rules::RuleSpec {
            id: "fuzz".into(),
            description: None,
            when: input.into_owned(),
            outcome: rules::RuleOutcome::AutoApprove,
        }],
    };
    check(RuleSet::load(spec));
}

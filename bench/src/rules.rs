//! Case 10: approval rule evaluation. A 20-rule set in CEL (refusals, reason and duration checks, on-call and
//! label conditions, loops over the requester's groups) evaluated against varied facts on one thread, the way
//! the service evaluates it for each request filed.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{ensure, Result};
use chrono::{TimeZone, Utc};
use rancher_approval::rules::{Facts, OnCall, RequesterFacts, RoleFacts, RuleSet, RuleVerdict, ScopeFacts};

use crate::stats::{Figure, Unit};
use crate::Options;

/// The rule set measured: 20 rules, each of a kind people write.
pub fn twenty_rules() -> RuleSet {
    let mut rules = String::from("time_zone: '+01:00'\nrules:\n");
    let envs = ["prod", "staging", "dev", "qa"];
    for (i, env) in envs.iter().enumerate() {
        rules += &format!(
            "  - {{id: deny-contractors-{env}, when: '\"local://g-contractors\" in requester.groups && role.wildcard && has(cluster.labels.env) && cluster.labels.env == \"{env}\"', deny: 'no wildcard roles for contractors on {env}'}}\n\
             \x20 - {{id: ticket-{env}, when: 'has(cluster.labels.env) && cluster.labels.env == \"{env}\" && {i} < 2', require_reason: 'INC-\\d+'}}\n\
             \x20 - {{id: oncall-{env}, when: 'has(cluster.labels.env) && cluster.labels.env == \"{env}\" && duration <= duration(\"2h\") && oncall(\"PRIMARY\")', auto_approve: true}}\n\
             \x20 - {{id: office-{env}, when: 'has(cluster.labels.env) && cluster.labels.env == \"{env}\" && time.hour >= 9 && time.hour < 18 && requester.groups.exists(g, g == \"local://g-team-1\")', auto_approve: true}}\n\
             \x20 - {{id: two-{env}, when: 'has(cluster.labels.env) && cluster.labels.env == \"{env}\"', require: {{thresholds: [{{count: 2, of: [{{group: \"local://g-platform\"}}]}}]}}}}\n"
        );
    }
    RuleSet::from_yaml(&rules).expect("the bench's rules load")
}

/// Facts number `i` of a varied stream: four environments, three kinds of requester, with and without on-call.
pub fn facts(i: usize) -> Facts {
    let env = ["prod", "staging", "dev", "qa", "lab"][i % 5];
    let mut groups = vec![format!("local://g-team-{}", i % 7), "local://g-everyone".to_string()];
    if i % 3 == 0 {
        groups.push("local://g-contractors".into());
    }
    Facts {
        workflow: "grant-cluster-role".into(),
        role: Some(RoleFacts {
            id: "cluster-owner".into(),
            name: "Cluster Owner".into(),
            verbs: if i % 2 == 0 {
                vec!["*".into()]
            } else {
                vec!["get".into(), "list".into()]
            },
        }),
        cluster: Some(ScopeFacts {
            id: format!("c-{i}"),
            name: env.into(),
            labels: BTreeMap::from([("env".to_string(), env.to_string())]),
        }),
        requester: RequesterFacts {
            id: format!("u-{i}"),
            name: format!("user{i}"),
            groups,
            admin: false,
        },
        duration: Some(3600 * (1 + (i % 4) as u64)),
        reason: if i % 4 == 0 {
            "routine".into()
        } else {
            format!("INC-{i}")
        },
        oncall: BTreeMap::from([("PRIMARY".to_string(), OnCall::Known(i % 2 == 1))]),
        ..Facts::default()
    }
}

/// Evaluations per second of [`twenty_rules`] over `n` facts, one thread.
fn evaluations_per_second(set: &RuleSet, facts: &[Facts]) -> Result<f64> {
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
    let start = Instant::now();
    let mut decided = 0usize;
    for f in facts {
        if !matches!(set.evaluate(f, now).verdict, RuleVerdict::Fallback) {
            decided += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        decided > 0,
        "no rule decided anything: the bench's facts miss its rules"
    );
    Ok(facts.len() as f64 / secs)
}

/// Runs the case: `n` evaluations per run.
pub fn run(opts: &Options, n: usize) -> Result<Vec<Figure>> {
    let set = twenty_rules();
    ensure!(
        set.spec().rules.len() == 20,
        "the bench's set has {} rules",
        set.spec().rules.len()
    );
    let facts: Vec<Facts> = (0..n).map(facts).collect();
    let samples = (0..opts.runs())
        .map(|_| evaluations_per_second(&set, &facts))
        .collect::<Result<Vec<_>>>()?;
    Ok(vec![Figure::new(
        "rules.evaluate",
        10,
        "approval rule evaluations, a 20-rule CEL set, one thread",
        Unit::PerSecond,
        samples,
    )
    .with_note(format!("{n} evaluations per run over varied facts"))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_has_twenty_rules_and_its_facts_reach_every_kind_of_verdict() {
        let set = twenty_rules();
        assert_eq!(set.spec().rules.len(), 20);
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..200 {
            kinds.insert(match set.evaluate(&facts(i), now).verdict {
                RuleVerdict::Denied { .. } => "denied",
                RuleVerdict::AutoApproved { .. } => "auto",
                RuleVerdict::RequiresApproval { .. } => "requires",
                RuleVerdict::BreakGlass { .. } => "glass",
                RuleVerdict::Fallback => "fallback",
            });
        }
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["auto", "denied", "fallback", "requires"]
        );
    }
}

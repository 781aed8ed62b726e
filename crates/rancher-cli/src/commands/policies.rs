//! `rancherctl policies check|test|plan|apply|export`: approval rules as files (see `rancher_approval::rules`).
//! `check` and `test` run locally, without a server, so they run in CI; `plan`, `apply` and `export` work on the
//! rules installed in the local store or, with `--server`, in the approvals service (see [`install`]).

use std::fmt::Write as _;
use std::path::Path;

use rancher_approval::rules::files::{self, CaseResult, TestFile};
use rancher_approval::rules::{RuleDecision, RuleSet, RuleVerdict};
use serde::Serialize;

use crate::cli::PoliciesCommand;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

mod install;
use install::{apply, export, files_runtime, plan};

/// Runs one `policies` subcommand.
pub fn dispatch(ctx: &Context, cmd: PoliciesCommand) -> anyhow::Result<Exit> {
    match cmd {
        PoliciesCommand::Check { dir } => check(ctx, &dir),
        PoliciesCommand::Test { dir, tests } => test(ctx, &dir, &tests),
        PoliciesCommand::Plan { dir } => files_runtime()?.block_on(plan(ctx, &dir)),
        PoliciesCommand::Apply { dir, reason } => files_runtime()?.block_on(apply(ctx, &dir, reason)),
        PoliciesCommand::Export { dir } => files_runtime()?.block_on(export(ctx, &dir)),
    }
}

fn load(dir: &Path) -> anyhow::Result<RuleSet> {
    files::load_dir(dir).map_err(|e| {
        Failure::new(
            format!("the policy files are not valid: {e}"),
            "fix the rule named above; `rancherctl policies check -f DIR` checks them without tests",
        )
        .into()
    })
}

#[derive(Serialize)]
struct Checked<'a> {
    hash: &'a str,
    rules: Vec<CheckedRule<'a>>,
    schedules: Vec<&'a str>,
}

#[derive(Serialize)]
struct CheckedRule<'a> {
    id: &'a str,
    outcome: &'static str,
    cost: u64,
}

fn check(ctx: &Context, dir: &Path) -> anyhow::Result<Exit> {
    let set = load(dir)?;
    let report = Checked {
        hash: set.hash(),
        rules: set
            .spec()
            .rules
            .iter()
            .zip(set.costs())
            .map(|(r, c)| CheckedRule {
                id: &r.id,
                outcome: r.outcome.kind(),
                cost: *c,
            })
            .collect(),
        schedules: set.schedules().iter().map(String::as_str).collect(),
    };
    output::data(ctx.format(), &report, || {
        let table = output::table(
            &["RULE", "OUTCOME", "COST"],
            report
                .rules
                .iter()
                .map(|r| vec![r.id.to_owned(), r.outcome.to_owned(), r.cost.to_string()]),
        );
        format!(
            "{table}\n{} rules, hash {} (cost limit {} each)",
            report.rules.len(),
            report.hash,
            rancher_approval::rules::MAX_COST
        )
    })?;
    Ok(Exit::Done)
}

/// The verdict in a few words: `requires-approval (rule prod-two-platform: 2 of local://g-platform)`.
fn verdict(d: &RuleDecision) -> String {
    match &d.verdict {
        RuleVerdict::Denied { rule, message } => format!(
            "denied ({}: {message})",
            rule.as_deref().map_or("no rule".to_owned(), |r| format!("rule {r}"))
        ),
        RuleVerdict::AutoApproved { rule } => format!("auto-approved (rule {rule})"),
        RuleVerdict::RequiresApproval { rule, thresholds, .. } => {
            let t: Vec<String> = thresholds
                .iter()
                .map(|t| {
                    let of: Vec<String> = t.of.iter().map(|o| o.to_string()).collect();
                    let n = match t.count {
                        rancher_approval::Count::AtLeast(n) => n.to_string(),
                        rancher_approval::Count::All => "all".into(),
                    };
                    format!("{n} of {}", of.join(", "))
                })
                .collect();
            format!("requires-approval (rule {rule}: {})", t.join("; "))
        }
        RuleVerdict::BreakGlass { rule, cap_secs } => format!(
            "break-glass (rule {rule}, at most {})",
            rancher_approval::format_duration(*cap_secs)
        ),
        RuleVerdict::Fallback => "fallback (no rule decided: the workflow's policy applies)".into(),
    }
}

/// The lines shown for one case: `ok` or `FAIL`, and for a failure what differed and the rules that matched.
fn case_lines(set: &RuleSet, r: &CaseResult) -> String {
    let mut out = String::new();
    if r.passed {
        let _ = writeln!(out, "ok    {}", r.name);
        return out;
    }
    let _ = writeln!(out, "FAIL  {}", r.name);
    for p in &r.problems {
        let _ = writeln!(out, "        {p}");
    }
    let _ = writeln!(out, "        got: {}", verdict(&r.decision));
    if r.decision.matched.is_empty() {
        let _ = writeln!(out, "        no rule matched");
    } else {
        let _ = writeln!(out, "        rules that matched, in order:");
        for (i, m) in r.decision.matched.iter().enumerate() {
            let when = set
                .spec()
                .rules
                .iter()
                .find(|s| s.id == m.id)
                .map(|s| s.when.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            let _ = writeln!(out, "          {}. {} ({}): {when}", i + 1, m.id, m.outcome);
        }
    }
    for u in &r.decision.unknown {
        let _ = writeln!(out, "        could not evaluate {}: {}", u.id, u.problem);
    }
    out
}

#[derive(Serialize)]
struct TestReport<'a> {
    hash: &'a str,
    passed: usize,
    failed: usize,
    cases: &'a [CaseResult],
}

fn test(ctx: &Context, dir: &Path, tests: &Path) -> anyhow::Result<Exit> {
    let set = load(dir)?;
    let file = TestFile::read(tests).map_err(|e| {
        Failure::new(
            format!("the tests file is not valid: {e}"),
            "each case needs a name, facts and expect (auto-approved, requires-approval, denied, break-glass or \
             fallback); see docs/approvals.md",
        )
    })?;
    let results = files::run_tests(&set, &file);
    let failed = results.iter().filter(|r| !r.passed).count();
    let report = TestReport {
        hash: set.hash(),
        passed: results.len() - failed,
        failed,
        cases: &results,
    };
    output::data(ctx.format(), &report, || {
        let mut text: String = results.iter().map(|r| case_lines(&set, r)).collect();
        let _ = write!(
            text,
            "{} passed, {} failed (rules {}, {} rules)",
            report.passed,
            failed,
            set.hash(),
            set.spec().rules.len()
        );
        text
    })?;
    if failed > 0 {
        return Err(Failure::new(
            format!("{failed} of {} policy tests failed", results.len()),
            "read the rules that matched for each failing case above; fix the rules or the expectation",
        )
        .into());
    }
    Ok(Exit::Done)
}

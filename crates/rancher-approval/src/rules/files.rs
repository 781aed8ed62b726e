//! Rules as files, and the policy tests people run in CI.
//!
//! A policy directory holds YAML files (`*.yaml`, `*.yml`), read in file-name order; their rules are evaluated in
//! that order (name them `10-deny.yaml`, `20-prod.yaml`, ... to say it). At most one file sets `time_zone`.
//!
//! A tests file holds cases of facts with the outcome expected:
//!
//! ```yaml
//! now: 2026-12-07T10:00:00Z          # the clock of every case, unless the case sets its own
//! cases:
//!   - name: prod cluster-owner needs two of the platform team
//!     facts: {cluster: {id: c-1, labels: {env: prod}}, role: {id: cluster-owner}, reason: INC-1}
//!     expect: requires-approval
//!     threshold: {count: 2, of: [{group: "local://g-platform"}]}   # optional: one of the thresholds
//!   - name: contractors never get `*`
//!     facts: {requester: {groups: ["local://g-contractors"]}, role: {id: x, verbs: ["*"]}}
//!     expect: denied
//!     message: contractors may not          # optional: a part of the message
//! ```
//!
//! `expect` is one of `auto-approved`, `requires-approval`, `denied`, `break-glass`, `fallback` (no rule decided);
//! `rule` optionally names the rule expected to decide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_yaml, Facts, LoadError, RuleDecision, RuleSet, RuleSetSpec, RuleVerdict};
use crate::policy::Threshold;

/// The most files a policy directory may hold.
const MAX_FILES: usize = 1000;

/// The largest policy or tests file read, in bytes.
const MAX_FILE_BYTES: u64 = 4 << 20;

fn read(path: &Path) -> Result<String, LoadError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| LoadError::new(&shown, format!("cannot read it: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::new(
            &shown,
            format!("it is {} bytes, more than the {MAX_FILE_BYTES} read", meta.len()),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| LoadError::new(&shown, format!("cannot read it: {e}")))
}

/// The policy files of `dir`, in the order their rules are evaluated.
pub fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        LoadError::new(
            &shown,
            format!("cannot read the policy directory: {e}; pass a directory of YAML rule files"),
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| LoadError::new(&shown, e.to_string()))?.path();
        let yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
        if files.len() > MAX_FILES {
            return Err(LoadError::new(&shown, format!("more than {MAX_FILES} policy files")));
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every policy file of `dir` into one rule set as written (not yet loaded).
pub fn read_dir(dir: &Path) -> Result<RuleSetSpec, LoadError> {
    let mut texts = Vec::new();
    for path in policy_files(dir)? {
        texts.push((path.display().to_string(), read(&path)?));
    }
    merge(texts)
}

/// The policy files of `dir` by file name, with their text: what `policies apply` installs.
pub fn read_files(dir: &Path) -> Result<BTreeMap<String, String>, LoadError> {
    let mut files = BTreeMap::new();
    for path in policy_files(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| LoadError::new(path.display().to_string(), "the file name is not UTF-8; rename it"))?;
        files.insert(name.to_owned(), read(&path)?);
    }
    Ok(files)
}

/// One rule set as written from policy files given by name (read in name order, as from a directory).
pub fn spec_of_files(files: &BTreeMap<String, String>) -> Result<RuleSetSpec, LoadError> {
    for name in files.keys() {
        if !valid_file_name(name) {
            return Err(LoadError::new(
                name,
                "a policy file name is letters, digits, `-`, `_` and `.`, ending in .yaml or .yml",
            ));
        }
    }
    merge(files.iter().map(|(n, t)| (n.clone(), t.clone())))
}

/// Whether `name` may be a policy file's name: no directories, no hidden files, a YAML extension.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Writes `files` into `dir` (created when missing): what `policies export` does.
pub fn write_files(dir: &Path, files: &BTreeMap<String, String>) -> Result<(), LoadError> {
    let shown = dir.display().to_string();
    std::fs::create_dir_all(dir).map_err(|e| LoadError::new(&shown, format!("cannot create it: {e}")))?;
    for (name, text) in files {
        if !valid_file_name(name) {
            return Err(LoadError::new(
                name,
                "not a policy file name; nothing was written for it",
            ));
        }
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| LoadError::new(path.display().to_string(), format!("cannot write it: {e}")))?;
    }
    Ok(())
}

fn merge(texts: impl IntoIterator<Item = (String, String)>) -> Result<RuleSetSpec, LoadError> {
    let mut all = RuleSetSpec::default();
    let mut zone_from: Option<String> = None;
    for (shown, text) in texts {
        let spec: RuleSetSpec = from_yaml(&text).map_err(|e| LoadError::new(&shown, e))?;
        if let Some(z) = spec.time_zone {
            if let (Some(prev), Some(first)) = (&all.time_zone, &zone_from) {
                if *prev != z {
                    return Err(LoadError::new(
                        &shown,
                        format!("time_zone {z:?} differs from {prev:?} set in {first}; set it in one file only"),
                    ));
                }
            }
            all.time_zone = Some(z);
            zone_from.get_or_insert(shown.clone());
        }
        all.rules.extend(spec.rules);
    }
    Ok(all)
}

/// Reads and loads the rule set of `dir`.
pub fn load_dir(dir: &Path) -> Result<RuleSet, LoadError> {
    RuleSet::load(read_dir(dir)?)
}

/// The outcome a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Approved by a rule.
    AutoApproved,
    /// Waits for approvers a rule names.
    RequiresApproval,
    /// Refused when filed.
    Denied,
    /// Break-glass permitted.
    BreakGlass,
    /// No rule decided: the workflow's policy applies.
    Fallback,
}

/// One policy test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What it checks, in words.
    pub name: String,
    /// The request's facts.
    #[serde(default)]
    pub facts: Facts,
    /// The clock of this case (else the file's `now`, else 2026-01-05T12:00:00Z, a Monday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<DateTime<Utc>>,
    /// The outcome expected.
    pub expect: Expect,
    /// The rule expected to decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For `requires-approval`: a threshold the deciding rule must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// For `denied`: a part of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A tests file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The clock of every case that sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<DateTime<Utc>>,
    /// The cases, in order.
    pub cases: Vec<TestCase>,
}

impl TestFile {
    /// Reads a tests file.
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        from_yaml(&read(path)?).map_err(|e| LoadError::new(path.display().to_string(), e))
    }
}

/// What one case gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Whether the decision was the one expected.
    pub passed: bool,
    /// What differed, one line each (empty when it passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The decision.
    pub decision: RuleDecision,
}

fn got(v: &RuleVerdict) -> Expect {
    match v {
        RuleVerdict::Denied { .. } => Expect::Denied,
        RuleVerdict::AutoApproved { .. } => Expect::AutoApproved,
        RuleVerdict::RequiresApproval { .. } => Expect::RequiresApproval,
        RuleVerdict::BreakGlass { .. } => Expect::BreakGlass,
        RuleVerdict::Fallback => Expect::Fallback,
    }
}

fn name(e: Expect) -> &'static str {
    match e {
        Expect::AutoApproved => "auto-approved",
        Expect::RequiresApproval => "requires-approval",
        Expect::Denied => "denied",
        Expect::BreakGlass => "break-glass",
        Expect::Fallback => "fallback",
    }
}

/// Runs every case of `tests` against `set`.
pub fn run_tests(set: &RuleSet, tests: &TestFile) -> Vec<CaseResult> {
    let default_now = DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z")
        .expect("a valid time")
        .with_timezone(&Utc);
    tests
        .cases
        .iter()
        .map(|case| {
            let now = case.now.or(tests.now).unwrap_or(default_now);
            let decision = set.evaluate(&case.facts, now);
            let mut problems = Vec::new();
            let actual = got(&decision.verdict);
            if actual != case.expect {
                problems.push(format!("expected {}, got {}", name(case.expect), name(actual)));
            }
            if let Some(rule) = &case.rule {
                if decision.deciding_rule() != Some(rule.as_str()) {
                    problems.push(format!(
                        "expected rule {rule} to decide, but {} did",
                        decision.deciding_rule().unwrap_or("no rule")
                    ));
                }
            }
            if let Some(t) = &case.threshold {
                let named = match &decision.verdict {
                    RuleVerdict::RequiresApproval { thresholds, .. } => thresholds.iter().any(|x| x == t),
                    _ => false,
                };
                if !named {
                    problems.push("the expected threshold is not among those of the deciding rule".into());
                }
            }
            if let Some(m) = &case.message {
                let shown = match &decision.verdict {
                    RuleVerdict::Denied { message, .. } => Some(message.as_str()),
                    _ => None,
                };
                if !shown.is_some_and(|s| s.contains(m.as_str())) {
                    problems.push(format!("expected a refusal mentioning {m:?}"));
                }
            }
            CaseResult {
                name: case.name.clone(),
                passed: problems.is_empty(),
                problems,
                decision,
            }
        })
        .collect()
}

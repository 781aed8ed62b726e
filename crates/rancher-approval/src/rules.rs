//! Policy rules in CEL: "who must approve" decided per request from its facts, before the workflow's fixed
//! [`Policy`](crate::Policy) applies.
//!
//! A rule has an id, a `when` expression in [CEL](https://cel.dev) over the request's [`Facts`], and one outcome:
//!
//! ```yaml
//! time_zone: Europe/Berlin     # for time.hour and time.weekday; UTC when omitted; or an offset: "+01:00"
//! rules:
//!   - id: contractors-no-wildcard
//!     when: '"local://g-contractors" in requester.groups && role.wildcard'
//!     deny: contractors may not receive a role that allows every verb
//!   - id: prod-ticket
//!     when: 'has(cluster.labels.env) && cluster.labels.env == "prod"'
//!     require_reason: 'INC-\d+'
//!   - id: dev-short
//!     when: 'has(cluster.labels.env) && cluster.labels.env == "dev" && duration <= duration("4h")'
//!     auto_approve: true
//!   - id: prod-two-platform
//!     when: 'has(cluster.labels.env) && cluster.labels.env == "prod"'
//!     require: {thresholds: [{count: 2, of: [{group: "local://g-platform"}]}]}
//!   - id: cap-8h
//!     when: "true"
//!     max_duration: 8h
//!   - id: sre-breakglass
//!     when: '"local://g-sre" in requester.groups'
//!     break_glass: true
//! ```
//!
//! # Evaluation
//!
//! [`RuleSet::evaluate`] is a pure function of (rules, facts, now). Every rule's `when` is evaluated, in order:
//!
//! 1. The first rule that refuses wins: a matching `deny`, a matching `require_reason` whose pattern the reason
//!    does not match, or a matching `max_duration` the requested duration exceeds.
//! 2. A break-glass request needs a matching `break_glass` rule (else it is refused); it is capped at one hour and
//!    at the smallest matching `max_duration`.
//! 3. Otherwise the first matching `auto_approve` or `require` rule decides.
//! 4. When none matched, the workflow's own policy applies ([`RuleVerdict::Fallback`]).
//!
//! A `when` that cannot be evaluated (an unknown on-call status, a missing map key, a value that is not a bool)
//! fails closed: a `deny`, `require_reason`, `max_duration` or `require` rule counts as matched (and the two
//! middle ones as refusing), an `auto_approve` or `break_glass` rule as not matched. The problem is kept in
//! [`RuleDecision::unknown`] so people see why a request waits.
//!
//! Loading ([`RuleSet::load`]) compiles every expression, checks its names and functions, and refuses a rule whose
//! estimated cost is above [`MAX_COST`] (docs/approvals.md says how cost is measured), so a pathological rule
//! fails when it is loaded, never when a request is filed.

mod cost;
mod facts;
mod fast;
pub mod files;
pub mod installed;
mod zone;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use cost::{LIST_BOUND, MAX_COST, REGEX_COST};
pub use facts::{Facts, InputFact, OnCall, RequesterFacts, RoleFacts, ScopeFacts, TargetFacts, VARIABLES};

use crate::policy::{Combine, Threshold};

/// The longest break-glass grant: one hour.
pub const BREAK_GLASS_CAP_SECS: u64 = 3600;

/// The most rules a set may hold.
pub const MAX_RULES: usize = 1000;

/// The longest `when` expression, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;

/// The deepest bracket nesting a `when` may have: `(`, `[` and `{` count, in string literals too.
pub const MAX_NESTING: usize = 24;

/// The most field selections (`.`) a `when` may have, in string literals too.
pub const MAX_SELECTIONS: usize = 200;

/// The deepest parsed expression tree a `when` may have.
pub use cost::MAX_DEPTH;

/// The stack of the thread that parses rules.
const LOADER_STACK: usize = 64 << 20;

/// Refuses text the CEL parser would recurse into too deeply, before it parses it.
fn nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for b in text.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!(
            "brackets nest {deepest} deep, more than {MAX_NESTING}; split the condition into simpler parts"
        ));
    }
    let dots = text.bytes().filter(|b| *b == b'.').count();
    if dots > MAX_SELECTIONS {
        return Err(format!(
            "{dots} field selections (`.`), more than {MAX_SELECTIONS}; simplify the condition"
        ));
    }
    Ok(())
}

/// The longest message or pattern, in characters.
const MAX_TEXT_LEN: usize = 500;

/// What a rule does when its `when` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOutcome {
    /// Refuse the request, with this message for the requester.
    Deny {
        /// Shown to the requester.
        message: String,
    },
    /// Approve without a human decision (an audited decision by the rule).
    AutoApprove,
    /// Wait for these approvers (today's thresholds, as data).
    Require {
        /// Whether any threshold suffices or all must be met.
        combine: Combine,
        /// The thresholds.
        thresholds: Vec<Threshold>,
    },
    /// Refuse a grant longer than this many seconds (and cap break-glass to it).
    MaxDuration {
        /// The longest duration allowed, in seconds.
        secs: u64,
    },
    /// Refuse a request whose reason does not match this regular expression.
    RequireReason {
        /// The pattern (Rust `regex` syntax, unanchored).
        pattern: String,
    },
    /// Permit break-glass: run at once, capped at one hour, reviewed afterwards.
    BreakGlass,
}

impl RuleOutcome {
    /// The outcome's name as written in a rule file (`deny`, `auto_approve`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Deny { .. } => "deny",
            Self::AutoApprove => "auto_approve",
            Self::Require { .. } => "require",
            Self::MaxDuration { .. } => "max_duration",
            Self::RequireReason { .. } => "require_reason",
            Self::BreakGlass => "break_glass",
        }
    }
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RuleRepr", into = "RuleRepr")]
pub struct RuleSpec {
    /// A short stable id (letters, digits, `-`, `_`, `.`), recorded with each decision it makes.
    pub id: String,
    /// What the rule is for, in words.
    pub description: Option<String>,
    /// The CEL condition over the facts.
    pub when: String,
    /// What happens when it holds.
    pub outcome: RuleOutcome,
}

/// The file form of a rule: the outcome is whichever one of its keys is present.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRepr {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    when: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deny: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auto_approve: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    require: Option<RequireRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    require_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    break_glass: Option<bool>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequireRepr {
    #[serde(default)]
    combine: Combine,
    thresholds: Vec<Threshold>,
}

impl TryFrom<RuleRepr> for RuleSpec {
    type Error = String;

    fn try_from(r: RuleRepr) -> Result<Self, String> {
        let mut outcomes = Vec::new();
        if let Some(message) = r.deny {
            outcomes.push(RuleOutcome::Deny { message });
        }
        match r.auto_approve {
            Some(true) => outcomes.push(RuleOutcome::AutoApprove),
            Some(false) => {
                return Err(format!(
                    "rule {:?}: `auto_approve: false` means nothing; remove the rule or write `auto_approve: true`",
                    r.id
                ))
            }
            None => {}
        }
        if let Some(req) = r.require {
            outcomes.push(RuleOutcome::Require {
                combine: req.combine,
                thresholds: req.thresholds,
            });
        }
        if let Some(d) = r.max_duration {
            let secs = crate::grant::parse_duration(&d)
                .map_err(|e| format!("rule {:?}: max_duration: {e}", r.id))?
                .as_secs();
            outcomes.push(RuleOutcome::MaxDuration { secs });
        }
        if let Some(pattern) = r.require_reason {
            outcomes.push(RuleOutcome::RequireReason { pattern });
        }
        match r.break_glass {
            Some(true) => outcomes.push(RuleOutcome::BreakGlass),
            Some(false) => {
                return Err(format!(
                    "rule {:?}: `break_glass: false` means nothing; remove the rule or write `break_glass: true`",
                    r.id
                ))
            }
            None => {}
        }
        if outcomes.len() != 1 {
            return Err(format!(
                "rule {:?} must have exactly one outcome (deny, auto_approve, require, max_duration, require_reason or \
                 break_glass), not {}",
                r.id,
                outcomes.len()
            ));
        }
        Ok(RuleSpec {
            id: r.id,
            description: r.description,
            when: r.when,
            outcome: outcomes.remove(0),
        })
    }
}

impl From<RuleSpec> for RuleRepr {
    fn from(s: RuleSpec) -> Self {
        let mut r = RuleRepr {
            id: s.id,
            description: s.description,
            when: s.when,
            deny: None,
            auto_approve: None,
            require: None,
            max_duration: None,
            require_reason: None,
            break_glass: None,
        };
        match s.outcome {
            RuleOutcome::Deny { message } => r.deny = Some(message),
            RuleOutcome::AutoApprove => r.auto_approve = Some(true),
            RuleOutcome::Require { combine, thresholds } => r.require = Some(RequireRepr { combine, thresholds }),
            RuleOutcome::MaxDuration { secs } => r.max_duration = Some(crate::grant::format_duration(secs)),
            RuleOutcome::RequireReason { pattern } => r.require_reason = Some(pattern),
            RuleOutcome::BreakGlass => r.break_glass = Some(true),
        }
        r
    }
}

/// A rule set as written: the time zone its clock rules use, and the rules in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetSpec {
    /// `UTC`, a fixed offset such as `+01:00`, or an IANA name such as `Europe/Berlin` (daylight saving included),
    /// for `time.hour`, `time.minute` and `time.weekday`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The rules, in evaluation order.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// Reads YAML (or JSON) into `T` through JSON's data model, so enums are written as maps (`{group: g-1}`), as in
/// JSON, not as YAML tags.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let value: serde_json::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Writes `value` as YAML, through JSON's data model (the form [`from_yaml`] reads).
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, String> {
    let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
    serde_norway::to_string(&value).map_err(|e| e.to_string())
}

/// Why a rule set was refused when it was loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct LoadError {
    /// Where: `rule 3 (prod-ticket)`, `time_zone`, or the file.
    pub at: String,
    /// What is wrong and how to fix it, on one line.
    pub problem: String,
}

impl LoadError {
    fn new(at: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            at: one_line(&at.into()),
            problem: one_line(&problem.into()),
        }
    }
}

/// `s` on one line, its control characters escaped, at most 400 characters.
fn one_line(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() >= 400 {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

struct Compiled {
    program: cel::Program,
    /// The same expression for the fast path, when it has the forms that path models.
    fast: Option<fast::Fast>,
    reason: Option<regex::Regex>,
}

/// A loaded rule set: compiled, checked, hashed, ready to evaluate (cheap to share behind an `Arc`).
pub struct RuleSet {
    spec: RuleSetSpec,
    zone: zone::Zone,
    compiled: Vec<Compiled>,
    costs: Vec<u64>,
    schedules: BTreeSet<String>,
    hash: String,
    root: cel::Context<'static>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("hash", &self.hash)
            .field("rules", &self.spec.rules.len())
            .finish_non_exhaustive()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `oncall("schedule")`: the requester's on-call status in that schedule, from the facts; an error when unknown.
fn oncall(ftx: &cel::FunctionContext, schedule: Arc<String>) -> cel::ResolveResult {
    let answers = ftx.ptx.get_variable(facts::ONCALL_VAR)?;
    let cel::Value::Map(m) = answers else {
        return Err(ftx.error("the on-call facts are missing"));
    };
    match m.map.get(&cel::objects::Key::from(schedule.as_str())) {
        Some(cel::Value::Bool(b)) => Ok(cel::Value::Bool(*b)),
        Some(cel::Value::String(why)) => Err(ftx.error(format!(
            "on-call status in schedule {} is unknown: {why}",
            schedule.escape_debug()
        ))),
        _ => Err(ftx.error(format!(
            "on-call status in schedule {} was not resolved",
            schedule.escape_debug()
        ))),
    }
}

impl RuleSet {
    /// Compiles and checks `spec`. Every problem names the rule and the fix.
    ///
    /// The CEL parser recurses deeply, so loading runs on a thread of its own with a large stack; an expression
    /// nested more than [`MAX_NESTING`] brackets deep or with a tree deeper than [`MAX_DEPTH`] is refused, so that
    /// evaluating and dropping a loaded rule stays shallow on any thread.
    pub fn load(spec: RuleSetSpec) -> Result<Self, LoadError> {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("rule-loader".into())
                .stack_size(LOADER_STACK)
                .spawn_scoped(scope, move || Self::load_here(spec))
                .map_err(|e| LoadError::new("rules", format!("could not start the rule loader: {e}")))?
                .join()
                .unwrap_or_else(|_| Err(LoadError::new("rules", "the rule loader failed; see the log")))
        })
    }

    fn load_here(spec: RuleSetSpec) -> Result<Self, LoadError> {
        if spec.rules.len() > MAX_RULES {
            return Err(LoadError::new(
                "rules",
                format!("{} rules, more than the {MAX_RULES} a set may hold", spec.rules.len()),
            ));
        }
        let zone = match &spec.time_zone {
            None => zone::Zone::utc(),
            Some(z) => zone::Zone::parse(z).map_err(|p| LoadError::new("time_zone", p))?,
        };
        let mut seen = BTreeSet::new();
        let mut compiled = Vec::with_capacity(spec.rules.len());
        let mut costs = Vec::with_capacity(spec.rules.len());
        let mut schedules = BTreeSet::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            let at = format!("rule {} ({})", i + 1, rule.id);
            if !valid_id(&rule.id) {
                return Err(LoadError::new(
                    format!("rule {}", i + 1),
                    format!("the id {:?} must be 1 to 64 letters, digits, `-`, `_` or `.`", rule.id),
                ));
            }
            if !seen.insert(rule.id.as_str()) {
                return Err(LoadError::new(at, "another rule has this id; rule ids must be unique"));
            }
            if rule.when.len() > MAX_EXPRESSION_LEN {
                return Err(LoadError::new(
                    at,
                    format!("`when` is {} bytes, longer than {MAX_EXPRESSION_LEN}", rule.when.len()),
                ));
            }
            nesting(&rule.when).map_err(|p| LoadError::new(&at, format!("`when`: {p}")))?;
            let program = cel::Program::compile(&rule.when)
                .map_err(|e| LoadError::new(&at, format!("`when` is not valid CEL: {e}")))?;
            let checked = cost::check(program.expression(), VARIABLES)
                .map_err(|p| LoadError::new(&at, format!("`when`: {p}")))?;
            if checked.cost > MAX_COST {
                return Err(LoadError::new(
                    at,
                    format!(
                        "`when` has an estimated cost of {}, above the limit of {MAX_COST} (each list is assumed to \
                         hold {LIST_BOUND} items; a loop inside a loop is the usual cause); simplify it",
                        checked.cost
                    ),
                ));
            }
            schedules.extend(checked.schedules);
            costs.push(checked.cost);
            let mut reason = None;
            match &rule.outcome {
                RuleOutcome::Deny { message } => {
                    if message.trim().is_empty() || message.chars().count() > MAX_TEXT_LEN {
                        return Err(LoadError::new(
                            at,
                            format!("the deny message must be 1 to {MAX_TEXT_LEN} characters"),
                        ));
                    }
                }
                RuleOutcome::Require { thresholds, combine } => {
                    let policy = crate::policy::Policy::approvers(*combine, thresholds.iter().cloned());
                    policy
                        .validate()
                        .map_err(|e| LoadError::new(&at, format!("require: {e}")))?;
                }
                RuleOutcome::MaxDuration { secs } => {
                    if *secs == 0 {
                        return Err(LoadError::new(at, "max_duration must be longer than 0s"));
                    }
                }
                RuleOutcome::RequireReason { pattern } => {
                    if pattern.chars().count() > MAX_TEXT_LEN {
                        return Err(LoadError::new(
                            at,
                            format!("require_reason is longer than {MAX_TEXT_LEN} characters"),
                        ));
                    }
                    let re = regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| LoadError::new(&at, format!("require_reason is not a regular expression: {e}")))?;
                    reason = Some(re);
                }
                RuleOutcome::AutoApprove | RuleOutcome::BreakGlass => {}
            }
            let fast = fast::Fast::compile(program.expression());
            compiled.push(Compiled { program, fast, reason });
        }
        let hash = Self::hash_of(&spec);
        let mut root = cel::Context::default();
        root.add_function("oncall", oncall);
        Ok(Self {
            spec,
            zone,
            compiled,
            costs,
            schedules,
            hash,
            root,
        })
    }

    /// Parses a rule set from YAML (JSON is YAML too) and loads it.
    pub fn from_yaml(text: &str) -> Result<Self, LoadError> {
        let spec: RuleSetSpec = from_yaml(text).map_err(|e| LoadError::new("rules", e))?;
        Self::load(spec)
    }

    /// The hash of a rule set as written: SHA-256 over its canonical JSON. Equal sets hash equally, whatever the
    /// formatting or key order of their files.
    pub fn hash_of(spec: &RuleSetSpec) -> String {
        let value = serde_json::to_value(spec).expect("a rule set serialises");
        crate::canonical::sha256_hex(crate::canonical::canonical_json(&value).as_bytes())
    }

    /// This set's hash (see [`RuleSet::hash_of`]).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The set as written.
    pub fn spec(&self) -> &RuleSetSpec {
        &self.spec
    }

    /// The estimated cost of each rule's `when`, in order.
    pub fn costs(&self) -> &[u64] {
        &self.costs
    }

    /// The on-call schedules the rules ask about: the caller resolves these into [`Facts::oncall`].
    pub fn schedules(&self) -> &BTreeSet<String> {
        &self.schedules
    }

    /// Whether the set has no rules (every request falls back to its workflow's policy).
    pub fn is_empty(&self) -> bool {
        self.spec.rules.is_empty()
    }

    /// Decides `facts` at `now`: a pure function of (rules, facts, now). See the [module docs](self).
    pub fn evaluate(&self, facts: &Facts, now: DateTime<Utc>) -> RuleDecision {
        self.evaluate_with(facts, now, true)
    }

    /// [`RuleSet::evaluate`], with the fast path or with the CEL interpreter alone (`fast: false`, for tests that
    /// compare the two).
    fn evaluate_with(&self, facts: &Facts, now: DateTime<Utc>, fast: bool) -> RuleDecision {
        let clock = self.zone.clock(now);
        let view = fast::View::new(facts, clock);
        // The interpreter's variables are built only when a rule needs the interpreter.
        let mut interpreter: Option<cel::Context<'_>> = None;
        let mut run_cel = |program: &cel::Program| {
            let ctx = interpreter.get_or_insert_with(|| {
                let mut ctx = self.root.new_inner_scope();
                for (name, value) in facts.variables(clock) {
                    ctx.add_variable_from_value(name, value);
                }
                ctx
            });
            // cel 0.12 panics on some expressions it accepted (a loop over a value that is neither a list nor a
            // map): the rule is then unknown and fails closed, rather than taking the caller down.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(ctx))) {
                Ok(result) => result.map_err(|e| one_line(&e.to_string())),
                Err(_) => Err(
                    "the CEL interpreter could not evaluate this `when` (for example a loop over a value \
                     that is neither a list nor a map): rewrite the rule"
                        .to_owned(),
                ),
            }
        };
        let mut matched = Vec::new();
        let mut unknown = Vec::new();
        let mut refusal: Option<(Option<String>, String)> = None;
        let mut decisive: Option<usize> = None;
        let mut glass: Option<usize> = None;
        let mut cap: Option<u64> = None;
        for (i, (rule, c)) in self.spec.rules.iter().zip(&self.compiled).enumerate() {
            let quick = if fast {
                c.fast.as_ref().and_then(|f| f.eval(&view))
            } else {
                None
            };
            let holds = match quick
                .map(|b| Ok(cel::Value::Bool(b)))
                .unwrap_or_else(|| run_cel(&c.program))
            {
                Ok(cel::Value::Bool(b)) => Ok(b),
                Ok(other) => Err(format!(
                    "`when` gave {:?}, not true or false",
                    other.type_of().to_string()
                )),
                Err(problem) => Err(problem),
            };
            let fail_closed = match holds {
                Ok(true) => true,
                Ok(false) => continue,
                Err(problem) => {
                    unknown.push(UnknownRule {
                        id: rule.id.clone(),
                        problem,
                    });
                    matches!(
                        rule.outcome,
                        RuleOutcome::Deny { .. }
                            | RuleOutcome::Require { .. }
                            | RuleOutcome::MaxDuration { .. }
                            | RuleOutcome::RequireReason { .. }
                    )
                }
            };
            if !fail_closed {
                continue;
            }
            matched.push(MatchedRule {
                id: rule.id.clone(),
                outcome: rule.outcome.kind().to_owned(),
            });
            let errored = unknown.last().is_some_and(|u| u.id == rule.id);
            let mut refuse = |message: String| {
                if refusal.is_none() {
                    refusal = Some((Some(rule.id.clone()), message));
                }
            };
            match &rule.outcome {
                RuleOutcome::Deny { message } => refuse(message.clone()),
                RuleOutcome::RequireReason { pattern } => {
                    let ok = !errored && c.reason.as_ref().is_some_and(|re| re.is_match(&facts.reason));
                    if !ok {
                        refuse(format!(
                            "the reason must match `{pattern}` (rule {}); file the request again with such a reason",
                            rule.id
                        ));
                    }
                }
                RuleOutcome::MaxDuration { secs } => {
                    cap = Some(cap.map_or(*secs, |c| c.min(*secs)));
                    let too_long = errored || facts.duration.is_some_and(|d| d > *secs);
                    if too_long && !facts.break_glass {
                        refuse(format!(
                            "rule {} allows at most {}; ask for that long or less",
                            rule.id,
                            crate::grant::format_duration(*secs)
                        ));
                    }
                }
                RuleOutcome::AutoApprove | RuleOutcome::Require { .. } => {
                    decisive.get_or_insert(i);
                }
                RuleOutcome::BreakGlass => {
                    glass.get_or_insert(i);
                }
            }
        }
        let verdict = if let Some((rule, message)) = refusal {
            RuleVerdict::Denied { rule, message }
        } else if facts.break_glass {
            match glass {
                Some(i) => RuleVerdict::BreakGlass {
                    rule: self.spec.rules[i].id.clone(),
                    cap_secs: cap.map_or(BREAK_GLASS_CAP_SECS, |c| c.min(BREAK_GLASS_CAP_SECS)),
                },
                None => RuleVerdict::Denied {
                    rule: None,
                    message: "no rule permits break-glass for this request; file it without --break-glass to ask \
                              for approval"
                        .into(),
                },
            }
        } else {
            match decisive.map(|i| &self.spec.rules[i]) {
                Some(RuleSpec {
                    id,
                    outcome: RuleOutcome::AutoApprove,
                    ..
                }) => RuleVerdict::AutoApproved { rule: id.clone() },
                Some(RuleSpec {
                    id,
                    outcome: RuleOutcome::Require { combine, thresholds },
                    ..
                }) => RuleVerdict::RequiresApproval {
                    rule: id.clone(),
                    combine: *combine,
                    thresholds: thresholds.clone(),
                },
                _ => RuleVerdict::Fallback,
            }
        };
        RuleDecision {
            ruleset: self.hash.clone(),
            verdict,
            matched,
            unknown,
            max_duration: cap,
        }
    }
}

/// What a rule set decided for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDecision {
    /// The hash of the rule set that decided ([`RuleSet::hash`]).
    pub ruleset: String,
    /// The decision.
    pub verdict: RuleVerdict,
    /// The rules whose `when` held (or failed closed), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<MatchedRule>,
    /// The rules whose `when` could not be evaluated, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<UnknownRule>,
    /// The smallest `max_duration` of the matching rules, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u64>,
}

impl RuleDecision {
    /// The id of the rule that decided, if one did.
    pub fn deciding_rule(&self) -> Option<&str> {
        match &self.verdict {
            RuleVerdict::Denied { rule, .. } => rule.as_deref(),
            RuleVerdict::AutoApproved { rule }
            | RuleVerdict::RequiresApproval { rule, .. }
            | RuleVerdict::BreakGlass { rule, .. } => Some(rule),
            RuleVerdict::Fallback => None,
        }
    }
}

impl RuleDecision {
    /// The policy a request is filed under after this decision: for `auto_approve`, none (approved when filed, by
    /// the rule); for `require`, those thresholds; when no rule decided, `workflow` itself. The options (expiry,
    /// self-approval, reasons, grant limits) are always the workflow's. `None` when the request is not filed as an
    /// ordinary request (refused, or break-glass).
    pub fn policy_for(&self, workflow: &crate::policy::Policy) -> Option<crate::policy::Policy> {
        let rule = match &self.verdict {
            RuleVerdict::AutoApproved { .. } => crate::policy::Rule::None,
            RuleVerdict::RequiresApproval {
                combine, thresholds, ..
            } => crate::policy::Rule::Approvers {
                combine: *combine,
                thresholds: thresholds.clone(),
            },
            RuleVerdict::Fallback => workflow.rule.clone(),
            RuleVerdict::Denied { .. } | RuleVerdict::BreakGlass { .. } => return None,
        };
        Some(crate::policy::Policy {
            rule,
            options: workflow.options.clone(),
        })
    }

    /// What a request keeps of this decision (see [`RuleRecord`]).
    pub fn record(&self, facts: &Facts) -> RuleRecord {
        RuleRecord {
            ruleset: self.ruleset.clone(),
            rule: self.deciding_rule().map(str::to_owned),
            verdict: self.verdict.clone(),
            unknown: self.unknown.clone(),
            facts: facts.clone(),
        }
    }
}

/// What a request records of the rules that judged it when it was filed: the rule set's hash, the rule that
/// decided (none when the workflow's policy applied), the verdict, what could not be evaluated, and the facts, so
/// the decision can be replayed ([`RuleRecord::replays_on`]). An auto-approval is this record: a decision by the
/// rule, not by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// The hash of the rule set ([`RuleSet::hash`]).
    pub ruleset: String,
    /// The id of the rule that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The verdict.
    pub verdict: RuleVerdict,
    /// The rules that could not be evaluated, and why (e.g. an on-call source that did not answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<UnknownRule>,
    /// The facts the rules saw.
    pub facts: Facts,
}

impl RuleRecord {
    /// Whether evaluating `set` on the recorded facts at `at` (the request's filing time) gives the recorded
    /// verdict again. `false` when `set` is not the set that decided (its hash differs).
    pub fn replays_on(&self, set: &RuleSet, at: DateTime<Utc>) -> bool {
        set.hash() == self.ruleset && set.evaluate(&self.facts, at).verdict == self.verdict
    }
}

/// A rule whose `when` held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRule {
    /// Its id.
    pub id: String,
    /// Its outcome's name (`deny`, `auto_approve`, ...).
    pub outcome: String,
}

/// A rule whose `when` could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownRule {
    /// Its id.
    pub id: String,
    /// Why, on one line.
    pub problem: String,
}

/// The decision of a rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum RuleVerdict {
    /// Refused when filed.
    Denied {
        /// The rule that refused; none when break-glass was asked for and no rule permits it.
        rule: Option<String>,
        /// Why, for the requester.
        message: String,
    },
    /// Approved by the rule, with no human decision.
    AutoApproved {
        /// The rule.
        rule: String,
    },
    /// Waits for these approvers.
    RequiresApproval {
        /// The rule.
        rule: String,
        /// Whether any threshold suffices or all must be met.
        combine: Combine,
        /// The thresholds.
        thresholds: Vec<Threshold>,
    },
    /// Break-glass permitted: runs at once for at most `cap_secs`, reviewed afterwards.
    BreakGlass {
        /// The rule that permits it.
        rule: String,
        /// The longest the grant may last, in seconds (at most one hour).
        cap_secs: u64,
    },
    /// No rule decided: the workflow's own policy applies.
    Fallback,
}

#[cfg(test)]
mod tests;

//! Static checks of a compiled `when` expression, made when a rule is loaded: its names are facts or functions we
//! know, and its estimated cost stays under [`MAX_COST`].
//!
//! # How cost is measured
//!
//! The cost is an upper estimate of the number of evaluation steps, taken over the parsed expression (CEL's macros
//! `all`, `exists`, `exists_one`, `map` and `filter` are already expanded into comprehensions there):
//!
//! - every literal, name, field selection, operator and function call costs 1, plus its operands;
//! - `matches` (a regular expression compiled at each call) costs [`REGEX_COST`] more;
//! - a comprehension costs its range, its start value and its result, plus [`LIST_BOUND`] times the cost of its
//!   loop condition and step: every list in the facts is assumed to hold at most that many items (a cost model,
//!   like Kubernetes' CEL cost estimate, not a runtime limit).
//!
//! So one `exists` over the requester's groups costs a few hundred, and a loop nested in a loop of the same kind
//! goes past the limit: it is refused when the rule is loaded, never at request time.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::value::CelVal;

/// The largest estimated cost a rule's `when` expression may have.
pub const MAX_COST: u64 = 10_000;

/// The number of items every list is assumed to hold when a comprehension's cost is estimated.
pub const LIST_BOUND: u64 = 100;

/// The deepest expression tree a rule may have (evaluation recurses once per level).
pub const MAX_DEPTH: usize = 64;

/// The extra cost of one `matches` call.
pub const REGEX_COST: u64 = 100;

/// Functions a rule may call (CEL's standard ones that the interpreter provides, and `oncall`).
pub const FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "int",
    "uint",
    "double",
    "matches",
    "duration",
    "oncall",
];

/// What the walk found wrong, in words.
pub type Problem = String;

/// What the checks learnt about an expression.
pub struct Checked {
    /// Its estimated cost.
    pub cost: u64,
    /// The on-call schedules it asks about (`oncall("...")` takes a literal schedule id).
    pub schedules: Vec<String>,
}

/// The estimated cost of `expr` and the schedules it asks about, or the first unknown name or function it uses.
///
/// `variables` are the names the facts provide.
pub fn check(expr: &IdedExpr, variables: &[&str]) -> Result<Checked, Problem> {
    let mut scope: Vec<&str> = Vec::new();
    let mut schedules = Vec::new();
    let cost = walk(expr, variables, &mut scope, &mut schedules, 0)?;
    Ok(Checked { cost, schedules })
}

fn walk<'e>(
    e: &'e IdedExpr,
    variables: &[&str],
    scope: &mut Vec<&'e str>,
    schedules: &mut Vec<String>,
    depth: usize,
) -> Result<u64, Problem> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the expression is nested more than {MAX_DEPTH} levels deep; simplify it"
        ));
    }
    Ok(match &e.expr {
        Expr::Unspecified | Expr::Literal(_) => 1,
        Expr::Ident(name) => {
            if !scope.contains(&name.as_str()) && !variables.contains(&name.as_str()) {
                return Err(format!(
                    "`{}` is not a fact; the facts are {}",
                    name.escape_debug(),
                    variables.join(", ")
                ));
            }
            1
        }
        Expr::Select(s) => 1 + walk(&s.operand, variables, scope, schedules, depth + 1)?,
        Expr::Call(c) => {
            let name = c.func_name.as_str();
            // Operators are spelt `_&&_`, `@in`, `!_`, `_[_]`: only plain names are functions a rule chose.
            if name.starts_with(|ch: char| ch.is_ascii_alphabetic()) && !FUNCTIONS.contains(&name) {
                return Err(format!(
                    "`{}` is not a function rules may call; they may call {}",
                    name.escape_debug(),
                    FUNCTIONS.join(", ")
                ));
            }
            if name == "oncall" {
                match (&c.target, c.args.as_slice()) {
                    (
                        None,
                        [IdedExpr {
                            expr: Expr::Literal(CelVal::String(s)),
                            ..
                        }],
                    ) => schedules.push(s.to_string()),
                    _ => return Err("oncall takes one schedule id in quotes, e.g. oncall(\"PSCHED1\")".into()),
                }
            }
            let mut cost = 1u64;
            if name == "matches" {
                cost += REGEX_COST;
            }
            if let Some(t) = &c.target {
                cost = cost.saturating_add(walk(t, variables, scope, schedules, depth + 1)?);
            }
            for a in &c.args {
                cost = cost.saturating_add(walk(a, variables, scope, schedules, depth + 1)?);
            }
            cost
        }
        Expr::List(l) => {
            let mut cost = 1u64;
            for x in &l.elements {
                cost = cost.saturating_add(walk(x, variables, scope, schedules, depth + 1)?);
            }
            cost
        }
        Expr::Map(m) => entries(&m.entries, variables, scope, schedules, depth + 1)?,
        Expr::Struct(s) => entries(&s.entries, variables, scope, schedules, depth + 1)?,
        Expr::Comprehension(c) => {
            let range = walk(&c.iter_range, variables, scope, schedules, depth + 1)?;
            let init = walk(&c.accu_init, variables, scope, schedules, depth + 1)?;
            let mark = scope.len();
            scope.push(c.iter_var.as_str());
            if let Some(v) = &c.iter_var2 {
                scope.push(v.as_str());
            }
            scope.push(c.accu_var.as_str());
            let body = walk(&c.loop_cond, variables, scope, schedules, depth + 1)?.saturating_add(walk(
                &c.loop_step,
                variables,
                scope,
                schedules,
                depth + 1,
            )?);
            let result = walk(&c.result, variables, scope, schedules, depth + 1)?;
            scope.truncate(mark);
            range
                .saturating_add(init)
                .saturating_add(result)
                .saturating_add(body.saturating_mul(LIST_BOUND))
        }
    })
}

fn entries<'e>(
    items: &'e [cel::common::ast::IdedEntryExpr],
    variables: &[&str],
    scope: &mut Vec<&'e str>,
    schedules: &mut Vec<String>,
    depth: usize,
) -> Result<u64, Problem> {
    let mut cost = 1u64;
    for item in items {
        cost = cost.saturating_add(match &item.expr {
            EntryExpr::StructField(f) => walk(&f.value, variables, scope, schedules, depth + 1)?,
            EntryExpr::MapEntry(m) => walk(&m.key, variables, scope, schedules, depth + 1)?.saturating_add(walk(
                &m.value,
                variables,
                scope,
                schedules,
                depth + 1,
            )?),
        });
    }
    Ok(cost)
}

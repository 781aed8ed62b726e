//! A fast path for the common shape of a `when`: the expression compiled once, when the set is loaded, into a small
//! tree evaluated straight over the typed [`Facts`], with no CEL values built per request.
//!
//! It gives the same answer as the CEL interpreter or none at all: [`Fast::eval`] returns `Some(b)` only when it
//! evaluated the whole expression to a bool along a path whose meaning it knows to be the interpreter's; anything
//! else (an error, a type it does not model, a form it does not know) returns `None`, and the caller asks the
//! interpreter, so errors and their messages always come from CEL. A rule whose expression uses a form the tree does
//! not model (`matches`, `size`, map literals, ...) is not compiled at all and always goes to the interpreter.
//!
//! Where the time went before (release, the bench's 20-rule set): building every fact as fresh CEL maps and strings
//! for each request, then for each rule a string allocation per literal, a `String` key per field selection, a
//! `has()` that formats every key of the map, and a new scope per comprehension step.

use std::collections::BTreeMap;

use cel::common::ast::{operators, Expr, IdedExpr};
use cel::common::value::CelVal;
use chrono::TimeDelta;

use super::facts::{Facts, InputFact, OnCall, RoleFacts, ScopeFacts, WEEKDAYS};
use super::zone::Clock;

/// A compiled `when`.
#[derive(Debug)]
pub(crate) struct Fast {
    root: Node,
}

/// The facts' top-level names.
#[derive(Debug, Clone, Copy)]
enum Root {
    Workflow,
    Inputs,
    Target,
    Role,
    Cluster,
    Project,
    Requester,
    Duration,
    Reason,
    BreakGlass,
    Time,
}

#[derive(Debug)]
enum Node {
    Bool(bool),
    Int(i64),
    Str(String),
    Dur(TimeDelta),
    StrList(Vec<String>),
    Root(Root),
    /// A comprehension variable, by name (the innermost binding wins).
    Local(String),
    Select(Box<Node>, String),
    Has(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    Not(Box<Node>),
    NotStrictlyFalse(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Eq(Box<Node>, Box<Node>),
    Ne(Box<Node>, Box<Node>),
    Cmp(Box<Node>, Box<Node>, Op),
    In(Box<Node>, Box<Node>),
    OnCall(String),
    Loop(Box<Loop>),
}

#[derive(Debug)]
struct Loop {
    range: Node,
    iter_var: String,
    accu_var: String,
    init: Node,
    cond: Node,
    step: Node,
    result: Node,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

/// The facts one evaluation sees, computed once per request.
pub(crate) struct View<'f> {
    facts: &'f Facts,
    hour: i64,
    minute: i64,
    weekday: &'static str,
    duration: TimeDelta,
}

impl<'f> View<'f> {
    pub(crate) fn new(facts: &'f Facts, clock: Clock) -> Self {
        let secs = i64::try_from(facts.duration.unwrap_or(0)).unwrap_or(i64::MAX);
        Self {
            facts,
            hour: i64::from(clock.hour),
            minute: i64::from(clock.minute),
            weekday: WEEKDAYS[clock.weekday],
            duration: TimeDelta::try_seconds(secs).unwrap_or(TimeDelta::MAX),
        }
    }
}

/// A value during evaluation, borrowed from the facts or the compiled tree.
#[derive(Clone, Copy)]
enum V<'a> {
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Dur(TimeDelta),
    List(&'a [String]),
    Labels(&'a BTreeMap<String, String>),
    Inputs(&'a BTreeMap<String, InputFact>),
    Target,
    Role(Option<&'a RoleFacts>),
    Scope(Option<&'a ScopeFacts>),
    Requester,
    Time,
}

/// Give up: the interpreter decides.
struct Bail;

type R<'a> = Result<V<'a>, Bail>;

const ROOTS: &[(&str, Root)] = &[
    ("workflow", Root::Workflow),
    ("inputs", Root::Inputs),
    ("target", Root::Target),
    ("role", Root::Role),
    ("cluster", Root::Cluster),
    ("project", Root::Project),
    ("requester", Root::Requester),
    ("duration", Root::Duration),
    ("reason", Root::Reason),
    ("break_glass", Root::BreakGlass),
    ("time", Root::Time),
];

impl Fast {
    /// Compiles `expr`, or `None` when it uses a form the fast path does not model.
    pub(crate) fn compile(expr: &IdedExpr) -> Option<Self> {
        let mut scope = Vec::new();
        Some(Self {
            root: compile(expr, &mut scope)?,
        })
    }

    /// The expression's value when it is a bool the interpreter would also give; `None` to ask the interpreter.
    pub(crate) fn eval(&self, view: &View<'_>) -> Option<bool> {
        let mut locals = Vec::new();
        match eval(&self.root, view, &mut locals) {
            Ok(V::Bool(b)) => Some(b),
            _ => None,
        }
    }
}

fn boxed(e: &IdedExpr, scope: &mut Vec<String>) -> Option<Box<Node>> {
    compile(e, scope).map(Box::new)
}

fn compile(e: &IdedExpr, scope: &mut Vec<String>) -> Option<Node> {
    Some(match &e.expr {
        Expr::Literal(CelVal::Boolean(b)) => Node::Bool(*b),
        Expr::Literal(CelVal::Int(i)) => Node::Int(*i),
        Expr::Literal(CelVal::String(s)) => Node::Str(s.clone()),
        Expr::Ident(name) => {
            if scope.iter().any(|s| s == name) {
                Node::Local(name.clone())
            } else {
                Node::Root(ROOTS.iter().find(|(n, _)| n == name)?.1)
            }
        }
        Expr::Select(s) => {
            let operand = boxed(&s.operand, scope)?;
            if s.test {
                Node::Has(operand, s.field.clone())
            } else {
                Node::Select(operand, s.field.clone())
            }
        }
        Expr::List(l) => {
            if !l.optional_indices.is_empty() {
                return None;
            }
            let mut items = Vec::with_capacity(l.elements.len());
            for x in &l.elements {
                match &x.expr {
                    Expr::Literal(CelVal::String(s)) => items.push(s.clone()),
                    _ => return None,
                }
            }
            Node::StrList(items)
        }
        Expr::Call(c) => {
            let name = c.func_name.as_str();
            match (c.target.as_deref(), c.args.as_slice()) {
                (None, [a, b, x]) if name == operators::CONDITIONAL => {
                    Node::Cond(boxed(a, scope)?, boxed(b, scope)?, boxed(x, scope)?)
                }
                (None, [a, b]) => {
                    let (a, b) = (boxed(a, scope)?, boxed(b, scope)?);
                    match name {
                        operators::LOGICAL_AND => Node::And(a, b),
                        operators::LOGICAL_OR => Node::Or(a, b),
                        operators::EQUALS => Node::Eq(a, b),
                        operators::NOT_EQUALS => Node::Ne(a, b),
                        operators::LESS => Node::Cmp(a, b, Op::Lt),
                        operators::LESS_EQUALS => Node::Cmp(a, b, Op::Le),
                        operators::GREATER => Node::Cmp(a, b, Op::Gt),
                        operators::GREATER_EQUALS => Node::Cmp(a, b, Op::Ge),
                        operators::IN => Node::In(a, b),
                        operators::INDEX => Node::Index(a, b),
                        _ => return None,
                    }
                }
                (None, [a]) => match (name, &a.expr) {
                    (operators::LOGICAL_NOT, _) => Node::Not(boxed(a, scope)?),
                    (operators::NOT_STRICTLY_FALSE, _) => Node::NotStrictlyFalse(boxed(a, scope)?),
                    ("oncall", Expr::Literal(CelVal::String(s))) => Node::OnCall(s.clone()),
                    ("duration", Expr::Literal(CelVal::String(s))) => {
                        // Folded once, by the interpreter's own function, so the value is the one it would compute.
                        match cel::functions::duration(std::sync::Arc::new(s.clone())) {
                            Ok(cel::Value::Duration(d)) => Node::Dur(d),
                            _ => return None,
                        }
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
        Expr::Comprehension(c) => {
            if c.iter_var2.is_some() {
                return None;
            }
            let range = compile(&c.iter_range, scope)?;
            let init = compile(&c.accu_init, scope)?;
            let mark = scope.len();
            // The interpreter evaluates the condition before it binds the first item: a name that is not bound yet
            // makes the fast path give up at run time, so every part may refer to both variables.
            scope.push(c.accu_var.clone());
            scope.push(c.iter_var.clone());
            let cond = compile(&c.loop_cond, scope);
            let step = compile(&c.loop_step, scope);
            let result = compile(&c.result, scope);
            scope.truncate(mark);
            Node::Loop(Box::new(Loop {
                range,
                iter_var: c.iter_var.clone(),
                accu_var: c.accu_var.clone(),
                init,
                cond: cond?,
                step: step?,
                result: result?,
            }))
        }
        _ => return None,
    })
}

fn eval<'a>(n: &'a Node, view: &View<'a>, locals: &mut Vec<(&'a str, V<'a>)>) -> R<'a> {
    let f = view.facts;
    Ok(match n {
        Node::Bool(b) => V::Bool(*b),
        Node::Int(i) => V::Int(*i),
        Node::Str(s) => V::Str(s),
        Node::Dur(d) => V::Dur(*d),
        Node::StrList(l) => V::List(l),
        Node::Root(r) => match r {
            Root::Workflow => V::Str(&f.workflow),
            Root::Inputs => V::Inputs(&f.inputs),
            Root::Target => V::Target,
            Root::Role => V::Role(f.role.as_ref()),
            Root::Cluster => V::Scope(f.cluster.as_ref()),
            Root::Project => V::Scope(f.project.as_ref()),
            Root::Requester => V::Requester,
            Root::Duration => V::Dur(view.duration),
            Root::Reason => V::Str(&f.reason),
            Root::BreakGlass => V::Bool(f.break_glass),
            Root::Time => V::Time,
        },
        Node::Local(name) => match locals.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => *v,
            None => return Err(Bail),
        },
        Node::Select(x, field) => {
            let x = eval(x, view, locals)?;
            member(x, field, view).ok_or(Bail)?
        }
        Node::Has(x, field) => {
            let x = eval(x, view, locals)?;
            V::Bool(match x {
                V::Labels(m) => m.contains_key(field.as_str()),
                V::Inputs(m) => m.contains_key(field.as_str()),
                V::Target | V::Role(_) | V::Scope(_) | V::Requester | V::Time => member(x, field, view).is_some(),
                _ => false,
            })
        }
        Node::Index(x, k) => {
            let x = eval(x, view, locals)?;
            let k = eval(k, view, locals)?;
            match (x, k) {
                (V::Labels(m), V::Str(k)) => V::Str(m.get(k).ok_or(Bail)?),
                (V::Inputs(m), V::Str(k)) => input(m.get(k).ok_or(Bail)?),
                _ => return Err(Bail),
            }
        }
        Node::Not(x) => match eval(x, view, locals)? {
            V::Bool(b) => V::Bool(!b),
            _ => return Err(Bail),
        },
        Node::NotStrictlyFalse(x) => match eval(x, view, locals)? {
            V::Bool(b) => V::Bool(b),
            _ => V::Bool(true),
        },
        Node::And(a, b) => match eval(a, view, locals)? {
            V::Bool(false) => V::Bool(false),
            V::Bool(true) => match eval(b, view, locals)? {
                V::Bool(b) => V::Bool(b),
                _ => return Err(Bail),
            },
            _ => return Err(Bail),
        },
        Node::Or(a, b) => match eval(a, view, locals)? {
            V::Bool(true) => V::Bool(true),
            V::Bool(false) => eval(b, view, locals)?,
            _ => return Err(Bail),
        },
        Node::Cond(c, a, b) => match eval(c, view, locals)? {
            V::Bool(true) => eval(a, view, locals)?,
            V::Bool(false) => eval(b, view, locals)?,
            _ => return Err(Bail),
        },
        Node::Eq(a, b) => V::Bool(equal(eval(a, view, locals)?, eval(b, view, locals)?)?),
        Node::Ne(a, b) => V::Bool(!equal(eval(a, view, locals)?, eval(b, view, locals)?)?),
        Node::Cmp(a, b, op) => {
            let ord = match (eval(a, view, locals)?, eval(b, view, locals)?) {
                (V::Int(a), V::Int(b)) => a.cmp(&b),
                (V::Str(a), V::Str(b)) => a.cmp(b),
                (V::Bool(a), V::Bool(b)) => a.cmp(&b),
                (V::Dur(a), V::Dur(b)) => a.cmp(&b),
                _ => return Err(Bail),
            };
            V::Bool(match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                Op::Ge => ord.is_ge(),
            })
        }
        Node::In(a, b) => match (eval(a, view, locals)?, eval(b, view, locals)?) {
            (V::Str(s), V::Str(hay)) => V::Bool(hay.contains(s)),
            (V::Str(s), V::List(l)) => V::Bool(l.iter().any(|x| x == s)),
            (V::Str(s), V::Labels(m)) => V::Bool(m.contains_key(s)),
            (V::Str(s), V::Inputs(m)) => V::Bool(m.contains_key(s)),
            // Anything but a string is never equal to a string list's items.
            (V::Bool(_) | V::Int(_) | V::Dur(_), V::List(_)) => V::Bool(false),
            _ => return Err(Bail),
        },
        Node::OnCall(schedule) => match f.oncall.get(schedule) {
            Some(OnCall::Known(b)) => V::Bool(*b),
            _ => return Err(Bail),
        },
        Node::Loop(l) => {
            let init = eval(&l.init, view, locals)?;
            let V::List(items) = eval(&l.range, view, locals)? else {
                return Err(Bail);
            };
            let mark = locals.len();
            locals.push((&l.accu_var, init));
            let mut out = Ok(());
            for item in items {
                match eval(&l.cond, view, locals) {
                    Ok(V::Bool(true)) => {}
                    Ok(V::Bool(false)) => break,
                    _ => {
                        out = Err(Bail);
                        break;
                    }
                }
                // The interpreter binds the item and the accumulator in the one inner scope, overwriting them.
                locals.truncate(mark + 1);
                locals.push((&l.iter_var, V::Str(item)));
                match eval(&l.step, view, locals) {
                    Ok(accu) => {
                        locals[mark] = (&l.accu_var, accu);
                    }
                    Err(b) => {
                        out = Err(b);
                        break;
                    }
                }
            }
            let result = out.and_then(|()| eval(&l.result, view, locals));
            locals.truncate(mark);
            result?
        }
    })
}

fn input(i: &InputFact) -> V<'_> {
    match i {
        InputFact::Bool(b) => V::Bool(*b),
        InputFact::Int(n) => V::Int(*n),
        InputFact::Text(s) => V::Str(s),
        InputFact::List(l) => V::List(l),
    }
}

/// `x.field`, or `None` where the interpreter would fail (no such key, not a map).
fn member<'a>(x: V<'a>, field: &str, view: &View<'a>) -> Option<V<'a>> {
    let f = view.facts;
    Some(match x {
        V::Labels(m) => V::Str(m.get(field)?),
        V::Inputs(m) => input(m.get(field)?),
        V::Target => match field {
            "users" => V::List(&f.target.users),
            "groups" => V::List(&f.target.groups),
            _ => return None,
        },
        V::Role(r) => match field {
            "id" => V::Str(r.map_or("", |r| &r.id)),
            "name" => V::Str(r.map_or("", |r| &r.name)),
            "verbs" => V::List(r.map_or(&[], |r| &r.verbs)),
            "wildcard" => V::Bool(r.is_some_and(RoleFacts::wildcard)),
            "can_grant" => V::Bool(r.is_some_and(RoleFacts::can_grant)),
            _ => return None,
        },
        V::Scope(s) => match (field, s) {
            ("id", _) => V::Str(s.map_or("", |s| &s.id)),
            ("name", _) => V::Str(s.map_or("", |s| &s.name)),
            ("labels", Some(s)) => V::Labels(&s.labels),
            ("labels", None) => V::Labels(empty_labels()),
            _ => return None,
        },
        V::Requester => match field {
            "id" => V::Str(&f.requester.id),
            "name" => V::Str(&f.requester.name),
            "groups" => V::List(&f.requester.groups),
            "admin" => V::Bool(f.requester.admin),
            _ => return None,
        },
        V::Time => match field {
            "hour" => V::Int(view.hour),
            "minute" => V::Int(view.minute),
            "weekday" => V::Str(view.weekday),
            _ => return None,
        },
        _ => return None,
    })
}

fn empty_labels() -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    &EMPTY
}

/// `a == b` as the interpreter says it, or `Bail` for what it is not modelled here (lists and maps).
fn equal(a: V<'_>, b: V<'_>) -> Result<bool, Bail> {
    Ok(match (a, b) {
        (V::Bool(a), V::Bool(b)) => a == b,
        (V::Int(a), V::Int(b)) => a == b,
        (V::Str(a), V::Str(b)) => a == b,
        (V::Dur(a), V::Dur(b)) => a == b,
        (V::Bool(_) | V::Int(_) | V::Str(_) | V::Dur(_), V::Bool(_) | V::Int(_) | V::Str(_) | V::Dur(_)) => false,
        _ => return Err(Bail),
    })
}

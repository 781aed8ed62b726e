//! The facts a rule sees: plain, typed data the caller resolved before evaluation (rancher-workflows from Rancher,
//! rancher-server for on-call), and their CEL form.
//!
//! The YAML/JSON form (every field may be omitted; policy test cases are written in it):
//!
//! ```yaml
//! workflow: grant-cluster-role
//! inputs: {cluster: c-prod, role: cluster-owner}
//! target: {users: [u-carol], groups: []}
//! role: {id: cluster-owner, name: Cluster Owner, verbs: ["*"]}
//! cluster: {id: c-prod, name: prod, labels: {env: prod}}
//! project: {id: "c-prod:p-web", name: web, labels: {}}
//! requester: {id: u-alice, name: alice, groups: ["local://g-sre"], admin: false}
//! duration: 2h
//! reason: INC-123 disk full
//! break_glass: false
//! oncall: {PSCHED1: true, PSCHED2: {unknown: "on-call source unavailable"}}
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::Value;
use serde::{Deserialize, Serialize};

/// Everything a rule's `when` expression may look at, for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// The workflow's name, e.g. `grant-cluster-role`.
    #[serde(default)]
    pub workflow: String,
    /// The workflow's inputs, typed (`inputs.cluster`, `inputs.hours`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputFact>,
    /// The principals the request acts on, as pinned when it was filed.
    #[serde(default)]
    pub target: TargetFacts,
    /// The role the request would grant, when it grants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleFacts>,
    /// The cluster the request acts in, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ScopeFacts>,
    /// The project the request acts in, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ScopeFacts>,
    /// Who asks.
    #[serde(default)]
    pub requester: RequesterFacts,
    /// How long the grant would last, when the workflow grants for a time (`2h`, `90m`; seconds in JSON numbers).
    #[serde(default, with = "duration_text", skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// The requester's reason.
    #[serde(default)]
    pub reason: String,
    /// Whether the requester asks for break-glass (run at once, reviewed afterwards).
    #[serde(default)]
    pub break_glass: bool,
    /// On-call status per schedule id, as resolved from PagerDuty or Opsgenie. A schedule a rule asks about that is
    /// missing here is unknown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub oncall: BTreeMap<String, OnCall>,
}

/// A workflow input's value, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputFact {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// Text (ids, names, durations as written).
    Text(String),
    /// A list of texts.
    List(Vec<String>),
}

/// The principals a request acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFacts {
    /// User ids.
    #[serde(default)]
    pub users: Vec<String>,
    /// Group principal ids.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The role a request would grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFacts {
    /// The role template id, e.g. `cluster-owner`.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub name: String,
    /// Every verb any of its rules allows (including those of the templates it inherits).
    #[serde(default)]
    pub verbs: Vec<String>,
}

impl RoleFacts {
    /// Whether a rule of the role allows every verb (`*`).
    pub fn wildcard(&self) -> bool {
        self.verbs.iter().any(|v| v == "*")
    }

    /// Whether the role lets its holder hand out roles: `*`, `bind` or `escalate`.
    pub fn can_grant(&self) -> bool {
        self.verbs
            .iter()
            .any(|v| matches!(v.as_str(), "*" | "bind" | "escalate"))
    }
}

/// A cluster or a project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeFacts {
    /// Its Rancher id.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub name: String,
    /// Its labels, e.g. `env: prod`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequesterFacts {
    /// The Rancher user id.
    #[serde(default)]
    pub id: String,
    /// The login name.
    #[serde(default)]
    pub name: String,
    /// Group principal ids.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether they hold the `admin` global role.
    #[serde(default)]
    pub admin: bool,
}

/// Whether the requester is on call in one schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OnCall {
    /// Known: `true` (on call now) or `false`.
    Known(bool),
    /// The provider could not say; rules that ask fail closed.
    Unknown {
        /// Why, e.g. `on-call source unavailable: connection refused`.
        unknown: String,
    },
}

/// The variable names a rule may use (besides the function `oncall`).
pub const VARIABLES: &[&str] = &[
    "workflow",
    "inputs",
    "target",
    "role",
    "cluster",
    "project",
    "requester",
    "duration",
    "reason",
    "break_glass",
    "time",
];

/// The hidden variable `oncall(...)` reads its answers from.
pub(crate) const ONCALL_VAR: &str = "@oncall";

fn text(s: &str) -> Value {
    Value::String(Arc::new(s.to_owned()))
}

fn texts(items: &[String]) -> Value {
    Value::List(Arc::new(items.iter().map(|s| text(s)).collect()))
}

fn map<I: IntoIterator<Item = (&'static str, Value)>>(entries: I) -> Value {
    Value::Map(Map {
        map: Arc::new(entries.into_iter().map(|(k, v)| (Key::from(k), v)).collect()),
    })
}

fn labels(l: &BTreeMap<String, String>) -> Value {
    let m: HashMap<Key, Value> = l.iter().map(|(k, v)| (Key::from(k.as_str()), text(v))).collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn scope(s: Option<&ScopeFacts>) -> Value {
    let empty = ScopeFacts::default();
    let s = s.unwrap_or(&empty);
    map([
        ("id", text(&s.id)),
        ("name", text(&s.name)),
        ("labels", labels(&s.labels)),
    ])
}

pub(crate) const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Facts {
    /// The CEL variables of these facts, with the local `clock` of the evaluation.
    pub(crate) fn variables(&self, clock: super::zone::Clock) -> Vec<(&'static str, Value)> {
        let inputs: HashMap<Key, Value> = self
            .inputs
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    InputFact::Bool(b) => Value::Bool(*b),
                    InputFact::Int(i) => Value::Int(*i),
                    InputFact::Text(s) => text(s),
                    InputFact::List(l) => texts(l),
                };
                (Key::from(k.as_str()), v)
            })
            .collect();
        let empty_role = RoleFacts::default();
        let role = self.role.as_ref().unwrap_or(&empty_role);
        let oncall: HashMap<Key, Value> = self
            .oncall
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    OnCall::Known(b) => Value::Bool(*b),
                    OnCall::Unknown { unknown } => text(unknown),
                };
                (Key::from(k.as_str()), v)
            })
            .collect();
        let secs = i64::try_from(self.duration.unwrap_or(0)).unwrap_or(i64::MAX);
        vec![
            ("workflow", text(&self.workflow)),
            ("inputs", Value::Map(Map { map: Arc::new(inputs) })),
            (
                "target",
                map([
                    ("users", texts(&self.target.users)),
                    ("groups", texts(&self.target.groups)),
                ]),
            ),
            (
                "role",
                map([
                    ("id", text(&role.id)),
                    ("name", text(&role.name)),
                    ("verbs", texts(&role.verbs)),
                    ("wildcard", Value::Bool(role.wildcard())),
                    ("can_grant", Value::Bool(role.can_grant())),
                ]),
            ),
            ("cluster", scope(self.cluster.as_ref())),
            ("project", scope(self.project.as_ref())),
            (
                "requester",
                map([
                    ("id", text(&self.requester.id)),
                    ("name", text(&self.requester.name)),
                    ("groups", texts(&self.requester.groups)),
                    ("admin", Value::Bool(self.requester.admin)),
                ]),
            ),
            (
                "duration",
                Value::Duration(chrono::TimeDelta::try_seconds(secs).unwrap_or(chrono::TimeDelta::MAX)),
            ),
            ("reason", text(&self.reason)),
            ("break_glass", Value::Bool(self.break_glass)),
            (
                "time",
                map([
                    ("hour", Value::Int(i64::from(clock.hour))),
                    ("minute", Value::Int(i64::from(clock.minute))),
                    ("weekday", text(WEEKDAYS[clock.weekday])),
                ]),
            ),
            (ONCALL_VAR, Value::Map(Map { map: Arc::new(oncall) })),
        ]
    }
}

/// Durations as text (`4h`, `90m`, `1h30m`) or a number of seconds.
mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Secs(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(secs) => s.serialize_str(&crate::grant::format_duration(*secs)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Repr>::deserialize(d)? {
            None => Ok(None),
            Some(Repr::Secs(n)) => Ok(Some(n)),
            Some(Repr::Text(t)) => crate::grant::parse_duration(&t)
                .map(|d| Some(d.as_secs()))
                .map_err(serde::de::Error::custom),
        }
    }
}

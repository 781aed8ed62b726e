//! Rules at filing time (`rancherctl serve --policies DIR`).
//!
//! When a write request is filed, the runner looks up what the rules may ask about ([`facts`]): the pinned targets,
//! the role with the verbs of every template it inherits, the cluster and the project with their labels, and the
//! requester with the groups Rancher keeps in their `UserAttribute`. It asks the on-call source about each schedule
//! the rules name ([`OnCallSource`]), then evaluates the rule set ([`rancher_approval::rules`]):
//! - a refusal (`deny`, an unmet `require_reason` or `max_duration`) files nothing: [`crate::Error::NotAllowed`]
//!   with the rule's message;
//! - `auto_approve` files the request approved by the rule (recorded, not a person's decision), and it runs;
//! - `require(...)` files it waiting for those approvers;
//! - when no rule decides, the workflow's own policy applies, as without rules.
//!
//! Every filed request keeps the rule set's hash, the deciding rule and the facts ([`rancher_approval::RuleRecord`]).
//! Facts are looked up with the lookup session ([`Policies::with_lookups`], the service account in the approvals
//! service) so a requester who may not read role templates or user attributes is judged on the same facts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use rancher_approval::rules::{
    Facts, InputFact, OnCall, RequesterFacts, RoleFacts, RuleDecision, RuleSet, RuleVerdict, ScopeFacts, TargetFacts,
};
use serde_json::Value;

use crate::catalog::WorkflowDef;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::workflow::Pinned;

/// Answers `oncall("schedule")`: whether a requester is on call now (PagerDuty, Opsgenie: rancher-server has the
/// clients). A provider that cannot say answers [`OnCall::Unknown`] with why; rules that ask then fail closed.
pub trait OnCallSource: Send + Sync + std::fmt::Debug {
    /// Whether `who` is on call now in `schedule`.
    fn on_call<'a>(&'a self, schedule: &'a str, who: &'a RequesterFacts) -> BoxFuture<'a, OnCall>;
}

/// The rule set the runner applies when a request is filed, where on-call facts come from, and the session facts
/// are looked up with.
#[derive(Clone)]
pub struct Policies {
    /// Shared by every clone, so a set installed later ([`Policies::replace`]) applies to both runners. With
    /// `installed`, the last set read from the store (none while nothing is installed).
    set: Arc<std::sync::RwLock<Option<Arc<RuleSet>>>>,
    /// Where `rancherctl policies apply` installs rules: read again at each filing, so every replica judges by
    /// what is installed now. None when the set is fixed (`serve --policies DIR`).
    installed: Option<Arc<dyn rancher_approval::Store>>,
    oncall: Option<Arc<dyn OnCallSource>>,
    lookups: Option<Arc<Session>>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("ruleset", &self.rules().map(|r| r.hash().to_owned()))
            .field("installed", &self.installed.is_some())
            .field("oncall", &self.oncall)
            .finish_non_exhaustive()
    }
}

impl Policies {
    /// `set`, with no on-call source (every `oncall(...)` is unknown) and facts looked up with the caller's session.
    pub fn new(set: Arc<RuleSet>) -> Self {
        Policies {
            set: Arc::new(std::sync::RwLock::new(Some(set))),
            installed: None,
            oncall: None,
            lookups: None,
        }
    }

    /// The rules installed in `store` by `rancherctl policies apply` ([`rancher_approval::rules::installed`]), read
    /// when each request is filed (a changed set is loaded once, by its hash); while nothing is installed every
    /// request falls back to its workflow's policy.
    pub fn installed(store: Arc<dyn rancher_approval::Store>) -> Self {
        Policies {
            set: Arc::new(std::sync::RwLock::new(None)),
            installed: Some(store),
            oncall: None,
            lookups: None,
        }
    }

    /// Answers `oncall(...)` with `source`.
    pub fn with_oncall(mut self, source: Arc<dyn OnCallSource>) -> Self {
        self.oncall = Some(source);
        self
    }

    /// Looks facts up with `session` (the service account) rather than the caller's own session.
    pub fn with_lookups(mut self, session: Session) -> Self {
        self.lookups = Some(Arc::new(session));
        self
    }

    /// The rule set requests were last judged by (for an installed set, as last read), if any.
    pub fn rules(&self) -> Option<Arc<RuleSet>> {
        self.set.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Judges requests filed from now on by `set` (every clone of these policies sees it); requests filed before
    /// keep the hash of the set that judged them.
    pub fn replace(&self, set: Arc<RuleSet>) {
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = Some(set);
    }

    /// The set to judge a request filed now by: the fixed set, or what is installed in the store now (loaded again
    /// only when its hash changed). An installed entry that cannot be read refuses the filing rather than let it
    /// pass unjudged.
    pub async fn current(&self) -> Result<Option<Arc<RuleSet>>> {
        let Some(store) = &self.installed else {
            return Ok(self.rules());
        };
        use rancher_approval::rules::installed::{record, InstalledError};
        // An installed set that cannot be read refuses the filing, so nothing passes unjudged.
        let unreadable = |e: InstalledError| match e {
            InstalledError::Store(e) => Error::Approval(e),
            corrupt => Error::Refused(format!("{corrupt}; nothing is filed until then")),
        };
        let Some(record) = record(store.as_ref(), chrono::Utc::now()).await.map_err(unreadable)? else {
            *self.set.write().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(None);
        };
        if let Some(set) = self.rules().filter(|s| s.hash() == record.hash) {
            return Ok(Some(set));
        }
        let set = record.load_checked().map_err(unreadable)?;
        let set = Arc::new(set);
        self.replace(set.clone());
        Ok(Some(set))
    }

    /// Looks up the facts of a request `session`'s user files and evaluates the rules on them now.
    pub(crate) async fn judge(
        &self,
        session: &Session,
        def: &WorkflowDef,
        pinned: &Pinned,
        reason: Option<&str>,
        break_glass: bool,
    ) -> Result<Option<(RuleDecision, Facts)>> {
        let Some(set) = self.current().await? else {
            return Ok(None);
        };
        let lookups = self.lookups.as_deref().unwrap_or(session);
        let mut facts = facts(lookups, session, def, pinned, reason).await?;
        facts.break_glass = break_glass;
        for schedule in set.schedules() {
            let answer = match &self.oncall {
                Some(source) => source.on_call(schedule, &facts.requester).await,
                None => OnCall::Unknown {
                    unknown: "on-call source unavailable: no on-call provider is configured (serve --pagerduty-key-file or --opsgenie-key-file)".into(),
                },
            };
            facts.oncall.insert(schedule.clone(), answer);
        }
        let decision = set.evaluate(&facts, chrono::Utc::now());
        tracing::info!(
            workflow = def.id,
            requester = %facts.requester.id,
            ruleset = %decision.ruleset,
            rule = decision.deciding_rule().unwrap_or("-"),
            verdict = verdict_name(&decision.verdict),
            unknown = decision.unknown.len(),
            "rules judged a request"
        );
        Ok(Some((decision, facts)))
    }
}

/// The verdict's name as policy tests write it.
pub fn verdict_name(v: &RuleVerdict) -> &'static str {
    match v {
        RuleVerdict::Denied { .. } => "denied",
        RuleVerdict::AutoApproved { .. } => "auto-approved",
        RuleVerdict::RequiresApproval { .. } => "requires-approval",
        RuleVerdict::BreakGlass { .. } => "break-glass",
        RuleVerdict::Fallback => "fallback",
    }
}

/// The refusal a denied decision gives the requester: the rule and its message.
pub(crate) fn refusal(workflow: &str, decision: &RuleDecision) -> Error {
    match &decision.verdict {
        RuleVerdict::Denied {
            rule: Some(rule),
            message,
        } => Error::NotAllowed(format!("{workflow}: refused by policy rule `{rule}`: {message}")),
        RuleVerdict::Denied { rule: None, message } => Error::NotAllowed(format!("{workflow}: {message}")),
        other => Error::NotAllowed(format!(
            "{workflow}: the rules decided {} here, which cannot be filed this way",
            verdict_name(other)
        )),
    }
}

/// Whether a principal id names a user (`u-x`, `user-x`, `local://u-x`, `github_user://7`) rather than a group.
fn is_user(id: &str) -> bool {
    match id.split_once("://") {
        Some(("local", rest)) => !rest.starts_with("g-"),
        Some((scheme, _)) => scheme.ends_with("_user"),
        None => !id.starts_with("g-"),
    }
}

/// The workflow inputs as typed facts: texts, numbers, booleans and lists of texts (internal inputs the runner
/// sets and nested objects are left out).
fn input_facts(def: &WorkflowDef, inputs: &Value) -> BTreeMap<String, InputFact> {
    let internal: BTreeSet<&str> = def.inputs.iter().filter(|i| i.is_internal()).map(|i| i.name).collect();
    let mut out = BTreeMap::new();
    for (k, v) in inputs.as_object().into_iter().flatten() {
        if internal.contains(k.as_str()) || k == crate::grants::containment::INPUT {
            continue;
        }
        let fact = match v {
            Value::Bool(b) => InputFact::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => InputFact::Int(i),
                None => continue,
            },
            Value::String(s) => InputFact::Text(s.clone()),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                InputFact::List(items.iter().filter_map(Value::as_str).map(str::to_string).collect())
            }
            _ => continue,
        };
        out.insert(k.clone(), fact);
    }
    out
}

/// Every verb of `rules` (RBAC rules as JSON).
fn verbs_of(obj: &Value, into: &mut BTreeSet<String>) {
    let mut rules: Vec<&Value> = obj
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if let Some(ns) = obj.get("namespacedRules").and_then(Value::as_object) {
        rules.extend(ns.values().filter_map(Value::as_array).flatten());
    }
    for r in rules {
        into.extend(
            r.get("verbs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
}

fn text_of(obj: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or_default()
        .to_string()
}

fn lookup_failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Refused(format!(
        "could not read {what} from Rancher, which the policy rules need, so nothing was filed: {e}; try again, or ask an admin to check the service account's rights"
    ))
}

/// The role `name` grants (a global role when the workflow binds global roles, else a role template), with every
/// verb of its rules and of the templates it inherits (at most 32 of them).
async fn role_facts(session: &Session, workflow: &str, name: &str) -> Result<RoleFacts> {
    let global = workflow.contains("global-role");
    let kind = if global {
        crate::roles::RoleKind::Global
    } else {
        crate::roles::RoleKind::Template
    };
    let obj = crate::roles::get(session, kind, name)
        .await
        .map_err(|e| lookup_failed(&format!("role `{name}`"), e))?;
    let display = text_of(&obj, &["displayName", "name"]);
    let mut verbs = BTreeSet::new();
    verbs_of(&obj, &mut verbs);
    let mut todo: Vec<String> = Vec::new();
    let inherited = |o: &Value, key: &str| -> Vec<String> {
        o.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    todo.extend(inherited(
        &obj,
        if global {
            "inheritedClusterRoles"
        } else {
            "roleTemplateNames"
        },
    ));
    let mut seen = BTreeSet::new();
    while let Some(t) = todo.pop() {
        if !seen.insert(t.clone()) || seen.len() > 32 {
            continue;
        }
        let o = crate::roles::get(session, crate::roles::RoleKind::Template, &t)
            .await
            .map_err(|e| lookup_failed(&format!("role template `{t}` (inherited by `{name}`)"), e))?;
        verbs_of(&o, &mut verbs);
        todo.extend(inherited(&o, "roleTemplateNames"));
    }
    Ok(RoleFacts {
        id: name.to_string(),
        name: display,
        verbs: verbs.into_iter().collect(),
    })
}

async fn cluster_facts(session: &Session, id: &str) -> Result<ScopeFacts> {
    let c = session
        .client
        .send(&rancher_api::requests::V3ClustersGet::new(id))
        .await
        .map_err(|e| lookup_failed(&format!("cluster `{id}`"), e))?;
    Ok(ScopeFacts {
        id: id.to_string(),
        name: c.name.unwrap_or_default(),
        labels: c.labels.unwrap_or_default(),
    })
}

async fn project_facts(session: &Session, id: &str) -> Result<ScopeFacts> {
    let p = session
        .client
        .send(&rancher_api::requests::V3ProjectsGet::new(id))
        .await
        .map_err(|e| lookup_failed(&format!("project `{id}`"), e))?;
    Ok(ScopeFacts {
        id: id.to_string(),
        name: p.name.unwrap_or_default(),
        labels: p.labels.unwrap_or_default(),
    })
}

/// The group principals Rancher keeps for `user` in its `UserAttribute` (none when it has none, or on a server
/// without that API).
async fn attribute_groups(session: &Session, user: &str) -> Result<Vec<String>> {
    let supported = rancher_api::find_operation(rancher_api::ids::RK_USERATTRIBUTES_GET)
        .is_some_and(|o| session.version.at_least(o.since.major, o.since.minor));
    if !supported || session.is_legacy() {
        return Ok(Vec::new());
    }
    let a = match session
        .client
        .user_attributes()
        .get(rancher_api::requests::RkUserattributesGet::new(user))
        .await
    {
        Ok(a) => a,
        Err(e) if e.status() == Some(404) => return Ok(Vec::new()),
        Err(e) => return Err(lookup_failed(&format!("the groups of `{user}` (its UserAttribute)"), e)),
    };
    let mut out = Vec::new();
    for list in a.group_principals.iter().flat_map(|m| m.values()) {
        for p in list.items.iter().flatten() {
            let id = p
                .pointer("/metadata/name")
                .or_else(|| p.get("name"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            if let Some(id) = id {
                out.push(id.to_string());
            }
        }
    }
    Ok(out)
}

/// The facts of a request `requester` files for `def` with `pinned` inputs and targets, looked up with `lookups`.
pub(crate) async fn facts(
    lookups: &Session,
    requester: &Session,
    def: &WorkflowDef,
    pinned: &Pinned,
    reason: Option<&str>,
) -> Result<Facts> {
    let inputs = pinned.inputs.as_value();
    let text = |k: &str| inputs.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    let mut target = TargetFacts::default();
    let mut add = |id: &str| {
        let list = if is_user(id) {
            &mut target.users
        } else {
            &mut target.groups
        };
        if !list.iter().any(|x| x == id) {
            list.push(id.to_string());
        }
    };
    for (id, _) in &pinned.targets {
        add(id);
    }
    if let Some(u) = text("user") {
        add(u);
    }
    if let Some(g) = text("group") {
        if !target.groups.iter().any(|x| x == g) {
            target.groups.push(g.to_string());
        }
    }
    let role = match text("role") {
        Some(r) => Some(role_facts(lookups, def.id, r).await?),
        None => None,
    };
    let project = match text("project") {
        Some(p) => Some(project_facts(lookups, p).await?),
        None => None,
    };
    let cluster_id = text("cluster").or_else(|| text("project").and_then(|p| p.split_once(':').map(|(c, _)| c)));
    let cluster = match cluster_id {
        Some(c) => Some(cluster_facts(lookups, c).await?),
        None => None,
    };
    let principal = &requester.principal;
    let mut groups = principal.groups.clone();
    for g in attribute_groups(lookups, &principal.id).await? {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let duration = if def.inputs.iter().any(|i| i.name == "duration") {
        crate::grants::duration_secs(def, &pinned.inputs)?
    } else {
        None
    };
    Ok(Facts {
        workflow: def.id.to_string(),
        inputs: input_facts(def, inputs),
        target,
        role,
        cluster,
        project,
        requester: RequesterFacts {
            id: principal.id.clone(),
            name: principal.username.clone().unwrap_or_default(),
            groups,
            admin: requester.is_admin,
        },
        duration,
        reason: reason.unwrap_or_default().to_string(),
        break_glass: false,
        oncall: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_told_apart_as_users_and_groups() {
        for user in [
            "u-abc12",
            "user-x9",
            "local://u-abc12",
            "github_user://7",
            "activedirectory_user://CN=a",
        ] {
            assert!(is_user(user), "{user}");
        }
        for group in [
            "github_team://7",
            "activedirectory_group://CN=sre",
            "local://g-sre",
            "okta_group://x",
        ] {
            assert!(!is_user(group), "{group}");
        }
    }

    #[test]
    fn inputs_become_typed_facts_without_the_runners_own() {
        let def = crate::registry::find("grant-cluster-role").expect("in the catalog");
        let inputs = serde_json::json!({
            "cluster": "c-1", "role": "cluster-owner", "duration": "1h", "hours": 3, "force": true,
            "list": ["a", "b"], "nested": {"x": 1},
            crate::grants::containment::INPUT: {"why": "owner"},
        });
        let f = input_facts(def, &inputs);
        assert_eq!(f.get("cluster"), Some(&InputFact::Text("c-1".into())));
        assert_eq!(f.get("hours"), Some(&InputFact::Int(3)));
        assert_eq!(f.get("force"), Some(&InputFact::Bool(true)));
        assert_eq!(f.get("list"), Some(&InputFact::List(vec!["a".into(), "b".into()])));
        assert!(!f.contains_key("nested"));
        assert!(!f.contains_key(crate::grants::containment::INPUT));
    }

    #[test]
    fn verbs_come_from_rules_and_namespaced_rules() {
        let role = serde_json::json!({
            "rules": [{"verbs": ["get", "list"]}, {"verbs": ["*"]}],
            "namespacedRules": {"ns": [{"verbs": ["bind"]}]},
        });
        let mut verbs = BTreeSet::new();
        verbs_of(&role, &mut verbs);
        assert_eq!(verbs.into_iter().collect::<Vec<_>>(), ["*", "bind", "get", "list"]);
    }

    #[test]
    fn a_denial_names_the_rule_and_its_message_and_is_a_403_kind_of_error() {
        let d = RuleDecision {
            ruleset: "h".into(),
            verdict: RuleVerdict::Denied {
                rule: Some("no-contractor-wildcards".into()),
                message: "contractors never get roles with * verbs".into(),
            },
            matched: vec![],
            unknown: vec![],
            max_duration: None,
        };
        let e = refusal("grant-cluster-role", &d);
        assert!(matches!(e, Error::NotAllowed(_)), "{e:?}");
        let s = e.to_string();
        assert!(
            s.contains("no-contractor-wildcards") && s.contains("contractors never get roles with * verbs"),
            "{s}"
        );
    }
}

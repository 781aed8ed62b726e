//! Cluster and project membership, optionally time-bound: the `list-*-role-bindings`, `grant-*-role` and
//! `revoke-*-role` workflows, the `duration` of `create-global-role-binding`, and the revocation of due grants
//! ([`revoke_due`]).
//!
//! A grant's binding gets a fixed name when the request is filed (`crtb-ra-…`, `prtb-ra-…`, `grb-ra-…`), stored
//! in the request and covered by its content hash: a create replayed after a crash finds its own object instead of
//! making a second one, and revocation deletes exactly that object. With a `duration`, the execution reports a
//! [`rancher_approval::NewGrant`] that the store records with the outcome, due `duration` after execution.

use async_trait::async_trait;
use rancher_approval::{BindingKind, GrantChange, NewGrant, SubjectKind};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalog::{DefaultApproval, InputKind, InputSpec, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, Typed, TypedWorkflow, Workflow};

pub use crate::bindings;
pub mod containment;
mod extend;
pub mod resolve;
mod revoke;

pub use bindings::RoleBinding;
pub use extend::extension;
pub use revoke::{
    cancel_extensions, end_early, revoke_due, revoke_grant, RevokeOutcome, RevokeReport, BACKOFF_BASE, BACKOFF_MAX,
    REVOKE_LEASE,
};

/// The grant workflows, for [`crate::Registry::builtin`].
pub(crate) fn workflows() -> Vec<std::sync::Arc<dyn Workflow>> {
    let mut out: Vec<std::sync::Arc<dyn Workflow>> = Vec::new();
    for scope in [Scope::Cluster, Scope::Project] {
        out.push(std::sync::Arc::new(Typed(ListBindings(scope))));
        out.push(std::sync::Arc::new(Typed(Grant(scope))));
        out.push(std::sync::Arc::new(Typed(Revoke(scope))));
    }
    out
}

/// Cluster or project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Cluster,
    Project,
}

impl Scope {
    fn input(self) -> &'static str {
        match self {
            Scope::Cluster => "cluster",
            Scope::Project => "project",
        }
    }
    fn kind(self) -> BindingKind {
        match self {
            Scope::Cluster => BindingKind::Cluster,
            Scope::Project => BindingKind::Project,
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Scope::Cluster => "crtb-ra-",
            Scope::Project => "prtb-ra-",
        }
    }
    /// The cluster or project the inputs name (`cluster=` or `project=`, whichever this scope takes).
    fn of<'a>(self, cluster: &'a Option<String>, project: &'a Option<String>) -> Option<&'a str> {
        match self {
            Scope::Cluster => cluster.as_deref(),
            Scope::Project => project.as_deref(),
        }
    }
}

/// The inputs of `grant-cluster-role` and `grant-project-role`, as people give them and approval requests store
/// them (each takes the one of `cluster`/`project` that fits it; the catalog refuses the other).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantInputs {
    /// The cluster, by id or display name (an id once filed).
    #[serde(default)]
    pub cluster: Option<String>,
    /// The project, `c-xxxxx:p-yyyyy` or `cluster/project` (an id once filed).
    #[serde(default)]
    pub project: Option<String>,
    /// The user, by id or username (an id once filed); or `group`.
    #[serde(default)]
    pub user: Option<String>,
    /// The group principal; or `user`.
    #[serde(default)]
    pub group: Option<String>,
    /// The role template (an id once filed).
    #[serde(default)]
    pub role: Option<String>,
    /// How long a time-bound grant lasts.
    #[serde(default)]
    pub duration: Option<String>,
    /// The binding's fixed name (set when the request is filed).
    #[serde(default)]
    pub binding: Option<String>,
    /// The grant an extension extends (set by `rancherctl grants extend`).
    #[serde(default)]
    pub extends: Option<String>,
    /// Why the role can grant roles: read by the runner's containment check, not by the workflow.
    #[serde(default, rename = "grants-roles")]
    grants_roles: Option<IgnoredAny>,
}

/// The inputs of `revoke-cluster-role` and `revoke-project-role`: a binding by name, or a role with a user or
/// group, in one cluster or project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeInputs {
    /// The cluster (an id once filed).
    #[serde(default)]
    pub cluster: Option<String>,
    /// The project (an id once filed).
    #[serde(default)]
    pub project: Option<String>,
    /// The user (an id once filed).
    #[serde(default)]
    pub user: Option<String>,
    /// The group principal.
    #[serde(default)]
    pub group: Option<String>,
    /// The role template (an id once filed).
    #[serde(default)]
    pub role: Option<String>,
    /// The binding's name.
    #[serde(default)]
    pub binding: Option<String>,
}

/// The inputs of `list-cluster-role-bindings` and `list-project-role-bindings`: at most the one place to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListBindingsInputs {
    /// Only this cluster.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Only this project.
    #[serde(default)]
    pub project: Option<String>,
}

/// A required input of a grant workflow, or the runner's usual words for its absence.
fn need<'a>(def: &WorkflowDef, name: &str, value: Option<&'a str>) -> Result<&'a str> {
    value.ok_or_else(|| bad(def, name, format!("is required (e.g. --input {name}=...)")))
}

const USER: InputSpec = InputSpec {
    name: "user",
    kind: InputKind::String,
    required: false,
    description: "the user, by id (u-xxxxx) or username (or give group)",
};
const GROUP: InputSpec = InputSpec {
    name: "group",
    kind: InputKind::String,
    required: false,
    description: "the group, by principal id (github_team://7) or name (or give user)",
};
const DURATION: InputSpec = InputSpec {
    name: "duration",
    kind: InputKind::String,
    required: false,
    description: "grant it for this long (30m, 8h, 7d), counted from execution; then it is revoked",
};
const BINDING_PINNED: InputSpec = InputSpec {
    name: "binding",
    kind: InputKind::String,
    required: false,
    description: "set when the request is filed: the binding's fixed name",
};
pub use crate::catalog::GRANTS_ROLES;
const EXTENDS: InputSpec = InputSpec {
    name: "extends",
    kind: InputKind::String,
    required: false,
    description: "set by `rancherctl grants extend`: the grant to extend by `duration`",
};

static LIST_CLUSTER: WorkflowDef = WorkflowDef {
    id: "list-cluster-role-bindings",
    title: "List cluster role bindings",
    description: "Who holds which role template in which cluster (cluster role template bindings), all pages.",
    inputs: &[InputSpec {
        name: "cluster",
        kind: InputKind::String,
        required: false,
        description: "only this cluster, by id or display name",
    }],
    output: "the bindings as the server sent them",
    default_approval: DefaultApproval::None,
    writes: false,
};
static LIST_PROJECT: WorkflowDef = WorkflowDef {
    id: "list-project-role-bindings",
    title: "List project role bindings",
    description: "Who holds which role template in which project (project role template bindings), all pages.",
    inputs: &[InputSpec {
        name: "project",
        kind: InputKind::String,
        required: false,
        description: "only this project: c-xxxxx:p-yyyyy or cluster/project",
    }],
    output: "the bindings as the server sent them",
    default_approval: DefaultApproval::None,
    writes: false,
};
static GRANT_CLUSTER: WorkflowDef = WorkflowDef {
    id: "grant-cluster-role",
    title: "Grant a cluster role",
    description: "Give a user or group a cluster role template in one cluster, optionally for a while (duration). Idempotent: an existing identical binding is reported, not duplicated.",
    inputs: &[
        InputSpec { name: "cluster", kind: InputKind::String, required: true, description: "the cluster, by id (c-xxxxx) or display name" },
        USER,
        GROUP,
        InputSpec { name: "role", kind: InputKind::String, required: true, description: "a cluster role template, by id (cluster-member) or display name" },
        DURATION,
        BINDING_PINNED,
        EXTENDS,
        GRANTS_ROLES,
    ],
    output: "the binding created, or the one that already existed",
    default_approval: DefaultApproval::Installer,
    writes: true,
};
static GRANT_PROJECT: WorkflowDef = WorkflowDef {
    id: "grant-project-role",
    title: "Grant a project role",
    description: "Give a user or group a project role template in one project, optionally for a while (duration). Idempotent: an existing identical binding is reported, not duplicated.",
    inputs: &[
        InputSpec { name: "project", kind: InputKind::String, required: true, description: "the project: c-xxxxx:p-yyyyy or cluster/project display names" },
        USER,
        GROUP,
        InputSpec { name: "role", kind: InputKind::String, required: true, description: "a project role template, by id (project-member) or display name" },
        DURATION,
        BINDING_PINNED,
        EXTENDS,
        GRANTS_ROLES,
    ],
    output: "the binding created, or the one that already existed",
    default_approval: DefaultApproval::Installer,
    writes: true,
};
static REVOKE_CLUSTER: WorkflowDef = WorkflowDef {
    id: "revoke-cluster-role",
    title: "Revoke a cluster role",
    description: "End a cluster membership: the bindings of a user or group to a role template in a cluster, or one binding by name. Nothing to remove is reported, not an error.",
    inputs: &[
        InputSpec { name: "cluster", kind: InputKind::String, required: true, description: "the cluster, by id or display name" },
        USER,
        GROUP,
        InputSpec { name: "role", kind: InputKind::String, required: false, description: "the cluster role template (with user or group)" },
        InputSpec { name: "binding", kind: InputKind::String, required: false, description: "or: the binding's name (crtb-xxxxx)" },
    ],
    output: "the bindings removed",
    default_approval: DefaultApproval::Installer,
    writes: true,
};
static REVOKE_PROJECT: WorkflowDef = WorkflowDef {
    id: "revoke-project-role",
    title: "Revoke a project role",
    description: "End a project membership: the bindings of a user or group to a role template in a project, or one binding by name. Nothing to remove is reported, not an error.",
    inputs: &[
        InputSpec { name: "project", kind: InputKind::String, required: true, description: "the project: c-xxxxx:p-yyyyy or cluster/project" },
        USER,
        GROUP,
        InputSpec { name: "role", kind: InputKind::String, required: false, description: "the project role template (with user or group)" },
        InputSpec { name: "binding", kind: InputKind::String, required: false, description: "or: the binding's name (prtb-xxxxx)" },
    ],
    output: "the bindings removed",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

fn bad(def: &WorkflowDef, name: &str, message: impl Into<String>) -> Error {
    Error::Input {
        workflow: def.id.into(),
        input: name.into(),
        message: message.into(),
    }
}

/// The `duration` input of any workflow that takes one, in seconds, if given (checked: a clear error names the
/// form).
pub(crate) fn duration_secs(def: &WorkflowDef, inputs: &Inputs) -> Result<Option<u64>> {
    /// Only the duration; the workflow's own struct checks the rest.
    #[derive(Deserialize)]
    struct Timed {
        #[serde(default)]
        duration: Option<String>,
    }
    duration_of(def, inputs.parse::<Timed>(def)?.duration.as_deref())
}

/// A parsed `duration` input in seconds.
fn duration_of(def: &WorkflowDef, duration: Option<&str>) -> Result<Option<u64>> {
    duration.map(|t| parse_duration_input(def, t)).transpose()
}

/// A `duration` input (`30m`, `8h`, `7d`) in seconds, or the error that names the form.
pub(crate) fn parse_duration_input(def: &WorkflowDef, text: &str) -> Result<u64> {
    rancher_approval::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|e| bad(def, "duration", e.to_string()))
}

/// The inputs of a time-bound `create-global-role-binding`, as its workflow parsed them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimedGlobal<'a> {
    /// The user (an id once filed).
    pub user: &'a str,
    /// The global role.
    pub role: &'a str,
    /// How long; `None` for an untimed create.
    pub duration: Option<&'a str>,
    /// The fixed binding name, set when filed.
    pub binding: Option<&'a str>,
    /// The grant an extension extends.
    pub extends: Option<&'a str>,
}

/// A fresh fixed binding name: the prefix and 12 random hex digits (valid as a Kubernetes name).
fn fresh_name(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// For a timed `create-global-role-binding`: fixes the binding name at submit. A name given by hand is refused.
pub(crate) fn pin_timed_global(def: &WorkflowDef, inputs: TimedGlobal<'_>, mut pinned: Pinned) -> Result<Pinned> {
    let extends = inputs.extends.is_some();
    let timed = inputs.duration.is_some();
    if extends && !timed {
        return Err(bad(def, "duration", "an extension needs `duration`: how much longer"));
    }
    if extends {
        return Ok(pinned);
    }
    if inputs.binding.is_some() {
        return Err(bad(def, "binding", "is set when the request is filed; leave it out"));
    }
    if timed {
        pinned.inputs["binding"] = json!(fresh_name("grb-ra-"));
    }
    Ok(pinned)
}

/// The key under which `prepare` tells the runner that the grant asked for is held already (with the words to say
/// so); the runner takes it out before anything is stored, and refuses the request when it needs approval.
pub(crate) const ALREADY_HELD: &str = "\u{0}already-held";

/// Marks a new global role binding (not an extension) that the user already holds under some binding: it would
/// change nothing once approved. `inputs.user` is the user's id.
pub(crate) async fn refuse_held_global(
    session: &Session,
    def: &WorkflowDef,
    inputs: TimedGlobal<'_>,
    pinned: &mut Pinned,
) -> Result<()> {
    if inputs.extends.is_some() {
        return Ok(());
    }
    let (user, role) = (inputs.user, inputs.role);
    let held = bindings::all_global(session)
        .await?
        .into_iter()
        .find(|b| b.role == role && b.user.as_deref() == Some(user));
    match held {
        Some(b) => {
            let who = pinned
                .targets
                .iter()
                .find(|(id, _)| id == user)
                .map(|(_, name)| name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("user {user}"));
            let said = format!(
                "{}: {who} already holds the global role {role} through binding {}; nothing to grant. To make it time-bound \
                 instead, delete that binding first (`rancherctl run delete-global-role-binding --input binding={}`)",
                def.id, b.name, b.name
            );
            pinned.inputs[ALREADY_HELD] = json!(said);
            Ok(())
        }
        None => Ok(()),
    }
}

/// Who a grant's inputs name: `(user id, group principal)`, exactly one of them.
fn subject(
    def: &WorkflowDef,
    user: &Option<String>,
    group: &Option<String>,
) -> Result<(Option<String>, Option<String>)> {
    match (user.as_deref(), group.as_deref()) {
        (Some(u), None) => Ok((Some(u.to_string()), None)),
        (None, Some(g)) => Ok((None, Some(g.to_string()))),
        (Some(_), Some(_)) => Err(bad(
            def,
            "group",
            "give either user or group, not both (a binding has one subject)",
        )),
        (None, None) => Err(bad(
            def,
            "user",
            "is required: give user=<id or username> or group=<principal id or name>",
        )),
    }
}

/// Whether an existing binding is the one described (same kind, scope, role and subject).
fn same(b: &RoleBinding, nb: &bindings::NewBinding) -> bool {
    b.kind == nb.kind && b.scope == nb.scope && b.role == nb.role && b.user == nb.user && b.group == nb.group
}

fn grant_of(nb: &bindings::NewBinding, duration: Option<u64>) -> Option<GrantChange> {
    let secs = duration?;
    Some(GrantChange::New(NewGrant {
        kind: nb.kind,
        binding: nb.name.clone(),
        namespace: (!nb.namespace.is_empty()).then(|| nb.namespace.clone()),
        scope: (!nb.scope.is_empty()).then(|| nb.scope.clone()),
        subject_kind: if nb.user.is_some() {
            SubjectKind::User
        } else {
            SubjectKind::Group
        },
        subject: nb.user.clone().or(nb.group.clone()).unwrap_or_default(),
        role: nb.role.clone(),
        duration_secs: secs,
    }))
}

/// Whether a failed write may have been applied (its answer was lost or the server was busy).
fn outcome_unknown(e: &rancher_api::Error) -> bool {
    matches!(
        e,
        rancher_api::Error::Transport { .. } | rancher_api::Error::Timeout { .. }
    ) || matches!(e.status(), Some(429 | 500 | 502 | 503 | 504))
}

/// Rancher's webhook refuses a binding granting more than the caller holds. Global role bindings: 403 "errors due
/// to escalation", bypassed by `bind` on globalroles (rancher/webhook .../globalrolebinding/validator.go). Cluster and
/// project role template bindings: 422 `Invalid` with Kubernetes' "attempting to grant RBAC permissions not
/// currently held", and no verb bypasses it (.../{cluster,project}roletemplatebinding/validator.go,
/// pkg/auth/escalation.go `SetEscalationResponse`, release/v0.4 to v0.10).
fn refused_words(nb: &bindings::NewBinding, e: &rancher_api::Error) -> Option<String> {
    let escalation_422 = e.status() == Some(422)
        && e.server_error()
            .and_then(|s| s.message())
            .is_some_and(|m| m.contains("attempting to grant RBAC permissions not currently held"));
    if !e.is_forbidden() && !escalation_422 {
        return None;
    }
    let why = if escalation_422 {
        "the account running this workflow does not hold every permission of that role there itself, and Rancher lets nobody grant a cluster or project role beyond their own permissions (no verb bypasses this check)"
    } else {
        "the account running this workflow may not grant permissions it does not hold itself (or may not manage these bindings)"
    };
    Some(format!(
        "Rancher refused to give {} the {} role `{}`{}: {why}. Run it with an admin's API key. Server said: {e}",
        subject_words(nb),
        nb.kind.as_str(),
        nb.role,
        if nb.scope.is_empty() {
            String::new()
        } else {
            format!(" in {}", nb.scope)
        },
    ))
}

fn subject_words(nb: &bindings::NewBinding) -> String {
    match (&nb.user, &nb.group) {
        (Some(u), _) => format!("user {u}"),
        (_, Some(g)) => format!("group {g}"),
        _ => "nobody".into(),
    }
}

/// The existing bindings identical to `nb` under another name (a membership given by other means).
async fn identical_elsewhere(exec: &Exec<'_>, nb: &bindings::NewBinding) -> Result<Vec<RoleBinding>> {
    let all = match nb.kind {
        BindingKind::Global => bindings::all_global(exec.session()).await?,
        kind => bindings::list(exec.session(), kind).await?,
    };
    Ok(all.into_iter().filter(|b| b.name != nb.name && same(b, nb)).collect())
}

/// Creates `nb` once: its own object (same fixed name) found after a replay is reported as created; an identical
/// binding under another name is reported and nothing is created (it is not time-bound: no grant is recorded);
/// a lost answer is checked by reading the object back before anything is sent again.
async fn grant_binding(exec: &mut Exec<'_>, nb: bindings::NewBinding, duration: Option<u64>) -> Result<Report> {
    let what = format!(
        "{} the {} role {}{}",
        subject_words(&nb),
        nb.kind.as_str(),
        nb.role,
        if nb.scope.is_empty() {
            String::new()
        } else {
            format!(" in {}", nb.scope)
        }
    );
    let until = duration
        .map(|d| format!(" for {}", rancher_approval::format_duration(d)))
        .unwrap_or_default();
    let ns = nb.namespace.clone();
    if let Some(own) = bindings::get(exec.session(), nb.kind, &ns, &nb.name).await? {
        if !same(&own, &nb) {
            return Err(Error::Refused(format!(
                "a binding named {} already exists but grants {} the role {}: not ours; file the request again",
                nb.name,
                own.subject(),
                own.role
            )));
        }
        return Ok(Report::new(
            format!("gave {what}{until} (binding {}; found after a replay)", nb.name),
            json!({"created": true, "reconciled": true, "binding": own.raw}),
        )
        .with_grant(grant_of(&nb, duration)));
    }
    if let Some(other) = identical_elsewhere(exec, &nb).await?.into_iter().next() {
        let note = if duration.is_some() {
            "; that binding is not time-bound, so nothing will be revoked"
        } else {
            ""
        };
        return Ok(Report::new(
            format!(
                "{} already holds the {} role {}{} (binding {}); nothing created{note}",
                subject_words(&nb),
                nb.kind.as_str(),
                nb.role,
                if nb.scope.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", nb.scope)
                },
                other.name
            ),
            json!({"created": false, "binding": other.raw}),
        ));
    }
    for attempt in 0..2 {
        match bindings::create(exec, &nb).await {
            Ok(None) => {
                return Ok(Report::new(
                    format!("would give {what}{until} (binding {})", nb.name),
                    json!({"created": false, "dry_run": true}),
                ))
            }
            Ok(Some(created)) => {
                let effect = effect(exec.session(), &nb).await?;
                return Ok(Report::new(
                    effect.summary(&format!("gave {what}{until} (binding {})", nb.name)),
                    json!({"created": true, "binding": created.raw, "effective": effect.effective(), "status": effect.status()}),
                )
                .with_grant(grant_of(&nb, duration)));
            }
            Err(Error::Api(e)) if e.is_conflict() => {
                // Ours (a create whose answer was lost and resent), or Rancher's duplicate refusal.
                if let Some(own) = bindings::get(exec.session(), nb.kind, &ns, &nb.name)
                    .await?
                    .filter(|b| same(b, &nb))
                {
                    return Ok(Report::new(
                        format!("gave {what}{until} (binding {}; confirmed)", nb.name),
                        json!({"created": true, "reconciled": true, "binding": own.raw}),
                    )
                    .with_grant(grant_of(&nb, duration)));
                }
                let existing = identical_elsewhere(exec, &nb).await?.into_iter().next();
                return Ok(Report::new(
                    format!(
                        "{} already holds the {} role {}; the server refused a duplicate",
                        subject_words(&nb),
                        nb.kind.as_str(),
                        nb.role
                    ),
                    json!({"created": false, "binding": existing.map(|b| b.raw)}),
                ));
            }
            Err(Error::Api(e)) if outcome_unknown(&e) => {
                tracing::warn!(error = %e, attempt, "create answer lost; reading the binding back");
                if let Some(own) = bindings::get(exec.session(), nb.kind, &ns, &nb.name)
                    .await?
                    .filter(|b| same(b, &nb))
                {
                    return Ok(Report::new(
                        format!(
                            "gave {what}{until} (binding {}; confirmed after a lost answer)",
                            nb.name
                        ),
                        json!({"created": true, "reconciled": true, "binding": own.raw}),
                    )
                    .with_grant(grant_of(&nb, duration)));
                }
                if attempt == 1 {
                    return Err(Error::Api(e));
                }
            }
            Err(Error::Api(e)) => match refused_words(&nb, &e) {
                Some(words) => return Err(Error::Refused(words)),
                None => return Err(Error::Api(e)),
            },
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// What Rancher says about a new binding: in effect, not (yet) in effect, or nothing at all.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// `status.summary` is `Completed`.
    Effective,
    /// Rancher reports a status other than `Completed` (`Error`, or nothing yet once the wait ran out).
    NotEffective(String),
    /// This kind on this version has no status (see [`reports_status`]).
    Unreported(String),
}

impl Effect {
    fn effective(&self) -> Option<bool> {
        match self {
            Effect::Effective => Some(true),
            Effect::NotEffective(_) => Some(false),
            Effect::Unreported(_) => None,
        }
    }
    fn status(&self) -> Value {
        match self {
            Effect::Effective => json!("Completed"),
            Effect::NotEffective(s) => json!(s),
            Effect::Unreported(_) => Value::Null,
        }
    }
    fn summary(&self, done: &str) -> String {
        match self {
            Effect::Effective => format!("{done}; Rancher reports it in effect"),
            Effect::NotEffective(s) => format!(
                "approved, not effective: {done}, but Rancher has not reported it in effect (status.summary {s}); the binding stays, and Rancher applies it when the cluster's agent is connected again; check with `rancherctl run list-cluster-role-bindings`"
            ),
            Effect::Unreported(why) => format!("{done}; {why}"),
        }
    }
}

/// Whether Rancher reports a binding of `kind` in effect: `status.summary` on GlobalRoleBindings and
/// ClusterRoleTemplateBindings from 2.11 (rancher/rancher pkg/apis/management.cattle.io/v3/authz_types.go
/// `GlobalRoleBindingStatus`, `ClusterRoleTemplateBindingStatus`: absent on release/v2.8-v2.10); never on
/// ProjectRoleTemplateBindings (no status through release/v2.13).
fn reports_status(session: &Session, kind: BindingKind) -> bool {
    kind != BindingKind::Project && session.version.at_least(2, 11)
}

/// How long a grant waits for Rancher to report its binding in effect, polled with these pauses (about 15 s).
const EFFECT_WAITS_MS: [u64; 9] = [0, 250, 500, 1000, 1500, 2000, 2500, 3000, 4000];

/// Waits until Rancher reports the new binding in effect (`Completed`) or failed (`Error`), or the wait runs out.
/// Rancher sets `Completed` only when both its local and its downstream controllers have made the binding's RBAC
/// objects (pkg/controllers/management/auth/crtb_handler.go `updateStatus`, pkg/controllers/managementuser/rbac/
/// crtb_handler.go): a cluster whose agent is away leaves it empty.
async fn effect(session: &Session, nb: &bindings::NewBinding) -> Result<Effect> {
    if !reports_status(session, nb.kind) {
        let why = if nb.kind == BindingKind::Project {
            "Rancher does not report when a project binding takes effect".to_string()
        } else {
            format!(
                "Rancher {}.{} does not report when a binding takes effect (2.11+ does)",
                session.version.major, session.version.minor
            )
        };
        return Ok(Effect::Unreported(why));
    }
    let mut last = String::new();
    for pause in EFFECT_WAITS_MS {
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        let Some(b) = bindings::get(session, nb.kind, &nb.namespace, &nb.name).await? else {
            return Ok(Effect::NotEffective("none: the binding is gone".into()));
        };
        last = b.raw.status_summary().unwrap_or_default().to_string();
        match last.as_str() {
            "Completed" => return Ok(Effect::Effective),
            "Error" => break,
            _ => {}
        }
    }
    Ok(Effect::NotEffective(if last.is_empty() {
        "not set".into()
    } else {
        format!("`{last}`")
    }))
}

/// Runs an approved `grants extend`: the binding must still be there and be the one granted.
async fn extend(exec: &Exec<'_>, nb: &bindings::NewBinding, grant: &str, duration: Option<u64>) -> Result<Report> {
    let by = duration.ok_or_else(|| Error::Refused("an extension needs a duration".into()))?;
    match bindings::get(exec.session(), nb.kind, &nb.namespace, &nb.name).await? {
        Some(b) if same(&b, nb) && !b.deleting => Ok(Report::new(
            format!("extended grant {grant} ({} the {} role {}) by {}", subject_words(nb), nb.kind.as_str(), nb.role, rancher_approval::format_duration(by)),
            json!({"extended": grant, "by_secs": by, "binding": b.raw}),
        )
        .with_grant(Some(GrantChange::Extend { grant: grant.to_string(), by_secs: by, binding: Some(nb.name.clone()) }))),
        _ => Err(Error::Refused(format!("grant {grant} cannot be extended: its binding {} is gone or changed on the server; file a new grant instead", nb.name))),
    }
}

/// `create-global-role-binding` with a `duration`: the binding under its fixed name, recorded as a grant.
pub(crate) async fn create_timed_global(
    exec: &mut Exec<'_>,
    def: &WorkflowDef,
    inputs: TimedGlobal<'_>,
) -> Result<Report> {
    let user = exec.resolve_user(inputs.user).await?.id;
    let role = exec.resolve_role(inputs.role).await?;
    let name = inputs
        .binding
        .map(str::to_string)
        .unwrap_or_else(|| fresh_name("grb-ra-"));
    let nb = bindings::NewBinding {
        kind: BindingKind::Global,
        name,
        namespace: String::new(),
        scope: String::new(),
        role,
        user: Some(user),
        group: None,
    };
    let duration = duration_of(def, inputs.duration)?;
    match inputs.extends {
        Some(grant) => extend(exec, &nb, grant, duration).await,
        None => grant_binding(exec, nb, duration).await,
    }
}

/// After a crash, for a timed `create-global-role-binding`: see [`Grant`]'s `applied`.
pub(crate) async fn applied_timed_global() -> Result<Option<bool>> {
    // Running again finds its own binding by its fixed name and reports it, so the grant and its due time are
    // recorded with the outcome; nothing is created twice.
    Ok(Some(false))
}

/// `grant-cluster-role` and `grant-project-role`.
struct Grant(Scope);

impl Grant {
    /// The binding the stored (pinned) inputs describe; the project's namespace is looked up.
    async fn binding(&self, session: &Session, inputs: &GrantInputs) -> Result<bindings::NewBinding> {
        let def = self.def();
        let scope = self.scope(inputs)?.to_string();
        let namespace = match self.0 {
            Scope::Cluster => scope.clone(),
            Scope::Project => resolve::project(session, &scope).await?.namespace,
        };
        let (user, group) = subject(def, &inputs.user, &inputs.group)?;
        let name = need(def, "binding", inputs.binding.as_deref())?.to_string();
        Ok(bindings::NewBinding {
            kind: self.0.kind(),
            name,
            namespace,
            scope,
            role: need(def, "role", inputs.role.as_deref())?.to_string(),
            user,
            group,
        })
    }

    /// The cluster or project, required.
    fn scope<'a>(&self, inputs: &'a GrantInputs) -> Result<&'a str> {
        need(self.def(), self.0.input(), self.0.of(&inputs.cluster, &inputs.project))
    }
}

#[async_trait]
impl TypedWorkflow for Grant {
    type Inputs = GrantInputs;

    fn def(&self) -> &'static WorkflowDef {
        match self.0 {
            Scope::Cluster => &GRANT_CLUSTER,
            Scope::Project => &GRANT_PROJECT,
        }
    }

    fn check(&self, inputs: &GrantInputs) -> Result<()> {
        let def = self.def();
        subject(def, &inputs.user, &inputs.group)?;
        let d = duration_of(def, inputs.duration.as_deref())?;
        if inputs.extends.is_some() && d.is_none() {
            return Err(bad(def, "duration", "an extension needs `duration`: how much longer"));
        }
        Ok(())
    }

    async fn prepare(&self, session: &Session, given: GrantInputs, raw: Inputs) -> Result<Pinned> {
        let def = self.def();
        let mut inputs = raw;
        let extends = given.extends.is_some();
        if !extends && given.binding.is_some() {
            return Err(bad(def, "binding", "is set when the request is filed; leave it out"));
        }
        let scope_text = self.scope(&given)?.to_string();
        let (scope_id, scope_label) = match self.0 {
            Scope::Cluster => {
                let c = resolve::cluster(session, &scope_text).await?;
                (c.id, c.name)
            }
            Scope::Project => {
                let p = resolve::project(session, &scope_text).await?;
                (p.id, p.name)
            }
        };
        inputs[self.0.input()] = json!(scope_id);
        let context = self.0.input();
        let role = resolve::role_template(session, need(def, "role", given.role.as_deref())?, context).await?;
        inputs["role"] = json!(role.id);
        if duration_of(def, given.duration.as_deref())?.is_some() {
            containment::mark(session, self.0.kind(), &role.id, &mut inputs).await?;
        } else if let Some(m) = inputs.as_object_mut() {
            m.remove(containment::INPUT);
        }
        let mut targets = Vec::new();
        match subject(def, &given.user, &given.group)? {
            (Some(u), None) => {
                let user = Exec::new(session, true).resolve_user(&u).await?;
                targets.push((user.id.clone(), user.username.clone()));
                inputs["user"] = json!(user.id);
            }
            (_, Some(g)) => {
                let group = resolve::group(session, &g).await?;
                targets.push((group.clone(), g.clone()));
                inputs["group"] = json!(group);
            }
            (None, None) => unreachable!("checked by subject()"),
        }
        if !extends {
            inputs["binding"] = json!(fresh_name(self.0.prefix()));
            // A membership held already would make the grant a no-op after someone approved it: the runner refuses it
            // now when it needs approval.
            let nb = self.binding(session, &inputs.parse(def)?).await?;
            if let Some(held) = identical_elsewhere(&Exec::new(session, true), &nb)
                .await?
                .into_iter()
                .next()
            {
                let who = targets
                    .first()
                    .map(|(_, name)| name.clone())
                    .unwrap_or_else(|| subject_words(&nb));
                inputs[ALREADY_HELD] = json!(format!(
                    "{}: {who} already holds {} in {} through binding {}; nothing to grant. \
                     To make it time-bound instead, revoke that binding first (`rancherctl run {} --input binding={}`)",
                    def.id,
                    nb.role,
                    if scope_text == scope_id {
                        scope_id.clone()
                    } else {
                        format!("{scope_text} ({scope_id})")
                    },
                    held.name,
                    match self.0 {
                        Scope::Cluster => "revoke-cluster-role",
                        Scope::Project => "revoke-project-role",
                    },
                    held.name
                ));
            }
        }
        tracing::debug!(scope = %scope_id, label = %scope_label, "grant pinned");
        Ok(Pinned { inputs, targets })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: GrantInputs, _raw: &Inputs) -> Result<Report> {
        let def = self.def();
        let nb = self.binding(exec.session(), &inputs).await?;
        let duration = duration_of(def, inputs.duration.as_deref())?;
        match inputs.extends.as_deref() {
            Some(grant) => extend(exec, &nb, grant, duration).await,
            None => grant_binding(exec, nb, duration).await,
        }
    }

    async fn applied(&self, session: &Session, inputs: GrantInputs, _raw: &Inputs) -> Result<Option<bool>> {
        let def = self.def();
        if inputs.extends.is_some() {
            // The extension lives in the store, recorded with the outcome: running again is harmless.
            return Ok(Some(false));
        }
        let nb = self.binding(session, &inputs).await?;
        match bindings::get(session, nb.kind, &nb.namespace, &nb.name).await? {
            // Its own object is there: without a duration that is the whole change; with one, running again
            // finds it and reports it, so the grant is recorded with the outcome (nothing is created twice).
            Some(b) if same(&b, &nb) => Ok(Some(duration_of(def, inputs.duration.as_deref())?.is_none())),
            Some(_) => Ok(None),
            None => Ok(Some(false)),
        }
    }
}

/// `revoke-cluster-role` and `revoke-project-role`.
struct Revoke(Scope);

impl Revoke {
    async fn targets(&self, session: &Session, inputs: &RevokeInputs) -> Result<Vec<RoleBinding>> {
        let def = self.def();
        let scope = self.scope(inputs)?;
        let all = bindings::list(session, self.0.kind()).await?;
        let in_scope = all.into_iter().filter(|b| b.scope == scope);
        match (inputs.binding.as_deref(), inputs.role.as_deref()) {
            (Some(name), _) => Ok(in_scope.filter(|b| b.name == name).collect()),
            (None, Some(role)) => {
                let (user, group) = subject(def, &inputs.user, &inputs.group)?;
                Ok(in_scope
                    .filter(|b| b.role == role && b.user == user && b.group == group)
                    .collect())
            }
            (None, None) => Err(bad(
                def,
                "role",
                "give binding=<name>, or role=<role template> with user or group",
            )),
        }
    }

    /// The cluster or project, required.
    fn scope<'a>(&self, inputs: &'a RevokeInputs) -> Result<&'a str> {
        need(self.def(), self.0.input(), self.0.of(&inputs.cluster, &inputs.project))
    }
}

#[async_trait]
impl TypedWorkflow for Revoke {
    type Inputs = RevokeInputs;

    fn def(&self) -> &'static WorkflowDef {
        match self.0 {
            Scope::Cluster => &REVOKE_CLUSTER,
            Scope::Project => &REVOKE_PROJECT,
        }
    }

    fn check(&self, inputs: &RevokeInputs) -> Result<()> {
        let def = self.def();
        if inputs.binding.is_none() {
            subject(def, &inputs.user, &inputs.group)?;
            if inputs.role.is_none() {
                return Err(bad(
                    def,
                    "role",
                    "give binding=<name>, or role=<role template> with user or group",
                ));
            }
        }
        Ok(())
    }

    async fn prepare(&self, session: &Session, given: RevokeInputs, raw: Inputs) -> Result<Pinned> {
        let def = self.def();
        let mut inputs = raw;
        let scope_text = self.scope(&given)?.to_string();
        let scope_id = match self.0 {
            Scope::Cluster => resolve::cluster(session, &scope_text).await?.id,
            Scope::Project => resolve::project(session, &scope_text).await?.id,
        };
        inputs[self.0.input()] = json!(scope_id);
        let mut targets = Vec::new();
        if given.binding.is_none() {
            let role =
                resolve::role_template(session, need(def, "role", given.role.as_deref())?, self.0.input()).await?;
            inputs["role"] = json!(role.id);
            match subject(def, &given.user, &given.group)? {
                (Some(u), _) => {
                    let user = Exec::new(session, true).resolve_user(&u).await?;
                    targets.push((user.id.clone(), user.username.clone()));
                    inputs["user"] = json!(user.id);
                }
                (_, Some(g)) => {
                    let group = resolve::group(session, &g).await?;
                    targets.push((group.clone(), g));
                    inputs["group"] = json!(group);
                }
                _ => {}
            }
        }
        for b in self.targets(session, &inputs.parse(def)?).await? {
            if let Some(s) = b.user.or(b.group) {
                if !targets.iter().any(|(id, _)| *id == s) {
                    targets.push((s.clone(), s));
                }
            }
        }
        Ok(Pinned { inputs, targets })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: RevokeInputs, _raw: &Inputs) -> Result<Report> {
        let found = self.targets(exec.session(), &inputs).await?;
        if found.is_empty() {
            return Ok(Report::new(
                "nothing to revoke: no such binding",
                json!({"deleted": []}),
            ));
        }
        let mut deleted = Vec::new();
        for b in &found {
            if bindings::delete(exec, b.kind, &b.namespace, &b.name).await? {
                deleted.push(b.name.clone());
            }
        }
        let verb = if exec.is_dry_run() { "would revoke" } else { "revoked" };
        Ok(Report::new(
            format!("{verb} {}", deleted.join(", ")),
            json!({"deleted": deleted, "bindings": found.into_iter().map(|b| b.raw).collect::<Vec<_>>()}),
        ))
    }

    async fn applied(&self, session: &Session, inputs: RevokeInputs, _raw: &Inputs) -> Result<Option<bool>> {
        Ok(Some(self.targets(session, &inputs).await?.is_empty()))
    }
}

/// `list-cluster-role-bindings` and `list-project-role-bindings`.
struct ListBindings(Scope);

#[async_trait]
impl TypedWorkflow for ListBindings {
    type Inputs = ListBindingsInputs;

    fn def(&self) -> &'static WorkflowDef {
        match self.0 {
            Scope::Cluster => &LIST_CLUSTER,
            Scope::Project => &LIST_PROJECT,
        }
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: ListBindingsInputs, _raw: &Inputs) -> Result<Report> {
        let session = exec.session();
        let only = match self.0.of(&inputs.cluster, &inputs.project) {
            None => None,
            Some(text) => Some(match self.0 {
                Scope::Cluster => resolve::cluster(session, text).await?.id,
                Scope::Project => resolve::project(session, text).await?.id,
            }),
        };
        let mut all = bindings::list(session, self.0.kind()).await?;
        all.retain(|b| only.as_ref().is_none_or(|s| *s == b.scope));
        // Names next to the ids: the place's display name and the user's username (one list each).
        let places: std::collections::HashMap<String, String> = match self.0 {
            Scope::Cluster => resolve::clusters(session)
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
            Scope::Project => {
                let clusters: std::collections::HashMap<String, String> = resolve::clusters(session)
                    .await?
                    .into_iter()
                    .map(|c| (c.id, c.name))
                    .collect();
                resolve::projects(session)
                    .await?
                    .into_iter()
                    .map(|p| {
                        let cluster = clusters.get(&p.cluster).cloned().unwrap_or_else(|| p.cluster.clone());
                        (p.id, format!("{cluster}/{}", p.name))
                    })
                    .collect()
            }
        };
        let mut usernames = if all.iter().any(|b| b.user.is_some()) {
            exec.usernames().await?
        } else {
            Default::default()
        };
        usernames.extend(crate::listing::group_names(session, all.iter().filter_map(|b| b.group.clone())).await);
        let rows = all
            .iter()
            .map(|b| {
                let (kind, who, username) = match (&b.user, &b.group) {
                    (Some(u), _) => (
                        crate::listing::subject_cell(&usernames, u),
                        u.clone(),
                        usernames.get(u).cloned().unwrap_or_default(),
                    ),
                    (None, Some(g)) => (crate::listing::group_cell(&usernames, g), g.clone(), String::new()),
                    _ => (String::new(), String::new(), String::new()),
                };
                vec![
                    b.name.clone(),
                    places.get(&b.scope).cloned().unwrap_or_default(),
                    b.scope.clone(),
                    b.role.clone(),
                    kind,
                    who,
                    username,
                ]
            })
            .collect();
        let columns = [
            "NAME",
            if self.0 == Scope::Cluster {
                "CLUSTER NAME"
            } else {
                "PROJECT NAME"
            },
            if self.0 == Scope::Cluster { "CLUSTER" } else { "PROJECT" },
            "ROLE",
            "SUBJECT",
            "ID",
            "USERNAME",
        ];
        let n = all.len();
        Ok(Report::new(
            format!("{n} {} role bindings", self.0.input()),
            Value::Array(
                all.into_iter()
                    .map(|b| serde_json::to_value(&b.raw).unwrap_or(Value::Null))
                    .collect(),
            ),
        )
        .with_table(Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }))
    }
}

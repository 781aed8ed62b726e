//! `offboard-user`: for one user, the plan of everything to remove (global, cluster and project role bindings,
//! every token, and disabling the user) is pinned at submit and shown to approvers; execution applies exactly that
//! plan, once, and reports each step. It refuses the caller and the last admin.

use async_trait::async_trait;
use rancher_api::requests::{
    RkClusterroletemplatebindingsDelete, RkGlobalrolebindingsDelete, RkMgmttokensDelete,
    RkProjectroletemplatebindingsDelete, RkTokensDelete, RkUsersPatch,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::inventory::{Binding, Inventory, Names, Person, Scope};
use super::tokens::each_token;
use super::{require_rk, write};
use crate::catalog::{DefaultApproval, InputKind, InputSpec, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, TypedWorkflow};

static OFFBOARD_USER: WorkflowDef = WorkflowDef {
    id: "offboard-user",
    title: "Offboard a user",
    description: "Removes one user's access: every global, cluster and project role binding of the user, every token, and disables the user (Rancher 2.13+, where the RK-API serves users). The plan is pinned at submit and shown to approvers; execution applies exactly that plan, once, and reports each step. Refuses the caller and the last admin. A dry run shows the plan.",
    inputs: &[
        InputSpec { name: "user", kind: InputKind::String, required: true, description: "the user (id or username)" },
        InputSpec { name: "plan", kind: InputKind::Json, required: false, description: "set at submit: the steps approvers review (not given by people)" },
    ],
    output: "each step with its outcome (done, already done, failed)",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
enum Step {
    /// Delete a binding (`grb`, `crtb`, `prtb`).
    DeleteBinding {
        kind: String,
        namespace: String,
        name: String,
        role: String,
        scope: String,
    },
    /// Delete a token (ext tokens as `ext/<name>`).
    DeleteToken { name: String },
    /// Set `enabled: false` on the user.
    DisableUser { user: String },
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::DeleteBinding {
                kind,
                namespace,
                name,
                role,
                scope,
            } => {
                let at = if namespace.is_empty() {
                    name.clone()
                } else {
                    format!("{namespace}/{name}")
                };
                format!("delete {kind} {at} ({role}, {scope})")
            }
            Step::DeleteToken { name } => format!("delete token {name}"),
            Step::DisableUser { user } => format!("disable user {user}"),
        }
    }
}

fn binding_step(b: &Binding, n: &Names) -> Step {
    Step::DeleteBinding {
        kind: b.kind.into(),
        namespace: n.text(b.namespace).into(),
        name: b.name.to_string(),
        role: n.text(b.role).into(),
        scope: b.scope.label(n),
    }
}

/// The user's plan, read from the server now, after the refusals (the caller, the last admin).
async fn plan(session: &Session, user: &str) -> Result<(String, String, Vec<Step>)> {
    plan_and_groups(session, user)
        .await
        .map(|(id, name, steps, _)| (id, name, steps))
}

/// The plan, and the grants that reach the user through its groups (from its UserAttribute, see
/// review/inventory.rs): bindings of a whole group are not the user's to delete, so approvers see them apart.
async fn plan_and_groups(session: &Session, user: &str) -> Result<(String, String, Vec<Step>, Vec<String>)> {
    let id = OFFBOARD_USER.id;
    let inv = Inventory::index(session, true).await?;
    // The users an admin global role binding names, found once (not once per user).
    let n = &inv.names;
    let admins: std::collections::HashSet<&str> = inv
        .bindings
        .iter()
        .filter(|b| b.scope == Scope::Global && n.text(b.role) == "admin")
        .filter_map(|b| b.user.map(|u| n.text(u)))
        .collect();
    // The users stream past: only the target (the user with that id, else the first with that username) and the
    // enabled admins' ids are kept.
    let (mut by_id, mut by_name) = (None::<Person>, None::<Person>);
    let mut enabled_admins = Vec::new();
    super::inventory::each_user(session, |p| {
        if p.enabled && admins.contains(p.id.as_str()) {
            enabled_admins.push(p.id.clone());
        }
        if p.id == user {
            by_id = Some(p);
        } else if by_name.is_none() && p.username == user {
            by_name = Some(p);
        }
        Ok(())
    })
    .await?;
    let person = &by_id.or(by_name).ok_or_else(|| Error::Input {
        workflow: id.into(),
        input: "user".into(),
        message: format!("no user has the id or username `{user}`; `rancherctl run list-users` shows them"),
    })?;
    if person.id == session.principal.id {
        return Err(Error::Refused(format!(
            "{id}: you cannot offboard yourself ({}); ask another admin to run it",
            person.id
        )));
    }
    if admins.contains(person.id.as_str()) {
        let others = enabled_admins.iter().filter(|a| **a != person.id).count();
        if others == 0 {
            return Err(Error::Refused(format!(
                "{id}: {} is the last enabled admin; offboarding it would leave nobody able to manage Rancher. Give another user the admin global role first",
                person.id
            )));
        }
    }
    let mut steps: Vec<Step> = inv
        .bindings
        .iter()
        .filter(|b| b.user.is_some_and(|u| n.text(u) == person.id))
        .map(|b| binding_step(b, n))
        .collect();
    let mut tokens = Vec::new();
    each_token(session, &crate::progress::Silent, |t| {
        if t.user == person.id {
            tokens.push(t.name);
        }
    })
    .await?;
    tokens.sort();
    steps.extend(tokens.into_iter().map(|name| Step::DeleteToken { name }));
    if super::rk_users(session) && person.enabled {
        steps.push(Step::DisableUser {
            user: person.id.clone(),
        });
    }
    let as_of = inv
        .groups_as_of(&person.id)
        .map(|t| format!(" (group data as of {})", t.to_rfc3339()))
        .unwrap_or_default();
    let through_groups = inv
        .grants_of(person)
        .filter_map(|(b, g)| {
            g.map(|g| {
                format!(
                    "{} {} through group {g} ({}){as_of}",
                    b.scope.label(n),
                    n.text(b.role),
                    b.id(n)
                )
            })
        })
        .collect();
    Ok((person.id.clone(), person.username.clone(), steps, through_groups))
}

/// Sends one step (a dry run records it); `Ok(false)` when it was already done (404).
async fn apply(exec: &mut Exec<'_>, step: &Step) -> Result<bool> {
    let r = match step {
        Step::DeleteBinding {
            kind, namespace, name, ..
        } => match kind.as_str() {
            "grb" => write(exec, &RkGlobalrolebindingsDelete::new(name)).await,
            "crtb" => write(exec, &RkClusterroletemplatebindingsDelete::new(namespace, name)).await,
            "prtb" => write(exec, &RkProjectroletemplatebindingsDelete::new(namespace, name)).await,
            other => {
                return Err(Error::Refused(format!(
                    "offboard-user: unknown binding kind `{other}` in the plan"
                )))
            }
        },
        Step::DeleteToken { name } => match name.strip_prefix("ext/") {
            Some(ext) => write(exec, &RkTokensDelete::new(ext)).await,
            None => write(exec, &RkMgmttokensDelete::new(name)).await,
        },
        Step::DisableUser { user } => write(exec, &RkUsersPatch::new(user, json!({"enabled": false}))).await,
    };
    match r {
        Ok(_) => Ok(true),
        Err(Error::Api(e)) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The inputs of `offboard-user`, as people give them and approval requests store them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffboardInputs {
    /// The user, by id or username (an id once the request is filed).
    pub user: String,
    /// The plan pinned at submit (set by the runner, never by people). One this version cannot read counts as
    /// none, so the run is refused rather than guessed.
    #[serde(default, deserialize_with = "readable_or_none")]
    plan: Option<PinnedPlan>,
}

/// The plan a filed request stores: its steps, and what approvers were shown.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct PinnedPlan {
    /// The steps, run exactly as pinned.
    #[serde(default, deserialize_with = "readable_or_none")]
    steps: Option<Vec<Step>>,
}

/// Reads a stored value, or `None` when this version cannot read it.
fn readable_or_none<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

impl OffboardInputs {
    fn pinned_plan(&self) -> Option<Vec<Step>> {
        self.plan.as_ref().and_then(|p| p.steps.clone())
    }
}

/// The `offboard-user` workflow.
pub struct OffboardUser;

#[async_trait]
impl TypedWorkflow for OffboardUser {
    type Inputs = OffboardInputs;

    fn def(&self) -> &'static WorkflowDef {
        &OFFBOARD_USER
    }

    async fn prepare(&self, session: &Session, inputs: OffboardInputs, raw: Inputs) -> Result<Pinned> {
        require_rk(OFFBOARD_USER.id, session)?;
        let mut inputs_json = raw;
        let (uid, username, steps, through_groups) = plan_and_groups(session, &inputs.user).await?;
        let shown: Vec<String> = steps.iter().map(Step::describe).collect();
        inputs_json["user"] = json!(uid);
        // `kept`: what reaches the user through groups stays bound to the groups (change the membership in the
        // directory); a disabled user cannot use it.
        inputs_json["plan"] = json!({"steps": steps, "shown": shown, "username": username, "kept": through_groups});
        Ok(Pinned {
            inputs: inputs_json,
            targets: vec![(uid, username)],
        })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: OffboardInputs, _raw: &Inputs) -> Result<Report> {
        let session = exec.session();
        require_rk(OFFBOARD_USER.id, session)?;
        let user = inputs.user.clone();
        let steps = match (exec.is_dry_run(), inputs.pinned_plan()) {
            (false, Some(steps)) => {
                // The refusals hold at execution too: the approver may be the user, or admins may have changed.
                plan(session, &user).await?;
                steps
            }
            (false, None) => {
                return Err(Error::Refused(
                    "offboard-user runs only the plan pinned at submit; this request has none. Submit it again".into(),
                ))
            }
            (true, _) => plan(session, &user).await?.2,
        };
        let mut rows = Vec::new();
        let mut report = Vec::new();
        let (mut done, mut already, mut failed) = (0, 0, 0);
        let progress = exec.progress();
        progress.stage(
            if exec.is_dry_run() {
                "checking steps"
            } else {
                "offboarding"
            },
            Some(steps.len() as u64),
        );
        for step in &steps {
            progress.advance(1);
            let outcome = match apply(exec, step).await {
                Ok(true) if exec.is_dry_run() => "would do".to_string(),
                Ok(true) => {
                    done += 1;
                    "done".to_string()
                }
                Ok(false) => {
                    already += 1;
                    "already done".to_string()
                }
                Err(e) => {
                    failed += 1;
                    format!("failed: {e}")
                }
            };
            rows.push(vec![step.describe(), outcome.clone()]);
            report.push(json!({"step": step, "outcome": outcome}));
        }
        let summary = if exec.is_dry_run() {
            format!("would offboard {user}: {} steps", steps.len())
        } else {
            format!("offboarded {user}: {done} steps done, {already} already done, {failed} failed")
        };
        Ok(Report::new(
            summary,
            json!({"user": user, "steps": report, "done": done, "already_done": already, "failed": failed}),
        )
        .with_table(Table {
            columns: vec!["STEP".into(), "OUTCOME".into()],
            rows,
        }))
    }

    async fn applied(&self, session: &Session, inputs: OffboardInputs, _raw: &Inputs) -> Result<Option<bool>> {
        // Applied when nothing of the pinned plan is left on the server; otherwise the run goes on with the steps
        // left (a step already done answers 404 and is counted as already done, never sent twice to effect).
        let Some(steps) = inputs.pinned_plan() else {
            return Ok(None);
        };
        let user = inputs.user;
        let inv = Inventory::load(session, false).await?;
        let mut names = std::collections::HashSet::new();
        each_token(session, &crate::progress::Silent, |t| {
            if t.user == user {
                names.insert(t.name);
            }
        })
        .await?;
        let left = steps.iter().any(|s| match s {
            Step::DeleteBinding { namespace, name, .. } => inv
                .bindings
                .iter()
                .any(|b| *b.name == **name && inv.names.text(b.namespace) == namespace),
            Step::DeleteToken { name } => names.contains(name),
            Step::DisableUser { user } => inv.users.iter().any(|p| &p.id == user && p.enabled),
        });
        Ok(Some(!left))
    }
}

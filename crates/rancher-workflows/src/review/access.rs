//! `access-review` (every user: enabled, admin, last login, global/cluster/project roles with the binding that
//! grants each, directly or through a group; flags) and `who-can` (every holder of a role or of access to a
//! cluster or project).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::inventory::{Binding, Inventory, Person, Scope};
use super::require_rk;
use crate::catalog::{DefaultApproval, InputKind, InputSpec, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::workflow::{Inputs, Report, TypedWorkflow};

static ACCESS_REVIEW: WorkflowDef = WorkflowDef {
    id: "access-review",
    title: "Access review",
    description: "For every user (or those the filters pick): enabled or not, admin or not, last login, and every global, cluster and project role with the binding that grants it, directly or through a group the server says the user belongs to. Role templates show their effective set (inherited templates). Flags: admin, disabled but still bound, no bindings; orphaned bindings (user, role, cluster or project gone). Needs an admin.",
    inputs: &[
        InputSpec { name: "user", kind: InputKind::String, required: false, description: "only this user (id or username)" },
        InputSpec { name: "role", kind: InputKind::String, required: false, description: "only grants of this global role or role template (inherited ones count)" },
        InputSpec { name: "cluster", kind: InputKind::String, required: false, description: "only grants on this cluster (and its projects): an id or display name" },
        InputSpec { name: "project", kind: InputKind::String, required: false, description: "only grants on this project: `c-xxxxx:p-yyyyy` or `cluster/project` display names" },
        InputSpec { name: "refresh-groups", kind: InputKind::String, required: false, description: "yes: first ask Rancher to re-read every user's group memberships from the auth providers (it does so in the background; needs create on users)" },
    ],
    output: "{users: [...], orphaned_bindings: [...]}; a table and CSV with one row per user and grant",
    default_approval: DefaultApproval::None,
    writes: false,
};

static WHO_CAN: WorkflowDef = WorkflowDef {
    id: "who-can",
    title: "Who can",
    description: "Every user who holds a global role, a role template, or access to a cluster or project (optionally only with one role), directly, through a group, or by inheritance, with the binding that grants it. Needs an admin.",
    inputs: &[
        InputSpec { name: "global-role", kind: InputKind::String, required: false, description: "a global role (e.g. admin)" },
        InputSpec { name: "role", kind: InputKind::String, required: false, description: "a role template (e.g. cluster-owner); with cluster= or project=, only that role there" },
        InputSpec { name: "cluster", kind: InputKind::String, required: false, description: "a cluster: id or display name" },
        InputSpec { name: "project", kind: InputKind::String, required: false, description: "a project: `c-xxxxx:p-yyyyy` or `cluster/project` display names" },
    ],
    output: "one entry per user and grant: user, scope, role held, the role asked for, via (direct, group or inheritance), binding",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// How a user holds a grant.
fn via(group: Option<&str>) -> String {
    match group {
        None => "direct".into(),
        Some(g) => format!("group {g}"),
    }
}

fn scope_matches(scope: &Scope, cluster: Option<&str>, project: Option<&str>) -> bool {
    match (cluster, project) {
        (None, None) => true,
        (_, Some(p)) => matches!(scope, Scope::Project(x) if x == p),
        (Some(c), None) => match scope {
            Scope::Cluster(x) => x == c,
            Scope::Project(p) => p.split(':').next() == Some(c),
            Scope::Global => false,
        },
    }
}

/// A `cluster=` / `project=` filter as the grant workflows take it (an id or display names: `downstream`,
/// `downstream/Default`), resolved to ids; an unknown or ambiguous name is refused with the candidates, so a filter
/// can never answer "nobody" for a place it did not find. Answers the ids and how to name the place in a summary.
async fn place(
    session: &crate::Session,
    workflow: &str,
    cluster: Option<&str>,
    project: Option<&str>,
) -> Result<(Option<String>, Option<String>, String)> {
    let refused = |input: &str, e: Error| match e {
        Error::NotFound(m) | Error::Refused(m) => Error::Input {
            workflow: workflow.into(),
            input: input.into(),
            message: m,
        },
        other => other,
    };
    if let Some(p) = project {
        let p = crate::grants::resolve::project(session, p)
            .await
            .map_err(|e| refused("project", e))?;
        let shown = format!(" on project {} ({})", p.name, p.id);
        return Ok((None, Some(p.id), shown));
    }
    if let Some(c) = cluster {
        let c = crate::grants::resolve::cluster(session, c)
            .await
            .map_err(|e| refused("cluster", e))?;
        let shown = format!(" on cluster {} ({})", c.name, c.id);
        return Ok((Some(c.id), None, shown));
    }
    Ok((None, None, String::new()))
}

/// Resolves `user=` to an id, refusing an unknown one with the fix.
fn pick_user<'a>(inv: &'a Inventory, workflow: &str, u: &str) -> Result<&'a Person> {
    inv.users
        .iter()
        .find(|p| p.id == u)
        .or_else(|| inv.users.iter().find(|p| p.username == u))
        .ok_or_else(|| Error::Input {
            workflow: workflow.into(),
            input: "user".into(),
            message: format!("no user has the id or username `{u}`; `rancherctl run list-users` shows them"),
        })
}

/// The inputs of `access-review`: each one narrows the review; none reviews everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessReviewInputs {
    /// Only this user (id or username).
    #[serde(default)]
    pub user: Option<String>,
    /// Only grants of this global role or role template.
    #[serde(default)]
    pub role: Option<String>,
    /// Only grants on this cluster (id or display name).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Only grants on this project.
    #[serde(default)]
    pub project: Option<String>,
    /// `yes`: ask Rancher to re-read group memberships first.
    #[serde(default, rename = "refresh-groups")]
    pub refresh_groups: Option<String>,
}

/// The `access-review` workflow.
pub struct AccessReview;

#[async_trait]
impl TypedWorkflow for AccessReview {
    type Inputs = AccessReviewInputs;

    fn def(&self) -> &'static WorkflowDef {
        &ACCESS_REVIEW
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: AccessReviewInputs, _raw: &Inputs) -> Result<Report> {
        let id = ACCESS_REVIEW.id;
        let session = exec.session();
        require_rk(id, session)?;
        let (user_f, role_f, cluster_f, project_f) = (
            inputs.user.as_deref(),
            inputs.role.as_deref(),
            inputs.cluster.as_deref(),
            inputs.project.as_deref(),
        );
        let (cluster_id, project_id, _) = place(session, id, cluster_f, project_f).await?;
        let (cluster_f, project_f) = (cluster_id.as_deref(), project_id.as_deref());
        let refreshed = match inputs.refresh_groups.as_deref() {
            None | Some("no") => None,
            Some("yes") => Some(super::inventory::request_group_refresh(session).await?),
            Some(other) => {
                return Err(Error::Input {
                    workflow: id.into(),
                    input: "refresh-groups".into(),
                    message: format!("`{other}` is neither `yes` nor `no`"),
                })
            }
        };
        let inv = Inventory::load(session, true).await?;
        if let Some(r) = role_f {
            if !inv.global_roles.contains(r) && !inv.role_templates.contains_key(r) {
                return Err(Error::Input {
                    workflow: id.into(),
                    input: "role".into(),
                    message: format!("no global role or role template is named `{r}`; `rancherctl run list-global-roles` and `rancherctl run list-role-templates` show them"),
                });
            }
        }
        let only = user_f
            .map(|u| pick_user(&inv, id, u))
            .transpose()?
            .map(|p| p.id.clone());
        let filtered = role_f.is_some() || cluster_f.is_some() || project_f.is_some();
        let mut rows = Vec::new();
        let mut users_json = Vec::new();
        for person in &inv.users {
            if only.as_ref().is_some_and(|o| o != &person.id) {
                continue;
            }
            let all: Vec<(&Binding, Option<&str>)> = inv.grants_of(person).collect();
            let admin = all.iter().any(|(b, _)| b.scope == Scope::Global && b.role == "admin");
            let mut flags = Vec::new();
            if admin {
                flags.push("admin");
            }
            if !person.enabled && !all.is_empty() {
                flags.push("disabled-but-bound");
            }
            if all.is_empty() {
                flags.push("no-bindings");
            }
            let shown: Vec<&(&Binding, Option<&str>)> = all
                .iter()
                .filter(|(b, _)| scope_matches(&b.scope, cluster_f, project_f))
                .filter(|(b, _)| {
                    role_f.is_none_or(|r| {
                        b.role == r || (b.scope != Scope::Global && inv.effective(&b.role).iter().any(|e| e == r))
                    })
                })
                .collect();
            if filtered && shown.is_empty() {
                continue;
            }
            let last_login = person.last_login.map(|t| t.to_rfc3339()).unwrap_or_default();
            let mut global = Vec::new();
            let mut cluster = Vec::new();
            let mut project = Vec::new();
            for (b, g) in &shown {
                let effective = if b.scope == Scope::Global {
                    vec![b.role.clone()]
                } else {
                    inv.effective(&b.role)
                };
                let entry = json!({"role": b.role, "effective": effective, "binding": b.id, "via": via(*g), "orphaned": b.orphaned});
                let (list, on) = match &b.scope {
                    Scope::Global => (&mut global, String::new()),
                    Scope::Cluster(c) => (&mut cluster, c.clone()),
                    Scope::Project(p) => (&mut project, p.clone()),
                };
                let mut entry = entry;
                if !on.is_empty() {
                    entry[if matches!(b.scope, Scope::Cluster(_)) {
                        "cluster"
                    } else {
                        "project"
                    }] = json!(on);
                }
                list.push(entry);
                rows.push(vec![
                    person.id.clone(),
                    person.username.clone(),
                    yes_no(person.enabled),
                    b.scope.label(),
                    effective.join("+"),
                    via(*g),
                    b.id.clone(),
                    last_login.clone(),
                    flags_text(&flags, &b.orphaned),
                ]);
            }
            if shown.is_empty() {
                rows.push(vec![
                    person.id.clone(),
                    person.username.clone(),
                    yes_no(person.enabled),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    last_login.clone(),
                    flags.join(","),
                ]);
            }
            users_json.push(json!({
                "user": person.id, "username": person.username, "display_name": person.display_name, "enabled": person.enabled,
                "admin": admin, "last_login": person.last_login.map(|t| t.to_rfc3339()), "flags": flags,
                "groups": inv.groups.get(&person.id).map(|g| g.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                "groups_as_of": inv.groups_as_of.get(&person.id).map(|t| t.to_rfc3339()),
                "global_roles": global, "cluster_roles": cluster, "project_roles": project,
            }));
        }
        // Orphaned bindings whose subject is not a listed user (a deleted user, or a group) are listed apart.
        let orphans: Vec<&Binding> = inv
            .bindings
            .iter()
            .filter(|b| !b.orphaned.is_empty())
            .filter(|b| scope_matches(&b.scope, cluster_f, project_f) && role_f.is_none_or(|r| b.role == r))
            .filter(|b| only.is_none() || b.user == only)
            .collect();
        for b in &orphans {
            if b.user.as_ref().is_some_and(|u| inv.users.iter().any(|p| &p.id == u)) {
                continue;
            }
            let subject = b.user.clone().or_else(|| b.group.clone()).unwrap_or_default();
            rows.push(vec![
                subject,
                String::new(),
                String::new(),
                b.scope.label(),
                b.role.clone(),
                via(b.group.as_deref().filter(|_| b.user.is_none())),
                b.id.clone(),
                String::new(),
                flags_text(&[], &b.orphaned),
            ]);
        }
        let summary = format!(
            "{} users reviewed, {} grants shown, {} orphaned bindings, {} admins{}",
            users_json.len(),
            rows.len(),
            orphans.len(),
            users_json.iter().filter(|u| u["admin"] == json!(true)).count(),
            groups_note(&inv, users_json.iter().filter_map(|u| u["user"].as_str()))
        );
        let summary = match refreshed {
            Some(t) => format!(
                "{summary}; asked Rancher at {} to re-read group memberships (in the background: data older than that is not refreshed yet)",
                t.to_rfc3339()
            ),
            None => summary,
        };
        let table = Table {
            columns: [
                "USER",
                "USERNAME",
                "ENABLED",
                "SCOPE",
                "ROLE (EFFECTIVE)",
                "VIA",
                "BINDING",
                "LAST LOGIN",
                "FLAGS",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        };
        Ok(Report::new(
            summary,
            json!({"users": users_json, "orphaned_bindings": orphans, "groups_refresh_requested": refreshed.map(|t| t.to_rfc3339())}),
        )
        .with_table(table))
    }
}

/// How old the group data behind `users` is, for a summary: Rancher re-reads a user's groups from the provider at
/// login, on a refresh, and on its resync schedule (rancher/rancher pkg/settings/setting.go
/// `auth-user-info-resync-cron`, daily by default), and keeps them in the UserAttribute (`lastLogin`,
/// `LastRefresh`). Empty when none of them has group data.
fn groups_note<'a>(inv: &Inventory, users: impl Iterator<Item = &'a str>) -> String {
    let mut oldest: Option<(chrono::DateTime<chrono::Utc>, &str)> = None;
    let mut from_tokens = 0;
    for u in users {
        match inv.groups_as_of.get(u) {
            Some(t) if oldest.is_none_or(|(o, _)| *t < o) => oldest = Some((*t, u)),
            Some(_) => {}
            None if inv.groups.get(u).is_some_and(|g| !g.is_empty()) => from_tokens += 1,
            None => {}
        }
    }
    let mut out = String::new();
    if let Some((t, who)) = oldest {
        out.push_str(&format!(
            "; group data as Rancher last read it from the providers, oldest {} ({who}); Rancher re-reads it at login and on its resync schedule",
            t.to_rfc3339()
        ));
    }
    if from_tokens > 0 {
        out.push_str(&format!(
            "; groups of {from_tokens} user(s) come from legacy login tokens (no UserAttribute): as old as those logins"
        ));
    }
    out
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn flags_text(flags: &[&str], orphaned: &[String]) -> String {
    let mut out: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    if !orphaned.is_empty() {
        out.push(format!("orphaned ({})", orphaned.join("; ")));
    }
    out.join(",")
}

/// The inputs of `who-can`: what to ask about (a global role alone, or a role template, cluster or project).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhoCanInputs {
    /// A global role.
    #[serde(default, rename = "global-role")]
    pub global_role: Option<String>,
    /// A role template.
    #[serde(default)]
    pub role: Option<String>,
    /// A cluster (id or display name).
    #[serde(default)]
    pub cluster: Option<String>,
    /// A project.
    #[serde(default)]
    pub project: Option<String>,
}

/// The `who-can` workflow.
pub struct WhoCan;

#[async_trait]
impl TypedWorkflow for WhoCan {
    type Inputs = WhoCanInputs;

    fn def(&self) -> &'static WorkflowDef {
        &WHO_CAN
    }

    fn check(&self, inputs: &WhoCanInputs) -> Result<()> {
        let id = WHO_CAN.id;
        let given = [&inputs.global_role, &inputs.role, &inputs.cluster, &inputs.project];
        if given.iter().all(|g| g.is_none()) {
            return Err(Error::Input {
                workflow: id.into(),
                input: "role".into(),
                message: "say what to ask about: global-role=admin, role=<role template>, cluster=<id> or project=<cluster>:<project> (role= narrows a cluster or project)".into(),
            });
        }
        if given[0].is_some() && given[1..].iter().any(|g| g.is_some()) {
            return Err(Error::Input {
                workflow: id.into(),
                input: "global-role".into(),
                message: "a global role applies everywhere; give it alone".into(),
            });
        }
        Ok(())
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: WhoCanInputs, _raw: &Inputs) -> Result<Report> {
        let id = WHO_CAN.id;
        let session = exec.session();
        require_rk(id, session)?;
        let (global_f, role_f, cluster_f, project_f) = (
            inputs.global_role.as_deref(),
            inputs.role.as_deref(),
            inputs.cluster.as_deref(),
            inputs.project.as_deref(),
        );
        let (cluster_id, project_id, place_shown) = place(session, id, cluster_f, project_f).await?;
        let (cluster_f, project_f) = (cluster_id.as_deref(), project_id.as_deref());
        let inv = Inventory::load(session, true).await?;
        if let Some(g) = global_f {
            if !inv.global_roles.contains(g) {
                return Err(Error::Input {
                    workflow: id.into(),
                    input: "global-role".into(),
                    message: format!("no global role is named `{g}`; `rancherctl run list-global-roles` shows them"),
                });
            }
        }
        if let Some(r) = role_f {
            if !inv.role_templates.contains_key(r) {
                return Err(Error::Input {
                    workflow: id.into(),
                    input: "role".into(),
                    message: format!(
                        "no role template is named `{r}`; `rancherctl run list-role-templates` shows them"
                    ),
                });
            }
        }
        let mut entries = Vec::new();
        let mut rows = Vec::new();
        for person in &inv.users {
            for (b, g) in inv.grants_of(person) {
                let (held, how) = match (global_f, &b.scope) {
                    (Some(gr), Scope::Global) if b.role == gr => (b.role.clone(), via(g)),
                    (Some(_), _) => continue,
                    (None, Scope::Global) => continue,
                    (None, scope) => {
                        if !scope_matches(scope, cluster_f, project_f) {
                            continue;
                        }
                        match role_f {
                            None => (b.role.clone(), via(g)),
                            Some(r) if b.role == r => (b.role.clone(), via(g)),
                            Some(r) if inv.effective(&b.role).iter().any(|e| e == r) => {
                                (b.role.clone(), format!("{} (inherits {r} from {})", via(g), b.role))
                            }
                            Some(_) => continue,
                        }
                    }
                };
                let scope = b.scope.label();
                rows.push(vec![
                    person.id.clone(),
                    person.username.clone(),
                    scope.clone(),
                    held.clone(),
                    how.clone(),
                    b.id.clone(),
                    yes_no(person.enabled),
                ]);
                entries.push(json!({"user": person.id, "username": person.username, "enabled": person.enabled, "scope": scope, "role": held,
                                    "asked": global_f.or(role_f), "via": how, "binding": b.id, "orphaned": b.orphaned,
                                    "groups_as_of": g.and(inv.groups_as_of.get(&person.id)).map(|t| t.to_rfc3339())}));
            }
        }
        let users: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        let what = global_f
            .map(|g| format!("global role {g}"))
            .or_else(|| role_f.map(|r| format!("role {r}")))
            .unwrap_or_else(|| "access".into());
        let through_groups: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter(|e| e["via"].as_str().is_some_and(|v| v.starts_with("group ")))
            .filter_map(|e| e["user"].as_str())
            .collect();
        let summary = format!(
            "{} users hold {what}{place_shown} ({} grants){}",
            users.len(),
            rows.len(),
            groups_note(&inv, through_groups.into_iter())
        );
        let table = Table {
            columns: ["USER", "USERNAME", "SCOPE", "ROLE", "VIA", "BINDING", "ENABLED"]
                .map(String::from)
                .to_vec(),
            rows,
        };
        Ok(Report::new(summary, Value::Array(entries)).with_table(table))
    }
}

//! `access-review` (every user: enabled, admin, last login, global/cluster/project roles with the binding that
//! grants each, directly or through a group; flags) and `who-can` (every holder of a role or of access to a
//! cluster or project).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::inventory::{Binding, Inventory, Names, Person, Scope};
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

fn scope_matches(scope: &Scope, n: &Names, cluster: Option<&str>, project: Option<&str>) -> bool {
    match (cluster, project) {
        (None, None) => true,
        (_, Some(p)) => matches!(scope, Scope::Project(x) if n.text(*x) == p),
        (Some(c), None) => match scope {
            Scope::Cluster(x) => n.text(*x) == c,
            Scope::Project(p) => n.text(*p).split(':').next() == Some(c),
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

fn no_such_user(workflow: &str, u: &str) -> Error {
    Error::Input {
        workflow: workflow.into(),
        input: "user".into(),
        message: format!("no user has the id or username `{u}`; `rancherctl run list-users` shows them"),
    }
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

/// Where an access review's parts go as they are produced (see [`stream_access_review`]): each reviewed user
/// with its table rows, in list order, then each orphaned binding (with a row when its subject is no listed user).
pub trait ReviewSink: Send {
    /// One reviewed user: its entry of `users` and its table rows.
    fn user(&mut self, entry: &ReviewPart, rows: Vec<Vec<String>>) -> std::io::Result<()>;
    /// One entry of `orphaned_bindings`, and its table row when the user entries do not show it.
    fn orphan(&mut self, binding: &ReviewPart, row: Option<Vec<String>>) -> std::io::Result<()>;
}

/// One entry of a review's document (a user, or an orphaned binding), serialized as the document writes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ReviewPart(Value);

/// What an access review says once every part went to its [`ReviewSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewEnd {
    /// The run's one line for people.
    pub summary: String,
    /// When Rancher was asked to re-read group memberships (`refresh-groups=yes`), RFC 3339.
    pub groups_refresh_requested: Option<String>,
}

/// The table columns of `access-review`.
pub const ACCESS_REVIEW_COLUMNS: [&str; 9] = [
    "USER",
    "USERNAME",
    "ENABLED",
    "SCOPE",
    "ROLE (EFFECTIVE)",
    "VIA",
    "BINDING",
    "LAST LOGIN",
    "FLAGS",
];

/// Runs `access-review` with `inputs`, handing each part to `sink` as it is produced: the bindings are indexed
/// first (texts interned), then the users stream past the index one page at a time, so memory follows the bindings
/// and one page of users, not the users and their grants. The parts are those of the run's JSON document
/// (`{"users": [...], "orphaned_bindings": [...], "groups_refresh_requested": ...}`) and its table, in order.
pub async fn stream_access_review(
    session: &crate::Session,
    inputs: &Inputs,
    sink: &mut dyn ReviewSink,
) -> Result<ReviewEnd> {
    let inputs: AccessReviewInputs = inputs.parse(&ACCESS_REVIEW)?;
    review(session, inputs, sink).await
}

async fn review(session: &crate::Session, inputs: AccessReviewInputs, sink: &mut dyn ReviewSink) -> Result<ReviewEnd> {
    let id = ACCESS_REVIEW.id;
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
    let mut inv = Inventory::index(session, true).await?;
    if let Some(r) = role_f {
        if !inv.global_roles.contains(r) && !inv.role_templates.contains_key(r) {
            return Err(Error::Input {
                workflow: id.into(),
                input: "role".into(),
                message: format!("no global role or role template is named `{r}`; `rancherctl run list-global-roles` and `rancherctl run list-role-templates` show them"),
            });
        }
    }
    let written = |e: std::io::Error| Error::Refused(format!("{id}: could not write the review: {e}"));
    // Each role's effective set, once per role rather than once per grant.
    let mut effective: std::collections::HashMap<super::inventory::Sym, std::sync::Arc<[String]>> = Default::default();
    let mut tally = Tally::default();
    let filtered = role_f.is_some() || cluster_f.is_some() || project_f.is_some();
    let mut one = |inv: &Inventory, person: &Person, sink: &mut dyn ReviewSink, tally: &mut Tally| {
        let n = &inv.names;
        let mut eff = |role: super::inventory::Sym| {
            effective
                .entry(role)
                .or_insert_with(|| inv.effective(n.text(role)).into())
                .clone()
        };
        let all: Vec<(&Binding, Option<&str>)> = inv.grants_of(person).collect();
        let admin = all
            .iter()
            .any(|(b, _)| b.scope == Scope::Global && n.text(b.role) == "admin");
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
            .filter(|(b, _)| scope_matches(&b.scope, n, cluster_f, project_f))
            .filter(|(b, _)| {
                role_f.is_none_or(|r| {
                    n.text(b.role) == r || (b.scope != Scope::Global && eff(b.role).iter().any(|e| e == r))
                })
            })
            .collect();
        if filtered && shown.is_empty() {
            return Ok(());
        }
        let last_login = person.last_login.map(|t| t.to_rfc3339()).unwrap_or_default();
        let (mut global, mut cluster, mut project) = (Vec::new(), Vec::new(), Vec::new());
        let mut rows = Vec::new();
        for (b, g) in &shown {
            let role = n.text(b.role);
            let effective: std::sync::Arc<[String]> = if b.scope == Scope::Global {
                vec![role.to_string()].into()
            } else {
                eff(b.role)
            };
            let binding = b.id(n);
            let orphaned = inv.orphaned(b);
            let mut entry = json!({"role": role, "effective": &*effective, "binding": binding, "via": via(*g), "orphaned": orphaned});
            let list = match &b.scope {
                Scope::Global => &mut global,
                Scope::Cluster(_) => &mut cluster,
                Scope::Project(_) => &mut project,
            };
            let on = b.scope.on(n);
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
                b.scope.label(n),
                effective.join("+"),
                via(*g),
                binding,
                last_login.clone(),
                flags_text(&flags, &orphaned),
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
        let groups: Vec<&str> = inv.groups_of(&person.id).collect();
        let as_of = inv.groups_as_of(&person.id);
        let entry = json!({
            "user": person.id, "username": person.username, "display_name": person.display_name, "enabled": person.enabled,
            "admin": admin, "last_login": person.last_login.map(|t| t.to_rfc3339()), "flags": flags,
            "groups": groups,
            "groups_as_of": as_of.map(|t| t.to_rfc3339()),
            "global_roles": global, "cluster_roles": cluster, "project_roles": project,
        });
        tally.users += 1;
        tally.rows += rows.len();
        tally.admins += usize::from(admin);
        tally.groups.see(&person.id, as_of, !groups.is_empty());
        sink.user(&ReviewPart(entry), rows).map_err(written)
    };
    match user_f {
        None => {
            let inv = &mut inv;
            super::inventory::each_user(session, |person| {
                inv.saw(&person);
                one(inv, &person, sink, &mut tally)
            })
            .await?;
        }
        Some(u) => {
            // One user, by id, else by username: the candidates wait for the end of the list.
            let (mut by_id, mut by_name) = (None, None);
            super::inventory::each_user(session, |person| {
                inv.saw(&person);
                if person.id == u && by_id.is_none() {
                    by_id = Some(person);
                } else if person.username == u && by_name.is_none() {
                    by_name = Some(person);
                }
                Ok(())
            })
            .await?;
            let person = by_id.or(by_name).ok_or_else(|| no_such_user(id, u))?;
            one(&inv, &person, sink, &mut tally)?;
            tally.only = Some(person.id);
        }
    }
    // Orphaned bindings whose subject is not a listed user (a deleted user, or a group) get rows of their own.
    let n = &inv.names;
    let mut orphans = 0;
    for b in &inv.bindings {
        let json = inv.binding_json(b);
        if json.orphaned.is_empty()
            || !scope_matches(&b.scope, n, cluster_f, project_f)
            || !role_f.is_none_or(|r| json.role == r)
            || !tally.only.as_deref().is_none_or(|o| json.user == Some(o))
        {
            continue;
        }
        orphans += 1;
        let row = match b.user {
            Some(u) if inv.is_listed(u) => None,
            _ => Some(vec![
                json.user.or(json.group).unwrap_or_default().to_string(),
                String::new(),
                String::new(),
                b.scope.label(n),
                json.role.to_string(),
                via(json.group.filter(|_| json.user.is_none())),
                json.id.clone(),
                String::new(),
                flags_text(&[], &json.orphaned),
            ]),
        };
        tally.rows += usize::from(row.is_some());
        let value = serde_json::to_value(&json).map_err(|e| Error::Refused(format!("{id}: {e}")))?;
        sink.orphan(&ReviewPart(value), row).map_err(written)?;
    }
    let summary = format!(
        "{} users reviewed, {} grants shown, {orphans} orphaned bindings, {} admins{}",
        tally.users,
        tally.rows,
        tally.admins,
        tally.groups.note()
    );
    let summary = match refreshed {
        Some(t) => format!(
            "{summary}; asked Rancher at {} to re-read group memberships (in the background: data older than that is not refreshed yet)",
            t.to_rfc3339()
        ),
        None => summary,
    };
    Ok(ReviewEnd {
        summary,
        groups_refresh_requested: refreshed.map(|t| t.to_rfc3339()),
    })
}

/// The counts a review's summary gives, kept as the users stream past.
#[derive(Default)]
struct Tally {
    users: usize,
    rows: usize,
    admins: usize,
    groups: GroupsNote,
    /// The one user reviewed (`user=`).
    only: Option<String>,
}

/// Collects a review's parts into one report (the run's document and table).
#[derive(Default)]
struct Collect {
    users: Vec<Value>,
    orphans: Vec<Value>,
    rows: Vec<Vec<String>>,
}

impl ReviewSink for Collect {
    fn user(&mut self, entry: &ReviewPart, rows: Vec<Vec<String>>) -> std::io::Result<()> {
        self.users.push(entry.0.clone());
        self.rows.extend(rows);
        Ok(())
    }

    fn orphan(&mut self, binding: &ReviewPart, row: Option<Vec<String>>) -> std::io::Result<()> {
        self.orphans.push(binding.0.clone());
        self.rows.extend(row);
        Ok(())
    }
}

/// The `access-review` workflow.
pub struct AccessReview;

#[async_trait]
impl TypedWorkflow for AccessReview {
    type Inputs = AccessReviewInputs;

    fn def(&self) -> &'static WorkflowDef {
        &ACCESS_REVIEW
    }

    fn report_document(&self) -> bool {
        true
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: AccessReviewInputs, _raw: &Inputs) -> Result<Report> {
        let mut parts = Collect::default();
        let end = review(exec.session(), inputs, &mut parts).await?;
        let table = Table {
            columns: ACCESS_REVIEW_COLUMNS.map(String::from).to_vec(),
            rows: parts.rows,
        };
        Ok(Report::new(
            end.summary,
            json!({"users": parts.users, "orphaned_bindings": parts.orphans, "groups_refresh_requested": end.groups_refresh_requested}),
        )
        .with_table(table))
    }
}

/// How old the group data behind the reviewed users is, for a summary: Rancher re-reads a user's groups from the
/// provider at login, on a refresh, and on its resync schedule (rancher/rancher pkg/settings/setting.go
/// `auth-user-info-resync-cron`, daily by default), and keeps them in the UserAttribute (`lastLogin`,
/// `LastRefresh`). Empty when none of them has group data.
#[derive(Default)]
struct GroupsNote {
    oldest: Option<(chrono::DateTime<chrono::Utc>, String)>,
    from_tokens: usize,
}

impl GroupsNote {
    /// One more user: when its groups were read (if the server has an attribute), and whether it has any.
    fn see(&mut self, user: &str, as_of: Option<chrono::DateTime<chrono::Utc>>, has_groups: bool) {
        match as_of {
            Some(t) if self.oldest.as_ref().is_none_or(|(o, _)| t < *o) => self.oldest = Some((t, user.to_string())),
            Some(_) => {}
            None if has_groups => self.from_tokens += 1,
            None => {}
        }
    }

    fn note(&self) -> String {
        let mut out = String::new();
        if let Some((t, who)) = &self.oldest {
            out.push_str(&format!(
                "; group data as Rancher last read it from the providers, oldest {} ({who}); Rancher re-reads it at login and on its resync schedule",
                t.to_rfc3339()
            ));
        }
        if self.from_tokens > 0 {
            out.push_str(&format!(
                "; groups of {} user(s) come from legacy login tokens (no UserAttribute): as old as those logins",
                self.from_tokens
            ));
        }
        out
    }
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
        let mut inv = Inventory::index(session, true).await?;
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
        let inv = &mut inv;
        super::inventory::each_user(session, |person| {
            inv.saw(&person);
            let n = &inv.names;
            for (b, g) in inv.grants_of(&person) {
                let role = n.text(b.role);
                let (held, how) = match (global_f, &b.scope) {
                    (Some(gr), Scope::Global) if role == gr => (role, via(g)),
                    (Some(_), _) => continue,
                    (None, Scope::Global) => continue,
                    (None, scope) => {
                        if !scope_matches(scope, n, cluster_f, project_f) {
                            continue;
                        }
                        match role_f {
                            None => (role, via(g)),
                            Some(r) if role == r => (role, via(g)),
                            Some(r) if inv.effective(role).iter().any(|e| e == r) => {
                                (role, format!("{} (inherits {r} from {role})", via(g)))
                            }
                            Some(_) => continue,
                        }
                    }
                };
                let scope = b.scope.label(n);
                let binding = b.id(n);
                rows.push(vec![
                    person.id.clone(),
                    person.username.clone(),
                    scope.clone(),
                    held.to_string(),
                    how.clone(),
                    binding.clone(),
                    yes_no(person.enabled),
                ]);
                entries.push(json!({"user": person.id, "username": person.username, "enabled": person.enabled, "scope": scope, "role": held,
                                    "asked": global_f.or(role_f), "via": how, "binding": binding, "orphaned": inv.orphaned(b),
                                    "groups_as_of": g.and(inv.groups_as_of(&person.id)).map(|t| t.to_rfc3339())}));
            }
            Ok(())
        })
        .await?;
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
        let mut note = GroupsNote::default();
        for u in through_groups {
            note.see(u, inv.groups_as_of(u), inv.groups_of(u).next().is_some());
        }
        let summary = format!(
            "{} users hold {what}{place_shown} ({} grants){}",
            users.len(),
            rows.len(),
            note.note()
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

impl crate::Runner {
    /// Runs `access-review` as [`crate::Runner::submit`] runs it (inputs checked, the workflow installed), handing
    /// its parts to `sink` as they are produced instead of building one report (see [`stream_access_review`]).
    pub async fn stream_access_review(
        &self,
        session: &crate::Session,
        inputs: &Inputs,
        sink: &mut dyn ReviewSink,
    ) -> Result<ReviewEnd> {
        crate::workflow::check_inputs(&ACCESS_REVIEW, inputs)?;
        crate::workflow::Workflow::check(&crate::workflow::Typed(AccessReview), inputs)?;
        self.installation(ACCESS_REVIEW.id)
            .await?
            .ok_or_else(|| Error::NotInstalled(ACCESS_REVIEW.id.into()))?;
        stream_access_review(session, inputs, sink).await
    }
}

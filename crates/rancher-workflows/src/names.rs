//! Names for people: when a write request is filed, every object it acts on (users, groups, global roles, role
//! templates, clusters, projects) is looked up and its names are pinned with the request
//! ([`rancher_approval::PinnedNames`], covered by the content hash). [`plan_sentence`] turns them into the one
//! sentence every surface shows (the page, `rancherctl approvals show`, the API's request view, webhook events,
//! chat), and [`warnings`] into the look-alike warnings that go with it.
//!
//! Both return plain text: each surface escapes it for where it goes (a terminal, HTML, a chat message).
//!
//! ```
//! use rancher_workflows::names::{plan_sentence, NamedKind, NamedTarget, PinnedNames};
//!
//! let mut alice = NamedTarget::new(NamedKind::User, "u-tt2kw");
//! alice.display_name = Some("Alice Example".into());
//! alice.username = Some("alice".into());
//! alice.input = Some("user".into());
//! let mut admin = NamedTarget::new(NamedKind::GlobalRole, "admin");
//! admin.display_name = Some("Admin".into());
//! admin.input = Some("role".into());
//! let names = PinnedNames { targets: vec![alice, admin], look_alikes: vec![] };
//! let inputs = serde_json::json!({"user": "u-tt2kw", "role": "admin"}).into();
//! assert_eq!(
//!     plan_sentence("create-global-role-binding", &inputs, &names),
//!     "will create a GlobalRoleBinding of `admin` for Alice Example (alice, u-tt2kw)"
//! );
//! ```

use std::collections::BTreeMap;

use futures::StreamExt as _;
use serde_json::Value;

pub use rancher_approval::{LookAlike, NamedKind, NamedTarget, PinnedNames};

use crate::error::Result;
use crate::exec::Exec;
use crate::listing::Listed;
use crate::session::Session;
use crate::workflow::Inputs;

/// A user as the look-alike check needs it: id, username, display name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UserNames {
    id: String,
    username: String,
    display: String,
}

/// Every user of the server, with their names.
async fn users(session: &Session) -> Result<Vec<UserNames>> {
    let exec = Exec::new(session, false);
    let mut out = Vec::new();
    let mut rk = exec.rk_users();
    let mut items = exec.user_items(rk);
    while let Some(item) = items.next().await {
        let item = match item {
            // Users are behind the RK proxy's local-cluster gate for a person without local-cluster access; /v3
            // answers them what Rancher lets them see.
            Err(crate::Error::Api(e)) if rk && out.is_empty() && e.is_local_cluster_gate() => {
                rk = false;
                items = exec.user_items(false);
                continue;
            }
            other => other?,
        };
        let u = match item {
            Listed::User(u) => UserNames {
                id: u.metadata.and_then(|m| m.name).unwrap_or_default(),
                username: u.username.unwrap_or_default(),
                display: u.display_name.unwrap_or_default(),
            },
            Listed::V3User(u) => UserNames {
                id: u.id.unwrap_or_default(),
                username: u.username.unwrap_or_default(),
                display: u.name.unwrap_or_default(),
            },
            _ => continue,
        };
        out.push(u);
    }
    Ok(out)
}

/// A name folded for comparison: Unicode lower case, then the confusable skeleton of UTS #39 (so `Аlice` with a
/// Cyrillic `А`, `alice` and `ALICE` fold alike), without white space.
pub fn fold(name: &str) -> String {
    let lower: String = name.trim().to_lowercase();
    let skeleton: String = unicode_security::skeleton(&lower).collect();
    skeleton.to_lowercase().chars().filter(|c| !c.is_whitespace()).collect()
}

/// The users whose username or display name folds like one of `target`'s names ([`fold`]).
fn look_alikes_of(target: &UserNames, all: &[UserNames]) -> Vec<LookAlike> {
    let mut out = Vec::new();
    for (field, name) in [("display name", &target.display), ("username", &target.username)] {
        if name.trim().is_empty() {
            continue;
        }
        let folded = fold(name);
        for other in all.iter().filter(|o| o.id != target.id) {
            let hit = [&other.display, &other.username]
                .into_iter()
                .find(|n| !n.trim().is_empty() && fold(n) == folded);
            if let Some(other_name) = hit {
                out.push(LookAlike {
                    target: target.id.clone(),
                    field: field.into(),
                    name: name.clone(),
                    other_id: other.id.clone(),
                    other_name: other_name.clone(),
                });
            }
        }
    }
    out
}

/// Whether `id` has the shape of a local user id (`u-xxxxx`, `user-xxxxx`, `local://u-xxxxx`).
fn user_id(id: &str) -> Option<&str> {
    let id = id.strip_prefix("local://").unwrap_or(id);
    ((id.starts_with("u-") || id.starts_with("user-")) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then_some(id)
}

/// Which kind of role the `role` input of `workflow` names.
fn role_kind(workflow: &str) -> NamedKind {
    if workflow.contains("global-role") {
        NamedKind::GlobalRole
    } else {
        NamedKind::RoleTemplate
    }
}

/// Looks up what a write request acts on and pins its names: the user, group, role, cluster and project its
/// (pinned) inputs give, and every other pinned target (`targets`: principal id and label). A lookup that fails
/// (the object is gone, the caller may not read it) leaves the id alone with the label it was filed under: names
/// help approvers; they never stop a request. Every user target is checked for look-alikes among all users.
pub(crate) async fn resolve(
    session: &Session,
    workflow: &str,
    inputs: &Value,
    targets: &[(String, String)],
) -> Result<PinnedNames> {
    let mut names = PinnedNames::default();
    let text = |k: &str| inputs.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    // Users are read once when any target is a user (for their names and for the look-alike check).
    let wants_users = text("user").is_some() || targets.iter().any(|(id, _)| user_id(id).is_some());
    let all_users = if wants_users {
        users(session).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not list users to pin their names");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let user_target = |id: &str, input: Option<&str>, label: Option<&str>| {
        let bare = user_id(id).unwrap_or(id);
        let mut t = NamedTarget::new(NamedKind::User, id);
        t.input = input.map(str::to_string);
        match all_users.iter().find(|u| u.id == bare) {
            Some(u) => {
                t.username = Some(u.username.clone()).filter(|s| !s.is_empty());
                t.display_name = Some(u.display.clone()).filter(|s| !s.is_empty());
            }
            None => t.username = label.filter(|l| *l != id).map(str::to_string),
        }
        t
    };
    let label_of = |id: &str| targets.iter().find(|(t, _)| t == id).map(|(_, l)| l.as_str());
    if let Some(u) = text("user").filter(|u| user_id(u).is_some()) {
        names.targets.push(user_target(u, Some("user"), label_of(u)));
    }
    if let Some(g) = text("group") {
        let mut t = principal(session, g, NamedKind::Group).await;
        t.input = Some("group".into());
        names.targets.push(t);
    }
    if let Some(role) = text("role") {
        let kind = role_kind(workflow);
        let mut t = NamedTarget::new(kind, role);
        t.input = Some("role".into());
        let role_kind = match kind {
            NamedKind::GlobalRole => crate::roles::RoleKind::Global,
            _ => crate::roles::RoleKind::Template,
        };
        if let Ok(v) = crate::roles::get(session, role_kind, role).await {
            t.display_name = v
                .get("displayName")
                .or_else(|| v.get("name").filter(|_| v.get("metadata").is_none()))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        names.targets.push(t);
    }
    if let Some(c) = text("cluster") {
        let mut t = NamedTarget::new(NamedKind::Cluster, c);
        t.input = Some("cluster".into());
        if let Ok(all) = crate::grants::resolve::clusters(session).await {
            t.display_name = all
                .into_iter()
                .find(|x| x.id == c)
                .map(|x| x.name)
                .filter(|s| !s.is_empty());
        }
        names.targets.push(t);
    }
    if let Some(p) = text("project") {
        let mut t = NamedTarget::new(NamedKind::Project, p);
        t.input = Some("project".into());
        if let Ok(all) = crate::grants::resolve::projects(session).await {
            if let Some(found) = all.into_iter().find(|x| x.id == p) {
                t.display_name = Some(found.name).filter(|s| !s.is_empty());
                let clusters = crate::grants::resolve::clusters(session).await.unwrap_or_default();
                t.within = clusters
                    .into_iter()
                    .find(|c| c.id == found.cluster)
                    .map(|c| c.name)
                    .filter(|s| !s.is_empty())
                    .or(Some(found.cluster));
            }
        }
        names.targets.push(t);
    }
    // Every other pinned target: users named in a body, identities allowed, holders of an edited role.
    for (id, label) in targets {
        if names.targets.iter().any(|t| t.id == *id) {
            continue;
        }
        let t = if user_id(id).is_some() {
            user_target(id, None, Some(label))
        } else {
            let mut t = principal(session, id, NamedKind::User).await;
            if t.display_name.is_none() && label != id {
                t.display_name = Some(label.clone());
            }
            t
        };
        names.targets.push(t);
    }
    for t in names.targets.iter().filter(|t| t.kind == NamedKind::User) {
        let bare = user_id(&t.id).unwrap_or(&t.id);
        if let Some(u) = all_users.iter().find(|u| u.id == bare) {
            names.look_alikes.extend(look_alikes_of(u, &all_users));
        }
    }
    Ok(names)
}

/// A principal (`github_team://7`, `activedirectory_user://…`) by id, with its name and kind when the auth provider
/// answers; else the id alone, of kind `assumed`.
async fn principal(session: &Session, id: &str, assumed: NamedKind) -> NamedTarget {
    use rancher_api::requests::V3PrincipalsGet;
    let mut t = NamedTarget::new(assumed, id);
    if !id.contains("://") {
        return t;
    }
    if let Ok(p) = session.client.v3().principals().get(V3PrincipalsGet::new(id)).await {
        if p.principal_type.as_deref() == Some("group") {
            t.kind = NamedKind::Group;
        } else if p.principal_type.as_deref() == Some("user") {
            t.kind = NamedKind::User;
        }
        t.display_name = p.name.filter(|s| !s.is_empty());
        t.username = p.login_name.filter(|s| !s.is_empty() && t.kind == NamedKind::User);
    }
    t
}

/// One target as people read it: a user as `Alice Example (alice, u-tt2kw)` (as much of that as is known), a group
/// as `group Developers (github_team://7)`, a role as `` `Project Member` (project-member) `` (just `` `admin` ``
/// when its display name says no more than its id), a cluster or project as `Name (id)`.
pub fn describe(t: &NamedTarget) -> String {
    let display = t.display_name.as_deref().filter(|s| !s.trim().is_empty());
    let username = t.username.as_deref().filter(|s| !s.trim().is_empty());
    match t.kind {
        NamedKind::User => match (display, username) {
            (Some(d), Some(u)) if d != u => format!("{d} ({u}, {})", t.id),
            (Some(d), _) | (None, Some(d)) => format!("{d} ({})", t.id),
            (None, None) => format!("user {}", t.id),
        },
        NamedKind::Group => match display {
            Some(d) => format!("group {d} ({})", t.id),
            None => format!("group {}", t.id),
        },
        NamedKind::GlobalRole | NamedKind::RoleTemplate => match display {
            Some(d) if !d.eq_ignore_ascii_case(&t.id) => format!("`{d}` ({})", t.id),
            _ => format!("`{}`", t.id),
        },
        NamedKind::Cluster | NamedKind::Project => match display {
            Some(d) if d != t.id => format!("{d} ({})", t.id),
            _ => t.id.clone(),
        },
    }
}

/// The target given in `input`, described, or the input's raw value when nothing was pinned for it (a request
/// filed before names were pinned).
fn named(inputs: &Value, names: &PinnedNames, input: &str) -> Option<String> {
    names
        .targets
        .iter()
        .find(|t| t.input.as_deref() == Some(input))
        .map(describe)
        .or_else(|| {
            let raw = inputs.get(input).and_then(Value::as_str)?;
            Some(match names.by_id(raw) {
                Some(t) => describe(t),
                None if input == "role" => format!("`{raw}`"),
                None => raw.to_string(),
            })
        })
}

/// `a, b and c`.
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The plan of a request in one sentence, in names: "will create a GlobalRoleBinding of `admin` for Alice Example
/// (alice, u-tt2kw)". `workflow`: the request's workflow id; `inputs`: its stored inputs; `names`: its pinned names.
/// The one place this text is made: the page, `rancherctl approvals show`, the API's request view, webhook events
/// and chat messages all call it. Plain text: escape it for where it is shown.
pub fn plan_sentence(workflow: &str, inputs: &Inputs, names: &PinnedNames) -> String {
    let inputs = inputs.as_value();
    let text = |k: &str| inputs.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    let who = named(inputs, names, "user").or_else(|| named(inputs, names, "group"));
    let role = named(inputs, names, "role");
    let duration = text("duration").map(|d| match text("extends") {
        Some(_) => format!(", extended by {d}"),
        None => format!(", for {d} (then revoked)"),
    });
    let duration = duration.unwrap_or_default();
    let project = || {
        let p = named(inputs, names, "project").unwrap_or_else(|| "?".into());
        let within = names
            .targets
            .iter()
            .find(|t| t.input.as_deref() == Some("project"))
            .and_then(|t| t.within.clone());
        match within {
            Some(c) => format!("project {p} of cluster {c}"),
            None => format!("project {p}"),
        }
    };
    let cluster = || {
        format!(
            "cluster {}",
            named(inputs, names, "cluster").unwrap_or_else(|| "?".into())
        )
    };
    // The workflows that take no user, group or role input act on the targets pinned from their body or list.
    let others = || -> Vec<String> { names.targets.iter().map(describe).collect() };
    let subject = who.clone().unwrap_or_else(|| "?".into());
    match workflow {
        "create-global-role-binding" => format!(
            "will create a GlobalRoleBinding of {} for {subject}{duration}",
            role.unwrap_or_else(|| "?".into())
        ),
        "delete-global-role-binding" => match (text("binding"), role) {
            (Some(b), _) if who.is_none() => format!("will delete the GlobalRoleBinding {b}"),
            (Some(b), _) => format!("will delete the GlobalRoleBinding {b} of {subject}"),
            (None, Some(r)) => format!("will delete every GlobalRoleBinding of {r} for {subject}"),
            (None, None) => format!("will delete GlobalRoleBindings of {subject}"),
        },
        "grant-cluster-role" => format!(
            "will create a ClusterRoleTemplateBinding of {} in {} for {subject}{duration}",
            role.unwrap_or_else(|| "?".into()),
            cluster()
        ),
        "grant-project-role" => format!(
            "will create a ProjectRoleTemplateBinding of {} in {} for {subject}{duration}",
            role.unwrap_or_else(|| "?".into()),
            project()
        ),
        "revoke-cluster-role" | "revoke-project-role" => {
            let (kind, place) = if workflow == "revoke-cluster-role" {
                ("ClusterRoleTemplateBinding", cluster())
            } else {
                ("ProjectRoleTemplateBinding", project())
            };
            match (text("binding"), role, who) {
                (Some(b), _, _) => format!("will delete the {kind} {b} in {place}"),
                (None, Some(r), Some(w)) => format!("will delete every {kind} of {r} in {place} for {w}"),
                (None, None, Some(w)) => format!("will delete every {kind} in {place} for {w}"),
                (None, _, None) => format!("will delete {kind}s in {place}"),
            }
        }
        "offboard-user" => format!("will remove every role binding and token of {subject} and disable the account"),
        "cleanup-tokens" => match who {
            Some(w) => format!("will delete the pinned tokens of {w}"),
            None => "will delete the pinned tokens".into(),
        },
        "access-control-allow" | "access-control-disallow" | "access-control-enable" | "access-control-disable" => {
            // The provider given, else the one pinned at filing (the enabled one a disable deletes from).
            let provider = text("provider")
                .or_else(|| inputs.pointer("/deletions/provider").and_then(Value::as_str))
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            let people = listed(&others());
            match workflow {
                "access-control-allow" => format!("will allow {people} to log in through the{provider} auth provider"),
                "access-control-disallow" => {
                    format!("will stop allowing {people} to log in through the{provider} auth provider")
                }
                "access-control-enable" if people.is_empty() => format!("will enable the{provider} auth provider"),
                "access-control-enable" => format!("will enable the{provider} auth provider, allowing {people}"),
                _ => format!("will disable the{provider} auth provider"),
            }
        }
        "rancher-api-request" => {
            let op = text("operation").unwrap_or("?");
            let acted = others();
            if acted.is_empty() {
                format!("will send `{op}`")
            } else {
                format!("will send `{op}`, acting on {}", listed(&acted))
            }
        }
        _ => {
            let acted: Vec<String> = names.targets.iter().map(describe).collect();
            if acted.is_empty() {
                format!("will run `{workflow}`")
            } else {
                format!("will run `{workflow}`, acting on {}", listed(&acted))
            }
        }
    }
}

/// What a form may offer for input `input` of `workflow`, as `(value, label)`: users (`user`), global roles or role
/// templates of the right context (`role`), clusters (`cluster`), projects (`project`, as `cluster/project`).
/// Empty for any other input, and when the caller may not list them (the form then takes typed text).
pub async fn choices(session: &Session, workflow: &str, input: &str) -> Vec<(String, String)> {
    use crate::grants::resolve;
    let listed: Result<Vec<(String, String)>> = async {
        Ok(match input {
            "user" => users(session)
                .await?
                .into_iter()
                .filter(|u| !u.username.is_empty())
                .map(|u| {
                    let label = match u.display.trim() {
                        "" => u.username.clone(),
                        d => format!("{d} ({})", u.username),
                    };
                    (u.username, label)
                })
                .collect(),
            "role" if role_kind(workflow) == NamedKind::GlobalRole => {
                crate::roles::list(session, crate::roles::RoleKind::Global)
                    .await?
                    .iter()
                    .filter_map(|r| {
                        let id = r
                            .pointer("/metadata/name")
                            .or_else(|| r.get("id"))?
                            .as_str()?
                            .to_string();
                        let d = r.get("displayName").or_else(|| r.get("name")).and_then(Value::as_str);
                        Some((id.clone(), d.map(|d| format!("{d} ({id})")).unwrap_or(id)))
                    })
                    .collect()
            }
            "role" => {
                let context = if workflow.contains("cluster") {
                    "cluster"
                } else {
                    "project"
                };
                resolve::role_templates(session)
                    .await?
                    .into_iter()
                    .filter(|r| r.context == context && !r.locked)
                    .map(|r| (r.id.clone(), format!("{} ({})", r.name, r.id)))
                    .collect()
            }
            "cluster" => resolve::clusters(session)
                .await?
                .into_iter()
                .map(|c| (c.id.clone(), format!("{} ({})", c.name, c.id)))
                .collect(),
            "project" => {
                let clusters: BTreeMap<String, String> = resolve::clusters(session)
                    .await?
                    .into_iter()
                    .map(|c| (c.id, c.name))
                    .collect();
                resolve::projects(session)
                    .await?
                    .into_iter()
                    .map(|p| {
                        let c = clusters.get(&p.cluster).cloned().unwrap_or_else(|| p.cluster.clone());
                        (p.id.clone(), format!("{c}/{} ({})", p.name, p.id))
                    })
                    .collect()
            }
            _ => Vec::new(),
        })
    }
    .await;
    let mut out = listed.unwrap_or_default();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// [`plan_sentence`] of a stored request: its workflow, inputs and pinned names.
pub fn plan_of(request: &rancher_approval::ApprovalRequest) -> String {
    plan_sentence(
        &request.workflow_id,
        &Inputs::from(request.inputs.clone()),
        &request.names,
    )
}

/// The look-alike warnings of a request's names, one sentence each: "the username of Alice Example (alice,
/// u-tt2kw) looks like `aIice`, the username of u-x9x9x: check which person you mean". Plain text.
pub fn warnings(names: &PinnedNames) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for l in &names.look_alikes {
        let who = names.by_id(&l.target).map(describe).unwrap_or_else(|| l.target.clone());
        let w = format!(
            "the {} of {who}, `{}`, looks like `{}` of another user ({}): check which person you mean",
            l.field, l.name, l.other_name, l.other_id
        );
        seen.entry(w).or_insert(());
    }
    seen.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(id: &str, username: &str, display: &str) -> UserNames {
        UserNames {
            id: id.into(),
            username: username.into(),
            display: display.into(),
        }
    }

    fn target(kind: NamedKind, id: &str, display: Option<&str>, input: &str) -> NamedTarget {
        let mut t = NamedTarget::new(kind, id);
        t.display_name = display.map(str::to_string);
        t.input = Some(input.into());
        t
    }

    #[test]
    fn folding_catches_case_and_confusables() {
        assert_eq!(fold("Alice"), fold("alice"));
        assert_eq!(fold("alice"), fold("\u{0430}lice"), "Cyrillic a");
        assert_eq!(fold("Alice Example"), fold("alice  example"));
        assert_ne!(fold("alice"), fold("alicia"));
        let all = [
            user("u-1", "alice", "Alice Example"),
            user("u-2", "alice2", "alice example"),
            user("u-3", "\u{0430}lice", ""),
            user("u-4", "bob", "Bob"),
        ];
        let found = look_alikes_of(&all[0], &all);
        let others: Vec<(&str, &str)> = found.iter().map(|l| (l.field.as_str(), l.other_id.as_str())).collect();
        assert_eq!(others, [("display name", "u-2"), ("username", "u-3")]);
        assert!(look_alikes_of(&all[3], &all).is_empty());
    }

    #[test]
    fn plans_read_in_names() {
        let mut alice = target(NamedKind::User, "u-tt2kw", Some("Alice Example"), "user");
        alice.username = Some("alice".into());
        let mut project = target(NamedKind::Project, "c-abc:p-xyz", Some("Payments"), "project");
        project.within = Some("prod".into());
        let names = PinnedNames {
            targets: vec![
                alice.clone(),
                target(
                    NamedKind::RoleTemplate,
                    "project-member",
                    Some("Project Member"),
                    "role",
                ),
                project,
            ],
            look_alikes: vec![LookAlike {
                target: "u-tt2kw".into(),
                field: "username".into(),
                name: "alice".into(),
                other_id: "u-evil".into(),
                other_name: "\u{0430}lice".into(),
            }],
        };
        let inputs = json!({"user": "u-tt2kw", "role": "project-member", "project": "c-abc:p-xyz", "duration": "8h"});
        assert_eq!(
            plan_sentence("grant-project-role", &inputs.into(), &names),
            "will create a ProjectRoleTemplateBinding of `Project Member` (project-member) in project Payments (c-abc:p-xyz) of cluster prod for Alice Example (alice, u-tt2kw), for 8h (then revoked)"
        );
        let w = warnings(&names);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("Alice Example (alice, u-tt2kw)") && w[0].contains("u-evil"),
            "{w:?}"
        );
        // A request filed before names were pinned still reads, in ids.
        let old = plan_sentence(
            "create-global-role-binding",
            &json!({"user": "u-1", "role": "admin"}).into(),
            &PinnedNames::default(),
        );
        assert_eq!(old, "will create a GlobalRoleBinding of `admin` for u-1");
        let allow = PinnedNames {
            targets: vec![
                NamedTarget::new(NamedKind::User, "github_user://1"),
                target(NamedKind::Group, "github_team://7", Some("Developers"), "x"),
            ],
            look_alikes: vec![],
        };
        assert_eq!(
            plan_sentence("access-control-allow", &json!({"identities": "x", "provider": "github"}).into(), &allow),
            "will allow user github_user://1 and group Developers (github_team://7) to log in through the github auth provider"
        );
    }

    #[test]
    fn binding_tables_name_the_subject() {
        let mut names = std::collections::HashMap::new();
        names.insert("u-1".to_string(), "alice".to_string());
        names.insert(crate::listing::display_key("u-1"), "Alice Example".to_string());
        names.insert("u-2".to_string(), "bob".to_string());
        assert_eq!(crate::listing::subject_cell(&names, "u-1"), "Alice Example (alice)");
        assert_eq!(crate::listing::subject_cell(&names, "u-2"), "bob");
        assert_eq!(crate::listing::subject_cell(&names, "u-gone"), "user");
        names.insert(crate::listing::group_key("github_team://7"), "Developers".to_string());
        assert_eq!(
            crate::listing::group_cell(&names, "github_team://7"),
            "Developers (group)"
        );
        assert_eq!(
            crate::listing::group_cell(&names, "github_team://8"),
            "group",
            "a group nobody could name"
        );
    }

    #[test]
    fn every_write_workflow_has_a_plan_that_names_its_targets() {
        let mut alice = target(NamedKind::User, "u-tt2kw", Some("Alice Example"), "user");
        alice.username = Some("alice".into());
        let names = PinnedNames {
            targets: vec![alice],
            look_alikes: vec![],
        };
        for w in crate::registry::all().iter().filter(|w| w.writes) {
            let s = plan_sentence(
                w.id,
                &json!({"user": "u-tt2kw", "operation": "rk.users.patch"}).into(),
                &names,
            );
            assert!(s.starts_with("will "), "{}: {s}", w.id);
            if w.inputs.iter().any(|i| i.name == "user") || w.id == "rancher-api-request" {
                assert!(s.contains("Alice Example (alice, u-tt2kw)"), "{}: {s}", w.id);
            }
        }
    }
}

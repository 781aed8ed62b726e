//! Names as people type them, resolved to the ids Rancher uses: a cluster by id or display name, a project by
//! `c-x:p-y` or `cluster/project`, a role template by id or display name (of the right context), a group by
//! principal id or name (principal search). Unknown or ambiguous names are refused with the candidates.

use futures::TryStreamExt;
use rancher_api::requests::{
    RkProjectsListAll, RkRoletemplatesList, V3ClustersList, V3PrincipalsGet, V3PrincipalsSearch, V3ProjectsList,
    V3RoletemplatesList,
};
use rancher_api::types::V3PrincipalSearch as SearchBody;

use crate::error::{Error, Result};
use crate::session::Session;

/// A cluster: id and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRef {
    /// `c-xxxxx` (or `local`).
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A project: `c-x:p-y` id, display name, cluster and the namespace its bindings live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef {
    /// `<cluster id>:<project name>`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Cluster id.
    pub cluster: String,
    /// The namespace of its PRTBs (the backing namespace from 2.9, else the project name).
    pub namespace: String,
}

/// A role template: id, display name and context (`cluster` or `project`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTemplateRef {
    /// Metadata name, e.g. `project-member`.
    pub id: String,
    /// Display name, e.g. `Project Member`.
    pub name: String,
    /// `cluster` or `project`.
    pub context: String,
    /// Locked templates cannot be assigned.
    pub locked: bool,
}

/// Lists candidates for an error: at most 15, then how many more.
fn candidates(items: impl IntoIterator<Item = String>) -> String {
    let all: Vec<String> = items.into_iter().collect();
    if all.is_empty() {
        return "none".into();
    }
    let mut shown = all.iter().take(15).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > 15 {
        shown += &format!(" and {} more", all.len() - 15);
    }
    shown
}

/// Every cluster (norman `/v3`: the endpoint list has no RK-API cluster operations).
pub async fn clusters(session: &Session) -> Result<Vec<ClusterRef>> {
    let items: Vec<_> = session
        .client
        .v3()
        .clusters()
        .list(V3ClustersList::new())
        .try_collect()
        .await?;
    Ok(items
        .into_iter()
        .map(|c| ClusterRef {
            id: c.id.unwrap_or_default(),
            name: c.name.unwrap_or_default(),
        })
        .filter(|c| !c.id.is_empty())
        .collect())
}

/// A cluster by id or display name.
pub async fn cluster(session: &Session, text: &str) -> Result<ClusterRef> {
    let all = clusters(session).await?;
    if let Some(c) = all.iter().find(|c| c.id == text) {
        return Ok(c.clone());
    }
    let named: Vec<&ClusterRef> = all.iter().filter(|c| c.name == text).collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::NotFound(format!(
            "cluster `{text}` does not exist (neither a cluster id nor a display name); clusters: {}",
            candidates(all.iter().map(|c| format!("{} ({})", c.id, c.name)))
        ))),
        many => Err(Error::Refused(format!(
            "cluster name `{text}` is ambiguous: {} clusters have it; give the id instead: {}",
            many.len(),
            candidates(many.iter().map(|c| c.id.clone()))
        ))),
    }
}

/// Every project.
pub async fn projects(session: &Session) -> Result<Vec<ProjectRef>> {
    let rk = rancher_api::find_operation(rancher_api::ids::RK_PROJECTS_LIST_ALL)
        .is_some_and(|o| session.version.at_least(o.since.major, o.since.minor));
    let listed = if rk {
        match session
            .client
            .projects()
            .list_all(RkProjectsListAll::new())
            .try_collect::<Vec<_>>()
            .await
        {
            Ok(items) => Some(items),
            // Projects are behind the RK proxy's local-cluster gate for a person without local-cluster access
            // (rancher/rancher pkg/api/steve/proxy/proxy.go); /v3 serves them the projects they may read.
            // A person who may read only some projects may not list them at the cluster scope either.
            Err(e) if e.is_local_cluster_gate() || e.is_forbidden() => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    if let Some(items) = listed {
        Ok(items
            .into_iter()
            .map(|p| {
                let meta = p.metadata.unwrap_or_default();
                let cluster = meta.namespace.unwrap_or_default();
                let name = meta.name.unwrap_or_default();
                let backing = p.status.and_then(|s| s.backing_namespace).filter(|s| !s.is_empty());
                ProjectRef {
                    id: format!("{cluster}:{name}"),
                    name: p.spec.and_then(|s| s.display_name).unwrap_or_default(),
                    namespace: backing.unwrap_or_else(|| name.clone()),
                    cluster,
                }
            })
            .collect())
    } else {
        let items: Vec<_> = session
            .client
            .v3()
            .projects()
            .list(V3ProjectsList::new())
            .try_collect()
            .await?;
        Ok(items
            .into_iter()
            .map(|p| {
                let id = p.id.unwrap_or_default();
                let (cluster, name) = id
                    .split_once(':')
                    .map(|(c, n)| (c.to_string(), n.to_string()))
                    .unwrap_or_default();
                let backing = p.backing_namespace.filter(|s| !s.is_empty());
                ProjectRef {
                    name: p.name.unwrap_or_default(),
                    namespace: backing.unwrap_or_else(|| name.clone()),
                    cluster,
                    id,
                }
            })
            .collect())
    }
}

/// A project by `c-x:p-y` id or `cluster/project` display names (the cluster part may be an id too).
pub async fn project(session: &Session, text: &str) -> Result<ProjectRef> {
    let all = projects(session).await?;
    if text.contains(':') {
        return all.iter().find(|p| p.id == text).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "project `{text}` does not exist; projects: {}",
                candidates(all.iter().map(|p| format!("{} ({})", p.id, p.name)))
            ))
        });
    }
    let Some((cluster_text, project_text)) = text.split_once('/') else {
        return Err(bare_project(session, text, &all).await);
    };
    let c = cluster(session, cluster_text).await?;
    let in_cluster: Vec<&ProjectRef> = all.iter().filter(|p| p.cluster == c.id).collect();
    let named: Vec<&&ProjectRef> = in_cluster
        .iter()
        .filter(|p| p.name == project_text || p.id == format!("{}:{project_text}", c.id))
        .collect();
    match named.as_slice() {
        [one] => Ok((**one).clone()),
        [] => Err(Error::NotFound(format!(
            "cluster {} ({}) has no project `{project_text}`; its projects: {}",
            c.name,
            c.id,
            candidates(in_cluster.iter().map(|p| format!("{} ({})", p.name, p.id)))
        ))),
        many => Err(Error::Refused(format!(
            "project name `{project_text}` is ambiguous in cluster {}: give the id instead: {}",
            c.id,
            candidates(many.iter().map(|p| p.id.clone()))
        ))),
    }
}

/// The refusal of a project given by its name alone: a project name is only unique within its cluster (every
/// cluster has a `Default`), so the projects it could mean are listed in the `cluster/project` form the input takes,
/// or every project when none has that name.
async fn bare_project(session: &Session, text: &str, all: &[ProjectRef]) -> Error {
    let cluster_names: std::collections::HashMap<String, String> = match clusters(session).await {
        Ok(cs) => cs.into_iter().map(|c| (c.id, c.name)).collect(),
        Err(e) => return e,
    };
    let shown = |p: &ProjectRef| {
        let cluster = cluster_names
            .get(&p.cluster)
            .filter(|n| !n.is_empty())
            .unwrap_or(&p.cluster);
        format!("{cluster}/{} ({})", p.name, p.id)
    };
    let named: Vec<&ProjectRef> = all.iter().filter(|p| p.name == text).collect();
    let form = "write it as `cluster/project` (display names) or `c-xxxxx:p-yyyyy` (its id)";
    if named.is_empty() {
        Error::NotFound(format!(
            "no project is named `{text}`; {form}; projects: {}",
            candidates(all.iter().map(shown))
        ))
    } else {
        Error::Refused(format!(
            "project `{text}` names no cluster; {form}: {}",
            candidates(named.into_iter().map(shown))
        ))
    }
}

/// Every role template (RK-API, or `/v3` where the RK-API refuses it for lack of local-cluster access).
pub async fn role_templates(session: &Session) -> Result<Vec<RoleTemplateRef>> {
    let rk = rancher_api::find_operation(rancher_api::ids::RK_ROLETEMPLATES_LIST)
        .is_some_and(|o| session.version.at_least(o.since.major, o.since.minor))
        && session.version.at_least(2, 11);
    if rk {
        match session
            .client
            .role_templates()
            .list(RkRoletemplatesList::new())
            .try_collect::<Vec<_>>()
            .await
        {
            Ok(items) => {
                return Ok(items
                    .into_iter()
                    .map(|r| RoleTemplateRef {
                        id: r.metadata.and_then(|m| m.name).unwrap_or_default(),
                        name: r.display_name.unwrap_or_default(),
                        context: r.context.unwrap_or_default(),
                        locked: r.locked == Some(true),
                    })
                    .collect())
            }
            // Role templates are off the RK proxy's allow-list without local-cluster access (rancher/rancher
            // pkg/api/steve/proxy/proxy.go); /v3 serves them to the same account.
            Err(e) if e.is_local_cluster_gate() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let items: Vec<_> = session
        .client
        .v3()
        .roletemplates()
        .list(V3RoletemplatesList::new())
        .try_collect()
        .await?;
    Ok(items
        .into_iter()
        .map(|r| RoleTemplateRef {
            id: r.id.unwrap_or_default(),
            name: r.name.unwrap_or_default(),
            context: r.context.unwrap_or_default(),
            locked: r.locked == Some(true),
        })
        .collect())
}

/// A role template by id or display name, which must be of `context` (`cluster` or `project`) and not locked.
///
/// Rancher's webhook refuses a binding whose role template context differs from the binding's
/// (rancher/webhook pkg/resources/management.cattle.io/v3/clusterroletemplatebinding/validator.go and
/// projectroletemplatebinding/validator.go) and a locked template; both are refused here before anything is filed.
pub async fn role_template(session: &Session, text: &str, context: &str) -> Result<RoleTemplateRef> {
    let all = role_templates(session).await?;
    // Nearest first (by id or display name, ignoring case), so the one meant leads the list.
    let of_context = || {
        let mut near: Vec<&RoleTemplateRef> = all.iter().filter(|r| r.context == context && !r.locked).collect();
        let distance = |r: &RoleTemplateRef| {
            let t = text.to_lowercase();
            rancher_api::spec::edit_distance(&t, &r.id.to_lowercase())
                .min(rancher_api::spec::edit_distance(&t, &r.name.to_lowercase()))
        };
        near.sort_by_key(|r| (distance(r), r.id.clone()));
        candidates(near.iter().map(|r| format!("{} ({})", r.id, r.name)))
    };
    let found: Vec<&RoleTemplateRef> = match all.iter().find(|r| r.id == text) {
        Some(r) => vec![r],
        None => all
            .iter()
            .filter(|r| r.name == text || r.name.eq_ignore_ascii_case(text))
            .collect(),
    };
    let rt = match found.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(Error::NotFound(format!(
                "role template `{text}` does not exist; {context} role templates: {}",
                of_context()
            )))
        }
        many => {
            // The same display name in both contexts is common (e.g. custom roles): the context decides.
            let right: Vec<&&RoleTemplateRef> = many.iter().filter(|r| r.context == context).collect();
            match right.as_slice() {
                [one] => (**one).clone(),
                _ => {
                    return Err(Error::Refused(format!(
                        "role template name `{text}` is ambiguous; give the id instead: {}",
                        candidates(many.iter().map(|r| format!("{} ({}, {})", r.id, r.name, r.context)))
                    )))
                }
            }
        }
    };
    if rt.context != context {
        let (other, what) = if context == "cluster" {
            ("project", "a cluster grant")
        } else {
            ("cluster", "a project grant")
        };
        return Err(Error::Refused(format!(
            "role template `{}` ({}) is a {other} role template; {what} needs a {context} role template (Rancher refuses the mismatch): {}",
            rt.id,
            rt.name,
            of_context()
        )));
    }
    if rt.locked {
        return Err(Error::Refused(format!(
            "role template `{}` is locked: Rancher does not assign it any more; pick another: {}",
            rt.id,
            of_context()
        )));
    }
    Ok(rt)
}

/// A group by principal id (`github_team://7`, `activedirectory_group://CN=...`) or by name, found with principal
/// search (only groups of the enabled auth provider exist).
pub async fn group(session: &Session, text: &str) -> Result<String> {
    let v3 = session.client.v3();
    if text.contains("://") {
        return match v3.principals().get(V3PrincipalsGet::new(text)).await {
            Ok(p) if p.principal_type.as_deref() == Some("group") => Ok(p.id.unwrap_or_else(|| text.to_string())),
            Ok(p) => Err(Error::Refused(format!(
                "principal `{text}` is a {}, not a group; give a user with `user=` instead",
                p.principal_type.unwrap_or_else(|| "principal".into())
            ))),
            Err(e) if e.is_not_found() => Err(Error::NotFound(format!(
                "group principal `{text}` does not exist on the enabled auth provider; `rancherctl run identities-search --input name=... --input type=group` finds groups"
            ))),
            Err(e) => Err(e.into()),
        };
    }
    let body = SearchBody {
        name: Some(text.to_string()),
        principal_type: Some("group".into()),
        ..Default::default()
    };
    let found = v3.principals().search(V3PrincipalsSearch::new(body)).await?.data;
    let groups: Vec<_> = found
        .into_iter()
        .filter(|p| p.principal_type.as_deref() == Some("group"))
        .collect();
    let exact: Vec<_> = groups
        .iter()
        .filter(|p| p.name.as_deref() == Some(text) || p.login_name.as_deref() == Some(text))
        .collect();
    match exact.as_slice() {
        [one] => Ok(one.id.clone().unwrap_or_default()),
        [] => Err(Error::NotFound(format!(
            "no group named `{text}` on the enabled auth provider; groups found by that prefix: {}",
            candidates(groups.iter().map(|p| format!(
                "{} ({})",
                p.id.clone().unwrap_or_default(),
                p.name.clone().unwrap_or_default()
            )))
        ))),
        many => Err(Error::Refused(format!(
            "group name `{text}` is ambiguous; give the principal id instead: {}",
            candidates(many.iter().map(|p| p.id.clone().unwrap_or_default()))
        ))),
    }
}

//! Everything an access review reads, once: users, global/cluster/project role bindings, global roles, role
//! templates (with their `roleTemplateNames` inheritance), clusters, projects, and the groups each user belongs
//! to where the server tells: the group principals each auth provider reported at the user's last login or
//! refresh, which Rancher keeps in the user's `UserAttribute` (rancher/rancher pkg/apis/management.cattle.io/v3/
//! authn_types.go; login tokens carry none, pkg/auth/tokens/manager.go `NewLoginToken`). As Rancher's
//! authenticator does (pkg/auth/requests/authenticate.go), a token's own legacy `groupPrincipals` count only for a
//! provider the user's attribute has no entry for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use rancher_api::requests::{
    RkClusterroletemplatebindingsListAll, RkGlobalrolebindingsList, RkGlobalrolesList, RkMgmttokensList,
    RkProjectroletemplatebindingsListAll, RkProjectsListAll, RkRoletemplatesList, RkUserattributesList, RkUsersList,
    V3ClustersList, V3RoletemplatesList, V3UsersList, V3UsersRefreshGroups,
};
use serde::Serialize;
use serde_json::Value;

use super::{collect_with, refused_gated, rk_users};
use crate::error::{Error, Result};
use crate::session::Session;

/// The label naming the GlobalRoleBinding a generated CRTB belongs to.
const GRB_OWNER_LABEL: &str = "authz.management.cattle.io/grb-owner";

/// A user as the review shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Person {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub enabled: bool,
    /// From the `cattle.io/last-login` label (epoch seconds), which Rancher's user-retention labeler copies from
    /// the user's `UserAttribute.lastLogin` (release/v2.8 on; rancher/rancher pkg/auth/userretention/label.go).
    pub last_login: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub principals: Vec<String>,
}

/// Where a binding grants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "scope", content = "on", rename_all = "lowercase")]
pub(crate) enum Scope {
    Global,
    Cluster(String),
    Project(String),
}

impl Scope {
    pub fn label(&self) -> String {
        match self {
            Scope::Global => "global".into(),
            Scope::Cluster(c) => format!("cluster {c}"),
            Scope::Project(p) => format!("project {p}"),
        }
    }
}

/// One binding, normalised over the three kinds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Binding {
    /// `globalrolebinding/<name>`, `clusterroletemplatebinding/<ns>/<name>`, `projectroletemplatebinding/<ns>/<name>`.
    pub id: String,
    /// Kind of binding (`grb`, `crtb`, `prtb`), name and namespace, for a delete.
    #[serde(skip)]
    pub kind: &'static str,
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub namespace: String,
    pub scope: Scope,
    pub role: String,
    /// User id, for a user binding.
    pub user: Option<String>,
    /// Group principal, for a group binding.
    pub group: Option<String>,
    /// Why it is orphaned: its user, role, cluster or project no longer exists.
    pub orphaned: Vec<String>,
}

/// Everything read for one review.
pub(crate) struct Inventory {
    pub users: Vec<Person>,
    pub bindings: Vec<Binding>,
    /// Role template name -> the templates it includes (`roleTemplateNames`).
    pub role_templates: HashMap<String, Vec<String>>,
    pub global_roles: HashSet<String>,
    pub clusters: HashSet<String>,
    /// Project id (`<cluster>:<project>`) -> display name.
    pub projects: HashMap<String, String>,
    /// User id -> the group principals the server says it belongs to.
    pub groups: HashMap<String, BTreeSet<String>>,
    /// User id -> when the server last read its groups from the provider (the later of the attribute's
    /// `lastLogin` and `LastRefresh`); absent when the server has no attribute for the user.
    pub groups_as_of: HashMap<String, DateTime<Utc>>,
    /// Indexes into `bindings`: by user id, and by group principal (so a review is linear, not users x bindings).
    by_user: HashMap<String, Vec<usize>>,
    by_group: HashMap<String, Vec<usize>>,
}

/// Asks Rancher to re-read every user's group memberships from the auth providers: norman's
/// `refreshauthprovideraccess` collection action (rancher/rancher pkg/auth/api/user/user_actions.go
/// `refreshAttributes`, served 2.0-2.13; needs `create` on users). Rancher 2.13 also offers the same as an
/// ext.cattle.io `GroupMembershipRefreshRequest` (pkg/ext/stores/groupmembershiprefreshrequest/store.go, `userId:
/// "*"`); the action serves every 2.x version, so it is used throughout. Both only start the refresh
/// (pkg/auth/providerrefresh/refresher.go `TriggerAllUserRefresh`): answers when Rancher was asked.
pub(crate) async fn request_group_refresh(session: &Session) -> Result<DateTime<Utc>> {
    let asked = Utc::now();
    session
        .client
        .send(&V3UsersRefreshGroups::new(serde_json::json!({})))
        .await?;
    Ok(asked)
}

fn live(meta: Option<&rancher_api::types::ObjectMeta>) -> bool {
    meta.is_none_or(|m| m.deletion_timestamp.is_none())
}

fn last_login(labels: Option<&BTreeMap<String, String>>) -> Option<DateTime<Utc>> {
    labels?
        .get("cattle.io/last-login")?
        .parse::<i64>()
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
}

fn is_system(principals: &[String]) -> bool {
    principals.iter().any(|p| p.starts_with("system://"))
}

/// The id of a principal as Rancher stores it (`metadata.name`; older shapes: `name`, or a bare string).
fn principal_id(p: &Value) -> Option<String> {
    p.pointer("/metadata/name")
        .or_else(|| p.get("name"))
        .and_then(Value::as_str)
        .or_else(|| p.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

impl Inventory {
    /// Reads everything. `with_groups` also streams the login tokens for group memberships.
    pub async fn load(session: &Session, with_groups: bool) -> Result<Inventory> {
        let c = &session.client;
        let users = if rk_users(session) {
            collect_with::<_, _, Vec<_>>("users", c.users().list(RkUsersList::new()), |u| {
                let meta = u.metadata.as_ref();
                live(meta).then(|| Person {
                    id: meta.and_then(|m| m.name.clone()).unwrap_or_default(),
                    username: u.username.unwrap_or_default(),
                    display_name: u.display_name.unwrap_or_default(),
                    enabled: u.enabled != Some(false),
                    last_login: last_login(meta.and_then(|m| m.labels.as_ref())),
                    principals: u.principal_ids.unwrap_or_default(),
                })
            })
            .await?
        } else {
            collect_with::<_, _, Vec<_>>("users", c.v3().users().list(V3UsersList::new()), |u| {
                Some(Person {
                    last_login: last_login(u.labels.as_ref()),
                    id: u.id.unwrap_or_default(),
                    username: u.username.unwrap_or_default(),
                    display_name: u.name.unwrap_or_default(),
                    enabled: u.enabled != Some(false),
                    principals: u.principal_ids.unwrap_or_default(),
                })
            })
            .await?
        };
        let users: Vec<Person> = users
            .into_iter()
            .filter(|p| !p.id.is_empty() && !is_system(&p.principals))
            .collect();

        let global_roles: HashSet<String> =
            collect_with("global roles", c.global_roles().list(RkGlobalrolesList::new()), |r| {
                r.metadata.and_then(|m| m.name)
            })
            .await?;
        let templates = c.role_templates().list(RkRoletemplatesList::new());
        let role_templates: HashMap<String, Vec<String>> = match collect_with("role templates", templates, |r| {
            Some((r.metadata?.name?, r.role_template_names.unwrap_or_default()))
        })
        .await
        {
            Ok(map) => map,
            // Role templates are off the RK proxy's allow-list: without local-cluster access Rancher answers an
            // empty 403 (rancher/rancher pkg/api/steve/proxy/proxy.go); /v3 serves them to the same account.
            Err(Error::Api(e)) if e.is_local_cluster_gate() => {
                collect_with(
                    "role templates",
                    c.v3().roletemplates().list(V3RoletemplatesList::new()),
                    |r| Some((r.id?, r.role_template_ids.unwrap_or_default())),
                )
                .await?
            }
            Err(e) => return Err(e),
        };
        let clusters: HashSet<String> =
            collect_with("clusters", c.v3().clusters().list(V3ClustersList::new()), |c| c.id).await?;
        let projects: HashMap<String, String> =
            collect_with("projects", c.projects().list_all(RkProjectsListAll::new()), |p| {
                if !live(p.metadata.as_ref()) {
                    return None;
                }
                let m = p.metadata?;
                Some((
                    format!("{}:{}", m.namespace?, m.name?),
                    p.spec.and_then(|s| s.display_name).unwrap_or_default(),
                ))
            })
            .await?;

        let mut bindings: Vec<Binding> = collect_with(
            "global role bindings",
            c.global_role_bindings().list(RkGlobalrolebindingsList::new()),
            |b| {
                if !live(b.metadata.as_ref()) {
                    return None;
                }
                let name = b.metadata.as_ref().and_then(|m| m.name.clone()).unwrap_or_default();
                Some(Binding {
                    id: format!("globalrolebinding/{name}"),
                    kind: "grb",
                    name,
                    namespace: String::new(),
                    scope: Scope::Global,
                    role: b.global_role_name.clone().unwrap_or_default(),
                    user: nonempty(&b.user_name),
                    group: nonempty(&b.group_principal_name),
                    orphaned: Vec::new(),
                })
            },
        )
        .await?;
        let crtbs = c
            .cluster_role_template_bindings()
            .list_all(RkClusterroletemplatebindingsListAll::new());
        let crtbs: Vec<Binding> = collect_with("cluster role template bindings", crtbs, |b| {
            if !live(b.metadata.as_ref()) {
                return None;
            }
            let (name, ns) = b
                .metadata
                .as_ref()
                .map(|m| {
                    (
                        m.name.clone().unwrap_or_default(),
                        m.namespace.clone().unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            let cluster = nonempty(&b.cluster_name).unwrap_or_else(|| ns.clone());
            // A `crtb-grb-*` CRTB is the GRB controller's copy of a global role's `inheritedClusterRoles` (rancher/rancher
            // pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go, label `grb-owner`): it is
            // shown as that global role binding's grant, and removing access means deleting the binding (Rancher
            // would recreate the CRTB).
            let owner = b
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(GRB_OWNER_LABEL))
                .filter(|o| !o.is_empty())
                .cloned();
            let (id, kind, name, ns) = match owner {
                Some(o) => (format!("globalrolebinding/{o}"), "grb", o, String::new()),
                None => (format!("clusterroletemplatebinding/{ns}/{name}"), "crtb", name, ns),
            };
            Some(Binding {
                id,
                kind,
                name,
                namespace: ns,
                scope: Scope::Cluster(cluster),
                role: b.role_template_name.clone().unwrap_or_default(),
                user: nonempty(&b.user_name),
                group: nonempty(&b.group_principal_name).or_else(|| nonempty(&b.group_name)),
                orphaned: Vec::new(),
            })
        })
        .await?;
        bindings.extend(crtbs);
        let prtbs = c
            .project_role_template_bindings()
            .list_all(RkProjectroletemplatebindingsListAll::new());
        let prtbs: Vec<Binding> = collect_with("project role template bindings", prtbs, |b| {
            if !live(b.metadata.as_ref()) {
                return None;
            }
            let (name, ns) = b
                .metadata
                .as_ref()
                .map(|m| {
                    (
                        m.name.clone().unwrap_or_default(),
                        m.namespace.clone().unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            Some(Binding {
                id: format!("projectroletemplatebinding/{ns}/{name}"),
                kind: "prtb",
                name,
                namespace: ns,
                scope: Scope::Project(b.project_name.clone().unwrap_or_default()),
                role: b.role_template_name.clone().unwrap_or_default(),
                user: nonempty(&b.user_name),
                group: nonempty(&b.group_principal_name).or_else(|| nonempty(&b.group_name)),
                orphaned: Vec::new(),
            })
        })
        .await?;
        bindings.extend(prtbs);

        let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut groups_as_of: HashMap<String, DateTime<Utc>> = HashMap::new();
        if with_groups {
            // User id -> the providers its attribute has an entry for (their token groups are not used).
            let mut attributed: HashMap<String, HashSet<String>> = HashMap::new();
            let mut attrs = c.user_attributes().list(RkUserattributesList::new().limit(2000));
            while let Some(a) = attrs
                .try_next()
                .await
                .map_err(|e| refused_gated("userattributes.management.cattle.io", e))?
            {
                let user = a
                    .metadata
                    .as_ref()
                    .and_then(|m| m.name.clone())
                    .or_else(|| a.user_name.clone())
                    .unwrap_or_default();
                if user.is_empty() {
                    continue;
                }
                let seen = [a.last_login.as_deref(), a.last_refresh.as_deref()]
                    .into_iter()
                    .filter_map(super::time)
                    .max();
                if let Some(t) = seen {
                    groups_as_of.insert(user.clone(), t);
                }
                for (provider, list) in a.group_principals.iter().flatten() {
                    attributed.entry(user.clone()).or_default().insert(provider.clone());
                    let set = groups.entry(user.clone()).or_default();
                    set.extend(list.items.iter().flatten().filter_map(principal_id));
                }
            }
            let mut tokens = c.management_tokens().list(RkMgmttokensList::new().limit(2000));
            while let Some(t) = tokens
                .try_next()
                .await
                .map_err(|e| refused_gated("tokens.management.cattle.io", e))?
            {
                let Some(gp) = t.group_principals.as_ref().filter(|g| !g.is_empty()) else {
                    continue;
                };
                let user = t.user_id.clone().unwrap_or_default();
                let provider = t.auth_provider.clone().unwrap_or_default();
                if attributed.get(&user).is_some_and(|p| p.contains(&provider)) {
                    continue;
                }
                groups
                    .entry(user)
                    .or_default()
                    .extend(gp.iter().filter_map(principal_id));
            }
        }

        let mut inv = Inventory {
            users,
            bindings,
            role_templates,
            global_roles,
            clusters,
            projects,
            groups,
            groups_as_of,
            by_user: HashMap::new(),
            by_group: HashMap::new(),
        };
        inv.mark_orphans();
        inv.index();
        Ok(inv)
    }

    /// Flags bindings whose user, role (global role or role template), cluster or project no longer exists.
    fn mark_orphans(&mut self) {
        let users: HashSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        for b in &mut self.bindings {
            let mut why = Vec::new();
            if let Some(u) = &b.user {
                if !users.contains(u.as_str()) {
                    why.push(format!("user {u} does not exist"));
                }
            }
            if b.user.is_none() && b.group.is_none() {
                why.push("names no user or group".into());
            }
            match &b.scope {
                Scope::Global => {
                    if !self.global_roles.contains(&b.role) {
                        why.push(format!("global role {} does not exist", b.role));
                    }
                }
                Scope::Cluster(c) => {
                    if !self.role_templates.contains_key(&b.role) {
                        why.push(format!("role template {} does not exist", b.role));
                    }
                    if !self.clusters.contains(c) {
                        why.push(format!("cluster {c} does not exist"));
                    }
                }
                Scope::Project(p) => {
                    if !self.role_templates.contains_key(&b.role) {
                        why.push(format!("role template {} does not exist", b.role));
                    }
                    if !self.projects.contains_key(p) {
                        why.push(format!("project {p} does not exist"));
                    }
                    let cluster = p.split(':').next().unwrap_or_default();
                    if !cluster.is_empty() && !self.clusters.contains(cluster) {
                        why.push(format!("cluster {cluster} does not exist"));
                    }
                }
            }
            b.orphaned = why;
        }
    }

    fn index(&mut self) {
        for (i, b) in self.bindings.iter().enumerate() {
            if let Some(u) = &b.user {
                self.by_user.entry(u.clone()).or_default().push(i);
            } else if let Some(g) = &b.group {
                self.by_group.entry(g.clone()).or_default().push(i);
            }
        }
    }

    /// The role and every role template it includes, transitively (`roleTemplateNames`), the role first.
    pub fn effective(&self, role: &str) -> Vec<String> {
        let mut out = vec![role.to_string()];
        let mut seen: HashSet<String> = HashSet::from([role.to_string()]);
        let mut i = 0;
        while i < out.len() {
            let next = self.role_templates.get(&out[i]).cloned().unwrap_or_default();
            for n in next {
                if seen.insert(n.clone()) {
                    out.push(n);
                }
            }
            i += 1;
        }
        out
    }

    /// The bindings that reach `user`, in list order: its own, and those of groups the server says it belongs to
    /// (with the group).
    pub fn grants_of<'a>(&'a self, user: &'a Person) -> impl Iterator<Item = (&'a Binding, Option<&'a str>)> + 'a {
        let mut hits: Vec<(usize, Option<&'a str>)> = self
            .by_user
            .get(&user.id)
            .into_iter()
            .flatten()
            .map(|&i| (i, None))
            .collect();
        let groups = self
            .groups
            .get(&user.id)
            .into_iter()
            .flatten()
            .chain(user.principals.iter());
        for g in groups {
            for &i in self.by_group.get(g).into_iter().flatten() {
                if !hits.iter().any(|(j, _)| *j == i) {
                    hits.push((i, Some(g.as_str())));
                }
            }
        }
        hits.sort_by_key(|(i, _)| *i);
        hits.into_iter().map(move |(i, g)| (&self.bindings[i], g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        Inventory {
            users: vec![Person {
                id: "u-1".into(),
                username: "alice".into(),
                display_name: String::new(),
                enabled: true,
                last_login: None,
                principals: vec!["local://u-1".into()],
            }],
            bindings: vec![
                Binding {
                    id: "a".into(),
                    kind: "crtb",
                    name: "a".into(),
                    namespace: "c-1".into(),
                    scope: Scope::Cluster("c-1".into()),
                    role: "cluster-owner".into(),
                    user: Some("u-1".into()),
                    group: None,
                    orphaned: vec![],
                },
                Binding {
                    id: "b".into(),
                    kind: "crtb",
                    name: "b".into(),
                    namespace: "c-1".into(),
                    scope: Scope::Cluster("c-9".into()),
                    role: "gone-role".into(),
                    user: Some("u-7".into()),
                    group: None,
                    orphaned: vec![],
                },
                Binding {
                    id: "c".into(),
                    kind: "grb",
                    name: "c".into(),
                    namespace: String::new(),
                    scope: Scope::Global,
                    role: "admin".into(),
                    user: None,
                    group: Some("ad_group://x".into()),
                    orphaned: vec![],
                },
            ],
            role_templates: HashMap::from([
                (
                    "cluster-owner".into(),
                    vec!["nodes-manage".into(), "cluster-member".into()],
                ),
                ("cluster-member".into(), vec!["nodes-view".into()]),
                ("nodes-manage".into(), vec![]),
                ("nodes-view".into(), vec!["cluster-member".into()]),
            ]),
            global_roles: HashSet::from(["admin".into()]),
            clusters: HashSet::from(["c-1".into()]),
            projects: HashMap::new(),
            groups: HashMap::from([("u-1".into(), BTreeSet::from(["ad_group://x".into()]))]),
            groups_as_of: HashMap::new(),
            by_user: HashMap::new(),
            by_group: HashMap::new(),
        }
    }

    #[test]
    fn inheritance_is_transitive_and_survives_cycles() {
        assert_eq!(
            inv().effective("cluster-owner"),
            ["cluster-owner", "nodes-manage", "cluster-member", "nodes-view"]
        );
    }

    #[test]
    fn orphans_name_every_missing_part_and_groups_reach_members() {
        let mut i = inv();
        i.mark_orphans();
        i.index();
        assert!(i.bindings[0].orphaned.is_empty());
        assert_eq!(
            i.bindings[1].orphaned,
            [
                "user u-7 does not exist",
                "role template gone-role does not exist",
                "cluster c-9 does not exist"
            ]
        );
        let u = i.users[0].clone();
        let via: Vec<_> = i
            .grants_of(&u)
            .map(|(b, g)| (b.id.clone(), g.map(str::to_string)))
            .collect();
        assert_eq!(
            via,
            [
                ("a".to_string(), None),
                ("c".to_string(), Some("ad_group://x".to_string()))
            ]
        );
    }
}

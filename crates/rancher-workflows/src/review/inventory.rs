//! Everything an access review reads, once: users, global/cluster/project role bindings, global roles, role
//! templates (with their `roleTemplateNames` inheritance), clusters, projects, and the groups each user belongs
//! to where the server tells: the group principals each auth provider reported at the user's last login or
//! refresh, which Rancher keeps in the user's `UserAttribute` (rancher/rancher pkg/apis/management.cattle.io/v3/
//! authn_types.go; login tokens carry none, pkg/auth/tokens/manager.go `NewLoginToken`). As Rancher's
//! authenticator does (pkg/auth/requests/authenticate.go), a token's own legacy `groupPrincipals` count only for a
//! provider the user's attribute has no entry for.

use std::collections::{BTreeMap, HashMap, HashSet};

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

/// An interned text (an index into [`Names`]): a review holds hundreds of thousands of bindings naming a few
/// thousand roles, clusters, projects, users and groups, each text once.
pub(crate) type Sym = u32;

/// The texts a review's bindings name, each stored once; [`Sym`] 0 is the empty text.
pub(crate) struct Names {
    ids: HashMap<std::sync::Arc<str>, Sym>,
    texts: Vec<std::sync::Arc<str>>,
}

impl Default for Names {
    fn default() -> Self {
        let mut n = Names {
            ids: HashMap::new(),
            texts: Vec::new(),
        };
        n.intern("");
        n
    }
}

impl Names {
    /// The symbol of `text`, added when new.
    pub fn intern(&mut self, text: &str) -> Sym {
        if let Some(&s) = self.ids.get(text) {
            return s;
        }
        let s = Sym::try_from(self.texts.len()).expect("fewer than 4 billion distinct names");
        let t: std::sync::Arc<str> = text.into();
        self.texts.push(t.clone());
        self.ids.insert(t, s);
        s
    }

    /// The symbol of `text` when some binding or group names it.
    pub fn get(&self, text: &str) -> Option<Sym> {
        self.ids.get(text).copied()
    }

    /// The text of `s`.
    pub fn text(&self, s: Sym) -> &str {
        &self.texts[s as usize]
    }

    fn len(&self) -> usize {
        self.texts.len()
    }
}

/// Where a binding grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Scope {
    Global,
    Cluster(Sym),
    Project(Sym),
}

/// A scope as the review's JSON writes it (`{"scope": "cluster", "on": "c-1"}`).
#[derive(Serialize)]
#[serde(tag = "scope", content = "on", rename_all = "lowercase")]
pub(crate) enum ScopeJson<'a> {
    Global,
    Cluster(&'a str),
    Project(&'a str),
}

impl Scope {
    pub fn label(&self, n: &Names) -> String {
        match self {
            Scope::Global => "global".into(),
            Scope::Cluster(c) => format!("cluster {}", n.text(*c)),
            Scope::Project(p) => format!("project {}", n.text(*p)),
        }
    }

    /// The cluster or project id; empty for global.
    pub fn on<'a>(&self, n: &'a Names) -> &'a str {
        match self {
            Scope::Global => "",
            Scope::Cluster(s) | Scope::Project(s) => n.text(*s),
        }
    }
}

/// One binding, normalised over the three kinds, its texts interned (about 50 bytes and its name).
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    /// Kind of binding (`grb`, `crtb`, `prtb`), name and namespace, for a delete.
    pub kind: &'static str,
    pub name: Box<str>,
    pub namespace: Sym,
    pub scope: Scope,
    pub role: Sym,
    /// User id, for a user binding.
    pub user: Option<Sym>,
    /// Group principal, for a group binding.
    pub group: Option<Sym>,
}

impl Binding {
    /// `globalrolebinding/<name>`, `clusterroletemplatebinding/<ns>/<name>`, `projectroletemplatebinding/<ns>/<name>`.
    pub fn id(&self, n: &Names) -> String {
        match self.kind {
            "grb" => format!("globalrolebinding/{}", self.name),
            "crtb" => format!("clusterroletemplatebinding/{}/{}", n.text(self.namespace), self.name),
            _ => format!("projectroletemplatebinding/{}/{}", n.text(self.namespace), self.name),
        }
    }
}

/// A binding as the review's JSON writes it (`orphaned_bindings`).
#[derive(Serialize)]
pub(crate) struct BindingJson<'a> {
    pub id: String,
    pub scope: ScopeJson<'a>,
    pub role: &'a str,
    pub user: Option<&'a str>,
    pub group: Option<&'a str>,
    pub orphaned: Vec<String>,
}

/// Everything read for one review but the users, which stream past it (see [`Inventory::each_user`]).
pub(crate) struct Inventory {
    pub names: Names,
    /// The users, for the workflows that look one up ([`Inventory::load`]); empty after [`Inventory::index`].
    pub users: Vec<Person>,
    pub bindings: Vec<Binding>,
    /// Role template name -> the templates it includes (`roleTemplateNames`).
    pub role_templates: HashMap<String, Vec<String>>,
    pub global_roles: HashSet<String>,
    pub clusters: HashSet<String>,
    /// Project id (`<cluster>:<project>`) -> display name.
    pub projects: HashMap<String, String>,
    /// User id -> the group principals the server says it belongs to (sorted by text, no repeats).
    groups: HashMap<Sym, Box<[Sym]>>,
    /// User id -> when the server last read its groups from the provider (the later of the attribute's
    /// `lastLogin` and `LastRefresh`); absent when the server has no attribute for the user.
    groups_as_of: HashMap<Sym, DateTime<Utc>>,
    /// (user, binding index) and (group, binding index), sorted: a review is linear, not users x bindings.
    by_user: Vec<(Sym, u32)>,
    by_group: Vec<(Sym, u32)>,
    /// Per symbol: a listed user has that id (bindings naming anyone else are orphaned).
    listed: Vec<bool>,
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

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Hands each listed user (live, not a `system://` account) to `f` as its page arrives, in list order.
pub(crate) async fn each_user(session: &Session, mut f: impl FnMut(Person) -> Result<()>) -> Result<()> {
    let c = &session.client;
    let mut keep = |p: Person| {
        if p.id.is_empty() || is_system(&p.principals) {
            return Ok(());
        }
        f(p)
    };
    if rk_users(session) {
        let mut users = std::pin::pin!(c.users().list(RkUsersList::new()));
        while let Some(u) = users.try_next().await.map_err(|e| super::refused("users", e))? {
            let meta = u.metadata.as_ref();
            if !live(meta) {
                continue;
            }
            keep(Person {
                id: meta.and_then(|m| m.name.clone()).unwrap_or_default(),
                username: u.username.unwrap_or_default(),
                display_name: u.display_name.unwrap_or_default(),
                enabled: u.enabled != Some(false),
                last_login: last_login(meta.and_then(|m| m.labels.as_ref())),
                principals: u.principal_ids.unwrap_or_default(),
            })?;
        }
    } else {
        let mut users = std::pin::pin!(c.v3().users().list(V3UsersList::new()));
        while let Some(u) = users.try_next().await.map_err(|e| super::refused("users", e))? {
            keep(Person {
                last_login: last_login(u.labels.as_ref()),
                id: u.id.unwrap_or_default(),
                username: u.username.unwrap_or_default(),
                display_name: u.name.unwrap_or_default(),
                enabled: u.enabled != Some(false),
                principals: u.principal_ids.unwrap_or_default(),
            })?;
        }
    }
    Ok(())
}

/// The `(key, binding)` pairs of `index` for `key` (the index is sorted).
fn hits(index: &[(Sym, u32)], key: Sym) -> impl Iterator<Item = u32> + '_ {
    let from = index.partition_point(|(k, _)| *k < key);
    index[from..]
        .iter()
        .take_while(move |(k, _)| *k == key)
        .map(|(_, i)| *i)
}

impl Inventory {
    /// Reads everything, the users first and kept (for the workflows that look one user up). `with_groups` also
    /// reads the group memberships (user attributes, legacy login tokens).
    pub async fn load(session: &Session, with_groups: bool) -> Result<Inventory> {
        let mut users = Vec::new();
        each_user(session, |p| {
            users.push(p);
            Ok(())
        })
        .await?;
        let mut inv = Inventory::index(session, with_groups).await?;
        for p in &users {
            inv.saw(p);
        }
        inv.users = users;
        Ok(inv)
    }

    /// Reads everything but the users, which a review streams past this index ([`each_user`], [`Inventory::saw`]).
    pub async fn index(session: &Session, with_groups: bool) -> Result<Inventory> {
        let c = &session.client;
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

        let mut names = Names::default();
        let mut bindings: Vec<Binding> = Vec::new();
        let mut grbs = std::pin::pin!(c.global_role_bindings().list(RkGlobalrolebindingsList::new()));
        while let Some(b) = grbs
            .try_next()
            .await
            .map_err(|e| super::refused("global role bindings", e))?
        {
            if !live(b.metadata.as_ref()) {
                continue;
            }
            let name = b.metadata.as_ref().and_then(|m| m.name.as_deref()).unwrap_or_default();
            bindings.push(Binding {
                kind: "grb",
                name: name.into(),
                namespace: 0,
                scope: Scope::Global,
                role: names.intern(b.global_role_name.as_deref().unwrap_or_default()),
                user: nonempty(&b.user_name).map(|u| names.intern(u)),
                group: nonempty(&b.group_principal_name).map(|g| names.intern(g)),
            });
        }
        let mut crtbs = std::pin::pin!(c
            .cluster_role_template_bindings()
            .list_all(RkClusterroletemplatebindingsListAll::new()));
        while let Some(b) = crtbs
            .try_next()
            .await
            .map_err(|e| super::refused("cluster role template bindings", e))?
        {
            if !live(b.metadata.as_ref()) {
                continue;
            }
            let meta = b.metadata.as_ref();
            let name = meta.and_then(|m| m.name.as_deref()).unwrap_or_default();
            let ns = meta.and_then(|m| m.namespace.as_deref()).unwrap_or_default();
            let cluster = nonempty(&b.cluster_name).unwrap_or(ns);
            // A `crtb-grb-*` CRTB is the GRB controller's copy of a global role's `inheritedClusterRoles` (rancher/rancher
            // pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go, label `grb-owner`): it is
            // shown as that global role binding's grant, and removing access means deleting the binding (Rancher
            // would recreate the CRTB).
            let owner = meta
                .and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(GRB_OWNER_LABEL))
                .filter(|o| !o.is_empty());
            let (kind, name, ns) = match owner {
                Some(o) => ("grb", o.as_str(), ""),
                None => ("crtb", name, ns),
            };
            bindings.push(Binding {
                kind,
                name: name.into(),
                namespace: names.intern(ns),
                scope: Scope::Cluster(names.intern(cluster)),
                role: names.intern(b.role_template_name.as_deref().unwrap_or_default()),
                user: nonempty(&b.user_name).map(|u| names.intern(u)),
                group: nonempty(&b.group_principal_name)
                    .or_else(|| nonempty(&b.group_name))
                    .map(|g| names.intern(g)),
            });
        }
        let mut prtbs = std::pin::pin!(c
            .project_role_template_bindings()
            .list_all(RkProjectroletemplatebindingsListAll::new()));
        while let Some(b) = prtbs
            .try_next()
            .await
            .map_err(|e| super::refused("project role template bindings", e))?
        {
            if !live(b.metadata.as_ref()) {
                continue;
            }
            let meta = b.metadata.as_ref();
            let name = meta.and_then(|m| m.name.as_deref()).unwrap_or_default();
            let ns = meta.and_then(|m| m.namespace.as_deref()).unwrap_or_default();
            bindings.push(Binding {
                kind: "prtb",
                name: name.into(),
                namespace: names.intern(ns),
                scope: Scope::Project(names.intern(b.project_name.as_deref().unwrap_or_default())),
                role: names.intern(b.role_template_name.as_deref().unwrap_or_default()),
                user: nonempty(&b.user_name).map(|u| names.intern(u)),
                group: nonempty(&b.group_principal_name)
                    .or_else(|| nonempty(&b.group_name))
                    .map(|g| names.intern(g)),
            });
        }
        bindings.shrink_to_fit();

        let mut groups: HashMap<Sym, Vec<Sym>> = HashMap::new();
        let mut groups_as_of: HashMap<Sym, DateTime<Utc>> = HashMap::new();
        if with_groups {
            // User id -> the providers its attribute has an entry for (their token groups are not used).
            let mut attributed: HashMap<Sym, HashSet<String>> = HashMap::new();
            let mut attrs = c.user_attributes().list(RkUserattributesList::new().limit(2000));
            while let Some(a) = attrs
                .try_next()
                .await
                .map_err(|e| refused_gated("userattributes.management.cattle.io", e))?
            {
                let user = a
                    .metadata
                    .as_ref()
                    .and_then(|m| m.name.as_deref())
                    .or(a.user_name.as_deref())
                    .unwrap_or_default();
                if user.is_empty() {
                    continue;
                }
                let user = names.intern(user);
                let seen = [a.last_login.as_deref(), a.last_refresh.as_deref()]
                    .into_iter()
                    .filter_map(super::time)
                    .max();
                if let Some(t) = seen {
                    groups_as_of.insert(user, t);
                }
                for (provider, list) in a.group_principals.iter().flatten() {
                    attributed.entry(user).or_default().insert(provider.clone());
                    let set = groups.entry(user).or_default();
                    set.extend(
                        list.items
                            .iter()
                            .flatten()
                            .filter_map(principal_id)
                            .map(|g| names.intern(&g)),
                    );
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
                let user = names.intern(t.user_id.as_deref().unwrap_or_default());
                let provider = t.auth_provider.as_deref().unwrap_or_default();
                if attributed.get(&user).is_some_and(|p| p.contains(provider)) {
                    continue;
                }
                let found: Vec<Sym> = gp.iter().filter_map(principal_id).map(|g| names.intern(&g)).collect();
                groups.entry(user).or_default().extend(found);
            }
        }
        let groups = groups
            .into_iter()
            .map(|(u, mut gs)| {
                gs.sort_by(|a, b| names.text(*a).cmp(names.text(*b)));
                gs.dedup();
                (u, gs.into_boxed_slice())
            })
            .collect();

        let mut inv = Inventory {
            listed: vec![false; names.len()],
            names,
            users: Vec::new(),
            bindings,
            role_templates,
            global_roles,
            clusters,
            projects,
            groups,
            groups_as_of,
            by_user: Vec::new(),
            by_group: Vec::new(),
        };
        inv.build_index();
        Ok(inv)
    }

    /// Notes a listed user: bindings naming its id are not orphaned for want of their user.
    pub fn saw(&mut self, user: &Person) {
        if let Some(s) = self.names.get(&user.id) {
            self.listed[s as usize] = true;
        }
    }

    /// Whether a listed user has the id `user` (as far as the users seen so far tell).
    pub fn is_listed(&self, user: Sym) -> bool {
        self.listed.get(user as usize).copied().unwrap_or(false)
    }

    /// Why `b` is orphaned: its user (of those listed: see [`Inventory::saw`]), role (global role or role
    /// template), cluster or project no longer exists. Empty when it is not.
    pub fn orphaned(&self, b: &Binding) -> Vec<String> {
        let n = &self.names;
        let mut why = Vec::new();
        if let Some(u) = b.user {
            if !self.is_listed(u) {
                why.push(format!("user {} does not exist", n.text(u)));
            }
        }
        if b.user.is_none() && b.group.is_none() {
            why.push("names no user or group".into());
        }
        let role = n.text(b.role);
        match b.scope {
            Scope::Global => {
                if !self.global_roles.contains(role) {
                    why.push(format!("global role {role} does not exist"));
                }
            }
            Scope::Cluster(c) => {
                let c = n.text(c);
                if !self.role_templates.contains_key(role) {
                    why.push(format!("role template {role} does not exist"));
                }
                if !self.clusters.contains(c) {
                    why.push(format!("cluster {c} does not exist"));
                }
            }
            Scope::Project(p) => {
                let p = n.text(p);
                if !self.role_templates.contains_key(role) {
                    why.push(format!("role template {role} does not exist"));
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
        why
    }

    /// `b` as the review's JSON writes it.
    pub fn binding_json<'a>(&'a self, b: &Binding) -> BindingJson<'a> {
        let n = &self.names;
        BindingJson {
            id: b.id(n),
            scope: match b.scope {
                Scope::Global => ScopeJson::Global,
                Scope::Cluster(c) => ScopeJson::Cluster(n.text(c)),
                Scope::Project(p) => ScopeJson::Project(n.text(p)),
            },
            role: n.text(b.role),
            user: b.user.map(|u| n.text(u)),
            group: b.group.map(|g| n.text(g)),
            orphaned: self.orphaned(b),
        }
    }

    fn build_index(&mut self) {
        for (i, b) in self.bindings.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 4 billion bindings");
            if let Some(u) = b.user {
                self.by_user.push((u, i));
            } else if let Some(g) = b.group {
                self.by_group.push((g, i));
            }
        }
        self.by_user.sort_unstable();
        self.by_group.sort_unstable();
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

    /// The groups the server says `user` belongs to, by name.
    pub fn groups_of(&self, user: &str) -> impl Iterator<Item = &str> + '_ {
        self.names
            .get(user)
            .and_then(|u| self.groups.get(&u))
            .into_iter()
            .flatten()
            .map(|g| self.names.text(*g))
    }

    /// When the server last read `user`'s groups from the provider.
    pub fn groups_as_of(&self, user: &str) -> Option<DateTime<Utc>> {
        self.names.get(user).and_then(|u| self.groups_as_of.get(&u)).copied()
    }

    /// The bindings that reach `user`, in list order: its own, and those of groups the server says it belongs to
    /// (with the group).
    pub fn grants_of<'a>(&'a self, user: &Person) -> impl Iterator<Item = (&'a Binding, Option<&'a str>)> + 'a {
        let me = self.names.get(&user.id);
        let mut found: Vec<(u32, Option<Sym>)> = me
            .into_iter()
            .flat_map(|u| hits(&self.by_user, u))
            .map(|i| (i, None))
            .collect();
        let groups = me
            .and_then(|u| self.groups.get(&u))
            .into_iter()
            .flatten()
            .copied()
            .chain(user.principals.iter().filter_map(|p| self.names.get(p)));
        for g in groups {
            for i in hits(&self.by_group, g) {
                if !found.iter().any(|(j, _)| *j == i) {
                    found.push((i, Some(g)));
                }
            }
        }
        found.sort_by_key(|(i, _)| *i);
        found
            .into_iter()
            .map(move |(i, g)| (&self.bindings[i as usize], g.map(|g| self.names.text(g))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        let mut n = Names::default();
        let b = |name: &str,
                 kind: &'static str,
                 ns: &str,
                 scope: Scope,
                 role: &str,
                 user: Option<&str>,
                 group: Option<&str>,
                 n: &mut Names| Binding {
            kind,
            name: name.into(),
            namespace: n.intern(ns),
            scope,
            role: n.intern(role),
            user: user.map(|u| n.intern(u)),
            group: group.map(|g| n.intern(g)),
        };
        let c1 = Scope::Cluster(n.intern("c-1"));
        let c9 = Scope::Cluster(n.intern("c-9"));
        let bindings = vec![
            b("a", "crtb", "c-1", c1, "cluster-owner", Some("u-1"), None, &mut n),
            b("b", "crtb", "c-1", c9, "gone-role", Some("u-7"), None, &mut n),
            b(
                "c",
                "grb",
                "",
                Scope::Global,
                "admin",
                None,
                Some("ad_group://x"),
                &mut n,
            ),
        ];
        let (u1, x) = (n.intern("u-1"), n.intern("ad_group://x"));
        let mut inv = Inventory {
            listed: vec![false; n.len()],
            names: n,
            users: vec![Person {
                id: "u-1".into(),
                username: "alice".into(),
                display_name: String::new(),
                enabled: true,
                last_login: None,
                principals: vec!["local://u-1".into()],
            }],
            bindings,
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
            groups: HashMap::from([(u1, vec![x].into_boxed_slice())]),
            groups_as_of: HashMap::new(),
            by_user: Vec::new(),
            by_group: Vec::new(),
        };
        let u = inv.users[0].clone();
        inv.saw(&u);
        inv.build_index();
        inv
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
        let i = inv();
        assert!(i.orphaned(&i.bindings[0]).is_empty());
        assert_eq!(
            i.orphaned(&i.bindings[1]),
            [
                "user u-7 does not exist",
                "role template gone-role does not exist",
                "cluster c-9 does not exist"
            ]
        );
        assert_eq!(i.bindings[1].id(&i.names), "clusterroletemplatebinding/c-1/b");
        assert_eq!(i.bindings[2].id(&i.names), "globalrolebinding/c");
        let u = i.users[0].clone();
        let via: Vec<_> = i
            .grants_of(&u)
            .map(|(b, g)| (b.name.to_string(), g.map(str::to_string)))
            .collect();
        assert_eq!(
            via,
            [
                ("a".to_string(), None),
                ("c".to_string(), Some("ad_group://x".to_string()))
            ]
        );
    }

    #[test]
    fn an_orphan_is_written_as_before_the_interning() {
        let i = inv();
        let json = serde_json::to_value(i.binding_json(&i.bindings[1])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "clusterroletemplatebinding/c-1/b", "scope": {"scope": "cluster", "on": "c-9"},
                "role": "gone-role", "user": "u-7", "group": null,
                "orphaned": ["user u-7 does not exist", "role template gone-role does not exist", "cluster c-9 does not exist"]})
        );
        let json = serde_json::to_string(&i.binding_json(&i.bindings[2])).unwrap();
        assert!(json.contains(r#""scope":{"scope":"global"}"#), "{json}");
    }
}

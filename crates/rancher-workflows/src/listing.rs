//! The list workflows as streams of typed items: [`Exec::stream_list`] opens `list-users`, `list-global-roles`,
//! `list-global-role-bindings`, `list-clusters`, `list-projects` or `list-role-templates` and yields each resource as it arrives,
//! in the generated type of the surface the server speaks, with its table row. Nothing is collected, so a
//! caller that writes items as they come (`rancherctl run list-users -o json`) holds about two pages at a time.
//!
//! The generated types keep every field they do not name in `extra`, so an item serializes back to everything the
//! server sent.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use rancher_api::requests::{
    RkGlobalrolebindingsList, RkGlobalrolesList, RkProjectsListAll, RkRoletemplatesList, RkUsersList, V3ClustersList,
    V3GlobalrolebindingsList, V3GlobalrolesList, V3ProjectsList, V3RoletemplatesList, V3UsersList,
};
use rancher_api::{ids, types, ItemStream};
use serde::{Serialize, Serializer};

use crate::bindings::RoleBinding;
pub use crate::catalog::ListKind;
use crate::catalog::WorkflowDef;
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::workflow::{Inputs, Report, Workflow};

/// A built-in list workflow: reads only, streams its items (see [`Exec::stream`]).
#[derive(Debug, Clone, Copy)]
pub struct List(pub ListKind);

#[async_trait::async_trait]
impl Workflow for List {
    fn def(&self) -> &'static WorkflowDef {
        self.0.def()
    }

    async fn run(&self, exec: &mut Exec<'_>, _: &Inputs) -> Result<Report> {
        exec.stream(self.0, true).await?.collect_report().await
    }

    fn list(&self) -> Option<ListKind> {
        Some(self.0)
    }
}

/// One listed resource, in the generated type of the surface it came from (RK-API or norman `/v3`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Listed {
    /// An RK-API user.
    User(Box<types::User>),
    /// A norman user.
    V3User(Box<types::V3User>),
    /// An RK-API global role.
    GlobalRole(Box<types::GlobalRole>),
    /// A norman global role.
    V3GlobalRole(Box<types::V3GlobalRole>),
    /// An RK-API global role binding.
    GlobalRoleBinding(Box<types::GlobalRoleBinding>),
    /// A norman global role binding.
    V3GlobalRoleBinding(Box<types::V3GlobalRoleBinding>),
    /// A norman cluster (the endpoint list has no RK-API cluster operations).
    V3Cluster(Box<types::V3Cluster>),
    /// An RK-API project.
    Project(Box<types::Project>),
    /// A norman project.
    V3Project(Box<types::V3Project>),
    /// An RK-API role template.
    RoleTemplate(Box<types::RoleTemplate>),
    /// A norman role template.
    V3RoleTemplate(Box<types::V3RoleTemplate>),
}

impl Serialize for Listed {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Listed::User(x) => x.serialize(s),
            Listed::V3User(x) => x.serialize(s),
            Listed::GlobalRole(x) => x.serialize(s),
            Listed::V3GlobalRole(x) => x.serialize(s),
            Listed::GlobalRoleBinding(x) => x.serialize(s),
            Listed::V3GlobalRoleBinding(x) => x.serialize(s),
            Listed::V3Cluster(x) => x.serialize(s),
            Listed::Project(x) => x.serialize(s),
            Listed::V3Project(x) => x.serialize(s),
            Listed::RoleTemplate(x) => x.serialize(s),
            Listed::V3RoleTemplate(x) => x.serialize(s),
        }
    }
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn meta(m: &Option<types::ObjectMeta>, f: impl Fn(&types::ObjectMeta) -> &Option<String>) -> String {
    m.as_ref().and_then(|m| f(m).clone()).unwrap_or_default()
}

fn yes(v: Option<bool>) -> String {
    if v == Some(true) {
        "yes".into()
    } else {
        String::new()
    }
}

/// Enabled unless the server says `false` (Rancher treats a missing `enabled` as enabled).
fn enabled(v: Option<bool>) -> String {
    if v == Some(false) {
        "no".into()
    } else {
        "yes".into()
    }
}

impl Listed {
    /// The item's row in the table of its workflow (see [`ListStream::columns`]); `names` maps ids to names: user
    /// ids to usernames (and [`display_key`] to display names) for the binding table, cluster ids to display names for the project table.
    pub fn row(&self, names: &HashMap<String, String>) -> Vec<String> {
        match self {
            Listed::User(u) => vec![
                meta(&u.metadata, |m| &m.name),
                text(&u.username),
                text(&u.display_name),
                enabled(u.enabled),
            ],
            Listed::V3User(u) => vec![text(&u.id), text(&u.username), text(&u.name), enabled(u.enabled)],
            Listed::GlobalRole(r) => vec![
                meta(&r.metadata, |m| &m.name),
                text(&r.display_name),
                yes(r.builtin),
                yes(r.new_user_default),
            ],
            Listed::V3GlobalRole(r) => vec![text(&r.id), text(&r.name), yes(r.builtin), yes(r.new_user_default)],
            Listed::GlobalRoleBinding(_) | Listed::V3GlobalRoleBinding(_) => {
                let b = self.binding().expect("a binding");
                match (&b.user, &b.group) {
                    (Some(u), _) => vec![
                        b.name,
                        b.role,
                        subject_cell(names, u),
                        u.clone(),
                        names.get(u).cloned().unwrap_or_default(),
                    ],
                    (None, Some(g)) => vec![b.name, b.role, group_cell(names, g), g.clone(), String::new()],
                    _ => vec![b.name, b.role, String::new(), String::new(), String::new()],
                }
            }
            Listed::Project(p) => {
                let spec = p.spec.as_ref();
                let cluster = spec
                    .map(|s| text(&s.cluster_name))
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| meta(&p.metadata, |m| &m.namespace));
                vec![
                    format!(
                        "{}:{}",
                        meta(&p.metadata, |m| &m.namespace),
                        meta(&p.metadata, |m| &m.name)
                    ),
                    spec.map(|s| text(&s.display_name)).unwrap_or_default(),
                    names.get(&cluster).cloned().unwrap_or_default(),
                    cluster,
                ]
            }
            Listed::V3Project(p) => vec![
                text(&p.id),
                text(&p.name),
                names.get(&text(&p.cluster_id)).cloned().unwrap_or_default(),
                text(&p.cluster_id),
            ],
            Listed::V3Cluster(c) => vec![
                text(&c.id),
                text(&c.name),
                text(&c.state),
                named(&c.provider).or_else(|| named(&c.driver)).unwrap_or_default(),
            ],
            Listed::RoleTemplate(r) => vec![
                meta(&r.metadata, |m| &m.name),
                text(&r.display_name),
                text(&r.context),
                yes(r.builtin),
                yes(r.locked),
            ],
            Listed::V3RoleTemplate(r) => vec![
                text(&r.id),
                text(&r.name),
                text(&r.context),
                yes(r.builtin),
                yes(r.locked),
            ],
        }
    }

    /// A global role binding, normalised (None for other kinds).
    pub fn binding(&self) -> Option<RoleBinding> {
        match self {
            Listed::GlobalRoleBinding(b) => Some(crate::bindings::from_rk_grb((**b).clone())),
            Listed::V3GlobalRoleBinding(b) => Some(crate::bindings::from_v3_grb((**b).clone())),
            _ => None,
        }
    }
}

/// Keeps a non-empty name.
fn named(v: &Option<String>) -> Option<String> {
    v.as_deref().filter(|s| !s.is_empty()).map(str::to_string)
}

/// A list workflow's items as they arrive, with the columns and the rows of its table.
pub struct ListStream {
    workflow: &'static str,
    noun: &'static str,
    columns: &'static [&'static str],
    names: HashMap<String, String>,
    items: BoxStream<'static, Result<Listed>>,
}

impl std::fmt::Debug for ListStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListStream")
            .field("workflow", &self.workflow)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl ListStream {
    /// The workflow id.
    pub fn workflow(&self) -> &'static str {
        self.workflow
    }

    /// What is listed, plural (`users`), for summaries such as `3 users`.
    pub fn noun(&self) -> &'static str {
        self.noun
    }

    /// The table's column headers.
    pub fn columns(&self) -> &'static [&'static str] {
        self.columns
    }

    /// An item's table row.
    pub fn row(&self, item: &Listed) -> Vec<String> {
        item.row(&self.names)
    }

    /// Collects every item into a [`crate::Report`]: the array of resources, the table and the summary. Holds
    /// the whole list: for output, write items as they come instead.
    pub async fn collect_report(mut self) -> Result<Report> {
        let mut items = Vec::new();
        let mut rows = Vec::new();
        while let Some(item) = self.items.next().await {
            let item = item?;
            rows.push(self.row(&item));
            items.push(
                serde_json::to_value(&item)
                    .map_err(|e| Error::Refused(format!("an item could not be encoded as JSON: {e}")))?,
            );
        }
        let table = Table {
            columns: self.columns.iter().map(|c| c.to_string()).collect(),
            rows,
        };
        Ok(Report::new(
            format!("{} {}", items.len(), self.noun),
            serde_json::Value::Array(items),
        )
        .with_table(table))
    }
}

impl Stream for ListStream {
    type Item = Result<Listed>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items.poll_next_unpin(cx)
    }
}

/// A typed stream, its errors in this crate's words (a refused list names the fix), each item wrapped.
fn typed<T: Send + 'static>(
    op: &'static str,
    s: ItemStream<T>,
    wrap: fn(T) -> Listed,
) -> BoxStream<'static, Result<Listed>> {
    s.map(move |r| match r {
        Ok(t) => Ok(wrap(t)),
        Err(e) if e.is_forbidden() && !e.is_local_cluster_gate() => {
            Err(Error::NotAllowed(crate::exec::refused_list(op, &e)))
        }
        Err(e) => Err(Error::Api(e)),
    })
    .boxed()
}

/// Waits for the first item, so a refusal of the whole list surfaces before anything is written; puts it back.
async fn primed(mut s: BoxStream<'static, Result<Listed>>) -> Result<BoxStream<'static, Result<Listed>>> {
    match s.next().await {
        None => Ok(stream::empty().boxed()),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(stream::once(async { Ok(first) }).chain(s).boxed()),
    }
}

impl Exec<'_> {
    /// Opens a list workflow (one a [`ListKind`] names) as a stream of typed items; `None` for any other id.
    /// The first page has been fetched when this returns, so a refused list is an error here, not mid-stream.
    /// `rows`: whether table rows will be asked for (the binding table then looks up usernames once, first, and
    /// the project table cluster names).
    pub async fn stream_list(&self, workflow: &str, rows: bool) -> Result<Option<ListStream>> {
        match ListKind::of(workflow) {
            Some(kind) => self.stream(kind, rows).await.map(Some),
            None => Ok(None),
        }
    }

    /// Opens list `kind` as a stream of typed items (see [`Exec::stream_list`]).
    pub async fn stream(&self, kind: ListKind, rows: bool) -> Result<ListStream> {
        let client = &self.session.client;
        let (rk_users, rk) = (
            self.session.version.at_least(2, 13),
            self.session.version.at_least(2, 11),
        );
        let workflow = kind.id();
        let (noun, columns, items): (_, &'static [&'static str], _) = match kind {
            ListKind::Users => (
                "users",
                &["ID", "USERNAME", "NAME", "ENABLED"],
                self.user_items(rk_users),
            ),
            ListKind::GlobalRoles => (
                "global roles",
                &["NAME", "DISPLAY NAME", "BUILTIN", "NEW USER DEFAULT"],
                if rk {
                    typed(
                        ids::RK_GLOBALROLES_LIST,
                        client.global_roles().list(RkGlobalrolesList::new()),
                        |x| Listed::GlobalRole(Box::new(x)),
                    )
                } else {
                    typed(
                        ids::V3_GLOBALROLES_LIST,
                        client.v3().globalroles().list(V3GlobalrolesList::new()),
                        |x| Listed::V3GlobalRole(Box::new(x)),
                    )
                },
            ),
            ListKind::GlobalRoleBindings => (
                "global role bindings",
                &["NAME", "ROLE", "SUBJECT", "ID", "USERNAME"],
                self.binding_items(),
            ),
            ListKind::Clusters => (
                "clusters",
                &["ID", "NAME", "STATE", "PROVIDER"],
                typed(
                    ids::V3_CLUSTERS_LIST,
                    client.v3().clusters().list(V3ClustersList::new()),
                    |x| Listed::V3Cluster(Box::new(x)),
                ),
            ),
            ListKind::Projects => (
                "projects",
                &["ID", "NAME", "CLUSTER NAME", "CLUSTER"],
                if rk {
                    typed(
                        ids::RK_PROJECTS_LIST_ALL,
                        client.projects().list_all(RkProjectsListAll::new()),
                        |x| Listed::Project(Box::new(x)),
                    )
                } else {
                    typed(
                        ids::V3_PROJECTS_LIST,
                        client.v3().projects().list(V3ProjectsList::new()),
                        |x| Listed::V3Project(Box::new(x)),
                    )
                },
            ),
            ListKind::RoleTemplates => {
                let v3 = || {
                    typed(
                        ids::V3_ROLETEMPLATES_LIST,
                        client.v3().roletemplates().list(V3RoletemplatesList::new()),
                        |x| Listed::V3RoleTemplate(Box::new(x)),
                    )
                };
                let items = if rk {
                    match primed(typed(
                        ids::RK_ROLETEMPLATES_LIST,
                        client.role_templates().list(RkRoletemplatesList::new()),
                        |x| Listed::RoleTemplate(Box::new(x)),
                    ))
                    .await
                    {
                        // Role templates are off the RK proxy's allow-list: without local-cluster access Rancher
                        // answers an empty 403 (rancher/rancher pkg/api/steve/proxy/proxy.go); /v3 serves them to
                        // the same account.
                        Err(Error::Api(e)) if e.is_local_cluster_gate() => v3(),
                        other => other?,
                    }
                } else {
                    v3()
                };
                (
                    "role templates",
                    &["NAME", "DISPLAY NAME", "CONTEXT", "BUILTIN", "LOCKED"],
                    items,
                )
            }
        };
        let names = match kind {
            ListKind::GlobalRoleBindings if rows => {
                let mut names = self.usernames().await?;
                names.extend(self.binding_group_names().await?);
                names
            }
            ListKind::Projects if rows => self.cluster_names().await?,
            _ => HashMap::new(),
        };
        let items = primed(items).await?;
        Ok(ListStream {
            workflow,
            noun,
            columns,
            names,
            items,
        })
    }

    pub(crate) fn user_items(&self, rk: bool) -> BoxStream<'static, Result<Listed>> {
        let client = &self.session.client;
        if rk {
            typed(ids::RK_USERS_LIST, client.users().list(RkUsersList::new()), |x| {
                Listed::User(Box::new(x))
            })
        } else {
            typed(ids::V3_USERS_LIST, client.v3().users().list(V3UsersList::new()), |x| {
                Listed::V3User(Box::new(x))
            })
        }
    }

    /// Every global role binding but those already being deleted (Rancher's finalizer holds a deleted binding,
    /// with a deletion timestamp, for a moment).
    fn binding_items(&self) -> BoxStream<'static, Result<Listed>> {
        let client = &self.session.client;
        if self.session.version.at_least(2, 11) {
            typed(ids::RK_GLOBALROLEBINDINGS_LIST, client.global_role_bindings().list(RkGlobalrolebindingsList::new()), |x| Listed::GlobalRoleBinding(Box::new(x)))
                .try_filter(|b| {
                    let going = matches!(b, Listed::GlobalRoleBinding(b) if b.metadata.as_ref().is_some_and(|m| m.deletion_timestamp.is_some()));
                    futures::future::ready(!going)
                })
                .boxed()
        } else {
            typed(
                ids::V3_GLOBALROLEBINDINGS_LIST,
                client.v3().globalrolebindings().list(V3GlobalrolebindingsList::new()),
                |x| Listed::V3GlobalRoleBinding(Box::new(x)),
            )
        }
    }

    /// The display names of the groups global role bindings name (see [`group_names`]): one more
    /// pass over the bindings, for a table only (rows are printed from a names map known before the first item).
    async fn binding_group_names(&self) -> Result<HashMap<String, String>> {
        let mut groups = Vec::new();
        let mut items = self.binding_items();
        while let Some(b) = items.next().await {
            if let Some(g) = b?.binding().and_then(|b| b.group) {
                groups.push(g);
            }
        }
        Ok(group_names(self.session, groups).await)
    }

    /// User id to username, for every user (only the two strings of each are kept).
    pub(crate) async fn usernames(&self) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        let mut users = self.user_items(self.session.version.at_least(2, 13));
        while let Some(u) = users.next().await {
            match u? {
                Listed::User(u) => {
                    let id = meta(&u.metadata, |m| &m.name);
                    out.insert(display_key(&id), text(&u.display_name));
                    out.insert(id, text(&u.username));
                }
                Listed::V3User(u) => {
                    out.insert(display_key(&text(&u.id)), text(&u.name));
                    out.insert(text(&u.id), text(&u.username));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Cluster id to display name, for every cluster.
    async fn cluster_names(&self) -> Result<HashMap<String, String>> {
        Ok(crate::grants::resolve::clusters(self.session)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect())
    }
}

/// The key under which a map of user ids to usernames (the binding tables') also holds a user's display name.
pub(crate) fn display_key(id: &str) -> String {
    format!("{id}\u{0}display")
}

/// The SUBJECT cell of a binding table for user `id`: `Alice Example (alice)`, `alice`, or `user` when the user is
/// not known (deleted); `names` maps ids to usernames and [`display_key`]s to display names.
pub(crate) fn subject_cell(names: &std::collections::HashMap<String, String>, id: &str) -> String {
    let username = names.get(id).filter(|s| !s.is_empty());
    let display = names.get(&display_key(id)).filter(|s| !s.is_empty());
    match (display, username) {
        (Some(d), Some(u)) if d != u => format!("{d} ({u})"),
        (_, Some(u)) => u.clone(),
        (Some(d), None) => d.clone(),
        (None, None) => "user".into(),
    }
}

/// The display names of group principals, keyed by [`group_key`] of each id, for the binding tables' SUBJECT
/// column: one principal lookup per distinct group (a few at a time). A group the auth provider does not answer
/// for (gone, or no provider enabled) is left out, and its cell says `group`.
pub(crate) async fn group_names(
    session: &crate::session::Session,
    ids: impl IntoIterator<Item = String>,
) -> HashMap<String, String> {
    let mut distinct: Vec<String> = ids.into_iter().filter(|g| g.contains("://")).collect();
    distinct.sort();
    distinct.dedup();
    stream::iter(distinct)
        .map(|g| async move {
            let p = session
                .client
                .v3()
                .principals()
                .get(rancher_api::requests::V3PrincipalsGet::new(g.as_str()))
                .await;
            let name = p.ok().and_then(|p| p.name).filter(|n| !n.trim().is_empty());
            (g, name)
        })
        .buffer_unordered(4)
        .filter_map(|(g, name)| async move { name.map(|n| (group_key(&g), n)) })
        .collect()
        .await
}

/// The key under which a names map of the binding tables holds a group's display name.
pub(crate) fn group_key(id: &str) -> String {
    format!("{id}\u{0}group")
}

/// The SUBJECT cell of a binding table for group `id`: `Developers (group)` when its name is known, else `group`.
pub(crate) fn group_cell(names: &HashMap<String, String>, id: &str) -> String {
    match names.get(&group_key(id)).filter(|n| !n.trim().is_empty()) {
        Some(n) => format!("{n} (group)"),
        None => "group".into(),
    }
}

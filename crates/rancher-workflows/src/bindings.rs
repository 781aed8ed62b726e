//! Role bindings, one model for every kind: global role bindings and cluster and project role template bindings,
//! found, created and deleted here for every workflow that touches them, over the generated typed requests: RK-API `management.cattle.io/v3` where the server has it, norman `/v3` before.
//!
//! Rancher keeps a CRTB in the cluster's namespace (its name is the cluster id) and a PRTB in the project's
//! namespace (rancher/rancher pkg/controllers/management/auth): the project's backing namespace, `c-x-p-y`, which
//! rancher/webhook's project mutator assigns from v0.5 (Rancher 2.9), the project id before; norman `/v3` ids are
//! `<namespace>:<name>`.

use futures::TryStreamExt;
use rancher_api::requests::{
    RkClusterroletemplatebindingsCreate, RkClusterroletemplatebindingsDelete, RkClusterroletemplatebindingsGet,
    RkClusterroletemplatebindingsListAll, RkGlobalrolebindingsCreate, RkGlobalrolebindingsDelete,
    RkGlobalrolebindingsGet, RkGlobalrolebindingsList, RkProjectroletemplatebindingsCreate,
    RkProjectroletemplatebindingsDelete, RkProjectroletemplatebindingsGet, RkProjectroletemplatebindingsListAll,
    V3ClusterroletemplatebindingsCreate, V3ClusterroletemplatebindingsDelete, V3ClusterroletemplatebindingsGet,
    V3ClusterroletemplatebindingsList, V3GlobalrolebindingsCreate, V3GlobalrolebindingsDelete, V3GlobalrolebindingsGet,
    V3GlobalrolebindingsList, V3ProjectroletemplatebindingsCreate, V3ProjectroletemplatebindingsDelete,
    V3ProjectroletemplatebindingsGet, V3ProjectroletemplatebindingsList,
};
use rancher_api::types::{
    ClusterRoleTemplateBinding, GlobalRoleBinding, ObjectMeta, ProjectRoleTemplateBinding,
    V3ClusterRoleTemplateBinding, V3GlobalRoleBinding, V3ProjectRoleTemplateBinding,
};
use rancher_api::Request;
use rancher_approval::BindingKind;
use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::exec::{Exec, PlannedRequest};
use crate::session::Session;

/// A role binding, whichever kind and surface it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleBinding {
    /// Global, cluster or project.
    pub kind: BindingKind,
    /// Metadata name.
    pub name: String,
    /// Namespace (cluster id for a CRTB, project namespace for a PRTB, empty for a global role binding).
    pub namespace: String,
    /// Cluster id (CRTB) or `c-x:p-y` project id (PRTB); empty for a global role binding.
    pub scope: String,
    /// Role template id (or global role name).
    pub role: String,
    /// The user holding it.
    pub user: Option<String>,
    /// The group principal holding it.
    pub group: Option<String>,
    /// Rancher is removing it (a deletion timestamp, or norman's `removing` state).
    pub deleting: bool,
    /// The object as the server sent it, in the generated type of its kind and surface.
    pub raw: BindingObject,
}

/// A role binding object as the server sent it, in the generated type of its kind and the surface it came from.
/// The generated types keep every field they do not name in `extra`, so it serializes back to everything the
/// server sent (as the run documents print it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BindingObject {
    /// An RK-API cluster role template binding.
    Crtb(Box<ClusterRoleTemplateBinding>),
    /// An RK-API project role template binding.
    Prtb(Box<ProjectRoleTemplateBinding>),
    /// An RK-API global role binding.
    Grb(Box<GlobalRoleBinding>),
    /// A norman cluster role template binding.
    V3Crtb(Box<V3ClusterRoleTemplateBinding>),
    /// A norman project role template binding.
    V3Prtb(Box<V3ProjectRoleTemplateBinding>),
    /// A norman global role binding.
    V3Grb(Box<V3GlobalRoleBinding>),
}

/// The annotation Rancher records a binding's creator in.
const CREATOR_ANNOTATION: &str = "field.cattle.io/creatorId";

impl BindingObject {
    /// When it was created, as the server wrote it: `metadata.creationTimestamp` (RK-API) or `created` (norman).
    pub fn created(&self) -> Option<&str> {
        let (meta, created) = self.parts();
        meta.and_then(|m| m.creation_timestamp.as_deref()).or(created)
    }

    /// Who created it: the creator annotation (in `metadata` on RK-API, on the object on norman), else norman's
    /// `creatorId`.
    pub fn creator(&self) -> Option<&str> {
        fn annotated(a: &Option<std::collections::BTreeMap<String, String>>) -> Option<&str> {
            a.as_ref().and_then(|a| a.get(CREATOR_ANNOTATION)).map(String::as_str)
        }
        match self {
            BindingObject::Crtb(b) => b.metadata.as_ref().and_then(|m| annotated(&m.annotations)),
            BindingObject::Prtb(b) => b.metadata.as_ref().and_then(|m| annotated(&m.annotations)),
            BindingObject::Grb(b) => b.metadata.as_ref().and_then(|m| annotated(&m.annotations)),
            BindingObject::V3Crtb(b) => annotated(&b.annotations).or(b.creator_id.as_deref()),
            BindingObject::V3Prtb(b) => annotated(&b.annotations).or(b.creator_id.as_deref()),
            BindingObject::V3Grb(b) => annotated(&b.annotations).or(b.creator_id.as_deref()),
        }
    }

    /// Rancher's summary of the binding's state (`status.summary`: `Completed` once its RBAC objects are made
    /// everywhere); `None` when the server sent none.
    pub fn status_summary(&self) -> Option<&str> {
        fn sent(extra: &std::collections::BTreeMap<String, Value>) -> Option<&str> {
            extra.get("status")?.get("summary")?.as_str()
        }
        match self {
            BindingObject::Crtb(b) => b.status.as_ref().and_then(|s| s.summary.as_deref()),
            BindingObject::Grb(b) => b.status.as_ref().and_then(|s| s.summary.as_deref()),
            BindingObject::Prtb(b) => sent(&b.extra),
            BindingObject::V3Crtb(b) => sent(&b.extra),
            BindingObject::V3Prtb(b) => sent(&b.extra),
            BindingObject::V3Grb(b) => b.status.as_ref().and_then(|s| s.get("summary")?.as_str()),
        }
    }

    /// RK-API metadata, or norman's `created`.
    fn parts(&self) -> (Option<&ObjectMeta>, Option<&str>) {
        match self {
            BindingObject::Crtb(b) => (b.metadata.as_ref(), None),
            BindingObject::Prtb(b) => (b.metadata.as_ref(), None),
            BindingObject::Grb(b) => (b.metadata.as_ref(), None),
            BindingObject::V3Crtb(b) => (None, b.created.as_deref()),
            BindingObject::V3Prtb(b) => (None, b.created.as_deref()),
            BindingObject::V3Grb(b) => (None, b.created.as_deref()),
        }
    }
}

impl RoleBinding {
    /// The subject in words: `user u-x` or `group github_team://7`.
    pub fn subject(&self) -> String {
        match (&self.user, &self.group) {
            (Some(u), _) => format!("user {u}"),
            (None, Some(g)) => format!("group {g}"),
            _ => "nobody".into(),
        }
    }
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn meta_name(m: &Option<ObjectMeta>) -> (String, String, bool) {
    let m = m.as_ref();
    (
        m.and_then(|m| m.name.clone()).unwrap_or_default(),
        m.and_then(|m| m.namespace.clone()).unwrap_or_default(),
        m.is_some_and(|m| m.deletion_timestamp.is_some()),
    )
}

/// Splits a norman id `<namespace>:<name>`.
fn norman_id(id: &str) -> (String, String) {
    match id.split_once(':') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), id.to_string()),
    }
}

fn from_rk_crtb(b: ClusterRoleTemplateBinding) -> RoleBinding {
    let (name, namespace, deleting) = meta_name(&b.metadata);
    let raw = BindingObject::Crtb(Box::new(b.clone()));
    RoleBinding {
        kind: BindingKind::Cluster,
        name,
        namespace,
        scope: b.cluster_name.unwrap_or_default(),
        role: b.role_template_name.unwrap_or_default(),
        user: nonempty(b.user_name),
        group: nonempty(b.group_principal_name).or(nonempty(b.group_name)),
        deleting,
        raw,
    }
}

fn from_rk_prtb(b: ProjectRoleTemplateBinding) -> RoleBinding {
    let (name, namespace, deleting) = meta_name(&b.metadata);
    let raw = BindingObject::Prtb(Box::new(b.clone()));
    RoleBinding {
        kind: BindingKind::Project,
        name,
        namespace,
        scope: b.project_name.unwrap_or_default(),
        role: b.role_template_name.unwrap_or_default(),
        user: nonempty(b.user_name),
        group: nonempty(b.group_principal_name).or(nonempty(b.group_name)),
        deleting,
        raw,
    }
}

fn from_v3_crtb(b: V3ClusterRoleTemplateBinding) -> RoleBinding {
    let (namespace, name) = norman_id(b.id.as_deref().unwrap_or_default());
    let raw = BindingObject::V3Crtb(Box::new(b.clone()));
    RoleBinding {
        kind: BindingKind::Cluster,
        name,
        namespace,
        scope: b.cluster_id.unwrap_or_default(),
        role: b.role_template_id.unwrap_or_default(),
        user: nonempty(b.user_id),
        group: nonempty(b.group_principal_id).or(nonempty(b.group_id)),
        deleting: b.removed.is_some() || b.state.as_deref() == Some("removing"),
        raw,
    }
}

fn from_v3_prtb(b: V3ProjectRoleTemplateBinding) -> RoleBinding {
    let (namespace, name) = norman_id(b.id.as_deref().unwrap_or_default());
    let raw = BindingObject::V3Prtb(Box::new(b.clone()));
    RoleBinding {
        kind: BindingKind::Project,
        name,
        namespace,
        scope: b.project_id.unwrap_or_default(),
        role: b.role_template_id.unwrap_or_default(),
        user: nonempty(b.user_id),
        group: nonempty(b.group_principal_id).or(nonempty(b.group_id)),
        deleting: b.removed.is_some() || b.state.as_deref() == Some("removing"),
        raw,
    }
}

pub(crate) fn from_rk_grb(b: GlobalRoleBinding) -> RoleBinding {
    let (name, _, deleting) = meta_name(&b.metadata);
    let raw = BindingObject::Grb(Box::new(b.clone()));
    RoleBinding {
        kind: BindingKind::Global,
        name,
        namespace: String::new(),
        scope: String::new(),
        role: b.global_role_name.unwrap_or_default(),
        user: nonempty(b.user_name),
        group: nonempty(b.group_principal_name),
        deleting,
        raw,
    }
}

pub(crate) fn from_v3_grb(b: V3GlobalRoleBinding) -> RoleBinding {
    let raw = BindingObject::V3Grb(Box::new(b.clone()));
    RoleBinding {
        kind: BindingKind::Global,
        name: b.id.clone().unwrap_or_default(),
        namespace: String::new(),
        scope: String::new(),
        role: b.global_role_id.unwrap_or_default(),
        user: nonempty(b.user_id),
        group: nonempty(b.group_principal_id),
        deleting: b.removed.is_some() || b.state.as_deref() == Some("removing"),
        raw,
    }
}

/// Whether the server has the RK-API operation (per the endpoint list's `since`).
fn rk(session: &Session, op: &str) -> bool {
    rancher_api::find_operation(op).is_some_and(|o| session.version.at_least(o.since.major, o.since.minor))
}

/// Whether this session uses the RK-API for role template bindings.
pub fn rk_bindings(session: &Session) -> bool {
    rk(session, rancher_api::ids::RK_CLUSTERROLETEMPLATEBINDINGS_CREATE)
}

/// Whether this session uses the RK-API for global role bindings (as the global role binding workflows do).
fn rk_global(session: &Session) -> bool {
    session.version.at_least(2, 11)
}

/// Every binding of `kind` (cluster or project), all pages, without those Rancher is removing.
pub async fn list(session: &Session, kind: BindingKind) -> Result<Vec<RoleBinding>> {
    let c = &session.client;
    let all: Vec<RoleBinding> = match (kind, rk_bindings(session)) {
        (BindingKind::Cluster, true) => {
            c.cluster_role_template_bindings()
                .list_all(RkClusterroletemplatebindingsListAll::new())
                .map_ok(from_rk_crtb)
                .try_collect()
                .await?
        }
        (BindingKind::Cluster, false) => {
            c.v3()
                .clusterroletemplatebindings()
                .list(V3ClusterroletemplatebindingsList::new())
                .map_ok(from_v3_crtb)
                .try_collect()
                .await?
        }
        (BindingKind::Project, true) => {
            c.project_role_template_bindings()
                .list_all(RkProjectroletemplatebindingsListAll::new())
                .map_ok(from_rk_prtb)
                .try_collect()
                .await?
        }
        (BindingKind::Project, false) => {
            c.v3()
                .projectroletemplatebindings()
                .list(V3ProjectroletemplatebindingsList::new())
                .map_ok(from_v3_prtb)
                .try_collect()
                .await?
        }
        (BindingKind::Global, _) => return Ok(Vec::new()),
    };
    Ok(all.into_iter().filter(|b| !b.deleting).collect())
}

/// Every global role binding, all pages, without those Rancher is removing (the API the global role binding
/// workflows use for this server).
pub async fn list_global(session: &Session) -> Result<Vec<RoleBinding>> {
    let c = &session.client;
    let all: Vec<RoleBinding> = if rk_global(session) {
        c.global_role_bindings()
            .list(RkGlobalrolebindingsList::new())
            .map_ok(from_rk_grb)
            .try_collect()
            .await?
    } else {
        c.v3()
            .globalrolebindings()
            .list(V3GlobalrolebindingsList::new())
            .map_ok(from_v3_grb)
            .try_collect()
            .await?
    };
    Ok(all.into_iter().filter(|b| !b.deleting).collect())
}

/// Every global role binding as the global role binding workflows see it: on the RK-API without those Rancher is
/// removing, with a refused list in plain words; on norman `/v3` as listed.
pub async fn all_global(session: &Session) -> Result<Vec<RoleBinding>> {
    let c = &session.client;
    if rk_global(session) {
        let all: Vec<RoleBinding> = c
            .global_role_bindings()
            .list(RkGlobalrolebindingsList::new())
            .map_err(|e| refused(rancher_api::ids::RK_GLOBALROLEBINDINGS_LIST, e))
            .map_ok(from_rk_grb)
            .try_collect()
            .await?;
        Ok(all.into_iter().filter(|b| !b.deleting).collect())
    } else {
        Ok(c.v3()
            .globalrolebindings()
            .list(V3GlobalrolebindingsList::new())
            .map_err(|e| refused(rancher_api::ids::V3_GLOBALROLEBINDINGS_LIST, e))
            .map_ok(from_v3_grb)
            .try_collect()
            .await?)
    }
}

/// A refused list in plain words (see [`crate::exec::refused_list`]); other errors as they are.
fn refused(op: &str, e: rancher_api::Error) -> crate::Error {
    if e.is_forbidden() && !e.is_local_cluster_gate() {
        crate::Error::NotAllowed(crate::exec::refused_list(op, &e))
    } else {
        crate::Error::Api(e)
    }
}

/// The global role bindings that give user id `user` the global role `role`.
pub async fn find_global(session: &Session, user: &str, role: &str) -> Result<Vec<RoleBinding>> {
    let held = |b: &RoleBinding| b.user.as_deref() == Some(user) && b.role == role;
    if rk_global(session) {
        return Ok(all_global(session).await?.into_iter().filter(held).collect());
    }
    let list = V3GlobalrolebindingsList::new().user_id(user).global_role_id(role);
    let items: Vec<_> = session
        .client
        .v3()
        .globalrolebindings()
        .list(list)
        .try_collect()
        .await?;
    Ok(items.into_iter().map(from_v3_grb).filter(held).collect())
}

/// One binding by kind, namespace and name; `None` when it does not exist.
pub async fn get(session: &Session, kind: BindingKind, namespace: &str, name: &str) -> Result<Option<RoleBinding>> {
    let c = &session.client;
    let id = format!("{namespace}:{name}");
    let found = match (kind, rk_bindings(session), rk_global(session)) {
        (BindingKind::Cluster, true, _) => c
            .cluster_role_template_bindings()
            .get(RkClusterroletemplatebindingsGet::new(namespace, name))
            .await
            .map(from_rk_crtb),
        (BindingKind::Cluster, false, _) => c
            .v3()
            .clusterroletemplatebindings()
            .get(V3ClusterroletemplatebindingsGet::new(id))
            .await
            .map(from_v3_crtb),
        (BindingKind::Project, true, _) => c
            .project_role_template_bindings()
            .get(RkProjectroletemplatebindingsGet::new(namespace, name))
            .await
            .map(from_rk_prtb),
        (BindingKind::Project, false, _) => c
            .v3()
            .projectroletemplatebindings()
            .get(V3ProjectroletemplatebindingsGet::new(id))
            .await
            .map(from_v3_prtb),
        (BindingKind::Global, _, true) => c
            .global_role_bindings()
            .get(RkGlobalrolebindingsGet::new(name))
            .await
            .map(from_rk_grb),
        (BindingKind::Global, _, false) => c
            .v3()
            .globalrolebindings()
            .get(V3GlobalrolebindingsGet::new(name))
            .await
            .map(from_v3_grb),
    };
    match found {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What to create: a binding of `role` to one subject in one scope, under a fixed name (for a global role binding,
/// an empty name lets the server generate one after `grb-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBinding {
    /// Global, cluster or project.
    pub kind: BindingKind,
    /// The fixed name (so a replayed create finds its own object).
    pub name: String,
    /// The namespace (cluster id, project namespace; empty for global).
    pub namespace: String,
    /// Cluster id or project id (empty for global).
    pub scope: String,
    /// Role template id or global role name.
    pub role: String,
    /// The user id, or
    pub user: Option<String>,
    /// the group principal id.
    pub group: Option<String>,
}

/// Records a typed write in a dry run (with its rendered path and body) instead of sending it.
fn plan<R: Request>(exec: &mut Exec<'_>, req: &R) -> Result<()> {
    let spec = req.spec();
    let values = req.path_values();
    let mut pairs: Vec<(&str, String)> = spec
        .path_params
        .iter()
        .map(|p| p.name)
        .zip(values.iter().map(|v| v.to_string()))
        .collect();
    pairs.extend(req.query_pairs());
    let body: Option<Value> = req
        .body_bytes()
        .and_then(|b| b.ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let path = rancher_api::GenericRequest::new(spec.id, &refs, body.clone())?.target()?;
    exec.record_planned(PlannedRequest {
        operation: spec.id.into(),
        method: spec.method.to_string(),
        path,
        body,
    });
    Ok(())
}

/// The annotation every binding the product creates carries: the id of the approval request whose execution
/// made it, so a watcher of Rancher's bindings can tell the product's grants from changes made around it.
pub const REQUEST_ANNOTATION: &str = "rancher-access.io/request";

/// Creates the binding (or in a dry run records the request); returns what the server answered.
pub async fn create(exec: &mut Exec<'_>, b: &NewBinding) -> Result<Option<RoleBinding>> {
    let session = exec.session();
    let c = &session.client;
    // Only the execution of a request names one (a dry run or a run without approval does not).
    let annotations = exec
        .request_id()
        .map(|id| std::collections::BTreeMap::from([(REQUEST_ANNOTATION.to_string(), id.to_string())]));
    let meta = |ns: Option<String>| {
        Some(ObjectMeta {
            name: Some(b.name.clone()),
            namespace: ns,
            annotations: annotations.clone(),
            ..Default::default()
        })
    };
    let fixed = Some(b.name.clone()).filter(|n| !n.is_empty());
    let global_meta = match &fixed {
        Some(_) => meta(None),
        None => Some(ObjectMeta {
            generate_name: Some("grb-".into()),
            annotations: annotations.clone(),
            ..Default::default()
        }),
    };
    macro_rules! send {
        ($req:expr, $map:expr) => {{
            let req = $req;
            if exec.is_dry_run() {
                plan(exec, &req)?;
                return Ok(None);
            }
            // Fenced: an executor whose claim was taken over sends nothing more.
            exec.confirm_claim().await?;
            Ok(Some($map(c.send(&req).await?)))
        }};
    }
    match (b.kind, rk_bindings(session), rk_global(session)) {
        (BindingKind::Cluster, true, _) => send!(
            RkClusterroletemplatebindingsCreate::new(
                &b.namespace,
                ClusterRoleTemplateBinding {
                    api_version: Some("management.cattle.io/v3".into()),
                    kind: Some("ClusterRoleTemplateBinding".into()),
                    metadata: meta(Some(b.namespace.clone())),
                    cluster_name: Some(b.scope.clone()),
                    role_template_name: Some(b.role.clone()),
                    user_name: b.user.clone(),
                    group_principal_name: b.group.clone(),
                    ..Default::default()
                }
            ),
            from_rk_crtb
        ),
        (BindingKind::Cluster, false, _) => send!(
            V3ClusterroletemplatebindingsCreate::new(V3ClusterRoleTemplateBinding {
                type_: Some("clusterRoleTemplateBinding".into()),
                name: Some(b.name.clone()),
                cluster_id: Some(b.scope.clone()),
                role_template_id: Some(b.role.clone()),
                user_id: b.user.clone(),
                group_principal_id: b.group.clone(),
                ..Default::default()
            }),
            from_v3_crtb
        ),
        (BindingKind::Project, true, _) => send!(
            RkProjectroletemplatebindingsCreate::new(
                &b.namespace,
                ProjectRoleTemplateBinding {
                    api_version: Some("management.cattle.io/v3".into()),
                    kind: Some("ProjectRoleTemplateBinding".into()),
                    metadata: meta(Some(b.namespace.clone())),
                    project_name: Some(b.scope.clone()),
                    role_template_name: Some(b.role.clone()),
                    user_name: b.user.clone(),
                    group_principal_name: b.group.clone(),
                    ..Default::default()
                }
            ),
            from_rk_prtb
        ),
        (BindingKind::Project, false, _) => send!(
            V3ProjectroletemplatebindingsCreate::new(V3ProjectRoleTemplateBinding {
                type_: Some("projectRoleTemplateBinding".into()),
                name: Some(b.name.clone()),
                project_id: Some(b.scope.clone()),
                role_template_id: Some(b.role.clone()),
                user_id: b.user.clone(),
                group_principal_id: b.group.clone(),
                ..Default::default()
            }),
            from_v3_prtb
        ),
        (BindingKind::Global, _, true) => send!(
            RkGlobalrolebindingsCreate::new(GlobalRoleBinding {
                api_version: Some("management.cattle.io/v3".into()),
                kind: Some("GlobalRoleBinding".into()),
                metadata: global_meta,
                global_role_name: Some(b.role.clone()),
                user_name: b.user.clone(),
                group_principal_name: b.group.clone(),
                ..Default::default()
            }),
            from_rk_grb
        ),
        (BindingKind::Global, _, false) => send!(
            V3GlobalrolebindingsCreate::new(V3GlobalRoleBinding {
                type_: Some("globalRoleBinding".into()),
                name: fixed,
                global_role_id: Some(b.role.clone()),
                user_id: b.user.clone(),
                group_principal_id: b.group.clone(),
                ..Default::default()
            }),
            from_v3_grb
        ),
    }
}

/// Deletes a binding (or in a dry run records the request); `Ok(false)` when it was already gone.
pub async fn delete(exec: &mut Exec<'_>, kind: BindingKind, namespace: &str, name: &str) -> Result<bool> {
    let session = exec.session();
    let c = &session.client;
    let id = format!("{namespace}:{name}");
    macro_rules! send {
        ($req:expr) => {{
            let req = $req;
            if exec.is_dry_run() {
                plan(exec, &req)?;
                return Ok(true);
            }
            exec.confirm_claim().await?;
            c.send(&req).await.map(|_| ())
        }};
    }
    let sent = match (kind, rk_bindings(session), rk_global(session)) {
        (BindingKind::Cluster, true, _) => {
            send!(RkClusterroletemplatebindingsDelete::new(namespace, name))
        }
        (BindingKind::Cluster, false, _) => send!(V3ClusterroletemplatebindingsDelete::new(id)),
        (BindingKind::Project, true, _) => {
            send!(RkProjectroletemplatebindingsDelete::new(namespace, name))
        }
        (BindingKind::Project, false, _) => send!(V3ProjectroletemplatebindingsDelete::new(id)),
        (BindingKind::Global, _, true) => send!(RkGlobalrolebindingsDelete::new(name)),
        (BindingKind::Global, _, false) => send!(V3GlobalrolebindingsDelete::new(name)),
    };
    match sent {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A binding's object prints what the server sent, in the server's order, unknown fields included (as the
    /// JSON it replaced did), and its creation time, creator and state summary read the same on both surfaces.
    #[test]
    fn a_bindings_object_prints_as_sent_and_reads_its_facts() {
        let rk_sent = json!({
            "apiVersion": "management.cattle.io/v3", "kind": "ClusterRoleTemplateBinding",
            "metadata": {"name": "crtb-ra-1", "namespace": "c-abc", "creationTimestamp": "2026-01-02T03:04:05Z",
                         "annotations": {"field.cattle.io/creatorId": "u-admin"}, "zUnknown": 1},
            "clusterName": "c-abc", "roleTemplateName": "cluster-member", "userName": "u-1",
            "status": {"summary": "Completed"}, "aNewField": {"b": 2, "a": 1}
        });
        let b = from_rk_crtb(serde_json::from_value(rk_sent.clone()).unwrap());
        let typed: ClusterRoleTemplateBinding = serde_json::from_value(rk_sent).unwrap();
        assert_eq!(
            serde_json::to_string(&b.raw).unwrap(),
            serde_json::to_string(&serde_json::to_value(&typed).unwrap()).unwrap(),
            "the same bytes as the JSON it replaced"
        );
        assert!(serde_json::to_string(&b.raw)
            .unwrap()
            .contains(r#""aNewField":{"b":2,"a":1}"#));
        assert_eq!(b.raw.created(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(b.raw.creator(), Some("u-admin"));
        assert_eq!(b.raw.status_summary(), Some("Completed"));

        let v3: V3ClusterRoleTemplateBinding = serde_json::from_value(json!({
            "id": "c-abc:crtb-x", "type": "clusterRoleTemplateBinding", "clusterId": "c-abc",
            "roleTemplateId": "cluster-owner", "userId": "u-2", "created": "2026-02-03T04:05:06Z",
            "creatorId": "u-boss", "status": {"summary": "InProgress"}
        }))
        .unwrap();
        let b = from_v3_crtb(v3);
        assert_eq!(b.raw.created(), Some("2026-02-03T04:05:06Z"));
        assert_eq!(b.raw.creator(), Some("u-boss"));
        assert_eq!(b.raw.status_summary(), Some("InProgress"));
    }

    #[test]
    fn bindings_normalise_from_both_surfaces() {
        let rk: ClusterRoleTemplateBinding = serde_json::from_value(json!({
            "metadata": {"name": "crtb-ra-1", "namespace": "c-abc"}, "clusterName": "c-abc", "roleTemplateName": "cluster-member", "userName": "u-1"
        }))
        .unwrap();
        let b = from_rk_crtb(rk);
        assert_eq!(
            (
                b.name.as_str(),
                b.namespace.as_str(),
                b.scope.as_str(),
                b.user.as_deref(),
                b.deleting
            ),
            ("crtb-ra-1", "c-abc", "c-abc", Some("u-1"), false)
        );
        let v3: V3ProjectRoleTemplateBinding = serde_json::from_value(json!({
            "id": "c-abc-p-xyz:prtb-ra-2", "projectId": "c-abc:p-xyz", "roleTemplateId": "project-member", "groupPrincipalId": "github_team://7", "userId": ""
        }))
        .unwrap();
        let b = from_v3_prtb(v3);
        assert_eq!(
            (
                b.namespace.as_str(),
                b.name.as_str(),
                b.user.as_deref(),
                b.group.as_deref()
            ),
            ("c-abc-p-xyz", "prtb-ra-2", None, Some("github_team://7"))
        );
        assert_eq!(b.subject(), "group github_team://7");
    }
}

//! Role definitions read with the typed requests (RK-API where the session's bindings are on it, else norman
//! `/v3`), as JSON for the checks that walk their rules: the role-granting check of time-bound grants and the
//! effective change of a role edit.

use futures::TryStreamExt as _;
use rancher_api::requests::{
    RkGlobalrolesGet, RkGlobalrolesList, RkRoletemplatesGet, RkRoletemplatesList, V3GlobalrolesGet, V3GlobalrolesList,
    V3RoletemplatesGet, V3RoletemplatesList,
};
use serde_json::Value;

use crate::grants::bindings::rk_bindings;
use crate::session::Session;

/// Which definition to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleKind {
    /// A global role.
    Global,
    /// A cluster or project role template.
    Template,
}

fn json<T: serde::Serialize>(t: T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// One role's definition as the server sent it (every field, as JSON); the API error is kept, so a caller can
/// tell "not found" apart.
pub(crate) async fn get(session: &Session, kind: RoleKind, name: &str) -> rancher_api::Result<Value> {
    let c = &session.client;
    let rk = rk_bindings(session);
    Ok(match (kind, rk) {
        (RoleKind::Global, true) => json(c.global_roles().get(RkGlobalrolesGet::new(name)).await?),
        (RoleKind::Global, false) => json(c.v3().globalroles().get(V3GlobalrolesGet::new(name)).await?),
        (RoleKind::Template, true) => json(c.role_templates().get(RkRoletemplatesGet::new(name)).await?),
        (RoleKind::Template, false) => json(c.v3().roletemplates().get(V3RoletemplatesGet::new(name)).await?),
    })
}

/// Every role of `kind`, as JSON.
pub(crate) async fn list(session: &Session, kind: RoleKind) -> rancher_api::Result<Vec<Value>> {
    let c = &session.client;
    let rk = rk_bindings(session);
    Ok(match (kind, rk) {
        (RoleKind::Global, true) => {
            c.global_roles()
                .list(RkGlobalrolesList::new())
                .map_ok(json)
                .try_collect()
                .await?
        }
        (RoleKind::Global, false) => {
            c.v3()
                .globalroles()
                .list(V3GlobalrolesList::new())
                .map_ok(json)
                .try_collect()
                .await?
        }
        (RoleKind::Template, true) => {
            c.role_templates()
                .list(RkRoletemplatesList::new())
                .map_ok(json)
                .try_collect()
                .await?
        }
        (RoleKind::Template, false) => {
            c.v3()
                .roletemplates()
                .list(V3RoletemplatesList::new())
                .map_ok(json)
                .try_collect()
                .await?
        }
    })
}

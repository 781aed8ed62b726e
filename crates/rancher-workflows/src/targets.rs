//! What a write request acts on, pinned at submit: the ids behind the names a person typed (so a user deleted
//! and re-created under the same name is not the one that gets the grant), the principals that benefit (who then
//! may not approve it), and the secret fields that must never be stored.

use serde_json::{json, Value};

use crate::error::Result;
use crate::session::Session;
use crate::workflow::Inputs;

pub use crate::workflow::Pinned;

/// Keys that name a user or a principal in request bodies and parameters, on every surface.
const PRINCIPAL_KEYS: &[&str] = &[
    "userName",
    "userId",
    "userPrincipalName",
    "userPrincipalId",
    "groupPrincipalName",
    "groupPrincipalId",
    "principalId",
    "principalIds",
    "externalId",
];

/// A comma-separated list as trimmed, non-empty entries. A piece that reads `attr=...` continues the entry before
/// it, so LDAP and Active Directory ids such as `activedirectory_user://CN=Ann,OU=Users,DC=example,DC=com` stay whole.
pub(crate) fn split_entries(s: &str) -> Vec<String> {
    let continues = |piece: &str| {
        let p = piece.trim_start();
        p.split_once('=')
            .is_some_and(|(attr, _)| !attr.is_empty() && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let mut out: Vec<String> = Vec::new();
    for piece in s.split(',') {
        match out.last_mut() {
            Some(last) if continues(piece) => {
                last.push(',');
                last.push_str(piece.trim());
            }
            _ => out.push(piece.trim().to_string()),
        }
    }
    out.retain(|x| !x.is_empty());
    out
}

/// The principals named in a comma-separated list of identities (`access-control-allow`/`-disallow`), as
/// `(id, label)`, sorted and without repeats; a directory id's own commas do not split it.
pub(crate) fn identity_targets(ids: &str) -> Vec<(String, String)> {
    let mut targets: Vec<(String, String)> = split_entries(ids).into_iter().map(|s| (normal(&s), s)).collect();
    targets.sort();
    targets.dedup_by(|a, b| a.0 == b.0);
    targets
}

/// Pins a `rancher-api-request` of operation `op`: the principals its path and body name, and for an edit of a
/// role, the effective change and everyone who holds the role (all of them targets).
pub(crate) async fn pin_api_request(session: &Session, op: &str, inputs: Inputs) -> Result<Pinned> {
    let mut inputs = inputs;
    let mut targets = Vec::new();
    // A user named in the path: rk.users.*, v3.users.* and the like.
    if op.contains(".users.") {
        if let Some(params) = inputs.get("params").and_then(Value::as_object) {
            for key in ["name", "id"] {
                if let Some(v) = params.get(key).and_then(Value::as_str) {
                    targets.push((v.to_string(), v.to_string()));
                }
            }
        }
    }
    if let Some(body) = inputs.get("body") {
        collect_principals(body, &mut targets);
    }
    if let Some(m) = inputs.as_object_mut() {
        m.remove(ROLE_CHANGE);
    }
    if let Some(edit) = role_edit(op) {
        let name = inputs
            .get("params")
            .and_then(|p| p.get(edit.param))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (holders, change) = role_change(session, &edit, &name, &inputs).await?;
        targets.extend(holders.into_iter().map(|h| (normal(&h), h)));
        inputs[ROLE_CHANGE] = change;
    }
    targets.sort();
    targets.dedup_by(|a, b| a.0 == b.0);
    Ok(Pinned { inputs, targets })
}

/// The input a `rancher-api-request` that edits a role records the effective change in, for approvers.
pub const ROLE_CHANGE: &str = "role-change";

/// An edit of a global role or a role template through the generic request.
struct RoleEdit {
    /// `global role` or `role template`.
    kind: &'static str,
    /// `patch`, `replace` or `delete`.
    verb: &'static str,
    /// The path parameter naming the role.
    param: &'static str,
}

/// The operations of the endpoint list that edit a global role or a role template (the norman surface has none):
/// operation, what it edits, how.
const ROLE_EDITS: &[(&str, &str, &str)] = &[
    (rancher_api::ids::RK_GLOBALROLES_PATCH, "global role", "patch"),
    (rancher_api::ids::RK_GLOBALROLES_REPLACE, "global role", "replace"),
    (rancher_api::ids::RK_GLOBALROLES_DELETE, "global role", "delete"),
    (rancher_api::ids::RK_ROLETEMPLATES_PATCH, "role template", "patch"),
    (rancher_api::ids::RK_ROLETEMPLATES_REPLACE, "role template", "replace"),
    (rancher_api::ids::RK_ROLETEMPLATES_DELETE, "role template", "delete"),
];

/// Whether operation `op` edits (patch, replace, delete) a global role or a role template: a change every holder
/// of that role gets at once.
fn role_edit(op: &str) -> Option<RoleEdit> {
    ROLE_EDITS
        .iter()
        .find(|(id, _, _)| *id == op)
        .map(|(_, kind, verb)| RoleEdit {
            kind,
            verb,
            param: "name",
        })
}

/// JSON merge patch (RFC 7386): what `patch` makes of `target`.
fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else { return patch.clone() };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

/// What approvers need of a role's definition: its rules and what it inherits.
fn role_view(obj: &Value) -> Value {
    let mut view = serde_json::Map::new();
    for k in [
        "rules",
        "namespacedRules",
        "inheritedClusterRoles",
        "roleTemplateNames",
        "administrative",
        "locked",
        "context",
        "builtin",
    ] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            view.insert(k.into(), v.clone());
        }
    }
    Value::Object(view)
}

/// Everyone who holds role `name` now, directly or through inheritance: principal ids (users and groups).
async fn holders(session: &Session, kind: &str, name: &str) -> Result<Vec<String>> {
    use crate::bindings;
    let mut out = Vec::new();
    let subject = |b: &bindings::RoleBinding| b.user.clone().or_else(|| b.group.clone());
    let globals = bindings::list_global(session).await?;
    if kind == "global role" {
        out.extend(globals.iter().filter(|b| b.role == name).filter_map(subject));
        return Ok(out);
    }
    // Role templates that include this one, at any depth (`roleTemplateNames`).
    let templates: Vec<Value> = crate::roles::list(session, crate::roles::RoleKind::Template).await?;
    let id_of = |t: &Value| {
        t.pointer("/metadata/name")
            .or_else(|| t.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut including = std::collections::BTreeSet::from([name.to_string()]);
    loop {
        let before = including.len();
        for t in &templates {
            let inherits = t
                .get("roleTemplateNames")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|n| including.contains(n));
            if inherits {
                including.insert(id_of(t));
            }
        }
        if including.len() == before {
            break;
        }
    }
    for kind in [
        rancher_approval::BindingKind::Cluster,
        rancher_approval::BindingKind::Project,
    ] {
        out.extend(
            bindings::list(session, kind)
                .await?
                .iter()
                .filter(|b| including.contains(&b.role))
                .filter_map(subject),
        );
    }
    // Global roles that give these templates in every cluster (`inheritedClusterRoles`).
    let global_roles: Vec<Value> = crate::roles::list(session, crate::roles::RoleKind::Global).await?;
    for g in &global_roles {
        let gives = g
            .get("inheritedClusterRoles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|n| including.contains(n));
        if gives {
            let gname = id_of(g);
            out.extend(globals.iter().filter(|b| b.role == gname).filter_map(subject));
        }
    }
    Ok(out)
}

/// The holders of the edited role (the request's targets: a holder gains from the change, so may not approve it)
/// and the effective change approvers see: the role's rules now and after the edit.
async fn role_change(session: &Session, edit: &RoleEdit, name: &str, inputs: &Value) -> Result<(Vec<String>, Value)> {
    if name.is_empty() {
        return Ok((Vec::new(), Value::Null));
    }
    let mut who = holders(session, edit.kind, name).await?;
    who.sort();
    who.dedup();
    let kind = if edit.kind == "global role" {
        crate::roles::RoleKind::Global
    } else {
        crate::roles::RoleKind::Template
    };
    let current = crate::roles::get(session, kind, name).await;
    let before = match current {
        Ok(v) => role_view(&v),
        Err(e) if e.is_not_found() => Value::Null,
        Err(e) => return Err(e.into()),
    };
    let body = inputs.get("body").cloned().unwrap_or(Value::Null);
    let after = match edit.verb {
        "delete" => Value::Null,
        "replace" => role_view(&body),
        _ if body.is_object() => role_view(&merge_patch(&before, &role_view(&body))),
        _ => json!({"json-patch": body}),
    };
    let change = json!({
        "role": name,
        "kind": edit.kind,
        "operation": edit.verb,
        "holders": who.len(),
        "before": before,
        "after": after,
        "warning": format!(
            "this {verb} of {kind} `{name}` changes what all {n} of its holders may do at once; every holder is a target of this request, so none of them may approve it",
            verb = edit.verb, kind = edit.kind, n = who.len()
        ),
    });
    Ok((who, change))
}

/// `local://u-x` is the user `u-x`; other principal ids stay as they are.
fn normal(principal: &str) -> String {
    principal.strip_prefix("local://").unwrap_or(principal).to_string()
}

fn collect_principals(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if PRINCIPAL_KEYS.contains(&k.as_str()) {
                    let mut found = Vec::new();
                    match v {
                        Value::String(s) if !s.trim().is_empty() => found.push(s.clone()),
                        Value::Array(items) => found.extend(items.iter().filter_map(Value::as_str).map(str::to_string)),
                        _ => {}
                    }
                    out.extend(found.into_iter().map(|s| (normal(&s), s)));
                }
                // Kubernetes-style subjects: [{kind: User, name: u-x}]
                if k == "subjects" {
                    for s in v.as_array().into_iter().flatten() {
                        if let Some(name) = s.get("name").and_then(Value::as_str) {
                            out.push((normal(name), name.to_string()));
                        }
                    }
                }
                collect_principals(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_principals(i, out)),
        _ => {}
    }
}

/// Key names that hold a secret whatever the type (a body typed `any` has no schema to say so).
fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credential",
        "privatekey",
        "jwt",
        "bearer",
        "apikey",
        "accesskey",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The secret fields of a generic API request's inputs: every field the endpoint list marks secret
/// for the body's type, and any field whose name says it holds a secret. Names are given as JSON paths.
pub(crate) fn secret_fields(inputs: &Value) -> Vec<String> {
    let Some(body) = inputs.get("body").filter(|b| !b.is_null()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Some(spec) = inputs
        .get("operation")
        .and_then(Value::as_str)
        .and_then(rancher_api::find_operation)
    {
        if let Some(b) = spec.body {
            let mut masked = body.clone();
            rancher_api::redact_secrets(b.type_name, &mut masked);
            diff_paths(body, &masked, "body", &mut found);
        }
    }
    by_name(body, "body", &mut found);
    found.sort();
    found.dedup();
    found
}

fn diff_paths(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                if let Some(w) = y.get(k) {
                    diff_paths(v, w, &format!("{at}.{k}"), out);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff_paths(v, w, &format!("{at}[{i}]"), out);
            }
        }
        _ if a != b => out.push(at.to_string()),
        _ => {}
    }
}

fn by_name(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}.{k}");
                let filled = match v {
                    Value::Null => false,
                    Value::String(s) => !s.is_empty(),
                    _ => true,
                };
                if secret_name(k) && filled && !v.is_object() && !v.is_array() {
                    out.push(here);
                } else {
                    by_name(v, &here, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, x)| by_name(x, &format!("{at}[{i}]"), out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_directory_ids_own_commas_do_not_split_it_into_targets() {
        let t = identity_targets("activedirectory_user://CN=Anna Smith,OU=Users,DC=example,DC=com, github_team://7");
        let ids: Vec<&str> = t.iter().map(|(_, label)| label.as_str()).collect();
        assert_eq!(
            ids,
            [
                "activedirectory_user://CN=Anna Smith,OU=Users,DC=example,DC=com",
                "github_team://7"
            ]
        );
    }

    #[test]
    fn secrets_are_found_by_schema_and_by_name() {
        let create = json!({"operation": "rk.users.create", "body": {"username": "eve", "password": "Corr3ct-Horse"}});
        assert_eq!(secret_fields(&create), ["body.password"]);
        let ad = json!({"operation": "v3.authconfigs.update", "params": {"id": "activedirectory"},
            "body": {"serviceAccountUsername": "svc", "serviceAccountPassword": "AD-Sv3c", "servers": ["ad.example.com"], "nested": {"clientSecret": "x"}}});
        assert_eq!(
            secret_fields(&ad),
            ["body.nested.clientSecret", "body.serviceAccountPassword"]
        );
        let plain = json!({"operation": "rk.globalrolebindings.create", "body": {"globalRoleName": "admin", "userName": "u-1", "password": null}});
        assert!(secret_fields(&plain).is_empty());
        assert!(secret_fields(&json!({"user": "x"})).is_empty());
    }

    #[test]
    fn principals_are_collected_from_bodies() {
        let mut out = Vec::new();
        collect_principals(
            &json!({"userName": "u-vqxfc", "groupPrincipalName": "github_team://7", "x": [{"principalIds": ["local://u-abc", "azuread_user://9"]}],
                    "subjects": [{"kind": "User", "name": "u-sub"}]}),
            &mut out,
        );
        let mut ids: Vec<&str> = out.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort();
        assert_eq!(
            ids,
            ["azuread_user://9", "github_team://7", "u-abc", "u-sub", "u-vqxfc"]
        );
    }
}

//! Whether a time-bound grant is contained.
//!
//! Revocation removes the one binding a grant made. A role that lets its holder grant roles (Rancher's `admin` and
//! `restricted-admin`, the owner role templates, any role with `bind` or `escalate`, or any write verb, `*`
//! included, on role bindings, on roles, or on every resource) lets the holder make their access outlast the grant in seconds, by binding it
//! again under another name or handing it to someone else. So:
//! - at submit, a time-bound grant of such a role is marked with why ([`mark`]: approvers see the warning in the
//!   request) and refused unless the workflow's policy sets `allow_role_granting_grants` ([`check`]);
//! - at revocation, the bindings made for the holder, or by the holder (Rancher's `field.cattle.io/creatorId`),
//!   since the grant began are listed in the `grant.revoked` record ([`made_during`]), and removed when the
//!   request's policy sets `remove_bindings_made_during_grant`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rancher_approval::{BindingKind, Policy};
use serde_json::{json, Value};

use super::bindings::{self, RoleBinding};
use crate::catalog::WorkflowDef;
use crate::error::{Error, Result};
use crate::session::Session;

/// The input a request records the warning in.
pub const INPUT: &str = crate::catalog::GRANTS_ROLES.name;

/// Role templates that own their cluster or project (their holders manage its members).
const OWNER_TEMPLATES: &[&str] = &["cluster-owner", "project-owner"];
/// Global roles that administer Rancher.
const ADMIN_ROLES: &[&str] = &["admin", "restricted-admin"];

/// Resources whose writers decide who holds what: bindings of every kind (role bindings, role template bindings),
/// and the roles themselves (editing a role changes the rights of everyone who holds it).
fn grants_access(resource: &str) -> bool {
    resource == "*"
        || resource.ends_with("bindings")
        || matches!(resource, "globalroles" | "roletemplates" | "roles" | "clusterroles")
}

/// Why one RBAC rule lets its holder grant access; `None` when it does not. Every verb (`*`) on pods or workloads
/// grants nothing; on role bindings, roles or every resource it does.
fn rule_grants(rule: &Value) -> Option<String> {
    let list = |k: &str| {
        rule.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let (verbs, resources) = (list("verbs"), list("resources"));
    if let Some(v) = verbs.iter().find(|v| *v == "bind" || *v == "escalate") {
        return Some(format!("a rule allows `{v}`"));
    }
    let verb = verbs
        .iter()
        .find(|v| matches!(v.as_str(), "*" | "create" | "update" | "patch"))?;
    let resource = resources.iter().find(|r| grants_access(r))?;
    let what = if resource == "*" {
        "every resource (`*`), role bindings included".to_string()
    } else {
        format!("`{resource}`")
    };
    let how = if verb == "*" {
        "every verb (`*`)".to_string()
    } else {
        format!("`{verb}`")
    };
    Some(format!("a rule allows {how} on {what}"))
}

fn rules_grant(obj: &Value) -> Option<String> {
    let mut rules: Vec<&Value> = obj
        .get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    // Global roles' namespaced rules (Rancher 2.8+): namespace -> rules.
    if let Some(ns) = obj.get("namespacedRules").and_then(Value::as_object) {
        rules.extend(ns.values().filter_map(Value::as_array).flatten());
    }
    rules.into_iter().find_map(rule_grants)
}

/// Why role template `name` (or one it inherits) lets its holder grant roles.
async fn template_grants(session: &Session, name: &str) -> Result<Option<String>> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(t) = todo.pop() {
        if !seen.insert(t.clone()) || seen.len() > 32 {
            continue;
        }
        let via = if t == name {
            String::new()
        } else {
            format!(" (inherited role template `{t}`)")
        };
        if OWNER_TEMPLATES.contains(&t.as_str()) {
            return Ok(Some(format!(
                "`{t}` makes its holder an owner, who manages members{via}"
            )));
        }
        let obj = crate::roles::get(session, crate::roles::RoleKind::Template, &t).await?;
        if obj.get("administrative").and_then(Value::as_bool) == Some(true) {
            return Ok(Some(format!("role template `{t}` is administrative{via}")));
        }
        if let Some(why) = rules_grant(&obj) {
            return Ok(Some(format!("{why}{via}")));
        }
        todo.extend(
            obj.get("roleTemplateNames")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    Ok(None)
}

/// Why holding `role` (a global role, or a cluster or project role template) lets one grant roles; `None` when
/// it does not.
pub async fn grants_roles(session: &Session, kind: BindingKind, role: &str) -> Result<Option<String>> {
    match kind {
        BindingKind::Global => {
            if ADMIN_ROLES.contains(&role) {
                return Ok(Some(format!("the global role `{role}` administers Rancher")));
            }
            let obj = crate::roles::get(session, crate::roles::RoleKind::Global, role).await?;
            if let Some(why) = rules_grant(&obj) {
                return Ok(Some(format!("global role `{role}`: {why}")));
            }
            for t in obj
                .get("inheritedClusterRoles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Some(why) = template_grants(session, t).await? {
                    return Ok(Some(format!(
                        "global role `{role}` gives `{t}` in every cluster: {why}"
                    )));
                }
            }
            Ok(None)
        }
        _ => Ok(template_grants(session, role)
            .await?
            .map(|why| format!("role `{role}`: {why}"))),
    }
}

/// For a time-bound grant of `role`: records in the inputs why the role is not contained (approvers see it), or
/// removes a value a caller put there.
pub(crate) async fn mark(session: &Session, kind: BindingKind, role: &str, inputs: &mut Value) -> Result<()> {
    if let Some(m) = inputs.as_object_mut() {
        m.remove(INPUT);
    }
    if let Some(why) = grants_roles(session, kind, role).await? {
        inputs[INPUT] = json!({
            "why": why,
            "warning": "WARNING: this role can grant roles, so this time-bound grant is not contained: during the window the holder can bind \
                        the same or other access to themselves or others, and revoking this grant does not undo that. Bindings made by or for \
                        the holder during the window are listed when the grant is revoked",
        });
    }
    Ok(())
}

/// Refuses a request whose inputs say it grants a role that can grant roles, unless `policy` allows it.
pub(crate) fn check(def: &WorkflowDef, inputs: &Value, policy: &Policy) -> Result<()> {
    let Some(why) = inputs.get(INPUT).and_then(|m| m.get("why")).and_then(Value::as_str) else {
        return Ok(());
    };
    if policy.options.allow_role_granting_grants {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{}: {why}, so a time-bound grant of it is not contained (the holder can make their access outlast the grant). \
         Grant a narrower role, or have an admin allow it for this workflow with the policy option `allow_role_granting_grants: true` \
         (a policy file with `\"options\": {{\"allow_role_granting_grants\": true}}`, given to `rancherctl workflows set-policy {} --policy-file FILE`); \
         approvers then see this warning",
        def.id, def.id
    )))
}

/// Bindings (global, cluster and project) created since `since` for `holder`, or by `holder` (Rancher's
/// `field.cattle.io/creatorId` annotation), other than `own` (the grant's own binding).
pub async fn made_during(session: &Session, holder: &str, since: DateTime<Utc>, own: &str) -> Result<Vec<RoleBinding>> {
    // Kubernetes keeps creation times in whole seconds: a binding made in the grant's first second counts.
    let since = chrono::Timelike::with_nanosecond(&since, 0).unwrap_or(since);
    let mut out = Vec::new();
    for kind in [BindingKind::Global, BindingKind::Cluster, BindingKind::Project] {
        let all = if kind == BindingKind::Global {
            bindings::list_global(session).await?
        } else {
            bindings::list(session, kind).await?
        };
        for b in all {
            if b.name == own || b.deleting {
                continue;
            }
            let created = b
                .raw
                .created()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            if created.is_none_or(|c| c < since) {
                continue;
            }
            let creator = b.raw.creator();
            let for_holder = b.user.as_deref() == Some(holder) || b.group.as_deref() == Some(holder);
            if for_holder || creator == Some(holder) {
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// The bindings of [`made_during`] in words, for the `grant.revoked` record.
pub fn describe(found: &[RoleBinding], removed: bool) -> String {
    if found.is_empty() {
        return String::new();
    }
    let each: Vec<String> = found
        .iter()
        .map(|b| {
            let scope = if b.scope.is_empty() {
                String::new()
            } else {
                format!(" in {}", b.scope)
            };
            let by = b.raw.creator();
            format!(
                "{} ({} {}{scope} for {}{})",
                b.name,
                kind_word(b.kind),
                b.role,
                b.subject(),
                by.map(|u| format!(", made by {u}")).unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{} binding(s) made by or for the holder during the grant {}: {}",
        found.len(),
        if removed {
            "were removed (policy `remove_bindings_made_during_grant`)"
        } else {
            "are NOT removed; review them"
        },
        each.join("; ")
    )
}

fn kind_word(k: BindingKind) -> &'static str {
    match k {
        BindingKind::Global => "global role",
        BindingKind::Cluster => "cluster role",
        BindingKind::Project => "project role",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n4_rules_that_grant_roles_are_named() {
        assert!(
            rule_grants(&json!({"verbs": ["*"], "resources": ["projectroletemplatebindings"]}))
                .unwrap()
                .contains("every verb")
        );
        assert!(rule_grants(&json!({"verbs": ["create"], "resources": ["*"]}))
            .unwrap()
            .contains("every resource"));
        assert!(rule_grants(&json!({"verbs": ["bind"], "resources": ["roles"]}))
            .unwrap()
            .contains("`bind`"));
        assert!(
            rule_grants(&json!({"verbs": ["create"], "resources": ["globalrolebindings"]}))
                .unwrap()
                .contains("globalrolebindings")
        );
        assert!(rule_grants(&json!({"verbs": ["patch"], "resources": ["globalroles"]}))
            .unwrap()
            .contains("globalroles"));
        assert!(
            rule_grants(&json!({"verbs": ["*"], "resources": ["pods", "deployments"]})).is_none(),
            "project-member's workload rights grant nothing"
        );
        assert!(
            rule_grants(&json!({"verbs": ["get", "list"], "resources": ["*"]})).is_none(),
            "reading everything grants nothing"
        );
        assert!(
            rule_grants(&json!({"verbs": ["get", "list"], "resources": ["clusterroletemplatebindings"]})).is_none()
        );
        assert!(rule_grants(&json!({"verbs": ["create"], "resources": ["pods"]})).is_none());
    }

    #[test]
    fn n4_a_role_granting_grant_is_refused_unless_the_policy_allows_it() {
        let def = crate::registry::find("create-global-role-binding").unwrap();
        let inputs = json!({"user": "u-1", "role": "admin", "duration": "1h", INPUT: {"why": "the global role `admin` administers Rancher", "warning": "w"}});
        let e = check(def, &inputs, &Policy::installer()).unwrap_err().to_string();
        assert!(
            e.contains("allow_role_granting_grants") && e.contains("not contained"),
            "{e}"
        );
        let mut allowed = Policy::installer();
        allowed.options.allow_role_granting_grants = true;
        assert!(check(def, &inputs, &allowed).is_ok());
        assert!(check(
            def,
            &json!({"user": "u-1", "role": "user", "duration": "1h"}),
            &Policy::installer()
        )
        .is_ok());
    }
}

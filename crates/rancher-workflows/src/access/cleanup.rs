//! What Rancher deletes when a 2.x auth provider is disabled, read before the disable so approvers see it.
//!
//! Rancher 2.8-2.13 (rancher/rancher pkg/controllers/management/auth/auth_config.go `sync`): unless the config's
//! `management.cattle.io/auth-provider-cleanup` annotation says `user-locked` (or `rancher-locked`, a provider
//! already cleaned up), disabling resets the provider's settings and runs pkg/auth/cleanup/service.go `Run`: it
//! deletes the global role bindings of the provider's groups, the cluster and project role template bindings whose
//! user or group principal is of the provider, the users who only ever were the provider's (users who were local
//! first only lose the provider's principal), and every token the provider issued; each deleted user takes its
//! own remaining bindings and tokens along.

use futures::TryStreamExt;
use rancher_api::requests::{
    RkClusterroletemplatebindingsListAll, RkGlobalrolebindingsList, RkMgmttokensList,
    RkProjectroletemplatebindingsListAll, RkTokensList, RkUsersList, V3UsersList,
};
use serde::Serialize;

use super::Provider;
use crate::error::Result;
use crate::session::Session;

/// The cleanup annotation and its values (auth_config.go `CleanupAnnotation`).
pub(crate) const CLEANUP_ANNOTATION: &str = "management.cattle.io/auth-provider-cleanup";

/// What disabling one provider will delete, as read now.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub(crate) struct Cleanup {
    /// The annotation's value when it stops the cleanup (`user-locked`, `rancher-locked`).
    pub locked: Option<String>,
    /// Users deleted (id).
    pub users_deleted: Vec<String>,
    /// Users who keep their account but lose the provider's principal (id).
    pub users_reset: Vec<String>,
    /// Bindings deleted (`globalrolebinding/<name>`, `clusterroletemplatebinding/<ns>/<name>`, ...).
    pub bindings_deleted: Vec<String>,
    /// Tokens deleted (names, ext tokens as `ext/<name>`; never their secrets).
    pub tokens_deleted: Vec<String>,
    /// The provider's settings are reset (every field but type and metadata).
    pub settings_reset: bool,
}

impl Cleanup {
    /// Does the disable delete anything?
    pub fn deletes(&self) -> bool {
        !(self.users_deleted.is_empty() && self.bindings_deleted.is_empty() && self.tokens_deleted.is_empty())
    }

    /// A short code that names exactly this set: the acknowledgement an approver pins.
    pub fn code(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let digest = fnv1a(text.as_bytes());
        format!("delete-{digest:016x}")
    }

    /// One line for the plan.
    pub fn describe(&self) -> String {
        if let Some(l) = &self.locked {
            return format!("Rancher keeps its users, bindings and tokens (cleanup annotation `{l}`)");
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        format!(
            "Rancher resets its settings and deletes {} user(s) [{}], {} binding(s) [{}] and {} token(s) [{}]; {} once-local user(s) keep only their local login [{}]",
            self.users_deleted.len(),
            list(&self.users_deleted),
            self.bindings_deleted.len(),
            list(&self.bindings_deleted),
            self.tokens_deleted.len(),
            list(&self.tokens_deleted),
            self.users_reset.len(),
            list(&self.users_reset),
        )
    }
}

/// FNV-1a, 64 bits: a stable fingerprint (not a security boundary; the approval pins the inputs).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The provider a principal id belongs to, read as Rancher's cleanup reads it: the text before the first `_`,
/// unless it is local (pkg/auth/cleanup/service.go `getProviderNameFromPrincipalNames`).
fn provider_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .filter_map(|n| n.split('_').next())
        .find(|p| !p.is_empty() && !p.starts_with("local"))
}

/// Reads what disabling `p` will delete. `annotation` is the config's cleanup annotation, if any.
///
/// Deleting a user takes its own bindings and tokens along, whatever their provider (rancher/rancher
/// pkg/controllers/management/auth/user.go `userLifecycle.Remove`, 2.8-2.13: the user's CRTBs, PRTBs, GRBs, tokens
/// and, from 2.12, its ext tokens), so those are listed too.
pub(crate) async fn plan(session: &Session, p: Provider, annotation: Option<&str>) -> Result<Cleanup> {
    let id = p.id();
    let mut out = Cleanup::default();
    match annotation {
        Some(v @ ("user-locked" | "rancher-locked")) => {
            out.locked = Some(v.to_string());
            return Ok(out);
        }
        _ => out.settings_reset = true,
    }
    let c = &session.client;
    // Rancher deletes a user with no local password and resets one who has one; the API shows no passwords, so a
    // user without a `username` (only external users lack one) stands for "never local".
    let users: Vec<(String, String, Vec<String>)> = if session.version.at_least(2, 13) {
        let mut v = Vec::new();
        let mut s = c.users().list(RkUsersList::new());
        while let Some(u) = s.try_next().await? {
            let id = u.metadata.and_then(|m| m.name).unwrap_or_default();
            v.push((id, u.username.unwrap_or_default(), u.principal_ids.unwrap_or_default()));
        }
        v
    } else {
        let mut v = Vec::new();
        let mut s = c.v3().users().list(V3UsersList::new());
        while let Some(u) = s.try_next().await? {
            v.push((
                u.id.unwrap_or_default(),
                u.username.unwrap_or_default(),
                u.principal_ids.unwrap_or_default(),
            ));
        }
        v
    };
    for (uid, username, principals) in users {
        if provider_of(principals.iter().map(String::as_str)) != Some(id) {
            continue;
        }
        if username.is_empty() {
            out.users_deleted.push(uid);
        } else if principals.len() >= 2 && principals.iter().any(|p| p.starts_with("local")) {
            out.users_reset.push(uid);
        }
    }
    let deleted: std::collections::HashSet<String> = out.users_deleted.iter().cloned().collect();
    let gone_user = |u: &Option<String>| u.as_ref().is_some_and(|u| deleted.contains(u));
    let mine = |names: &[Option<String>]| provider_of(names.iter().flatten().map(String::as_str)) == Some(id);
    let mut grbs = c.global_role_bindings().list(RkGlobalrolebindingsList::new());
    while let Some(b) = grbs.try_next().await? {
        if mine(&[b.group_principal_name.clone()]) || gone_user(&b.user_name) {
            let name = b.metadata.and_then(|m| m.name).unwrap_or_default();
            out.bindings_deleted.push(format!("globalrolebinding/{name}"));
        }
    }
    let mut crtbs = c
        .cluster_role_template_bindings()
        .list_all(RkClusterroletemplatebindingsListAll::new());
    while let Some(b) = crtbs.try_next().await? {
        if mine(&[b.user_principal_name.clone(), b.group_principal_name.clone()]) || gone_user(&b.user_name) {
            let m = b.metadata.unwrap_or_default();
            out.bindings_deleted.push(format!(
                "clusterroletemplatebinding/{}/{}",
                m.namespace.unwrap_or_default(),
                m.name.unwrap_or_default()
            ));
        }
    }
    let mut prtbs = c
        .project_role_template_bindings()
        .list_all(RkProjectroletemplatebindingsListAll::new());
    while let Some(b) = prtbs.try_next().await? {
        if mine(&[b.user_principal_name.clone(), b.group_principal_name.clone()]) || gone_user(&b.user_name) {
            let m = b.metadata.unwrap_or_default();
            out.bindings_deleted.push(format!(
                "projectroletemplatebinding/{}/{}",
                m.namespace.unwrap_or_default(),
                m.name.unwrap_or_default()
            ));
        }
    }
    let mut tokens = c.management_tokens().list(RkMgmttokensList::new().limit(2000));
    while let Some(t) = tokens.try_next().await? {
        if t.auth_provider.as_deref() == Some(id) || gone_user(&t.user_id) {
            out.tokens_deleted
                .push(t.metadata.and_then(|m| m.name).unwrap_or_default());
        }
    }
    if session.version.at_least(2, 12) && !deleted.is_empty() {
        let mut ext = c.tokens().list(RkTokensList::new().limit(2000));
        while let Some(t) = ext.try_next().await? {
            if gone_user(&t.spec.as_ref().and_then(|s| s.user_id.clone())) {
                let name = t.metadata.and_then(|m| m.name).unwrap_or_default();
                out.tokens_deleted.push(format!("ext/{name}"));
            }
        }
    }
    for v in [
        &mut out.users_deleted,
        &mut out.users_reset,
        &mut out.bindings_deleted,
        &mut out.tokens_deleted,
    ] {
        v.sort();
        v.dedup();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_read_from_the_principal_prefix() {
        assert_eq!(
            provider_of(["local://u-1", "activedirectory_user://CN=x"]),
            Some("activedirectory")
        );
        assert_eq!(provider_of(["github_org://1"]), Some("github"));
        assert_eq!(provider_of(["local://u-1"]), None);
    }

    #[test]
    fn the_code_names_the_set() {
        let a = Cleanup {
            tokens_deleted: vec!["token-a".into()],
            settings_reset: true,
            ..Default::default()
        };
        let mut b = a.clone();
        assert_eq!(a.code(), b.code());
        b.tokens_deleted.push("token-b".into());
        assert_ne!(a.code(), b.code());
        assert!(a.deletes() && !Cleanup::default().deletes());
    }
}

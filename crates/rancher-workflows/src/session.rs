//! Who is calling, on which server: the facts every workflow and approval step needs.

use futures::TryStreamExt;
use rancher_api::requests::{
    PublicRancherversionGet, V1AccountsList, V1IdentitiesList, V1SettingsGet, V3GlobalrolebindingsList,
    V3PrincipalsList, V3SettingsGet, V3UsersList,
};
use rancher_api::types::{V1Account, V3GlobalRoleBinding};
use rancher_api::{Client, RancherVersion};
use rancher_approval::{Principal, ServerIdentity};

use crate::error::{Error, Result};

/// A connected caller: the client, the server's version, and the Rancher principal behind the token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client (it knows the server version, so operations the server lacks are refused early).
    pub client: Client,
    /// The server's version.
    pub version: RancherVersion,
    /// The user the token belongs to.
    pub principal: Principal,
    /// Whether that user holds the `admin` global role.
    pub is_admin: bool,
    /// Which server this is: the domain and the installation id, so approval requests are bound to it.
    pub server: ServerIdentity,
}

impl Session {
    /// Resolves the version and the caller through the server (the identity is never taken from a flag).
    pub async fn open(client: Client) -> Result<Session> {
        let version = server_version(&client).await?;
        let client = client.with_server_version(version);
        if version.major < 2 {
            return Session::open_legacy(client, version).await;
        }
        let me = client.send(&V3UsersList::new().me(true)).await?;
        let user = me.data.into_iter().next().ok_or_else(|| {
            Error::NotFound(
                "the server did not say which user this token belongs to (/v3/users?me=true was empty)".into(),
            )
        })?;
        let id = user
            .id
            .ok_or_else(|| Error::NotFound("the current user has no id".into()))?;
        let mut principal = Principal::new(id.clone());
        if let Some(u) = user.username {
            principal = principal.with_username(u);
        }
        if let Some(n) = user.name.filter(|n| !n.is_empty()) {
            principal = principal.with_display_name(n);
        }
        // Group memberships come from the principals list: the caller's user principal(s), then its groups. All of
        // them are kept: a request that grants any of them something has the caller as a target.
        if let Ok(p) = client.send(&V3PrincipalsList::new()).await {
            principal.groups = p.data.into_iter().filter_map(|x| x.id).collect();
        }
        let admin = client
            .send(&V3GlobalrolebindingsList::new().user_id(&id).global_role_id("admin"))
            .await?;
        let is_admin = !admin.data.is_empty() || admin_through_group(&client, &principal.groups).await;
        // The installation's own id (rancher/rancher pkg/settings/setting.go `install-uuid`), readable by any
        // authenticated user; a server that hides it is known by its domain alone.
        let install_uuid = match client.send(&V3SettingsGet::new("install-uuid")).await {
            Ok(s) => s.value,
            Err(_) => None,
        };
        let server = ServerIdentity::new(domain_of(&client), install_uuid);
        Ok(Session {
            client,
            version,
            principal,
            is_admin,
            server,
        })
    }

    /// A session for a run that only reads with the caller's own rights (a list workflow): it asks the server's
    /// version and nothing more, so a list's first item comes after two calls. It does not know who the caller is
    /// (an empty principal, not an admin): use it only to read, never to file, decide or record anything.
    pub async fn open_for_reads(client: Client) -> Result<Session> {
        let version = server_version(&client).await?;
        let client = client.with_server_version(version);
        let server = ServerIdentity::new(domain_of(&client), None);
        Ok(Session {
            client,
            version,
            principal: Principal::new(String::new()),
            is_admin: false,
            server,
        })
    }

    /// Rancher 1.x: the caller is the account tied to the first user identity of `/v1/identities`; an account
    /// of kind `admin` is an admin. Groups are the caller's identities (`<type>:<external id>`).
    async fn open_legacy(client: Client, version: RancherVersion) -> Result<Session> {
        let ids = client.send(&V1IdentitiesList::new()).await?.data;
        let user = ids
            .iter()
            .find(|i| {
                i.external_id_type
                    .as_deref()
                    .is_some_and(|t| !is_group_identity_type(t))
            })
            .ok_or_else(|| {
                Error::NotFound(
                    "the server did not say which identity this token belongs to (/v1/identities was empty)".into(),
                )
            })?;
        let ext_id = user.external_id.clone().unwrap_or_default();
        let ext_type = user.external_id_type.clone().unwrap_or_default();
        let accounts = client
            .send(&V1AccountsList::new().external_id(&ext_id).external_id_type(&ext_type))
            .await?;
        let account = accounts.data.into_iter().next().ok_or_else(|| {
            Error::NotFound(format!(
                "no account is tied to the identity {ext_type}:{ext_id} of this token"
            ))
        })?;
        let id = account
            .id
            .ok_or_else(|| Error::NotFound("the caller's account has no id".into()))?;
        let mut principal = Principal::new(id);
        if let Some(login) = user.login.clone().filter(|l| !l.is_empty()) {
            principal = principal.with_username(login);
        }
        if let Some(n) = account.name.filter(|n| !n.is_empty()) {
            principal = principal.with_display_name(n);
        }
        // Every identity of the caller (its user identity too), so group-based approvers and the lockout guard
        // of access control see them all.
        principal.groups = ids.iter().filter_map(|i| i.id.clone()).collect();
        let is_admin = account.kind.as_deref() == Some("admin");
        let server = ServerIdentity::new(domain_of(&client), None);
        Ok(Session {
            client,
            version,
            principal,
            is_admin,
            server,
        })
    }

    /// True on a Rancher 1.x (cattle) server: access control lives in the legacy `/v1` API.
    pub fn is_legacy(&self) -> bool {
        self.version.major < 2
    }

    /// User ids of every holder of the `admin` global role (the fallback approvers); on 1.x, the admin accounts.
    pub async fn admin_user_ids(&self) -> Result<Vec<String>> {
        if self.is_legacy() {
            let items: Vec<V1Account> = self
                .client
                .stream(V1AccountsList::new().kind("admin"))
                .try_collect()
                .await?;
            return Ok(items.into_iter().filter_map(|a| a.id).collect());
        }
        let items: Vec<V3GlobalRoleBinding> = self
            .client
            .stream(V3GlobalrolebindingsList::new().global_role_id("admin"))
            .try_collect()
            .await?;
        let mut ids: Vec<String> = items
            .into_iter()
            .filter_map(|b| b.user_id)
            .filter(|s| !s.is_empty())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The caller's name for messages: username, else id.
    pub fn who(&self) -> String {
        self.principal
            .username
            .clone()
            .unwrap_or_else(|| self.principal.id.clone())
    }
}

/// Whether one of the caller's groups holds the `admin` global role. Rancher binds a group's GlobalRoleBinding to
/// the group subject and gives the caller the groups its UserAttribute lists (rancher/rancher
/// pkg/auth/requests/authenticate.go; `/v3/principals` lists the same groups), so a group admin is an admin. A
/// caller who may not list the bindings is not one (an admin may list every binding).
async fn admin_through_group(client: &Client, groups: &[String]) -> bool {
    if groups.is_empty() {
        return false;
    }
    let Ok(items) = client
        .stream(V3GlobalrolebindingsList::new().global_role_id("admin"))
        .try_collect::<Vec<V3GlobalRoleBinding>>()
        .await
    else {
        return false;
    };
    items.iter().any(|b| {
        b.group_principal_id
            .as_deref()
            .is_some_and(|g| !g.is_empty() && groups.iter().any(|x| x == g))
    })
}

/// The instance domain the client talks to (`host[:port]`).
fn domain_of(client: &Client) -> String {
    let url = client.base_url();
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.as_str().to_string(),
    }
}

/// The server's version: the unauthenticated 2.x probe first, then the 1.x `rancher.server.version` setting
/// (a 1.x server has no `/rancherversion`), then the 2.x server-version setting.
pub async fn server_version(client: &Client) -> Result<RancherVersion> {
    match client.send(&PublicRancherversionGet::new()).await {
        Ok(v) => {
            if let Some(parsed) = v.version.and_then(|s| s.parse().ok()) {
                return Ok(parsed);
            }
        }
        Err(e) if e.is_not_found() => {
            if let Ok(s) = client.send(&V1SettingsGet::new("rancher.server.version")).await {
                if let Some(v) = s
                    .value
                    .and_then(|v| v.parse::<RancherVersion>().ok())
                    .filter(|v| v.major == 1)
                {
                    return Ok(v);
                }
            }
        }
        Err(_) => {}
    }
    let s = client.send(&V3SettingsGet::new("server-version")).await?;
    let value = s.value.unwrap_or_default();
    value.parse().map_err(|_| {
        Error::NotFound(format!(
            "the server did not report a usable version (server-version is `{value}`)"
        ))
    })
}

/// True for 1.x identity types naming a group or organisation (`ldap_group`, `github_org`, `github_team`, ...).
pub(crate) fn is_group_identity_type(t: &str) -> bool {
    t.ends_with("_group") || t.ends_with("_org") || t.ends_with("_team")
}

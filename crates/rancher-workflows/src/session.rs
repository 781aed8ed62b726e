//! Who is calling, on which server: the facts every workflow and approval step needs.

use futures::TryStreamExt;
use rancher_api::{Client, RancherVersion};
use rancher_approval::{Principal, ServerIdentity};
use serde_json::Value;

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
        let me = client.call(rancher_api::ids::V3_USERS_LIST, &[("me", "true")], None).await?;
        let user = me
            .get("data")
            .and_then(|d| d.as_array())
            .and_then(|a| a.first())
            .ok_or_else(|| Error::NotFound("the server did not say which user this token belongs to (/v3/users?me=true was empty)".into()))?;
        let id = str_field(user, "id").ok_or_else(|| Error::NotFound("the current user has no id".into()))?;
        let mut principal = Principal::new(id.clone());
        if let Some(u) = str_field(user, "username") {
            principal = principal.with_username(u);
        }
        if let Some(n) = str_field(user, "name").filter(|n| !n.is_empty()) {
            principal = principal.with_display_name(n);
        }
        // Group memberships come from the principals list: the caller's user principal(s), then its groups. All of
        // them are kept: a request that grants any of them something has the caller as a target.
        if let Ok(p) = client.call(rancher_api::ids::V3_PRINCIPALS_LIST, &[], None).await {
            principal.groups = p
                .get("data")
                .and_then(|d| d.as_array())
                .map(|a| a.iter().filter_map(|x| str_field(x, "id")).collect())
                .unwrap_or_default();
        }
        let admin = client
            .call(rancher_api::ids::V3_GLOBALROLEBINDINGS_LIST, &[("userId", &id), ("globalRoleId", "admin")], None)
            .await?;
        let is_admin = admin.get("data").and_then(|d| d.as_array()).is_some_and(|a| !a.is_empty());
        // The installation's own id (rancher/rancher pkg/settings/setting.go `install-uuid`), readable by any
        // authenticated user; a server that hides it is known by its domain alone.
        let install_uuid = match client.call(rancher_api::ids::V3_SETTINGS_GET, &[("id", "install-uuid")], None).await {
            Ok(s) => s.get("value").and_then(Value::as_str).map(str::to_string),
            Err(_) => None,
        };
        let server = ServerIdentity::new(domain_of(&client), install_uuid);
        Ok(Session { client, version, principal, is_admin, server })
    }

    /// Rancher 1.x: the caller is the account tied to the first user identity of `/v1/identities`; an account
    /// of kind `admin` is an admin. Groups are the caller's identities (`<type>:<external id>`).
    async fn open_legacy(client: Client, version: RancherVersion) -> Result<Session> {
        let ids = client.call(rancher_api::ids::V1_IDENTITIES_LIST, &[], None).await?;
        let ids: Vec<Value> = ids.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        let user = ids
            .iter()
            .find(|i| str_field(i, "externalIdType").is_some_and(|t| !is_group_identity_type(&t)))
            .ok_or_else(|| Error::NotFound("the server did not say which identity this token belongs to (/v1/identities was empty)".into()))?;
        let (ext_id, ext_type) = (str_field(user, "externalId").unwrap_or_default(), str_field(user, "externalIdType").unwrap_or_default());
        let accounts = client.call(rancher_api::ids::V1_ACCOUNTS_LIST, &[("externalId", &ext_id), ("externalIdType", &ext_type)], None).await?;
        let account = accounts
            .get("data")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .ok_or_else(|| Error::NotFound(format!("no account is tied to the identity {ext_type}:{ext_id} of this token")))?;
        let id = str_field(account, "id").ok_or_else(|| Error::NotFound("the caller's account has no id".into()))?;
        let mut principal = Principal::new(id);
        if let Some(login) = str_field(user, "login").filter(|l| !l.is_empty()) {
            principal = principal.with_username(login);
        }
        if let Some(n) = str_field(account, "name").filter(|n| !n.is_empty()) {
            principal = principal.with_display_name(n);
        }
        // Every identity of the caller (its user identity too), so group-based approvers and the lockout guard
        // of access control see them all.
        principal.groups = ids.iter().filter_map(|i| str_field(i, "id")).collect();
        let is_admin = str_field(account, "kind").as_deref() == Some("admin");
        let server = ServerIdentity::new(domain_of(&client), None);
        Ok(Session { client, version, principal, is_admin, server })
    }

    /// True on a Rancher 1.x (cattle) server: access control lives in the legacy `/v1` API.
    pub fn is_legacy(&self) -> bool {
        self.version.major < 2
    }

    /// User ids of every holder of the `admin` global role (the fallback approvers); on 1.x, the admin accounts.
    pub async fn admin_user_ids(&self) -> Result<Vec<String>> {
        if self.is_legacy() {
            let items: Vec<Value> = self.client.call_stream(rancher_api::ids::V1_ACCOUNTS_LIST, &[("kind", "admin")])?.try_collect().await?;
            return Ok(items.iter().filter_map(|a| str_field(a, "id")).collect());
        }
        let items: Vec<Value> = self.client.call_stream(rancher_api::ids::V3_GLOBALROLEBINDINGS_LIST, &[("globalRoleId", "admin")])?.try_collect().await?;
        let mut ids: Vec<String> = items.iter().filter_map(|b| str_field(b, "userId")).filter(|s| !s.is_empty()).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The caller's name for messages: username, else id.
    pub fn who(&self) -> String {
        self.principal.username.clone().unwrap_or_else(|| self.principal.id.clone())
    }
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
    match client.call(rancher_api::ids::PUBLIC_RANCHERVERSION_GET, &[], None).await {
        Ok(v) => {
            if let Some(parsed) = v.get("Version").and_then(Value::as_str).and_then(|s| s.parse().ok()) {
                return Ok(parsed);
            }
        }
        Err(e) if e.is_not_found() => {
            if let Ok(s) = client.call(rancher_api::ids::V1_SETTINGS_GET, &[("id", "rancher.server.version")], None).await {
                if let Some(v) = s.get("value").and_then(Value::as_str).and_then(|v| v.parse::<RancherVersion>().ok()).filter(|v| v.major == 1) {
                    return Ok(v);
                }
            }
        }
        Err(_) => {}
    }
    let s = client.call(rancher_api::ids::V3_SETTINGS_GET, &[("id", "server-version")], None).await?;
    let value = s.get("value").and_then(Value::as_str).unwrap_or_default();
    value
        .parse()
        .map_err(|_| Error::NotFound(format!("the server did not report a usable version (server-version is `{value}`)")))
}

/// True for 1.x identity types naming a group or organisation (`ldap_group`, `github_org`, `github_team`, ...).
pub(crate) fn is_group_identity_type(t: &str) -> bool {
    t.ends_with("_group") || t.ends_with("_org") || t.ends_with("_team")
}

pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

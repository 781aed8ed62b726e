//! Who is calling, on which server: the facts every workflow and approval step needs.

use futures::TryStreamExt;
use rancher_api::{Client, RancherVersion};
use rancher_approval::Principal;
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
}

impl Session {
    /// Resolves the version and the caller through the server (the identity is never taken from a flag).
    pub async fn open(client: Client) -> Result<Session> {
        let version = server_version(&client).await?;
        let client = client.with_server_version(version);
        let me = client.call("v3.users.list", &[("me", "true")], None).await?;
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
        // Group memberships come from the principals list: the caller's user principal, then its groups.
        if let Ok(p) = client.call("v3.principals.list", &[], None).await {
            principal.groups = p
                .get("data")
                .and_then(|d| d.as_array())
                .map(|a| {
                    a.iter()
                        .filter(|x| x.get("principalType").and_then(Value::as_str) == Some("group"))
                        .filter_map(|x| str_field(x, "id"))
                        .collect()
                })
                .unwrap_or_default();
        }
        let admin = client
            .call("v3.globalrolebindings.list", &[("userId", &id), ("globalRoleId", "admin")], None)
            .await?;
        let is_admin = admin.get("data").and_then(|d| d.as_array()).is_some_and(|a| !a.is_empty());
        Ok(Session { client, version, principal, is_admin })
    }

    /// User ids of every holder of the `admin` global role (the fallback approvers).
    pub async fn admin_user_ids(&self) -> Result<Vec<String>> {
        let items: Vec<Value> = self.client.call_stream("v3.globalrolebindings.list", &[("globalRoleId", "admin")])?.try_collect().await?;
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

/// The server's version: the unauthenticated probe first, then the server-version setting.
pub async fn server_version(client: &Client) -> Result<RancherVersion> {
    if let Ok(v) = client.call("public.rancherversion.get", &[], None).await {
        if let Some(parsed) = v.get("Version").and_then(Value::as_str).and_then(|s| s.parse().ok()) {
            return Ok(parsed);
        }
    }
    let s = client.call("v3.settings.get", &[("id", "server-version")], None).await?;
    let value = s.get("value").and_then(Value::as_str).unwrap_or_default();
    value
        .parse()
        .map_err(|_| Error::NotFound(format!("the server did not report a usable version (server-version is `{value}`)")))
}

pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

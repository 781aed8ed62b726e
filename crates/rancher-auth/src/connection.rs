//! A connection (domain + token + CA bundle) and its test: who the token is, the Rancher version, the token's
//! expiry and scope, what it may do; or a [`Diagnosis`] naming why not.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use rancher_api::requests::{
    PublicPingGet, PublicRancherversionGet, RkTokensGet, RkUsersList, V1AccountsList, V1IdentitiesList, V1SettingsGet,
    V3GlobalrolebindingsList, V3GlobalrolesGet, V3SettingsGet, V3TokensGet, V3UsersList,
};
use rancher_api::types::PolicyRule;
use rancher_api::{Client, RetryPolicy};

use crate::diagnose::{self as diagnosis, Ctx};
use crate::diagnosis::{Cause, Diagnosis};
use crate::domain::InstanceDomain;
use crate::error::{Error, Result};
use crate::token::BearerToken;

/// A token that ends within this many days gets a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 7;

/// Where the CA bundle comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum CaSource {
    /// A PEM file on disk (read when the client is built).
    File(PathBuf),
    /// PEM text.
    Pem(String),
}

impl fmt::Debug for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaSource::File(p) => f.debug_tuple("File").field(p).finish(),
            CaSource::Pem(p) => write!(f, "Pem({} bytes)", p.len()),
        }
    }
}

impl CaSource {
    /// The PEM bytes. A file is refused when another user (but root) owns it or group or others may write it:
    /// whoever can write it can add a CA the connection then trusts.
    pub fn load(&self) -> Result<Vec<u8>> {
        match self {
            CaSource::Pem(p) => Ok(p.clone().into_bytes()),
            CaSource::File(path) => {
                let refuse = |message: String| Error::InvalidCa {
                    path: Some(path.clone()),
                    message,
                };
                match crate::private::exposure(path, true) {
                    Ok(Some(x)) => {
                        return Err(refuse(format!(
                            "it {x}, and whoever can write it chooses which servers are trusted; fix: {}",
                            x.fix(path, "go-w")
                        )))
                    }
                    Ok(None) => {}
                    Err(e) => return Err(refuse(format!("cannot read it: {e}"))),
                }
                std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))
            }
        }
    }

    /// The same bundle as PEM text, read now: what a profile stores, so a later change of the file does not
    /// matter.
    pub fn pinned(&self) -> Result<CaSource> {
        match self {
            CaSource::Pem(_) => Ok(self.clone()),
            CaSource::File(path) => String::from_utf8(self.load()?)
                .map(CaSource::Pem)
                .map_err(|_| Error::InvalidCa {
                    path: Some(path.clone()),
                    message: "it is not PEM text; give the CA certificate as a PEM file".into(),
                }),
        }
    }
}

/// What an earlier successful test learnt about the token, used to tell an expired or scoped token apart
/// when the server only answers 401.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownToken {
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The cluster it is scoped to.
    pub cluster_id: Option<String>,
}

/// Domain + token + optional CA bundle: everything needed to reach one Rancher server.
#[derive(Debug, Clone)]
pub struct Connection {
    domain: InstanceDomain,
    token: BearerToken,
    ca: Option<CaSource>,
    connect_timeout: Duration,
    timeout: Duration,
    known: KnownToken,
}

/// Who the token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Identity {
    /// User id (`user-xxxxx`, `u-xxxxx`).
    pub user_id: String,
    /// Login name, when the user has one.
    pub username: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

/// The token itself, as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The access key (`token-xxxxx`).
    pub access_key: String,
    /// When it expires; `None` when it never does.
    pub expires_at: Option<DateTime<Utc>>,
    /// The cluster it is scoped to, if any.
    pub cluster_id: Option<String>,
    /// Its description.
    pub description: Option<String>,
}

impl TokenInfo {
    /// True when the token is scoped to one cluster.
    pub fn is_cluster_scoped(&self) -> bool {
        self.cluster_id.as_deref().is_some_and(|c| !c.is_empty())
    }
}

/// Whether something is allowed, as far as the caller's roles tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Allowed.
    Allowed,
    /// Not allowed.
    Denied,
    /// Could not be decided (the roles could not be read).
    Unknown,
}

impl Access {
    fn from(b: bool) -> Access {
        if b {
            Access::Allowed
        } else {
            Access::Denied
        }
    }
}

/// What the token may do, decided from its user's global roles (nothing is changed to find out).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Permissions {
    /// The global roles the user holds (ids: `admin`, `user`, ...).
    pub global_roles: Vec<String>,
    /// May list all users.
    pub list_users: Access,
    /// May create global role bindings of any role, as Rancher will accept them (`create` plus `bind`).
    pub create_global_role_bindings: Access,
    /// May delete global role bindings of any role (`delete` plus `bind`).
    pub delete_global_role_bindings: Access,
}

/// Something worth knowing about a connection that works.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Warning {
    /// The token ends within [`EXPIRY_WARNING_DAYS`] days.
    ExpiresSoon {
        /// When.
        at: DateTime<Utc>,
    },
    /// The token never expires (a leaked token stays valid forever).
    NeverExpires,
    /// The token's expiry and scope could not be read.
    TokenUnreadable {
        /// Why.
        reason: String,
    },
    /// The user may read users but not change global role bindings.
    CannotManageBindings,
    /// The permission probe could not read the user's roles.
    PermissionsUnknown {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ExpiresSoon { at } => {
                write!(f, "the token expires on {} (in less than {EXPIRY_WARNING_DAYS} days): create a new API key and replace it before then", at.to_rfc3339())
            }
            Warning::NeverExpires => f.write_str("the token never expires: consider a key with an expiry, and delete it when no longer needed"),
            Warning::TokenUnreadable { reason } => write!(f, "the token's expiry and scope could not be read ({reason})"),
            Warning::CannotManageBindings => f.write_str(
                "the token's user can read users but Rancher will refuse to create global role bindings of roles with permissions it does not hold (it lacks `bind` on globalroles), or it may not delete bindings: granting such roles will fail; use an admin account's API key",
            ),
            Warning::PermissionsUnknown { reason } => write!(f, "the token's permissions could not be decided ({reason})"),
        }
    }
}

/// A successful connection test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// The domain tested.
    pub domain: String,
    /// The token, masked.
    pub token: String,
    /// Who the token belongs to.
    pub identity: Identity,
    /// The Rancher version (`v2.13.1`), when the server told.
    pub rancher_version: Option<String>,
    /// The token as the server describes it (absent when it could not be read; see the warnings).
    pub token_info: Option<TokenInfo>,
    /// Users visible on the first page of the user list (the spec's test).
    pub users_listed: usize,
    /// What the token may do.
    pub permissions: Permissions,
    /// Things worth knowing.
    pub warnings: Vec<Warning>,
}

impl Verification {
    /// A short human report, one fact per line.
    pub fn summary_lines(&self) -> Vec<String> {
        let who = match (&self.identity.username, &self.identity.display_name) {
            (Some(u), Some(n)) if !n.is_empty() => format!("{u} ({n}, {})", self.identity.user_id),
            (Some(u), _) => format!("{u} ({})", self.identity.user_id),
            _ => self.identity.user_id.clone(),
        };
        let expiry = match &self.token_info {
            Some(TokenInfo {
                expires_at: Some(x), ..
            }) => x.to_rfc3339(),
            Some(_) => "never".into(),
            None => "unknown".into(),
        };
        let access = |a: Access| match a {
            Access::Allowed => "yes",
            Access::Denied => "no",
            Access::Unknown => "unknown",
        };
        let mut lines = vec![
            format!(
                "server:   https://{} (Rancher {})",
                self.domain,
                self.rancher_version.as_deref().unwrap_or("version unknown")
            ),
            format!("user:     {who}"),
            format!(
                "token:    {} expires: {expiry}{}",
                self.token,
                if self.token_info.as_ref().is_some_and(TokenInfo::is_cluster_scoped) {
                    " (cluster-scoped)"
                } else {
                    ""
                }
            ),
            format!(
                "roles:    {}",
                if self.permissions.global_roles.is_empty() {
                    "-".into()
                } else {
                    self.permissions.global_roles.join(", ")
                }
            ),
            format!(
                "can:      list users: {}; create role bindings: {}; delete role bindings: {}",
                access(self.permissions.list_users),
                access(self.permissions.create_global_role_bindings),
                access(self.permissions.delete_global_role_bindings)
            ),
        ];
        lines.extend(self.warnings.iter().map(|w| format!("warning:  {w}")));
        lines
    }
}

impl Connection {
    /// A connection with default timeouts for the test (5 s to connect, 20 s per exchange) and no CA bundle.
    pub fn new(domain: InstanceDomain, token: BearerToken) -> Connection {
        Connection {
            domain,
            token,
            ca: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            known: KnownToken::default(),
        }
    }

    /// Trusts this CA bundle (besides the system's).
    pub fn with_ca(mut self, ca: Option<CaSource>) -> Connection {
        self.ca = ca;
        self
    }

    /// Sets the connect and per-exchange timeouts used by the test.
    pub fn with_timeouts(mut self, connect: Duration, exchange: Duration) -> Connection {
        self.connect_timeout = connect;
        self.timeout = exchange;
        self
    }

    /// What an earlier test learnt about the token (helps tell an expired or scoped token apart).
    pub fn with_known_token(mut self, known: KnownToken) -> Connection {
        self.known = known;
        self
    }

    /// The domain.
    pub fn domain(&self) -> &InstanceDomain {
        &self.domain
    }

    /// The token.
    pub fn token(&self) -> &BearerToken {
        &self.token
    }

    /// The CA bundle source.
    pub fn ca(&self) -> Option<&CaSource> {
        self.ca.as_ref()
    }

    /// A client builder for this connection (token, CA, timeouts), for callers to adjust and build.
    pub fn client_builder(&self) -> Result<rancher_api::ClientBuilder> {
        let mut b = Client::builder(self.domain.to_string())
            .token(self.token.secret().clone())
            .connect_timeout(self.connect_timeout);
        if let Some(ca) = &self.ca {
            b = b.ca_pem(ca.load()?);
        }
        Ok(b)
    }

    /// A client for everyday use (the library's default timeouts and retries).
    pub fn client(&self) -> Result<Client> {
        let mut b = Client::builder(self.domain.to_string()).token(self.token.secret().clone());
        if let Some(ca) = &self.ca {
            b = b.ca_pem(ca.load()?);
        }
        Ok(b.build()?)
    }

    /// The connection test. Probes without the token first (reachable, TLS, is it Rancher), then who the token
    /// is, lists users (the spec's test), reads the token's expiry and scope, and decides from the user's global
    /// roles what it may do. No retries and short timeouts, so it answers fast. Nothing is changed on the server.
    pub async fn verify(&self) -> std::result::Result<Verification, Diagnosis> {
        tracing::info!(domain = %self.domain, access_key = self.token.access_key(), token = self.token.masked(), "testing the connection");
        let ctx = Ctx {
            domain: &self.domain,
            token: &self.token,
            has_ca: self.ca.is_some(),
            known_expiry: self.known.expires_at,
            known_cluster: self.known.cluster_id.as_deref(),
        };
        let ca = match &self.ca {
            Some(ca) => Some(ca.load().map_err(|e| {
                Diagnosis::new(
                    Cause::InvalidCaBundle,
                    "reading the CA bundle",
                    e.to_string(),
                    "Give the path of the server's CA bundle (PEM).",
                )
            })?),
            None => None,
        };
        let mut b = Client::builder(self.domain.to_string())
            .token(self.token.secret().clone())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .retry_policy(RetryPolicy::none());
        if let Some(pem) = ca {
            b = b.ca_pem(pem);
        }
        let client = b.build().map_err(|e| match &e {
            rancher_api::Error::Config(msg) if self.ca.is_some() => Diagnosis::new(
                Cause::InvalidCaBundle,
                "loading the CA bundle",
                format!("The CA bundle cannot be used: {msg}."),
                "Give the server's CA bundle as a PEM file with -----BEGIN CERTIFICATE----- blocks; Rancher serves it at /v3/settings/cacerts.",
            ),
            _ => diagnosis::transport(&ctx, "building the client", &e)
                .unwrap_or_else(|| Diagnosis::new(Cause::ConnectionFailed, "building the client", e.to_string(), "Check the CA bundle and domain.")),
        })?;

        // 1. Unauthenticated: reachable, TLS fine, and Rancher?
        const PING: &str = "GET /ping";
        match client.send(&PublicPingGet::new()).await {
            Ok(body) if body.trim() == "pong" => {}
            Ok(body) => {
                let what = if body.trim_start().starts_with('<') {
                    "an HTML page".to_string()
                } else {
                    "something other than `pong`".to_string()
                };
                return Err(diagnosis::not_rancher(PING, &self.domain, &what)
                    .with_detail(format!("/ping answered: {}", snippet(&body))));
            }
            Err(e) => return Err(self.judge(&ctx, PING, &e, false)),
        }
        tracing::debug!(domain = %self.domain, "the server answers /ping");
        if self.token.is_legacy() {
            return self.verify_legacy(&client, &ctx).await;
        }
        let mut rancher_version = match client.send(&PublicRancherversionGet::new()).await {
            Ok(v) => v.version.filter(|v| !v.is_empty()),
            Err(e) => {
                if let Some(d) = diagnosis::transport(&ctx, "GET /rancherversion", &e) {
                    return Err(d);
                }
                tracing::debug!(error = %e, "no version from /rancherversion");
                None
            }
        };

        // 2. Authenticated: who is this?
        const ME: &str = "GET /v3/users?me=true";
        let me = match client.v3().users().list_page(V3UsersList::new().me(true)).await {
            Ok(page) => {
                if page.type_.as_deref() != Some("collection") {
                    return Err(diagnosis::not_rancher(
                        ME,
                        &self.domain,
                        "JSON that is not a Rancher collection",
                    ));
                }
                match page.data.into_iter().next() {
                    Some(u) => u,
                    None => {
                        return Err(diagnosis::not_rancher(
                            ME,
                            &self.domain,
                            "an empty answer to \"who am I\" (no user)",
                        ));
                    }
                }
            }
            Err(e) => return Err(self.judge(&ctx, ME, &e, true)),
        };
        let identity = Identity {
            user_id: me.id.clone().or(me.name.clone()).unwrap_or_default(),
            username: me.username.clone().filter(|s| !s.is_empty()),
            display_name: me.name.clone().filter(|s| !s.is_empty()),
        };
        tracing::debug!(user = %identity.user_id, "the token belongs to this user");

        if rancher_version.is_none() {
            if let Ok(s) = client.v3().settings().get(V3SettingsGet::new("server-version")).await {
                rancher_version = s.value.filter(|v| !v.is_empty());
            }
        }
        let parsed_version: Option<rancher_api::RancherVersion> =
            rancher_version.as_deref().and_then(|v| v.parse().ok());

        // 3. The spec's test: list users.
        let rk = parsed_version.is_some_and(|v| v.at_least(2, 13));
        let (list_step, listed) = if rk {
            (
                "GET /apis/management.cattle.io/v3/users",
                client
                    .users()
                    .list_page(RkUsersList::new().limit(50))
                    .await
                    .map(|l| l.items.map_or(0, |i| i.len())),
            )
        } else {
            (
                "GET /v3/users",
                client
                    .v3()
                    .users()
                    .list_page(V3UsersList::new().limit(50))
                    .await
                    .map(|p| p.data.len()),
            )
        };
        let users_listed = match listed {
            Ok(n) => n,
            Err(e) if e.is_forbidden() => return Err(cannot_list_users(list_step, &identity, &e)),
            Err(e) => return Err(self.judge(&ctx, list_step, &e, true)),
        };

        // 4. The token itself.
        let mut warnings = Vec::new();
        let token_info = match self.token_info(&client).await {
            Ok(info) => Some(info),
            Err(reason) => {
                warnings.push(Warning::TokenUnreadable { reason });
                None
            }
        };
        if let Some(info) = &token_info {
            match info.expires_at {
                None => warnings.push(Warning::NeverExpires),
                Some(at) if at - Utc::now() < chrono::Duration::days(EXPIRY_WARNING_DAYS) => {
                    warnings.push(Warning::ExpiresSoon { at })
                }
                Some(_) => {}
            }
        }

        // 5. Permissions, from the user's global roles.
        let permissions = match permissions(&client, &identity.user_id).await {
            Ok(p) => p,
            Err(reason) => {
                warnings.push(Warning::PermissionsUnknown { reason });
                // On 2.13+ the RK list is authoritative (a standard user gets 403); a /v3 list shows only yourself.
                let list = if rk || users_listed > 1 {
                    Access::Allowed
                } else {
                    Access::Unknown
                };
                Permissions {
                    global_roles: Vec::new(),
                    list_users: list,
                    create_global_role_bindings: Access::Unknown,
                    delete_global_role_bindings: Access::Unknown,
                }
            }
        };
        let mut permissions = permissions;
        if permissions.list_users == Access::Denied && !rk && users_listed > 1 {
            // /v3 showed other users: the listing itself is the proof.
            permissions.list_users = Access::Allowed;
        }
        if permissions.list_users == Access::Denied {
            let e = format!("global roles: {}", permissions.global_roles.join(", "));
            return Err(cannot_list_users("reading the user's global roles", &identity, &e));
        }
        if permissions.create_global_role_bindings == Access::Denied
            || permissions.delete_global_role_bindings == Access::Denied
        {
            warnings.push(Warning::CannotManageBindings);
        }
        let v = Verification {
            domain: self.domain.to_string(),
            token: self.token.masked().to_string(),
            identity,
            rancher_version,
            token_info,
            users_listed,
            permissions,
            warnings,
        };
        tracing::info!(domain = %v.domain, user = %v.identity.user_id, version = ?v.rancher_version, "the connection works");
        Ok(v)
    }

    /// The connection test of a Rancher 1.x server (cattle's `/v1`): version, who the token is (its identities),
    /// and whether it may list the accounts (an admin sees them all, a standard user only its own).
    async fn verify_legacy(&self, client: &Client, ctx: &Ctx<'_>) -> std::result::Result<Verification, Diagnosis> {
        const VERSION: &str = "GET /v1/settings/rancher.server.version";
        let version = client
            .send(&V1SettingsGet::new("rancher.server.version"))
            .await
            .map_err(|e| self.judge(ctx, VERSION, &e, true))?;
        let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let rancher_version = text(&version.value);
        const ME: &str = "GET /v1/identities";
        let ids = client
            .send(&V1IdentitiesList::new())
            .await
            .map_err(|e| self.judge(ctx, ME, &e, true))?;
        let Some(me) = ids.data.into_iter().next() else {
            return Err(diagnosis::not_rancher(
                ME,
                &self.domain,
                "an empty answer to \"who am I\" (no identity)",
            ));
        };
        const LIST: &str = "GET /v1/accounts";
        let accounts = client
            .send(&V1AccountsList::new())
            .await
            .map_err(|e| self.judge(ctx, LIST, &e, true))?
            .data;
        let mine = accounts.iter().find(|a| {
            text(&a.external_id) == text(&me.external_id) && text(&a.external_id_type) == text(&me.external_id_type)
        });
        let identity = Identity {
            user_id: mine
                .and_then(|a| text(&a.id))
                .or_else(|| text(&me.id))
                .unwrap_or_default(),
            username: text(&me.login),
            display_name: text(&me.name),
        };
        if accounts.len() <= 1 {
            return Err(cannot_list_users(
                LIST,
                &identity,
                &"Rancher 1.x shows a standard user only its own account",
            ));
        }
        let kind = mine.and_then(|a| text(&a.kind)).unwrap_or_default();
        let v = Verification {
            domain: self.domain.to_string(),
            token: self.token.masked().to_string(),
            identity,
            rancher_version,
            token_info: None,
            users_listed: accounts.len(),
            permissions: Permissions {
                global_roles: vec![kind].into_iter().filter(|k| !k.is_empty()).collect(),
                list_users: Access::Allowed,
                create_global_role_bindings: Access::Unknown,
                delete_global_role_bindings: Access::Unknown,
            },
            warnings: Vec::new(),
        };
        tracing::info!(domain = %v.domain, user = %v.identity.user_id, version = ?v.rancher_version, "the connection works (Rancher 1.x)");
        Ok(v)
    }

    fn judge(&self, ctx: &Ctx<'_>, step: &'static str, e: &rancher_api::Error, authenticated: bool) -> Diagnosis {
        tracing::debug!(step, error = %e, "connection test step failed");
        if let Some(d) = diagnosis::transport(ctx, step, e) {
            return d;
        }
        if authenticated && e.is_unauthorized() {
            return diagnosis::token_rejected(ctx, step, e);
        }
        if !authenticated && (e.is_not_found() || e.is_unauthorized() || e.is_forbidden()) {
            // Rancher serves /ping to anyone: a 404/401/403 there means something else answered.
            return diagnosis::not_rancher(
                step,
                &self.domain,
                &format!("HTTP {} on /ping", e.status().unwrap_or(0)),
            )
            .with_detail(e);
        }
        diagnosis::server_error(step, &self.domain, e)
    }

    async fn token_info(&self, client: &Client) -> std::result::Result<TokenInfo, String> {
        let key = self.token.access_key();
        if self.token.is_ext() {
            let t = client.send(&RkTokensGet::new(key)).await.map_err(|e| e.to_string())?;
            let spec = t.spec.unwrap_or_default();
            let expires = t.status.and_then(|s| s.expires_at).unwrap_or_default();
            return Ok(TokenInfo {
                access_key: key.to_string(),
                expires_at: parse_time(&expires)?,
                cluster_id: spec.cluster_name.filter(|s| !s.is_empty()),
                description: spec.description,
            });
        }
        let t = client
            .v3()
            .tokens()
            .get(V3TokensGet::new(key))
            .await
            .map_err(|e| e.to_string())?;
        Ok(TokenInfo {
            access_key: key.to_string(),
            expires_at: parse_time(t.expires_at.as_deref().unwrap_or(""))?,
            cluster_id: t.cluster_id.filter(|c| !c.is_empty()),
            description: t.description.filter(|d| !d.is_empty()),
        })
    }
}

fn parse_time(s: &str) -> std::result::Result<Option<DateTime<Utc>>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| format!("expiresAt `{s}` is not a time: {e}"))
}

fn snippet(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(80).collect()
}

fn cannot_list_users(step: &'static str, who: &Identity, e: &dyn fmt::Display) -> Diagnosis {
    let name = who.username.as_deref().unwrap_or(&who.user_id);
    Diagnosis::new(
        Cause::CannotListUsers,
        step,
        format!("The token is valid (user `{name}`, {}), but that user may not list users, which the connection needs.", who.user_id),
        "Create the API key under an admin-level account (global role Administrator), or give this user the `admin` global role.",
    )
    .with_detail(e)
}

/// Reads the user's global role bindings and roles and decides what they allow.
async fn permissions(client: &Client, user_id: &str) -> std::result::Result<Permissions, String> {
    let bindings: Vec<_> = client
        .v3()
        .globalrolebindings()
        .list(V3GlobalrolebindingsList::new().user_id(user_id))
        .try_collect()
        .await
        .map_err(|e| format!("listing the global role bindings: {e}"))?;
    let mut roles: Vec<String> = bindings
        .into_iter()
        .filter(|b| b.user_id.as_deref() == Some(user_id))
        .filter_map(|b| b.global_role_id)
        .collect();
    roles.sort();
    roles.dedup();
    let mut rules: Vec<PolicyRule> = Vec::new();
    let mut admin = false;
    for role in &roles {
        if role == "admin" {
            admin = true;
            continue;
        }
        match client.v3().globalroles().get(V3GlobalrolesGet::new(role.clone())).await {
            Ok(r) => rules.extend(r.rules.unwrap_or_default()),
            // Rancher's `user` role grants no access to globalroles (rancher/rancher pkg/data/management/role_data.go):
            // a role the user may not read adds nothing we can count on.
            Err(e) if e.is_not_found() || e.is_forbidden() => {}
            Err(e) => return Err(format!("reading global role `{role}`: {e}")),
        }
    }
    let can = |verb: &str, resource: &str| admin || rules.iter().any(|r| allows(r, verb, resource));
    // Rancher's webhook refuses to create or update a binding that grants more than the caller holds unless they
    // have `bind` on globalroles (rancher/webhook pkg/resources/management.cattle.io/v3/globalrolebinding/
    // validator.go): only that makes "give a user any global role" possible. Deletes never reach that webhook
    // (its `Operations()` are Create and Update), so removing a binding needs only `delete`.
    let bind = can("bind", "globalroles");
    Ok(Permissions {
        list_users: Access::from(can("list", "users")),
        create_global_role_bindings: Access::from(can("create", "globalrolebindings") && bind),
        delete_global_role_bindings: Access::from(can("delete", "globalrolebindings")),
        global_roles: roles,
    })
}

/// Does `rule` grant `verb` on every object of management.cattle.io `resource`?
pub(crate) fn allows(rule: &PolicyRule, verb: &str, resource: &str) -> bool {
    let has =
        |list: &Option<Vec<String>>, want: &str| list.as_ref().is_some_and(|l| l.iter().any(|x| x == "*" || x == want));
    has(&rule.verbs, verb)
        && has(&rule.resources, resource)
        && has(&rule.api_groups, "management.cattle.io")
        && rule.resource_names.as_ref().is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |x: &[&str]| Some(x.iter().map(|s| s.to_string()).collect());
        let mut r: PolicyRule = serde_json::from_str("{}").unwrap();
        r.api_groups = v(groups);
        r.resources = v(resources);
        r.verbs = v(verbs);
        r
    }

    #[test]
    fn rules_grant_exactly_what_they_say() {
        assert!(allows(&rule(&["*"], &["*"], &["*"]), "delete", "globalrolebindings"));
        assert!(allows(
            &rule(&["management.cattle.io"], &["users"], &["get", "list"]),
            "list",
            "users"
        ));
        assert!(!allows(
            &rule(&["management.cattle.io"], &["users"], &["get"]),
            "list",
            "users"
        ));
        assert!(!allows(&rule(&[""], &["users"], &["list"]), "list", "users"));
        let mut named = rule(&["management.cattle.io"], &["globalrolebindings"], &["delete"]);
        named.resource_names = Some(vec!["grb-x".into()]);
        assert!(!allows(&named, "delete", "globalrolebindings"));
    }

    #[test]
    fn connection_debug_shows_the_masked_token_only() {
        let secret = "pvwss586wwdd46bxgcl7bghkkbbgqgc7hqgkx9rzsw65sgbsd5wzmt";
        let c = Connection::new(
            InstanceDomain::parse("rancher.example.com").unwrap(),
            BearerToken::parse(&format!("token-8blls:{secret}")).unwrap(),
        )
        .with_ca(Some(CaSource::Pem("-----BEGIN CERTIFICATE-----".into())));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(secret));
        assert!(
            dbg.contains(r#"token: BearerToken { access_key: "token-8blls", token: "****wzmt" }"#),
            "{dbg}"
        );
        assert!(dbg.contains("ca: Some(Pem(27 bytes))"), "{dbg}");
    }

    #[test]
    fn ca_source_debug_hides_nothing_secret_but_is_short() {
        assert_eq!(format!("{:?}", CaSource::Pem("x".repeat(10))), "Pem(10 bytes)");
    }
}

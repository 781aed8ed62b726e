//! Access control: which auth provider is on, who may log in, and the lockout-proof way to change it, on both
//! server generations.
//!
//! | | Rancher 1.x (`/v1`) | Rancher 2.x (`/v3`) |
//! |---|---|---|
//! | provider config | `/v1/ldapconfig`, `/v1/githubconfig`, ... | `/v3/authconfigs/<id>` |
//! | allowed list | `allowedIdentities` (identity objects) | `allowedPrincipalIds` (principal URIs) |
//! | test before enable | `POST /v1/token` with the saved, still disabled config | the `testAndApply` action |
//! | which provider is on (no token) | `GET /v1/token` | `/v1-public/authproviders`, `/v3-public/authProviders` |
//!
//! The workflows built on this (`access-control-*`, `identities-search`) live in the catalog; [`discover`] needs no
//! token at all. Access modes a server version does not offer are refused before anything is sent
//! ([`check_mode`]).
//!
//! ```
//! use rancher_api::RancherVersion;
//! use rancher_workflows::access::{check_mode, AccessMode, Provider};
//!
//! let v1_0 = RancherVersion::new(1, 0, 3);
//! let err = check_mode(Provider::ActiveDirectory, AccessMode::Required, v1_0).unwrap_err();
//! assert!(err.to_string().contains("added in Rancher 1.1"));
//! assert!(check_mode(Provider::GitHub, AccessMode::Restricted, v1_0).is_ok());
//! ```

mod cleanup;
mod flows;
mod inputs;
mod workflows;

use std::fmt;
use std::str::FromStr;

use rancher_api::requests::{PublicAuthprovidersList, PublicV1AuthprovidersList, V1TokenGet};
use rancher_api::types::{V1Identity, V1Token, V3Principal};
use rancher_api::{Client, NormanCollection, RancherVersion};
use serde::Serialize;

use crate::error::{Error, Result};

pub use flows::AccessFlow;
pub use workflows::AccessControl;

/// The server generation, which decides the whole shape of access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    /// Rancher 1.x (cattle): the legacy `/v1` API of the spec.
    V1,
    /// Rancher 2.x: norman `/v3` auth configs and principals.
    V2,
}

impl Generation {
    /// The generation of a version.
    pub fn of(version: RancherVersion) -> Generation {
        if version.major < 2 {
            Generation::V1
        } else {
            Generation::V2
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Generation::V1 => "Rancher 1.x",
            Generation::V2 => "Rancher 2.x",
        })
    }
}

/// An auth provider this tool configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Microsoft Active Directory (LDAP).
    ActiveDirectory,
    /// Azure AD (a web service; unrelated to Active Directory).
    AzureAd,
    /// OpenLDAP.
    OpenLdap,
    /// GitHub or GitHub Enterprise (OAuth).
    GitHub,
    /// Rancher's own user database.
    Local,
}

/// Every provider, in the order the docs list them.
pub const PROVIDERS: [Provider; 5] = [
    Provider::ActiveDirectory,
    Provider::AzureAd,
    Provider::OpenLdap,
    Provider::GitHub,
    Provider::Local,
];

impl Provider {
    /// The 2.x auth config id (`activedirectory`, ...), also the name users type.
    pub fn id(self) -> &'static str {
        match self {
            Provider::ActiveDirectory => "activedirectory",
            Provider::AzureAd => "azuread",
            Provider::OpenLdap => "openldap",
            Provider::GitHub => "github",
            Provider::Local => "local",
        }
    }

    /// The name for people.
    pub fn title(self) -> &'static str {
        match self {
            Provider::ActiveDirectory => "Active Directory",
            Provider::AzureAd => "Azure AD",
            Provider::OpenLdap => "OpenLDAP",
            Provider::GitHub => "GitHub",
            Provider::Local => "local auth",
        }
    }

    /// The 1.x config resource (`/v1/<this>`).
    pub fn v1_path(self) -> &'static str {
        match self {
            Provider::ActiveDirectory => "ldapconfig",
            Provider::AzureAd => "azureadconfig",
            Provider::OpenLdap => "openldapconfig",
            Provider::GitHub => "githubconfig",
            Provider::Local => "localauthconfig",
        }
    }

    /// The 2.x config collection name without `Configs` (`/v3/<this>Configs/<id>`).
    pub fn v2_kind(self) -> &'static str {
        match self {
            Provider::ActiveDirectory => "activeDirectory",
            Provider::AzureAd => "azureAD",
            Provider::OpenLdap => "openLdap",
            Provider::GitHub => "github",
            Provider::Local => "local",
        }
    }

    /// True when the provider's test login is an OAuth code on this generation (otherwise user and password).
    pub fn tests_with_code(self, generation: Generation) -> bool {
        match self {
            Provider::GitHub => true,
            Provider::AzureAd => generation == Generation::V2,
            _ => false,
        }
    }

    /// The 1.x identity types of this provider's users and groups.
    pub fn v1_identity_types(self) -> &'static [&'static str] {
        match self {
            Provider::ActiveDirectory => &["ldap_user", "ldap_group"],
            Provider::AzureAd => &["azuread_user", "azuread_group"],
            Provider::OpenLdap => &["openldap_user", "openldap_group"],
            Provider::GitHub => &["github_user", "github_org", "github_team"],
            Provider::Local => &["rancher_id"],
        }
    }

    /// The 2.x principal schemes of this provider (`activedirectory_user://...`).
    pub fn v2_schemes(self) -> &'static [&'static str] {
        match self {
            Provider::ActiveDirectory => &["activedirectory_user", "activedirectory_group"],
            Provider::AzureAd => &["azuread_user", "azuread_group"],
            Provider::OpenLdap => &["openldap_user", "openldap_group"],
            Provider::GitHub => &["github_user", "github_org", "github_team"],
            Provider::Local => &["local"],
        }
    }

    /// Whether an identity or principal id belongs to this provider.
    pub fn owns_identity(self, id: &str) -> bool {
        match id.split_once("://") {
            Some((scheme, _)) => self.v2_schemes().contains(&scheme),
            None => id
                .split_once(':')
                .is_some_and(|(t, _)| self.v1_identity_types().contains(&t)),
        }
    }

    /// The provider a 1.x `GET /v1/token` names in `authProvider` (`ldapconfig`, `localAuthConfig`, ...).
    pub fn from_v1_auth_provider(name: &str) -> Option<Provider> {
        PROVIDERS.into_iter().find(|p| p.v1_path().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Provider {
    type Err = Error;

    /// Accepts the ids, the 1.x config names and the usual short names (`ad`, `ldap`, `azure`, `gh`).
    fn from_str(s: &str) -> Result<Provider> {
        let k = s.trim().to_ascii_lowercase().replace(['-', '_', ' '], "");
        let p = match k.as_str() {
            "activedirectory" | "ad" | "ldap" | "ldapconfig" => Provider::ActiveDirectory,
            "azuread" | "azure" | "azureadconfig" => Provider::AzureAd,
            "openldap" | "openldapconfig" => Provider::OpenLdap,
            "github" | "gh" | "githubenterprise" | "githubconfig" => Provider::GitHub,
            "local" | "localauth" | "localauthconfig" => Provider::Local,
            _ => {
                return Err(Error::Refused(format!(
                    "`{s}` is not a provider this tool configures; use one of activedirectory, azuread, openldap, github, local"
                )))
            }
        };
        Ok(p)
    }
}

/// Who may log in through an enabled provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    /// Any valid user of the provider.
    Unrestricted,
    /// The allowed identities, plus members of a project/environment (2.x: of a cluster or project).
    Restricted,
    /// Only the allowed identities; members must be allowed too.
    Required,
}

impl AccessMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Unrestricted => "unrestricted",
            AccessMode::Restricted => "restricted",
            AccessMode::Required => "required",
        }
    }
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<AccessMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "unrestricted" => Ok(AccessMode::Unrestricted),
            "restricted" => Ok(AccessMode::Restricted),
            "required" => Ok(AccessMode::Required),
            _ => Err(Error::Refused(format!(
                "`{s}` is not an access mode; use unrestricted, restricted or required"
            ))),
        }
    }
}

/// When a provider gained a mode on 1.x: a version, never (within 1.x), or not applicable (local auth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Since {
    Version(u16, u16, &'static str),
    Never,
    NotApplicable,
}

/// The 1.x availability matrix of the spec. `1.1-dev5` counts as 1.1: released 1.1 builds all carry it.
fn v1_since(provider: Provider, mode: AccessMode) -> Since {
    use AccessMode::*;
    use Provider::*;
    match (provider, mode) {
        (ActiveDirectory, Unrestricted)
        | (OpenLdap, Unrestricted)
        | (GitHub, Unrestricted)
        | (GitHub, Restricted)
        | (Local, Unrestricted) => Since::Version(1, 0, "1.0"),
        (ActiveDirectory, _) | (GitHub, Required) | (AzureAd, Unrestricted) => Since::Version(1, 1, "1.1 (1.1-dev5)"),
        // rancher/cattle OpenLDAPConfigManager.java validates allowedIdentities for restricted and required in 1.6;
        // the spec's table (1.1-dev5) predates it.
        (OpenLdap, _) => Since::Version(1, 6, "1.6"),
        (AzureAd, _) => Since::Never,
        (Local, _) => Since::NotApplicable,
    }
}

/// Refuses a provider the server version lacks (Azure AD arrived in 1.1) and an access mode it does not offer,
/// naming the provider, the mode and the version that added it. Nothing is sent to the server.
pub fn check_mode(provider: Provider, mode: AccessMode, version: RancherVersion) -> Result<()> {
    if provider == Provider::Local && mode != AccessMode::Unrestricted {
        return Err(Error::Refused(format!(
            "access mode `{mode}` does not apply to local auth: its users are managed in Rancher itself, so only `unrestricted` is accepted"
        )));
    }
    if Generation::of(version) == Generation::V2 {
        return Ok(());
    }
    if provider == Provider::AzureAd && !version.at_least(1, 1) {
        return Err(Error::Refused(format!(
            "Azure AD access control is not available on Rancher {version}: it was added in Rancher 1.1 (1.1-dev5); upgrade the server first"
        )));
    }
    match v1_since(provider, mode) {
        Since::Version(major, minor, _) if version.at_least(major, minor) => Ok(()),
        Since::Version(_, _, label) => Err(Error::Refused(format!(
            "{} does not offer access mode `{mode}` on Rancher {version}: it was added in Rancher {label}; upgrade the server or use `unrestricted`",
            provider.title()
        ))),
        Since::Never => Err(Error::Refused(format!(
            "{} offers only `unrestricted` on Rancher 1.x (`{mode}` was never released for it in 1.x; Rancher 2.x has it)",
            provider.title()
        ))),
        Since::NotApplicable => unreachable!("local auth is handled above"),
    }
}

/// Secret fields of provider configs on either generation: never shown, and sent as `null` so the server keeps
/// the stored value.
pub const SECRET_FIELDS: &[&str] = &[
    "serviceAccountPassword",
    "clientSecret",
    "applicationSecret",
    "adminAccountPassword",
    "password",
    "privateKey",
    "spKey",
];

/// A provider the server reports without authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicProvider {
    /// Config id (`github`, `activedirectory`, ...; on 1.x the provider this tool maps it to, when known).
    pub id: String,
    /// The type the server names (`githubProvider`; on 1.x `githubconfig`, `localAuthConfig`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

/// What a server says about its access control to anyone, without a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// The generation, told by how `GET /v1/token` answers: 200 on 1.x, 401 on 2.x.
    pub generation: Generation,
    /// Access control is on (1.x); on 2.x it always is.
    pub security: bool,
    /// The enabled providers (1.x: the one configured, when security is on).
    pub providers: Vec<PublicProvider>,
    /// Public settings (GitHub host, scheme and client id on 1.x; nothing secret).
    pub public: PublicSettings,
}

/// The settings a 1.x server shows anyone with `GET /v1/token` (for GitHub: host, scheme, client id, redirect URL);
/// those it does not send are left out, and the rest keep the server's names and this order. Empty on 2.x.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PublicSettings {
    /// The GitHub host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `http` or `https`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The OAuth application's client id.
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Where the provider sends the browser back.
    #[serde(rename = "redirectUrl", skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

/// Asks the server, without a token, which generation it is and which provider is on. `client` must not be
/// pinned to a server version (build it without `server_version`), since the probe is a 1.x operation.
pub async fn discover(client: &Client) -> Result<Discovery> {
    match client.send(&V1TokenGet::new()).await {
        Ok(v) => {
            let (security, name, t) = v1_token_info(v);
            let providers = if security && !name.is_empty() {
                let id = Provider::from_v1_auth_provider(&name)
                    .map(|p| p.id().to_string())
                    .unwrap_or_else(|| name.clone());
                vec![PublicProvider { id, kind: name }]
            } else {
                vec![]
            };
            Ok(Discovery {
                generation: Generation::V1,
                security,
                providers,
                public: public_settings(&t),
            })
        }
        Err(e) if e.is_unauthorized() => {
            let list = match client.send(&PublicV1AuthprovidersList::new()).await {
                Ok(v) => v,
                Err(e) if e.is_not_found() => client.send(&PublicAuthprovidersList::new()).await?,
                Err(e) => return Err(e.into()),
            };
            let providers = list
                .data
                .into_iter()
                .map(|p| PublicProvider {
                    id: p.id.unwrap_or_default(),
                    kind: p.type_.unwrap_or_default(),
                })
                .collect();
            Ok(Discovery {
                generation: Generation::V2,
                security: true,
                providers,
                public: PublicSettings::default(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The public settings a 1.x `GET /v1/token` shows anyone (GitHub host, scheme, client id, redirect URL).
fn public_settings(t: &V1Token) -> PublicSettings {
    PublicSettings {
        hostname: t.hostname.clone(),
        scheme: t.scheme.clone(),
        client_id: t.client_id.clone(),
        redirect_url: t.redirect_url.clone(),
    }
}

/// What a 1.x `GET /v1/token` says: whether access control is on, the provider name it reports
/// (`ldapconfig`, `localAuthConfig`, ...), and the token object itself.
pub(crate) fn v1_token_info(collection: NormanCollection<V1Token>) -> (bool, String, V1Token) {
    let t = collection.data.into_iter().next().unwrap_or_default();
    (
        t.security.unwrap_or(false),
        t.auth_provider.clone().unwrap_or_default(),
        t,
    )
}

/// An identity (1.x) or principal (2.x), as looked up on the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identity {
    /// `<type>:<external id>` on 1.x, the principal URI on 2.x.
    pub id: String,
    /// `user` or `group` (GitHub organisations and teams are groups).
    pub kind: String,
    /// Login name.
    pub login: String,
    /// Display name.
    pub name: String,
    /// On 1.x, the identity as the server sent it (it goes back to the server as it is).
    #[serde(skip)]
    pub v1: Option<V1Identity>,
}

impl Identity {
    /// From a 1.x identity object.
    pub fn from_v1(v: &V1Identity) -> Identity {
        let t = v.external_id_type.clone().unwrap_or_default();
        let ext = v.external_id.clone().unwrap_or_default();
        let id =
            v.id.clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| format!("{t}:{ext}"));
        let kind = if crate::session::is_group_identity_type(&t) {
            "group"
        } else {
            "user"
        };
        Identity {
            id,
            kind: kind.into(),
            login: v.login.clone().unwrap_or_default(),
            name: v.name.clone().unwrap_or_default(),
            v1: Some(v.clone()),
        }
    }

    /// From a 2.x principal object.
    pub fn from_v2(v: &V3Principal) -> Identity {
        Identity {
            id: v.id.clone().unwrap_or_default(),
            kind: v.principal_type.clone().unwrap_or_else(|| "user".into()),
            login: v.login_name.clone().unwrap_or_default(),
            name: v.name.clone().unwrap_or_default(),
            v1: None,
        }
    }

    /// From a bare principal id, as a 2.x config's allowed list holds it.
    pub fn from_principal_id(id: &str) -> Identity {
        Identity {
            id: id.into(),
            kind: String::new(),
            login: String::new(),
            name: String::new(),
            v1: None,
        }
    }

    /// Whether `query` names this identity exactly (id, login or display name, ignoring case).
    pub fn is_exactly(&self, query: &str) -> bool {
        let q = query.trim();
        self.id == q || self.login.eq_ignore_ascii_case(q) || self.name.eq_ignore_ascii_case(q)
    }
}

/// Picks the one identity a name means among search results: an exact match on id, login or name wins; several
/// candidates and no exact match is refused with the candidates listed.
pub fn pick_identity(query: &str, found: &[Identity]) -> Result<Identity> {
    let exact: Vec<&Identity> = found.iter().filter(|i| i.is_exactly(query)).collect();
    match (exact.as_slice(), found) {
        ([one], _) => Ok((*one).clone()),
        ([], [one]) => Ok(one.clone()),
        ([], []) => Err(Error::NotFound(format!(
            "no user or group matches `{query}`; `rancherctl identities search {query}` shows what the provider knows"
        ))),
        (several, all) => {
            let list = if several.is_empty() {
                all.iter().collect::<Vec<_>>()
            } else {
                several.to_vec()
            };
            let names: Vec<String> = list
                .iter()
                .take(10)
                .map(|i| format!("{} ({} {})", i.id, i.kind, i.name))
                .collect();
            Err(Error::Refused(format!(
                "`{query}` matches several identities: {}; give the id instead",
                names.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_settings_print_as_the_server_named_them_in_a_fixed_order() {
        let t: V1Token = serde_json::from_value(serde_json::json!({
            "redirectUrl": "https://gh/cb", "clientId": "abc", "scheme": "https://", "hostname": "github.example.com"
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_string(&public_settings(&t)).unwrap(),
            r#"{"hostname":"github.example.com","scheme":"https://","clientId":"abc","redirectUrl":"https://gh/cb"}"#
        );
        let some: V1Token = serde_json::from_value(serde_json::json!({"clientId": "abc"})).unwrap();
        assert_eq!(
            serde_json::to_string(&public_settings(&some)).unwrap(),
            r#"{"clientId":"abc"}"#
        );
        assert_eq!(serde_json::to_string(&PublicSettings::default()).unwrap(), "{}");
    }

    fn v(major: u16, minor: u16) -> RancherVersion {
        RancherVersion::new(major, minor, 0)
    }

    #[test]
    fn the_1x_matrix_follows_the_spec_table() {
        use AccessMode::*;
        use Provider::*;
        let table = [
            (ActiveDirectory, [Some((1, 0)), Some((1, 1)), Some((1, 1))]),
            (AzureAd, [Some((1, 1)), None, None]),
            (OpenLdap, [Some((1, 0)), Some((1, 6)), Some((1, 6))]),
            (GitHub, [Some((1, 0)), Some((1, 0)), Some((1, 1))]),
            (Local, [Some((1, 0)), None, None]),
        ];
        for (p, row) in table {
            for (mode, since) in [Unrestricted, Restricted, Required].into_iter().zip(row) {
                for version in [v(1, 0), v(1, 1), v(1, 6)] {
                    let ok = check_mode(p, mode, version).is_ok();
                    let expected = since.is_some_and(|(a, b)| version.at_least(a, b));
                    assert_eq!(ok, expected, "{p} {mode} on {version}");
                }
            }
        }
    }

    #[test]
    fn refusals_name_provider_mode_and_version() {
        let e = check_mode(Provider::GitHub, AccessMode::Required, v(1, 0))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "GitHub does not offer access mode `required` on Rancher 1.0.0: it was added in Rancher 1.1 (1.1-dev5); upgrade the server or use `unrestricted`"
        );
        let e = check_mode(Provider::OpenLdap, AccessMode::Restricted, v(1, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("added in Rancher 1.6"), "{e}");
        let e = check_mode(Provider::AzureAd, AccessMode::Restricted, v(1, 6))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Azure AD offers only `unrestricted` on Rancher 1.x"),
            "{e}"
        );
        let e = check_mode(Provider::AzureAd, AccessMode::Unrestricted, v(1, 0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("added in Rancher 1.1"), "{e}");
        let e = check_mode(Provider::Local, AccessMode::Required, v(2, 13))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not apply to local auth"), "{e}");
    }

    #[test]
    fn rancher_2_offers_every_mode_to_external_providers() {
        for p in PROVIDERS.into_iter().filter(|p| *p != Provider::Local) {
            for m in [AccessMode::Unrestricted, AccessMode::Restricted, AccessMode::Required] {
                assert!(check_mode(p, m, v(2, 8)).is_ok(), "{p} {m}");
            }
        }
    }

    #[test]
    fn providers_parse_from_ids_paths_and_short_names() {
        for (s, p) in [
            ("AD", Provider::ActiveDirectory),
            ("ldapconfig", Provider::ActiveDirectory),
            ("Azure-AD", Provider::AzureAd),
            ("openldap", Provider::OpenLdap),
            ("GitHub", Provider::GitHub),
            ("localAuthConfig", Provider::Local),
        ] {
            assert_eq!(s.parse::<Provider>().unwrap(), p, "{s}");
        }
        let e = "okta".parse::<Provider>().unwrap_err().to_string();
        assert!(e.contains("use one of activedirectory"), "{e}");
        assert_eq!(
            Provider::from_v1_auth_provider("localAuthConfig"),
            Some(Provider::Local)
        );
        assert!("sometimes".parse::<AccessMode>().is_err());
    }

    #[test]
    fn identity_ownership_by_type_and_scheme() {
        assert!(Provider::ActiveDirectory.owns_identity("ldap_group:CN=Eng,DC=x"));
        assert!(Provider::ActiveDirectory.owns_identity("activedirectory_user://CN=A,DC=x"));
        assert!(!Provider::ActiveDirectory.owns_identity("github_user://1"));
        assert!(Provider::GitHub.owns_identity("github_org:9919"));
        assert!(!Provider::Local.owns_identity("ldap_user:x"));
    }

    #[test]
    fn the_1x_token_answer_tells_security_provider_and_public_settings_only() {
        let c: NormanCollection<V1Token> = serde_json::from_value(serde_json::json!({"type": "collection", "data": [{"type": "token", "security": true,
            "authProvider": "githubconfig", "hostname": "github.example.com", "scheme": "https://", "clientId": "abc", "redirectUrl": null, "jwt": null}]}))
        .unwrap();
        let (security, provider, t) = v1_token_info(c);
        assert!(security);
        assert_eq!(provider, "githubconfig");
        assert_eq!(
            serde_json::to_value(public_settings(&t)).unwrap(),
            serde_json::json!({"hostname": "github.example.com", "scheme": "https://", "clientId": "abc"})
        );
        let (security, provider, _) = v1_token_info(NormanCollection::default());
        assert!(!security && provider.is_empty(), "an empty answer: access control off");
    }

    #[test]
    fn identities_from_either_generation() {
        let v1: V1Identity = serde_json::from_value(
            serde_json::json!({"externalId": "9919", "externalIdType": "github_org", "login": "acme", "name": "Acme"}),
        )
        .unwrap();
        let i = Identity::from_v1(&v1);
        assert_eq!(
            (i.id.as_str(), i.kind.as_str(), i.login.as_str()),
            ("github_org:9919", "group", "acme")
        );
        assert_eq!(i.v1.as_ref(), Some(&v1), "kept to go back as it came");
        let v2: V3Principal =
            serde_json::from_value(serde_json::json!({"id": "local://u-1", "loginName": "admin", "name": "Admin"}))
                .unwrap();
        let i = Identity::from_v2(&v2);
        assert_eq!(
            (i.id.as_str(), i.kind.as_str(), i.login.as_str()),
            ("local://u-1", "user", "admin")
        );
    }

    #[test]
    fn picking_an_identity_prefers_exact_matches_and_lists_ambiguity() {
        let a = Identity {
            id: "ldap_user:CN=Ann".into(),
            kind: "user".into(),
            login: "ann".into(),
            name: "Ann".into(),
            v1: None,
        };
        let b = Identity {
            id: "ldap_user:CN=Anna".into(),
            kind: "user".into(),
            login: "anna".into(),
            name: "Anna".into(),
            v1: None,
        };
        assert_eq!(pick_identity("ann", &[a.clone(), b.clone()]).unwrap(), a);
        assert_eq!(pick_identity("an", std::slice::from_ref(&b)).unwrap(), b);
        let e = pick_identity("an", &[a, b]).unwrap_err().to_string();
        assert!(e.contains("matches several identities") && e.contains("CN=Anna"), "{e}");
        assert!(pick_identity("zed", &[])
            .unwrap_err()
            .to_string()
            .contains("identities search zed"));
    }
}

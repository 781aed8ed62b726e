//! The Rancher 1.x (1.6) legacy access-control API: `/v1/token`, provider configs with access modes and
//! allowed identities, identity search and accounts; seeded directories per provider.

use std::collections::{BTreeMap, HashMap};

use http::Method;
use rand::Rng;
use serde_json::{json, Value};

use crate::http::{legacy_err, Req, Resp};
use crate::seed::{directories, SimTokens, SimUser, SimUsers, DEFAULT_PASSWORD};
use crate::server::Shared;
use crate::state::{now_ms, Directory};

/// The five legacy provider configs: `(path name, directory id, config type as GET /v1/token reports it,
/// user identity type, group identity type, supported access modes)`.
pub(crate) const PROVIDERS: &[Provider] = &[
    (
        "ldapconfig",
        "activedirectory",
        "ldapconfig",
        "ldap_user",
        "ldap_group",
        &["unrestricted", "restricted", "required"],
    ),
    (
        "azureadconfig",
        "azuread",
        "azureadconfig",
        "azuread_user",
        "azuread_group",
        &["unrestricted"],
    ),
    // rancher/cattle OpenLDAPConfigManager.java (1.6) validates allowedIdentities for restricted and required.
    (
        "openldapconfig",
        "openldap",
        "openldapconfig",
        "openldap_user",
        "openldap_group",
        &["unrestricted", "restricted", "required"],
    ),
    (
        "githubconfig",
        "github",
        "githubconfig",
        "github_user",
        "github_org",
        &["unrestricted", "restricted", "required"],
    ),
    (
        "localauthconfig",
        "local",
        "localAuthConfig",
        "rancher_id",
        "rancher_id",
        &["unrestricted"],
    ),
];

/// `(path, directory, type, user identity type, group identity type, access modes)`.
pub(crate) type Provider = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

/// How long a 1.x login token lasts (cattle `api.auth.jwt.token.expiry`, 16 h).
const LOGIN_TTL_MS: i64 = 57_600_000;

/// Secret fields of legacy configs (never returned; `null` keeps the stored value).
const SECRETS: &[&str] = &[
    "serviceAccountPassword",
    "clientSecret",
    "adminAccountPassword",
    "password",
    "applicationSecret",
];

/// A legacy account (`/v1/accounts`).
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub external_id: String,
    pub external_id_type: String,
    /// Login name of the identity the account is tied to.
    pub login: String,
}

/// A 1.x token.
#[derive(Debug, Clone)]
pub(crate) struct LegacyToken {
    pub account_id: String,
    pub expires_ms: i64,
    /// Identities (user first, then groups) of the login.
    pub identities: Vec<Value>,
}

/// All 1.x state.
#[derive(Debug, Default)]
pub(crate) struct Legacy {
    pub configs: BTreeMap<String, Value>,
    pub accounts: BTreeMap<String, Account>,
    pub local_passwords: HashMap<String, String>,
    pub tokens: HashMap<String, LegacyToken>,
    /// Environments (projects) and their member identity ids (`<type>:<externalId>`).
    pub projects: Vec<(String, Vec<String>)>,
    pub last_configured: Option<String>,
    pub directories: BTreeMap<String, Directory>,
    pub next_account: u32,
}

fn jwt(rng: &mut impl Rng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..40).map(|_| A[rng.gen_range(0..A.len())] as char).collect()
}

fn identity(ext_type: &str, ext_id: &str, login: &str, name: &str) -> Value {
    json!({
        "id": format!("{ext_type}:{ext_id}"), "type": "identity", "externalId": ext_id, "externalIdType": ext_type,
        "login": login, "name": name, "profilePicture": null, "profileUrl": null, "role": null, "projectId": null, "all": null,
        "links": {}, "actions": {},
    })
}

impl Legacy {
    /// Seeds 1.6 state: local auth on, admin + approver + standard users, directories, one environment.
    pub fn seed(rng: &mut impl Rng) -> (Legacy, SimUsers, SimTokens) {
        let mut l = Legacy {
            next_account: 1,
            ..Legacy::default()
        };
        for (path, _, ty, _, _, _) in PROVIDERS {
            let mut c = json!({"type": ty, "enabled": false, "accessMode": "unrestricted", "allowedIdentities": []});
            match *path {
                "ldapconfig" | "openldapconfig" => {
                    c["server"] = json!("");
                    c["port"] = json!(389);
                    c["tls"] = json!(false);
                    c["domain"] = json!("");
                    c["serviceAccountUsername"] = json!("");
                    c["serviceAccountPassword"] = json!("");
                    c["userSearchField"] = json!("sAMAccountName");
                    c["groupSearchField"] = json!("sAMAccountName");
                    c["connectionTimeout"] = json!(5000);
                }
                "githubconfig" => {
                    c["hostname"] = json!(null);
                    c["scheme"] = json!("https://");
                    c["clientId"] = json!("");
                    c["clientSecret"] = json!("");
                }
                "azureadconfig" => {
                    c["tenantId"] = json!("");
                    c["clientId"] = json!("");
                    c["domain"] = json!("");
                    c["adminAccountUsername"] = json!("");
                    c["adminAccountPassword"] = json!("");
                }
                "localauthconfig" => {
                    c["enabled"] = json!(true);
                    c["name"] = json!("Default Admin");
                    c["username"] = json!("admin");
                    c["password"] = json!(DEFAULT_PASSWORD);
                }
                _ => {}
            }
            l.configs.insert(path.to_string(), c);
        }
        l.last_configured = Some("localauthconfig".into());
        for (id, d) in directories() {
            l.directories.insert(id.to_string(), d);
        }
        let mut users = Vec::new();
        for (login, name, kind) in [
            ("admin", "Default Admin", "admin"),
            ("approver", "Approver", "admin"),
            ("alice", "Alice Example", "user"),
            ("bob", "Bob Example", "user"),
        ] {
            let id = l.add_account(kind, name, login, "rancher_id", login);
            l.local_passwords
                .insert(login.to_string(), DEFAULT_PASSWORD.to_string());
            users.push(SimUser {
                id,
                username: login.to_string(),
            });
        }
        l.projects.push((
            "Default".into(),
            vec![
                format!("rancher_id:{}", users[2].id),
                "ldap_user:CN=Anna Smith,OU=Users,DC=example,DC=com".into(),
            ],
        ));
        let mut tok = |l: &mut Legacy, idx: usize, expires: i64| {
            let j = jwt(rng);
            let u: &SimUser = &users[idx];
            l.tokens.insert(
                j.clone(),
                LegacyToken {
                    account_id: u.id.clone(),
                    expires_ms: expires,
                    identities: vec![identity("rancher_id", &u.id, &u.username, &u.username)],
                },
            );
            j
        };
        let far = now_ms() + 3650 * 24 * 3_600_000;
        let admin = tok(&mut l, 0, far);
        let approver = tok(&mut l, 1, far);
        let user = tok(&mut l, 2, far);
        let expired = tok(&mut l, 2, now_ms() - 3_600_000);
        // 1.x has no cluster-scoped tokens: this one is revoked (never valid), so it answers 401.
        let cluster_scoped = jwt(rng);
        let sim_users = SimUsers {
            admin: users[0].clone(),
            approver: users[1].clone(),
            user: users[2].clone(),
            standard: users[2..].to_vec(),
            downstream_cluster: String::new(),
            projects: vec!["1a5".into()],
            password: DEFAULT_PASSWORD.into(),
        };
        (
            l,
            sim_users,
            SimTokens {
                admin,
                approver,
                user,
                cluster_scoped,
                expired,
            },
        )
    }

    /// Adds an account; for local (`rancher_id`) accounts `ext_id` is the login and the external id is the
    /// account id, as in cattle.
    fn add_account(&mut self, kind: &str, name: &str, ext_id: &str, ext_type: &str, login: &str) -> String {
        let id = format!("1a{}", self.next_account);
        self.next_account += 1;
        let ext = if ext_type == "rancher_id" {
            id.clone()
        } else {
            ext_id.to_string()
        };
        self.accounts.insert(
            id.clone(),
            Account {
                id: id.clone(),
                kind: kind.into(),
                name: name.into(),
                external_id: ext,
                external_id_type: ext_type.into(),
                login: login.into(),
            },
        );
        id
    }

    fn enabled_provider(&self) -> Option<String> {
        self.configs
            .iter()
            .find(|(_, c)| c.get("enabled").and_then(Value::as_bool) == Some(true))
            .map(|(k, _)| k.clone())
    }
}

/// Legacy state for [`crate::SimHandle::objects`]: `accounts` (with their external identities) and
/// `providerconfigs` (as stored, secrets included, each with its path as `path`).
pub(crate) fn objects(l: &Legacy, kind: &str) -> Vec<Value> {
    match kind {
        "accounts" => l
            .accounts
            .values()
            .map(|a| json!({"id": a.id, "kind": a.kind, "name": a.name, "externalId": a.external_id, "externalIdType": a.external_id_type}))
            .collect(),
        "providerconfigs" => l
            .configs
            .iter()
            .map(|(path, c)| {
                let mut c = c.clone();
                c["path"] = json!(path);
                c
            })
            .collect(),
        _ => vec![],
    }
}

fn provider(path: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.0 == path)
}

fn account_json(base: &str, a: &Account) -> Value {
    json!({"id": a.id, "type": "account", "kind": a.kind, "name": a.name, "state": "active",
           "externalId": a.external_id, "externalIdType": a.external_id_type,
           "links": {"self": format!("{base}/v1/accounts/{}", a.id)}, "actions": {}})
}

fn collection(req: &Req, resource_type: &str, data: Vec<Value>) -> Resp {
    Resp::json(
        200,
        &json!({"type": "collection", "resourceType": resource_type, "links": {"self": req.url()},
                             "createTypes": {}, "actions": {}, "pagination": null, "sort": null, "filters": {}, "data": data}),
    )
}

fn config_view(base: &str, path: &str, c: &Value) -> Value {
    let mut v = c.clone();
    for s in SECRETS {
        if v.get(*s).is_some() {
            v[*s] = Value::Null;
        }
    }
    v["id"] = Value::Null;
    v["links"] = json!({"self": format!("{base}/v1/{path}")});
    v["actions"] = json!({});
    v
}

/// The auth service's error body (rancher/rancher-auth-service service/routes.go ReturnHTTPError): its `status` is
/// text, unlike cattle's.
fn auth_service_err(status: u16, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({"type": "error", "status": status.to_string(), "message": message}),
    )
}

/// `GET /v1-auth/config`: the provider envelope with GitHub's settings inside, the secret read back empty
/// (model/auth_config.go, providers/github GetConfig).
fn auth_service_view(c: &Value) -> Value {
    let field = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": null, "type": "config", "links": {}, "actions": {},
        "provider": "githubconfig",
        "enabled": c.get("enabled").and_then(Value::as_bool).unwrap_or(false),
        "accessMode": c.get("accessMode").and_then(Value::as_str).unwrap_or("unrestricted"),
        "allowedIdentities": c.get("allowedIdentities").cloned().filter(|v| v.is_array()).unwrap_or(json!([])),
        "githubConfig": {"type": "githubconfig", "hostname": field("hostname"), "scheme": field("scheme"), "clientId": field("clientId"), "clientSecret": ""},
        "shibbolethConfig": {}, "ldapConfig": {},
    })
}

/// Search a provider for identities matching `name` (prefix, case-insensitive).
fn search(l: &Legacy, path: &str, name: &str) -> Vec<Value> {
    let Some((_, dir, _, ut, gt, _)) = provider(path) else {
        return vec![];
    };
    let n = name.to_ascii_lowercase();
    let m = |s: &str| s.to_ascii_lowercase().starts_with(&n) || s.to_ascii_lowercase().contains(&format!(" {n}"));
    if *dir == "local" {
        return l
            .accounts
            .values()
            .filter(|a| a.external_id_type == "rancher_id" && (m(&a.name) || m(&a.login)))
            .map(|a| identity("rancher_id", &a.id, &l.login_of(a), &a.name))
            .collect();
    }
    let Some(d) = l.directories.get(*dir) else {
        return vec![];
    };
    let mut out: Vec<Value> = d
        .users
        .iter()
        .filter(|u| m(&u.login) || m(&u.name))
        .map(|u| identity(ut, &u.external_id, &u.login, &u.name))
        .collect();
    out.extend(
        d.groups
            .iter()
            .filter(|g| m(&g.name))
            .map(|g| identity(gt, &g.external_id, &g.name, &g.name)),
    );
    out
}

impl Legacy {
    fn login_of(&self, a: &Account) -> String {
        a.login.clone()
    }
}

/// Checks a `user:password` code against a provider; returns the user identity and its groups.
fn authenticate_code(l: &Legacy, path: &str, login: &str, password: &str) -> Option<(Value, Vec<Value>)> {
    let (_, dir, _, ut, gt, _) = provider(path)?;
    if *dir == "local" {
        if l.local_passwords.get(login).map(String::as_str) != Some(password) {
            return None;
        }
        let a = l
            .accounts
            .values()
            .find(|a| a.external_id_type == "rancher_id" && a.login == login)?;
        return Some((identity("rancher_id", &a.id, login, &a.name), vec![]));
    }
    let d = l.directories.get(*dir)?;
    let u = d
        .users
        .iter()
        .find(|u| u.login.eq_ignore_ascii_case(login) && u.password == password)?;
    let groups = u
        .groups
        .iter()
        .filter_map(|g| d.groups.iter().find(|x| &x.name == g))
        .map(|g| identity(gt, &g.external_id, &g.name, &g.name))
        .collect();
    Some((identity(ut, &u.external_id, &u.login, &u.name), groups))
}

/// The access-mode decision of spec/001: unrestricted = anyone valid; restricted = allowed identities or
/// environment members; required = allowed identities only.
pub(crate) fn may_login(l: &Legacy, config: &Value, identities: &[Value]) -> bool {
    let mode = config
        .get("accessMode")
        .and_then(Value::as_str)
        .unwrap_or("unrestricted");
    let allowed: Vec<String> = config
        .get("allowedIdentities")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| {
                    format!(
                        "{}:{}",
                        i.get("externalIdType").and_then(Value::as_str).unwrap_or(""),
                        i.get("externalId").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ids: Vec<String> = identities
        .iter()
        .filter_map(|i| i.get("id").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let listed = ids.iter().any(|i| allowed.contains(i));
    let member = l
        .projects
        .iter()
        .any(|(_, members)| ids.iter().any(|i| members.contains(i)));
    match mode {
        "required" => listed,
        "restricted" => listed || member,
        _ => true,
    }
}

/// Entry point for everything on a 1.6 server; every answer names the server version in `X-Rancher-Version`,
/// as cattle does.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Resp {
    route(shared, req).with_header("x-rancher-version", shared.version.full().to_string())
}

fn route(shared: &Shared, req: &Req) -> Resp {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    if segs == ["ping"] {
        return Resp::text(200, "text/plain", "pong");
    }
    if !matches!(segs.first(), Some(&"v1") | Some(&"v1-auth")) {
        return legacy_err(404, "NotFound", "Not Found").no_route();
    }
    let mut store = shared.store.write().expect("store lock");
    let Some(l) = store.legacy.as_mut() else {
        return legacy_err(500, "ServerError", "no legacy state");
    };
    let base = req.base.clone();
    // GET /v1/token without auth, POST /v1/token.
    if segs == ["v1", "token"] {
        if req.method == Method::GET {
            let enabled = l.enabled_provider();
            let p = enabled.as_deref().and_then(provider);
            let gh = l.configs.get("githubconfig").cloned().unwrap_or(json!({}));
            let is_gh = enabled.as_deref() == Some("githubconfig");
            let data = json!({
                "id": null, "type": "token", "links": {}, "actions": {},
                "security": enabled.is_some(),
                "authProvider": p.map(|p| p.2).unwrap_or(""),
                "enabled": enabled.is_some(),
                "redirectUrl": if is_gh { json!(format!("https://{}/login/oauth/authorize?client_id={}", gh.get("hostname").and_then(Value::as_str).unwrap_or("github.com"), gh.get("clientId").and_then(Value::as_str).unwrap_or(""))) } else { Value::Null },
                "hostname": if is_gh { gh.get("hostname").cloned().unwrap_or(Value::Null) } else { Value::Null },
                "scheme": if is_gh { gh.get("scheme").cloned().unwrap_or(Value::Null) } else { Value::Null },
                "clientId": if is_gh { gh.get("clientId").cloned().unwrap_or(Value::Null) } else { Value::Null },
                "jwt": null, "code": null, "user": null, "userType": null, "accountId": null, "userIdentity": null, "identities": null,
            });
            return collection(req, "token", vec![data]);
        }
        if req.method == Method::POST {
            let b = req.json().unwrap_or(json!({}));
            let code = b.get("code").and_then(Value::as_str).unwrap_or("");
            let Some(path) = l.enabled_provider().or(l.last_configured.clone()) else {
                return legacy_err(500, "NoAuthProvider", "No auth provider configured");
            };
            // GitHub takes an OAuth code (the simulator's codes are `login:password` of its directory) and a
            // code GitHub refuses is `400 codeInvalid`; the other providers take `user:password`.
            let github = path == "githubconfig";
            let invalid_code = || legacy_err(400, "codeInvalid", "Code provided is invalid.");
            let Some((login, password)) = code.split_once(':') else {
                return if github {
                    invalid_code()
                } else {
                    legacy_err(403, "Forbidden", "Malformed code")
                };
            };
            let Some((user, groups)) = authenticate_code(l, &path, login, password) else {
                return if github {
                    invalid_code()
                } else {
                    legacy_err(401, "Unauthorized", "Unauthorized")
                };
            };
            let mut ids = vec![user.clone()];
            ids.extend(groups);
            let cfg = l.configs.get(&path).cloned().unwrap_or(json!({}));
            if !may_login(l, &cfg, &ids) {
                // rancher/cattle AbstractTokenUtil.isAllowed.
                return legacy_err(403, "AuthError", "Your account does not have access");
            }
            let ext_type = user["externalIdType"].as_str().unwrap_or("").to_string();
            let ext_id = user["externalId"].as_str().unwrap_or("").to_string();
            let security = l.enabled_provider().is_some();
            let account = match l
                .accounts
                .values()
                .find(|a| a.external_id == ext_id && a.external_id_type == ext_type)
            {
                Some(a) => a.clone(),
                // While access control is off, the identity that proves a new provider works takes over the
                // admin account (1a1): whoever enables access control stays admin, so enabling cannot lock out.
                None if !security && ext_type != "rancher_id" => {
                    let a = l.accounts.get_mut("1a1").expect("the admin account is seeded");
                    a.external_id = ext_id.clone();
                    a.external_id_type = ext_type.clone();
                    a.login = user["login"].as_str().unwrap_or("").to_string();
                    a.clone()
                }
                None => {
                    let name = user["name"].as_str().unwrap_or("").to_string();
                    let login = user["login"].as_str().unwrap_or("").to_string();
                    let id = l.add_account("user", &name, &ext_id, &ext_type, &login);
                    l.accounts[&id].clone()
                }
            };
            let mut rng = rand::thread_rng();
            let j = jwt(&mut rng);
            // cattle iaas-api/defaults.properties: api.auth.jwt.token.expiry=57600000 (16 h).
            l.tokens.insert(
                j.clone(),
                LegacyToken {
                    account_id: account.id.clone(),
                    expires_ms: now_ms() + LOGIN_TTL_MS,
                    identities: ids.clone(),
                },
            );
            let p = provider(&path).map(|p| p.2).unwrap_or("");
            return Resp::json(
                201,
                // The 1.6 Token (since cattle 55272585b, Aug 2016): redirectUrl/originalLogin/authenticatedAsAccountId,
                // no clientId/hostname/scheme.
                &json!({"id": null, "type": "token", "links": {}, "actions": {}, "jwt": j, "code": null,
                        "accountId": account.id, "authenticatedAsAccountId": account.id, "user": user["login"],
                        "originalLogin": user["login"], "userType": account.kind, "authProvider": p,
                        "userIdentity": user, "identities": ids, "security": true, "enabled": true, "redirectUrl": null}),
            );
        }
        return legacy_err(405, "MethodNotAllowed", "Method not allowed");
    }
    // Everything else needs a valid token while security is on.
    let security = l.enabled_provider().is_some();
    let bearer = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| {
            req.header("cookie").and_then(|c| {
                c.split(';')
                    .find_map(|p| p.trim().strip_prefix("token=").map(str::to_string))
            })
        });
    let (account, identities) = match bearer.as_deref().and_then(|b| l.tokens.get(b)) {
        Some(t) if t.expires_ms > now_ms() => (l.accounts.get(&t.account_id).cloned(), t.identities.clone()),
        // Access control off: every caller acts as the admin account, with that account's identity.
        _ if !security => {
            let a = l.accounts.get("1a1").cloned();
            let ids = a
                .iter()
                .map(|a| identity(&a.external_id_type, &a.external_id, &l.login_of(a), &a.name))
                .collect();
            (a, ids)
        }
        _ => return legacy_err(401, "Unauthorized", "Unauthorized"),
    };
    let Some(account) = account else {
        return legacy_err(401, "Unauthorized", "Unauthorized");
    };
    let admin = account.kind == "admin";
    match (segs.as_slice(), &req.method) {
        // From 1.2 GitHub lives in the auth service (cattle 55272585b, Aug 2016): cattle has no githubconfig.
        (["v1", "githubconfig"], _) => legacy_err(404, "NotFound", "Not Found").no_route(),
        (["v1-auth", "config" | "configs"], m) => {
            // cattle's proxy lets only admins reach the auth service's config (ProxyFilter: roles required).
            if !admin {
                return auth_service_err(403, "Forbidden");
            }
            if *m == Method::GET {
                return Resp::json(200, &auth_service_view(&l.configs["githubconfig"]));
            }
            if *m != Method::POST || segs[1] != "config" {
                return auth_service_err(405, "Method not allowed");
            }
            // rancher/rancher-auth-service service/route_handlers.go UpdateConfig.
            let Ok(b) = req.json() else {
                return auth_service_err(400, "Bad Request, Please check the request content");
            };
            let provider = b.get("provider").and_then(Value::as_str).unwrap_or("");
            if provider.is_empty() {
                return auth_service_err(
                    400,
                    "Bad Request, Please check the request content, Provider is a required field",
                );
            }
            if provider != "githubconfig" {
                return auth_service_err(400, "Bad Request, Please check the request content");
            }
            let (_, _, _, _, _, modes) = self::provider("githubconfig").expect("github is a provider");
            if let Some(mode) = b.get("accessMode").and_then(Value::as_str) {
                if !modes.contains(&mode) {
                    return auth_service_err(400, "Bad Request, Please check the request content");
                }
            }
            if b.get("enabled").and_then(Value::as_bool) == Some(true) {
                if let Some(other) = l.enabled_provider().filter(|o| o != "githubconfig") {
                    return auth_service_err(400, &format!("Bad Request, access control is enabled with {other}"));
                }
            }
            let mut cfg = l.configs["githubconfig"].clone();
            let disabling = b.get("enabled").and_then(Value::as_bool) == Some(false)
                && cfg.get("enabled").and_then(Value::as_bool) == Some(true);
            for key in ["enabled", "accessMode", "allowedIdentities"] {
                if let Some(v) = b.get(key).filter(|v| !v.is_null()) {
                    cfg[key] = v.clone();
                }
            }
            for (k, v) in b.get("githubConfig").and_then(Value::as_object).into_iter().flatten() {
                // rancher-auth-service providers/github GetSettings: an empty secret keeps the stored one.
                let empty = v.is_null() || v.as_str() == Some("");
                if matches!(k.as_str(), "hostname" | "scheme" | "clientId") || (k == "clientSecret" && !empty) {
                    cfg[k] = v.clone();
                }
            }
            l.configs.insert("githubconfig".into(), cfg.clone());
            if !disabling {
                l.last_configured = Some("githubconfig".into());
            }
            Resp::json(200, &auth_service_view(&cfg))
        }
        (["v1", p], m) if provider(p).is_some() => {
            if !admin {
                return legacy_err(403, "Forbidden", "Forbidden");
            }
            let path = p.to_string();
            if *m == Method::GET {
                return Resp::json(200, &config_view(&base, &path, &l.configs[&path]));
            }
            if *m != Method::POST {
                return legacy_err(405, "MethodNotAllowed", "Method not allowed");
            }
            let b = match req.json() {
                Ok(b) => b,
                Err(e) => return legacy_err(422, "InvalidBodyContent", &e),
            };
            let (_, _, _, _, _, modes) = provider(&path).expect("checked above");
            if let Some(mode) = b.get("accessMode").and_then(Value::as_str) {
                if !["unrestricted", "restricted", "required"].contains(&mode) {
                    return legacy_err(422, "InvalidOption", &format!("accessMode: invalid value {mode}"));
                }
                if !modes.contains(&mode) {
                    return legacy_err(
                        422,
                        "InvalidOption",
                        &format!("accessMode {mode} is not supported by {path}"),
                    );
                }
            }
            let enabling = b.get("enabled").and_then(Value::as_bool) == Some(true);
            if enabling {
                if let Some(other) = l.enabled_provider().filter(|o| *o != path) {
                    return legacy_err(
                        422,
                        "InvalidState",
                        &format!("access control is enabled with {other}; disable it first"),
                    );
                }
            }
            let mut cfg = l.configs[&path].clone();
            let disabling = b.get("enabled").and_then(Value::as_bool) == Some(false)
                && cfg.get("enabled").and_then(Value::as_bool) == Some(true);
            for (k, v) in b.as_object().into_iter().flatten() {
                if matches!(k.as_str(), "id" | "type" | "links" | "actions")
                    || (v.is_null() && SECRETS.contains(&k.as_str()))
                {
                    continue;
                }
                cfg[k] = v.clone();
            }
            if path == "localauthconfig" {
                if let (Some(u), Some(pw)) = (
                    cfg.get("username").and_then(Value::as_str),
                    cfg.get("password").and_then(Value::as_str),
                ) {
                    l.local_passwords.insert(u.to_string(), pw.to_string());
                }
            }
            l.configs.insert(path.clone(), cfg.clone());
            if !disabling {
                // The provider a later `POST /v1/token` tests while none is enabled.
                l.last_configured = Some(path.clone());
            }
            Resp::json(201, &config_view(&base, &path, &cfg))
        }
        (["v1", "identities"], &Method::GET) => {
            let data = match req.q("name") {
                Some(n) => {
                    let path = l.enabled_provider().or(l.last_configured.clone()).unwrap_or_default();
                    search(l, &path, n)
                }
                None => identities,
            };
            collection(req, "identity", data)
        }
        (["v1", "accounts"], &Method::GET) => {
            let kind = req.q("kind");
            let ext_id = req.q("externalId");
            let ext_type = req.q("externalIdType");
            let data = l
                .accounts
                .values()
                // A standard user sees only its own account.
                .filter(|a| admin || a.id == account.id)
                .filter(|a| kind.is_none_or(|k| a.kind == k))
                .filter(|a| {
                    ext_id.is_none_or(|x| a.external_id == x) && ext_type.is_none_or(|t| a.external_id_type == t)
                })
                .map(|a| account_json(&base, a))
                .collect();
            collection(req, "account", data)
        }
        (["v1", "settings", name], &Method::GET) => match *name {
            "rancher.server.version" => Resp::json(
                200,
                &json!({"id": name, "type": "setting", "name": name, "value": shared.version.full(), "activeValue": shared.version.full(),
                        "links": {"self": format!("{base}/v1/settings/{name}")}, "actions": {}}),
            ),
            _ => legacy_err(404, "NotFound", "Not Found"),
        },
        (["v1", "accounts", id], &Method::GET) => match l.accounts.get(*id) {
            Some(a) if admin || a.id == account.id => Resp::json(200, &account_json(&base, a)),
            _ => legacy_err(404, "NotFound", "Not Found"),
        },
        _ => legacy_err(404, "NotFound", "Not Found").no_route(),
    }
}

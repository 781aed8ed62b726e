//! The access-control workflows on both generations. Writes go through the executor, so a dry run records them
//! (with every secret masked) instead of sending them.

use std::path::Path;

use futures::TryStreamExt;
use serde_json::{json, Map, Value};

use super::{check_mode, pick_identity, v1_token_info, AccessMode, Generation, Identity, Provider, PROVIDERS, SECRET_FIELDS};
use crate::catalog::WorkflowDef;
use crate::error::{Error, Result};
use crate::exec::{input, required, Exec, Table};
use crate::session::{str_field, Session};

type Ran = (String, Value, Option<Table>);

/// Runs one access-control workflow.
pub(crate) async fn run(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &Value) -> Result<Ran> {
    match def.id {
        "access-control-status" => status(exec).await,
        "access-control-enable" => enable(exec, def, inputs).await,
        "access-control-allow" => change_allowed(exec, def, inputs, true).await,
        "access-control-disallow" => change_allowed(exec, def, inputs, false).await,
        "access-control-disable" => disable(exec, def, inputs).await,
        "access-control-switch-plan" => switch_plan(exec, def, inputs).await,
        "identities-search" => search_workflow(exec, def, inputs).await,
        other => Err(Error::UnknownWorkflow(other.into())),
    }
}

/// Checks what can be checked before an approval request is filed, and pins identities given by name to the
/// ids they mean now, so approvers see exactly who would be allowed or removed.
pub async fn prepare(session: &Session, def: &WorkflowDef, inputs: Value) -> Result<Value> {
    let mut inputs = inputs;
    match def.id {
        "access-control-enable" => {
            let p: Provider = required(def, &inputs, "provider")?.parse()?;
            let mode = mode_input(def, &inputs)?.unwrap_or(AccessMode::Unrestricted);
            check_mode(p, mode, session.version)?;
            let exec = Exec::new(session, true);
            refuse_if_on(&exec, p).await?;
            // Pin the files: absolute paths (a relative one would resolve in the approver's directory) and their
            // content hashes, checked again at execution. Approvers see the settings, never the secrets.
            let mut pins = Map::new();
            for name in FILE_INPUTS {
                if let Some(path) = input(def, &inputs, name)? {
                    let absolute = std::path::absolute(path).map_err(|e| Error::Input { workflow: def.id.into(), input: (*name).into(), message: format!("cannot resolve `{path}`: {e}") })?;
                    let absolute = absolute.display().to_string();
                    pins.insert((*name).into(), json!({"path": absolute, "sha256": file_sha256(def, name, &absolute)?}));
                    inputs[*name] = Value::String(absolute);
                }
            }
            let shown = mask_secrets(&Value::Object(load_settings(def, &inputs)?));
            test_code(def, &inputs, p, Generation::of(session.version), false)?;
            inputs["pinned-files"] = Value::Object(pins);
            inputs["settings-shown"] = shown;
        }
        "access-control-allow" | "access-control-disallow" => {
            let exec = Exec::new(session, true);
            let p = target_provider(&exec, def, &inputs).await?;
            if let Some(mode) = mode_input(def, &inputs)? {
                check_mode(p, mode, session.version)?;
            }
            if def.id == "access-control-allow" {
                let entries = list_input(def, &inputs, "identities")?;
                let found = resolve(&exec, p, &entries).await?;
                inputs["identities"] = Value::String(found.iter().map(|i| i.id.clone()).collect::<Vec<_>>().join(","));
            }
        }
        _ => {}
    }
    Ok(inputs)
}

/// After a crash between claim and outcome: whether the server shows the change of an access-control request as
/// applied (`Some(true)`), not applied (`Some(false)`), or the workflow only reads (`None`).
pub async fn applied(session: &Session, workflow: &str, inputs: &Value) -> Result<Option<bool>> {
    let exec = Exec::new(session, true);
    let g = generation(&exec);
    let provider = |key: &str| inputs.get(key).and_then(Value::as_str).map(str::parse::<Provider>).transpose();
    let on = |p: Provider| {
        let exec = &exec;
        async move {
            Ok::<bool, Error>(match g {
                Generation::V1 => v1_state(exec).await?.1 == Some(p),
                Generation::V2 => v2_enabled(exec).await?.iter().any(|(id, _)| id == p.id()),
            })
        }
    };
    match workflow {
        "access-control-enable" => match provider("provider")? {
            Some(p) => Ok(Some(on(p).await?)),
            None => Ok(Some(false)),
        },
        "access-control-disable" => match provider("provider")? {
            Some(p) => Ok(Some(!on(p).await?)),
            None => Ok(Some(match g {
                Generation::V1 => !v1_state(&exec).await?.0,
                Generation::V2 => v2_enabled(&exec).await?.is_empty(),
            })),
        },
        "access-control-allow" | "access-control-disallow" => {
            let def = crate::catalog::find(workflow).ok_or_else(|| Error::UnknownWorkflow(workflow.into()))?;
            let p = target_provider(&exec, def, inputs).await?;
            let cfg = match g {
                Generation::V1 => v1_config(&exec, p).await?,
                Generation::V2 => v2_config(&exec, p).await?,
            };
            let present: Vec<Identity> = allowed_ids(&cfg, g).iter().map(Identity::from_allowed).collect();
            let entries = list_input(def, inputs, "identities")?;
            let listed = |e: &String| present.iter().any(|i| i.is_exactly(e));
            Ok(Some(if workflow == "access-control-allow" { entries.iter().all(listed) } else { !entries.iter().any(listed) }))
        }
        _ => Ok(None),
    }
}

fn generation(exec: &Exec<'_>) -> Generation {
    Generation::of(exec.session.version)
}

fn mode_input(def: &WorkflowDef, inputs: &Value) -> Result<Option<AccessMode>> {
    input(def, inputs, "mode")?.map(str::parse).transpose()
}

/// A comma-separated input as trimmed, non-empty entries. A piece that reads `attr=...` continues the entry
/// before it, so LDAP ids such as `ldap_user:CN=Ann,OU=Users,DC=example,DC=com` stay whole.
fn list_input(def: &WorkflowDef, inputs: &Value, name: &str) -> Result<Vec<String>> {
    Ok(input(def, inputs, name)?.map(split_entries).unwrap_or_default())
}

fn split_entries(s: &str) -> Vec<String> {
    let continues = |piece: &str| {
        let p = piece.trim_start();
        p.split_once('=').is_some_and(|(attr, _)| !attr.is_empty() && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
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

/// Replaces every secret (provider secrets, test passwords and codes) with a mask, at any depth.
pub(crate) fn mask_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let secret = SECRET_FIELDS.contains(&k.as_str()) || k == "code";
                    (k.clone(), if secret && !x.is_null() { json!("<redacted>") } else { mask_secrets(x) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask_secrets).collect()),
        other => other.clone(),
    }
}

/// A config as read, ready to go back: server bookkeeping dropped and every secret `null`, so the server keeps
/// the stored values.
fn resend(cfg: &Value) -> Map<String, Value> {
    let mut m = cfg.as_object().cloned().unwrap_or_default();
    for k in ["links", "actions", "baseType", "created", "createdTS", "creatorId", "uuid", "state", "transitioning", "transitioningMessage", "status"] {
        m.remove(k);
    }
    for k in SECRET_FIELDS {
        if m.contains_key(*k) {
            m.insert(k.to_string(), Value::Null);
        }
    }
    m
}

/// The inputs of `access-control-enable` that name files.
const FILE_INPUTS: &[&str] = &["config", "test-password-file", "test-code-file"];

fn file_sha256(def: &WorkflowDef, input_name: &str, path: &str) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|e| Error::Input { workflow: def.id.into(), input: input_name.into(), message: format!("cannot read `{path}`: {e}") })?;
    Ok(hex::encode(sha2::Sha256::digest(bytes)))
}

/// Refuses to run with a file that changed (or moved) since the request was filed and approved.
fn check_pinned_files(def: &WorkflowDef, inputs: &Value) -> Result<()> {
    let Some(pins) = inputs.get("pinned-files").and_then(Value::as_object) else {
        return Ok(());
    };
    for name in FILE_INPUTS {
        let given = input(def, inputs, name)?;
        let pin = pins.get(*name);
        let pinned_path = pin.and_then(|p| p.get("path")).and_then(Value::as_str);
        if given != pinned_path {
            return Err(Error::Refused(format!("{}: the `{name}` file is not the one approved; file the request again", def.id)));
        }
        if let (Some(path), Some(sha)) = (given, pin.and_then(|p| p.get("sha256")).and_then(Value::as_str)) {
            if file_sha256(def, name, path)? != sha {
                return Err(Error::Refused(format!(
                    "{}: `{path}` changed after the request was approved; nothing was sent. File the request again so approvers see the new content",
                    def.id
                )));
            }
        }
    }
    Ok(())
}

/// Reads a file named by an input; it must be a file, and when `private`, readable by its owner only.
fn read_input_file(def: &WorkflowDef, input_name: &str, path: &str, private: bool) -> Result<String> {
    let bad = |message: String| Error::Input { workflow: def.id.into(), input: input_name.into(), message };
    let p = Path::new(path);
    let meta = std::fs::metadata(p).map_err(|e| bad(format!("cannot read `{path}`: {e}")))?;
    if meta.is_dir() {
        return Err(bad(format!("`{path}` is a directory; give the file")));
    }
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!("`{path}` holds a secret but others may read it (mode {mode:o}); run `chmod 600 {path}`")));
        }
    }
    #[cfg(not(unix))]
    let _ = private;
    std::fs::read_to_string(p).map_err(|e| bad(format!("cannot read `{path}`: {e}")))
}

/// The provider settings from the `config` file (JSON or YAML object). Fields the workflow decides itself are
/// refused, so the file cannot silently enable anything.
fn load_settings(def: &WorkflowDef, inputs: &Value) -> Result<Map<String, Value>> {
    let Some(path) = input(def, inputs, "config")? else {
        return Ok(Map::new());
    };
    let bad = |message: String| Error::Input { workflow: def.id.into(), input: "config".into(), message };
    let text = read_input_file(def, "config", path, false)?;
    let value: Value = serde_norway::from_str(&text).map_err(|e| bad(format!("`{path}` is not a JSON or YAML object: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad(format!("`{path}` must hold one object of provider settings, e.g. {{\"server\": \"ad.example.com\"}}")));
    };
    for k in ["enabled", "accessMode", "allowedIdentities", "allowedPrincipalIds", "type", "id"] {
        if map.contains_key(k) {
            return Err(bad(format!("remove `{k}` from `{path}`: the workflow sets it (use --mode / --allow)")));
        }
    }
    let has_secret = map.iter().any(|(k, v)| SECRET_FIELDS.contains(&k.as_str()) && v.as_str().is_some_and(|s| !s.is_empty()));
    if has_secret {
        read_input_file(def, "config", path, true)?;
    }
    Ok(map)
}

/// The test login: `(user, code)` where code is `user:password` or an OAuth code. With `read` false only the
/// inputs are checked (files exist and are private), nothing is kept.
fn test_code(def: &WorkflowDef, inputs: &Value, p: Provider, g: Generation, read: bool) -> Result<(String, String)> {
    if p.tests_with_code(g) {
        let path = required(def, inputs, "test-code-file")?;
        let code = read_input_file(def, "test-code-file", path, true)?;
        let code = code.trim().to_string();
        if code.is_empty() {
            return Err(Error::Input { workflow: def.id.into(), input: "test-code-file".into(), message: format!("`{path}` is empty; put the OAuth code from the provider's redirect in it") });
        }
        return Ok(("(OAuth code)".into(), if read { code } else { String::new() }));
    }
    let user = required(def, inputs, "test-user")?.to_string();
    let path = required(def, inputs, "test-password-file")?;
    let pw = read_input_file(def, "test-password-file", path, true)?;
    let pw = pw.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&pw).to_string();
    if pw.is_empty() {
        return Err(Error::Input { workflow: def.id.into(), input: "test-password-file".into(), message: format!("`{path}` is empty") });
    }
    Ok((user.clone(), if read { format!("{user}:{pw}") } else { String::new() }))
}

/// 1.x: whether access control is on, and with which provider (`GET /v1/token`, no token needed).
async fn v1_state(exec: &Exec<'_>) -> Result<(bool, Option<Provider>, String)> {
    let (security, name, _) = v1_token_info(&exec.session.client.call(rancher_api::ids::V1_TOKEN_GET, &[], None).await?);
    Ok((security, if security { Provider::from_v1_auth_provider(&name) } else { None }, name))
}

/// GitHub moved out of cattle into the auth service in Rancher 1.2 (cattle 55272585b, Aug 2016): from then on its
/// config is `/v1-auth/config`, an envelope naming the provider with GitHub's own settings in `githubConfig`
/// (rancher/rancher-auth-service service/routes.go, model/auth_config.go), and `/v1/githubconfig` is gone.
fn in_auth_service(exec: &Exec<'_>, p: Provider) -> bool {
    p == Provider::GitHub && exec.session.version.at_least(1, 2)
}

/// GitHub's settings inside the auth service's envelope.
const AUTH_SERVICE_GITHUB_FIELDS: [&str; 4] = ["hostname", "scheme", "clientId", "clientSecret"];

async fn v1_config(exec: &Exec<'_>, p: Provider) -> Result<Value> {
    if !in_auth_service(exec, p) {
        return Ok(exec.session.client.call(&format!("v1.{}.get", p.v1_path()), &[], None).await?);
    }
    // Seen as the flat provider config the other 1.x providers have.
    let envelope = exec.session.client.call(rancher_api::ids::V1_AUTH_CONFIG_GET, &[], None).await?;
    let mut flat = Map::new();
    flat.insert("type".into(), json!(p.v1_path()));
    for key in ["enabled", "accessMode", "allowedIdentities"] {
        flat.insert(key.into(), envelope.get(key).cloned().unwrap_or(Value::Null));
    }
    if let Some(Value::Object(gh)) = envelope.get("githubConfig") {
        for key in AUTH_SERVICE_GITHUB_FIELDS {
            flat.insert(key.into(), gh.get(key).cloned().unwrap_or(Value::Null));
        }
    }
    Ok(Value::Object(flat))
}

/// Saves a 1.x provider config (`body` flat, as [`v1_config`] shows it), or in a dry run records the request.
async fn v1_save(exec: &mut Exec<'_>, p: Provider, body: Map<String, Value>) -> Result<Value> {
    if !in_auth_service(exec, p) {
        return exec.write_masked(&format!("v1.{}.update", p.v1_path()), &[], Some(Value::Object(body)), mask_secrets).await;
    }
    let mut github = Map::new();
    let mut envelope = Map::new();
    envelope.insert("provider".into(), json!(p.v1_path()));
    for (k, v) in body {
        if AUTH_SERVICE_GITHUB_FIELDS.contains(&k.as_str()) {
            github.insert(k, v);
        } else if matches!(k.as_str(), "enabled" | "accessMode" | "allowedIdentities") {
            envelope.insert(k, v);
        }
    }
    envelope.insert("githubConfig".into(), Value::Object(github));
    exec.write_masked(rancher_api::ids::V1_AUTH_CONFIG_UPDATE, &[], Some(Value::Object(envelope)), mask_secrets).await
}

async fn v2_config(exec: &Exec<'_>, p: Provider) -> Result<Value> {
    Ok(exec.session.client.call(rancher_api::ids::V3_AUTHCONFIGS_GET, &[("id", p.id())], None).await?)
}

/// 2.x: the enabled external providers (local auth is always on and not counted).
async fn v2_enabled(exec: &Exec<'_>) -> Result<Vec<(String, Value)>> {
    let items: Vec<Value> = exec.session.client.call_stream(rancher_api::ids::V3_AUTHCONFIGS_LIST, &[])?.try_collect().await?;
    Ok(items
        .into_iter()
        .filter(|c| c.get("enabled").and_then(Value::as_bool) == Some(true))
        .filter_map(|c| str_field(&c, "id").filter(|id| id != "local").map(|id| (id, c)))
        .collect())
}

/// The provider an allow/disallow/disable acts on: the one given, else the one that is on.
async fn target_provider(exec: &Exec<'_>, def: &WorkflowDef, inputs: &Value) -> Result<Provider> {
    let given = input(def, inputs, "provider")?.map(str::parse::<Provider>).transpose()?;
    let on: Vec<Provider> = match generation(exec) {
        Generation::V1 => v1_state(exec).await?.1.into_iter().collect(),
        Generation::V2 => v2_enabled(exec).await?.iter().filter_map(|(id, _)| id.parse().ok()).collect(),
    };
    match (given, on.as_slice()) {
        (Some(p), _) if on.contains(&p) => Ok(p),
        (Some(p), _) => Err(Error::Refused(format!("{} is not enabled on this server; `rancherctl access-control status` shows what is", p.title()))),
        (None, [one]) => Ok(*one),
        (None, []) => Err(Error::Refused("no external auth provider is enabled; enable one first with `rancherctl access-control enable`".into())),
        (None, several) => Err(Error::Refused(format!(
            "several providers are enabled ({}); name one with provider=<id>",
            several.iter().map(|p| p.id()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Refuses an enable while the provider, or on 1.x any provider, is already on.
async fn refuse_if_on(exec: &Exec<'_>, p: Provider) -> Result<()> {
    match generation(exec) {
        Generation::V1 => {
            let (security, current, name) = v1_state(exec).await?;
            match (security, current) {
                (false, _) => Ok(()),
                (true, Some(c)) if c == p => Err(Error::Refused(format!(
                    "{} is already enabled; change who may log in with `access-control allow|disallow`, or disable it first to change its settings",
                    p.title()
                ))),
                (true, c) => Err(Error::Refused(format!(
                    "access control is on with {}; switching providers is discouraged (accounts keep identities the new provider cannot resolve). \
                     See who is affected with `rancherctl access-control switch-plan --to {}`, then disable it with `rancherctl access-control disable` before enabling {}",
                    c.map(|c| c.title().to_string()).unwrap_or(name),
                    p.id(),
                    p.title()
                ))),
            }
        }
        Generation::V2 => {
            if p == Provider::Local {
                return Err(Error::Refused("local auth is always on in Rancher 2.x; there is nothing to enable".into()));
            }
            let cfg = v2_config(exec, p).await?;
            if cfg.get("enabled").and_then(Value::as_bool) == Some(true) {
                return Err(Error::Refused(format!(
                    "{} is already enabled; change who may log in with `access-control allow|disallow`, or disable it first to change its settings",
                    p.title()
                )));
            }
            Ok(())
        }
    }
}

/// Looks identities up on the server (never builds them by hand), restricted to `p` when given.
pub(crate) async fn search(exec: &Exec<'_>, p: Option<Provider>, name: &str, kind: Option<&str>) -> Result<Vec<Identity>> {
    let client = &exec.session.client;
    let found: Vec<Identity> = match generation(exec) {
        Generation::V1 => {
            let v = client.call(rancher_api::ids::V1_IDENTITIES_LIST, &[("name", name)], None).await?;
            v.get("data").and_then(Value::as_array).into_iter().flatten().map(Identity::from_v1).collect()
        }
        Generation::V2 => {
            let mut body = json!({"name": name});
            if let Some(k) = kind {
                body["principalType"] = json!(k);
            }
            let v = client.call(rancher_api::ids::V3_PRINCIPALS_SEARCH, &[], Some(body)).await?;
            v.get("data").and_then(Value::as_array).into_iter().flatten().map(Identity::from_v2).collect()
        }
    };
    Ok(found.into_iter().filter(|i| p.is_none_or(|p| p.owns_identity(&i.id))).filter(|i| kind.is_none_or(|k| i.kind == k)).collect())
}

/// Resolves entries (names, logins or ids) to identities of `p`: ids are checked, names searched.
async fn resolve(exec: &Exec<'_>, p: Provider, entries: &[String]) -> Result<Vec<Identity>> {
    let mut out: Vec<Identity> = Vec::new();
    for e in entries {
        let found = if p.owns_identity(e) {
            resolve_id(exec, p, e).await?
        } else {
            let results = search(exec, Some(p), e, None).await?;
            pick_identity(e, &results)?
        };
        if !out.iter().any(|i| i.id == found.id) {
            out.push(found);
        }
    }
    Ok(out)
}

async fn resolve_id(exec: &Exec<'_>, p: Provider, id: &str) -> Result<Identity> {
    match generation(exec) {
        Generation::V2 => match exec.session.client.call(rancher_api::ids::V3_PRINCIPALS_GET, &[("id", id)], None).await {
            Ok(v) => Ok(Identity::from_v2(&v)),
            Err(e) if e.is_not_found() => Err(Error::NotFound(format!("{} has no principal `{id}`", p.title()))),
            Err(e) => Err(e.into()),
        },
        Generation::V1 => {
            // 1.x cannot fetch one identity by id: search by the part after the type and match the id.
            let (t, ext) = id.split_once(':').unwrap_or(("", id));
            let key = ext.trim_start_matches("CN=").trim_start_matches("cn=").trim_start_matches("uid=").split(',').next().unwrap_or(ext);
            let found = search(exec, Some(p), key, None).await.unwrap_or_default();
            Ok(found.into_iter().find(|i| i.id == id).unwrap_or_else(|| {
                // Pinned at submit time from a lookup: send it in the minimal form the API accepts.
                Identity { id: id.into(), kind: "user".into(), login: String::new(), name: ext.into(), raw: json!({"externalIdType": t, "externalId": ext}) }
            }))
        }
    }
}

/// The ids the caller logs in with (user identity and groups), for the lockout guard.
async fn caller_ids(exec: &Exec<'_>) -> Result<Vec<String>> {
    let client = &exec.session.client;
    let v = match generation(exec) {
        Generation::V1 => client.call(rancher_api::ids::V1_IDENTITIES_LIST, &[], None).await?,
        Generation::V2 => client.call(rancher_api::ids::V3_PRINCIPALS_LIST, &[], None).await?,
    };
    Ok(v.get("data").and_then(Value::as_array).into_iter().flatten().filter_map(|i| str_field(i, "id")).collect())
}

fn allowed_ids(cfg: &Value, g: Generation) -> Vec<Value> {
    let key = if g == Generation::V1 { "allowedIdentities" } else { "allowedPrincipalIds" };
    cfg.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
}

fn id_of(entry: &Value) -> String {
    Identity::from_allowed(entry).id
}

fn status_row(p: &str, enabled: bool, mode: &str, allowed: usize) -> Vec<String> {
    vec![p.into(), if enabled { "yes".into() } else { "no".into() }, mode.into(), allowed.to_string()]
}

async fn status(exec: &mut Exec<'_>) -> Result<Ran> {
    let g = generation(exec);
    let version = exec.session.version;
    let mut providers = Vec::new();
    let mut rows = Vec::new();
    let security;
    match g {
        Generation::V1 => {
            let (on, current, _) = v1_state(exec).await?;
            security = on;
            for p in PROVIDERS {
                let cfg = match v1_config(exec, p).await {
                    Ok(c) => c,
                    // A provider this server version lacks (Azure AD before 1.1).
                    Err(Error::Api(e)) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                };
                let enabled = on && current == Some(p);
                let mode = str_field(&cfg, "accessMode").unwrap_or_else(|| "unrestricted".into());
                let allowed: Vec<String> = allowed_ids(&cfg, g).iter().map(id_of).collect();
                rows.push(status_row(p.id(), enabled, &mode, allowed.len()));
                providers.push(json!({"id": p.id(), "title": p.title(), "enabled": enabled, "accessMode": mode, "allowed": allowed}));
            }
        }
        Generation::V2 => {
            security = true;
            let items: Vec<Value> = exec.session.client.call_stream(rancher_api::ids::V3_AUTHCONFIGS_LIST, &[])?.try_collect().await?;
            for cfg in items {
                let id = str_field(&cfg, "id").unwrap_or_default();
                let enabled = cfg.get("enabled").and_then(Value::as_bool) == Some(true);
                let mode = str_field(&cfg, "accessMode").unwrap_or_else(|| "unrestricted".into());
                let allowed: Vec<String> = allowed_ids(&cfg, g).iter().map(id_of).collect();
                rows.push(status_row(&id, enabled, &mode, allowed.len()));
                providers.push(json!({"id": id, "type": str_field(&cfg, "type"), "enabled": enabled, "accessMode": mode, "allowed": allowed}));
            }
        }
    }
    let on: Vec<&str> = providers.iter().filter(|p| p["enabled"] == json!(true)).filter_map(|p| p["id"].as_str()).collect();
    let summary = match (g, on.as_slice()) {
        (Generation::V1, []) => format!("access control is OFF on this Rancher {version} server: anyone who reaches it acts as admin"),
        (Generation::V2, []) => format!("only local auth is on (Rancher {version})"),
        (_, on) => format!("access control is on with {} (Rancher {version})", on.join(", ")),
    };
    let result = json!({"generation": g, "version": version.to_string(), "security": security, "providers": providers});
    Ok((summary, result, Some(Table { columns: ["PROVIDER", "ENABLED", "MODE", "ALLOWED"].map(String::from).to_vec(), rows })))
}

async fn enable(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &Value) -> Result<Ran> {
    let p: Provider = required(def, inputs, "provider")?.parse()?;
    let mode = mode_input(def, inputs)?.unwrap_or(AccessMode::Unrestricted);
    let g = generation(exec);
    check_mode(p, mode, exec.session.version)?;
    check_pinned_files(def, inputs)?;
    refuse_if_on(exec, p).await?;
    let settings = load_settings(def, inputs)?;
    let (tester, code) = test_code(def, inputs, p, g, true)?;
    let entries = list_input(def, inputs, "allow")?;
    let left_off = format!(
        "{} settings are saved but the provider is still disabled, so nobody is locked out; fix the settings or the test credentials and run the enable again",
        p.title()
    );
    match g {
        Generation::V1 => {
            // 1. Save the settings, disabled.
            let mut first = settings.clone();
            first.insert("enabled".into(), json!(false));
            first.insert("accessMode".into(), json!("unrestricted"));
            first.insert("allowedIdentities".into(), json!([]));
            v1_save(exec, p, first).await?;
            // 2. Prove a login works with the saved settings.
            let (user, _) = code.split_once(':').unwrap_or((code.as_str(), ""));
            let test = exec.write_masked(rancher_api::ids::V1_TOKEN_CREATE, &[], Some(json!({"code": code})), mask_secrets).await;
            let token = match test {
                Ok(t) => t,
                Err(e) => return Err(Error::TestFailed(format!("step 2 of 3, the test login as `{user}`, failed: {e}. {left_off}"))),
            };
            // 3. Enable, with the allowed identities (the tester's own identity always among them).
            let mut allowed = if exec.dry_run { resolve(exec, p, &entries).await.unwrap_or_default() } else { resolve(exec, p, &entries).await? };
            let tester_identity = token.get("userIdentity").filter(|v| v.is_object()).map(Identity::from_v1);
            if mode != AccessMode::Unrestricted {
                if let Some(t) = &tester_identity {
                    if !allowed.iter().any(|i| i.id == t.id) {
                        allowed.push(t.clone());
                    }
                }
            }
            let mut last: Map<String, Value> = settings.iter().map(|(k, v)| (k.clone(), if SECRET_FIELDS.contains(&k.as_str()) { Value::Null } else { v.clone() })).collect();
            last.insert("enabled".into(), json!(true));
            last.insert("accessMode".into(), json!(mode.as_str()));
            last.insert("allowedIdentities".into(), Value::Array(allowed.iter().map(|i| i.raw.clone()).collect()));
            v1_save(exec, p, last).await?;
            let ids: Vec<String> = allowed.iter().map(|i| i.id.clone()).collect();
            if exec.dry_run {
                return Ok((format!("would enable {} in mode {mode} after a test login as `{tester}`", p.title()), json!({"provider": p, "mode": mode, "allowed": ids}), None));
            }
            let (on, current, _) = v1_state(exec).await?;
            if !(on && current == Some(p)) {
                return Err(Error::NotFound(format!("the server did not report {} as enabled after the final save; run `rancherctl access-control status`", p.title())));
            }
            let account = str_field(&token, "accountId").unwrap_or_default();
            let kind = str_field(&token, "userType").unwrap_or_default();
            Ok((
                format!("{} is on in mode {mode} ({} allowed identities); the test login `{user}` is account {account} ({kind})", p.title(), ids.len()),
                json!({"provider": p, "mode": mode, "allowed": ids, "tested_as": {"login": user, "account": account, "kind": kind}}),
                None,
            ))
        }
        Generation::V2 => {
            let params = [("kind", p.v2_kind()), ("id", p.id())];
            // 1. Save the settings, disabled.
            let mut first = settings.clone();
            first.insert("enabled".into(), json!(false));
            exec.write_masked(rancher_api::ids::V3_AUTHCONFIGS_UPDATE, &params, Some(Value::Object(first)), mask_secrets).await?;
            // 2 and 3. testAndApply saves and enables only when the test login works (Rancher adds the tester's
            // principal to the allowed list itself).
            let ids_now: Vec<Identity> = {
                let mut v = Vec::new();
                for e in entries.iter().filter(|e| p.owns_identity(e)) {
                    v.push(resolve_id(exec, p, e).await?);
                }
                v
            };
            let mut cfg = settings.clone();
            cfg.insert("enabled".into(), json!(true));
            cfg.insert("accessMode".into(), json!(mode.as_str()));
            cfg.insert("allowedPrincipalIds".into(), json!(ids_now.iter().map(|i| i.id.clone()).collect::<Vec<_>>()));
            let key = match p {
                Provider::GitHub => "githubConfig",
                Provider::ActiveDirectory => "activeDirectoryConfig",
                Provider::OpenLdap => "ldapConfig",
                _ => "config",
            };
            let mut body = json!({ key: Value::Object(cfg), "enabled": true });
            if p.tests_with_code(g) {
                body["code"] = json!(code);
            } else {
                let (u, pw) = code.split_once(':').unwrap_or((code.as_str(), ""));
                body["username"] = json!(u);
                body["password"] = json!(pw);
            }
            if let Err(e) = exec.write_masked(rancher_api::ids::V3_AUTHCONFIGS_TEST_AND_APPLY, &params, Some(body), mask_secrets).await {
                return Err(Error::TestFailed(format!("the test login as `{tester}` failed: {e}. {left_off}")));
            }
            // Names can be searched only once the provider is on.
            let names: Vec<String> = entries.iter().filter(|e| !p.owns_identity(e)).cloned().collect();
            let mut ids: Vec<String> = ids_now.iter().map(|i| i.id.clone()).collect();
            if !names.is_empty() && !exec.dry_run {
                let more = resolve(exec, p, &names).await?;
                let cfg = v2_config(exec, p).await?;
                let mut all: Vec<String> = allowed_ids(&cfg, g).iter().map(id_of).collect();
                for i in more {
                    if !all.contains(&i.id) {
                        all.push(i.id);
                    }
                }
                let mut body = resend(&cfg);
                body.insert("allowedPrincipalIds".into(), json!(all));
                exec.write_masked(rancher_api::ids::V3_AUTHCONFIGS_UPDATE, &params, Some(Value::Object(body)), mask_secrets).await?;
            }
            if exec.dry_run {
                return Ok((format!("would enable {} in mode {mode} after a test login as `{tester}`", p.title()), json!({"provider": p, "mode": mode, "allowed": ids}), None));
            }
            let cfg = v2_config(exec, p).await?;
            if cfg.get("enabled").and_then(Value::as_bool) != Some(true) {
                return Err(Error::NotFound(format!("the server did not report {} as enabled after testAndApply; run `rancherctl access-control status`", p.title())));
            }
            ids = allowed_ids(&cfg, g).iter().map(id_of).collect();
            Ok((
                format!("{} is on in mode {mode} ({} allowed principals); tested as `{tester}`", p.title(), ids.len()),
                json!({"provider": p, "mode": mode, "allowed": ids, "tested_as": {"login": tester}}),
                None,
            ))
        }
    }
}

async fn change_allowed(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &Value, add: bool) -> Result<Ran> {
    let g = generation(exec);
    let p = target_provider(exec, def, inputs).await?;
    let entries = list_input(def, inputs, "identities")?;
    if entries.is_empty() {
        return Err(Error::Input { workflow: def.id.into(), input: "identities".into(), message: "is required: names, logins or ids, comma-separated".into() });
    }
    let cfg = match g {
        Generation::V1 => v1_config(exec, p).await?,
        Generation::V2 => v2_config(exec, p).await?,
    };
    let old_mode: AccessMode = str_field(&cfg, "accessMode").unwrap_or_else(|| "unrestricted".into()).parse()?;
    let mode = mode_input(def, inputs)?.unwrap_or(old_mode);
    check_mode(p, mode, exec.session.version)?;
    let mut list = allowed_ids(&cfg, g);
    let before: Vec<String> = list.iter().map(id_of).collect();
    let mut changed = Vec::new();
    if add {
        for i in resolve(exec, p, &entries).await? {
            if !before.contains(&i.id) {
                list.push(if g == Generation::V1 { i.raw.clone() } else { json!(i.id) });
                changed.push(i.id);
            }
        }
    } else {
        // Removal matches the current list first (an identity no longer in the directory can still be removed).
        for e in &entries {
            let current: Vec<Identity> = list.iter().map(Identity::from_allowed).collect();
            let hit = match current.iter().find(|i| i.is_exactly(e)) {
                Some(i) => Some(i.id.clone()),
                None if p.owns_identity(e) => None,
                None => resolve(exec, p, std::slice::from_ref(e)).await.ok().and_then(|v| v.into_iter().next()).map(|i| i.id).filter(|id| before.contains(id)),
            };
            match hit {
                Some(id) => {
                    list.retain(|x| id_of(x) != id);
                    changed.push(id);
                }
                None => tracing::info!(identity = %e, "not in the allowed list; nothing to remove"),
            }
        }
    }
    let after: Vec<String> = list.iter().map(id_of).collect();
    if changed.is_empty() && mode == old_mode {
        let what = if add { "already allowed" } else { "not in the allowed list" };
        return Ok((format!("nothing to change: {} {what} for {}", entries.join(", "), p.title()), json!({"provider": p, "mode": mode, "changed": [], "allowed": after}), None));
    }
    // Lockout guard: the caller must keep a way in through this provider.
    if mode != AccessMode::Unrestricted {
        let mine: Vec<String> = caller_ids(exec).await?.into_iter().filter(|i| p.owns_identity(i)).collect();
        if !mine.is_empty() && !mine.iter().any(|i| after.contains(i)) {
            return Err(Error::Refused(format!(
                "this would lock you out: in mode `{mode}` none of your {} identities ({}) would remain allowed; allow one of them too",
                p.title(),
                mine.join(", ")
            )));
        }
    }
    let mut body = resend(&cfg);
    body.insert("accessMode".into(), json!(mode.as_str()));
    match g {
        Generation::V1 => {
            body.insert("allowedIdentities".into(), Value::Array(list));
            v1_save(exec, p, body).await?;
        }
        Generation::V2 => {
            body.insert("allowedPrincipalIds".into(), Value::Array(list));
            exec.write_masked(rancher_api::ids::V3_AUTHCONFIGS_UPDATE, &[("kind", p.v2_kind()), ("id", p.id())], Some(Value::Object(body)), mask_secrets).await?;
        }
    }
    let verb = match (add, exec.dry_run) {
        (true, false) => "allowed",
        (false, false) => "removed",
        (true, true) => "would allow",
        (false, true) => "would remove",
    };
    let what = if changed.is_empty() { format!("mode {old_mode} -> {mode}") } else { changed.join(", ") };
    Ok((
        format!("{} {verb} {what} (mode {mode}, {} allowed); stored secrets kept", p.title(), after.len()),
        json!({"provider": p, "mode": mode, "changed": changed, "allowed": after}),
        None,
    ))
}

async fn disable(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &Value) -> Result<Ran> {
    let g = generation(exec);
    let p = match target_provider(exec, def, inputs).await {
        Ok(p) => p,
        Err(Error::Refused(m)) if m.starts_with("no external auth provider is enabled") => {
            let what = if g == Generation::V1 { "access control is already off" } else { "only local auth is on, and it cannot be turned off" };
            return Ok((format!("nothing to disable: {what}"), json!({"disabled": null}), None));
        }
        Err(e) => return Err(e),
    };
    match g {
        Generation::V1 => {
            let cfg = v1_config(exec, p).await?;
            let mut body = resend(&cfg);
            body.insert("enabled".into(), json!(false));
            v1_save(exec, p, body).await?;
            let verb = if exec.dry_run { "would turn off" } else { "turned off" };
            Ok((
                format!(
                    "{verb} {}: access control is OFF, so anyone who reaches the server acts as admin until a provider is enabled again (`rancherctl access-control enable`)",
                    p.title()
                ),
                json!({"disabled": p, "security": false}),
                None,
            ))
        }
        Generation::V2 => {
            exec.write_masked(rancher_api::ids::V3_AUTHCONFIGS_DISABLE, &[("kind", p.v2_kind()), ("id", p.id())], None, mask_secrets).await?;
            let verb = if exec.dry_run { "would disable" } else { "disabled" };
            Ok((format!("{verb} {}: its users can no longer log in and their sessions end; local users are unaffected", p.title()), json!({"disabled": p}), None))
        }
    }
}

async fn switch_plan(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &Value) -> Result<Ran> {
    let to: Provider = required(def, inputs, "to")?.parse()?;
    let g = generation(exec);
    let warning = "Rancher advises against switching providers: existing accounts keep identities the new provider cannot resolve";
    match g {
        Generation::V1 => {
            let (_, current, _) = v1_state(exec).await?;
            let mut affected = Vec::new();
            for kind in ["admin", "user"] {
                let items: Vec<Value> = exec.session.client.call_stream(rancher_api::ids::V1_ACCOUNTS_LIST, &[("kind", kind)])?.try_collect().await?;
                affected.extend(items.into_iter().filter(|a| !to.v1_identity_types().contains(&str_field(a, "externalIdType").unwrap_or_default().as_str())));
            }
            let rows = affected
                .iter()
                .map(|a| ["id", "kind", "name", "externalIdType", "externalId"].iter().map(|k| str_field(a, k).unwrap_or_default()).collect())
                .collect();
            let admins = affected.iter().filter(|a| str_field(a, "kind").as_deref() == Some("admin")).count();
            let from = current.map(|c| c.title()).unwrap_or("no provider (access control is off)");
            Ok((
                format!("switching from {from} to {}: {} accounts ({admins} admins) would lose their identity and must be re-mapped (edit externalId/externalIdType). {warning}", to.title(), affected.len()),
                json!({"from": current, "to": to, "warning": warning, "accounts": affected}),
                Some(Table { columns: ["ACCOUNT", "KIND", "NAME", "IDENTITY TYPE", "EXTERNAL ID"].map(String::from).to_vec(), rows }),
            ))
        }
        Generation::V2 => {
            let from: Vec<Provider> = v2_enabled(exec).await?.iter().filter_map(|(id, _)| id.parse().ok()).filter(|p| *p != to).collect();
            let users: Vec<Value> = exec.session.client.call_stream(rancher_api::ids::V3_USERS_LIST, &[])?.try_collect().await?;
            let admins = exec.session.admin_user_ids().await?;
            let mut rows = Vec::new();
            let mut affected = Vec::new();
            for u in &users {
                let ids: Vec<String> = u.get("principalIds").and_then(Value::as_array).into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect();
                let loses = ids.iter().any(|i| from.iter().any(|p| p.owns_identity(i))) && !ids.iter().any(|i| to.owns_identity(i));
                if loses {
                    let id = str_field(u, "id").unwrap_or_default();
                    let admin = admins.contains(&id);
                    rows.push(vec![id.clone(), str_field(u, "username").unwrap_or_default(), if admin { "yes".into() } else { String::new() }, ids.join(" ")]);
                    affected.push(json!({"id": id, "username": str_field(u, "username"), "admin": admin, "principalIds": ids}));
                }
            }
            let from_names = if from.is_empty() { "local auth only".to_string() } else { from.iter().map(|p| p.title()).collect::<Vec<_>>().join(", ") };
            Ok((
                format!("switching from {from_names} to {}: {} users would lose their external identity and must be re-mapped. {warning}", to.title(), affected.len()),
                json!({"from": from, "to": to, "warning": warning, "users": affected}),
                Some(Table { columns: ["USER", "USERNAME", "ADMIN", "PRINCIPALS"].map(String::from).to_vec(), rows }),
            ))
        }
    }
}

async fn search_workflow(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &Value) -> Result<Ran> {
    let name = required(def, inputs, "name")?;
    let kind = match input(def, inputs, "type")? {
        None => None,
        Some(k @ ("user" | "group")) => Some(k),
        Some(other) => return Err(Error::Input { workflow: def.id.into(), input: "type".into(), message: format!("`{other}` is neither `user` nor `group`") }),
    };
    let found = search(exec, None, name, kind).await?;
    let rows = found.iter().map(|i| vec![i.id.clone(), i.kind.clone(), i.login.clone(), i.name.clone()]).collect();
    Ok((
        format!("{} identities match `{name}`", found.len()),
        serde_json::to_value(&found).unwrap_or(Value::Null),
        Some(Table { columns: ["ID", "TYPE", "LOGIN", "NAME"].map(String::from).to_vec(), rows }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth_and_nulls_stay_null() {
        let v = json!({"code": "jdoe:pw", "ldapConfig": {"serviceAccountPassword": "s3cret", "server": "ad"}, "clientSecret": null});
        let m = mask_secrets(&v);
        assert_eq!(m, json!({"code": "<redacted>", "ldapConfig": {"serviceAccountPassword": "<redacted>", "server": "ad"}, "clientSecret": null}));
    }

    #[test]
    fn entries_split_on_commas_but_ldap_ids_stay_whole() {
        assert_eq!(
            split_entries("Domain Admins, ldap_user:CN=Ann Lee,OU=Users,DC=example,DC=com ,mlee,"),
            vec!["Domain Admins", "ldap_user:CN=Ann Lee,OU=Users,DC=example,DC=com", "mlee"]
        );
        assert_eq!(split_entries("activedirectory_group://CN=Eng,OU=Groups,DC=x"), vec!["activedirectory_group://CN=Eng,OU=Groups,DC=x"]);
    }

    #[test]
    fn a_config_goes_back_with_secrets_null_and_bookkeeping_dropped() {
        let cfg = json!({"id": "github", "type": "githubConfig", "links": {}, "actions": {}, "clientSecret": "x", "clientId": "abc", "accessMode": "required"});
        let b = resend(&cfg);
        assert_eq!(b.get("clientSecret"), Some(&Value::Null));
        assert_eq!(b.get("clientId"), Some(&json!("abc")));
        assert!(!b.contains_key("links") && !b.contains_key("actions"));
    }
}

//! The access-control workflows on both generations. Writes go through the executor, so a dry run records them
//! (with every secret masked) instead of sending them.

use futures::TryStreamExt;
use serde_json::{json, Map, Value};

use rancher_api::requests::{
    V1AccountsList, V1AuthConfigGet, V1AuthConfigUpdate, V1AzureadconfigGet, V1AzureadconfigUpdate, V1GithubconfigGet,
    V1GithubconfigUpdate, V1IdentitiesList, V1LdapconfigGet, V1LdapconfigUpdate, V1LocalauthconfigGet,
    V1LocalauthconfigUpdate, V1OpenldapconfigGet, V1OpenldapconfigUpdate, V1TokenCreate, V1TokenGet,
    V3AuthconfigsDisable, V3AuthconfigsGet, V3AuthconfigsList, V3AuthconfigsTestAndApply, V3AuthconfigsUpdate,
    V3PrincipalsGet, V3PrincipalsList, V3PrincipalsSearch, V3UsersList,
};
use rancher_api::types::{
    V1Account, V1AuthConfig, V1GithubSettings, V1Identity, V1ProviderConfig, V1TokenRequest, V3AuthConfig,
    V3PrincipalSearch, V3User,
};
use rancher_api::Request;

use super::inputs::{
    need, ChangeAllowedInputs, ConfigInput, DisableInputs, EnableInputs, FlowInputs, SearchInputs, SwitchPlanInputs,
};
use super::{
    check_mode, pick_identity, v1_token_info, AccessMode, Generation, Identity, Provider, PROVIDERS, SECRET_FIELDS,
};
use crate::catalog::{self, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::session::Session;
use crate::targets::split_entries;
use crate::workflow::Inputs;

type Ran = (String, Value, Option<Table>);

/// One access-control workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFlow {
    /// `access-control-status`.
    Status,
    /// `access-control-enable`.
    Enable,
    /// `access-control-allow`.
    Allow,
    /// `access-control-disallow`.
    Disallow,
    /// `access-control-disable`.
    Disable,
    /// `access-control-switch-plan`.
    SwitchPlan,
    /// `identities-search`.
    Search,
}

impl AccessFlow {
    /// Every flow, in catalog order.
    pub const ALL: [AccessFlow; 7] = [
        AccessFlow::Status,
        AccessFlow::Enable,
        AccessFlow::Allow,
        AccessFlow::Disallow,
        AccessFlow::Disable,
        AccessFlow::SwitchPlan,
        AccessFlow::Search,
    ];

    /// The workflow id.
    pub const fn id(self) -> &'static str {
        self.def().id
    }

    /// Its definition in the catalog.
    pub const fn def(self) -> &'static WorkflowDef {
        match self {
            AccessFlow::Status => &catalog::ACCESS_CONTROL_STATUS,
            AccessFlow::Enable => &catalog::ACCESS_CONTROL_ENABLE,
            AccessFlow::Allow => &catalog::ACCESS_CONTROL_ALLOW,
            AccessFlow::Disallow => &catalog::ACCESS_CONTROL_DISALLOW,
            AccessFlow::Disable => &catalog::ACCESS_CONTROL_DISABLE,
            AccessFlow::SwitchPlan => &catalog::ACCESS_CONTROL_SWITCH_PLAN,
            AccessFlow::Search => &catalog::IDENTITIES_SEARCH,
        }
    }
}

/// Runs one access-control workflow on its parsed inputs (`raw` is the JSON they were parsed from).
pub(crate) async fn run(exec: &mut Exec<'_>, flow: AccessFlow, inputs: &FlowInputs, raw: &Inputs) -> Result<Ran> {
    let def = flow.def();
    match inputs {
        FlowInputs::Status => status(exec).await,
        FlowInputs::Enable(i) => enable(exec, def, i, raw).await,
        FlowInputs::ChangeAllowed(i) => change_allowed(exec, def, i, flow == AccessFlow::Allow).await,
        FlowInputs::Disable(i) => disable(exec, def, i).await,
        FlowInputs::SwitchPlan(i) => switch_plan(exec, def, i).await,
        FlowInputs::Search(i) => search_workflow(exec, def, i).await,
    }
}

/// Checks what can be checked before an approval request is filed, and pins identities given by name to the
/// ids they mean now, so approvers see exactly who would be allowed or removed.
pub(crate) async fn prepare(session: &Session, flow: AccessFlow, inputs: Inputs) -> Result<Inputs> {
    let mut inputs = inputs;
    let def = flow.def();
    match flow {
        AccessFlow::Enable => {
            // Set only here: a caller's own value never stands.
            for set_here in [HELD_INPUT, "pinned-files", "settings-shown"] {
                if let Some(m) = inputs.as_object_mut() {
                    m.remove(set_here);
                }
            }
            let mut given = EnableInputs::parse(&inputs)?;
            let p: Provider = need(def, "provider", &given.provider)?.parse()?;
            let mode = mode_input(&given.mode)?.unwrap_or(AccessMode::Unrestricted);
            check_mode(p, mode, session.version)?;
            let exec = Exec::new(session, true);
            refuse_if_on(&exec, p).await?;
            let g = Generation::of(session.version);
            if given.given_inline() {
                // Settings and test credentials came in the request: the stored request keeps what approvers may
                // see, and the secrets wait in memory for this request only (see `crate::held`).
                let settings = inline_settings(def, &given)?;
                let test = inline_test_code(def, &given, p, g)?;
                if let Some(m) = inputs.as_object_mut() {
                    for secret in INLINE_SECRETS {
                        m.remove(*secret);
                    }
                }
                inputs["settings-shown"] = shown_settings(&settings);
                let bound = crate::held::digest(&inputs);
                let handle = crate::held::hold(crate::held::Held { settings, test }, bound).ok_or_else(|| {
                    Error::Refused(format!(
                        "{}: {} requests already wait with test credentials held in memory; decide or cancel some, or wait for them to expire",
                        def.id,
                        crate::held::MAX_HELD
                    ))
                })?;
                inputs[HELD_INPUT] = json!({
                    "handle": handle,
                    "held": format!(
                        "the provider settings and test credentials are held in the memory of the service that filed this request, \
                         never stored; they are used once when it runs, and are gone after {} h or a restart of that service (then file it again)",
                        crate::held::HOLD_FOR.as_secs() / 3600
                    ),
                });
                return Ok(inputs);
            }
            // Local files: pinned by absolute path (a relative one would resolve in the approver's directory) and
            // content hash, checked again at execution. Approvers see the settings, never the secrets.
            let mut pins = Map::new();
            for name in FILE_INPUTS {
                if let Some(path) = given.file(name)? {
                    let absolute = std::path::absolute(path).map_err(|e| Error::Input {
                        workflow: def.id.into(),
                        input: (*name).into(),
                        message: format!("cannot resolve `{path}`: {e}"),
                    })?;
                    let absolute = absolute.display().to_string();
                    pins.insert(
                        (*name).into(),
                        json!({"path": absolute, "sha256": file_sha256(def, name, &absolute).await?}),
                    );
                    inputs[*name] = Value::String(absolute.clone());
                    given.set_file(name, absolute);
                }
            }
            let shown = shown_settings(&load_settings(def, &given).await?);
            test_code(def, &given, p, g, false).await?;
            inputs["pinned-files"] = Value::Object(pins);
            inputs["settings-shown"] = shown;
        }
        AccessFlow::Allow | AccessFlow::Disallow => {
            let given: ChangeAllowedInputs = inputs.parse(def)?;
            let exec = Exec::new(session, true);
            let p = target_provider(&exec, &given.provider).await?;
            if let Some(mode) = mode_input(&given.mode)? {
                check_mode(p, mode, session.version)?;
            }
            if given.provider.is_none() {
                // Pinned: the provider enabled now is the one the request changes (and its plan names).
                inputs["provider"] = json!(p);
            }
            if flow == AccessFlow::Allow {
                let entries = list_input(&given.identities);
                let found = resolve(&exec, p, &entries).await?;
                inputs["identities"] = Value::String(found.iter().map(|i| i.id.clone()).collect::<Vec<_>>().join(","));
            } else {
                // Pinned as the allowed entries they name now (ids), so approvers read who is removed in names and
                // the run removes exactly those; an entry naming nothing allowed stays as typed (the run says so).
                let present = config(&exec, p).await?.allowed();
                let mut pinned = Vec::new();
                for e in list_input(&given.identities) {
                    let id = match present.iter().find(|i| i.is_exactly(&e)) {
                        Some(i) => Some(i.id.clone()),
                        // An allowed id may carry no name here: the directory says which principal the name means.
                        None => resolve(&exec, p, std::slice::from_ref(&e))
                            .await
                            .ok()
                            .and_then(|found| found.into_iter().next())
                            .map(|i| i.id)
                            .filter(|id| present.iter().any(|i| i.id == *id)),
                    };
                    pinned.push(id.unwrap_or(e));
                }
                if !pinned.is_empty() {
                    inputs["identities"] = Value::String(pinned.join(","));
                }
            }
        }
        AccessFlow::Disable => {
            // Set only here: a caller's own list never stands.
            if let Some(m) = inputs.as_object_mut() {
                m.remove(DELETIONS_INPUT);
            }
            if Generation::of(session.version) == Generation::V2 {
                let given: DisableInputs = inputs.parse(def)?;
                let exec = Exec::new(session, true);
                let p = match target_provider(&exec, &given.provider).await {
                    Ok(p) => p,
                    // Nothing to disable: the run says so.
                    Err(Error::Refused(m)) if m.starts_with("no external auth provider is enabled") => {
                        return Ok(inputs)
                    }
                    Err(e) => return Err(e),
                };
                let cleanup = cleanup_of(&exec, p).await?;
                let code = cleanup.code();
                if let Some(ack) = given.acknowledge.as_deref().filter(|a| *a != code) {
                    return Err(Error::Refused(format!(
                        "the acknowledgement {ack} names a different set than what disabling {} deletes now: {}. Nothing was filed. {}",
                        p.title(),
                        cleanup.describe(),
                        ack_hint(&code)
                    )));
                }
                // Pinned for approvers: exactly what Rancher will delete, and the code that names it.
                inputs[DELETIONS_INPUT] = json!({"provider": p, "deletes": cleanup, "acknowledge": code});
            }
        }
        _ => {}
    }
    Ok(inputs)
}

/// After a crash between claim and outcome: whether the server shows the change of an access-control request as
/// applied (`Some(true)`), not applied (`Some(false)`), or the workflow only reads (`None`).
pub(crate) async fn applied(session: &Session, flow: AccessFlow, inputs: &FlowInputs) -> Result<Option<bool>> {
    let exec = Exec::new(session, true);
    let g = generation(&exec);
    let provider = |given: &Option<String>| given.as_deref().map(str::parse::<Provider>).transpose();
    let on = |p: Provider| {
        let exec = &exec;
        async move {
            Ok::<bool, Error>(match g {
                Generation::V1 => v1_state(exec).await?.1 == Some(p),
                Generation::V2 => v2_enabled(exec).await?.iter().any(|(id, _)| id == p.id()),
            })
        }
    };
    match inputs {
        FlowInputs::Enable(i) => match provider(&i.provider)? {
            Some(p) => Ok(Some(on(p).await?)),
            None => Ok(Some(false)),
        },
        FlowInputs::Disable(i) => match provider(&i.provider)? {
            Some(p) => Ok(Some(!on(p).await?)),
            None => Ok(Some(match g {
                Generation::V1 => !v1_state(&exec).await?.0,
                Generation::V2 => v2_enabled(&exec).await?.is_empty(),
            })),
        },
        FlowInputs::ChangeAllowed(i) => {
            let p = target_provider(&exec, &i.provider).await?;
            let present = config(&exec, p).await?.allowed();
            let entries = list_input(&i.identities);
            let listed = |e: &String| present.iter().any(|i| i.is_exactly(e));
            Ok(Some(if flow == AccessFlow::Allow {
                entries.iter().all(listed)
            } else {
                !entries.iter().any(listed)
            }))
        }
        _ => Ok(None),
    }
}

fn generation(exec: &Exec<'_>) -> Generation {
    Generation::of(exec.session.version)
}

fn mode_input(mode: &Option<String>) -> Result<Option<AccessMode>> {
    mode.as_deref().map(str::parse).transpose()
}

/// A comma-separated input as trimmed, non-empty entries (see [`split_entries`]).
fn list_input(given: &Option<String>) -> Vec<String> {
    given.as_deref().map(split_entries).unwrap_or_default()
}

/// Provider settings approvers may read as given: the non-secret fields of every provider this tool configures
/// (Rancher's `ActiveDirectoryConfig`, `LdapConfig`, `GithubConfig`, `AzureADConfig`, and the 1.x configs).
/// Every other field, known secret or not, is shown masked: a field nobody listed here is never assumed harmless.
const SHOWN_SETTINGS: &[&str] = &[
    // LDAP: Active Directory and OpenLDAP, both generations
    "server",
    "servers",
    "port",
    "tls",
    "starttls",
    "certificate",
    "connectionTimeout",
    "domain",
    "loginDomain",
    "defaultLoginDomain",
    "serviceAccountUsername",
    "serviceAccountDistinguishedName",
    "userSearchBase",
    "userSearchAttribute",
    "userSearchFilter",
    "userSearchField",
    "userLoginAttribute",
    "userLoginFilter",
    "userLoginField",
    "userObjectClass",
    "userNameAttribute",
    "userNameField",
    "userEnabledAttribute",
    "userDisabledBitMask",
    "userMemberAttribute",
    "groupSearchBase",
    "groupSearchAttribute",
    "groupSearchFilter",
    "groupSearchField",
    "groupObjectClass",
    "groupNameAttribute",
    "groupNameField",
    "groupDNAttribute",
    "groupDNField",
    "groupMemberUserAttribute",
    "groupMemberMappingAttribute",
    "nestedGroupMembershipEnabled",
    "searchUsingServiceAccount",
    // GitHub
    "hostname",
    "scheme",
    "clientId",
    // Azure AD
    "tenantId",
    "applicationId",
    "endpoint",
    "graphEndpoint",
    "tokenEndpoint",
    "authEndpoint",
    "deviceAuthEndpoint",
    "rancherUrl",
    "groupMembershipFilter",
    "adminAccountUsername",
];

/// What approvers see of provider settings: fields on [`SHOWN_SETTINGS`] as given when they hold plain values
/// (text, numbers, booleans, lists of them); every other field, and any nested object, as `<masked>`.
pub(crate) fn shown_settings(settings: &Map<String, Value>) -> Value {
    let plain = |v: &Value| match v {
        Value::Array(a) => a.iter().all(|x| !x.is_object() && !x.is_array()),
        Value::Object(_) => false,
        _ => true,
    };
    Value::Object(
        settings
            .iter()
            .map(|(k, v)| {
                let show = SHOWN_SETTINGS.contains(&k.as_str()) && plain(v);
                (
                    k.clone(),
                    if show || v.is_null() {
                        v.clone()
                    } else {
                        json!("<masked>")
                    },
                )
            })
            .collect(),
    )
}

/// Replaces every secret (provider secrets, test passwords and codes) with a mask, at any depth.
pub(crate) fn mask_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let secret = SECRET_FIELDS.contains(&k.as_str()) || k == "code";
                    (
                        k.clone(),
                        if secret && !x.is_null() {
                            json!("<redacted>")
                        } else {
                            mask_secrets(x)
                        },
                    )
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask_secrets).collect()),
        other => other.clone(),
    }
}

/// Server bookkeeping that never goes back (as field names, for the fields a type keeps in `extra`).
const BOOKKEEPING: [&str; 11] = [
    "links",
    "actions",
    "baseType",
    "created",
    "createdTS",
    "creatorId",
    "uuid",
    "state",
    "transitioning",
    "transitioningMessage",
    "status",
];

/// Drops bookkeeping from the fields a type does not name and sets every secret among them to `null`, so the
/// server keeps the stored values.
fn resend_extra(extra: &mut std::collections::BTreeMap<String, Value>) {
    for k in BOOKKEEPING {
        extra.remove(k);
    }
    for k in SECRET_FIELDS {
        if let Some(v) = extra.get_mut(*k) {
            *v = Value::Null;
        }
    }
}

/// A 1.x config as read, ready to go back: server bookkeeping dropped and every secret `null`; every other field,
/// named or not, kept.
fn resend_v1(cfg: &V1ProviderConfig) -> V1ProviderConfig {
    let mut c = V1ProviderConfig {
        links: None,
        actions: None,
        created: None,
        created_ts: None,
        uuid: None,
        state: None,
        ..cfg.clone()
    };
    resend_extra(&mut c.extra);
    c
}

/// A 2.x config as read, ready to go back (see [`resend_v1`]).
fn resend_v2(cfg: &V3AuthConfig) -> V3AuthConfig {
    let mut c = V3AuthConfig {
        links: None,
        actions: None,
        base_type: None,
        created: None,
        created_ts: None,
        creator_id: None,
        uuid: None,
        state: None,
        transitioning: None,
        transitioning_message: None,
        status: None,
        ..cfg.clone()
    };
    resend_extra(&mut c.extra);
    c
}

/// The provider settings of the `config` file as a config type (fields the type does not name stay in `extra`).
fn typed_settings<T: serde::de::DeserializeOwned>(def: &WorkflowDef, settings: &Map<String, Value>) -> Result<T> {
    serde_json::from_value(Value::Object(settings.clone())).map_err(|e| Error::Input {
        workflow: def.id.into(),
        input: "config".into(),
        message: format!("the provider settings do not fit the provider config: {e}"),
    })
}

/// The inputs of `access-control-enable` that name files (local runs only: the service refuses them).
const FILE_INPUTS: &[&str] = &["config", "test-password-file", "test-code-file"];

/// The input a filed request records the handle of its held secrets in.
const HELD_INPUT: &str = "held-secrets";

/// The inline inputs that are secrets (never stored: held in memory, see [`crate::held`]).
const INLINE_SECRETS: &[&str] = &["config", "test-password", "test-code"];

async fn file_sha256(def: &WorkflowDef, input_name: &str, path: &str) -> Result<String> {
    use sha2::Digest;
    let text = crate::files::read_input_file(def, input_name, path, false).await?;
    Ok(hex::encode(sha2::Sha256::digest(text.as_bytes())))
}

/// Refuses to run with a file that changed (or moved) since the request was filed and approved.
async fn check_pinned_files(def: &WorkflowDef, inputs: &EnableInputs) -> Result<()> {
    let Some(pins) = &inputs.pinned_files else {
        return Ok(());
    };
    for name in FILE_INPUTS {
        let given = inputs.file(name)?;
        let pin = pins.get(*name);
        let pinned_path = pin.and_then(|p| p.path.as_deref());
        if given != pinned_path {
            return Err(Error::Refused(format!(
                "{}: the `{name}` file is not the one approved; file the request again",
                def.id
            )));
        }
        if let (Some(path), Some(sha)) = (given, pin.and_then(|p| p.sha256.as_deref())) {
            if file_sha256(def, name, path).await? != sha {
                return Err(Error::Refused(format!(
                    "{}: `{path}` changed after the request was approved; nothing was sent. File the request again so approvers see the new content",
                    def.id
                )));
            }
        }
    }
    Ok(())
}

/// Refuses provider settings that set what the workflow decides itself, so they cannot silently enable anything.
fn check_settings(def: &WorkflowDef, map: &Map<String, Value>, whence: &str) -> Result<()> {
    for k in [
        "enabled",
        "accessMode",
        "allowedIdentities",
        "allowedPrincipalIds",
        "type",
        "id",
    ] {
        if map.contains_key(k) {
            return Err(Error::Input {
                workflow: def.id.into(),
                input: "config".into(),
                message: format!("remove `{k}` from {whence}: the workflow sets it (use --mode / --allow)"),
            });
        }
    }
    Ok(())
}

/// The provider settings from the `config` file (JSON or YAML object), read the one safe way
/// ([`crate::files::read_input_file`]).
async fn load_settings(def: &WorkflowDef, inputs: &EnableInputs) -> Result<Map<String, Value>> {
    let Some(path) = inputs.config_path()? else {
        return Ok(Map::new());
    };
    let bad = |message: String| Error::Input {
        workflow: def.id.into(),
        input: "config".into(),
        message,
    };
    let text = crate::files::read_input_file(def, "config", path, false).await?;
    let value: Value =
        serde_norway::from_str(&text).map_err(|e| bad(format!("`{path}` is not a JSON or YAML object: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad(format!(
            "`{path}` must hold one object of provider settings, e.g. {{\"servers\": [\"ad.example.com\"]}}"
        )));
    };
    check_settings(def, &map, &format!("`{path}`"))?;
    let has_secret = map
        .iter()
        .any(|(k, v)| SECRET_FIELDS.contains(&k.as_str()) && v.as_str().is_some_and(|s| !s.is_empty()));
    if has_secret {
        crate::files::read_input_file(def, "config", path, true).await?;
    }
    Ok(map)
}

/// The provider settings given inline (`config` as a JSON object), at most [`crate::files::MAX_GIVEN_FILE`]
/// bytes as JSON. No `config` at all is no settings (a provider that needs none).
fn inline_settings(def: &WorkflowDef, inputs: &EnableInputs) -> Result<Map<String, Value>> {
    let bad = |message: String| Error::Input {
        workflow: def.id.into(),
        input: "config".into(),
        message,
    };
    let map = match &inputs.config {
        None => return Ok(Map::new()),
        Some(ConfigInput::Inline(m)) => m.clone(),
        Some(_) => {
            return Err(bad(
                "with inline test credentials, give the provider settings inline too, as a JSON object".into(),
            ))
        }
    };
    if serde_json::to_vec(&map).map(|b| b.len() as u64).unwrap_or(u64::MAX) > crate::files::MAX_GIVEN_FILE {
        return Err(bad(format!(
            "the settings are larger than {} bytes",
            crate::files::MAX_GIVEN_FILE
        )));
    }
    check_settings(def, &map, "the settings")?;
    Ok(map)
}

/// The test login given inline (`test-password` with `test-user`, or `test-code`); file inputs beside them are
/// refused, so one request never mixes the two ways.
fn inline_test_code(def: &WorkflowDef, inputs: &EnableInputs, p: Provider, g: Generation) -> Result<(String, String)> {
    let bad = |input: &str, message: String| Error::Input {
        workflow: def.id.into(),
        input: input.into(),
        message,
    };
    for f in ["test-password-file", "test-code-file"] {
        if inputs.has(f) {
            return Err(bad(
                f,
                "give the test credentials one way: inline (`test-password`, `test-code`) or as files, not both".into(),
            ));
        }
    }
    if p.tests_with_code(g) {
        let code = inputs.test_code.as_deref().ok_or_else(|| {
            bad(
                "test-code",
                format!("{} tests with an OAuth code: give it as `test-code`", p.title()),
            )
        })?;
        return Ok(("(OAuth code)".into(), code.to_string()));
    }
    let user = need(def, "test-user", &inputs.test_user)?.to_string();
    let pw = match &inputs.test_password {
        Some(s) if !s.is_empty() => s.clone(),
        _ => {
            return Err(bad(
                "test-password",
                "is required with inline settings: the test user's password (held in memory for this request only)"
                    .into(),
            ))
        }
    };
    Ok((user.clone(), format!("{user}:{pw}")))
}

/// The test login: `(user, code)` where code is `user:password` or an OAuth code. With `read` false only the
/// inputs are checked (files exist and are private), nothing is kept.
async fn test_code(
    def: &WorkflowDef,
    inputs: &EnableInputs,
    p: Provider,
    g: Generation,
    read: bool,
) -> Result<(String, String)> {
    if p.tests_with_code(g) {
        let path = need(def, "test-code-file", &inputs.test_code_file)?;
        let code = crate::files::read_input_file(def, "test-code-file", path, true).await?;
        let code = code.trim().to_string();
        if code.is_empty() {
            return Err(Error::Input {
                workflow: def.id.into(),
                input: "test-code-file".into(),
                message: format!("`{path}` is empty; put the OAuth code from the provider's redirect in it"),
            });
        }
        return Ok(("(OAuth code)".into(), if read { code } else { String::new() }));
    }
    let user = need(def, "test-user", &inputs.test_user)?.to_string();
    let path = need(def, "test-password-file", &inputs.test_password_file)?;
    let pw = crate::files::read_input_file(def, "test-password-file", path, true).await?;
    let pw = pw
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&pw)
        .to_string();
    if pw.is_empty() {
        return Err(Error::Input {
            workflow: def.id.into(),
            input: "test-password-file".into(),
            message: format!("`{path}` is empty"),
        });
    }
    Ok((user.clone(), if read { format!("{user}:{pw}") } else { String::new() }))
}

/// 1.x: whether access control is on, and with which provider (`GET /v1/token`, no token needed).
async fn v1_state(exec: &Exec<'_>) -> Result<(bool, Option<Provider>, String)> {
    let (security, name, _) = v1_token_info(exec.session.client.send(&V1TokenGet::new()).await?);
    Ok((
        security,
        if security {
            Provider::from_v1_auth_provider(&name)
        } else {
            None
        },
        name,
    ))
}

/// GitHub moved out of cattle into the auth service in Rancher 1.2 (cattle 55272585b, Aug 2016): from then on its
/// config is `/v1-auth/config`, an envelope naming the provider with GitHub's own settings in `githubConfig`
/// (rancher/rancher-auth-service service/routes.go, model/auth_config.go), and `/v1/githubconfig` is gone.
fn in_auth_service(exec: &Exec<'_>, p: Provider) -> bool {
    p == Provider::GitHub && exec.session.version.at_least(1, 2)
}

/// GitHub's settings inside the auth service's envelope.
const AUTH_SERVICE_GITHUB_FIELDS: [&str; 4] = ["hostname", "scheme", "clientId", "clientSecret"];

/// A provider config as read, on either generation: 1.x configs in the shape every 1.x provider shares
/// (provider-specific fields in `extra`), 2.x ones as `/v3/authconfigs` shows them.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per run, never in a collection
enum Config {
    V1(V1ProviderConfig),
    V2(V3AuthConfig),
}

impl Config {
    fn enabled(&self) -> bool {
        match self {
            Config::V1(c) => c.enabled == Some(true),
            Config::V2(c) => c.enabled == Some(true),
        }
    }

    /// The access mode as the server names it (unrestricted when it names none).
    fn mode(&self) -> String {
        let m = match self {
            Config::V1(c) => c.access_mode.clone(),
            Config::V2(c) => c.access_mode.clone(),
        };
        m.unwrap_or_else(|| "unrestricted".into())
    }

    /// The allowed list: identity objects on 1.x, principal ids on 2.x.
    fn allowed(&self) -> Vec<Identity> {
        match self {
            Config::V1(c) => c.allowed_identities.iter().flatten().map(Identity::from_v1).collect(),
            Config::V2(c) => c
                .allowed_principal_ids
                .iter()
                .flatten()
                .map(|id| Identity::from_principal_id(id))
                .collect(),
        }
    }
}

/// A 1.x provider config operation, its answer and body in the shape every provider shares
/// ([`V1ProviderConfig`]). The operation and path are the provider's own generated request; fields only that provider
/// has ride in `extra`, as do secrets the server shows as `null`, so they go back `null` (the server keeps the stored
/// value) rather than left out.
struct Shared<R> {
    request: R,
    body: Option<V1ProviderConfig>,
}

impl<R: Request> Shared<R> {
    fn get(request: R) -> Self {
        Shared { request, body: None }
    }

    /// The save with `body`, checked against the provider's own config type first (as the server would).
    fn save(request: R, body: V1ProviderConfig) -> Result<Self> {
        let spec = request.spec();
        if let Some(b) = &spec.body {
            let value = serde_json::to_value(&body)
                .map_err(|e| Error::Refused(format!("{}: the body cannot be encoded: {e}", spec.id)))?;
            rancher_api::check_body_shape(b.type_name, &value).map_err(|e| {
                Error::Refused(format!(
                    "{}: the provider settings do not fit type {}: {e}",
                    spec.id, b.type_name
                ))
            })?;
        }
        Ok(Shared {
            request,
            body: Some(body),
        })
    }
}

impl<R: Request> Request for Shared<R> {
    type Response = V1ProviderConfig;
    fn spec(&self) -> &'static rancher_api::OperationSpec {
        self.request.spec()
    }
    fn path_values(&self) -> Vec<&str> {
        self.request.path_values()
    }
    fn query_pairs(&self) -> Vec<(&'static str, String)> {
        self.request.query_pairs()
    }
    fn body_bytes(&self) -> Option<std::result::Result<Vec<u8>, serde_json::Error>> {
        self.body.as_ref().map(serde_json::to_vec)
    }
}

async fn v1_config(exec: &Exec<'_>, p: Provider) -> Result<V1ProviderConfig> {
    let c = &exec.session.client;
    if in_auth_service(exec, p) {
        return Ok(flat_from_envelope(p, c.send(&V1AuthConfigGet::new()).await?));
    }
    Ok(match p {
        Provider::ActiveDirectory => c.send(&Shared::get(V1LdapconfigGet::new())).await?,
        Provider::AzureAd => c.send(&Shared::get(V1AzureadconfigGet::new())).await?,
        Provider::OpenLdap => c.send(&Shared::get(V1OpenldapconfigGet::new())).await?,
        Provider::GitHub => c.send(&Shared::get(V1GithubconfigGet::new())).await?,
        Provider::Local => c.send(&Shared::get(V1LocalauthconfigGet::new())).await?,
    })
}

/// The auth service's envelope seen as the flat provider config the other 1.x providers have.
fn flat_from_envelope(p: Provider, envelope: V1AuthConfig) -> V1ProviderConfig {
    let mut flat = V1ProviderConfig {
        type_: Some(p.v1_path().into()),
        enabled: envelope.enabled,
        access_mode: envelope.access_mode,
        allowed_identities: envelope.allowed_identities,
        ..Default::default()
    };
    if let Some(gh) = envelope.github_config {
        for (key, value) in
            AUTH_SERVICE_GITHUB_FIELDS
                .into_iter()
                .zip([gh.hostname, gh.scheme, gh.client_id, gh.client_secret])
        {
            flat.extra
                .insert(key.into(), value.map(Value::String).unwrap_or(Value::Null));
        }
    }
    flat
}

/// A flat 1.x provider config (as [`flat_from_envelope`] shows it) as the auth service's envelope.
fn envelope_from_flat(p: Provider, flat: V1ProviderConfig) -> V1AuthConfig {
    let text = |k: &str| flat.extra.get(k).and_then(Value::as_str).map(str::to_string);
    let github = V1GithubSettings {
        hostname: text("hostname"),
        scheme: text("scheme"),
        client_id: text("clientId"),
        client_secret: text("clientSecret"),
        ..Default::default()
    };
    V1AuthConfig {
        provider: Some(p.v1_path().into()),
        enabled: flat.enabled,
        access_mode: flat.access_mode,
        allowed_identities: flat.allowed_identities,
        github_config: Some(github),
        ..Default::default()
    }
}

/// Saves a 1.x provider config (`body` flat, as [`v1_config`] shows it), or in a dry run records the request.
async fn v1_save(exec: &mut Exec<'_>, p: Provider, body: V1ProviderConfig) -> Result<()> {
    if in_auth_service(exec, p) {
        exec.send_masked(&V1AuthConfigUpdate::new(envelope_from_flat(p, body)), mask_secrets)
            .await?;
        return Ok(());
    }
    // The provider's own body type is only the request's placeholder: [`Shared`] sends `body`.
    let sent = match p {
        Provider::ActiveDirectory => {
            exec.send_masked(
                &Shared::save(V1LdapconfigUpdate::new(Default::default()), body)?,
                mask_secrets,
            )
            .await
        }
        Provider::AzureAd => {
            exec.send_masked(
                &Shared::save(V1AzureadconfigUpdate::new(Default::default()), body)?,
                mask_secrets,
            )
            .await
        }
        Provider::OpenLdap => {
            exec.send_masked(
                &Shared::save(V1OpenldapconfigUpdate::new(Default::default()), body)?,
                mask_secrets,
            )
            .await
        }
        Provider::GitHub => {
            exec.send_masked(
                &Shared::save(V1GithubconfigUpdate::new(Default::default()), body)?,
                mask_secrets,
            )
            .await
        }
        Provider::Local => {
            exec.send_masked(
                &Shared::save(V1LocalauthconfigUpdate::new(Default::default()), body)?,
                mask_secrets,
            )
            .await
        }
    };
    sent.map(drop)
}

async fn v2_config(exec: &Exec<'_>, p: Provider) -> Result<V3AuthConfig> {
    Ok(exec.session.client.send(&V3AuthconfigsGet::new(p.id())).await?)
}

/// The input the filing sets on a 2.x disable: what Rancher will delete and the code naming it.
const DELETIONS_INPUT: &str = "deletions";

/// What disabling `p` makes Rancher 2.x delete, read now (the provider's cleanup annotation decides whether it
/// deletes anything; see access/cleanup.rs).
async fn cleanup_of(exec: &Exec<'_>, p: Provider) -> Result<super::cleanup::Cleanup> {
    if p == Provider::Local {
        // Local auth is never cleaned up (Rancher does not disable it).
        return Ok(super::cleanup::Cleanup::default());
    }
    let cfg = v2_config(exec, p).await?;
    let annotation = cfg
        .annotations
        .as_ref()
        .and_then(|a| a.get(super::cleanup::CLEANUP_ANNOTATION))
        .map(String::as_str);
    super::cleanup::plan(exec.session, p, annotation).await
}

/// How to give the acknowledgement, on the command line and as a workflow input.
fn ack_hint(code: &str) -> String {
    format!("To go ahead, acknowledge exactly this set: `rancherctl access-control disable --acknowledge {code}` (workflow input acknowledge={code})")
}

async fn config(exec: &Exec<'_>, p: Provider) -> Result<Config> {
    Ok(match generation(exec) {
        Generation::V1 => Config::V1(v1_config(exec, p).await?),
        Generation::V2 => Config::V2(v2_config(exec, p).await?),
    })
}

/// Saves a 2.x provider config (a merge on the server), or in a dry run records the request.
async fn v2_save(exec: &mut Exec<'_>, p: Provider, body: V3AuthConfig) -> Result<()> {
    exec.send_masked(&V3AuthconfigsUpdate::new(p.v2_kind(), p.id(), body), mask_secrets)
        .await
        .map(drop)
}

/// 2.x: the enabled external providers (local auth is always on and not counted).
async fn v2_enabled(exec: &Exec<'_>) -> Result<Vec<(String, V3AuthConfig)>> {
    let items: Vec<V3AuthConfig> = exec
        .session
        .client
        .stream(V3AuthconfigsList::new())
        .try_collect()
        .await?;
    Ok(items
        .into_iter()
        .filter(|c| c.enabled == Some(true))
        .filter_map(|c| c.id.clone().filter(|id| id != "local").map(|id| (id, c)))
        .collect())
}

/// The provider an allow/disallow/disable acts on: the one given, else the one that is on.
async fn target_provider(exec: &Exec<'_>, provider: &Option<String>) -> Result<Provider> {
    let given = provider.as_deref().map(str::parse::<Provider>).transpose()?;
    let on: Vec<Provider> = match generation(exec) {
        Generation::V1 => v1_state(exec).await?.1.into_iter().collect(),
        Generation::V2 => v2_enabled(exec)
            .await?
            .iter()
            .filter_map(|(id, _)| id.parse().ok())
            .collect(),
    };
    match (given, on.as_slice()) {
        (Some(p), _) if on.contains(&p) => Ok(p),
        (Some(p), _) => Err(Error::Refused(format!(
            "{} is not enabled on this server; `rancherctl access-control status` shows what is",
            p.title()
        ))),
        (None, [one]) => Ok(*one),
        (None, []) => Err(Error::Refused(
            "no external auth provider is enabled; enable one first with `rancherctl access-control enable`".into(),
        )),
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
                return Err(Error::Refused(
                    "local auth is always on in Rancher 2.x; there is nothing to enable".into(),
                ));
            }
            if v2_config(exec, p).await?.enabled == Some(true) {
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
pub(crate) async fn search(
    exec: &Exec<'_>,
    p: Option<Provider>,
    name: &str,
    kind: Option<&str>,
) -> Result<Vec<Identity>> {
    let client = &exec.session.client;
    let found: Vec<Identity> = match generation(exec) {
        Generation::V1 => client
            .send(&V1IdentitiesList::new().name(name))
            .await?
            .data
            .iter()
            .map(Identity::from_v1)
            .collect(),
        Generation::V2 => {
            let body = V3PrincipalSearch {
                name: Some(name.into()),
                principal_type: kind.map(str::to_string),
                ..Default::default()
            };
            client
                .send(&V3PrincipalsSearch::new(body))
                .await?
                .data
                .iter()
                .map(Identity::from_v2)
                .collect()
        }
    };
    Ok(found
        .into_iter()
        .filter(|i| p.is_none_or(|p| p.owns_identity(&i.id)))
        .filter(|i| kind.is_none_or(|k| i.kind == k))
        .collect())
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
        Generation::V2 => match exec.session.client.send(&V3PrincipalsGet::new(id)).await {
            Ok(v) => Ok(Identity::from_v2(&v)),
            Err(e) if e.is_not_found() => Err(Error::NotFound(format!("{} has no principal `{id}`", p.title()))),
            Err(e) => Err(e.into()),
        },
        Generation::V1 => {
            // 1.x cannot fetch one identity by id: search by the part after the type and match the id.
            let (t, ext) = id.split_once(':').unwrap_or(("", id));
            let key = ext
                .trim_start_matches("CN=")
                .trim_start_matches("cn=")
                .trim_start_matches("uid=")
                .split(',')
                .next()
                .unwrap_or(ext);
            let found = search(exec, Some(p), key, None).await.unwrap_or_default();
            Ok(found.into_iter().find(|i| i.id == id).unwrap_or_else(|| {
                // Pinned at submit time from a lookup: send it in the minimal form the API accepts.
                let minimal = V1Identity {
                    external_id_type: Some(t.into()),
                    external_id: Some(ext.into()),
                    ..Default::default()
                };
                Identity {
                    id: id.into(),
                    kind: "user".into(),
                    login: String::new(),
                    name: ext.into(),
                    v1: Some(minimal),
                }
            }))
        }
    }
}

/// The ids the caller logs in with (user identity and groups), for the lockout guard.
async fn caller_ids(exec: &Exec<'_>) -> Result<Vec<String>> {
    let client = &exec.session.client;
    Ok(match generation(exec) {
        Generation::V1 => client
            .send(&V1IdentitiesList::new())
            .await?
            .data
            .into_iter()
            .filter_map(|i| i.id)
            .collect(),
        Generation::V2 => client
            .send(&V3PrincipalsList::new())
            .await?
            .data
            .into_iter()
            .filter_map(|i| i.id)
            .collect(),
    })
}

/// An identity as a 1.x allowed list holds it: as the server sent it, or (an id pinned without a lookup) in the
/// minimal form the API accepts.
fn v1_entry(i: &Identity) -> V1Identity {
    i.v1.clone().unwrap_or_else(|| {
        let (t, ext) = i.id.split_once(':').unwrap_or(("", i.id.as_str()));
        V1Identity {
            external_id_type: Some(t.into()),
            external_id: Some(ext.into()),
            ..Default::default()
        }
    })
}

fn ids_of(list: &[Identity]) -> Vec<String> {
    list.iter().map(|i| i.id.clone()).collect()
}

fn status_row(p: &str, enabled: bool, mode: &str, allowed: usize) -> Vec<String> {
    vec![
        p.into(),
        if enabled { "yes".into() } else { "no".into() },
        mode.into(),
        allowed.to_string(),
    ]
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
                    Ok(c) => Config::V1(c),
                    // A provider this server version lacks (Azure AD before 1.1).
                    Err(Error::Api(e)) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                };
                let enabled = on && current == Some(p);
                let mode = cfg.mode();
                let allowed = ids_of(&cfg.allowed());
                rows.push(status_row(p.id(), enabled, &mode, allowed.len()));
                providers.push(json!({"id": p.id(), "title": p.title(), "enabled": enabled, "accessMode": mode, "allowed": allowed}));
            }
        }
        Generation::V2 => {
            security = true;
            let items: Vec<V3AuthConfig> = exec
                .session
                .client
                .stream(V3AuthconfigsList::new())
                .try_collect()
                .await?;
            for c in items {
                let id = c.id.clone().unwrap_or_default();
                let kind = c.type_.clone();
                let cfg = Config::V2(c);
                let enabled = cfg.enabled();
                let mode = cfg.mode();
                let allowed = ids_of(&cfg.allowed());
                rows.push(status_row(&id, enabled, &mode, allowed.len()));
                providers
                    .push(json!({"id": id, "type": kind, "enabled": enabled, "accessMode": mode, "allowed": allowed}));
            }
        }
    }
    let on: Vec<&str> = providers
        .iter()
        .filter(|p| p["enabled"] == json!(true))
        .filter_map(|p| p["id"].as_str())
        .collect();
    let summary = match (g, on.as_slice()) {
        (Generation::V1, []) => {
            format!("access control is OFF on this Rancher {version} server: anyone who reaches it acts as admin")
        }
        (Generation::V2, []) => format!("only local auth is on (Rancher {version})"),
        (_, on) => format!("access control is on with {} (Rancher {version})", on.join(", ")),
    };
    let result = json!({"generation": g, "version": version.to_string(), "security": security, "providers": providers});
    Ok((
        summary,
        result,
        Some(Table {
            columns: ["PROVIDER", "ENABLED", "MODE", "ALLOWED"].map(String::from).to_vec(),
            rows,
        }),
    ))
}

/// The settings and the test login of an enable: held in memory for a request filed with them inline, inline
/// for a run that is not stored (a dry run, or a run needing no approval in this process), else read from the
/// local files pinned when it was filed.
async fn enable_secrets(
    exec: &Exec<'_>,
    def: &WorkflowDef,
    inputs: &EnableInputs,
    raw: &Inputs,
    p: Provider,
    g: Generation,
) -> Result<(Map<String, Value>, (String, String))> {
    if let Some(held) = &inputs.held_secrets {
        if exec.dry_run {
            return Err(Error::Input {
                workflow: def.id.into(),
                input: HELD_INPUT.into(),
                message:
                    "is set by the service when a request is filed; a dry run takes the settings and credentials inline"
                        .into(),
            });
        }
        let handle = held.handle.as_str();
        // The held secrets are bound to the rest of the request exactly as it was stored.
        let mut rest = raw.as_value().clone();
        if let Some(m) = rest.as_object_mut() {
            m.remove(HELD_INPUT);
        }
        let Some(found) = crate::held::take(handle, &crate::held::digest(&rest)) else {
            return Err(Error::Refused(format!(
                "{}: the provider settings and test credentials of this request were held only in the memory of the service that filed it, \
                 and are gone (that service restarted, another replica ran the request, or {} h passed); nothing was sent. File the request again",
                def.id,
                crate::held::HOLD_FOR.as_secs() / 3600
            )));
        };
        return Ok((found.settings, found.test));
    }
    if inputs.given_inline() {
        return Ok((inline_settings(def, inputs)?, inline_test_code(def, inputs, p, g)?));
    }
    check_pinned_files(def, inputs).await?;
    Ok((
        load_settings(def, inputs).await?,
        test_code(def, inputs, p, g, true).await?,
    ))
}

async fn enable(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &EnableInputs, raw: &Inputs) -> Result<Ran> {
    let p: Provider = need(def, "provider", &inputs.provider)?.parse()?;
    let mode = mode_input(&inputs.mode)?.unwrap_or(AccessMode::Unrestricted);
    let g = generation(exec);
    check_mode(p, mode, exec.session.version)?;
    let (settings, (tester, code)) = enable_secrets(exec, def, inputs, raw, p, g).await?;
    refuse_if_on(exec, p).await?;
    let entries = list_input(&inputs.allow);
    let left_off = format!(
        "{} settings are saved but the provider is still disabled, so nobody is locked out; fix the settings or the test credentials and run the enable again",
        p.title()
    );
    match g {
        Generation::V1 => {
            // 1. Save the settings, disabled.
            let mut first: V1ProviderConfig = typed_settings(def, &settings)?;
            first.enabled = Some(false);
            first.access_mode = Some("unrestricted".into());
            first.allowed_identities = Some(Vec::new());
            v1_save(exec, p, first).await?;
            // 2. Prove a login works with the saved settings.
            let (user, _) = code.split_once(':').unwrap_or((code.as_str(), ""));
            let login = V1TokenRequest {
                code: Some(code.clone()),
                ..Default::default()
            };
            let token = match exec.send_masked(&V1TokenCreate::new(login), mask_secrets).await {
                Ok(t) => t,
                Err(e) => {
                    return Err(Error::TestFailed(format!(
                        "step 2 of 3, the test login as `{user}`, failed: {e}. {left_off}"
                    )))
                }
            };
            // 3. Enable, with the allowed identities (the tester's own identity always among them).
            let mut allowed = if exec.dry_run {
                resolve(exec, p, &entries).await.unwrap_or_default()
            } else {
                resolve(exec, p, &entries).await?
            };
            let tester_identity = token
                .as_ref()
                .and_then(|t| t.user_identity.as_ref())
                .map(Identity::from_v1);
            if mode != AccessMode::Unrestricted {
                if let Some(t) = &tester_identity {
                    if !allowed.iter().any(|i| i.id == t.id) {
                        allowed.push(t.clone());
                    }
                }
            }
            let kept: Map<String, Value> = settings
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if SECRET_FIELDS.contains(&k.as_str()) {
                            Value::Null
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect();
            let mut last: V1ProviderConfig = typed_settings(def, &kept)?;
            last.enabled = Some(true);
            last.access_mode = Some(mode.as_str().into());
            last.allowed_identities = Some(allowed.iter().map(v1_entry).collect());
            v1_save(exec, p, last).await?;
            let ids = ids_of(&allowed);
            if exec.dry_run {
                return Ok((
                    format!(
                        "would enable {} in mode {mode} after a test login as `{tester}`",
                        p.title()
                    ),
                    json!({"provider": p, "mode": mode, "allowed": ids}),
                    None,
                ));
            }
            let (on, current, _) = v1_state(exec).await?;
            if !(on && current == Some(p)) {
                return Err(Error::NotFound(format!("the server did not report {} as enabled after the final save; run `rancherctl access-control status`", p.title())));
            }
            let account = token.as_ref().and_then(|t| t.account_id.clone()).unwrap_or_default();
            let kind = token.as_ref().and_then(|t| t.user_type.clone()).unwrap_or_default();
            Ok((
                format!("{} is on in mode {mode} ({} allowed identities); the test login `{user}` is account {account} ({kind})", p.title(), ids.len()),
                json!({"provider": p, "mode": mode, "allowed": ids, "tested_as": {"login": user, "account": account, "kind": kind}}),
                None,
            ))
        }
        Generation::V2 => {
            // 1. Save the settings, disabled.
            let mut first: V3AuthConfig = typed_settings(def, &settings)?;
            first.enabled = Some(false);
            v2_save(exec, p, first).await?;
            // 2 and 3. testAndApply saves and enables only when the test login works (Rancher adds the tester's
            // principal to the allowed list itself).
            let ids_now: Vec<Identity> = {
                let mut v = Vec::new();
                for e in entries.iter().filter(|e| p.owns_identity(e)) {
                    v.push(resolve_id(exec, p, e).await?);
                }
                v
            };
            let mut cfg: V3AuthConfig = typed_settings(def, &settings)?;
            cfg.enabled = Some(true);
            cfg.access_mode = Some(mode.as_str().into());
            cfg.allowed_principal_ids = Some(ids_of(&ids_now));
            let key = match p {
                Provider::GitHub => "githubConfig",
                Provider::ActiveDirectory => "activeDirectoryConfig",
                Provider::OpenLdap => "ldapConfig",
                _ => "config",
            };
            // The action's input is typed `any` in the endpoint list: the config under the provider's key, and
            // the test credentials.
            let mut body = json!({ key: cfg, "enabled": true });
            if p.tests_with_code(g) {
                body["code"] = json!(code);
            } else {
                let (u, pw) = code.split_once(':').unwrap_or((code.as_str(), ""));
                body["username"] = json!(u);
                body["password"] = json!(pw);
            }
            if let Err(e) = exec
                .send_masked(&V3AuthconfigsTestAndApply::new(p.v2_kind(), p.id(), body), mask_secrets)
                .await
            {
                return Err(Error::TestFailed(format!(
                    "the test login as `{tester}` failed: {e}. {left_off}"
                )));
            }
            // Names can be searched only once the provider is on.
            let names: Vec<String> = entries.iter().filter(|e| !p.owns_identity(e)).cloned().collect();
            let mut ids = ids_of(&ids_now);
            if !names.is_empty() && !exec.dry_run {
                let more = resolve(exec, p, &names).await?;
                let cfg = v2_config(exec, p).await?;
                let mut all = ids_of(&Config::V2(cfg.clone()).allowed());
                for i in more {
                    if !all.contains(&i.id) {
                        all.push(i.id);
                    }
                }
                let mut body = resend_v2(&cfg);
                body.allowed_principal_ids = Some(all);
                v2_save(exec, p, body).await?;
            }
            if exec.dry_run {
                return Ok((
                    format!(
                        "would enable {} in mode {mode} after a test login as `{tester}`",
                        p.title()
                    ),
                    json!({"provider": p, "mode": mode, "allowed": ids}),
                    None,
                ));
            }
            let cfg = Config::V2(v2_config(exec, p).await?);
            if !cfg.enabled() {
                return Err(Error::NotFound(format!("the server did not report {} as enabled after testAndApply; run `rancherctl access-control status`", p.title())));
            }
            ids = ids_of(&cfg.allowed());
            Ok((
                format!(
                    "{} is on in mode {mode} ({} allowed principals); tested as `{tester}`",
                    p.title(),
                    ids.len()
                ),
                json!({"provider": p, "mode": mode, "allowed": ids, "tested_as": {"login": tester}}),
                None,
            ))
        }
    }
}

async fn change_allowed(
    exec: &mut Exec<'_>,
    def: &WorkflowDef,
    inputs: &ChangeAllowedInputs,
    add: bool,
) -> Result<Ran> {
    let p = target_provider(exec, &inputs.provider).await?;
    let entries = list_input(&inputs.identities);
    if entries.is_empty() {
        return Err(Error::Input {
            workflow: def.id.into(),
            input: "identities".into(),
            message: "is required: names, logins or ids, comma-separated".into(),
        });
    }
    let cfg = config(exec, p).await?;
    let old_mode: AccessMode = cfg.mode().parse()?;
    let mode = mode_input(&inputs.mode)?.unwrap_or(old_mode);
    check_mode(p, mode, exec.session.version)?;
    let mut list = cfg.allowed();
    let before = ids_of(&list);
    let mut changed = Vec::new();
    if add {
        for i in resolve(exec, p, &entries).await? {
            if !before.contains(&i.id) {
                changed.push(i.id.clone());
                list.push(i);
            }
        }
    } else {
        // Removal matches the current list first (an identity no longer in the directory can still be removed).
        for e in &entries {
            let hit = match list.iter().find(|i| i.is_exactly(e)) {
                Some(i) => Some(i.id.clone()),
                None if p.owns_identity(e) => None,
                None => resolve(exec, p, std::slice::from_ref(e))
                    .await
                    .ok()
                    .and_then(|v| v.into_iter().next())
                    .map(|i| i.id)
                    .filter(|id| before.contains(id)),
            };
            match hit {
                Some(id) => {
                    list.retain(|x| x.id != id);
                    changed.push(id);
                }
                None => tracing::info!(identity = %e, "not in the allowed list; nothing to remove"),
            }
        }
    }
    let after = ids_of(&list);
    if changed.is_empty() && mode == old_mode {
        let what = if add {
            "already allowed"
        } else {
            "not in the allowed list"
        };
        return Ok((
            format!("nothing to change: {} {what} for {}", entries.join(", "), p.title()),
            json!({"provider": p, "mode": mode, "changed": [], "allowed": after}),
            None,
        ));
    }
    // Lockout guard: the caller must keep a way in through this provider.
    if mode != AccessMode::Unrestricted {
        let mine: Vec<String> = caller_ids(exec)
            .await?
            .into_iter()
            .filter(|i| p.owns_identity(i))
            .collect();
        if !mine.is_empty() && !mine.iter().any(|i| after.contains(i)) {
            return Err(Error::Refused(format!(
                "this would lock you out: in mode `{mode}` none of your {} identities ({}) would remain allowed; allow one of them too",
                p.title(),
                mine.join(", ")
            )));
        }
    }
    match cfg {
        Config::V1(c) => {
            let mut body = resend_v1(&c);
            body.access_mode = Some(mode.as_str().into());
            body.allowed_identities = Some(list.iter().map(v1_entry).collect());
            v1_save(exec, p, body).await?;
        }
        Config::V2(c) => {
            let mut body = resend_v2(&c);
            body.access_mode = Some(mode.as_str().into());
            body.allowed_principal_ids = Some(after.clone());
            v2_save(exec, p, body).await?;
        }
    }
    let verb = match (add, exec.dry_run) {
        (true, false) => "allowed",
        (false, false) => "removed",
        (true, true) => "would allow",
        (false, true) => "would remove",
    };
    let what = if changed.is_empty() {
        format!("mode {old_mode} -> {mode}")
    } else {
        changed.join(", ")
    };
    Ok((
        format!(
            "{} {verb} {what} (mode {mode}, {} allowed); stored secrets kept",
            p.title(),
            after.len()
        ),
        json!({"provider": p, "mode": mode, "changed": changed, "allowed": after}),
        None,
    ))
}

async fn disable(exec: &mut Exec<'_>, _def: &WorkflowDef, inputs: &DisableInputs) -> Result<Ran> {
    let g = generation(exec);
    let p = match target_provider(exec, &inputs.provider).await {
        Ok(p) => p,
        Err(Error::Refused(m)) if m.starts_with("no external auth provider is enabled") => {
            let what = if g == Generation::V1 {
                "access control is already off"
            } else {
                "only local auth is on, and it cannot be turned off"
            };
            return Ok((format!("nothing to disable: {what}"), json!({"disabled": null}), None));
        }
        Err(e) => return Err(e),
    };
    match g {
        Generation::V1 => {
            let mut body = resend_v1(&v1_config(exec, p).await?);
            body.enabled = Some(false);
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
            // Disabling is destructive in Rancher 2.x (see access/cleanup.rs): read what goes, show it in the plan,
            // and go ahead only with the acknowledgement code of exactly that set.
            let cleanup = cleanup_of(exec, p).await?;
            let code = cleanup.code();
            let ack = inputs.acknowledge.as_deref();
            if !exec.dry_run && cleanup.deletes() && ack != Some(code.as_str()) {
                return Err(Error::Refused(format!(
                    "disabling {} makes Rancher delete what its provider granted: {}. Nothing was changed. {}{}",
                    p.title(),
                    cleanup.describe(),
                    ack_hint(&code),
                    if ack.is_some() {
                        " (the code given names a different set: the server changed since the plan)"
                    } else {
                        ""
                    }
                )));
            }
            // What approvers were shown must still be what goes.
            let pinned = inputs.deletions.as_ref().and_then(|d| d.acknowledge.as_deref());
            if !exec.dry_run && pinned.is_some_and(|c| c != code) {
                return Err(Error::Refused(format!(
                    "what disabling {} deletes changed since the request was approved: now {}. Nothing was changed; file the request again so approvers see the new set",
                    p.title(),
                    cleanup.describe()
                )));
            }
            exec.send_masked(&V3AuthconfigsDisable::new(p.v2_kind(), p.id()), mask_secrets)
                .await?;
            let verb = if exec.dry_run { "would disable" } else { "disabled" };
            Ok((
                format!(
                    "{verb} {}: its users can no longer log in; {}; local users keep their accounts{}",
                    p.title(),
                    cleanup.describe(),
                    if exec.dry_run && cleanup.deletes() {
                        format!(" (acknowledge={code})")
                    } else {
                        String::new()
                    }
                ),
                json!({"disabled": p, "cleanup": cleanup, "acknowledge": code}),
                None,
            ))
        }
    }
}

async fn switch_plan(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &SwitchPlanInputs) -> Result<Ran> {
    let to: Provider = need(def, "to", &inputs.to)?.parse()?;
    let g = generation(exec);
    let warning = "Rancher advises against switching providers: existing accounts keep identities the new provider cannot resolve";
    match g {
        Generation::V1 => {
            let (_, current, _) = v1_state(exec).await?;
            let mut affected: Vec<V1Account> = Vec::new();
            for kind in ["admin", "user"] {
                let items: Vec<V1Account> = exec
                    .session
                    .client
                    .stream(V1AccountsList::new().kind(kind))
                    .try_collect()
                    .await?;
                affected.extend(items.into_iter().filter(|a| {
                    !to.v1_identity_types()
                        .contains(&a.external_id_type.as_deref().unwrap_or_default())
                }));
            }
            let rows = affected
                .iter()
                .map(|a| {
                    [&a.id, &a.kind, &a.name, &a.external_id_type, &a.external_id]
                        .into_iter()
                        .map(|x| x.clone().unwrap_or_default())
                        .collect()
                })
                .collect();
            let admins = affected.iter().filter(|a| a.kind.as_deref() == Some("admin")).count();
            let from = current
                .map(|c| c.title())
                .unwrap_or("no provider (access control is off)");
            Ok((
                format!("switching from {from} to {}: {} accounts ({admins} admins) would lose their identity and must be re-mapped (edit externalId/externalIdType). {warning}", to.title(), affected.len()),
                json!({"from": current, "to": to, "warning": warning, "accounts": affected}),
                Some(Table { columns: ["ACCOUNT", "KIND", "NAME", "IDENTITY TYPE", "EXTERNAL ID"].map(String::from).to_vec(), rows }),
            ))
        }
        Generation::V2 => {
            let from: Vec<Provider> = v2_enabled(exec)
                .await?
                .iter()
                .filter_map(|(id, _)| id.parse().ok())
                .filter(|p| *p != to)
                .collect();
            let users: Vec<V3User> = exec.session.client.stream(V3UsersList::new()).try_collect().await?;
            let admins = exec.session.admin_user_ids().await?;
            let mut rows = Vec::new();
            let mut affected = Vec::new();
            for u in &users {
                let ids: Vec<String> = u.principal_ids.clone().unwrap_or_default();
                let loses = ids.iter().any(|i| from.iter().any(|p| p.owns_identity(i)))
                    && !ids.iter().any(|i| to.owns_identity(i));
                if loses {
                    let id = u.id.clone().unwrap_or_default();
                    let admin = admins.contains(&id);
                    rows.push(vec![
                        id.clone(),
                        u.username.clone().unwrap_or_default(),
                        if admin { "yes".into() } else { String::new() },
                        ids.join(" "),
                    ]);
                    affected.push(json!({"id": id, "username": u.username, "admin": admin, "principalIds": ids}));
                }
            }
            let from_names = if from.is_empty() {
                "local auth only".to_string()
            } else {
                from.iter().map(|p| p.title()).collect::<Vec<_>>().join(", ")
            };
            // Switching means disabling the current provider first, and Rancher then deletes what it granted:
            // listed here with the code the disable needs.
            let mut cleanup = Map::new();
            let mut said = Vec::new();
            for p in &from {
                let c = cleanup_of(exec, *p).await?;
                let code = c.code();
                said.push(if c.deletes() {
                    format!(
                        " Disabling {}: {}; `rancherctl access-control disable --acknowledge {code}`.",
                        p.title(),
                        c.describe()
                    )
                } else {
                    format!(" Disabling {}: {}.", p.title(), c.describe())
                });
                let mut v = serde_json::to_value(&c).unwrap_or(Value::Null);
                v["acknowledge"] = json!(code);
                cleanup.insert(p.id().to_string(), v);
            }
            Ok((
                format!("switching from {from_names} to {}: {} users would lose their external identity and must be re-mapped.{} {warning}", to.title(), affected.len(), said.concat()),
                json!({"from": from, "to": to, "warning": warning, "users": affected, "cleanup": cleanup}),
                Some(Table { columns: ["USER", "USERNAME", "ADMIN", "PRINCIPALS"].map(String::from).to_vec(), rows }),
            ))
        }
    }
}

async fn search_workflow(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &SearchInputs) -> Result<Ran> {
    let name = need(def, "name", &inputs.name)?;
    let kind = match inputs.kind.as_deref() {
        None => None,
        Some(k @ ("user" | "group")) => Some(k),
        Some(other) => {
            return Err(Error::Input {
                workflow: def.id.into(),
                input: "type".into(),
                message: format!("`{other}` is neither `user` nor `group`"),
            })
        }
    };
    let found = search(exec, None, name, kind).await?;
    let rows = found
        .iter()
        .map(|i| vec![i.id.clone(), i.kind.clone(), i.login.clone(), i.name.clone()])
        .collect();
    Ok((
        format!("{} identities match `{name}`", found.len()),
        serde_json::to_value(&found).unwrap_or(Value::Null),
        Some(Table {
            columns: ["ID", "TYPE", "LOGIN", "NAME"].map(String::from).to_vec(),
            rows,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth_and_nulls_stay_null() {
        let v = json!({"code": "jdoe:pw", "ldapConfig": {"serviceAccountPassword": "s3cret", "server": "ad"}, "clientSecret": null});
        let m = mask_secrets(&v);
        assert_eq!(
            m,
            json!({"code": "<redacted>", "ldapConfig": {"serviceAccountPassword": "<redacted>", "server": "ad"}, "clientSecret": null})
        );
    }

    #[test]
    fn entries_split_on_commas_but_ldap_ids_stay_whole() {
        assert_eq!(
            split_entries("Domain Admins, ldap_user:CN=Ann Lee,OU=Users,DC=example,DC=com ,mlee,"),
            vec![
                "Domain Admins",
                "ldap_user:CN=Ann Lee,OU=Users,DC=example,DC=com",
                "mlee"
            ]
        );
        assert_eq!(
            split_entries("activedirectory_group://CN=Eng,OU=Groups,DC=x"),
            vec!["activedirectory_group://CN=Eng,OU=Groups,DC=x"]
        );
    }

    #[test]
    fn a_config_goes_back_with_secrets_null_bookkeeping_dropped_and_unknown_fields_kept() {
        let cfg: V3AuthConfig = serde_json::from_value(json!({"id": "github", "type": "githubConfig", "links": {"self": "x"}, "actions": {}, "baseType": "authConfig",
            "created": "2026-01-01T00:00:00Z", "status": {"conditions": []}, "clientSecret": "x", "clientId": "abc", "accessMode": "required", "futureField": {"a": 1}}))
        .unwrap();
        let b = serde_json::to_value(resend_v2(&cfg)).unwrap();
        assert_eq!(
            b,
            json!({"id": "github", "type": "githubConfig", "clientSecret": null, "clientId": "abc", "accessMode": "required", "futureField": {"a": 1}})
        );
        let v1: V1ProviderConfig = serde_json::from_value(json!({"id": null, "type": "ldapconfig", "links": {"self": "x"}, "actions": {}, "enabled": true, "server": "ad",
            "serviceAccountPassword": "s3cret", "allowedIdentities": [{"externalId": "x", "externalIdType": "ldap_user", "login": "ann", "kept": 1}], "transitioning": "no"}))
        .unwrap();
        let b = serde_json::to_value(resend_v1(&v1)).unwrap();
        assert_eq!(
            b,
            json!({"type": "ldapconfig", "enabled": true, "server": "ad", "serviceAccountPassword": null,
                   "allowedIdentities": [{"externalId": "x", "externalIdType": "ldap_user", "login": "ann", "kept": 1}]})
        );
    }

    #[test]
    fn the_auth_service_envelope_reads_flat_and_goes_back_as_an_envelope() {
        let envelope: V1AuthConfig = serde_json::from_value(json!({"id": null, "type": "config", "links": {}, "actions": {}, "provider": "githubconfig", "enabled": true,
            "accessMode": "restricted", "allowedIdentities": [{"externalId": "9", "externalIdType": "github_org", "name": "eng"}],
            "githubConfig": {"type": "githubconfig", "hostname": "github.example.com", "scheme": "https://", "clientId": "abc", "clientSecret": ""},
            "shibbolethConfig": {}}))
        .unwrap();
        let flat = flat_from_envelope(Provider::GitHub, envelope);
        assert_eq!(
            serde_json::to_value(&flat).unwrap(),
            json!({"type": "githubconfig", "enabled": true, "accessMode": "restricted", "allowedIdentities": [{"externalId": "9", "externalIdType": "github_org", "name": "eng"}],
                   "hostname": "github.example.com", "scheme": "https://", "clientId": "abc", "clientSecret": ""})
        );
        // Saved: the secret goes back null (the stored one is kept), GitHub's settings inside `githubConfig`.
        let mut body = resend_v1(&flat);
        body.enabled = Some(false);
        let back = serde_json::to_value(envelope_from_flat(Provider::GitHub, body)).unwrap();
        assert_eq!(
            back,
            json!({"provider": "githubconfig", "enabled": false, "accessMode": "restricted",
                   "allowedIdentities": [{"externalId": "9", "externalIdType": "github_org", "name": "eng"}],
                   "githubConfig": {"hostname": "github.example.com", "scheme": "https://", "clientId": "abc"}})
        );
        // No `githubConfig` in the answer: the flat config has no GitHub settings, and the envelope an empty one.
        let bare = flat_from_envelope(
            Provider::GitHub,
            V1AuthConfig {
                provider: Some("githubconfig".into()),
                ..Default::default()
            },
        );
        assert!(bare.extra.is_empty() && bare.enabled.is_none());
    }

    #[test]
    fn a_1x_save_sends_the_shared_shape_on_the_providers_own_operation() {
        let cfg: V1ProviderConfig = serde_json::from_value(
            json!({"type": "ldapconfig", "server": "ad", "port": 389, "serviceAccountPassword": null,
            "enabled": false, "futureField": "kept"}),
        )
        .unwrap();
        let save = Shared::save(V1LdapconfigUpdate::new(Default::default()), cfg.clone()).unwrap();
        assert_eq!(save.spec().id, rancher_api::ids::V1_LDAPCONFIG_UPDATE);
        let sent: Value = serde_json::from_slice(&save.body_bytes().unwrap().unwrap()).unwrap();
        assert_eq!(
            sent,
            json!({"type": "ldapconfig", "server": "ad", "port": 389, "serviceAccountPassword": null, "enabled": false, "futureField": "kept"})
        );
        let mut bad = cfg;
        bad.extra.insert("port".into(), json!("not a port"));
        let e = Shared::save(V1LdapconfigUpdate::new(Default::default()), bad)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("do not fit type V1LdapConfig"), "{e}");
        assert!(Shared::get(V1LdapconfigGet::new()).body_bytes().is_none());
    }

    #[test]
    fn allowed_lists_read_as_identities_and_pinned_ids_go_back_minimal() {
        let v2 = Config::V2(V3AuthConfig {
            allowed_principal_ids: Some(vec!["github_user://1".into()]),
            access_mode: None,
            ..Default::default()
        });
        assert_eq!(ids_of(&v2.allowed()), ["github_user://1"]);
        assert_eq!(v2.mode(), "unrestricted");
        let pinned = Identity::from_principal_id("ldap_user:CN=Ann,DC=x");
        assert_eq!(
            serde_json::to_value(v1_entry(&pinned)).unwrap(),
            json!({"externalIdType": "ldap_user", "externalId": "CN=Ann,DC=x"})
        );
    }
}

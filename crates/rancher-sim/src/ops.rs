//! Surface-independent object operations (create, update, delete) with Rancher's validation, webhook
//! checks and authorization. The RK-API and norman layers translate their wire forms to these.

use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::auth::{escalation_message, forbidden_message, Authz, Caller, Rule};
use crate::ids;
use crate::seed::{insert_new, SimUser};
use crate::state::{get_path, key_of, now_ms, now_rfc3339, s, set_path, Kind, Store, Verb};

/// One field-level cause of an `Invalid` error.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

/// A failed operation, rendered by each surface in its own error shape.
#[derive(Debug, Clone)]
pub(crate) enum ApiErr {
    NotFound {
        kind: Kind,
        name: String,
    },
    AlreadyExists {
        kind: Kind,
        name: String,
    },
    Conflict {
        kind: Kind,
        name: String,
    },
    Forbidden {
        verb: &'static str,
        kind: Kind,
        name: Option<String>,
        namespace: Option<String>,
        user: String,
    },
    Invalid {
        kind: Kind,
        name: String,
        causes: Vec<Cause>,
    },
    BadRequest(String),
    /// An admission webhook denial (`code` 400, 403 or 409).
    Webhook {
        kind: Kind,
        code: u16,
        message: String,
    },
    /// An admission webhook denial with its own `reason` (the apiserver keeps the webhook's reason and turns a
    /// missing code into 400: k8s.io/apiserver pkg/admission/plugin/webhook/errors/statuserror.go `ToStatusErr`).
    Denied {
        kind: Kind,
        code: u16,
        reason: &'static str,
        message: String,
    },
}

impl ApiErr {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiErr::NotFound { .. } => 404,
            ApiErr::AlreadyExists { .. } | ApiErr::Conflict { .. } => 409,
            ApiErr::Forbidden { .. } => 403,
            ApiErr::Invalid { .. } => 422,
            ApiErr::BadRequest(_) => 400,
            ApiErr::Webhook { code, .. } | ApiErr::Denied { code, .. } => *code,
        }
    }

    /// Kubernetes `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiErr::NotFound { .. } => "NotFound",
            ApiErr::AlreadyExists { .. } => "AlreadyExists",
            ApiErr::Conflict { .. } => "Conflict",
            ApiErr::Forbidden { .. } => "Forbidden",
            ApiErr::Invalid { .. } => "Invalid",
            ApiErr::BadRequest(_) => "BadRequest",
            ApiErr::Webhook { code: 403, .. } => "Forbidden",
            ApiErr::Webhook { code: 409, .. } => "Conflict",
            ApiErr::Webhook { .. } => "BadRequest",
            ApiErr::Denied { reason, .. } => reason,
        }
    }

    /// Human-readable message, as Kubernetes words it.
    pub fn message(&self) -> String {
        match self {
            ApiErr::NotFound { kind, name } => {
                let i = kind.info();
                format!("{}.{} \"{}\" not found", i.plural, i.group, name)
            }
            ApiErr::AlreadyExists { kind, name } => {
                let i = kind.info();
                format!("{}.{} \"{}\" already exists", i.plural, i.group, name)
            }
            ApiErr::Conflict { kind, name } => {
                let i = kind.info();
                format!(
                    "Operation cannot be fulfilled on {}.{} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                    i.plural, i.group, name
                )
            }
            ApiErr::Forbidden {
                verb,
                kind,
                name,
                namespace,
                user,
            } => forbidden_message(user, verb, *kind, name.as_deref(), namespace.as_deref()),
            ApiErr::Invalid { kind, name, causes } => {
                let parts: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
                let detail = if parts.len() == 1 {
                    parts[0].clone()
                } else {
                    format!("[{}]", parts.join(", "))
                };
                format!("{} \"{}\" is invalid: {}", kind.info().kind_name, name, detail)
            }
            ApiErr::BadRequest(m) => m.clone(),
            ApiErr::Webhook { kind, message, .. } | ApiErr::Denied { kind, message, .. } => {
                let i = kind.info();
                format!(
                    "admission webhook \"rancher.cattle.io.{}.{}\" denied the request: {}",
                    i.plural, i.group, message
                )
            }
        }
    }

    /// Kubernetes `details`.
    pub fn details(&self) -> Option<Value> {
        let kd = |kind: &Kind, name: &str| {
            let i = kind.info();
            json!({"name": name, "group": i.group, "kind": i.plural})
        };
        match self {
            ApiErr::NotFound { kind, name }
            | ApiErr::AlreadyExists { kind, name }
            | ApiErr::Conflict { kind, name } => Some(kd(kind, name)),
            ApiErr::Forbidden { kind, name, .. } => Some(kd(kind, name.as_deref().unwrap_or(""))),
            ApiErr::Invalid { kind, name, causes } => {
                let mut d = json!({"name": name, "group": kind.info().group, "kind": kind.info().kind_name});
                d["causes"] = Value::Array(
                    causes
                        .iter()
                        .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                        .collect(),
                );
                Some(d)
            }
            _ => None,
        }
    }
}

fn required(kind: Kind, name: &str, fields: &[&str], obj: &Value) -> Result<(), ApiErr> {
    let causes: Vec<Cause> = fields
        .iter()
        .filter(|f| get_path(obj, f).is_none_or(|v| v.is_null() || v.as_str() == Some("")))
        .map(|f| Cause {
            field: f.to_string(),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        })
        .collect();
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiErr::Invalid {
            kind,
            name: name.to_string(),
            causes,
        })
    }
}

fn webhook(kind: Kind, message: impl Into<String>) -> ApiErr {
    ApiErr::Webhook {
        kind,
        code: 400,
        message: message.into(),
    }
}

/// Kubernetes' own escalation text (k8s.io/kubernetes pkg/registry/rbac/validation `ConfirmNoEscalation`), without
/// the "errors due to escalation" prefix Rancher's GR/GRB/RT responses add.
fn k8s_escalation(caller: &Caller, missing: &[Rule]) -> String {
    let m = escalation_message(&caller.user_id, missing);
    m.strip_prefix("errors due to escalation: ").unwrap_or(&m).to_string()
}

/// The webhook's escalation refusal (rancher/webhook pkg/admission `ResponseFailedEscalation`: 403).
fn escalation(kind: Kind, caller: &Caller, missing: &[Rule]) -> ApiErr {
    ApiErr::Webhook {
        kind,
        code: 403,
        message: escalation_message(&caller.user_id, missing),
    }
}

/// Refuses granting `wanted` (in `namespace`) unless the caller holds it or has `bypass` on `on`/`name`.
fn confirm_no_escalation(
    store: &Store,
    caller: &Caller,
    kind: Kind,
    wanted: &[Rule],
    namespace: &str,
    bypass: (&str, Kind, &str),
) -> Result<(), ApiErr> {
    let authz = Authz::new(store, caller);
    if authz.has_verb(bypass.0, bypass.1, bypass.2) {
        return Ok(());
    }
    let missing = authz.not_held(wanted, namespace);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(escalation(kind, caller, &missing))
    }
}

/// Kubernetes' rule shape checks as rancher/webhook resources/common `ValidateRules` runs them (k8s.io/kubernetes
/// pkg/apis/rbac/validation `ValidatePolicyRule`, not namespaced): a 400 naming `path[i]` and the field, one line per
/// rule with errors (Go's `errors.Join`), several errors of one rule as `[a, b]` (`ToAggregate`). Rancher 2.13
/// (webhook v0.9); older webhooks checked only for verbs, with another text (not modelled).
fn check_rule_shapes(kind: Kind, path: &str, rules: Option<&Value>) -> Result<(), ApiErr> {
    let Some(rules) = rules.and_then(Value::as_array) else {
        return Ok(());
    };
    let list = |r: &Value, f: &str| -> Vec<String> {
        r.get(f)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut lines = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut errs = Vec::new();
        if list(r, "verbs").is_empty() {
            errs.push(format!(
                "{p}.verbs: Required value: verbs must contain at least one value"
            ));
        }
        let urls = list(r, "nonResourceURLs");
        if !urls.is_empty() {
            if ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|f| !list(r, f).is_empty())
            {
                let shown: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
                errs.push(format!(
                    "{p}.nonResourceURLs: Invalid value: []string{{{}}}: rules cannot apply to both regular resources and non-resource URLs",
                    shown.join(", ")
                ));
            }
        } else {
            if list(r, "apiGroups").is_empty() {
                errs.push(format!(
                    "{p}.apiGroups: Required value: resource rules must supply at least one api group"
                ));
            }
            if list(r, "resources").is_empty() {
                errs.push(format!(
                    "{p}.resources: Required value: resource rules must supply at least one resource"
                ));
            }
        }
        match errs.len() {
            0 => {}
            1 => lines.push(errs.remove(0)),
            _ => lines.push(format!("[{}]", errs.join(", "))),
        }
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(webhook(kind, lines.join("\n")))
    }
}

/// The raw rules of a role template and of every template it inherits (depth first, each once), as rancher/webhook
/// auth `RoleTemplateResolver.RulesFromTemplate` gathers them. `None` names an inherited template that does not exist.
fn template_rules(store: &Store, rt: &Value, seen: &mut BTreeSet<String>, out: &mut Vec<Value>) -> Result<(), String> {
    out.extend(rt.get("rules").and_then(Value::as_array).into_iter().flatten().cloned());
    for n in rt
        .get("roleTemplateNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !seen.insert(n.to_string()) {
            continue;
        }
        let Some(next) = store.get(Kind::RoleTemplate, n) else {
            return Err(n.to_string());
        };
        template_rules(store, next, seen, out)?;
    }
    Ok(())
}

/// rancher/webhook roletemplate/validator.go `Admit` after the field checks, on every create and content update
/// (release/v0.4 to v0.9, Rancher 2.8-2.13), in its order: `checkCircularRef` (400; an inherited template that does
/// not exist fails the webhook: 500), `externalRules` only on external templates (400), the rule shapes of the rules
/// with those inherited (400), the `escalate` bypass, externalRules without `escalate` (403), then Kubernetes'
/// escalation check on the rules with those inherited (403, its text with no prefix).
fn check_role_template(store: &Store, caller: &Caller, name: &str, rt: &Value) -> Result<(), ApiErr> {
    let kind = Kind::RoleTemplate;
    let inherits = |v: &Value| -> Vec<String> {
        v.get("roleTemplateNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let missing_template = |n: &str| ApiErr::Denied {
        kind,
        code: 500,
        reason: "InternalError",
        message: format!(
            "unable to get roletemplate {n} with error roletemplates.management.cattle.io \"{n}\" not found"
        ),
    };
    let mut queue = std::collections::VecDeque::from([(name.to_string(), inherits(rt))]);
    let mut seen = BTreeSet::new();
    while let Some((current, names)) = queue.pop_front() {
        for n in names {
            if n == name {
                return Err(webhook(
                    kind,
                    format!("Circular Reference: RoleTemplate {current} already inherits RoleTemplate {name}"),
                ));
            }
            if seen.insert(n.clone()) {
                let next = store.get(kind, &n).ok_or_else(|| missing_template(&n))?;
                queue.push_back((n, inherits(next)));
            }
        }
    }
    let external = rt.get("external").and_then(Value::as_bool) == Some(true);
    let external_rules = rt.get("externalRules").filter(|v| !v.is_null());
    if let Some(er) = external_rules {
        if !external {
            return Err(webhook(
                kind,
                "ExternalRules can't be set in RoleTemplates with external=false",
            ));
        }
        if let Err(ApiErr::Webhook { message, .. }) = check_rule_shapes(kind, "roletemplate.externalRules", Some(er)) {
            return Err(webhook(kind, format!("Invalid externalRules: {message}")));
        }
    }
    let mut rules = Vec::new();
    template_rules(store, rt, &mut BTreeSet::from([name.to_string()]), &mut rules).map_err(|n| missing_template(&n))?;
    let rules = Value::Array(rules);
    check_rule_shapes(kind, "roletemplate.rules", Some(&rules))?;
    let authz = Authz::new(store, caller);
    if authz.has_verb("escalate", kind, name) {
        return Ok(());
    }
    if external && external_rules.is_some() {
        return Err(webhook_code(
            kind,
            403,
            "External RoleTemplates with ExternalRules can only be created for users with 'escalate' permissions",
        ));
    }
    let missing = authz.not_held(&Rule::all_from(Some(&rules)), "");
    if missing.is_empty() {
        Ok(())
    } else {
        Err(webhook_code(kind, 403, k8s_escalation(caller, &missing)))
    }
}

/// A webhook refusal with its own code.
fn webhook_code(kind: Kind, code: u16, message: impl Into<String>) -> ApiErr {
    ApiErr::Webhook {
        kind,
        code,
        message: message.into(),
    }
}

/// The rules a user holds through their global roles (for the user webhook's "more permissions" check).
fn user_rules(store: &Store, user_id: &str) -> Vec<Rule> {
    store
        .roles_of(user_id)
        .iter()
        .filter_map(|r| store.get(Kind::GlobalRole, r))
        .flat_map(|gr| Rule::all_from(gr.get("rules")))
        .collect()
}

/// rancher/webhook users/validator.go: modifying or deleting a user who holds more than the requester is refused
/// unless the requester has the `manage-users` verb on users.
fn check_user_target(store: &Store, caller: &Caller, target: &str) -> Result<(), ApiErr> {
    let authz = Authz::new(store, caller);
    if target == caller.user_id || authz.has_verb("manage-users", Kind::User, target) {
        return Ok(());
    }
    if authz.not_held(&user_rules(store, target), "").is_empty() {
        Ok(())
    } else {
        // rancher/webhook users/validator.go (release/v0.4 to v0.9): reason `ConfirmNoEscalationError`, no code
        // (so 400), the Kubernetes escalation detail appended.
        let missing = authz.not_held(&user_rules(store, target), "");
        Err(ApiErr::Denied {
            kind: Kind::User,
            code: 400,
            reason: "ConfirmNoEscalationError",
            message: format!(
                "request is attempting to modify user with more permissions than requester {}",
                k8s_escalation(caller, &missing)
            ),
        })
    }
}

/// The maximum TTL of API tokens (`auth-token-max-ttl-minutes`, 90 days), in milliseconds.
pub(crate) const MAX_TTL_MS: i64 = 129_600 * 60_000;
/// The default TTL of kubeconfig tokens (`kubeconfig-default-token-ttl-minutes`, 30 days), in seconds.
pub(crate) const KUBECONFIG_TTL_S: i64 = 43_200 * 60;

/// Options of a create.
#[derive(Default)]
pub(crate) struct CreateOpts {
    pub dry_run: bool,
    /// Rancher version >= 2.9 style backing namespaces for new projects (rancher/webhook project mutator, v0.5).
    pub creator: bool,
}

/// What a create produced: the stored object plus values shown only once.
pub(crate) struct Created {
    pub obj: Value,
    pub key: String,
    /// `name:secret` of a new token (ext or v3).
    pub bearer: Option<String>,
    /// The secret alone.
    pub secret: Option<String>,
    /// A generated kubeconfig.
    pub kubeconfig: Option<String>,
}

/// The SimUser view of a stored user (for token principals).
pub(crate) fn sim_user(store: &Store, id: &str) -> SimUser {
    let u = store.get(Kind::User, id);
    SimUser {
        id: id.to_string(),
        username: u.map(|u| s(u, "username").to_string()).unwrap_or_default(),
    }
}

fn display_of(store: &Store, id: &str) -> String {
    store
        .get(Kind::User, id)
        .map(|u| s(u, "displayName").to_string())
        .unwrap_or_default()
}

fn subject_count(obj: &Value, fields: &[&str]) -> usize {
    fields.iter().filter(|f| !s(obj, f).is_empty()).count()
}

/// Checks and creates an object (k8s form). `namespace` comes from the path for namespaced kinds.
pub(crate) fn create(
    store: &mut Store,
    caller: &Caller,
    kind: Kind,
    namespace: &str,
    mut obj: Value,
    opts: CreateOpts,
) -> Result<Created, ApiErr> {
    if !obj.is_object() {
        return Err(ApiErr::BadRequest(
            "the body of the request was in an unknown format".into(),
        ));
    }
    let info = kind.info();
    if info.namespaced {
        let body_ns = s(&obj, "metadata.namespace");
        if !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiErr::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        set_path(&mut obj, "metadata.namespace", json!(namespace));
    } else if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("namespace");
    }
    // Names: ext kinds always generate; others take name, else generateName.
    let name = if matches!(kind, Kind::ExtToken | Kind::Kubeconfig) {
        store.fresh_name(kind, "", info.gen_prefix)
    } else {
        let n = s(&obj, "metadata.name").to_string();
        if !n.is_empty() {
            n
        } else {
            let g = s(&obj, "metadata.generateName").to_string();
            if g.is_empty() {
                return Err(ApiErr::Invalid {
                    kind,
                    name: String::new(),
                    causes: vec![Cause {
                        field: "metadata.name".into(),
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                    }],
                });
            }
            store.fresh_name(kind, namespace, &g)
        }
    };
    set_path(&mut obj, "metadata.name", json!(name));
    // Read-only metadata from the client is ignored.
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "selfLink",
            "managedFields",
        ] {
            m.remove(k);
        }
    }

    // Authorization.
    {
        let authz = Authz::new(store, caller);
        let own_kind = matches!(kind, Kind::ExtToken | Kind::Kubeconfig);
        if !own_kind && !authz.can("create", kind, &obj) {
            return Err(ApiErr::Forbidden {
                verb: "create",
                kind,
                name: None,
                namespace: Some(namespace.to_string()).filter(|n| !n.is_empty()),
                user: caller.user_id.clone(),
            });
        }
    }
    let key = key_of(kind, namespace, &name);
    if store.get(kind, &key).is_some() {
        return Err(ApiErr::AlreadyExists { kind, name });
    }

    let now = now_rfc3339();
    let mut bearer = None;
    let mut secret_out = None;
    let mut kubeconfig = None;
    match kind {
        Kind::User => {
            let username = s(&obj, "username").to_string();
            if !username.is_empty() && store.usernames.contains_key(&username) {
                return Err(webhook(kind, format!("username \"{username}\" is already in use")));
            }
            if let Some(pw) = obj
                .as_object_mut()
                .and_then(|m| m.remove("password"))
                .and_then(|p| p.as_str().map(str::to_string))
            {
                if !opts.dry_run {
                    store.passwords.insert(name.clone(), ids::sha256_hex(&pw));
                }
            }
            if obj.get("principalIds").is_none() {
                obj["principalIds"] = json!([format!("local://{name}")]);
            }
            if obj.get("enabled").is_none() {
                obj["enabled"] = json!(true);
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"conditions": []});
            }
        }
        Kind::GlobalRole => {
            if obj.get("builtin").and_then(Value::as_bool) == Some(true) {
                return Err(webhook(kind, "cannot create builtin GlobalRoles"));
            }
            check_rule_shapes(kind, "globalrole.rules", obj.get("rules"))?;
            // rancher/webhook globalrole/validator.go: bypassed by `escalate` on globalroles.
            check_inherited_cluster_roles(store, caller, kind, &name, None, &obj, ("escalate", kind, &name))?;
            confirm_no_escalation(
                store,
                caller,
                kind,
                &Rule::all_from(obj.get("rules")),
                "",
                ("escalate", kind, &name),
            )?;
            obj["status"] =
                json!({"summary": "Completed", "observedGeneration": 1, "lastUpdateTime": now, "conditions": []});
        }
        Kind::GlobalRoleBinding => {
            required(kind, &name, &["globalRoleName"], &obj)?;
            let role = s(&obj, "globalRoleName").to_string();
            let Some(gr) = store.get(Kind::GlobalRole, &role) else {
                return Err(webhook(kind, format!("globalRoleName: Not found: \"{role}\"")));
            };
            let gr_uid = s(gr, "metadata.uid").to_string();
            let gr_rules = Rule::all_from(gr.get("rules"));
            // rancher/webhook globalrolebinding/validator.go validateCreate: v0.4-v0.6 (2.8-2.10) need userName or
            // groupPrincipalName; v0.7+ (2.11) also accept userPrincipalName alone; never a user and a group together.
            let has_user = !s(&obj, "userName").is_empty()
                || (store.version.at_least(2, 11) && !s(&obj, "userPrincipalName").is_empty());
            let has_group = !s(&obj, "groupPrincipalName").is_empty();
            if !has_user && !has_group {
                let who = if store.version.at_least(2, 11) {
                    "userName/userPrincipalName"
                } else {
                    "userName"
                };
                return Err(webhook(
                    kind,
                    format!(
                        "globalrolebindings: Required value: bindings must have either {who} or groupPrincipalName set"
                    ),
                ));
            }
            if (has_user || !s(&obj, "userPrincipalName").is_empty()) && has_group {
                return Err(webhook(kind, "globalrolebindings: Forbidden: bindings can not set both userName/userPrincipalName and groupPrincipalName"));
            }
            // globalrolebinding/validator.go: the role's inherited cluster roles are checked first (locked: 400;
            // not held in every cluster: 403, `bind` bypasses), then its global rules.
            let gr = gr.clone();
            check_grb_cluster_rules(store, caller, kind, &gr, &role)?;
            confirm_no_escalation(store, caller, kind, &gr_rules, "", ("bind", Kind::GlobalRole, &role))?;
            let user = s(&obj, "userName").to_string();
            if !user.is_empty() && s(&obj, "userPrincipalName").is_empty() && store.get(Kind::User, &user).is_some() {
                obj["userPrincipalName"] = json!(store.principal_of(&user));
            }
            if user.is_empty() && !has_group && !opts.dry_run {
                // rancher/rancher globalrolebinding_handler.go reconcileSubject: EnsureUser links or creates the user.
                let principal = s(&obj, "userPrincipalName").to_string();
                obj["userName"] = json!(ensure_user(store, &principal));
            }
            set_path(
                &mut obj,
                "metadata.ownerReferences",
                json!([{"apiVersion": "management.cattle.io/v3", "kind": "GlobalRole", "name": role, "uid": gr_uid}]),
            );
            // `GlobalRoleBindingStatus`: release/v2.11 on (authz_types.go); none before.
            if store.version.at_least(2, 11) {
                obj["status"] = json!({"summary": "Completed", "summaryLocal": "Completed", "localConditions": [], "lastUpdateTime": now});
            }
        }
        Kind::RoleTemplate => {
            let ctx = s(&obj, "context");
            if !matches!(ctx, "" | "cluster" | "project") {
                return Err(ApiErr::Invalid {
                    kind,
                    name: name.clone(),
                    causes: vec![Cause {
                        field: "context".into(),
                        reason: "FieldValueNotSupported",
                        message: format!(
                            "Unsupported value: \"{ctx}\": supported values: \"project\", \"cluster\", \"\""
                        ),
                    }],
                });
            }
            if obj.get("administrative").and_then(Value::as_bool) == Some(true) && ctx != "cluster" {
                // roletemplate/validator.go `validateContextValue`.
                return Err(webhook(
                    kind,
                    "roletemplate.administrative: Forbidden: only cluster roles can be administrative",
                ));
            }
            obj["builtin"] = json!(false);
            check_role_template(store, caller, &name, &obj)?;
        }
        Kind::Project => {
            required(kind, &name, &["spec.clusterName", "spec.displayName"], &obj)?;
            let cluster = s(&obj, "spec.clusterName").to_string();
            if cluster != namespace {
                return Err(webhook(
                    kind,
                    "clusterName: Invalid value: must match the namespace of the project",
                ));
            }
            if store.get(Kind::Cluster, &cluster).is_none() {
                return Err(webhook(
                    kind,
                    format!("clusters.management.cattle.io \"{cluster}\" not found"),
                ));
            }
            let backing = if store.version.at_least(2, 9) {
                format!("{cluster}-{name}")
            } else {
                name.clone()
            };
            obj["status"] = json!({"backingNamespace": backing, "conditions": [{"type": "BackingNamespaceCreated", "status": "True", "lastUpdateTime": now}]});
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                let ann = m.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = ann.as_object_mut() {
                    a.insert(
                        "authz.management.cattle.io/creator-role-bindings".into(),
                        json!("{\"required\":[\"project-owner\"]}"),
                    );
                    a.insert("field.cattle.io/creatorId".into(), json!(caller.user_id));
                }
            }
        }
        Kind::Crtb | Kind::Prtb => {
            // Rancher's admission rules for memberships (rancher/webhook
            // pkg/resources/management.cattle.io/v3/clusterroletemplatebinding/validator.go and
            // projectroletemplatebinding/validator.go, `validateCreateFields`): the scope and role template are
            // required; the cluster (CRTB: also its namespace) and the project must exist; exactly one subject, a user
            // or a group; the role template must exist, not be locked, and have the binding's context. CRTBs live in
            // the cluster's namespace, PRTBs in the project's (its backing namespace from 2.9, rancher/webhook
            // pkg/resources/management.cattle.io/v3/project/Project.md "BackingNamespace").
            let (scope_field, ctx) = if kind == Kind::Crtb {
                ("clusterName", "cluster")
            } else {
                ("projectName", "project")
            };
            // The order of the checks, their texts and field paths follow `validateCreateFields` of both
            // validators: Kubernetes field errors on the path `clusterroletemplatebinding` /
            // `projectroletemplatebinding`, answered as 400 (rancher/webhook
            // pkg/resources/management.cattle.io/v3/clusterroletemplatebinding/validator.go,
            // projectroletemplatebinding/validator.go, release/v0.9 and main).
            let path = if kind == Kind::Crtb {
                "clusterroletemplatebinding"
            } else {
                "projectroletemplatebinding"
            };
            let quoted = |v: &str| serde_json::to_string(v).unwrap_or_default();
            let users = subject_count(&obj, &["userName", "userPrincipalName"]);
            let groups = subject_count(&obj, &["groupName", "groupPrincipalName"]);
            // projectroletemplatebinding/validator.go `validateCreateFields` (release/v0.4 to v0.9): a PRTB may also
            // target a service account, exactly one of the three; CRTBs know only users and groups.
            let accounts = if kind == Kind::Prtb {
                subject_count(&obj, &["serviceAccount"])
            } else {
                0
            };
            let targets = [users > 0, groups > 0, accounts > 0].iter().filter(|x| **x).count();
            if kind == Kind::Prtb && targets != 1 {
                return Err(webhook(
                    kind,
                    format!("{path}: Forbidden: binding must target only a user [userName]/[userPrincipalName] OR a group [groupName]/[groupPrincipalName] OR a [serviceAccount]"),
                ));
            }
            if kind == Kind::Crtb && (users > 0) == (groups > 0) {
                return Err(webhook(
                    kind,
                    format!("{path}: Forbidden: binding must target either a user [userId]/[userPrincipalId] OR a group [groupId]/[groupPrincipalId]"),
                ));
            }
            let scope = s(&obj, scope_field).to_string();
            let required_detail = if kind == Kind::Crtb { ": field is required" } else { "" };
            if scope.is_empty() {
                return Err(webhook(
                    kind,
                    format!("{path}.{scope_field}: Required value{required_detail}"),
                ));
            }
            if kind == Kind::Crtb {
                if scope != namespace {
                    return Err(webhook(
                        kind,
                        format!("{path}: Forbidden: clusterName and namespace must be the same value"),
                    ));
                }
                if store.get(Kind::Cluster, &scope).is_none() {
                    return Err(webhook(
                        kind,
                        format!(
                            "{path}.clusterName: Invalid value: {}: specified cluster {scope} not found",
                            quoted(&scope)
                        ),
                    ));
                }
            }
            let rt_name = s(&obj, "roleTemplateName").to_string();
            if rt_name.is_empty() {
                return Err(webhook(
                    kind,
                    format!("{path}.roleTemplateName: Required value{required_detail}"),
                ));
            }
            let Some(rt) = store.get(Kind::RoleTemplate, &rt_name) else {
                return Err(webhook(
                    kind,
                    format!(
                        "{path}.roleTemplateName: Invalid value: {}: the referenced role template was not found",
                        quoted(&rt_name)
                    ),
                ));
            };
            if rt.get("locked").and_then(Value::as_bool) == Some(true) {
                // A CRTB made for a global role binding's inherited cluster roles may use a locked role template
                // while its GRB lives (clusterroletemplatebinding/validator.go, the `grbOwnerLabel` branch).
                let owner = obj
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(GRB_OWNER_LABEL))
                    .and_then(Value::as_str)
                    .filter(|o| kind == Kind::Crtb && !o.is_empty())
                    .map(str::to_string);
                let owner_alive = match &owner {
                    Some(grb) => match store.get(Kind::GlobalRoleBinding, grb) {
                        None => {
                            return Err(webhook(
                                kind,
                                format!("{path}.labels: Invalid value: {}: label {grb} refers to a global role that doesn't exist", quoted(grb)),
                            ))
                        }
                        Some(g) => g.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null),
                    },
                    None => false,
                };
                if !owner_alive {
                    let display = s(rt, "displayName");
                    let role = if kind == Kind::Crtb {
                        display.to_string()
                    } else {
                        format!("'{display}'")
                    };
                    return Err(webhook(
                        kind,
                        format!(
                            "{path}.roleTemplate: Forbidden: referenced role {role} is locked and cannot be assigned"
                        ),
                    ));
                }
            }
            let rt_ctx = s(rt, "context");
            if rt_ctx != ctx {
                return Err(webhook(
                    kind,
                    format!(
                        "{path}.roleTemplate.context: Unsupported value: {}: supported values: {}",
                        quoted(rt_ctx),
                        quoted(ctx)
                    ),
                ));
            }
            if kind == Kind::Prtb {
                let (cluster, project) = scope.split_once(':').unwrap_or(("", ""));
                if cluster.is_empty() || project.is_empty() {
                    return Err(webhook(
                        kind,
                        format!("{path}.projectName: Invalid value: {}: projectName must be of the form cluster.metadata.name:project.metadata.name, and both must refer to an existing object", quoted(&scope)),
                    ));
                }
                if store.get(Kind::Cluster, cluster).is_none() {
                    return Err(webhook(
                        kind,
                        format!(
                            "{path}.projectName: Invalid value: {}: specified cluster {cluster} not found",
                            quoted(&scope)
                        ),
                    ));
                }
                let Some(ns) = store.project_namespace(&scope) else {
                    return Err(webhook(
                        kind,
                        format!(
                            "{path}.projectName: Invalid value: {}: specified project {project} not found in {cluster}",
                            quoted(&scope)
                        ),
                    ));
                };
                if ns != namespace && Some(project) != Some(namespace) {
                    return Err(webhook(
                        kind,
                        format!("namespace \"{namespace}\" does not match the project namespace \"{ns}\""),
                    ));
                }
            }
            // rancher/webhook clusterroletemplatebinding/validator.go, projectroletemplatebinding/validator.go
            // (release/v0.4 to v0.10): the role template's rules must be held by the caller there; there is no verb
            // bypass, and pkg/auth/escalation.go `SetEscalationResponse` answers 422 `Invalid` with Kubernetes' text.
            let authz = Authz::new(store, caller);
            let wanted = authz.role_template_rules(&rt_name);
            let missing = authz.not_held(&wanted, namespace);
            if !missing.is_empty() {
                return Err(ApiErr::Denied {
                    kind,
                    code: 422,
                    reason: "Invalid",
                    message: k8s_escalation(caller, &missing),
                });
            }
            let user = s(&obj, "userName").to_string();
            if !user.is_empty() && s(&obj, "userPrincipalName").is_empty() {
                obj["userPrincipalName"] = json!(store.principal_of(&user));
            }
            // A binding naming only a user principal gets its user: the controller links or creates it
            // (rancher/rancher pkg/controllers/management/auth/crtb_handler.go and prtb_handler.go `reconcileSubject`,
            // `EnsureUser`), and Kubernetes RBAC subjects come from `userName` (pkg/rbac/common.go
            // `BuildSubjectFromRTB`).
            let principal = s(&obj, "userPrincipalName").to_string();
            if user.is_empty() && !principal.is_empty() && !opts.dry_run {
                obj["userName"] = json!(ensure_user(store, &principal));
            }
            if store.reject_duplicate_bindings {
                let same = |b: &Value| {
                    s(b, scope_field) == scope
                        && s(b, "roleTemplateName") == rt_name
                        && ["userName", "userPrincipalName", "groupName", "groupPrincipalName"]
                            .iter()
                            .any(|f| !s(&obj, f).is_empty() && s(b, f) == s(&obj, f))
                };
                if store.values(kind).any(|(_, b)| same(&b)) {
                    let short = if kind == Kind::Crtb { "crtb" } else { "prtb" };
                    return Err(ApiErr::Webhook {
                        kind,
                        code: 409,
                        message: format!("duplicate {short} not allowed"),
                    });
                }
            }
            // rancher/rancher pkg/apis/management.cattle.io/v3/authz_types.go `ClusterRoleTemplateBindingStatus`
            // (release/v2.11 on; none before): `summary` is `Completed` only once the local controller
            // (pkg/controllers/management/auth/crtb_handler.go `updateStatus`) and the downstream one
            // (pkg/controllers/managementuser/rbac/crtb_handler.go, started by pkg/clustermanager/manager.go only for a
            // connected cluster) are done; a cluster whose `Ready` condition is False leaves it unset.
            if kind == Kind::Crtb && store.version.at_least(2, 11) {
                let connected = store.get(Kind::Cluster, &scope).is_none_or(|c| {
                    !c.pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|x| s(x, "type") == "Ready" && s(x, "status") == "False")
                });
                obj["status"] = if connected {
                    json!({"summary": "Completed", "summaryLocal": "Completed", "summaryRemote": "Completed", "lastUpdateTime": now})
                } else {
                    json!({"summaryLocal": "Completed", "localConditions": [], "lastUpdateTime": now})
                };
            }
        }
        Kind::ExtToken => {
            let me = caller.user_id.clone();
            let uid = s(&obj, "spec.userID").to_string();
            // rancher/rancher pkg/ext/stores/tokens/tokens.go `create`.
            if !uid.is_empty() && uid != me {
                return Err(ApiErr::BadRequest("unable to create token for other user".into()));
            }
            let cluster = s(&obj, "spec.clusterName");
            if !cluster.is_empty() && store.get(Kind::Cluster, cluster).is_none() {
                return Err(ApiErr::BadRequest(format!("cluster {cluster} not found")));
            }
            // `clampMaxTTL`: a negative (never-expiring) or too long TTL becomes the maximum.
            let ttl = get_path(&obj, "spec.ttl").and_then(Value::as_i64).unwrap_or(0);
            let max = MAX_TTL_MS;
            let ttl = if ttl <= 0 || ttl > max { max } else { ttl };
            let who = sim_user(store, &me);
            let display = display_of(store, &me);
            let cluster = s(&obj, "spec.clusterName").to_string();
            let desc = s(&obj, "spec.description").to_string();
            let enabled = get_path(&obj, "spec.enabled").and_then(Value::as_bool).unwrap_or(true);
            let labels = get_path(&obj, "metadata.labels").cloned();
            let mut fresh =
                crate::seed::ext_token_obj(&name, &who, &display, ttl, &cluster, &desc, store.version, now_ms());
            fresh["spec"]["ttl"] = json!(ttl);
            fresh["spec"]["enabled"] = json!(enabled);
            if let Some(Value::Object(l)) = labels {
                for (k, v) in l {
                    fresh["metadata"]["labels"][k] = v;
                }
            }
            // tokens.go `SystemStore.Create`: "Get token of the request and use its principal as ours".
            if let Some((provider, principal)) = session_principal(store, caller) {
                let id = [s(&principal, "metadata.name"), s(&principal, "name")]
                    .into_iter()
                    .find(|x| !x.is_empty())
                    .unwrap_or_default()
                    .to_string();
                fresh["spec"]["userPrincipal"]["provider"] = json!(provider);
                if !id.is_empty() {
                    fresh["spec"]["userPrincipal"]["name"] = json!(id);
                }
            }
            let secret = ids::secret(&mut store.rng);
            fresh["status"]["hash"] = json!(ids::sha256_hex(&secret));
            store.set_token_secret(&secret);
            bearer = Some(format!("ext/{name}:{secret}"));
            secret_out = Some(secret);
            obj = fresh;
        }
        Kind::Kubeconfig => {
            // rancher/rancher pkg/ext/stores/kubeconfig/store.go `Create` (2.12-2.13).
            let me = caller.user_id.clone();
            let mut clusters: Vec<String> = get_path(&obj, "spec.clusters")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            if clusters.iter().collect::<BTreeSet<_>>().len() != clusters.len() {
                return Err(ApiErr::BadRequest("spec.clusters must be unique".into()));
            }
            // The first id `*` means every cluster.
            if clusters.first().map(String::as_str) == Some("*") {
                clusters = store.map(Kind::Cluster).keys().cloned().collect();
            }
            for c in &clusters {
                if store.get(Kind::Cluster, c).is_none() {
                    return Err(ApiErr::BadRequest(format!("cluster {c} not found")));
                }
            }
            // Negative 400, 0 = default, over it 400.
            let ttl = match get_path(&obj, "spec.ttl").and_then(Value::as_i64).unwrap_or(0) {
                t if t < 0 => return Err(ApiErr::BadRequest("spec.ttl can't be negative".into())),
                0 => KUBECONFIG_TTL_S,
                t if t > KUBECONFIG_TTL_S => {
                    return Err(ApiErr::BadRequest(format!(
                        "spec.ttl {t} exceeds max ttl {KUBECONFIG_TTL_S}"
                    )));
                }
                t => t,
            };
            let wanted = s(&obj, "spec.currentContext").to_string();
            if !wanted.is_empty() && !clusters.contains(&wanted) {
                return Err(ApiErr::BadRequest(format!("invalid currentContext {wanted}")));
            }
            let current = if wanted.is_empty() {
                clusters.first().cloned().unwrap_or_default()
            } else {
                wanted
            };
            // One shared token serves the default `rancher` entry and every cluster without an authorized cluster
            // endpoint (ACE); each ACE cluster gets its own, scoped to it (`createTokenInput`: name
            // `kubeconfig-<user>` randomized, kind `kubeconfig`, the kubeconfig id as a label).
            let mut token_names = Vec::new();
            let mut shared = String::new();
            let mut own: Vec<(String, String)> = Vec::new();
            let mut mint = |store: &mut Store, cluster: &str| {
                let (tname, full) =
                    new_v3_token(store, &me, ttl * 1000, cluster, "Kubeconfig token", true, "kubeconfig");
                inherit_session_provider(store, caller, &tname);
                if let Some(mut t) = store.get(Kind::Token, &tname).cloned() {
                    t["metadata"]["labels"]["authn.management.cattle.io/kubeconfig-id"] = json!(name);
                    store.put(Kind::Token, tname.clone(), t, None);
                }
                token_names.push(tname);
                full
            };
            if !opts.dry_run {
                shared = mint(store, "");
                for c in &clusters {
                    let ace = store
                        .get(Kind::Cluster, c)
                        .and_then(|x| get_path(x, "spec.localClusterAuthEndpoint.enabled"))
                        .and_then(Value::as_bool)
                        == Some(true);
                    if ace {
                        let full = mint(store, c);
                        own.push((c.clone(), full));
                    }
                }
            }
            kubeconfig = Some(kubeconfig_yaml(store, &clusters, &shared, &own, &current));
            if clusters.is_empty() {
                if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("clusters");
                }
            } else {
                obj["spec"]["clusters"] = json!(clusters);
            }
            obj["spec"]["currentContext"] = json!(current);
            obj["spec"]["ttl"] = json!(ttl);
            set_path(&mut obj, "metadata.labels", json!({"cattle.io/user-id": me}));
            let conditions: Vec<Value> = token_names
                .iter()
                .map(|t| json!({"type": "TokenCreated", "status": "True", "reason": "TokenCreated", "message": t, "lastTransitionTime": now}))
                .collect();
            obj["status"] = json!({"summary": "Complete", "tokens": token_names, "conditions": conditions});
        }
        Kind::AuditPolicy => {
            required(kind, &name, &["spec"], &obj)?;
            if get_path(&obj, "spec.enabled").and_then(Value::as_bool).is_none() {
                return Err(ApiErr::Invalid {
                    kind,
                    name: name.clone(),
                    causes: vec![Cause {
                        field: "spec.enabled".into(),
                        reason: "FieldValueRequired",
                        message: "Required value".into(),
                    }],
                });
            }
            validate_audit(&name, &obj)?;
            obj["status"] = json!({"conditions": [{"type": "Active", "status": "True", "reason": "Active", "message": "", "lastTransitionTime": now}]});
        }
        _ => {}
    }
    if let Some(f) = finalizer(kind) {
        set_path(&mut obj, "metadata.finalizers", json!([f]));
    }
    if opts.dry_run {
        store.pending_secret = None;
        return Ok(Created {
            obj,
            key,
            bearer,
            secret: secret_out,
            kubeconfig,
        });
    }
    let key = insert_new(store, kind, obj, &now, Some(Verb::Create));
    if kind == Kind::GlobalRoleBinding {
        reconcile_grb_cluster_permissions(store, &key);
    }
    if kind == Kind::Project && opts.creator {
        // The creator becomes project owner (Rancher does this asynchronously).
        let ns = store.project_namespace(&key).unwrap_or_default();
        let n = store.fresh_name(Kind::Prtb, &ns, "prtb-");
        let prtb = json!({"metadata": {"name": n, "namespace": ns}, "projectName": key, "roleTemplateName": "project-owner",
                          "userName": caller.user_id, "userPrincipalName": store.principal_of(&caller.user_id)});
        insert_new(store, Kind::Prtb, prtb, &now, None);
    }
    let obj = store.get(kind, &key).cloned().unwrap_or(Value::Null);
    Ok(Created {
        obj,
        key,
        bearer,
        secret: secret_out,
        kubeconfig,
    })
}

fn validate_audit(name: &str, obj: &Value) -> Result<(), ApiErr> {
    let mut causes = Vec::new();
    if let Some(level) = get_path(obj, "spec.verbosity.level") {
        if !level.as_i64().is_some_and(|l| (0..=3).contains(&l)) {
            causes.push(Cause {
                field: "spec.verbosity.level".into(),
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {level}: must be between 0 and 3"),
            });
        }
    }
    if let Some(filters) = get_path(obj, "spec.filters").and_then(Value::as_array) {
        for (i, f) in filters.iter().enumerate() {
            let a = s(f, "action");
            if !matches!(a, "allow" | "deny") {
                causes.push(Cause {
                    field: format!("spec.filters[{i}].action"),
                    reason: "FieldValueNotSupported",
                    message: format!("Unsupported value: \"{a}\": supported values: \"allow\", \"deny\""),
                });
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiErr::Invalid {
            kind: Kind::AuditPolicy,
            name: name.to_string(),
            causes,
        })
    }
}

/// Creates a v3 token for `user_id` and returns `(name, "name:secret")`.
pub(crate) fn new_v3_token(
    store: &mut Store,
    user_id: &str,
    ttl_ms: i64,
    cluster: &str,
    description: &str,
    derived: bool,
    kind_label: &str,
) -> (String, String) {
    let prefix = if kind_label == "kubeconfig" {
        format!("kubeconfig-{user_id}")
    } else {
        "token-".to_string()
    };
    let name = store.fresh_name(Kind::Token, "", &prefix);
    let secret = ids::secret(&mut store.rng);
    let who = sim_user(store, user_id);
    let display = display_of(store, user_id);
    let mut obj = crate::seed::token_obj(
        &name,
        user_id,
        &who.username,
        &display,
        ttl_ms,
        now_ms(),
        derived,
        cluster,
        description,
    );
    obj["metadata"]["labels"]["authn.management.cattle.io/kind"] = json!(kind_label);
    store.set_token_secret(&secret);
    insert_new(store, Kind::Token, obj, &now_rfc3339(), Some(Verb::Create));
    (name.clone(), format!("{name}:{secret}"))
}

/// The auth provider and principal of the caller's own token (`None` for local ones).
fn session_principal(store: &Store, caller: &Caller) -> Option<(String, Value)> {
    let (provider, principal) = match caller.token.strip_prefix("ext/") {
        Some(ext) => {
            let t = store.get(Kind::ExtToken, ext)?;
            (
                s(t, "spec.userPrincipal.provider").to_string(),
                get_path(t, "spec.userPrincipal").cloned()?,
            )
        }
        None => {
            let t = store.get(Kind::Token, &caller.token)?;
            (s(t, "authProvider").to_string(), t.get("userPrincipal").cloned()?)
        }
    };
    (!provider.is_empty() && provider != "local").then_some((provider, principal))
}

/// A derived token (API key, kubeconfig token) takes its session's provider and principal, and so stops working when
/// that provider is disabled (rancher/rancher pkg/auth/tokens/manager.go `createDerivedToken`,
/// pkg/auth/requests/authenticate.go).
pub(crate) fn inherit_session_provider(store: &mut Store, caller: &Caller, token_key: &str) {
    let Some((provider, principal)) = session_principal(store, caller) else {
        return;
    };
    if let Some(mut t) = store.get(Kind::Token, token_key).cloned() {
        t["authProvider"] = json!(provider);
        t["userPrincipal"] = principal;
        store.put(Kind::Token, token_key.to_string(), t, None);
    }
}

/// A kubeconfig document as rancher/rancher pkg/ext/stores/kubeconfig/store.go `Create` lays it out: the default
/// `rancher` entry (the Rancher URL) with the shared token, one entry per cluster through the Rancher proxy (named
/// after its display name) using the shared token unless the cluster has its own (ACE), `current` (a cluster id, or
/// empty for `rancher`) as the current context.
pub(crate) fn kubeconfig_yaml(
    store: &Store,
    clusters: &[String],
    shared: &str,
    own: &[(String, String)],
    current: &str,
) -> String {
    let ca = store
        .get(Kind::Setting, "cacerts")
        .map(|c| s(c, "value").to_string())
        .unwrap_or_default();
    let ca_b64 = ids::b64_encode(ca.as_bytes());
    let server = store.server_url.clone();
    let name_of = |c: &str| {
        store
            .get(Kind::Cluster, c)
            .map(|x| s(x, "spec.displayName").to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| c.to_string())
    };
    let mut y = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    y.push_str(&format!(
        "- name: \"rancher\"\n  cluster:\n    server: \"{server}\"\n    certificate-authority-data: \"{ca_b64}\"\n"
    ));
    for c in clusters {
        y.push_str(&format!(
            "- name: \"{}\"\n  cluster:\n    server: \"{server}/k8s/clusters/{c}\"\n    certificate-authority-data: \"{ca_b64}\"\n",
            name_of(c)
        ));
    }
    y.push_str("\nusers:\n");
    y.push_str(&format!("- name: \"rancher\"\n  user:\n    token: \"{shared}\"\n"));
    for (c, t) in own {
        y.push_str(&format!("- name: \"{}\"\n  user:\n    token: \"{t}\"\n", name_of(c)));
    }
    y.push_str("\ncontexts:\n- name: \"rancher\"\n  context:\n    user: \"rancher\"\n    cluster: \"rancher\"\n");
    for c in clusters {
        let n = name_of(c);
        let user = if own.iter().any(|(o, _)| o == c) {
            n.clone()
        } else {
            "rancher".to_string()
        };
        y.push_str(&format!(
            "- name: \"{n}\"\n  context:\n    user: \"{user}\"\n    cluster: \"{n}\"\n"
        ));
    }
    let current = if current.is_empty() {
        "rancher".to_string()
    } else {
        name_of(current)
    };
    y.push_str(&format!("\ncurrent-context: \"{current}\"\n"));
    y
}

/// The kubeconfig of norman's `generateKubeconfig` action: one entry per `(cluster id, bearer)`.
pub(crate) fn v3_kubeconfig_yaml(store: &Store, entries: &[(String, String)], current: &str) -> String {
    let ca = store
        .get(Kind::Setting, "cacerts")
        .map(|c| s(c, "value").to_string())
        .unwrap_or_default();
    let ca_b64 = ids::b64_encode(ca.as_bytes());
    let server = store.server_url.clone();
    let name_of = |c: &str| {
        store
            .get(Kind::Cluster, c)
            .map(|x| s(x, "spec.displayName").to_string())
            .unwrap_or_else(|| c.to_string())
    };
    let mut y = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for (c, _) in entries {
        y.push_str(&format!(
            "- name: \"{}\"\n  cluster:\n    server: \"{server}/k8s/clusters/{c}\"\n    certificate-authority-data: \"{ca_b64}\"\n",
            name_of(c)
        ));
    }
    y.push_str("\nusers:\n");
    for (c, t) in entries {
        y.push_str(&format!("- name: \"{}\"\n  user:\n    token: \"{t}\"\n", name_of(c)));
    }
    y.push_str("\ncontexts:\n");
    for (c, _) in entries {
        let n = name_of(c);
        y.push_str(&format!(
            "- name: \"{n}\"\n  context:\n    user: \"{n}\"\n    cluster: \"{n}\"\n"
        ));
    }
    y.push_str(&format!("\ncurrent-context: \"{}\"\n", name_of(current)));
    y
}

/// The user with principal `principal`, created when none has it (rancher/rancher pkg/auth/providers/common
/// usermanager.go `EnsureUser`). Returns the user id.
fn ensure_user(store: &mut Store, principal: &str) -> String {
    let found = store.values(Kind::User).find(|(_, u)| {
        u.get("principalIds")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|p| p.as_str() == Some(principal)))
    });
    if let Some((k, _)) = found {
        return k.to_string();
    }
    // rancher/rancher pkg/auth/providers/common/usermanager.go `EnsureUser` (2.8-2.13): the name is `u-` + 10
    // lower-case base32 characters of the principal's sha256; `createUsersRoleAnnotation` lists the new-user-default
    // global roles, `createUsersBindings` binds each (`grb-` + random) and records them as created.
    let derived = ids::user_id_for_principal(principal);
    let id = if store.get(Kind::User, &derived).is_none() {
        derived
    } else {
        store.fresh_name(Kind::User, "", "u-")
    };
    let mut required: Vec<String> = store
        .map(Kind::GlobalRole)
        .iter()
        .filter(|(_, gr)| gr.get("newUserDefault").and_then(Value::as_bool) == Some(true))
        .map(|(k, _)| k.clone())
        .collect();
    required.sort();
    let now = now_rfc3339();
    let roles = json!({"required": required, "created": required}).to_string();
    let obj = json!({"metadata": {"name": id, "annotations": {"authz.management.cattle.io/creator-role-bindings": roles}},
                     "displayName": "", "username": "", "description": "", "enabled": true,
                     "mustChangePassword": false, "principalIds": [principal, format!("local://{id}")],
                     "status": {"conditions": [{"type": "InitialRolesPopulated", "status": "True", "lastUpdateTime": now}]}});
    let key = insert_new(store, Kind::User, obj, &now, Some(Verb::Create));
    for role in required {
        let n = store.fresh_name(Kind::GlobalRoleBinding, "", "grb-");
        insert_new(
            store,
            Kind::GlobalRoleBinding,
            crate::seed::grb_obj(&n, &role, &key),
            &now,
            Some(Verb::Create),
        );
    }
    key
}

/// The lifecycle finalizer Rancher's controllers put on `kind` (rancher/rancher pkg/controllers/management/auth
/// register.go and globalroles/register.go `AddLifecycle`), if any.
pub(crate) fn finalizer(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::GlobalRole => "controller.cattle.io/mgmt-auth-gr-controller",
        Kind::GlobalRoleBinding => "controller.cattle.io/mgmt-auth-grb-controller",
        Kind::RoleTemplate => "controller.cattle.io/mgmt-auth-roletemplate-lifecycle",
        Kind::User => "controller.cattle.io/mgmt-auth-users-controller",
        Kind::Project => "controller.cattle.io/mgmt-project-rbac-remove",
        Kind::Crtb => "controller.cattle.io/mgmt-auth-crtb-controller",
        Kind::Prtb => "controller.cattle.io/mgmt-auth-prtb-controller",
        _ => return None,
    })
}

/// How an immutable-field change is refused: the webhook's 400 for management kinds, the ext store's 400 for
/// tokens (rancher/rancher pkg/ext/stores/tokens/tokens.go), Kubernetes' 422 otherwise.
fn immutable_err(kind: Kind, name: &str, field: &str, value: &Value) -> ApiErr {
    match kind {
        // The binding validators name the field on the lower-cased kind (`field.NewPath("clusterroletemplatebinding")`,
        // rancher/webhook .../globalrolebinding, clusterroletemplatebinding, projectroletemplatebinding validator.go
        // `validateUpdateFields`).
        Kind::GlobalRoleBinding | Kind::Crtb | Kind::Prtb => webhook(
            kind,
            format!(
                "{}.{field}: Invalid value: {value}: field is immutable",
                kind.info().kind_name.to_lowercase()
            ),
        ),
        Kind::Project | Kind::User => webhook(
            kind,
            format!(
                "{}.{field}: Invalid value: {value}: field is immutable",
                kind.info().plural
            ),
        ),
        Kind::ExtToken => ApiErr::BadRequest(format!(
            "{} is immutable",
            if field == "spec.userPrincipal" {
                "spec.userprincipal"
            } else {
                field
            }
        )),
        _ => ApiErr::Invalid {
            kind,
            name: name.to_string(),
            causes: vec![Cause {
                field: field.to_string(),
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {value}: field is immutable"),
            }],
        },
    }
}

/// The binding kinds' update rules (see the call site): Go string comparison, set-once subjects, the PRTB's
/// service account and the CRTB's GRB-owner label.
fn check_binding_update_fields(kind: Kind, name: &str, old: &Value, new: &Value) -> Result<(), ApiErr> {
    let text = |v: &Value, f: &str| get_path(v, f).and_then(Value::as_str).unwrap_or("").to_string();
    let path = kind.info().kind_name.to_lowercase();
    let set_once = ["userName", "userPrincipalName", "groupName", "groupPrincipalName"];
    for f in immutable_fields(kind) {
        let (o, n) = (text(old, f), text(new, f));
        if o == n || (kind != Kind::GlobalRoleBinding && set_once.contains(f) && o.is_empty()) {
            continue;
        }
        if *f == "serviceAccount" {
            return Err(webhook(
                kind,
                format!("{path}.serviceAccount: Forbidden: update is not allowed"),
            ));
        }
        return Err(immutable_err(kind, name, f, &Value::String(n)));
    }
    if kind != Kind::GlobalRoleBinding {
        // `(new.GroupName != "" || old.GroupPrincipalName != "") && (new.UserName != "" || old.UserPrincipalName != "")`
        let group = !text(new, "groupName").is_empty() || !text(old, "groupPrincipalName").is_empty();
        let user = !text(new, "userName").is_empty() || !text(old, "userPrincipalName").is_empty();
        if group && user {
            let verb = if kind == Kind::Crtb {
                "binding target must target"
            } else {
                "binding must target"
            };
            return Err(webhook(
                kind,
                format!("{path}: Forbidden: {verb} either a user [userName]/[userPrincipalName] OR a group [groupName]/[groupPrincipalName]"),
            ));
        }
    }
    if kind == Kind::Crtb {
        let label = |v: &Value| {
            v.pointer("/metadata/labels")
                .and_then(|l| l.get(GRB_OWNER_LABEL))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if label(old) != label(new) {
            return Err(webhook(
                kind,
                format!("{path}.labels: Forbidden: label {GRB_OWNER_LABEL} is immutable after creation"),
            ));
        }
    }
    Ok(())
}

/// Fields that may never change after create, per kind.
fn immutable_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        // globalrolebinding/validator.go `validateUpdateFields` (release/v0.4 to v0.9): only these three;
        // `userPrincipalName` may change.
        Kind::GlobalRoleBinding => &["userName", "groupPrincipalName", "globalRoleName"],
        Kind::Crtb => &[
            "roleTemplateName",
            "clusterName",
            "userName",
            "userPrincipalName",
            "groupName",
            "groupPrincipalName",
        ],
        Kind::Prtb => &[
            "roleTemplateName",
            "projectName",
            "userName",
            "userPrincipalName",
            "groupName",
            "groupPrincipalName",
            "serviceAccount",
        ],
        Kind::Project => &["spec.clusterName"],
        Kind::GlobalRole | Kind::RoleTemplate => &["builtin"],
        Kind::User => &["username", "principalIds"],
        Kind::ExtToken => &["spec.userID", "spec.userPrincipal", "spec.kind", "spec.clusterName"],
        Kind::Kubeconfig => &["spec.clusters", "spec.currentContext", "spec.ttl"],
        _ => &[],
    }
}

/// Replaces an object (`new` is the full new object in k8s form). `status_only` for `/status`.
/// `require_rv` is true for PUT (Kubernetes refuses unconditional updates of custom resources).
#[allow(clippy::too_many_arguments)]
pub(crate) fn update(
    store: &mut Store,
    caller: &Caller,
    kind: Kind,
    key: &str,
    mut new: Value,
    status_only: bool,
    require_rv: bool,
    verb: Verb,
    dry_run: bool,
) -> Result<Value, ApiErr> {
    let name = key.rsplit(':').next().unwrap_or(key).to_string();
    let namespace = if kind.info().namespaced {
        key.split(':').next().unwrap_or("").to_string()
    } else {
        String::new()
    };
    let Some(old) = store.get(kind, key).cloned() else {
        return Err(ApiErr::NotFound { kind, name });
    };
    if !new.is_object() {
        return Err(ApiErr::BadRequest(
            "the body of the request was in an unknown format".into(),
        ));
    }
    let body_name = s(&new, "metadata.name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiErr::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    {
        let authz = Authz::new(store, caller);
        let v = if verb == Verb::Patch { "patch" } else { "update" };
        if !authz.can(v, kind, &old) {
            if kind == Kind::ExtToken {
                // tokens.go: "We return a NotFound error to avoid leaking information about other users' tokens".
                return Err(ApiErr::NotFound { kind, name });
            }
            return Err(ApiErr::Forbidden {
                verb: v,
                kind,
                name: Some(name.clone()),
                namespace: Some(namespace.clone()).filter(|n| !n.is_empty()),
                user: caller.user_id.clone(),
            });
        }
    }
    let rv = s(&new, "metadata.resourceVersion").to_string();
    if rv.is_empty() {
        if require_rv {
            return Err(ApiErr::Invalid {
                kind,
                name,
                causes: vec![Cause {
                    field: "metadata.resourceVersion".into(),
                    reason: "FieldValueInvalid",
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                }],
            });
        }
    } else if rv != s(&old, "metadata.resourceVersion") {
        return Err(ApiErr::Conflict { kind, name });
    }
    // Builtin roles: the webhook compares the whole object with the allowed fields copied over from the new one, so
    // any other change (an omitted field in a PUT too) is refused (rancher/webhook globalrole/validator.go and
    // roletemplate/validator.go `validateUpdateFields`, release/v0.4 to v0.9: only `newUserDefault` on a
    // GlobalRole; `clusterCreatorDefault`, `projectCreatorDefault` and `locked` on a RoleTemplate).
    if matches!(kind, Kind::GlobalRole | Kind::RoleTemplate)
        && !status_only
        && old.get("builtin").and_then(Value::as_bool) == Some(true)
    {
        let allowed: &[&str] = if kind == Kind::GlobalRole {
            &["newUserDefault"]
        } else {
            &["clusterCreatorDefault", "projectCreatorDefault", "locked"]
        };
        let rest = |v: &Value| {
            let mut c = content(v);
            if let Some(o) = c.as_object_mut() {
                for f in allowed {
                    o.remove(*f);
                }
                // Go's zero values: an absent list or flag equals an empty or false one.
                o.retain(|_, v| !(v.is_null() || v == &json!(false) || v == &json!([]) || v == &json!("")));
            }
            c
        };
        if rest(&old) != rest(&new) {
            return Err(webhook(
                kind,
                if kind == Kind::GlobalRole {
                    "globalrole: Forbidden: updates to builtIn GlobalRoles for fields other than 'newUserDefault' are forbidden"
                } else {
                    "roletemplate: Forbidden: updates to builtIn RoleTemplates for fields other than CreatorDefault are forbidden"
                },
            ));
        }
    }
    // roletemplate/validator.go `validateContextValue` (create and update): only cluster roles can be
    // administrative.
    if kind == Kind::RoleTemplate
        && !status_only
        && new.get("administrative").and_then(Value::as_bool) == Some(true)
        && s(&new, "context") != "cluster"
    {
        return Err(webhook(
            kind,
            "roletemplate.administrative: Forbidden: only cluster roles can be administrative",
        ));
    }
    let mut result;
    if status_only {
        result = old.clone();
        result["status"] = new.get("status").cloned().unwrap_or(Value::Null);
    } else {
        // Immutable fields. The binding validators compare old and new as Go strings: a PUT body that omits a field
        // sets it to "" (a Kubernetes PUT replaces the object), subjects may be set while empty
        // (`old.UserName != new.UserName && old.UserName != ""`), and a PRTB's service account never changes
        // (rancher/webhook clusterroletemplatebinding/, projectroletemplatebinding/, globalrolebinding/validator.go
        // `validateUpdateFields`). Other kinds: missing means "unchanged"; a different value is refused.
        if matches!(kind, Kind::GlobalRoleBinding | Kind::Crtb | Kind::Prtb) {
            check_binding_update_fields(kind, &name, &old, &new)?;
        }
        for f in immutable_fields(kind) {
            if matches!(kind, Kind::GlobalRoleBinding | Kind::Crtb | Kind::Prtb) {
                break;
            }
            let ov = get_path(&old, f).cloned();
            // users/validator.go `validateUpdateFields` (release/v0.9): a username may be set once.
            if kind == Kind::User
                && *f == "username"
                && ov.as_ref().is_none_or(|v| v.as_str().is_none_or(str::is_empty))
            {
                continue;
            }
            match get_path(&new, f) {
                None | Some(Value::Null) => {
                    if let Some(ov) = ov {
                        set_path(&mut new, f, ov);
                    }
                }
                Some(nv) if Some(nv) != ov.as_ref() && !(ov.is_none() && nv.as_str() == Some("")) => {
                    return Err(immutable_err(kind, &name, f, nv));
                }
                _ => {}
            }
        }
        check_update(store, caller, kind, &name, &old, &mut new)?;
        if kind == Kind::AuditPolicy {
            required(kind, &name, &["spec"], &new)?;
            validate_audit(&name, &new)?;
        }
        if kind.info().status_sub || matches!(kind, Kind::ExtToken | Kind::Kubeconfig) {
            match old.get("status") {
                Some(st) => new["status"] = st.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        if let Some(pw) = new
            .as_object_mut()
            .and_then(|m| m.remove("password"))
            .and_then(|p| p.as_str().map(str::to_string))
        {
            store.passwords.insert(name.clone(), ids::sha256_hex(&pw));
        }
        result = new;
        // Server-owned metadata is kept.
        for f in ["uid", "creationTimestamp", "generation", "name", "namespace"] {
            let path = format!("metadata.{f}");
            if let Some(v) = get_path(&old, &path).cloned() {
                set_path(&mut result, &path, v);
            }
        }
        result["apiVersion"] = old["apiVersion"].clone();
        result["kind"] = old["kind"].clone();
    }
    let spec_changed = {
        let strip = |v: &Value| {
            let mut c = v.clone();
            if let Some(m) = c.as_object_mut() {
                m.remove("metadata");
                m.remove("status");
            }
            c
        };
        strip(&old) != strip(&result)
    };
    if kind == Kind::ExtToken {
        set_path(&mut result, "status.lastUpdateTime", json!(now_rfc3339()));
        let ttl = get_path(&result, "spec.ttl").and_then(Value::as_i64).unwrap_or(0);
        if let Some(created) = crate::state::parse_ms(s(&result, "metadata.creationTimestamp")).filter(|_| ttl > 0) {
            set_path(
                &mut result,
                "status.expiresAt",
                json!(crate::state::fmt_ms(created + ttl)),
            );
        }
    }
    if dry_run {
        return Ok(result);
    }
    store.stamp_update(&mut result, spec_changed);
    store.put(kind, key.to_string(), result.clone(), Some(verb));
    // The retention labeler follows its inputs (rancher/rancher pkg/auth/userretention/label.go `EnsureForAll` on a
    // setting change, `EnsureForAttributes` on a UserAttribute change).
    match kind {
        Kind::Setting if RETENTION_SETTINGS.contains(&key) => label_all_for_retention(store),
        Kind::UserAttribute => {
            label_for_retention(store, key);
        }
        Kind::User if result.get("enabled").and_then(Value::as_bool) == Some(false) => {
            end_ext_tokens_of_disabled(store, key);
        }
        _ => {}
    }
    Ok(result)
}

/// Rancher's webhook and store checks of an update (after the immutable fields).
fn check_update(
    store: &Store,
    caller: &Caller,
    kind: Kind,
    name: &str,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiErr> {
    match kind {
        // globalrole/validator.go `Admit`: every update that changes more than metadata checks the inherited cluster
        // roles and both escalations.
        Kind::GlobalRole if content(old) != content(new) => {
            check_rule_shapes(kind, "globalrole.rules", new.get("rules"))?;
            check_inherited_cluster_roles(store, caller, kind, name, Some(old), new, ("escalate", kind, name))?;
            confirm_no_escalation(
                store,
                caller,
                kind,
                &Rule::all_from(new.get("rules")),
                "",
                ("escalate", kind, name),
            )
        }
        // rancher/webhook globalrolebinding/validator.go `Admit` (release/v0.4 to v0.10): an update runs the same
        // escalation check as a create (any field, even a label), unless the binding is being deleted.
        Kind::GlobalRoleBinding if get_path(new, "metadata.deletionTimestamp").is_none() => {
            let role = s(new, "globalRoleName");
            match store.get(Kind::GlobalRole, role) {
                Some(gr) => {
                    check_grb_cluster_rules(store, caller, kind, gr, role)?;
                    confirm_no_escalation(
                        store,
                        caller,
                        kind,
                        &Rule::all_from(gr.get("rules")),
                        "",
                        ("bind", Kind::GlobalRole, role),
                    )
                }
                None => Ok(()),
            }
        }
        // roletemplate/validator.go `Admit`: every create or update checks the rules of the new template with those
        // it inherits (`RulesFromTemplate`), so adding `roleTemplateNames` escalates too; bypass `escalate`.
        Kind::RoleTemplate if content(old) != content(new) => check_role_template(store, caller, name, new),
        Kind::User => {
            check_user_target(store, caller, name)?;
            // rancher/webhook release/v0.9 users/validator.go (Rancher 2.13).
            if store.version.at_least(2, 13)
                && name == caller.user_id
                && new.get("enabled").and_then(Value::as_bool) == Some(false)
                && old.get("enabled").and_then(Value::as_bool) != Some(false)
            {
                return Err(webhook(kind, "can't deactivate yourself"));
            }
            Ok(())
        }
        Kind::ExtToken => {
            // tokens.go `update`: without full permission a TTL may only shrink.
            let old_ttl = get_path(old, "spec.ttl").and_then(Value::as_i64).unwrap_or(0);
            let ttl = get_path(new, "spec.ttl").and_then(Value::as_i64).unwrap_or(old_ttl);
            let ttl = if ttl <= 0 || ttl > MAX_TTL_MS { MAX_TTL_MS } else { ttl };
            if ttl > old_ttl && !caller.admin {
                return Err(ApiErr::BadRequest("forbidden to extend time-to-live".into()));
            }
            set_path(new, "spec.ttl", json!(ttl));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Deletes an object after authorization and Rancher's webhook checks. Returns the deleted object. Kinds with a
/// lifecycle finalizer are only marked (`deletionTimestamp`) when the store lets deletions linger; they go once
/// [`Store::purge_terminating`] runs after the linger time, as Rancher's controllers remove the finalizer.
pub(crate) fn delete(
    store: &mut Store,
    caller: &Caller,
    kind: Kind,
    key: &str,
    precondition_rv: Option<&str>,
) -> Result<Value, ApiErr> {
    let old = check_delete(store, caller, kind, key, precondition_rv)?;
    if finalizer(kind).is_some() && store.deletion_linger_ms > 0 {
        if old.get("metadata").and_then(|m| m.get("deletionTimestamp")).is_some() {
            return Ok(old);
        }
        let mut obj = old;
        let f = finalizer(kind).unwrap_or_default();
        let fins = obj["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        if fins.is_empty() {
            obj["metadata"]["finalizers"] = json!([f]);
        }
        obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        store.stamp_update(&mut obj, false);
        store.put(kind, key.to_string(), obj.clone(), Some(Verb::Delete));
        let due = now_ms() + store.deletion_linger_ms;
        store.terminating.push((kind, key.to_string(), due));
        return Ok(obj);
    }
    finish_delete(store, kind, key, &old, true);
    Ok(old)
}

/// Removes the object and does the garbage collection Rancher's controllers do.
/// `count` records the delete among the applied writes (a lingering delete was counted when it was asked for).
pub(crate) fn finish_delete(store: &mut Store, kind: Kind, key: &str, old: &Value, count: bool) {
    let name = key.rsplit(':').next().unwrap_or(key).to_string();
    store.remove(kind, key, count);
    match kind {
        Kind::GlobalRoleBinding => {
            // The `crtb-grb-*` CRTBs are owned by the binding and go with it.
            let owned: Vec<String> = store
                .values(Kind::Crtb)
                .filter(|(_, b)| grb_owner(b) == Some(name.as_str()))
                .map(|(k, _)| k.to_string())
                .collect();
            for k in owned {
                store.remove(Kind::Crtb, &k, false);
            }
        }
        Kind::GlobalRole => {
            let grbs: Vec<String> = store
                .values(Kind::GlobalRoleBinding)
                .filter(|(_, g)| s(g, "globalRoleName") == name)
                .map(|(k, _)| k.to_string())
                .collect();
            for g in grbs {
                store.remove(Kind::GlobalRoleBinding, &g, false);
            }
        }
        Kind::Project => {
            let prtbs: Vec<String> = store
                .values(Kind::Prtb)
                .filter(|(_, p)| s(p, "projectName") == key)
                .map(|(k, _)| k.to_string())
                .collect();
            for p in prtbs {
                store.remove(Kind::Prtb, &p, false);
            }
        }
        Kind::Kubeconfig => {
            if let Some(toks) = get_path(old, "status.tokens").and_then(Value::as_array) {
                for t in toks.iter().filter_map(Value::as_str) {
                    store.remove(Kind::Token, t, false);
                }
            }
        }
        _ => {}
    }
}

/// Authorization and Rancher's webhook checks of a delete; returns the object as stored.
pub(crate) fn check_delete(
    store: &Store,
    caller: &Caller,
    kind: Kind,
    key: &str,
    precondition_rv: Option<&str>,
) -> Result<Value, ApiErr> {
    let name = key.rsplit(':').next().unwrap_or(key).to_string();
    let namespace = if kind.info().namespaced {
        key.split(':').next().unwrap_or("").to_string()
    } else {
        String::new()
    };
    let Some(old) = store.get(kind, key).cloned() else {
        return Err(ApiErr::NotFound { kind, name });
    };
    {
        let authz = Authz::new(store, caller);
        if !authz.can("delete", kind, &old) {
            if kind == Kind::ExtToken {
                return Err(ApiErr::NotFound { kind, name });
            }
            return Err(ApiErr::Forbidden {
                verb: "delete",
                kind,
                name: Some(name.clone()),
                namespace: Some(namespace.clone()).filter(|n| !n.is_empty()),
                user: caller.user_id.clone(),
            });
        }
    }
    if let Some(rv) = precondition_rv {
        if rv != s(&old, "metadata.resourceVersion") {
            return Err(ApiErr::Conflict { kind, name });
        }
    }
    match kind {
        // rancher/webhook globalrole/validator.go validateDelete.
        Kind::GlobalRole if old.get("builtin").and_then(Value::as_bool) == Some(true) => {
            return Err(webhook(
                kind,
                "globalrole: Forbidden: cannot delete builtin GlobalRoles",
            ));
        }
        // rancher/webhook roletemplate/validator.go `validateDelete` (release/v0.4 to v0.9): refused only while
        // role templates (`roleTemplateNames`) or global roles (`inheritedClusterRoles`) inherit it; the 400 names
        // them all, comma-separated (the webhook's index order; sorted here).
        Kind::RoleTemplate => {
            let inherits = |v: &Value, field: &str| {
                v.get(field)
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(name.as_str())))
            };
            let by = |of: Kind, field: &str| {
                let mut names: Vec<&str> = store
                    .map(of)
                    .iter()
                    .filter(|(_, o)| inherits(o, field))
                    .map(|(k, _)| k.as_str())
                    .collect();
                names.sort_unstable();
                names.join(", ")
            };
            let rts = by(Kind::RoleTemplate, "roleTemplateNames");
            if !rts.is_empty() {
                return Err(webhook(
                    kind,
                    format!("roletemplate \"{name}\" cannot be deleted because it is inherited by roletemplate(s) \"{rts}\""),
                ));
            }
            let grs = by(Kind::GlobalRole, "inheritedClusterRoles");
            if !grs.is_empty() {
                return Err(webhook(
                    kind,
                    format!(
                        "roletemplate \"{name}\" cannot be deleted because it is inherited by globalRole(s) \"{grs}\""
                    ),
                ));
            }
        }
        // rancher/webhook project/validator.go `admitDelete` (release/v0.4 to v0.9): the System project (label
        // `authz.management.cattle.io/system-project: "true"`) cannot be deleted.
        Kind::Project
            if old
                .pointer("/metadata/labels")
                .and_then(|l| l.get("authz.management.cattle.io/system-project"))
                .and_then(Value::as_str)
                == Some("true") =>
        {
            return Err(webhook(kind, "System Project cannot be deleted"));
        }
        Kind::User if name == caller.user_id => {
            let msg = if store.version.at_least(2, 13) {
                "can't delete yourself"
            } else {
                "You cannot delete yourself"
            };
            return Err(webhook(kind, msg));
        }
        Kind::User => check_user_target(store, caller, &name)?,
        // No GlobalRoleBinding rule: rancher/webhook globalrolebinding/validator.go `Operations()` is {Create, Update}
        // on every branch (release/v0.4 to v0.10), so a delete needs nothing but RBAC `delete`.
        _ => {}
    }
    Ok(old)
}

/// Computes `expired` for a token expiry string.
pub(crate) fn expired(expires_at: &str) -> bool {
    crate::state::parse_ms(expires_at).is_some_and(|e| e <= now_ms())
}

/// Records a login in the user's `UserAttribute` (created on first login, named after the user): the groups
/// `provider` reported replace that provider's entry, `lastLogin` is now (rancher/rancher
/// pkg/auth/providers/publicapi/login.go `createLoginToken` -> pkg/auth/tokens/manager.go
/// `UserAttributeCreateOrUpdate`; the login token itself gets no groups, `NewLoginToken`).
pub(crate) fn record_login(store: &mut Store, user_id: &str, provider: &str, principal: &str, groups: &[String]) {
    set_user_groups(store, user_id, provider, principal, groups);
    if let Some(mut a) = store.get(Kind::UserAttribute, user_id).cloned() {
        a["lastLogin"] = json!(now_rfc3339());
        store.stamp_update(&mut a, false);
        store.put(Kind::UserAttribute, user_id.to_string(), a, None);
    }
    label_for_retention(store, user_id);
}

/// The label of the bootstrap admin (rancher/rancher pkg/data/management/role_data.go `defaultAdminLabelKey`, value
/// `admin-user`).
pub(crate) const DEFAULT_ADMIN_LABEL: &str = "authz.management.cattle.io/bootstrapping";

/// The settings Rancher's user retention reads (rancher/rancher pkg/auth/userretention/settings.go `readSettings`);
/// changing one relabels every user (the setting controller calls `EnsureForAll`).
pub(crate) const RETENTION_SETTINGS: &[&str] = &[
    "disable-inactive-user-after",
    "delete-inactive-user-after",
    "user-last-login-default",
    "user-retention-dry-run",
];

/// A setting's effective value: its value, or its default when the value is empty (pkg/settings `Get`).
fn setting(store: &Store, name: &str) -> String {
    store
        .get(Kind::Setting, name)
        .map(|o| {
            let v = s(o, "value");
            if v.is_empty() { s(o, "default") } else { v }.to_string()
        })
        .unwrap_or_default()
}

/// A Go duration (`time.ParseDuration`: signed decimal numbers with units ns, us, µs, ms, s, m, h, e.g. `1h30m`) in
/// whole seconds, rounded toward zero; `None` when it is not one.
pub(crate) fn go_duration_secs(text: &str) -> Option<i64> {
    let (neg, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = tail;
    }
    let secs = total.trunc() as i64;
    Some(if neg { -secs } else { secs })
}

/// Sets or clears a user's retention labels from their `UserAttribute` and the retention settings, as rancher/rancher
/// pkg/auth/userretention/label.go `setLabels` does (2.8-2.13): `cattle.io/last-login` = the attribute's `lastLogin`
/// (or the `user-last-login-default` setting) in epoch seconds; `cattle.io/disable-after` / `cattle.io/delete-after`
/// = last login plus the attribute's own `disableAfter` / `deleteAfter` or else the setting, only while the setting
/// is on and never for the default admin. System users and users without an attribute are skipped; a setting that
/// does not parse turns retention off without touching labels (`readSettings` error). Returns whether it changed.
pub(crate) fn label_for_retention(store: &mut Store, user_id: &str) -> bool {
    let parse = |name: &str| {
        let v = setting(store, name);
        if v.is_empty() {
            Some(0)
        } else {
            go_duration_secs(&v)
        }
    };
    let (Some(disable), Some(delete)) = (
        parse("disable-inactive-user-after"),
        parse("delete-inactive-user-after"),
    ) else {
        return false;
    };
    let default_login = setting(store, "user-last-login-default");
    let default_login = if default_login.is_empty() {
        None
    } else {
        match crate::state::parse_ms(&default_login) {
            Some(ms) => Some(ms.div_euclid(1000)),
            None => return false,
        }
    };
    let (Some(user), Some(attr)) = (store.get(Kind::User, user_id), store.get(Kind::UserAttribute, user_id)) else {
        return false;
    };
    let principals = user.get("principalIds").and_then(Value::as_array);
    if principals.is_some_and(|a| a.iter().filter_map(Value::as_str).any(|p| p.starts_with("system://"))) {
        return false;
    }
    let default_admin = user
        .pointer("/metadata/labels")
        .and_then(|l| l.get(DEFAULT_ADMIN_LABEL))
        .and_then(Value::as_str)
        == Some("admin-user");
    let last = crate::state::parse_ms(s(attr, "lastLogin"))
        .map(|ms| ms.div_euclid(1000))
        .or(default_login);
    let after = |on: i64, own: &str| -> Option<i64> {
        let last = last?;
        if on == 0 || default_admin {
            return None;
        }
        match attr.get(own).and_then(Value::as_str) {
            Some(d) => go_duration_secs(d).filter(|d| *d > 0).map(|d| last + d),
            None => Some(last + on),
        }
    };
    let wanted = [
        ("cattle.io/last-login", last),
        ("cattle.io/delete-after", after(delete, "deleteAfter")),
        ("cattle.io/disable-after", after(disable, "disableAfter")),
    ];
    let mut u = user.clone();
    let mut labels = get_path(&u, "metadata.labels").cloned().unwrap_or_else(|| json!({}));
    let before = labels.clone();
    for (key, at) in wanted {
        match at {
            Some(t) => labels[key] = json!(t.to_string()),
            None => {
                if let Some(o) = labels.as_object_mut() {
                    o.remove(key);
                }
            }
        }
    }
    if labels == before {
        return false;
    }
    set_path(&mut u, "metadata.labels", labels);
    store.stamp_update(&mut u, false);
    store.put(Kind::User, user_id.to_string(), u, None);
    true
}

/// A disabled user's ext tokens (Rancher 2.12+, where ext tokens exist): rancher/rancher
/// pkg/controllers/management/auth/user.go `userLifecycle.Updated` disables every derived one (`spec.enabled: false`)
/// and deletes every login one (kind `session`), so enabling the user again revives neither. Read on rancher/rancher
/// main; the fidelity report checked release/v2.13.
fn end_ext_tokens_of_disabled(store: &mut Store, user_id: &str) {
    if !store.version.at_least(2, 12) {
        return;
    }
    let theirs: Vec<(String, bool)> = store
        .keys_where(Kind::ExtToken, |t| s(t, "spec.userID") == user_id)
        .into_iter()
        .map(|k| {
            let session = store
                .get(Kind::ExtToken, &k)
                .is_some_and(|t| s(t, "spec.kind") == "session");
            (k, session)
        })
        .collect();
    for (key, session) in theirs {
        if session {
            store.remove(Kind::ExtToken, &key, false);
        } else if let Some(mut t) = store.get(Kind::ExtToken, &key).cloned() {
            if get_path(&t, "spec.enabled").and_then(Value::as_bool) != Some(false) {
                set_path(&mut t, "spec.enabled", json!(false));
                store.stamp_update(&mut t, true);
                store.put(Kind::ExtToken, key, t, None);
            }
        }
    }
}

/// Relabels every user (a retention setting changed: userretention/label.go `EnsureForAll`).
pub(crate) fn label_all_for_retention(store: &mut Store) {
    let users: Vec<String> = store.keys_of(Kind::User);
    for u in users {
        label_for_retention(store, &u);
    }
}

/// Replaces `provider`'s group principals in the user's `UserAttribute` (as a login or a refresh of that provider
/// does: rancher/rancher pkg/auth/providerrefresh/refresher.go `refreshAttributes`, which also stamps `LastRefresh`).
pub(crate) fn set_user_groups(store: &mut Store, user_id: &str, provider: &str, principal: &str, groups: &[String]) {
    let items: Vec<Value> = groups
        .iter()
        .map(|g| json!({"metadata": {"name": g}, "principalType": "group", "provider": provider, "memberOf": true}))
        .collect();
    let now = now_rfc3339();
    match store.get(Kind::UserAttribute, user_id).cloned() {
        Some(mut a) => {
            a["GroupPrincipals"][provider] = json!({"Items": items});
            a["ExtraByProvider"][provider] = json!({"principalid": [principal]});
            a["UserName"] = json!(user_id);
            store.stamp_update(&mut a, false);
            store.put(Kind::UserAttribute, user_id.to_string(), a, None);
        }
        None => {
            let a = json!({
                "metadata": {"name": user_id},
                "UserName": user_id,
                "GroupPrincipals": {provider: {"Items": items}},
                "ExtraByProvider": {provider: {"principalid": [principal]}},
                "LastRefresh": "",
                "NeedsRefresh": false,
            });
            insert_new(store, Kind::UserAttribute, a, &now, None);
        }
    }
}

/// Re-reads a user's groups from every enabled directory it has a principal of, as Rancher's refresher does for a
/// `refreshauthprovideraccess` action (rancher/rancher pkg/auth/providerrefresh/refresher.go `refreshSingleUser`):
/// each provider's entry is replaced, `LastRefresh` set, `NeedsRefresh` cleared.
pub(crate) fn refresh_user_groups(store: &mut Store, user_id: &str) {
    let principals: Vec<String> = store
        .get(Kind::User, user_id)
        .and_then(|u| u.get("principalIds"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|p| !p.starts_with("local://") && !p.starts_with("system://"))
        .map(str::to_string)
        .collect();
    let mut touched = false;
    for pid in principals {
        let Some(provider) = crate::norman::provider_of_principal(store, &pid) else {
            continue;
        };
        if !crate::auth::provider_enabled(store, &provider) {
            continue;
        }
        let groups = crate::norman::directory_group_ids(store, &provider, &pid);
        set_user_groups(store, user_id, &provider, &pid, &groups);
        touched = true;
    }
    if let Some(mut a) = store.get(Kind::UserAttribute, user_id).cloned() {
        a["LastRefresh"] = json!(now_rfc3339());
        a["NeedsRefresh"] = json!(false);
        store.stamp_update(&mut a, false);
        store.put(Kind::UserAttribute, user_id.to_string(), a, None);
    } else {
        let _ = touched;
    }
}

/// The annotation that guards the cleanup of a disabled auth provider (rancher/rancher
/// pkg/controllers/management/auth/auth_config.go `CleanupAnnotation`).
pub(crate) const CLEANUP_ANNOTATION: &str = "management.cattle.io/auth-provider-cleanup";

/// The provider a principal id belongs to, as Rancher's cleanup reads it: the text before the first `_`, unless
/// it is local (rancher/rancher pkg/auth/cleanup/service.go `getProviderNameFromPrincipalNames`).
fn provider_of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .filter_map(|n| n.split('_').next())
        .find(|p| !p.is_empty() && !p.starts_with("local"))
}

/// Runs Rancher's auth-config controller after a write to auth config `id` (rancher/rancher
/// pkg/controllers/management/auth/auth_config.go `sync`, 2.8-2.13): an unannotated config gets `unlocked` when
/// enabled and `rancher-locked` when not; enabling a `rancher-locked` one unlocks it; disabling an `unlocked` one
/// resets the config to its metadata (`resetAuthConfig`), deletes that provider's bindings, external users and
/// tokens (pkg/auth/cleanup/service.go `Run`) and locks it (`rancher-locked`). `user-locked` (set by an admin)
/// keeps everything.
pub(crate) fn sync_auth_config(store: &mut Store, id: &str) {
    let Some(mut cfg) = store.get(Kind::AuthConfig, id).cloned() else {
        return;
    };
    if id == "local" {
        return;
    }
    let enabled = cfg.get("enabled").and_then(Value::as_bool).unwrap_or(false);
    let value = cfg
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLEANUP_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let set = |cfg: &mut Value, v: &str| {
        let meta = cfg["metadata"].as_object_mut().expect("metadata");
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        ann[CLEANUP_ANNOTATION] = json!(v);
    };
    let next = match (value.as_str(), enabled) {
        ("", true) => "unlocked",
        ("", false) | ("unlocked", false) => "rancher-locked",
        ("rancher-locked", true) => "unlocked",
        _ => return,
    };
    if value == "unlocked" && !enabled {
        // resetAuthConfig keeps apiVersion, kind, metadata and type (2.13 also keeps logoutAllSupported).
        if let Some(o) = cfg.as_object_mut() {
            o.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "apiVersion" | "kind" | "metadata" | "type" | "logoutAllSupported"
                )
            });
        }
        cleanup_provider(store, id);
    }
    set(&mut cfg, next);
    store.stamp_update(&mut cfg, true);
    store.put(Kind::AuthConfig, id.to_string(), cfg, None);
}

/// pkg/auth/cleanup/service.go `Run`: group GRBs of the provider; CRTBs and PRTBs whose user or group principal is
/// of it; users who have a principal of it: deleted when they never were local (no password), otherwise reduced to
/// their local principal (`resetLocalUser`); and every token the provider issued.
fn cleanup_provider(store: &mut Store, provider: &str) {
    let of = |names: [&str; 2]| provider_of_names(names) == Some(provider);
    let grbs: Vec<String> = store
        .values(Kind::GlobalRoleBinding)
        .filter(|(_, b)| of([s(b, "groupPrincipalName"), ""]))
        .map(|(k, _)| k.to_string())
        .collect();
    for k in grbs {
        store.remove(Kind::GlobalRoleBinding, &k, false);
    }
    for kind in [Kind::Crtb, Kind::Prtb] {
        let keys: Vec<String> = store
            .values(kind)
            .filter(|(_, b)| of([s(b, "userPrincipalName"), s(b, "groupPrincipalName")]))
            .map(|(k, _)| k.to_string())
            .collect();
        for k in keys {
            store.remove(kind, &k, false);
        }
    }
    let users: Vec<(String, Vec<String>)> = store
        .values(Kind::User)
        .map(|(k, u)| {
            let ids = u
                .get("principalIds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            (k.to_string(), ids)
        })
        .filter(|(_, ids): &(String, Vec<String>)| provider_of_names(ids.iter().map(String::as_str)) == Some(provider))
        .collect();
    for (uid, ids) in users {
        if !store.passwords.contains_key(&uid) {
            store.remove(Kind::User, &uid, false);
            store.remove(Kind::UserAttribute, &uid, false);
        } else if ids.len() >= 2 {
            if let Some(local) = ids.iter().find(|p| p.starts_with("local")) {
                if let Some(mut u) = store.get(Kind::User, &uid).cloned() {
                    u["principalIds"] = json!([local]);
                    store.stamp_update(&mut u, false);
                    store.put(Kind::User, uid.clone(), u, None);
                }
            }
        }
    }
    let tokens: Vec<String> = store.keys_where(Kind::Token, |t| s(t, "authProvider") == provider);
    for k in tokens {
        store.remove(Kind::Token, &k, false);
    }
}

/// The label naming the GlobalRoleBinding a `crtb-grb-*` CRTB belongs to (rancher/rancher
/// pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go).
pub(crate) const GRB_OWNER_LABEL: &str = "authz.management.cattle.io/grb-owner";

fn grb_owner(b: &Value) -> Option<&str> {
    b.pointer("/metadata/labels")
        .and_then(|l| l.get(GRB_OWNER_LABEL))
        .and_then(Value::as_str)
}

/// A GlobalRole without its metadata and status, to tell a metadata-only update.
fn content(gr: &Value) -> Value {
    let mut c = gr.clone();
    if let Some(o) = c.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            o.remove(k);
        }
    }
    c
}

fn inherited_cluster_roles(gr: &Value) -> Vec<String> {
    gr.get("inheritedClusterRoles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The cluster rules a caller holds in every cluster through its global roles' `inheritedClusterRoles` (the
/// webhook's `GRBClusterRuleResolver`, rancher/webhook pkg/resolvers/grbClusterRuleResolver.go).
fn caller_cluster_rules(store: &Store, caller: &Caller) -> Vec<Rule> {
    let authz = Authz::new(store, caller);
    let mut roles = store.roles_of(&caller.user_id);
    for g in &caller.groups {
        roles.extend(store.roles_of(g));
    }
    roles
        .iter()
        .filter_map(|r| store.get(Kind::GlobalRole, r))
        .flat_map(inherited_cluster_roles)
        .flat_map(|rt| authz.role_template_rules(&rt))
        .collect()
}

/// The escalation check on cluster rules: `wanted` must be held in every cluster through the caller's own global
/// roles, unless the caller has `bypass`.
fn confirm_cluster_rules(
    store: &Store,
    caller: &Caller,
    kind: Kind,
    wanted: &[Rule],
    bypass: (&str, Kind, &str),
) -> Result<(), ApiErr> {
    let authz = Authz::new(store, caller);
    if caller.admin || authz.has_verb(bypass.0, bypass.1, bypass.2) {
        return Ok(());
    }
    let missing = crate::auth::not_held(&caller_cluster_rules(store, caller), wanted);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(escalation(kind, caller, &missing))
    }
}

/// rancher/webhook globalrole/validator.go `validateInheritedClusterRoles` (newly added role templates must exist,
/// have the cluster context and not be locked: 400) and the cluster-rules escalation check (`ClusterRulesFromRole`,
/// 403, bypass `escalate`), on create and on every update (release/v0.5 on, Rancher 2.8+).
fn check_inherited_cluster_roles(
    store: &Store,
    caller: &Caller,
    kind: Kind,
    name: &str,
    old: Option<&Value>,
    new: &Value,
    bypass: (&str, Kind, &str),
) -> Result<(), ApiErr> {
    let before: Vec<String> = old.map(inherited_cluster_roles).unwrap_or_default();
    let icr = inherited_cluster_roles(new);
    let field = "globalrole.inheritedClusterRoles";
    for rt in &icr {
        let Some(obj) = store.get(Kind::RoleTemplate, rt) else {
            return Err(webhook(
                kind,
                format!(
                    "{field}: Invalid value: \"\": unable to find all roleTemplates roletemplates.management.cattle.io \"{rt}\" not found"
                ),
            ));
        };
        if before.contains(rt) {
            continue;
        }
        let ctx = s(obj, "context");
        if ctx != "cluster" {
            return Err(webhook(
                kind,
                format!(
                    "{field}: Invalid value: \"{rt}\": unable to bind a roleTemplate with non-cluster context: {ctx}"
                ),
            ));
        }
        if obj.get("locked").and_then(Value::as_bool) == Some(true) {
            return Err(webhook(
                kind,
                format!("{field}: Invalid value: \"{rt}\": unable to use locked roleTemplate"),
            ));
        }
    }
    let _ = name;
    let authz = Authz::new(store, caller);
    let wanted: Vec<Rule> = icr.iter().flat_map(|rt| authz.role_template_rules(rt)).collect();
    confirm_cluster_rules(store, caller, kind, &wanted, bypass)
}

/// rancher/webhook globalrolebinding/validator.go `validateGlobalRole` (a locked inherited role template: 400) and
/// the cluster-rules escalation check (403, bypass `bind` on the GlobalRole).
fn check_grb_cluster_rules(store: &Store, caller: &Caller, kind: Kind, gr: &Value, role: &str) -> Result<(), ApiErr> {
    let icr = inherited_cluster_roles(gr);
    let locked: Vec<&String> = icr
        .iter()
        .filter(|rt| {
            store
                .get(Kind::RoleTemplate, rt)
                .and_then(|o| o.get("locked"))
                .and_then(Value::as_bool)
                == Some(true)
        })
        .collect();
    if !locked.is_empty() {
        let names: Vec<&str> = locked.iter().map(|s| s.as_str()).collect();
        return Err(webhook(
            kind,
            format!("globalrolebinding.globalRoleName: Invalid value: \"{role}\": global role inherits roleTemplate(s) \"{}\" which is locked", names.join(", ")),
        ));
    }
    let authz = Authz::new(store, caller);
    let wanted: Vec<Rule> = icr.iter().flat_map(|rt| authz.role_template_rules(rt)).collect();
    confirm_cluster_rules(store, caller, kind, &wanted, ("bind", Kind::GlobalRole, role))
}

/// rancher/rancher pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go
/// `reconcileClusterPermissions`: for a binding of a GlobalRole with `inheritedClusterRoles`, one CRTB per role
/// template in every non-local cluster, `generateName: crtb-grb-`, labelled with the owning binding, owned by it, with
/// the binding's subject.
pub(crate) fn reconcile_grb_cluster_permissions(store: &mut Store, grb_key: &str) {
    let Some(grb) = store.get(Kind::GlobalRoleBinding, grb_key).cloned() else {
        return;
    };
    let Some(gr) = store.get(Kind::GlobalRole, s(&grb, "globalRoleName")).cloned() else {
        return;
    };
    let icr = inherited_cluster_roles(&gr);
    if icr.is_empty() {
        return;
    }
    let clusters: Vec<String> = store
        .map(Kind::Cluster)
        .keys()
        .filter(|c| c.as_str() != "local")
        .cloned()
        .collect();
    let now = now_rfc3339();
    for c in clusters {
        for rt in &icr {
            let n = store.fresh_name(Kind::Crtb, &c, "crtb-grb-");
            let mut crtb = json!({
                "metadata": {"name": n, "namespace": c, "labels": {GRB_OWNER_LABEL: grb_key},
                             "ownerReferences": [{"apiVersion": "management.cattle.io/v3", "kind": "GlobalRoleBinding",
                                                  "name": grb_key, "uid": s(&grb, "metadata.uid")}]},
                "clusterName": c,
                "roleTemplateName": rt,
                "status": {"summary": "Completed"},
            });
            for f in ["userName", "userPrincipalName", "groupPrincipalName"] {
                let v = s(&grb, f);
                if !v.is_empty() {
                    crtb[f] = json!(v);
                }
            }
            insert_new(store, Kind::Crtb, crtb, &now, None);
        }
    }
}

#[cfg(test)]
mod retention_tests {
    use super::go_duration_secs;

    #[test]
    fn go_durations_parse_as_time_parse_duration_does() {
        assert_eq!(go_duration_secs("720h"), Some(720 * 3600));
        assert_eq!(go_duration_secs("1h30m"), Some(5400));
        assert_eq!(go_duration_secs("1.5h"), Some(5400));
        assert_eq!(go_duration_secs("90s"), Some(90));
        assert_eq!(go_duration_secs("1500ms"), Some(1));
        assert_eq!(go_duration_secs("-2m"), Some(-120));
        assert_eq!(go_duration_secs("0"), Some(0));
        for bad in ["", "30", "3d", "h", "1h-2m", "abc"] {
            assert_eq!(go_duration_secs(bad), None, "{bad}");
        }
    }
}

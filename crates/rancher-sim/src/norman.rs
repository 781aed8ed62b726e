//! Norman `/v3`: collections with norman pagination, filters and sort; renamed reference fields; links
//! and actions by permission; tokens, clusters (generateKubeconfig), principals, auth configs and their
//! actions, settings; and the public login endpoints (`/v3-public`, `/v1-public`).

use http::Method;
use serde_json::{json, Map, Value};

use crate::auth::{authenticate, caller_for, cluster_token_allowed, AuthOutcome, Authz, Caller};
use crate::http::{norman_err, norman_field_err, public_err, unauthorized_2x, Req, Resp};
use crate::ids;
use crate::ops::{self, ApiErr, CreateOpts};
use crate::seed::{principal_scheme, AUTH_CONFIGS, SECRET_FIELDS};
use crate::server::Shared;
use crate::state::{get_path, now_ms, parse_ms, s, set_path, Kind, Store, Verb};

/// A norman schema the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NType {
    Obj(Kind),
    Principal,
    /// A provider config type (`githubConfig`...), bound to one auth config id.
    ProviderConfig(&'static str, &'static str),
}

const TYPES: &[(&str, Kind)] = &[
    ("user", Kind::User),
    ("globalRole", Kind::GlobalRole),
    ("globalRoleBinding", Kind::GlobalRoleBinding),
    ("roleTemplate", Kind::RoleTemplate),
    ("project", Kind::Project),
    ("clusterRoleTemplateBinding", Kind::Crtb),
    ("projectRoleTemplateBinding", Kind::Prtb),
    ("token", Kind::Token),
    ("cluster", Kind::Cluster),
    ("authConfig", Kind::AuthConfig),
    ("setting", Kind::Setting),
];

/// The norman schema id of a kind.
pub(crate) fn type_id(kind: Kind) -> &'static str {
    TYPES.iter().find(|(_, k)| *k == kind).map(|(t, _)| *t).unwrap_or("")
}

/// Resolves a `/v3/<segment>` type name, case-insensitively, singular or plural.
pub(crate) fn resolve_type(seg: &str) -> Option<NType> {
    let l = seg.to_ascii_lowercase();
    let l = l.strip_suffix('s').unwrap_or(&l).to_string();
    if l == "principal" {
        return Some(NType::Principal);
    }
    for (t, k) in TYPES {
        if t.to_ascii_lowercase() == l {
            return Some(NType::Obj(*k));
        }
    }
    for (id, ty) in AUTH_CONFIGS {
        if ty.to_ascii_lowercase() == l {
            return Some(NType::ProviderConfig(id, ty));
        }
    }
    None
}

/// `(norman field, k8s path, settable on create, settable on update)` per kind.
pub(crate) fn fields(kind: Kind) -> &'static [(&'static str, &'static str, bool, bool)] {
    match kind {
        Kind::User => &[
            ("name", "displayName", true, true),
            ("username", "username", true, false),
            ("description", "description", true, true),
            ("enabled", "enabled", true, true),
            ("mustChangePassword", "mustChangePassword", true, true),
            ("principalIds", "principalIds", false, false),
            ("conditions", "status.conditions", false, false),
        ],
        Kind::GlobalRole => &[
            ("name", "displayName", true, true),
            ("description", "description", true, true),
            ("rules", "rules", true, true),
            ("newUserDefault", "newUserDefault", true, true),
            ("builtin", "builtin", false, false),
            ("inheritedClusterRoles", "inheritedClusterRoles", true, true),
            ("namespacedRules", "namespacedRules", true, true),
            (
                "inheritedFleetWorkspacePermissions",
                "inheritedFleetWorkspacePermissions",
                true,
                true,
            ),
            ("status", "status", false, false),
        ],
        Kind::GlobalRoleBinding => &[
            ("name", "metadata.name", true, false),
            ("globalRoleId", "globalRoleName", true, false),
            ("userId", "userName", true, false),
            ("groupPrincipalId", "groupPrincipalName", true, false),
            ("userPrincipalId", "userPrincipalName", true, false),
            ("status", "status", false, false),
        ],
        Kind::RoleTemplate => &[
            ("name", "displayName", true, true),
            ("description", "description", true, true),
            ("context", "context", true, true),
            ("rules", "rules", true, true),
            ("roleTemplateIds", "roleTemplateNames", true, true),
            ("builtin", "builtin", false, false),
            ("external", "external", true, true),
            ("externalRules", "externalRules", true, true),
            ("hidden", "hidden", true, true),
            ("locked", "locked", true, true),
            ("administrative", "administrative", true, true),
            ("clusterCreatorDefault", "clusterCreatorDefault", true, true),
            ("projectCreatorDefault", "projectCreatorDefault", true, true),
        ],
        Kind::Project => &[
            ("name", "spec.displayName", true, true),
            ("clusterId", "spec.clusterName", true, false),
            ("description", "spec.description", true, true),
            ("resourceQuota", "spec.resourceQuota", true, true),
            (
                "namespaceDefaultResourceQuota",
                "spec.namespaceDefaultResourceQuota",
                true,
                true,
            ),
            (
                "containerDefaultResourceLimit",
                "spec.containerDefaultResourceLimit",
                true,
                true,
            ),
            ("backingNamespace", "status.backingNamespace", false, false),
            ("conditions", "status.conditions", false, false),
        ],
        Kind::Crtb => &[
            ("name", "metadata.name", true, false),
            ("clusterId", "clusterName", true, false),
            ("roleTemplateId", "roleTemplateName", true, false),
            ("userId", "userName", true, false),
            ("userPrincipalId", "userPrincipalName", true, false),
            ("groupId", "groupName", true, false),
            ("groupPrincipalId", "groupPrincipalName", true, false),
            ("status", "status", false, false),
        ],
        Kind::Prtb => &[
            ("name", "metadata.name", true, false),
            ("projectId", "projectName", true, false),
            ("roleTemplateId", "roleTemplateName", true, false),
            ("userId", "userName", true, false),
            ("userPrincipalId", "userPrincipalName", true, false),
            ("groupId", "groupName", true, false),
            ("groupPrincipalId", "groupPrincipalName", true, false),
            // `nocreate,noupdate` (authz_types.go): norman drops it from a create body.
            ("serviceAccount", "serviceAccount", false, false),
        ],
        Kind::Cluster => &[
            ("name", "spec.displayName", false, false),
            ("description", "spec.description", false, false),
            ("conditions", "status.conditions", false, false),
            ("version", "status.version", false, false),
        ],
        Kind::Setting => &[
            ("name", "metadata.name", false, false),
            ("value", "value", true, true),
            ("default", "default", false, false),
            ("customized", "customized", false, false),
            ("source", "source", false, false),
        ],
        _ => &[],
    }
}

fn map_err(e: &ApiErr) -> Resp {
    match e {
        ApiErr::Webhook { code: 400, .. } => norman_err(400, "BadRequest", &e.message()),
        ApiErr::Webhook { code: 403, message, .. } => norman_err(403, "PermissionDenied", message),
        ApiErr::Denied { code, reason, .. } => norman_err(*code, reason, &e.message()),
        _ => norman_err(e.status(), e.reason(), &e.message()),
    }
}

/// Collection URL path segment (camelCase plural).
fn plural_of(kind: Kind) -> String {
    format!("{}s", type_id(kind))
}

fn enc(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

struct Ctx<'a> {
    store: &'a Store,
    authz: Authz<'a>,
    base: String,
    version_213: bool,
}

impl<'a> Ctx<'a> {
    fn caller(&self) -> &Caller {
        self.authz.caller
    }
}

fn common(ctx: &Ctx, kind: Kind, key: &str, obj: &Value, out: &mut Map<String, Value>) {
    let ty = type_id(kind);
    out.insert("id".into(), json!(key));
    out.insert("type".into(), json!(ty));
    out.insert("baseType".into(), json!(ty));
    let created = s(obj, "metadata.creationTimestamp");
    out.insert("created".into(), json!(created));
    out.insert("createdTS".into(), json!(parse_ms(created).unwrap_or(0)));
    let creator = get_path(obj, "metadata.annotations")
        .and_then(|a| a.get("field.cattle.io/creatorId"))
        .cloned()
        .unwrap_or(Value::Null);
    out.insert("creatorId".into(), creator);
    out.insert("uuid".into(), json!(s(obj, "metadata.uid")));
    out.insert(
        "labels".into(),
        get_path(obj, "metadata.labels").cloned().unwrap_or(json!({})),
    );
    out.insert(
        "annotations".into(),
        get_path(obj, "metadata.annotations").cloned().unwrap_or(json!({})),
    );
    if let Some(o) = get_path(obj, "metadata.ownerReferences") {
        out.insert("ownerReferences".into(), o.clone());
    }
    let self_url = format!("{}/v3/{}/{}", ctx.base, plural_of(kind), key);
    let mut links = Map::new();
    links.insert("self".into(), json!(self_url));
    let can_update = ctx.authz.can("update", kind, obj);
    if can_update && kind != Kind::Token && kind != Kind::Cluster {
        links.insert("update".into(), json!(self_url));
    }
    if ctx.authz.can("delete", kind, obj) && kind != Kind::Cluster && kind != Kind::Setting {
        links.insert("remove".into(), json!(self_url));
    }
    let uid = s(obj, "metadata.name");
    match kind {
        Kind::User => {
            for (l, p, f) in [
                ("globalRoleBindings", "globalRoleBindings", "userId"),
                ("clusterRoleTemplateBindings", "clusterRoleTemplateBindings", "userId"),
                ("projectRoleTemplateBindings", "projectRoleTemplateBindings", "userId"),
                ("tokens", "tokens", "userId"),
            ] {
                links.insert(l.into(), json!(format!("{}/v3/{p}?{f}={uid}", ctx.base)));
            }
        }
        Kind::Project => {
            links.insert(
                "projectRoleTemplateBindings".into(),
                json!(format!("{self_url}/projectroletemplatebindings")),
            );
        }
        Kind::Cluster => {
            links.insert(
                "clusterRoleTemplateBindings".into(),
                json!(format!("{self_url}/clusterroletemplatebindings")),
            );
            links.insert("projects".into(), json!(format!("{self_url}/projects")));
        }
        Kind::GlobalRole => {
            links.insert(
                "globalRoleBindings".into(),
                json!(format!("{}/v3/globalRoleBindings?globalRoleId={uid}", ctx.base)),
            );
        }
        _ => {}
    }
    out.insert("links".into(), Value::Object(links));
    let mut actions = Map::new();
    match kind {
        // pkg/auth/api/user/user_actions.go `UserFormatter`: refresh only for callers who may create users
        // (`userCanRefresh`).
        Kind::User if can_update => {
            actions.insert("setpassword".into(), json!(format!("{self_url}?action=setpassword")));
            if ctx.authz.can_all("create", Kind::User) {
                actions.insert(
                    "refreshauthprovideraccess".into(),
                    json!(format!("{self_url}?action=refreshauthprovideraccess")),
                );
            }
        }
        Kind::Project => {
            actions.insert("exportYaml".into(), json!(format!("{self_url}?action=exportYaml")));
        }
        Kind::Cluster => {
            actions.insert(
                "generateKubeconfig".into(),
                json!(format!("{self_url}?action=generateKubeconfig")),
            );
        }
        _ => {}
    }
    out.insert("actions".into(), Value::Object(actions));
    if kind.info().namespaced {
        let ns = s(obj, "metadata.namespace");
        out.insert(
            "namespaceId".into(),
            if kind == Kind::Crtb { json!(ns) } else { Value::Null },
        );
    }
    let has_state = matches!(
        kind,
        Kind::User
            | Kind::GlobalRole
            | Kind::GlobalRoleBinding
            | Kind::Project
            | Kind::Crtb
            | Kind::Prtb
            | Kind::Cluster
            | Kind::RoleTemplate
    );
    if has_state {
        let state = if kind == Kind::User && obj.get("enabled").and_then(Value::as_bool) == Some(false) {
            "inactive"
        } else {
            "active"
        };
        out.insert("state".into(), json!(state));
        out.insert("transitioning".into(), json!("no"));
        out.insert("transitioningMessage".into(), json!(""));
    }
}

/// Go's `fmt.Sprint` of a map (keys sorted), for the token `userPrincipal` quirk.
fn go_map(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys.iter().map(|k| format!("{k}:{}", go_map(&m[*k]))).collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_map).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

fn token_view(ctx: &Ctx, key: &str, obj: &Value, with_secret: Option<&str>) -> Value {
    let mut out = Map::new();
    common(ctx, Kind::Token, key, obj, &mut out);
    let mut principal = obj.get("userPrincipal").cloned().unwrap_or(json!({}));
    set_path(&mut principal, "metadata.creationTimestamp", Value::Null);
    let expires = s(obj, "expiresAt");
    let cluster = s(obj, "clusterName");
    let derived = obj.get("isDerived").and_then(Value::as_bool).unwrap_or(true);
    out.insert("name".into(), json!(key));
    out.insert("authProvider".into(), json!(s(obj, "authProvider")));
    out.insert(
        "clusterId".into(),
        if cluster.is_empty() {
            Value::Null
        } else {
            json!(cluster)
        },
    );
    out.insert("current".into(), json!(!derived && ctx.caller().token == key));
    out.insert("description".into(), json!(s(obj, "description")));
    out.insert("enabled".into(), obj.get("enabled").cloned().unwrap_or(json!(true)));
    out.insert("expired".into(), json!(ops::expired(expires)));
    out.insert("expiresAt".into(), json!(expires));
    out.insert("groupPrincipals".into(), Value::Null);
    out.insert("isDerived".into(), json!(derived));
    out.insert("lastUpdateTime".into(), json!(""));
    // Norman shows the struct's `lastUsedAt` (omitempty: only once used; the field exists from 2.10,
    // rancher/rancher pkg/apis/management.cattle.io/v3/authn_types.go `Token.LastUsedAt`).
    if let Some(t) = obj.get("lastUsedAt").filter(|v| !v.is_null()) {
        out.insert("lastUsedAt".into(), t.clone());
    }
    out.insert(
        "providerInfo".into(),
        obj.get("providerInfo").cloned().unwrap_or(json!({})),
    );
    out.insert("ttl".into(), obj.get("ttl").cloned().unwrap_or(json!(0)));
    out.insert("userId".into(), json!(s(obj, "userId")));
    out.insert("userPrincipal".into(), json!(go_map(&principal)));
    if let Some(t) = with_secret {
        out.insert("token".into(), json!(t));
    }
    Value::Object(out)
}

fn authconfig_view(ctx: &Ctx, key: &str, obj: &Value) -> Value {
    let mut out = Map::new();
    let ty = s(obj, "type").to_string();
    for (k, v) in obj.as_object().into_iter().flatten() {
        if matches!(k.as_str(), "metadata" | "apiVersion" | "kind") || SECRET_FIELDS.contains(&k.as_str()) {
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    let created = s(obj, "metadata.creationTimestamp");
    out.insert("id".into(), json!(key));
    out.insert("name".into(), json!(key));
    out.insert("type".into(), json!(ty));
    out.insert("baseType".into(), json!("authConfig"));
    out.insert("created".into(), json!(created));
    out.insert("createdTS".into(), json!(parse_ms(created).unwrap_or(0)));
    out.insert("creatorId".into(), Value::Null);
    out.insert("uuid".into(), json!(s(obj, "metadata.uid")));
    // Norman shows an object's metadata labels and annotations at the top (the cleanup annotation among them).
    out.insert(
        "labels".into(),
        get_path(obj, "metadata.labels").cloned().unwrap_or(json!({})),
    );
    out.insert(
        "annotations".into(),
        get_path(obj, "metadata.annotations").cloned().unwrap_or(json!({})),
    );
    let self_url = format!("{}/v3/{}s/{}", ctx.base, ty, key);
    let mut links = Map::new();
    links.insert("self".into(), json!(self_url));
    let manage = ctx.authz.can_all("update", Kind::AuthConfig);
    if manage && key != "local" {
        links.insert("update".into(), json!(self_url));
    }
    out.insert("links".into(), Value::Object(links));
    let mut actions = Map::new();
    if manage {
        let enabled = obj.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        for a in provider_actions(key) {
            if *a == "disable" && !enabled {
                continue;
            }
            actions.insert(a.to_string(), json!(format!("{self_url}?action={a}")));
        }
    }
    out.insert("actions".into(), Value::Object(actions));
    Value::Object(out)
}

fn provider_actions(id: &str) -> &'static [&'static str] {
    match id {
        "local" => &[],
        "activedirectory" | "openldap" | "freeipa" => &["testAndApply", "disable"],
        "azuread" => &["configureTest", "testAndApply", "disable", "upgrade"],
        _ => &["configureTest", "testAndApply", "disable"],
    }
}

/// The norman view of a stored object.
fn to_norman(ctx: &Ctx, kind: Kind, key: &str, obj: &Value) -> Value {
    match kind {
        Kind::Token => return token_view(ctx, key, obj, None),
        Kind::AuthConfig => return authconfig_view(ctx, key, obj),
        _ => {}
    }
    let mut out = Map::new();
    common(ctx, kind, key, obj, &mut out);
    for (n, k, _, _) in fields(kind) {
        match get_path(obj, k) {
            Some(v) => {
                out.insert((*n).into(), v.clone());
            }
            None if matches!(*n, "userId" | "groupPrincipalId" | "userPrincipalId" | "groupId") => {}
            None => {}
        }
    }
    match kind {
        Kind::User => {
            out.insert("me".into(), json!(key == ctx.caller().user_id));
            if s(obj, "displayName").is_empty() {
                out.remove("name");
            }
        }
        Kind::Project => {
            out.insert("namespaceId".into(), Value::Null);
        }
        Kind::Cluster => {
            out.insert("internal".into(), json!(key == "local"));
            out.insert("driver".into(), json!(if key == "local" { "k3s" } else { "imported" }));
        }
        Kind::Setting if !out.contains_key("name") => {
            out.insert("name".into(), json!(key));
        }
        _ => {}
    }
    Value::Object(out)
}

/// Value of a norman field of a stored object (for filters and sort).
fn field_value(kind: Kind, key: &str, obj: &Value, field: &str) -> Option<Value> {
    match field {
        "id" => return Some(json!(key)),
        "uuid" => return get_path(obj, "metadata.uid").cloned(),
        "created" => return get_path(obj, "metadata.creationTimestamp").cloned(),
        "state" => return Some(json!("active")),
        "namespaceId" => return get_path(obj, "metadata.namespace").cloned(),
        _ => {}
    }
    if kind == Kind::Token {
        let path = match field {
            "userId" => "userId",
            "clusterId" => "clusterName",
            "description" | "authProvider" | "expiresAt" | "ttl" | "isDerived" | "enabled" => field,
            "name" => return Some(json!(key)),
            _ => return None,
        };
        return get_path(obj, path).cloned();
    }
    fields(kind)
        .iter()
        .find(|(n, _, _, _)| *n == field)
        .and_then(|(_, k, _, _)| get_path(obj, k).cloned())
}

fn filterable(kind: Kind, field: &str) -> bool {
    matches!(field, "id" | "uuid" | "created" | "state" | "namespaceId")
        || fields(kind)
            .iter()
            .any(|(n, _, _, _)| *n == field && !matches!(*n, "rules" | "status" | "conditions" | "principalIds"))
}

fn value_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

enum Filter {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Null(String),
    NotNull(String),
}

fn parse_filters(kind: Kind, req: &Req) -> Vec<Filter> {
    let mut out: Vec<Filter> = Vec::new();
    for (k, v) in &req.query {
        if matches!(k.as_str(), "limit" | "marker" | "sort" | "order" | "action" | "me") || k.starts_with('_') {
            continue;
        }
        let (field, modifier) = match k.rsplit_once('_') {
            Some((f, m)) if matches!(m, "ne" | "in" | "notin" | "null" | "notnull" | "eq") => (f, m),
            _ => (k.as_str(), "eq"),
        };
        if !filterable(kind, field) {
            continue;
        }
        let f = field.to_string();
        match modifier {
            "ne" => out.push(Filter::Ne(f, v.clone())),
            "in" => match out.iter_mut().find(|x| matches!(x, Filter::In(ff, _) if *ff == f)) {
                Some(Filter::In(_, vals)) => vals.push(v.clone()),
                _ => out.push(Filter::In(f, vec![v.clone()])),
            },
            "notin" => out.push(Filter::NotIn(f, v.split(',').map(str::to_string).collect())),
            "null" => out.push(Filter::Null(f)),
            "notnull" => out.push(Filter::NotNull(f)),
            _ => out.push(Filter::Eq(f, v.clone())),
        }
    }
    out
}

fn filter_ok(kind: Kind, key: &str, obj: &Value, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let get = |field: &str| field_value(kind, key, obj, field).map(|v| value_str(&v));
        match f {
            Filter::Eq(field, v) => get(field).as_deref() == Some(v.as_str()),
            Filter::Ne(field, v) => get(field).as_deref() != Some(v.as_str()),
            Filter::In(field, vs) => get(field).is_some_and(|x| vs.contains(&x)),
            Filter::NotIn(field, vs) => !get(field).is_some_and(|x| vs.contains(&x)),
            Filter::Null(field) => get(field).is_none_or(|x| x.is_empty()),
            Filter::NotNull(field) => get(field).is_some_and(|x| !x.is_empty()),
        }
    })
}

fn url_with(req: &Req, set: &[(&str, Option<String>)]) -> String {
    let mut q: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
        .cloned()
        .collect();
    for (k, v) in set {
        if let Some(v) = v {
            q.push((k.to_string(), v.clone()));
        }
    }
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &q {
        ser.append_pair(k, v);
    }
    let qs = ser.finish();
    if qs.is_empty() {
        format!("{}{}", req.base, req.path)
    } else {
        format!("{}{}?{}", req.base, req.path, qs)
    }
}

fn parse_limit(req: &Req) -> usize {
    match req.q("limit").map(|l| l.parse::<i64>()) {
        Some(Ok(l)) if !(0..=10_000).contains(&l) => 10_000,
        Some(Ok(l)) => l as usize,
        _ => 1000,
    }
}

struct Page {
    data: Vec<Value>,
    total: usize,
    next: Option<String>,
    previous: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn envelope(
    ctx: &Ctx,
    req: &Req,
    resource_type: &str,
    create: Option<String>,
    actions: Value,
    page: Page,
    limit: usize,
    kind: Option<Kind>,
    filters_used: &[Filter],
) -> Resp {
    let mut pagination = json!({"limit": limit, "total": page.total});
    if let Some(m) = &page.next {
        pagination["partial"] = json!(true);
        pagination["next"] = json!(url_with(req, &[("marker", Some(m.clone()))]));
    }
    if let Some(p) = &page.previous {
        pagination["partial"] = json!(true);
        pagination["previous"] = json!(url_with(req, &[("marker", Some(p.clone()))]));
    }
    if page.next.is_some() || page.previous.is_some() {
        pagination["first"] = json!(url_with(req, &[("marker", None)]));
    }
    let order = if req.q("order") == Some("desc") { "desc" } else { "asc" };
    let mut sort = json!({"order": order, "reverse": url_with(req, &[("order", Some(if order == "asc" { "desc" } else { "asc" }.into()))])});
    let mut filters = Map::new();
    if let Some(k) = kind {
        let mut links = Map::new();
        let mut names: Vec<&str> = vec!["id", "created", "state", "uuid"];
        names.extend(fields(k).iter().map(|(n, _, _, _)| *n).filter(|n| filterable(k, n)));
        for n in &names {
            links.insert(
                (*n).into(),
                json!(url_with(req, &[("sort", Some((*n).to_string())), ("marker", None)])),
            );
            filters.insert((*n).into(), Value::Null);
        }
        sort["links"] = Value::Object(links);
        if let Some(sn) = req.q("sort") {
            sort["name"] = json!(sn);
        }
        for f in filters_used {
            let (name, modifier, value) = match f {
                Filter::Eq(n, v) => (n, "eq", json!(v)),
                Filter::Ne(n, v) => (n, "ne", json!(v)),
                Filter::In(n, v) => (n, "in", json!(v)),
                Filter::NotIn(n, v) => (n, "notin", json!(v)),
                Filter::Null(n) => (n, "null", json!("")),
                Filter::NotNull(n) => (n, "notnull", json!("")),
            };
            filters.insert(name.clone(), json!([{"modifier": modifier, "value": value}]));
        }
    }
    let mut create_types = Map::new();
    if let Some(url) = create {
        create_types.insert(resource_type.into(), json!(url));
    }
    let head = json!({
        "type": "collection",
        "links": {"self": req.url()},
        "createTypes": create_types,
        "actions": actions,
        "pagination": pagination,
        "sort": sort,
        "filters": filters,
        "resourceType": resource_type,
    });
    let mut buf = serde_json::to_vec(&head).expect("in-memory JSON");
    buf.pop();
    buf.extend_from_slice(b",\"data\":[");
    for (i, d) in page.data.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        serde_json::to_writer(&mut buf, d).expect("in-memory JSON");
    }
    buf.extend_from_slice(b"]}");
    let _ = ctx;
    Resp::raw_json(200, buf)
}

/// Lists a kind with norman filtering, sorting and marker pagination.
fn list(ctx: &Ctx, req: &Req, kind: Kind, mut extra: Vec<Filter>) -> Resp {
    let store = ctx.store;
    let limit = parse_limit(req);
    let mut filters = parse_filters(kind, req);
    filters.append(&mut extra);
    let me_only = kind == Kind::User && req.q("me") == Some("true");
    let all_visible = ctx.authz.can_all("list", kind);
    let marker = req
        .q("marker")
        .filter(|m| store.get(kind, m).is_some())
        .map(str::to_string);
    let sort_field = req
        .q("sort")
        .filter(|f| *f != "id" && filterable(kind, f))
        .map(str::to_string);
    let desc = req.q("order") == Some("desc");
    // rancher/rancher pkg/auth/api/user/user_store.go filters `system://` users out of /v3.
    let hide_system = kind == Kind::User;
    let simple = filters.is_empty() && !me_only && all_visible && sort_field.is_none() && !desc && !hide_system;
    let page = if simple {
        let start = marker.clone();
        // Stored and seeded objects in key order, from the marker on (the keys before it are only compared).
        let mut it = store
            .items(kind, None, None)
            .skip_while(|(k, _)| start.as_deref().is_some_and(|m| *k < m));
        let data: Vec<Value> = it
            .by_ref()
            .take(limit)
            .map(|(k, o)| to_norman(ctx, kind, k, &o.value()))
            .collect();
        let next = if limit > 0 {
            it.next().map(|(k, _)| k.to_string())
        } else {
            None
        };
        let previous = start.as_ref().and_then(|m| {
            let before: Vec<&str> = store
                .items(kind, None, None)
                .map(|(k, _)| k)
                .take_while(|k| *k < m.as_str())
                .collect();
            before
                .len()
                .checked_sub(limit.max(1))
                .map(|i| before[i])
                .or(before.first().copied())
                .map(str::to_string)
        });
        Page {
            data,
            total: store.len_of(kind),
            next,
            previous,
        }
    } else {
        let mut items: Vec<(&str, std::borrow::Cow<'_, Value>)> = store
            .values(kind)
            .filter(|(k, _)| !me_only || *k == ctx.caller().user_id)
            .filter(|(_, o)| !hide_system || !is_system_user(o))
            .filter(|(k, o)| filter_ok(kind, k, o, &filters))
            .filter(|(_, o)| all_visible || ctx.authz.can("list", kind, o))
            .collect();
        if let Some(f) = &sort_field {
            items.sort_by(|a, b| {
                let va = field_value(kind, a.0, &a.1, f)
                    .map(|v| value_str(&v))
                    .unwrap_or_default();
                let vb = field_value(kind, b.0, &b.1, f)
                    .map(|v| value_str(&v))
                    .unwrap_or_default();
                va.cmp(&vb).then_with(|| a.0.cmp(b.0))
            });
        }
        if desc {
            items.reverse();
        }
        let start = marker
            .as_ref()
            .and_then(|m| items.iter().position(|(k, _)| *k == m.as_str()))
            .unwrap_or(0);
        let end = (start + limit).min(items.len());
        let data = items[start..end]
            .iter()
            .map(|(k, o)| to_norman(ctx, kind, k, o))
            .collect();
        let next = if end < items.len() && limit > 0 {
            Some(items[end].0.to_string())
        } else {
            None
        };
        let previous = if start > 0 {
            Some(items[start.saturating_sub(limit.max(1))].0.to_string())
        } else {
            None
        };
        Page {
            data,
            total: items.len(),
            next,
            previous,
        }
    };
    let create = if can_create_any(ctx, kind) {
        Some(format!("{}/v3/{}", ctx.base, plural_of(kind)))
    } else {
        None
    };
    let actions = match kind {
        // `CollectionFormatter`: `changepassword` always, refresh only for callers who may create users.
        Kind::User if ctx.authz.can_all("create", Kind::User) => {
            json!({"changepassword": format!("{}/v3/users?action=changepassword", ctx.base),
                   "refreshauthprovideraccess": format!("{}/v3/users?action=refreshauthprovideraccess", ctx.base)})
        }
        Kind::User => json!({"changepassword": format!("{}/v3/users?action=changepassword", ctx.base)}),
        _ => json!({}),
    };
    envelope(
        ctx,
        req,
        type_id(kind),
        create,
        actions,
        page,
        limit,
        Some(kind),
        &filters,
    )
}

fn can_create_any(ctx: &Ctx, kind: Kind) -> bool {
    match kind {
        Kind::Cluster | Kind::Setting | Kind::AuthConfig => false,
        Kind::Token => true,
        _ => ctx.authz.can_all("create", kind),
    }
}

/// Entry point for `/v3/...` on 2.x.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Resp {
    // Unauthenticated settings.
    if req.method == Method::GET && req.seg(1).eq_ignore_ascii_case("settings") && req.segs.len() == 3 {
        let public = [
            "cacerts",
            "first-login",
            "ui-banners",
            "ui-issues",
            "ui-pl",
            "ui-brand",
            "ui-default-landing",
        ];
        if public.contains(&req.seg(2)) && crate::auth::credential(req).is_none() {
            let store = shared.store.read().expect("store lock");
            let anon = Caller {
                user_id: String::new(),
                token: String::new(),
                cluster: None,
                admin: false,
                rules: vec![],
                derived: true,
                groups: vec![],
            };
            let ctx = Ctx {
                store: &store,
                authz: Authz::new(&store, &anon),
                base: req.base.clone(),
                version_213: shared.version.at_least(2, 13),
            };
            if let Some(o) = store.get(Kind::Setting, req.seg(2)) {
                let mut v = to_norman(&ctx, Kind::Setting, req.seg(2), o);
                v["links"] = json!({"self": format!("{}/v3/settings/{}", req.base, req.seg(2))});
                return Resp::json(200, &v);
            }
        }
    }
    let caller = {
        let store = shared.store.read().expect("store lock");
        match authenticate(&store, req) {
            AuthOutcome::Caller(c) => c,
            _ => return unauthorized_2x(),
        }
    };
    crate::auth::note_use(shared, &caller);
    if let Some(cluster) = &caller.cluster {
        if !cluster_token_allowed(req, cluster) {
            return unauthorized_2x();
        }
    }
    if req.segs.len() == 1 {
        return Resp::json(200, &crate::schemas::api_root(&req.base));
    }
    if req.seg(1).eq_ignore_ascii_case("schemas") {
        return crate::schemas::norman(shared, req);
    }
    // Norman knows the UserAttribute schema but gives it no collection or resource methods (rancher/rancher
    // pkg/schemas/management.cattle.io/v3/schema.go `userTypes`): every method is refused.
    if matches!(
        req.seg(1).to_ascii_lowercase().as_str(),
        "userattributes" | "userattribute"
    ) {
        return norman_err(405, "MethodNotAllow", &format!("Method {} not supported", req.method));
    }
    let Some(ty) = resolve_type(req.seg(1)) else {
        return norman_err(404, "NotFound", &format!("failed to find schema {}", req.seg(1))).no_route();
    };
    let action = req.q("action").map(str::to_string);
    let id = req.segs.get(2).cloned();
    let sub = req.segs.get(3).cloned();
    if req.segs.len() > 4 {
        return norman_err(404, "NotFound", "not found").no_route();
    }
    match ty {
        NType::Principal => principals(shared, &caller, req, id.as_deref(), action.as_deref()),
        NType::ProviderConfig(cid, _) => authconfigs(
            shared,
            &caller,
            req,
            Some(id.as_deref().unwrap_or(cid)),
            action.as_deref(),
        ),
        NType::Obj(Kind::AuthConfig) => authconfigs(shared, &caller, req, id.as_deref(), action.as_deref()),
        NType::Obj(Kind::Token) => tokens(shared, &caller, req, id.as_deref(), action.as_deref()),
        NType::Obj(kind) => objects(
            shared,
            &caller,
            req,
            kind,
            id.as_deref(),
            sub.as_deref(),
            action.as_deref(),
        ),
    }
}

fn with_ctx<R>(shared: &Shared, caller: &Caller, req: &Req, f: impl FnOnce(&Ctx) -> R) -> R {
    let store = shared.store.read().expect("store lock");
    let ctx = Ctx {
        store: &store,
        authz: Authz::new(&store, caller),
        base: req.base.clone(),
        version_213: shared.version.at_least(2, 13),
    };
    f(&ctx)
}

fn not_found(kind: Kind, name: &str) -> Resp {
    map_err(&ApiErr::NotFound {
        kind,
        name: name.to_string(),
    })
}

/// Checks the `ns:name` form of namespaced ids.
fn check_id(kind: Kind, id: &str) -> Result<(), Resp> {
    if kind.info().namespaced && id.matches(':').count() != 1 {
        return Err(norman_err(404, "NotFound", "failed to find resource by id"));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn objects(
    shared: &Shared,
    caller: &Caller,
    req: &Req,
    kind: Kind,
    id: Option<&str>,
    sub: Option<&str>,
    action: Option<&str>,
) -> Resp {
    match (id, sub, &req.method) {
        (None, _, &Method::GET) => with_ctx(shared, caller, req, |ctx| list(ctx, req, kind, vec![])),
        (None, _, &Method::POST) if action.is_some() => {
            collection_action(shared, caller, req, kind, action.unwrap_or(""))
        }
        (None, _, &Method::POST) => create(shared, caller, req, kind),
        (None, _, m) => norman_err(405, "MethodNotAllow", &format!("Method {m} not supported")),
        (Some(id), Some(sub), &Method::GET) => {
            // Link sub-collections: /v3/projects/<id>/projectroletemplatebindings, /v3/clusters/<id>/projects ...
            let (child, field) = match (kind, sub.to_ascii_lowercase().as_str()) {
                (Kind::Project, "projectroletemplatebindings") => (Kind::Prtb, "projectId"),
                (Kind::Cluster, "clusterroletemplatebindings") => (Kind::Crtb, "clusterId"),
                (Kind::Cluster, "projects") => (Kind::Project, "clusterId"),
                _ => return norman_err(404, "NotFound", "not found").no_route(),
            };
            with_ctx(shared, caller, req, |ctx| {
                list(ctx, req, child, vec![Filter::Eq(field.into(), id.to_string())])
            })
        }
        (Some(_), Some(_), _) => norman_err(404, "NotFound", "not found").no_route(),
        (Some(id), None, &Method::GET) => {
            if let Err(r) = check_id(kind, id) {
                return r;
            }
            with_ctx(shared, caller, req, |ctx| match ctx.store.get(kind, id) {
                None => not_found(kind, id.rsplit(':').next().unwrap_or(id)),
                Some(o) if !ctx.authz.can("get", kind, o) => map_err(&ApiErr::Forbidden {
                    verb: "get",
                    kind,
                    name: Some(id.rsplit(':').next().unwrap_or(id).to_string()),
                    namespace: None,
                    user: caller.user_id.clone(),
                }),
                Some(o) => Resp::json(200, &to_norman(ctx, kind, id, o)),
            })
        }
        (Some(id), None, &Method::POST) => resource_action(shared, caller, req, kind, id, action.unwrap_or("")),
        (Some(id), None, &Method::PUT) => {
            if matches!(kind, Kind::Cluster) {
                return norman_err(405, "MethodNotAllow", "Method PUT not supported");
            }
            update(shared, caller, req, kind, id)
        }
        (Some(id), None, &Method::DELETE) => {
            if matches!(kind, Kind::Cluster | Kind::Setting) {
                return norman_err(405, "MethodNotAllow", "Method DELETE not supported");
            }
            if let Err(r) = check_id(kind, id) {
                return r;
            }
            let mut store = shared.store.write().expect("store lock");
            if kind == Kind::User && id == caller.user_id {
                return norman_err(422, "InvalidAction", "You cannot delete yourself");
            }
            match ops::delete(&mut store, caller, kind, id, None) {
                Ok(old) => {
                    drop(store);
                    with_ctx(shared, caller, req, |ctx| {
                        let mut v = to_norman(ctx, kind, id, &old);
                        v["state"] = json!("removing");
                        v["transitioning"] = json!("yes");
                        Resp::json(200, &v)
                    })
                }
                Err(e) => map_err(&e),
            }
        }
        (Some(_), None, m) => norman_err(405, "MethodNotAllow", &format!("Method {m} not supported")),
    }
}

fn body(req: &Req) -> Result<Value, Resp> {
    match req.json() {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(norman_err(
            422,
            "InvalidBodyContent",
            "Failed to parse body: json: cannot unmarshal into map[string]interface {}",
        )),
        Err(e) => Err(norman_err(
            422,
            "InvalidBodyContent",
            &format!("Failed to parse body: {e}"),
        )),
    }
}

fn missing(field: &str) -> Resp {
    norman_field_err(422, "MissingRequired", "", field)
}

fn nstr<'a>(b: &'a Value, f: &str) -> &'a str {
    b.get(f).and_then(Value::as_str).unwrap_or("")
}

fn create(shared: &Shared, caller: &Caller, req: &Req, kind: Kind) -> Resp {
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if matches!(kind, Kind::Cluster | Kind::Setting) {
        return norman_err(405, "MethodNotAllow", "Method POST not supported");
    }
    let mut store = shared.store.write().expect("store lock");
    // Norman-level validation (before Kubernetes sees the object).
    let mut obj = json!({"metadata": {}});
    for (n, k, c, _) in fields(kind) {
        if *c {
            if let Some(v) = b.get(*n).filter(|v| !v.is_null()) {
                set_path(&mut obj, k, v.clone());
            }
        }
    }
    if let Some(l) = b.get("labels").filter(|v| v.is_object()) {
        obj["metadata"]["labels"] = l.clone();
    }
    if let Some(a) = b.get("annotations").filter(|v| v.is_object()) {
        obj["metadata"]["annotations"] = a.clone();
    }
    // Norman's proxy store records who created an object through /v3 (rancher/norman store/proxy/proxy_store.go,
    // `Create`: the caller's user id under the `field.cattle.io/creatorId` annotation), whatever the body said.
    if !caller.user_id.is_empty() {
        if !obj["metadata"]["annotations"].is_object() {
            obj["metadata"]["annotations"] = json!({});
        }
        obj["metadata"]["annotations"]["field.cattle.io/creatorId"] = json!(caller.user_id);
    }
    let mut namespace = String::new();
    match kind {
        Kind::User => {
            let username = nstr(&b, "username");
            let password = nstr(&b, "password");
            if username.is_empty() {
                return norman_err(500, "ServerError", "invalid username");
            }
            if password.is_empty() {
                return norman_err(500, "ServerError", "invalid password");
            }
            if store.usernames.contains_key(username) {
                return norman_field_err(422, "NotUnique", "Username is already in use.", "username");
            }
            let min = password_min_length(&store);
            if password.chars().count() < min {
                return norman_err(
                    422,
                    "InvalidBodyContent",
                    &format!("Password must be at least {min} characters"),
                );
            }
            if password == username {
                return norman_err(422, "InvalidBodyContent", "Password cannot be the same as username");
            }
            obj["password"] = json!(password);
            obj["metadata"]["generateName"] = json!("u-");
        }
        Kind::GlobalRole => {
            if nstr(&b, "name").is_empty() {
                return missing("name");
            }
            obj["metadata"]["generateName"] = json!("gr-");
        }
        Kind::RoleTemplate => {
            if nstr(&b, "name").is_empty() {
                return missing("name");
            }
            obj["metadata"]["generateName"] = json!("rt-");
        }
        Kind::GlobalRoleBinding => {
            let role = nstr(&b, "globalRoleId");
            if role.is_empty() {
                return missing("globalRoleId");
            }
            let subjects = ["userId", "groupPrincipalId"]
                .iter()
                .filter(|f| !nstr(&b, f).is_empty())
                .count();
            if subjects != 1 {
                return norman_err(
                    422,
                    "InvalidBodyContent",
                    "must contain field [groupPrincipalId] OR field [userId]",
                );
            }
            if store.get(Kind::GlobalRole, role).is_none() {
                return not_found(Kind::GlobalRole, role);
            }
            if nstr(&b, "name").is_empty() {
                obj["metadata"]["generateName"] = json!("grb-");
            }
        }
        Kind::Project => {
            if nstr(&b, "name").is_empty() {
                return missing("name");
            }
            let cluster = nstr(&b, "clusterId");
            if cluster.is_empty() {
                return missing("clusterId");
            }
            if store.get(Kind::Cluster, cluster).is_none() {
                return norman_field_err(
                    422,
                    "InvalidReference",
                    &format!("Not found: clusterId {cluster}"),
                    "clusterId",
                );
            }
            namespace = cluster.to_string();
            obj["metadata"]["generateName"] = json!("p-");
        }
        Kind::Crtb | Kind::Prtb => {
            let (scope, ctx) = if kind == Kind::Crtb {
                ("clusterId", "cluster")
            } else {
                ("projectId", "project")
            };
            if nstr(&b, scope).is_empty() {
                return missing(scope);
            }
            let rt = nstr(&b, "roleTemplateId");
            if rt.is_empty() {
                return missing("roleTemplateId");
            }
            let subjects = ["userId", "userPrincipalId", "groupId", "groupPrincipalId"]
                .iter()
                .filter(|f| !nstr(&b, f).is_empty())
                .count();
            let user_pair = !nstr(&b, "userId").is_empty()
                && !nstr(&b, "userPrincipalId").is_empty()
                && ["groupId", "groupPrincipalId"].iter().all(|f| nstr(&b, f).is_empty());
            if subjects != 1 && !user_pair {
                return norman_err(
                    422,
                    "InvalidBodyContent",
                    "must target a user [userId]/[userPrincipalId] OR a group [groupId]/[groupPrincipalId]",
                );
            }
            match store.get(Kind::RoleTemplate, rt) {
                None => return not_found(Kind::RoleTemplate, rt),
                Some(t) => {
                    let c = s(t, "context");
                    if c != ctx {
                        return norman_err(
                            422,
                            "InvalidBodyContent",
                            &format!("Cannot reference context [{c}] from [{ctx}] context"),
                        );
                    }
                    if t.get("locked").and_then(Value::as_bool) == Some(true) {
                        return norman_err(422, "InvalidState", "Role is locked and cannot be assigned");
                    }
                }
            }
            if kind == Kind::Crtb {
                namespace = nstr(&b, "clusterId").to_string();
                if store.get(Kind::Cluster, &namespace).is_none() {
                    return norman_field_err(
                        422,
                        "InvalidReference",
                        &format!("Not found: clusterId {namespace}"),
                        "clusterId",
                    );
                }
            } else {
                let pid = nstr(&b, "projectId");
                if pid.matches(':').count() != 1 {
                    return norman_err(404, "NotFound", "failed to find resource by id");
                }
                match store.project_namespace(pid) {
                    Some(ns) => namespace = ns,
                    None => return norman_err(404, "NotFound", "failed to find resource by id"),
                }
            }
            if nstr(&b, "name").is_empty() {
                obj["metadata"]["generateName"] = json!(if kind == Kind::Crtb { "crtb-" } else { "prtb-" });
            }
        }
        _ => {}
    }
    match ops::create(
        &mut store,
        caller,
        kind,
        &namespace,
        obj,
        CreateOpts {
            dry_run: false,
            creator: true,
        },
    ) {
        Ok(c) => {
            drop(store);
            with_ctx(shared, caller, req, |ctx| {
                Resp::json(201, &to_norman(ctx, kind, &c.key, &c.obj))
            })
        }
        Err(e) => map_err(&e),
    }
}

fn update(shared: &Shared, caller: &Caller, req: &Req, kind: Kind, id: &str) -> Resp {
    if let Err(r) = check_id(kind, id) {
        return r;
    }
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut store = shared.store.write().expect("store lock");
    let Some(old) = store.get(kind, id).cloned() else {
        return not_found(kind, id.rsplit(':').next().unwrap_or(id));
    };
    if kind == Kind::Setting && !Authz::new(&store, caller).can("update", kind, &old) {
        return map_err(&ApiErr::Forbidden {
            verb: "update",
            kind,
            name: Some(id.into()),
            namespace: None,
            user: caller.user_id.clone(),
        });
    }
    let mut new = old.clone();
    for (n, k, _, u) in fields(kind) {
        if *u {
            if let Some(v) = b.get(*n) {
                if v.is_null() && req.q("_replace") != Some("true") {
                    continue;
                }
                set_path(&mut new, k, v.clone());
            }
        }
    }
    if let Some(l) = b.get("labels").filter(|v| v.is_object()) {
        new["metadata"]["labels"] = l.clone();
    }
    if let Some(a) = b.get("annotations").filter(|v| v.is_object()) {
        new["metadata"]["annotations"] = a.clone();
    }
    if kind == Kind::User && b.get("enabled") == Some(&json!(false)) && id == caller.user_id {
        return norman_err(422, "InvalidAction", "You cannot deactivate yourself");
    }
    if kind == Kind::Setting {
        new["customized"] = json!(true);
    }
    match ops::update(&mut store, caller, kind, id, new, false, false, Verb::Update, false) {
        Ok(obj) => {
            drop(store);
            with_ctx(shared, caller, req, |ctx| {
                Resp::json(200, &to_norman(ctx, kind, id, &obj))
            })
        }
        Err(e) => map_err(&e),
    }
}

fn collection_action(shared: &Shared, caller: &Caller, req: &Req, kind: Kind, action: &str) -> Resp {
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match (kind, action) {
        (Kind::User, "changepassword") => {
            let mut store = shared.store.write().expect("store lock");
            let current = nstr(&b, "currentPassword");
            let new = nstr(&b, "newPassword");
            if store.passwords.get(&caller.user_id) != Some(&ids::sha256_hex(current)) {
                return norman_err(422, "InvalidBodyContent", "Invalid current password");
            }
            let min = password_min_length(&store);
            if new.chars().count() < min {
                return norman_err(
                    422,
                    "InvalidBodyContent",
                    &format!("Password must be at least {min} characters"),
                );
            }
            let username = store
                .get(Kind::User, &caller.user_id)
                .map(|u| s(u, "username").to_string())
                .unwrap_or_default();
            if new == username {
                return norman_err(422, "InvalidBodyContent", "Password cannot be the same as username");
            }
            if new == current {
                return norman_err(
                    422,
                    "InvalidBodyContent",
                    "The new password must not be the same as the current password",
                );
            }
            store.passwords.insert(caller.user_id.clone(), ids::sha256_hex(new));
            let user_id = caller.user_id.clone();
            password_changed(&mut store, &user_id);
            Resp::empty(200)
        }
        (Kind::User, "refreshauthprovideraccess") => {
            let mut store = shared.store.write().expect("store lock");
            // user_actions.go `userCanRefresh`: `create` on users.
            if !Authz::new(&store, caller).can_all("create", Kind::User) {
                return norman_err(500, "ServerError", "Not Allowed");
            }
            // Every user's groups are re-read (rancher/rancher pkg/auth/providerrefresh/refresher.go `refreshAll`).
            let users: Vec<String> = store.keys_of(Kind::UserAttribute);
            for u in users {
                ops::refresh_user_groups(&mut store, &u);
            }
            Resp::empty(200)
        }
        _ => norman_err(422, "InvalidAction", &format!("Invalid action: {action}")),
    }
}

fn resource_action(shared: &Shared, caller: &Caller, req: &Req, kind: Kind, id: &str, action: &str) -> Resp {
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match (kind, action) {
        (Kind::Cluster, "generateKubeconfig") => {
            let mut store = shared.store.write().expect("store lock");
            let Some(c) = store.get(Kind::Cluster, id).cloned() else {
                return not_found(Kind::Cluster, id);
            };
            let allowed =
                caller.cluster.as_deref() == Some(id) || Authz::new(&store, caller).can("get", Kind::Cluster, &c);
            if !allowed {
                return map_err(&ApiErr::Forbidden {
                    verb: "get",
                    kind,
                    name: Some(id.into()),
                    namespace: None,
                    user: caller.user_id.clone(),
                });
            }
            let (tname, bearer) = ops::new_v3_token(
                &mut store,
                &caller.user_id,
                43_200 * 60_000,
                "",
                "Kubeconfig token",
                true,
                "kubeconfig",
            );
            ops::inherit_session_provider(&mut store, caller, &tname);
            let config = ops::v3_kubeconfig_yaml(&store, &[(id.to_string(), bearer)], id);
            Resp::json(
                200,
                &json!({"type": "generateKubeConfigOutput", "baseType": "generateKubeConfigOutput", "config": config}),
            )
        }
        (Kind::User, "setpassword") => {
            let mut store = shared.store.write().expect("store lock");
            let Some(u) = store.get(Kind::User, id).cloned() else {
                return not_found(kind, id);
            };
            if !Authz::new(&store, caller).can("update", Kind::User, &u) {
                return map_err(&ApiErr::Forbidden {
                    verb: "update",
                    kind,
                    name: Some(id.into()),
                    namespace: None,
                    user: caller.user_id.clone(),
                });
            }
            if !u
                .get("principalIds")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("local://"))))
            {
                return norman_err(500, "ServerError", "Cannot set password of non-local user");
            }
            let new = nstr(&b, "newPassword");
            let min = password_min_length(&store);
            if new.chars().count() < min {
                return norman_err(
                    422,
                    "InvalidBodyContent",
                    &format!("Password must be at least {min} characters"),
                );
            }
            if new == s(&u, "username") {
                return norman_err(422, "InvalidBodyContent", "Password cannot be the same as username");
            }
            store.passwords.insert(id.to_string(), ids::sha256_hex(new));
            password_changed(&mut store, id);
            let u = store.get(Kind::User, id).cloned().unwrap_or(u);
            drop(store);
            with_ctx(shared, caller, req, |ctx| {
                Resp::json(200, &to_norman(ctx, kind, id, &u))
            })
        }
        (Kind::User, "refreshauthprovideraccess") => {
            // One user's groups are re-read (rancher/rancher pkg/auth/providerrefresh/refresher.go `refreshSingleUser`);
            // the caller needs `create` on users (pkg/auth/api/user/user_actions.go `userCanRefresh`).
            let mut store = shared.store.write().expect("store lock");
            if !Authz::new(&store, caller).can_all("create", Kind::User) {
                return norman_err(500, "ServerError", "Not Allowed");
            }
            ops::refresh_user_groups(&mut store, id);
            Resp::empty(200)
        }
        (Kind::Project, "exportYaml") => with_ctx(shared, caller, req, |ctx| match ctx.store.get(kind, id) {
            Some(o) => Resp::json(
                200,
                &json!({"type": "exportOutput", "yamlOutput": serde_json::to_string_pretty(o).unwrap_or_default()}),
            ),
            None => not_found(kind, id),
        }),
        _ => norman_err(422, "InvalidAction", &format!("Invalid action: {action}")),
    }
}

const SESSION_TTL_MS: i64 = 960 * 60_000;

/// The minimum password length: the `password-min-length` setting (its value, else its default; 12 when it does not
/// parse), as rancher/rancher pkg/auth/api/user/user_actions.go `validatePassword` reads it (2.8-2.13).
fn password_min_length(store: &Store) -> usize {
    store
        .get(Kind::Setting, "password-min-length")
        .map(|o| {
            if s(o, "value").is_empty() {
                s(o, "default")
            } else {
                s(o, "value")
            }
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(12)
}

/// After `changepassword` or `setpassword` the user no longer must change its password, and the password may not
/// equal the username (rancher/rancher pkg/auth/api/user/user_actions.go `changePassword`, `setPassword`,
/// `validatePassword`).
fn password_changed(store: &mut Store, user_id: &str) {
    let Some(mut u) = store.get(Kind::User, user_id).cloned() else {
        return;
    };
    if u.get("mustChangePassword").and_then(Value::as_bool) != Some(false) {
        u["mustChangePassword"] = json!(false);
        store.stamp_update(&mut u, false);
        store.put(Kind::User, user_id.to_string(), u, None);
    }
}

const MAX_TTL_MS: i64 = 129_600 * 60_000;

fn tokens(shared: &Shared, caller: &Caller, req: &Req, id: Option<&str>, action: Option<&str>) -> Resp {
    match (id, &req.method, action) {
        (None, &Method::GET, _) => with_ctx(shared, caller, req, |ctx| {
            let mut keys = ctx.store.seeded.of_user(Kind::Token, &caller.user_id);
            keys.extend(
                ctx.store
                    .map(Kind::Token)
                    .iter()
                    .filter(|(_, t)| s(t, "userId") == caller.user_id)
                    .map(|(k, _)| k.clone()),
            );
            keys.sort();
            let data: Vec<Value> = keys
                .iter()
                .filter_map(|k| ctx.store.get(Kind::Token, k).map(|t| token_view(ctx, k, t, None)))
                .collect();
            let head = json!({"type": "collection", "links": {"self": req.url()}, "createTypes": {"token": format!("{}/v3/tokens", req.base)},
                              "actions": {"logout": format!("{}/v3/tokens?action=logout", req.base)}, "pagination": {"limit": 1000},
                              "sort": {"order": "asc", "reverse": format!("{}/v3/tokens?order=desc", req.base)}, "filters": {},
                              "resourceType": "token", "data": data});
            Resp::json(200, &head)
        }),
        (None, &Method::POST, Some("logout")) => {
            let mut store = shared.store.write().expect("store lock");
            if !caller.derived {
                store.remove(Kind::Token, &caller.token, true);
            }
            Resp::empty(200).with_header("set-cookie", "R_SESS=; Path=/; Max-Age=0; Secure; HttpOnly")
        }
        (None, &Method::POST, Some(a)) => norman_err(422, "InvalidAction", &format!("Invalid action: {a}")),
        (None, &Method::POST, None) => {
            let b = match body(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let ttl = b.get("ttl").and_then(Value::as_i64).unwrap_or(0);
            let ttl = if ttl <= 0 || ttl > MAX_TTL_MS { MAX_TTL_MS } else { ttl };
            let cluster = nstr(&b, "clusterId").to_string();
            let mut store = shared.store.write().expect("store lock");
            if !cluster.is_empty() && store.get(Kind::Cluster, &cluster).is_none() {
                return norman_err(422, "InvalidBodyContent", &format!("cluster {cluster} not found"));
            }
            let (name, bearer) = ops::new_v3_token(
                &mut store,
                &caller.user_id,
                ttl,
                &cluster,
                nstr(&b, "description"),
                true,
                "",
            );
            ops::inherit_session_provider(&mut store, caller, &name);
            drop(store);
            with_ctx(shared, caller, req, |ctx| match ctx.store.get(Kind::Token, &name) {
                Some(t) => Resp::json(201, &token_view(ctx, &name, t, Some(&bearer))),
                None => norman_err(500, "ServerError", "token vanished"),
            })
        }
        (None, m, _) => norman_err(405, "MethodNotAllow", &format!("Method {m} not supported")),
        (Some(id), &Method::GET, _) => with_ctx(shared, caller, req, |ctx| match ctx.store.get(Kind::Token, id) {
            Some(t) if s(t, "userId") == caller.user_id => Resp::json(200, &token_view(ctx, id, t, None)),
            _ => norman_err(
                404,
                "NotFound",
                &format!("tokens.management.cattle.io \"{id}\" not found"),
            ),
        }),
        (Some(id), &Method::DELETE, _) => {
            let mut store = shared.store.write().expect("store lock");
            let Some(t) = store.get(Kind::Token, id).cloned() else {
                return norman_err(
                    404,
                    "NotFound",
                    &format!("tokens.management.cattle.io \"{id}\" not found"),
                );
            };
            // rancher/rancher pkg/auth/tokens/manager.go `getTokenByID`: another user's token is 404, admin or not.
            if s(&t, "userId") != caller.user_id {
                return norman_err(
                    404,
                    "NotFound",
                    &format!("tokens.management.cattle.io \"{id}\" not found"),
                );
            }
            if id == caller.token && !caller.derived {
                return norman_err(
                    400,
                    "ServerError",
                    "Cannot delete token for current session. Use logout instead",
                );
            }
            store.remove(Kind::Token, id, true);
            Resp::empty(204)
        }
        (Some(_), &Method::PUT, _) => norman_err(404, "NotFound", "no store found"),
        (Some(_), m, _) => norman_err(405, "MethodNotAllow", &format!("Method {m} not supported")),
    }
}

/// A user Rancher made for itself (`system://` principal), which /v3 never shows.
fn is_system_user(u: &Value) -> bool {
    u.get("principalIds")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("system://"))))
}

/// A principal object.
#[allow(clippy::too_many_arguments)]
fn principal(
    base: &str,
    id: &str,
    name: &str,
    login: &str,
    ptype: &str,
    provider: &str,
    me: bool,
    member_of: bool,
) -> Value {
    json!({
        "id": id, "type": "principal", "baseType": "principal", "name": name, "loginName": login,
        "principalType": ptype, "provider": provider, "me": me, "memberOf": member_of,
        "profilePicture": "", "profileURL": "", "extraInfo": {},
        "created": null, "creatorId": null, "labels": {}, "annotations": {},
        "links": {"self": format!("{base}/v3/principals/{}", enc(id))}, "actions": {},
    })
}

fn local_principal(store: &Store, base: &str, user_id: &str, me: bool) -> Option<Value> {
    let u = store.get(Kind::User, user_id)?;
    Some(principal(
        base,
        &format!("local://{user_id}"),
        s(u, "displayName"),
        s(u, "username"),
        "user",
        "local",
        me,
        false,
    ))
}

/// Principals of an external directory matching `name` (prefix, case-insensitive).
pub(crate) fn directory_principals(
    store: &Store,
    base: &str,
    provider: &str,
    name: Option<&str>,
    ptype: Option<&str>,
) -> Vec<Value> {
    let Some(d) = store.directories.get(provider) else {
        return vec![];
    };
    let m = |s: &str| name.is_none_or(|n| s.to_ascii_lowercase().starts_with(&n.to_ascii_lowercase()));
    let mut out = Vec::new();
    if ptype != Some("group") {
        for u in d.users.iter().filter(|u| m(&u.login) || m(&u.name)) {
            let id = format!("{}://{}", principal_scheme(provider, false), u.external_id);
            out.push(principal(base, &id, &u.name, &u.login, "user", provider, false, false));
        }
    }
    if ptype != Some("user") {
        for g in d.groups.iter().filter(|g| m(&g.name)) {
            let id = format!("{}://{}", principal_scheme(provider, true), g.external_id);
            out.push(principal(base, &id, &g.name, &g.name, "group", provider, false, false));
        }
    }
    out
}

fn enabled_external(store: &Store) -> Vec<String> {
    store
        .map(Kind::AuthConfig)
        .iter()
        .filter(|(k, c)| k.as_str() != "local" && c.get("enabled").and_then(Value::as_bool) == Some(true))
        .map(|(k, _)| k.clone())
        .collect()
}

fn principals(shared: &Shared, caller: &Caller, req: &Req, id: Option<&str>, action: Option<&str>) -> Resp {
    let store = shared.store.read().expect("store lock");
    let base = req.base.clone();
    let collection = |data: Vec<Value>| {
        let n = data.len();
        Resp::json(
            200,
            &json!({"type": "collection", "links": {"self": req.url()}, "createTypes": {},
                    "actions": {"search": format!("{base}/v3/principals?action=search")},
                    "pagination": {"limit": 1000, "total": n}, "sort": {"order": "asc"}, "filters": {},
                    "resourceType": "principal", "data": data}),
        )
    };
    match (id, &req.method, action) {
        (None, &Method::GET, _) => {
            let mut data = Vec::new();
            if let Some(p) = local_principal(&store, &base, &caller.user_id, true) {
                data.push(p);
            }
            // External principals linked to the user, with their groups.
            if let Some(u) = store.get(Kind::User, &caller.user_id) {
                for pid in u
                    .get("principalIds")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if pid.starts_with("local://") {
                        continue;
                    }
                    if let Some(mut p) = find_directory_principal(&store, &base, pid) {
                        p["me"] = json!(true);
                        data.push(p);
                        for g in directory_groups_of(&store, &base, pid) {
                            data.push(g);
                        }
                    }
                }
            }
            collection(data)
        }
        (None, &Method::POST, Some("search")) => {
            let b = match body(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let name = nstr(&b, "name").to_ascii_lowercase();
            let ptype = b.get("principalType").and_then(Value::as_str).filter(|p| !p.is_empty());
            let mut data = Vec::new();
            if ptype != Some("group") {
                for (k, u) in store.values(Kind::User) {
                    let (k, u) = (&k.to_string(), &*u);
                    let un = s(u, "username").to_ascii_lowercase();
                    let dn = s(u, "displayName").to_ascii_lowercase();
                    if un.starts_with(&name) || dn.starts_with(&name) {
                        if let Some(p) = local_principal(&store, &base, k, k == &caller.user_id) {
                            data.push(p);
                        }
                    }
                    if data.len() >= 1000 {
                        break;
                    }
                }
            }
            for provider in enabled_external(&store) {
                data.extend(directory_principals(&store, &base, &provider, Some(&name), ptype));
            }
            collection(data)
        }
        (None, &Method::POST, a) => norman_err(422, "InvalidAction", &format!("Invalid action: {}", a.unwrap_or(""))),
        (Some(id), &Method::GET, _) => {
            if let Some(uid) = id.strip_prefix("local://") {
                return match local_principal(&store, &base, uid, uid == caller.user_id) {
                    Some(p) => Resp::json(200, &p),
                    None => norman_err(404, "NotFound", &format!("principal {id} not found")),
                };
            }
            match find_directory_principal(&store, &base, id) {
                Some(p) => Resp::json(200, &p),
                None => norman_err(404, "NotFound", &format!("principal {id} not found")),
            }
        }
        (_, m, _) => norman_err(405, "MethodNotAllow", &format!("Method {m} not supported")),
    }
}

fn find_directory_principal(store: &Store, base: &str, id: &str) -> Option<Value> {
    let (scheme, ext) = id.split_once("://")?;
    for (provider, d) in &store.directories {
        if scheme == principal_scheme(provider, false) {
            if let Some(u) = d.users.iter().find(|u| u.external_id == ext) {
                return Some(principal(base, id, &u.name, &u.login, "user", provider, false, false));
            }
        }
        if scheme == principal_scheme(provider, true) {
            if let Some(g) = d.groups.iter().find(|g| g.external_id == ext) {
                return Some(principal(base, id, &g.name, &g.name, "group", provider, false, true));
            }
        }
    }
    None
}

fn directory_groups_of(store: &Store, base: &str, user_principal: &str) -> Vec<Value> {
    let Some((scheme, ext)) = user_principal.split_once("://") else {
        return vec![];
    };
    let mut out = Vec::new();
    for (provider, d) in &store.directories {
        if scheme != principal_scheme(provider, false) {
            continue;
        }
        if let Some(u) = d.users.iter().find(|u| u.external_id == ext) {
            for gname in &u.groups {
                if let Some(g) = d.groups.iter().find(|g| &g.name == gname) {
                    let gid = format!("{}://{}", principal_scheme(provider, true), g.external_id);
                    out.push(principal(base, &gid, &g.name, &g.name, "group", provider, false, true));
                }
            }
        }
    }
    out
}

/// The provider whose user principal `pid` is (`activedirectory_user://...` -> `activedirectory`).
pub(crate) fn provider_of_principal(store: &Store, pid: &str) -> Option<String> {
    let (scheme, _) = pid.split_once("://")?;
    store
        .directories
        .keys()
        .find(|p| principal_scheme(p, false) == scheme)
        .cloned()
}

/// The group principal ids the directory of `provider` reports for user principal `pid` (empty when unknown).
pub(crate) fn directory_group_ids(store: &Store, provider: &str, pid: &str) -> Vec<String> {
    let Some(d) = store.directories.get(provider) else {
        return vec![];
    };
    let ext = pid.split_once("://").map(|(_, e)| e).unwrap_or("");
    let Some(u) = d.users.iter().find(|u| u.external_id == ext) else {
        return vec![];
    };
    u.groups
        .iter()
        .filter_map(|g| d.groups.iter().find(|x| &x.name == g))
        .map(|g| format!("{}://{}", principal_scheme(provider, true), g.external_id))
        .collect()
}

/// Checks directory credentials for `provider`; returns (user principal, group principals, display name, login).
pub(crate) fn check_directory(
    store: &Store,
    provider: &str,
    login: &str,
    password: &str,
) -> Option<(String, Vec<String>, String, String)> {
    let d = store.directories.get(provider)?;
    let u = d
        .users
        .iter()
        .find(|u| u.login.eq_ignore_ascii_case(login) && u.password == password)?;
    let pid = format!("{}://{}", principal_scheme(provider, false), u.external_id);
    let groups = u
        .groups
        .iter()
        .filter_map(|g| d.groups.iter().find(|x| &x.name == g))
        .map(|g| format!("{}://{}", principal_scheme(provider, true), g.external_id))
        .collect();
    Some((pid, groups, u.name.clone(), u.login.clone()))
}

/// Access mode check (`usermanager.CheckAccess`): unrestricted, restricted (allowed or member), required.
pub(crate) fn access_allowed(store: &Store, config: &Value, user_principal: &str, groups: &[String]) -> bool {
    let mode = s(config, "accessMode");
    let allowed: Vec<&str> = config
        .get("allowedPrincipalIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let listed = allowed.contains(&user_principal) || groups.iter().any(|g| allowed.contains(&g.as_str()));
    match mode {
        "required" => listed,
        "restricted" => {
            listed || {
                let is_member = |b: &Value| {
                    s(b, "userPrincipalName") == user_principal
                        || groups.iter().any(|g| s(b, "groupPrincipalName") == g)
                };
                store.values(Kind::Crtb).any(|(_, b)| is_member(&b))
                    || store.values(Kind::Prtb).any(|(_, b)| is_member(&b))
            }
        }
        _ => true,
    }
}

fn authconfigs(shared: &Shared, caller: &Caller, req: &Req, id: Option<&str>, action: Option<&str>) -> Resp {
    match (id, &req.method) {
        (None, &Method::GET) => with_ctx(shared, caller, req, |ctx| {
            let visible = ctx.authz.can_all("list", Kind::AuthConfig) || ctx.authz.can_all("get", Kind::AuthConfig);
            let data: Vec<Value> = if visible {
                ctx.store
                    .map(Kind::AuthConfig)
                    .iter()
                    .map(|(k, o)| authconfig_view(ctx, k, o))
                    .collect()
            } else {
                vec![]
            };
            let total = data.len();
            envelope(
                ctx,
                req,
                "authConfig",
                None,
                json!({}),
                Page {
                    data,
                    total,
                    next: None,
                    previous: None,
                },
                1000,
                None,
                &[],
            )
        }),
        (None, m) => norman_err(405, "MethodNotAllow", &format!("Method {m} not supported")),
        (Some(id), &Method::GET) => with_ctx(shared, caller, req, |ctx| match ctx.store.get(Kind::AuthConfig, id) {
            Some(o) if ctx.authz.can_all("get", Kind::AuthConfig) => Resp::json(200, &authconfig_view(ctx, id, o)),
            Some(_) => map_err(&ApiErr::Forbidden {
                verb: "get",
                kind: Kind::AuthConfig,
                name: Some(id.into()),
                namespace: None,
                user: caller.user_id.clone(),
            }),
            None => not_found(Kind::AuthConfig, id),
        }),
        (Some(id), &Method::PUT) => {
            let b = match body(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut store = shared.store.write().expect("store lock");
            let Some(mut cfg) = store.get(Kind::AuthConfig, id).cloned() else {
                return not_found(Kind::AuthConfig, id);
            };
            if !Authz::new(&store, caller).can_all("update", Kind::AuthConfig) {
                return map_err(&ApiErr::Forbidden {
                    verb: "update",
                    kind: Kind::AuthConfig,
                    name: Some(id.into()),
                    namespace: None,
                    user: caller.user_id.clone(),
                });
            }
            if let Some(r) = merge_config(&mut cfg, &b) {
                return r;
            }
            store.stamp_update(&mut cfg, true);
            store.put(Kind::AuthConfig, id.to_string(), cfg, Some(Verb::Update));
            ops::sync_auth_config(&mut store, id);
            let cfg = store.get(Kind::AuthConfig, id).cloned().unwrap_or(Value::Null);
            drop(store);
            with_ctx(shared, caller, req, |ctx| {
                Resp::json(200, &authconfig_view(ctx, id, &cfg))
            })
        }
        (Some(id), &Method::POST) => config_action(shared, caller, req, id, action.unwrap_or("")),
        (Some(_), m) => norman_err(405, "MethodNotAllow", &format!("Method {m} not supported")),
    }
}

/// Merges a config body into a stored config: `type`/`id` stay, `null` secrets keep their value.
fn merge_config(cfg: &mut Value, b: &Value) -> Option<Resp> {
    if let Some(mode) = b.get("accessMode").and_then(Value::as_str) {
        if !matches!(mode, "unrestricted" | "restricted" | "required") {
            return Some(norman_field_err(
                422,
                "InvalidOption",
                "Invalid value for accessMode",
                "accessMode",
            ));
        }
    }
    for (k, v) in b.as_object().into_iter().flatten() {
        if matches!(
            k.as_str(),
            "type"
                | "id"
                | "links"
                | "actions"
                | "baseType"
                | "metadata"
                | "apiVersion"
                | "kind"
                | "created"
                | "createdTS"
                | "uuid"
                | "labels"
                | "annotations"
        ) {
            continue;
        }
        if v.is_null() && SECRET_FIELDS.contains(&k.as_str()) {
            continue;
        }
        cfg[k] = v.clone();
    }
    None
}

fn config_action(shared: &Shared, caller: &Caller, req: &Req, id: &str, action: &str) -> Resp {
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut store = shared.store.write().expect("store lock");
    let Some(mut cfg) = store.get(Kind::AuthConfig, id).cloned() else {
        return not_found(Kind::AuthConfig, id);
    };
    if !Authz::new(&store, caller).can_all("update", Kind::AuthConfig) {
        return map_err(&ApiErr::Forbidden {
            verb: "update",
            kind: Kind::AuthConfig,
            name: Some(id.into()),
            namespace: None,
            user: caller.user_id.clone(),
        });
    }
    if !provider_actions(id).contains(&action) {
        return norman_err(422, "InvalidAction", &format!("Invalid action: {action}"));
    }
    let ty = s(&cfg, "type").to_string();
    match action {
        "disable" => {
            if cfg.get("enabled").and_then(Value::as_bool) != Some(true) {
                return norman_err(404, "ActionNotAvailable", "action not available");
            }
            cfg["enabled"] = json!(false);
            store.stamp_update(&mut cfg, true);
            store.put(Kind::AuthConfig, id.to_string(), cfg, Some(Verb::Update));
            ops::sync_auth_config(&mut store, id);
            Resp::empty(200)
        }
        "configureTest" => {
            let mut test = cfg.clone();
            let inner = b.get(lower_first(&ty).as_str()).cloned().unwrap_or(b.clone());
            let _ = merge_config(&mut test, &inner);
            let redirect = match id {
                "github" | "githubapp" => format!(
                    "https://{}/login/oauth/authorize?client_id={}&scope=read:org",
                    Some(s(&test, "hostname"))
                        .filter(|h| !h.is_empty())
                        .unwrap_or("github.com"),
                    s(&test, "clientId")
                ),
                "azuread" => format!(
                    "{}{}/oauth2/v2.0/authorize?client_id={}",
                    s(&test, "endpoint"),
                    s(&test, "tenantId"),
                    s(&test, "applicationId")
                ),
                _ => format!(
                    "https://accounts.example.invalid/authorize?client_id={}",
                    s(&test, "clientId")
                ),
            };
            Resp::json(
                200,
                &json!({"type": format!("{ty}TestOutput"), "baseType": format!("{ty}TestOutput"), "redirectUrl": redirect}),
            )
        }
        "upgrade" => Resp::empty(200),
        "testAndApply" | "testAndEnable" => {
            let inner_key = match id {
                "github" | "githubapp" => "githubConfig",
                "activedirectory" => "activeDirectoryConfig",
                "openldap" | "freeipa" => "ldapConfig",
                "azuread" => "config",
                "googleoauth" => "googleOauthConfig",
                _ => "oidcConfig",
            };
            let inner = b.get(inner_key).cloned().unwrap_or(json!({}));
            let mut test = cfg.clone();
            if let Some(r) = merge_config(&mut test, &inner) {
                return r;
            }
            let (login, password) = if matches!(id, "activedirectory" | "openldap" | "freeipa") {
                if get_path(&test, "servers")
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.is_empty())
                {
                    return norman_field_err(422, "MissingRequired", "", "servers");
                }
                let u = nstr(&b, "username");
                let p = nstr(&b, "password");
                if p.is_empty() {
                    return norman_field_err(422, "MissingRequired", "", "password");
                }
                (u.to_string(), p.to_string())
            } else {
                // The simulator's OAuth "code" is `login:password` of a directory user.
                let code = nstr(&b, "code");
                match code.split_once(':') {
                    Some((l, p)) => (l.to_string(), p.to_string()),
                    None => return norman_err(401, "Unauthorized", "authentication failed"),
                }
            };
            let Some((pid, _groups, _, _)) = check_directory(&store, id, &login, &password) else {
                return norman_err(401, "Unauthorized", "authentication failed");
            };
            test["enabled"] = json!(b.get("enabled").and_then(Value::as_bool).unwrap_or(true));
            if s(&test, "accessMode") != "unrestricted" {
                let mut allowed = test
                    .get("allowedPrincipalIds")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !allowed.iter().any(|a| a.as_str() == Some(&pid)) {
                    allowed.push(json!(pid));
                }
                test["allowedPrincipalIds"] = Value::Array(allowed);
            }
            store.stamp_update(&mut test, true);
            store.put(Kind::AuthConfig, id.to_string(), test, Some(Verb::Update));
            ops::sync_auth_config(&mut store, id);
            // The calling user gets the new principal.
            if let Some(mut u) = store.get(Kind::User, &caller.user_id).cloned() {
                let mut ids = u
                    .get("principalIds")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !ids.iter().any(|x| x.as_str() == Some(&pid)) {
                    ids.push(json!(pid));
                }
                u["principalIds"] = Value::Array(ids);
                store.stamp_update(&mut u, false);
                store.put(Kind::User, caller.user_id.clone(), u, None);
            }
            let (_, bearer) = ops::new_v3_token(&mut store, &caller.user_id, SESSION_TTL_MS, "", "", false, "session");
            Resp::empty(200).with_header("set-cookie", format!("R_SESS={bearer}; Path=/; Secure; HttpOnly"))
        }
        _ => norman_err(422, "InvalidAction", &format!("Invalid action: {action}")),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn provider_type(id: &str) -> String {
    let ty = AUTH_CONFIGS
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| *t)
        .unwrap_or("localConfig");
    ty.replace("Config", "Provider")
}

fn provider_item(base: &str, id: &str, public: bool) -> Value {
    let ty = provider_type(id);
    let coll = format!("{}s", ty);
    let _ = public;
    let root = "v3-public";
    let mut v = json!({
        "id": id, "type": ty, "baseType": "authProvider",
        "links": {"self": format!("{base}/{root}/{coll}/{id}")},
        "actions": {"login": format!("{base}/{root}/{coll}/{id}?action=login")},
        "logoutAllSupported": false, "logoutAllEnabled": false, "logoutAllForced": false,
        "creatorId": null, "labels": {}, "annotations": {},
    });
    if id == "github" {
        v["redirectUrl"] = json!("https://github.com/login/oauth/authorize?client_id=");
        v["scopes"] = json!(["read:user", "read:org", "user:email"]);
    }
    v
}

/// `/v3-public/...` and `/v1-public/...` (no authentication).
pub(crate) fn public(shared: &Shared, req: &Req) -> Resp {
    let v1 = req.seg(0) == "v1-public";
    if v1 && !shared.version.at_least(2, 13) {
        return norman_err(404, "NotFound", "not found").no_route();
    }
    let enabled: Vec<String> = {
        let store = shared.store.read().expect("store lock");
        let hide_local = store
            .get(Kind::Setting, "hide-local-auth-provider")
            .map(|s| crate::state::s(s, "value") == "true")
            .unwrap_or(false);
        let mut e: Vec<String> = if hide_local { vec![] } else { vec!["local".to_string()] };
        e.extend(enabled_external(&store));
        e
    };
    let base = req.base.clone();
    let seg1 = req.seg(1).to_ascii_lowercase();
    match (&req.method, seg1.as_str(), v1) {
        (&Method::GET, "authproviders", false) => {
            let data: Vec<Value> = enabled.iter().map(|id| provider_item(&base, id, true)).collect();
            let n = data.len();
            Resp::json(
                200,
                &json!({"type": "collection", "links": {"self": req.url()}, "createTypes": {}, "actions": {},
                                     "pagination": {"limit": 1000, "total": n}, "sort": {"order": "asc"}, "filters": {},
                                     "resourceType": "authProvider", "data": data}),
            )
        }
        (&Method::GET, "authproviders", true) => {
            let data: Vec<Value> = enabled.iter().map(|id| provider_item(&base, id, true)).collect();
            Resp::json(200, &json!({"data": data}))
        }
        (&Method::POST, "login", true) => {
            let b = match req.json() {
                Ok(b) => b,
                Err(e) => return public_err(422, "InvalidBodyContent", &format!("Failed to parse body: {e}")),
            };
            let ty = nstr(&b, "type");
            let provider = AUTH_CONFIGS
                .iter()
                .find(|(_, t)| t.replace("Config", "Provider") == ty)
                .map(|(i, _)| *i)
                .unwrap_or("local");
            login(shared, req, provider, &b, true)
        }
        (m, p, false) if p.ends_with("providers") => {
            let id = req.seg(2).to_string();
            if !enabled.contains(&id) {
                return norman_err(404, "NotFound", &format!("auth provider {id} not found"));
            }
            match (m, req.q("action")) {
                (&Method::GET, None) if req.segs.len() == 3 => Resp::json(200, &provider_item(&base, &id, true)),
                (&Method::POST, Some("login")) => {
                    let b = match req.json() {
                        Ok(b) => b,
                        Err(e) => return norman_err(422, "InvalidBodyContent", &format!("Failed to parse body: {e}")),
                    };
                    login(shared, req, &id, &b, shared.version.at_least(2, 13))
                }
                _ => norman_err(404, "NotFound", "not found").no_route(),
            }
        }
        _ => norman_err(404, "NotFound", "not found").no_route(),
    }
}

fn login(shared: &Shared, req: &Req, provider: &str, b: &Value, short_response: bool) -> Resp {
    let mut store = shared.store.write().expect("store lock");
    let fail = |status: u16, code: &str, msg: &str| {
        if short_response {
            public_err(status, code, msg)
        } else {
            norman_err(status, code, msg)
        }
    };
    let (user_id, groups, login_principal) = if provider == "local" {
        let username = nstr(b, "username");
        let password = nstr(b, "password");
        let Some(uid) = store.usernames.get(username).cloned() else {
            return fail(401, "Unauthorized", "authentication failed");
        };
        if store.passwords.get(&uid) != Some(&ids::sha256_hex(password)) {
            return fail(401, "Unauthorized", "authentication failed");
        }
        (uid.clone(), Vec::new(), format!("local://{uid}"))
    } else {
        let (login, password) = match nstr(b, "code").split_once(':') {
            Some((l, p)) => (l.to_string(), p.to_string()),
            None => (nstr(b, "username").to_string(), nstr(b, "password").to_string()),
        };
        let Some((pid, groups, display, login_name)) = check_directory(&store, provider, &login, &password) else {
            return fail(401, "Unauthorized", "authentication failed");
        };
        let cfg = store.get(Kind::AuthConfig, provider).cloned().unwrap_or(json!({}));
        if !access_allowed(&store, &cfg, &pid, &groups) {
            return if matches!(provider, "activedirectory" | "openldap" | "freeipa") {
                fail(403, "PermissionDenied", "Permission denied")
            } else {
                fail(401, "Unauthorized", "unauthorized")
            };
        }
        // Find or create the user for this principal.
        let existing = store
            .values(Kind::User)
            .find(|(_, u)| {
                u.get("principalIds")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|p| p.as_str() == Some(&pid)))
            })
            .map(|(k, _)| k.to_string());
        let uid = match existing {
            Some(u) => u,
            None => {
                let uid = ids::user_id_for_principal(&pid);
                let mut u = crate::seed::user_obj(&uid, &login_name, &display);
                u["username"] = json!("");
                u["principalIds"] = json!([pid, format!("local://{uid}")]);
                crate::seed::insert_new(&mut store, Kind::User, u, &crate::state::now_rfc3339(), None);
                let n = store.fresh_name(Kind::GlobalRoleBinding, "", "grb-");
                crate::seed::insert_new(
                    &mut store,
                    Kind::GlobalRoleBinding,
                    crate::seed::grb_obj(&n, "user", &uid),
                    &crate::state::now_rfc3339(),
                    None,
                );
                uid
            }
        };
        (uid, groups, pid)
    };
    if store
        .get(Kind::User, &user_id)
        .and_then(|u| u.get("enabled"))
        .and_then(Value::as_bool)
        == Some(false)
    {
        return fail(403, "PermissionDenied", "user disabled");
    }
    let (name, bearer) = ops::new_v3_token(
        &mut store,
        &user_id,
        SESSION_TTL_MS,
        "",
        nstr(b, "description"),
        false,
        "session",
    );
    if let Some(t) = store.get(Kind::Token, &name).cloned() {
        let mut t = t;
        t["authProvider"] = json!(provider);
        t["userPrincipal"]["provider"] = json!(provider);
        // The login token carries no groups: rancher/rancher pkg/auth/tokens/manager.go `NewLoginToken` ignores its
        // group argument (2.8 to 2.13); the groups go to the user's UserAttribute below.
        if let Some(o) = t.as_object_mut() {
            o.remove("groupPrincipals");
        }
        store.put(Kind::Token, name.clone(), t, None);
    }
    ops::record_login(&mut store, &user_id, provider, &login_principal, &groups);
    if nstr(b, "responseType") == "cookie" {
        return Resp::empty(200).with_header("set-cookie", format!("R_SESS={bearer}; Path=/; Secure; HttpOnly"));
    }
    let expires = store
        .get(Kind::Token, &name)
        .map(|t| s(t, "expiresAt").to_string())
        .unwrap_or_default();
    if short_response {
        return Resp::json(
            201,
            &json!({"token": bearer, "expiresAt": expires, "id": name, "baseType": "token", "type": "token"}),
        );
    }
    let caller = caller_for(&store, &user_id, &name, None, false);
    let ctx = Ctx {
        store: &store,
        authz: Authz::new(&store, &caller),
        base: req.base.clone(),
        version_213: false,
    };
    let t = store.get(Kind::Token, &name).cloned().unwrap_or(Value::Null);
    let _ = ctx.version_213;
    let _ = now_ms();
    Resp::json(201, &token_view(&ctx, &name, &t, Some(&bearer)))
}

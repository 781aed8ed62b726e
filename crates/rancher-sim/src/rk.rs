//! The RK-API: Kubernetes-style `/apis/...` resources, discovery documents, `limit`/`continue` paging
//! with expiring continue tokens, `Status` errors, merge patch, the `/status` subresource and watch.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use http::Method;
use rand::Rng;
use serde_json::{json, Value};

use crate::auth::{authenticate, AuthOutcome, Authz, Caller};
use crate::http::{k8s_no_route, k8s_status, Req, Resp};
use crate::ids;
use crate::ops::{self, ApiErr, CreateOpts};
use crate::server::Shared;
use crate::state::{get_path, key_of, labels_match, merge_patch, now_ms, s, Kind, Store, Verb, KINDS};

/// Renders an [`ApiErr`] as a Kubernetes `Status`.
pub(crate) fn err_resp(e: &ApiErr) -> Resp {
    k8s_status(e.status(), e.reason(), &e.message(), e.details())
}

fn unauthorized() -> Resp {
    k8s_status(401, "Unauthorized", "Unauthorized", None)
}

/// rancher/steve pkg/proxy/proxy.go: a request without credentials gets a plain-text 401, not a `Status`.
fn not_authorized_text() -> Resp {
    Resp::text(401, "text/plain; charset=utf-8", "not authorized\n")
}

/// rancher/rancher pkg/api/steve/proxy/proxy.go `authLocalCluster`: a kind off the allow-list, asked for without
/// local-cluster access, gets 403 with an empty body.
fn gated() -> Resp {
    Resp::empty(403)
}

fn method_not_allowed() -> Resp {
    k8s_status(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

/// Groups served by `version`: `(group, version)`.
fn groups(store: &Store) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS {
        if k.kind.rk_served(store.version) && !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

/// `/version` (Kubernetes version of the local cluster).
pub(crate) fn version_doc() -> Resp {
    Resp::json(
        200,
        &json!({"major": "1", "minor": "34", "gitVersion": "v1.34.1+k3s1", "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2025-09-01T00:00:00Z", "goVersion": "go1.24.6", "compiler": "gc",
                "platform": "linux/amd64"}),
    )
}

fn verbs_for(_kind: Kind) -> Vec<&'static str> {
    vec![
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
}

fn discovery(store: &Store, req: &Req) -> Option<Resp> {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let host = req.base.trim_start_matches("https://").to_string();
    match segs.as_slice() {
        ["api"] => Some(Resp::json(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}),
        )),
        ["api", "v1"] => Some(Resp::json(
            200,
            &json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]}]}),
        )),
        ["apis"] => {
            let gs: Vec<Value> = groups(store)
                .into_iter()
                .map(|(g, v)| {
                    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            Some(Resp::json(200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})))
        }
        ["apis", g] => groups(store).into_iter().find(|(gg, _)| gg == g).map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            Resp::json(200, &json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv.clone()], "preferredVersion": gv}))
        }),
        ["apis", g, v] => {
            if !groups(store).iter().any(|(gg, vv)| gg == g && vv == v) {
                return None;
            }
            let mut resources = Vec::new();
            for k in KINDS.iter().filter(|k| k.group == *g && k.version == *v && k.kind.rk_served(store.version)) {
                resources.push(json!({
                    "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced, "kind": k.kind_name,
                    "verbs": verbs_for(k.kind), "storageVersionHash": ids::sha256_hex(k.plural)[..12].to_string(),
                }));
                if k.status_sub {
                    resources.push(json!({"name": format!("{}/status", k.plural), "singularName": "", "namespaced": k.namespaced,
                                          "kind": k.kind_name, "verbs": ["get", "patch", "update"]}));
                }
            }
            Some(Resp::json(200, &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{g}/{v}"), "resources": resources})))
        }
        // OpenAPI v3, as the kube-apiserver serves it: a root listing one document per group version.
        ["openapi", "v3"] => {
            let mut paths = serde_json::Map::new();
            for (g, v) in groups(store) {
                let url = format!("/openapi/v3/apis/{g}/{v}?hash={}", &ids::sha256_hex(&format!("{g}/{v}/{}", store.version.full()))[..16]);
                paths.insert(format!("apis/{g}/{v}"), json!({"serverRelativeURL": url}));
            }
            Some(Resp::json(200, &json!({"paths": paths})))
        }
        ["openapi", "v3", "apis", g, v] => {
            groups(store).iter().any(|(gg, vv)| gg == g && vv == v).then(|| Resp::json(200, &openapi_v3(store, g, v)))
        }
        _ => None,
    }
}

/// The OpenAPI v3 document of one group version: a schema per kind (`x-kubernetes-group-version-kind`) and its paths,
/// whose operations take `fieldValidation` as the kube-apiserver's do, so kubectl's default validation
/// (k8s.io/cli-runtime `QueryParamVerifierV3`) leaves checking the fields to the server.
fn openapi_v3(store: &Store, g: &str, v: &str) -> Value {
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let rev: String = g.split('.').rev().collect::<Vec<_>>().join(".");
    for k in KINDS
        .iter()
        .filter(|k| k.group == g && k.version == v && k.kind.rk_served(store.version))
    {
        let gvk = json!([{"group": g, "version": v, "kind": k.kind_name}]);
        let schema_name = format!("{rev}.{v}.{}", k.kind_name);
        schemas.insert(
            schema_name.clone(),
            json!({"type": "object", "x-kubernetes-group-version-kind": gvk, "x-kubernetes-preserve-unknown-fields": true,
                   "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}),
        );
        let param =
            |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let op = |action: &str, with_validation: bool| {
            let mut params = vec![param("dryRun")];
            if with_validation {
                params.push(param("fieldManager"));
                params.push(param("fieldValidation"));
            }
            json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk[0].clone(), "parameters": params,
                   "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}}})
        };
        let base = if k.namespaced {
            format!("/apis/{g}/{v}/namespaces/{{namespace}}/{}", k.plural)
        } else {
            format!("/apis/{g}/{v}/{}", k.plural)
        };
        paths.insert(
            base.clone(),
            json!({"get": op("list", false), "post": op("post", true)}),
        );
        paths.insert(format!("{base}/{{name}}"), json!({"get": op("get", false), "put": op("put", true), "patch": op("patch", true), "delete": op("delete", false)}));
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.34.1+k3s1"}, "paths": paths, "components": {"schemas": schemas}})
}

/// What an `/apis/...` path addresses.
pub(crate) struct Target {
    pub(crate) kind: Kind,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    status: bool,
    watch: bool,
}

fn parse_target(store: &Store, segs: &[&str]) -> Option<Target> {
    let (g, v, rest) = match segs {
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let find = |plural: &str| {
        KINDS
            .iter()
            .find(|k| k.group == g && k.version == v && k.plural == plural && k.kind.rk_served(store.version))
            .map(|k| k.kind)
    };
    let (watch, rest) = match rest {
        ["watch", r @ ..] if g == "ext.cattle.io" => (true, r),
        _ => (false, rest),
    };
    let t = |kind: Kind, ns: Option<&str>, name: Option<&str>, status: bool| Target {
        kind,
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
        status,
        watch,
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..] => {
            let kind = find(plural)?;
            if !kind.info().namespaced {
                return None;
            }
            match tail {
                [] => Some(t(kind, Some(ns), None, false)),
                [name] => Some(t(kind, Some(ns), Some(name), false)),
                [name, "status"] if kind.info().status_sub && !watch => Some(t(kind, Some(ns), Some(name), true)),
                _ => None,
            }
        }
        [plural, tail @ ..] => {
            let kind = find(plural)?;
            let namespaced = kind.info().namespaced;
            match tail {
                [] => Some(t(kind, None, None, false)),
                [name] if !namespaced => Some(t(kind, None, Some(name), false)),
                [name, "status"] if !namespaced && kind.info().status_sub && !watch => {
                    Some(t(kind, None, Some(name), true))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Entry point for `/api`, `/apis`, `/version` on 2.11+ (and the local cluster behind `/k8s/clusters/local`).
pub(crate) fn handle(shared: &Shared, req: &Req, segs: &[&str], cluster_path: bool) -> Resp {
    if segs == ["version"] {
        return version_doc();
    }
    if shared.version.is_legacy() || !shared.version.at_least(2, 8) {
        return k8s_no_route();
    }
    // Authentication.
    let (caller, gate) = {
        let store = shared.store.read().expect("store lock");
        let gate = parse_target(&store, segs).is_some_and(|t| !t.kind.rk_allow_listed(store.version));
        match authenticate(&store, req) {
            AuthOutcome::Caller(c) => (c, gate),
            AuthOutcome::Anonymous => return not_authorized_text(),
            AuthOutcome::Invalid if gate => return gated(),
            AuthOutcome::Invalid => return unauthorized(),
        }
    };
    crate::auth::note_use(shared, &caller);
    if gate {
        let store = shared.store.read().expect("store lock");
        if !Authz::new(&store, &caller).local_cluster_access() {
            return gated();
        }
    }
    if caller.cluster.is_some() && !cluster_path {
        return unauthorized();
    }
    if req.method == Method::GET {
        let store = shared.store.read().expect("store lock");
        let sub = Req {
            segs: segs.iter().map(|s| s.to_string()).collect(),
            ..req.shallow()
        };
        if let Some(r) = discovery(&store, &sub) {
            return r;
        }
    }
    let target = {
        let store = shared.store.read().expect("store lock");
        parse_target(&store, segs)
    };
    let Some(t) = target else { return k8s_no_route() };
    // clusters.management.cattle.io: list and get only; the simulator models no cluster writes or watches.
    if t.kind == Kind::Cluster && (req.method != Method::GET || t.watch || req.q("watch").is_some()) {
        return method_not_allowed();
    }
    let info = t.kind.info();
    match (&t.name, t.watch, &req.method) {
        (_, true, &Method::GET) => watch(shared, &caller, &t, req),
        (_, true, _) => method_not_allowed(),
        (None, _, &Method::GET) => {
            if req.q("watch").is_some_and(|w| w == "true" || w == "1") {
                return watch(shared, &caller, &t, req);
            }
            list(shared, &caller, &t, req)
        }
        (None, _, &Method::POST) if !info.namespaced || t.namespace.is_some() => create(shared, &caller, &t, req),
        (None, _, &Method::DELETE) if !info.namespaced || t.namespace.is_some() => {
            if t.kind == Kind::ExtToken && !shared.version.at_least(2, 13) {
                return method_not_allowed();
            }
            delete_collection(shared, &caller, &t, req)
        }
        (None, _, _) => method_not_allowed(),
        (Some(_), _, &Method::GET) => get(shared, &caller, &t),
        (Some(_), _, &Method::PUT) => replace(shared, &caller, &t, req),
        (Some(_), _, &Method::PATCH) => patch(shared, &caller, &t, req),
        (Some(_), _, &Method::DELETE) if !t.status => delete(shared, &caller, &t, req),
        _ => method_not_allowed(),
    }
}

impl Req {
    /// A copy without the body (for re-targeted sub-requests).
    pub(crate) fn shallow(&self) -> Req {
        Req {
            method: self.method.clone(),
            path: self.path.clone(),
            segs: self.segs.clone(),
            query: self.query.clone(),
            raw_query: self.raw_query.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            base: self.base.clone(),
        }
    }
}

/// What clients see of a stored object (ext tokens compute `expired`/`current`; secrets never shown).
fn view(kind: Kind, obj: &Value, caller: &Caller) -> Option<Value> {
    match kind {
        Kind::ExtToken => {
            let mut v = obj.clone();
            let exp = ops::expired(s(obj, "status.expiresAt"));
            v["status"]["expired"] = json!(exp);
            let current = caller.token == format!("ext/{}", s(obj, "metadata.name"));
            v["status"]["current"] = json!(current);
            // tokens.go blanks the hash everywhere: "Users don't care about the hashed value".
            if let Some(st) = v.get_mut("status").and_then(Value::as_object_mut) {
                st.remove("hash");
            }
            Some(v)
        }
        _ => None,
    }
}

pub(crate) fn write_obj(buf: &mut Vec<u8>, kind: Kind, obj: &Value, caller: &Caller) {
    match view(kind, obj, caller) {
        Some(v) => serde_json::to_writer(&mut *buf, &v),
        None => serde_json::to_writer(&mut *buf, obj),
    }
    .expect("serializing JSON to memory cannot fail");
}

fn obj_resp(status: u16, kind: Kind, obj: &Value, caller: &Caller) -> Resp {
    let mut buf = Vec::with_capacity(1024);
    write_obj(&mut buf, kind, obj, caller);
    Resp::raw_json(status, buf)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    start: String,
    /// Issued at (ms) of the first page.
    t: i64,
    /// Pages served so far.
    p: u32,
}

fn encode_continue(c: &ContinueToken) -> String {
    ids::b64_encode(&serde_json::to_vec(c).unwrap_or_default())
}

fn decode_continue(text: &str) -> Option<ContinueToken> {
    serde_json::from_slice(&ids::b64_decode(text)?).ok()
}

/// Kinds served by a Rancher extension store that shows each user their own objects (ext tokens, kubeconfigs);
/// every other kind is a custom resource behind Kubernetes RBAC.
pub(crate) fn per_owner(kind: Kind) -> bool {
    matches!(kind, Kind::ExtToken | Kind::Kubeconfig)
}

/// Kubernetes RBAC answers for the whole collection: a caller who may not `verb` it gets 403, never a filtered list.
pub(crate) fn collection_allowed(authz: &Authz<'_>, verb: &'static str, t: &Target) -> Result<(), Resp> {
    if per_owner(t.kind) || authz.can_collection(verb, t.kind, t.namespace.as_deref()) {
        return Ok(());
    }
    Err(err_resp(&ApiErr::Forbidden {
        verb,
        kind: t.kind,
        name: None,
        namespace: t.namespace.clone(),
        user: authz.caller.user_id.clone(),
    }))
}

/// Rancher's CRDs declare no selectable fields, so Kubernetes takes only `metadata.name` and `metadata.namespace`.
pub(crate) fn check_field_selector(sel: &str) -> Result<(), Resp> {
    for part in sel.split(',').filter(|p| !p.trim().is_empty()) {
        let key = part.split(['=', '!']).next().unwrap_or("").trim();
        if !matches!(key, "metadata.name" | "metadata.namespace") {
            return Err(k8s_status(
                400,
                "BadRequest",
                &format!("field label not supported: {key}"),
                None,
            ));
        }
    }
    Ok(())
}

pub(crate) fn field_selector_match(sel: &str, obj: &Value) -> bool {
    sel.split(',').filter(|p| !p.trim().is_empty()).all(|p| {
        let (k, v, neg) = if let Some((k, v)) = p.split_once("!=") {
            (k, v, true)
        } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            (k, v, false)
        } else {
            return true;
        };
        let actual = s(obj, k.trim());
        (actual == v.trim()) != neg
    })
}

fn list(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    let limit: usize = req
        .q("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map(|l| l as usize)
        .unwrap_or(0);
    let mut cont = None;
    if let Some(c) = req.q("continue").filter(|c| !c.is_empty()) {
        let Some(tok) = decode_continue(c) else {
            return k8s_status(
                400,
                "BadRequest",
                "continue key is not valid: illegal base64 data at input byte 0",
                None,
            );
        };
        if let Some(r) = continue_expired(shared, &tok) {
            return r;
        }
        cont = Some(tok);
    }
    let label_sel = req.q("labelSelector").unwrap_or("");
    let field_sel = req.q("fieldSelector").unwrap_or("");
    if let Err(r) = check_field_selector(field_sel) {
        return r;
    }
    let store = shared.store.read().expect("store lock");
    let authz = Authz::new(&store, caller);
    if let Err(r) = collection_allowed(&authz, "list", t) {
        return r;
    }
    let all_visible = authz.can_all("list", t.kind) || !per_owner(t.kind);
    let info = t.kind.info();
    let visible = |obj: &Value| {
        (label_sel.is_empty() || labels_match(label_sel, get_path(obj, "metadata.labels")))
            && (field_sel.is_empty() || field_selector_match(field_sel, obj))
            && (all_visible || authz.can("list", t.kind, obj))
    };
    let rv = cont.as_ref().map(|c| c.rv).unwrap_or(store.rv);
    // A continued list is served at its first page's resourceVersion (Kubernetes' etcd3 store `GetList` reads the
    // later pages `WithRev`): objects changed since then show as they were, created ones not at all, deleted ones
    // still; a token older than the kept history is expired, as after an etcd compaction.
    let as_of = match &cont {
        Some(c) if c.rv < store.history_floor => return expired_resp(c),
        Some(c) => Some(as_of(&store, t.kind, c.rv)),
        None => None,
    };
    // The objects as they were at the token's version that differ from the live ones (changed or deleted since),
    // within the page's range; the live objects not changed since are merged in as they are.
    let start_key = cont.as_ref().map(|c| c.start.as_str());
    // Keys of the listed namespace (every key for a cluster-scoped kind or an all-namespaces list).
    let prefix = t
        .namespace
        .as_deref()
        .filter(|_| info.namespaced)
        .map(|ns| format!("{ns}:"));
    let in_namespace = |k: &str| prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str()));
    let before: Option<BTreeMap<&str, &Value>> = as_of.as_ref().map(|changed| {
        changed
            .iter()
            .filter(|(k, _)| start_key.is_none_or(|s| **k > s) && in_namespace(k))
            .filter_map(|(k, obj)| obj.map(|o| (*k, o)))
            .collect()
    });
    // The live objects (stored and seeded) not changed since the token's version.
    let live = |from: Option<&str>| {
        store
            .items(t.kind, t.namespace.as_deref(), from)
            .filter(|(k, _)| as_of.as_ref().is_none_or(|changed| !changed.contains_key(*k)))
    };
    let mut buf = Vec::with_capacity(if limit > 0 { limit * 600 } else { 4096 });
    buf.extend_from_slice(format!("{{\"apiVersion\":\"{}/{}\",\"items\":[", info.group, info.version).as_bytes());
    let mut n = 0usize;
    let mut last_key: Option<&str> = None;
    let mut more = false;
    // Seeded tokens are written straight from their records when nothing filters them (see `Store::items`).
    let plain = label_sel.is_empty() && field_sel.is_empty() && all_visible;
    let now = now_ms();
    let iter = merge_sorted(
        live(start_key),
        before
            .iter()
            .flat_map(|b| b.iter().map(|(k, v)| (*k, crate::tokens::Item::Stored(v)))),
    );
    for (k, item) in iter {
        let obj = (!plain || matches!(item, crate::tokens::Item::Stored(_))).then(|| item.value());
        if obj.as_ref().is_some_and(|o| !visible(o)) {
            continue;
        }
        if limit > 0 && n == limit {
            more = true;
            break;
        }
        if n > 0 {
            buf.push(b',');
        }
        match &obj {
            Some(o) => write_obj(&mut buf, t.kind, o, caller),
            None => {
                if item.write_seeded(now, &mut buf).is_none() {
                    write_obj(&mut buf, t.kind, &item.value(), caller);
                }
            }
        }
        n += 1;
        last_key = Some(k);
    }
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if more {
        let start = last_key.map(str::to_string).unwrap_or_default();
        let tok = ContinueToken {
            rv,
            start: start.clone(),
            t: cont.as_ref().map(|c| c.t).unwrap_or_else(now_ms),
            p: cont.as_ref().map(|c| c.p + 1).unwrap_or(1),
        };
        meta["continue"] = json!(encode_continue(&tok));
        if label_sel.is_empty() && field_sel.is_empty() && all_visible {
            // Everything after `start` now (a binary search for seeded tokens), less what changed since the
            // token's version and is live now, plus those objects as they were then (the history is short).
            let mut remaining = store.count_after(t.kind, t.namespace.as_deref(), Some(&start));
            if let Some(changed) = &as_of {
                let live_changed = changed
                    .keys()
                    .filter(|k| **k > start.as_str() && in_namespace(k) && store.get(t.kind, k).is_some())
                    .count();
                remaining -= live_changed;
                remaining += before.as_ref().map_or(0, |b| {
                    b.range::<&str, _>((Bound::Excluded(start.as_str()), Bound::Unbounded))
                        .count()
                });
            }
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    buf.extend_from_slice(format!("],\"kind\":\"{}List\",\"metadata\":", info.kind_name).as_bytes());
    serde_json::to_writer(&mut buf, &meta).expect("in-memory JSON");
    buf.push(b'}');
    Resp::raw_json(200, buf)
}

/// Merges two key-ordered iterators with distinct keys into one in key order.
fn merge_sorted<'a, T>(
    a: impl Iterator<Item = (&'a str, T)>,
    b: impl Iterator<Item = (&'a str, T)>,
) -> impl Iterator<Item = (&'a str, T)> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.0 < x.0 => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// The keys of `kind` changed after resourceVersion `rv`, each with the object as it was at `rv` (`None`: it did not
/// exist then), from [`crate::state::Store::history`].
fn as_of(store: &Store, kind: Kind, rv: u64) -> HashMap<&str, Option<&Value>> {
    let mut changed = HashMap::new();
    for (k, key, at, before) in &store.history {
        if *k == kind && *at > rv {
            // The first change after `rv` holds the object as it was at `rv`.
            changed.entry(key.as_str()).or_insert(before.as_ref());
        }
    }
    changed
}

/// The 410 for a continue token whose version is no longer kept (Kubernetes after a compaction).
fn expired_resp(tok: &ContinueToken) -> Resp {
    let fresh = ContinueToken {
        rv: tok.rv + 1,
        start: tok.start.clone(),
        t: now_ms(),
        p: 0,
    };
    expired_status(&fresh)
}

/// Decides whether a continue token has expired (by age, pages served, or a random share).
fn continue_expired(shared: &Shared, tok: &ContinueToken) -> Option<Resp> {
    let faults = shared.faults.lock().expect("faults lock").clone();
    let mut expired = false;
    if let Some(after) = faults.continue_expire_after {
        if now_ms() - tok.t > after.as_millis() as i64 {
            expired = true;
        }
    }
    if let Some(pages) = faults.continue_expire_after_pages {
        if tok.p >= pages {
            expired = true;
        }
    }
    if !expired && faults.continue_expire_rate > 0.0 {
        let roll: f64 = shared.fault_rng.lock().expect("rng lock").gen();
        expired = roll < faults.continue_expire_rate;
    }
    if !expired {
        return None;
    }
    let fresh = ContinueToken {
        rv: tok.rv + 1,
        start: tok.start.clone(),
        t: now_ms(),
        p: 0,
    };
    Some(expired_status(&fresh))
}

/// Kubernetes' 410 `Expired` for a continue token, carrying `fresh` to go on with an inconsistent list.
fn expired_status(fresh: &ContinueToken) -> Resp {
    let mut r = json!({
        "kind": "Status", "apiVersion": "v1",
        "metadata": {"continue": encode_continue(fresh)},
        "status": "Failure",
        "message": "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        "reason": "Expired",
        "code": 410,
    });
    r["details"] = json!({});
    Resp::json(410, &r)
}

fn target_key(t: &Target) -> String {
    key_of(
        t.kind,
        t.namespace.as_deref().unwrap_or(""),
        t.name.as_deref().unwrap_or(""),
    )
}

fn get(shared: &Shared, caller: &Caller, t: &Target) -> Resp {
    let store = shared.store.read().expect("store lock");
    let name = t.name.clone().unwrap_or_default();
    let Some(obj) = store.get(t.kind, &target_key(t)) else {
        return err_resp(&ApiErr::NotFound { kind: t.kind, name });
    };
    let authz = Authz::new(&store, caller);
    if !authz.can("get", t.kind, obj) {
        if t.kind == Kind::ExtToken {
            // rancher/rancher pkg/ext/stores/tokens/tokens.go: another user's token is NotFound.
            return err_resp(&ApiErr::NotFound { kind: t.kind, name });
        }
        return err_resp(&ApiErr::Forbidden {
            verb: "get",
            kind: t.kind,
            name: Some(name),
            namespace: t.namespace.clone(),
            user: caller.user_id.clone(),
        });
    }
    obj_resp(200, t.kind, obj, caller)
}

fn body_json(req: &Req) -> Result<Value, Resp> {
    serde_json::from_slice(&req.body).map_err(|e| {
        k8s_status(400, "BadRequest", &format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: {e}"), None)
    })
}

fn dry_run(req: &Req) -> bool {
    req.q("dryRun") == Some("All")
}

fn create(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    let body = match body_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut store = shared.store.write().expect("store lock");
    let ns = t.namespace.clone().unwrap_or_default();
    match ops::create(
        &mut store,
        caller,
        t.kind,
        &ns,
        body,
        CreateOpts {
            dry_run: dry_run(req),
            creator: true,
        },
    ) {
        Ok(c) => {
            let mut out = view(t.kind, &c.obj, caller).unwrap_or(c.obj);
            if let Some(secret) = &c.secret {
                out["status"]["value"] = json!(secret);
                if store.version.at_least(2, 13) {
                    out["status"]["bearerToken"] = json!(c.bearer.clone().unwrap_or_default());
                }
            }
            if let Some(k) = &c.kubeconfig {
                out["status"]["value"] = json!(k);
            }
            Resp::json(201, &out)
        }
        Err(e) => err_resp(&e),
    }
}

fn replace(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    let body = match body_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut store = shared.store.write().expect("store lock");
    match ops::update(
        &mut store,
        caller,
        t.kind,
        &target_key(t),
        body,
        t.status,
        true,
        Verb::Update,
        dry_run(req),
    ) {
        Ok(obj) => obj_resp(200, t.kind, &obj, caller),
        Err(e) => err_resp(&e),
    }
}

fn patch(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    let ct = req.header("content-type").unwrap_or("").to_ascii_lowercase();
    let ext = t.kind.info().group == "ext.cattle.io";
    let merge = ct.starts_with("application/merge-patch+json")
        || (ext && ct.starts_with("application/strategic-merge-patch+json"));
    let json_patch = ct.starts_with("application/json-patch+json");
    if !merge && !json_patch {
        return k8s_status(
            415,
            "UnsupportedMediaType",
            &format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct:?})"),
            None,
        );
    }
    let body = match body_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut store = shared.store.write().expect("store lock");
    let key = target_key(t);
    let Some(old) = store.get(t.kind, &key).cloned() else {
        return err_resp(&ApiErr::NotFound {
            kind: t.kind,
            name: t.name.clone().unwrap_or_default(),
        });
    };
    let mut new = old.clone();
    if merge {
        merge_patch(&mut new, &body);
    } else if let Err(m) = apply_json_patch(&mut new, &body) {
        return k8s_status(422, "Invalid", &m, None);
    }
    // A patch carries no resourceVersion unless the client put one in: unconditional otherwise.
    if get_path(&body, "metadata.resourceVersion").is_none() {
        crate::state::set_path(
            &mut new,
            "metadata.resourceVersion",
            old["metadata"]["resourceVersion"].clone(),
        );
    }
    match ops::update(
        &mut store,
        caller,
        t.kind,
        &key,
        new,
        t.status,
        false,
        Verb::Patch,
        dry_run(req),
    ) {
        Ok(obj) => obj_resp(200, t.kind, &obj, caller),
        Err(e) => err_resp(&e),
    }
}

/// A small RFC 6902 subset: add, replace, remove, test on object paths.
fn apply_json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let arr = ops.as_array().ok_or("json patch must be an array")?;
    for op in arr {
        let path = s(op, "path");
        let segs: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        let Some((last, parents)) = segs.split_last() else {
            return Err("empty path".into());
        };
        let mut cur = &mut *target;
        for p in parents {
            cur = match cur {
                Value::Object(m) => m.get_mut(p).ok_or(format!("path {path} not found"))?,
                Value::Array(a) => a
                    .get_mut(p.parse::<usize>().map_err(|_| "bad index")?)
                    .ok_or("bad index")?,
                _ => return Err(format!("path {path} not found")),
            };
        }
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match (s(op, "op"), cur) {
            ("add" | "replace", Value::Object(m)) => {
                m.insert(last.clone(), value);
            }
            ("add", Value::Array(a)) if last == "-" => a.push(value),
            ("add", Value::Array(a)) => a.insert(last.parse::<usize>().map_err(|_| "bad index")?.min(a.len()), value),
            ("replace", Value::Array(a)) => {
                let i: usize = last.parse().map_err(|_| "bad index")?;
                *a.get_mut(i).ok_or("bad index")? = value;
            }
            ("remove", Value::Object(m)) => {
                m.remove(last).ok_or(format!("path {path} not found"))?;
            }
            ("remove", Value::Array(a)) => {
                let i: usize = last.parse().map_err(|_| "bad index")?;
                if i >= a.len() {
                    return Err("bad index".into());
                }
                a.remove(i);
            }
            ("test", Value::Object(m)) => {
                if m.get(last) != Some(&value) {
                    return Err(format!("test failed at {path}"));
                }
            }
            (other, _) => return Err(format!("unsupported json patch op {other:?}")),
        }
    }
    Ok(())
}

fn delete(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    let opts: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let pre_rv = get_path(&opts, "preconditions.resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    // The kube-apiserver returns the deleted object (with `deletionTimestamp` while a finalizer holds it); the ext
    // token store returns the Token (tokens.go `Delete`). A dry run authorizes and validates, then changes nothing.
    if dry_run(req) {
        let store = shared.store.read().expect("store lock");
        return match ops::check_delete(&store, caller, t.kind, &target_key(t), pre_rv.as_deref()) {
            Ok(old) => obj_resp(200, t.kind, &old, caller),
            Err(e) => err_resp(&e),
        };
    }
    let mut store = shared.store.write().expect("store lock");
    match ops::delete(&mut store, caller, t.kind, &target_key(t), pre_rv.as_deref()) {
        Ok(old) => obj_resp(200, t.kind, &old, caller),
        Err(e) => err_resp(&e),
    }
}

fn delete_collection(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    let label_sel = req.q("labelSelector").unwrap_or("").to_string();
    let field_sel = req.q("fieldSelector").unwrap_or("").to_string();
    let mut store = shared.store.write().expect("store lock");
    let keys: Vec<String> = {
        let authz = Authz::new(&store, caller);
        if !authz.can_all("deletecollection", t.kind) {
            return err_resp(&ApiErr::Forbidden {
                verb: "deletecollection",
                kind: t.kind,
                name: None,
                namespace: t.namespace.clone(),
                user: caller.user_id.clone(),
            });
        }
        store
            .items(t.kind, t.namespace.as_deref(), None)
            .filter(|(_, i)| {
                let o = i.value();
                (label_sel.is_empty() || labels_match(&label_sel, get_path(&o, "metadata.labels")))
                    && (field_sel.is_empty() || field_selector_match(&field_sel, &o))
                    && o.get("builtin").and_then(Value::as_bool) != Some(true)
            })
            .map(|(k, _)| k.to_string())
            .collect()
    };
    if !dry_run(req) {
        for k in keys {
            let _ = ops::delete(&mut store, caller, t.kind, &k, None);
        }
    }
    Resp::json(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    )
}

/// A watch: a long-lived stream of changes (see [`crate::watch`]).
fn watch(shared: &Shared, caller: &Caller, t: &Target, req: &Req) -> Resp {
    crate::watch::serve(shared, caller, t, req)
}

//! Authentication (bearer, basic, `R_SESS` cookie; ext tokens on 2.12+) and a small RBAC model:
//! global roles' rules plus the ownership and membership grants Rancher gives every user.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::http::Req;
use crate::ids;
use crate::server::Shared;
use crate::state::{fmt_ms, get_path, key_of, now_ms, s, set_path, Kind, Store};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub user_id: String,
    /// The token name (`token-x`, or `ext/token-x`).
    pub token: String,
    /// Set for cluster-scoped tokens.
    pub cluster: Option<String>,
    pub admin: bool,
    pub rules: Vec<Rule>,
    pub derived: bool,
    /// The group principals the caller carries (`Store::groups_of`).
    pub groups: Vec<String>,
}

/// The result of looking at a request's credentials.
pub(crate) enum AuthOutcome {
    /// No credentials at all.
    Anonymous,
    /// Credentials that do not authenticate (unknown, wrong secret, expired, disabled...).
    Invalid,
    /// A valid caller.
    Caller(Caller),
}

/// One RBAC policy rule.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rule {
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    pub names: Vec<String>,
    pub urls: Vec<String>,
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

impl Rule {
    /// A rule from its JSON form (`apiGroups`, `resources`, `verbs`, `resourceNames`, `nonResourceURLs`).
    pub fn from_json(v: &Value) -> Rule {
        Rule {
            groups: strs(v.get("apiGroups")),
            resources: strs(v.get("resources")),
            verbs: strs(v.get("verbs")),
            names: strs(v.get("resourceNames")),
            urls: strs(v.get("nonResourceURLs")),
        }
    }

    /// The rules of a JSON array of rules.
    pub fn all_from(v: Option<&Value>) -> Vec<Rule> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().map(Rule::from_json).collect())
            .unwrap_or_default()
    }

    /// Kubernetes' rendering of a rule in escalation messages (`{APIGroups:[""], Resources:["secrets"], Verbs:["create"]}`).
    pub fn k8s_text(&self) -> String {
        let list = |l: &[String]| l.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(" ");
        let mut parts = Vec::new();
        if !self.urls.is_empty() {
            parts.push(format!("NonResourceURLs:[{}]", list(&self.urls)));
        } else {
            parts.push(format!("APIGroups:[{}]", list(&self.groups)));
            parts.push(format!("Resources:[{}]", list(&self.resources)));
            if !self.names.is_empty() {
                parts.push(format!("ResourceNames:[{}]", list(&self.names)));
            }
        }
        parts.push(format!("Verbs:[{}]", list(&self.verbs)));
        format!("{{{}}}", parts.join(", "))
    }

    /// Does this rule allow `verb` on `group`/`resource` (optionally the object `name`)?
    pub fn allows(&self, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
        let any = |list: &[String], x: &str| list.iter().any(|i| i == "*" || i == x);
        any(&self.verbs, verb)
            && any(&self.groups, group)
            && any(&self.resources, resource)
            && (self.names.is_empty() || name.is_some_and(|n| self.names.iter().any(|i| i == n)))
    }
}

/// Is every permission of `wanted` held by `owner`? Like Kubernetes' `ConfirmNoEscalation`, the wanted rule is cut
/// into single (group, resource, verb, name) grants and each must be allowed by one owner rule; a `*` wanted is
/// held only by a `*` owned.
fn covered(owner: &[Rule], wanted: &Rule) -> bool {
    let has = |list: &[String], x: &str| list.iter().any(|i| i == "*" || i == x);
    if !wanted.urls.is_empty() {
        return wanted.urls.iter().all(|u| {
            wanted.verbs.iter().all(|v| {
                owner
                    .iter()
                    .any(|o| has(&o.verbs, v) && (o.urls.iter().any(|x| x == "*" || x == u)))
            })
        });
    }
    let names: Vec<Option<&str>> = if wanted.names.is_empty() {
        vec![None]
    } else {
        wanted.names.iter().map(|n| Some(n.as_str())).collect()
    };
    wanted.groups.iter().all(|g| {
        wanted.resources.iter().all(|r| {
            wanted.verbs.iter().all(|v| {
                names.iter().all(|n| {
                    owner.iter().any(|o| {
                        o.urls.is_empty()
                            && has(&o.verbs, v)
                            && has(&o.groups, g)
                            && has(&o.resources, r)
                            && (o.names.is_empty() || n.is_some_and(|n| o.names.iter().any(|x| x == n)))
                    })
                })
            })
        })
    })
}

/// The rules of `wanted` that `owner` does not hold.
pub(crate) fn not_held(owner: &[Rule], wanted: &[Rule]) -> Vec<Rule> {
    wanted.iter().filter(|w| !covered(owner, w)).cloned().collect()
}

/// The webhook's escalation message for `user` (rancher/webhook pkg/auth `ConfirmNoEscalation`).
pub(crate) fn escalation_message(user: &str, missing: &[Rule]) -> String {
    let rules: Vec<String> = missing.iter().map(Rule::k8s_text).collect();
    format!(
        "errors due to escalation: user \"{user}\" (groups=[\"system:authenticated\" \"system:cattle:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{}",
        rules.join("\n")
    )
}

/// The credential string (`name:secret`) a request carries, if any.
pub(crate) fn credential(req: &Req) -> Option<String> {
    if let Some(h) = req.header("authorization") {
        let h = h.trim();
        if let Some(rest) = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")) {
            return Some(rest.trim().to_string());
        }
        if let Some(rest) = h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")) {
            return ids::b64_decode(rest)
                .and_then(|b| String::from_utf8(b).ok())
                .or(Some(String::new()));
        }
        return Some(h.to_string());
    }
    for cookie in req.headers.get_all("cookie") {
        if let Ok(text) = cookie.to_str() {
            for part in text.split(';') {
                if let Some(v) = part.trim().strip_prefix("R_SESS=") {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

/// Authenticates a 2.x request.
pub(crate) fn authenticate(store: &Store, req: &Req) -> AuthOutcome {
    let Some(cred) = credential(req) else {
        return AuthOutcome::Anonymous;
    };
    let Some((name, secret)) = cred.split_once(':') else {
        return AuthOutcome::Invalid;
    };
    if name.starts_with("ext/") && !store.version.at_least(2, 12) {
        return AuthOutcome::Invalid;
    }
    let Some(t) = store.tokens.get(name) else {
        return AuthOutcome::Invalid;
    };
    if t.secret != secret || !t.enabled || t.expires_at_ms.is_some_and(|e| e <= now_ms()) {
        return AuthOutcome::Invalid;
    }
    let Some(user) = store.get(Kind::User, &t.user_id) else {
        return AuthOutcome::Invalid;
    };
    if user.get("enabled").and_then(Value::as_bool) == Some(false) {
        return AuthOutcome::Invalid;
    }
    if !provider_enabled(store, &t.provider) {
        return AuthOutcome::Invalid;
    }
    AuthOutcome::Caller(caller_for(store, &t.user_id, name, t.cluster.clone(), t.derived))
}

/// Records that the caller's token was just used, as Rancher 2.10+ does on every authenticated request: a v3
/// Token gets `lastUsedAt`, an ext token `status.lastUsedAt`; a time already equal to this second is left alone, so
/// a burst of requests writes once (rancher/rancher pkg/auth/requests/authenticate.go `Authenticate`, 2.10+, and
/// pkg/ext/stores/tokens/tokens.go `UpdateLastUsedAt`). Before 2.10 the field does not exist
/// (pkg/apis/management.cattle.io/v3/authn_types.go has no `LastUsedAt` on release/v2.8 and v2.9): nothing is written.
pub(crate) fn note_use(shared: &Shared, caller: &Caller) {
    let mut store = shared.store.write().expect("store lock");
    note_use_in(&mut store, &caller.token);
}

/// [`note_use`] on a locked store.
pub(crate) fn note_use_in(store: &mut Store, token: &str) {
    if !store.version.at_least(2, 10) {
        return;
    }
    let (kind, name, path) = match token.strip_prefix("ext/") {
        Some(name) => (Kind::ExtToken, name, "status.lastUsedAt"),
        None => (Kind::Token, token, "lastUsedAt"),
    };
    let key = key_of(kind, "", name);
    let Some(mut obj) = store.get(kind, &key).cloned() else {
        return;
    };
    let now = fmt_ms(now_ms());
    if get_path(&obj, path).and_then(Value::as_str) == Some(now.as_str()) {
        return;
    }
    set_path(&mut obj, path, Value::String(now));
    store.stamp_update(&mut obj, false);
    store.put(kind, key, obj, None);
}

/// Is the auth provider that issued a token still enabled? (local always is.)
pub(crate) fn provider_enabled(store: &Store, provider: &str) -> bool {
    if provider.is_empty() || provider == "local" {
        return true;
    }
    store
        .get(Kind::AuthConfig, provider)
        .map(|c| c.get("enabled").and_then(Value::as_bool).unwrap_or(false))
        .unwrap_or(true)
}

/// Builds the caller (roles and rules) for `user_id`.
pub(crate) fn caller_for(store: &Store, user_id: &str, token: &str, cluster: Option<String>, derived: bool) -> Caller {
    // A group's global role bindings reach its members: the GRB controller binds the group as the subject
    // (rancher/rancher pkg/controllers/management/auth/globalroles/globalrolebinding_handler.go, `rbac.GetGRBSubject`)
    // and the authenticator hands the caller's groups to the impersonated request (pkg/auth/requests/authenticate.go).
    let groups = store.groups_of(user_id, token);
    let mut roles = store.roles_of(user_id);
    for g in &groups {
        roles.extend(store.roles_of(g));
    }
    let admin = roles.iter().any(|r| r == "admin");
    let mut rules = Vec::new();
    if !admin {
        for r in &roles {
            if let Some(gr) = store.get(Kind::GlobalRole, r) {
                if let Some(arr) = gr.get("rules").and_then(Value::as_array) {
                    rules.extend(arr.iter().map(Rule::from_json));
                }
            }
        }
    }
    Caller {
        user_id: user_id.to_string(),
        token: token.to_string(),
        cluster,
        admin,
        rules,
        derived,
        groups,
    }
}

/// Memberships of a caller in clusters and projects (from CRTBs/PRTBs), computed once per request.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    pub cluster_owner: BTreeSet<String>,
    pub cluster_member: BTreeSet<String>,
    /// Project ids (`c-x:p-y`) the caller is a member of.
    pub project_member: BTreeSet<String>,
    pub project_owner: BTreeSet<String>,
}

impl Membership {
    /// Scans the bindings for `user_id` and its `groups` (a group CRTB/PRTB binds the group as the RBAC subject:
    /// rancher/rancher pkg/rbac/common.go `BuildSubjectFromRTB`).
    pub fn of(store: &Store, user_id: &str, groups: &[String]) -> Membership {
        let mut m = Membership::default();
        let principal = store.principal_of(user_id);
        let is_me = |b: &Value| {
            s(b, "userName") == user_id
                || (!principal.is_empty() && s(b, "userPrincipalName") == principal)
                || binds_group(b, groups)
        };
        for (_, b) in store.values(Kind::Crtb) {
            let b = &*b;
            if is_me(b) {
                let c = s(b, "clusterName").to_string();
                if s(b, "roleTemplateName") == "cluster-owner" {
                    m.cluster_owner.insert(c.clone());
                }
                m.cluster_member.insert(c);
            }
        }
        for (_, b) in store.values(Kind::Prtb) {
            let b = &*b;
            if is_me(b) {
                let p = s(b, "projectName").to_string();
                if s(b, "roleTemplateName") == "project-owner" {
                    m.project_owner.insert(p.clone());
                }
                if let Some((c, _)) = p.split_once(':') {
                    m.cluster_member.insert(c.to_string());
                }
                m.project_member.insert(p);
            }
        }
        m
    }
}

/// Does a CRTB/PRTB bind one of `groups` (by `groupPrincipalName` or `groupName`)?
fn binds_group(b: &Value, groups: &[String]) -> bool {
    if groups.is_empty() {
        return false;
    }
    [s(b, "groupPrincipalName"), s(b, "groupName")]
        .iter()
        .any(|g| !g.is_empty() && groups.iter().any(|x| x == g))
}

/// Authorization context for one request.
pub(crate) struct Authz<'a> {
    pub caller: &'a Caller,
    membership: std::cell::OnceCell<Membership>,
    /// Rules per namespace, computed once per request (a list checks many objects of a few namespaces).
    scoped: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<Vec<Rule>>>>,
    store: &'a Store,
}

impl<'a> Authz<'a> {
    /// A context for `caller`.
    pub fn new(store: &'a Store, caller: &'a Caller) -> Authz<'a> {
        Authz {
            caller,
            membership: std::cell::OnceCell::new(),
            scoped: Default::default(),
            store,
        }
    }

    fn m(&self) -> &Membership {
        self.membership
            .get_or_init(|| Membership::of(self.store, &self.caller.user_id, &self.caller.groups))
    }

    /// The rules of role template `name` and of those it inherits (`roleTemplateNames`).
    pub fn role_template_rules(&self, name: &str) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut todo = vec![name.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(rt) = self.store.get(Kind::RoleTemplate, &n) {
                out.extend(Rule::all_from(rt.get("rules")));
                if let Some(a) = rt.get("roleTemplateNames").and_then(Value::as_array) {
                    todo.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
                }
            }
        }
        out
    }

    /// The caller's rules in `namespace` of the local cluster: global rules plus the management rules of the role
    /// templates bound to them in that cluster namespace (CRTBs) or project namespace (PRTBs, and the project's
    /// cluster's CRTBs), as Rancher's RBAC controllers apply them.
    pub fn rules_in(&self, namespace: &str) -> std::rc::Rc<Vec<Rule>> {
        if let Some(r) = self.scoped.borrow().get(namespace) {
            return r.clone();
        }
        let rules = std::rc::Rc::new(self.compute_rules_in(namespace));
        self.scoped.borrow_mut().insert(namespace.to_string(), rules.clone());
        rules
    }

    fn compute_rules_in(&self, namespace: &str) -> Vec<Rule> {
        let mut rules = self.caller.rules.clone();
        if namespace.is_empty() {
            return rules;
        }
        let me = self.caller.user_id.as_str();
        let project = self
            .store
            .map(Kind::Project)
            .iter()
            .find(|(k, p)| s(p, "status.backingNamespace") == namespace || k.split(':').nth(1) == Some(namespace))
            .map(|(k, _)| k.clone());
        let cluster = project
            .as_deref()
            .and_then(|p| p.split(':').next())
            .unwrap_or(namespace)
            .to_string();
        let groups = &self.caller.groups;
        for (_, b) in self.store.values(Kind::Crtb) {
            let b = &*b;
            if (s(b, "userName") == me || binds_group(b, groups)) && s(b, "clusterName") == cluster {
                rules.extend(self.role_template_rules(s(b, "roleTemplateName")));
            }
        }
        if let Some(p) = &project {
            for (_, b) in self.store.values(Kind::Prtb) {
                let b = &*b;
                if (s(b, "userName") == me || binds_group(b, groups)) && s(b, "projectName") == p {
                    rules.extend(self.role_template_rules(s(b, "roleTemplateName")));
                }
            }
        }
        rules
    }

    /// The rules of `wanted` the caller does not hold in `namespace` (empty for admins).
    pub fn not_held(&self, wanted: &[Rule], namespace: &str) -> Vec<Rule> {
        if self.caller.admin {
            return Vec::new();
        }
        not_held(&self.rules_in(namespace), wanted)
    }

    /// Does the caller hold the special `verb` (`bind`, `escalate`, `manage-users`) on `kind` (object `name`)?
    pub fn has_verb(&self, verb: &str, kind: Kind, name: &str) -> bool {
        let info = kind.info();
        self.caller.admin
            || self
                .caller
                .rules
                .iter()
                .any(|r| r.allows(verb, info.group, info.plural, Some(name)))
    }

    /// May the caller reach management kinds that are not on the RK proxy's allow-list? Rancher asks for `get` on
    /// `clusters.management.cattle.io/local` (rancher/rancher pkg/api/steve/proxy/proxy.go `authLocalCluster`).
    pub fn local_cluster_access(&self) -> bool {
        self.caller.admin
            || self
                .caller
                .rules
                .iter()
                .any(|r| r.allows("get", "management.cattle.io", "clusters", Some("local")))
            || self.m().cluster_member.contains("local")
    }

    /// May the caller `verb` (list, watch, deletecollection) the whole collection of `kind` in `namespace`? Kubernetes
    /// RBAC answers for the collection, never per item.
    pub fn can_collection(&self, verb: &str, kind: Kind, namespace: Option<&str>) -> bool {
        if self.caller.admin {
            return true;
        }
        let info = kind.info();
        self.rules_in(namespace.unwrap_or(""))
            .iter()
            .any(|r| r.allows(verb, info.group, info.plural, None))
    }

    /// May the caller do `verb` on every object of `kind` (no per-object check needed)?
    pub fn can_all(&self, verb: &str, kind: Kind) -> bool {
        if self.caller.admin {
            return true;
        }
        let info = kind.info();
        self.caller
            .rules
            .iter()
            .any(|r| r.allows(verb, info.group, info.plural, None))
    }

    /// May the caller do `verb` on `obj` of `kind` (in `namespace`)? `obj` is `None` for creates, where
    /// `namespace` and `target` (the object to be created) decide.
    pub fn can(&self, verb: &str, kind: Kind, obj: &Value) -> bool {
        if self.caller.admin {
            return true;
        }
        let info = kind.info();
        let name = s(obj, "metadata.name");
        if self
            .caller
            .rules
            .iter()
            .any(|r| r.allows(verb, info.group, info.plural, Some(name)))
        {
            return true;
        }
        let ns = s(obj, "metadata.namespace");
        if info.namespaced
            && !ns.is_empty()
            && self
                .rules_in(ns)
                .iter()
                .any(|r| r.allows(verb, info.group, info.plural, Some(name)))
        {
            return true;
        }
        let me = self.caller.user_id.as_str();
        let read = matches!(verb, "get" | "list" | "watch");
        match kind {
            Kind::User => read && name == me,
            Kind::GlobalRoleBinding => read && s(obj, "userName") == me,
            Kind::Token => s(obj, "userId") == me && verb != "update" && verb != "patch",
            Kind::ExtToken => s(obj, "spec.userID") == me,
            Kind::Kubeconfig => {
                obj.get("metadata")
                    .and_then(|m| m.get("labels"))
                    .and_then(|l| l.get("cattle.io/user-id"))
                    .and_then(Value::as_str)
                    == Some(me)
            }
            Kind::Setting => read,
            Kind::Cluster => {
                let m = self.m();
                read && (m.cluster_member.contains(name) || m.cluster_owner.contains(name))
            }
            Kind::Project => {
                let id = format!("{}:{}", s(obj, "metadata.namespace"), name);
                let cluster = s(obj, "spec.clusterName");
                let m = self.m();
                m.cluster_owner.contains(cluster)
                    || (read && m.project_member.contains(&id))
                    || (matches!(verb, "update" | "patch" | "delete") && m.project_owner.contains(&id))
            }
            Kind::Crtb => {
                let m = self.m();
                (read && (s(obj, "userName") == me || binds_group(obj, &self.caller.groups)))
                    || m.cluster_owner.contains(s(obj, "clusterName"))
            }
            Kind::Prtb => {
                let m = self.m();
                let p = s(obj, "projectName");
                let cluster = p.split(':').next().unwrap_or("");
                (read && (s(obj, "userName") == me || m.project_member.contains(p)))
                    || m.project_owner.contains(p)
                    || m.cluster_owner.contains(cluster)
            }
            _ => false,
        }
    }
}

/// The Kubernetes "forbidden" message.
pub(crate) fn forbidden_message(
    user: &str,
    verb: &str,
    kind: Kind,
    name: Option<&str>,
    namespace: Option<&str>,
) -> String {
    let info = kind.info();
    let subject = match name {
        Some(n) if !n.is_empty() => format!("{}.{} \"{}\"", info.plural, info.group, n),
        _ => format!("{}.{}", info.plural, info.group),
    };
    let scope = match namespace {
        Some(ns) if !ns.is_empty() => format!("in the namespace \"{ns}\""),
        _ => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
        info.plural, info.group
    )
}

/// May a cluster-scoped token use this path? (`/v3/clusters/<id>...`, `/v3/cluster/<id>...`,
/// `/k8s/clusters/<id>/...`, `/k8s/proxy/<id>/...`.)
pub(crate) fn cluster_token_allowed(req: &Req, cluster: &str) -> bool {
    let a = req.seg(0);
    let b = req.seg(1);
    (a == "v3" || a == "k8s") && matches!(b, "clusters" | "cluster" | "proxy") && req.seg(2) == cluster
}

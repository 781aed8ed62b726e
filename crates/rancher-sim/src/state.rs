//! The simulator's state: its own JSON documents per kind (Kubernetes form), indexes for authentication
//! and authorization, the resource-version counter and counters of applied writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::config::RancherVersion;
use crate::ids;
use crate::legacy::Legacy;

/// Every kind of object the simulator stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    User,
    GlobalRole,
    GlobalRoleBinding,
    RoleTemplate,
    Project,
    Crtb,
    Prtb,
    Token,
    ExtToken,
    Kubeconfig,
    AuditPolicy,
    Cluster,
    AuthConfig,
    Setting,
    UserAttribute,
}

/// Static facts about one kind.
pub(crate) struct KindInfo {
    pub kind: Kind,
    /// Store and handle name (`users`, `exttokens`...).
    pub key: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind_name: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    /// First Rancher version serving it on the RK-API; `None` = not an RK-API kind.
    pub rk_since: Option<(u32, u32)>,
    pub status_sub: bool,
    pub gen_prefix: &'static str,
}

macro_rules! kind {
    ($k:ident, $key:expr, $g:expr, $v:expr, $kn:expr, $pl:expr, $sg:expr, $ns:expr, $since:expr, $st:expr, $pre:expr) => {
        KindInfo {
            kind: Kind::$k,
            key: $key,
            group: $g,
            version: $v,
            kind_name: $kn,
            plural: $pl,
            singular: $sg,
            namespaced: $ns,
            rk_since: $since,
            status_sub: $st,
            gen_prefix: $pre,
        }
    };
}

const MG: &str = "management.cattle.io";

/// The kind table.
pub(crate) static KINDS: &[KindInfo] = &[
    kind!(
        User,
        "users",
        MG,
        "v3",
        "User",
        "users",
        "user",
        false,
        Some((2, 8)),
        false,
        "u-"
    ),
    kind!(
        GlobalRole,
        "globalroles",
        MG,
        "v3",
        "GlobalRole",
        "globalroles",
        "globalrole",
        false,
        Some((2, 8)),
        true,
        "gr-"
    ),
    kind!(
        GlobalRoleBinding,
        "globalrolebindings",
        MG,
        "v3",
        "GlobalRoleBinding",
        "globalrolebindings",
        "globalrolebinding",
        false,
        Some((2, 8)),
        true,
        "grb-"
    ),
    kind!(
        RoleTemplate,
        "roletemplates",
        MG,
        "v3",
        "RoleTemplate",
        "roletemplates",
        "roletemplate",
        false,
        Some((2, 8)),
        false,
        "rt-"
    ),
    kind!(
        Project,
        "projects",
        MG,
        "v3",
        "Project",
        "projects",
        "project",
        true,
        Some((2, 8)),
        false,
        "p-"
    ),
    kind!(
        Crtb,
        "clusterroletemplatebindings",
        MG,
        "v3",
        "ClusterRoleTemplateBinding",
        "clusterroletemplatebindings",
        "clusterroletemplatebinding",
        true,
        Some((2, 8)),
        true,
        "crtb-"
    ),
    kind!(
        Prtb,
        "projectroletemplatebindings",
        MG,
        "v3",
        "ProjectRoleTemplateBinding",
        "projectroletemplatebindings",
        "projectroletemplatebinding",
        true,
        Some((2, 8)),
        false,
        "prtb-"
    ),
    // Served on the RK-API to whoever may list tokens.management.cattle.io (an admin): the CRD behind /v3/tokens.
    kind!(
        Token,
        "tokens",
        MG,
        "v3",
        "Token",
        "tokens",
        "token",
        false,
        Some((2, 8)),
        false,
        "token-"
    ),
    kind!(
        ExtToken,
        "exttokens",
        "ext.cattle.io",
        "v1",
        "Token",
        "tokens",
        "token",
        false,
        Some((2, 12)),
        false,
        "token-"
    ),
    kind!(
        Kubeconfig,
        "kubeconfigs",
        "ext.cattle.io",
        "v1",
        "Kubeconfig",
        "kubeconfigs",
        "kubeconfig",
        false,
        Some((2, 12)),
        false,
        "kubeconfig-"
    ),
    kind!(
        AuditPolicy,
        "auditpolicies",
        "auditlog.cattle.io",
        "v1",
        "AuditPolicy",
        "auditpolicies",
        "auditpolicy",
        false,
        Some((2, 12)),
        true,
        "ap-"
    ),
    // The CRD behind /v3/clusters, served on the RK-API since 2.8 to callers with local-cluster access (it is off
    // the proxy's allow-list: rancher/rancher pkg/api/steve/disallow/disallow.go `AllowAll`). The simulator serves
    // it read-only (list and get).
    kind!(
        Cluster,
        "clusters",
        MG,
        "v3",
        "Cluster",
        "clusters",
        "cluster",
        false,
        Some((2, 8)),
        false,
        "c-"
    ),
    kind!(
        AuthConfig,
        "authconfigs",
        MG,
        "v3",
        "AuthConfig",
        "authconfigs",
        "authconfig",
        false,
        None,
        false,
        ""
    ),
    kind!(Setting, "settings", MG, "v3", "Setting", "settings", "setting", false, None, false, ""),
    // Per-user login facts: the groups each provider reported, the last login, retention overrides (rancher/rancher
    // pkg/apis/management.cattle.io/v3/authn_types.go `UserAttribute`; named after the user). A CRD, so served on
    // the RK-API behind the local-cluster gate; norman imports the type with no collection or resource methods
    // (pkg/schemas/management.cattle.io/v3/schema.go `userTypes`), so `/v3/userattributes` answers 405.
    kind!(
        UserAttribute,
        "userattributes",
        MG,
        "v3",
        "UserAttribute",
        "userattributes",
        "userattribute",
        false,
        Some((2, 8)),
        false,
        ""
    ),
];

impl Kind {
    /// Facts about this kind.
    pub fn info(self) -> &'static KindInfo {
        KINDS
            .iter()
            .find(|k| k.kind == self)
            .expect("every kind is in the table")
    }
    /// Looks a kind up by its store/handle name (also accepts a few aliases).
    pub fn from_key(key: &str) -> Option<Kind> {
        let k = key.to_ascii_lowercase();
        let k = match k.as_str() {
            "crtb" | "crtbs" => "clusterroletemplatebindings",
            "prtb" | "prtbs" => "projectroletemplatebindings",
            "grb" | "grbs" => "globalrolebindings",
            "ext-tokens" | "exttoken" => "exttokens",
            other => other,
        };
        KINDS.iter().find(|i| i.key == k || i.singular == k).map(|i| i.kind)
    }
    /// On the RK proxy's allow-list in `version` (rancher/rancher pkg/api/steve/disallow/disallow.go `AllowAll`:
    /// clusterproxyconfigs, CRTBs, GRBs, globalroles, PSACTs, projects, PRTBs, oidcclients, and users from 2.13)?
    /// Every other management kind needs local-cluster access (pkg/api/steve/proxy/proxy.go `matchManagementCRDs`):
    /// roletemplates, userattributes, clusters and tokens.management.cattle.io always, users before 2.13.
    pub fn rk_allow_listed(self, version: RancherVersion) -> bool {
        match self {
            Kind::RoleTemplate | Kind::UserAttribute | Kind::Token | Kind::Cluster => false,
            Kind::User => version.at_least(2, 13),
            _ => true,
        }
    }
    /// Served on the RK-API by `version`?
    pub fn rk_served(self, version: RancherVersion) -> bool {
        match self.info().rk_since {
            Some((ma, mi)) => !version.is_legacy() && version.at_least(ma, mi),
            None => false,
        }
    }
}

/// What authenticates a bearer token.
#[derive(Debug, Clone)]
pub(crate) struct TokenAuth {
    pub secret: String,
    pub user_id: String,
    pub cluster: Option<String>,
    pub expires_at_ms: Option<i64>,
    pub enabled: bool,
    /// An ext.cattle.io token (bearer `ext/...`).
    #[allow(dead_code)]
    pub ext: bool,
    pub provider: String,
    pub derived: bool,
}

/// A user of a seeded external directory (LDAP, AD, GitHub, Azure AD).
#[derive(Debug, Clone)]
pub(crate) struct DirUser {
    pub login: String,
    pub name: String,
    pub password: String,
    pub groups: Vec<String>,
    pub external_id: String,
}

/// A group / org of a seeded external directory.
#[derive(Debug, Clone)]
pub(crate) struct DirGroup {
    pub name: String,
    pub external_id: String,
}

/// A small directory per external provider.
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    pub users: Vec<DirUser>,
    pub groups: Vec<DirGroup>,
}

/// One applied write, for the handle's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Verb {
    Create,
    Update,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// All state behind one lock.
pub(crate) struct Store {
    pub objects: HashMap<Kind, BTreeMap<String, Value>>,
    pub rv: u64,
    pub tokens: HashMap<String, TokenAuth>,
    pub grb_by_user: HashMap<String, BTreeSet<String>>,
    pub usernames: HashMap<String, String>,
    pub passwords: HashMap<String, String>,
    pub writes: BTreeMap<(String, Verb), u64>,
    pub rng: ChaCha8Rng,
    pub version: RancherVersion,
    pub reject_duplicate_bindings: bool,
    pub directories: BTreeMap<String, Directory>,
    pub legacy: Option<Legacy>,
    pub server_url: String,
    pub pending_secret: Option<String>,
    /// Deleted objects still held by a finalizer: `(kind, key, due ms)`.
    pub terminating: Vec<(Kind, String, i64)>,
    /// How long a deleted object with a finalizer lingers (ms; 0 = removed at once).
    pub deletion_linger_ms: i64,
    /// The most recent removals `(kind, key, object at its removal resourceVersion)`, for watches' DELETED events.
    pub tombstones: std::collections::VecDeque<(Kind, String, Value)>,
    /// Recent changes `(kind, key, resourceVersion of the change, the object before it or None when created)`, so a
    /// continued RK list is served at its first page's version, as etcd serves it until compaction.
    pub history: std::collections::VecDeque<(Kind, String, u64, Option<Value>)>,
    /// The oldest resourceVersion `history` still covers (older continue tokens are "compacted": 410).
    pub history_floor: u64,
    /// Tokens seeded in bulk (`SimConfig::tokens`), kept compactly; `get`, `put` and `remove` see them as objects.
    pub seeded: crate::tokens::Seeded,
    /// Users, attributes and bindings seeded in bulk, kept compactly; seen as objects as the tokens are.
    pub bulk: crate::bulk::Bulk,
    /// The watch history: every change as a watch event, oldest first, at most [`WATCH_HISTORY_LEN`] (see
    /// [`crate::watch`]).
    pub events: std::collections::VecDeque<WatchEvent>,
    /// The newest resourceVersion dropped from `events` (a watch from an older version is answered `Expired`).
    pub events_floor: u64,
    /// Says "something changed" (the newest resourceVersion) to the open watch streams.
    pub changed: tokio::sync::watch::Sender<u64>,
}

/// One change as a watch stream reports it: the object as it was right after the change.
#[derive(Debug, Clone)]
pub(crate) struct WatchEvent {
    /// The change's resourceVersion.
    pub rv: u64,
    pub kind: Kind,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub verb: &'static str,
    pub object: Value,
}

/// How many changes [`Store::events`] keeps, like the apiserver's watch cache capacity: a watch that resumes from
/// an older resourceVersion is told to list again.
pub(crate) const WATCH_HISTORY_LEN: usize = 20_000;

/// How many changes [`Store::history`] keeps.
pub(crate) const HISTORY_LEN: usize = 20_000;

/// Current time as RFC 3339 with seconds (Kubernetes style).
pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Parses an RFC 3339 time to epoch ms.
pub(crate) fn parse_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|d| d.timestamp_millis())
}

/// Formats epoch ms as RFC 3339 (seconds).
pub(crate) fn fmt_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `obj.a.b.c` lookup by dotted path.
pub(crate) fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path.split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

/// Sets `obj.a.b.c`, creating objects on the way.
pub(crate) fn set_path(obj: &mut Value, path: &str, v: Value) {
    let mut cur = obj;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let map = cur.as_object_mut().expect("just made an object");
        if i == segs.len() - 1 {
            map.insert((*seg).to_string(), v);
            return;
        }
        cur = map
            .entry((*seg).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// String at a dotted path, or "".
pub(crate) fn s<'a>(obj: &'a Value, path: &str) -> &'a str {
    get_path(obj, path).and_then(Value::as_str).unwrap_or("")
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(pm) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let tm = target.as_object_mut().expect("object");
            for (k, v) in pm {
                if v.is_null() {
                    tm.remove(k);
                } else {
                    merge_patch(tm.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The store key of an object: `name`, or `namespace:name` for namespaced kinds (= the norman id).
pub(crate) fn key_of(kind: Kind, namespace: &str, name: &str) -> String {
    if kind.info().namespaced {
        format!("{namespace}:{name}")
    } else {
        name.to_string()
    }
}

/// Server-side metadata of a new object (what [`Store::stamp_new`] writes), for a given resourceVersion and uid.
pub(crate) fn stamp_with(obj: &mut Value, rv: u64, uid: String, created: &str) {
    let meta = obj
        .as_object_mut()
        .expect("objects are JSON objects")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let m = meta.as_object_mut().expect("metadata object");
    m.insert("uid".into(), Value::String(uid));
    m.insert("resourceVersion".into(), Value::String(rv.to_string()));
    m.insert("creationTimestamp".into(), Value::String(created.to_string()));
    m.insert("generation".into(), json!(1));
    m.remove("generateName");
}

impl Store {
    /// An empty store.
    pub fn new(version: RancherVersion, rng: ChaCha8Rng, reject_duplicate_bindings: bool) -> Store {
        Store {
            objects: HashMap::new(),
            rv: 1000,
            tokens: HashMap::new(),
            grb_by_user: HashMap::new(),
            usernames: HashMap::new(),
            passwords: HashMap::new(),
            writes: BTreeMap::new(),
            rng,
            version,
            reject_duplicate_bindings,
            directories: BTreeMap::new(),
            legacy: None,
            server_url: String::new(),
            pending_secret: None,
            terminating: Vec::new(),
            deletion_linger_ms: 0,
            tombstones: std::collections::VecDeque::new(),
            seeded: Default::default(),
            bulk: Default::default(),
            history: std::collections::VecDeque::new(),
            history_floor: 0,
            events: std::collections::VecDeque::new(),
            events_floor: 0,
            changed: tokio::sync::watch::channel(1000).0,
        }
    }

    /// Appends a change to the watch history and wakes the open watches.
    fn record_event(&mut self, kind: Kind, verb: &'static str, rv: u64, object: &Value) {
        self.events.push_back(WatchEvent {
            rv,
            kind,
            verb,
            object: object.clone(),
        });
        while self.events.len() > WATCH_HISTORY_LEN {
            if let Some(e) = self.events.pop_front() {
                self.events_floor = e.rv;
            }
        }
        self.changed.send_replace(self.rv.max(rv));
    }

    /// Forgets the whole watch history, as an etcd compaction does: every watch that resumes from a version older
    /// than now is told its version expired.
    pub fn compact_watch_history(&mut self) {
        self.events.clear();
        self.events_floor = self.rv;
        self.changed.send_replace(self.rv);
    }

    /// Records a change for continued lists (see [`Store::history`]).
    fn remember(&mut self, kind: Kind, key: &str, rv: u64, before: Option<Value>) {
        self.history.push_back((kind, key.to_string(), rv, before));
        if self.history.len() > HISTORY_LEN {
            if let Some((_, _, dropped, _)) = self.history.pop_front() {
                self.history_floor = dropped;
            }
        }
    }

    /// Removes the terminating objects whose finalizer is due (the controllers' work), with their garbage.
    pub fn purge_terminating(&mut self) {
        if self.terminating.is_empty() {
            return;
        }
        let now = now_ms();
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.terminating)
            .into_iter()
            .partition(|(_, _, at)| *at <= now);
        self.terminating = keep;
        for (kind, key, _) in due {
            if let Some(old) = self.get(kind, &key).cloned() {
                crate::ops::finish_delete(self, kind, &key, &old, false);
            }
        }
    }

    /// The objects of one kind, ordered by key.
    pub fn map(&self, kind: Kind) -> &BTreeMap<String, Value> {
        static EMPTY: std::sync::OnceLock<BTreeMap<String, Value>> = std::sync::OnceLock::new();
        self.objects
            .get(&kind)
            .unwrap_or_else(|| EMPTY.get_or_init(BTreeMap::new))
    }

    /// One object by key.
    pub fn get(&self, kind: Kind, key: &str) -> Option<&Value> {
        self.objects
            .get(&kind)
            .and_then(|m| m.get(key))
            .or_else(|| self.seeded.get(kind, key))
            .or_else(|| self.bulk.get(kind, key))
    }

    /// A fresh generated name for `kind` not yet taken in `namespace`.
    pub fn fresh_name(&mut self, kind: Kind, namespace: &str, prefix: &str) -> String {
        loop {
            let name = ids::gen_name(&mut self.rng, prefix);
            if self.get(kind, &key_of(kind, namespace, &name)).is_none() {
                return name;
            }
        }
    }

    /// A new uid.
    pub fn uid(&mut self) -> String {
        ids::uid(&mut self.rng)
    }

    /// Fills server-side metadata of a new object (uid, resourceVersion, creationTimestamp, generation).
    pub fn stamp_new(&mut self, obj: &mut Value, created: &str) {
        self.rv += 1;
        let uid = self.uid();
        stamp_with(obj, self.rv, uid, created);
    }

    /// Bumps resourceVersion (and generation when `spec_changed`) of an updated object.
    pub fn stamp_update(&mut self, obj: &mut Value, spec_changed: bool) {
        self.rv += 1;
        set_path(obj, "metadata.resourceVersion", Value::String(self.rv.to_string()));
        if spec_changed {
            let g = get_path(obj, "metadata.generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set_path(obj, "metadata.generation", json!(g + 1));
        }
    }

    /// Inserts or replaces an object, keeps the indexes, and counts the write when `verb` is given.
    pub fn put(&mut self, kind: Kind, key: String, obj: Value, verb: Option<Verb>) {
        // A seeded token written to becomes a stored object.
        let seeded_old = self.seeded.take(kind, &key).or_else(|| self.bulk.take(kind, &key));
        if let Some(old) = &seeded_old {
            self.unindex(kind, &key, old);
        }
        let stored_old = self.objects.get(&kind).and_then(|m| m.get(&key)).cloned();
        if let Some(old) = &stored_old {
            self.unindex(kind, &key, old);
        }
        let old = stored_old.or(seeded_old);
        let rv = get_path(&obj, "metadata.resourceVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.rv);
        let unchanged = old.as_ref().is_some_and(|o| {
            get_path(o, "metadata.resourceVersion").and_then(Value::as_str) == Some(rv.to_string().as_str())
        });
        if !unchanged {
            let verb = if old.is_some() { "MODIFIED" } else { "ADDED" };
            self.remember(kind, &key, rv, old);
            self.record_event(kind, verb, rv, &obj);
        }
        self.index(kind, &key, &obj);
        self.objects.entry(kind).or_default().insert(key, obj);
        if let Some(v) = verb {
            *self.writes.entry((kind.info().key.to_string(), v)).or_insert(0) += 1;
        }
    }

    /// Removes an object (and counts the delete when `count`).
    pub fn remove(&mut self, kind: Kind, key: &str, count: bool) -> Option<Value> {
        if let Some(obj) = self.seeded.take(kind, key).or_else(|| self.bulk.take(kind, key)) {
            self.objects.entry(kind).or_default().insert(key.to_string(), obj);
        }
        let old = self.objects.get_mut(&kind)?.remove(key)?;
        self.unindex(kind, key, &old);
        match kind {
            Kind::Token => {
                self.tokens.remove(key);
            }
            Kind::ExtToken => {
                self.tokens.remove(&format!("ext/{key}"));
            }
            _ => {}
        }
        self.rv += 1;
        let mut tomb = old.clone();
        if let Some(m) = tomb.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let rv = self.rv;
        self.record_event(kind, "DELETED", rv, &tomb);
        self.tombstones.push_back((kind, key.to_string(), tomb));
        if self.tombstones.len() > 1000 {
            self.tombstones.pop_front();
        }
        self.remember(kind, key, rv, Some(old.clone()));
        if count {
            *self
                .writes
                .entry((kind.info().key.to_string(), Verb::Delete))
                .or_insert(0) += 1;
        }
        if kind == Kind::User {
            // Rancher's controllers remove a deleted user's tokens and global role bindings.
            let uid = key.to_string();
            let mut toks: Vec<String> = self
                .map(Kind::Token)
                .iter()
                .filter(|(_, t)| s(t, "userId") == uid)
                .map(|(k, _)| k.clone())
                .collect();
            toks.extend(self.seeded.of_user(Kind::Token, &uid));
            for t in toks {
                self.remove(Kind::Token, &t, false);
            }
            let grbs: Vec<String> = self
                .grb_by_user
                .get(&uid)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for g in grbs {
                self.remove(Kind::GlobalRoleBinding, &g, false);
            }
        }
        Some(old)
    }

    fn index(&mut self, kind: Kind, key: &str, obj: &Value) {
        match kind {
            Kind::User => {
                let u = s(obj, "username");
                if !u.is_empty() {
                    self.usernames.insert(u.to_string(), key.to_string());
                }
            }
            Kind::GlobalRoleBinding => {
                // Group bindings are indexed by their group principal (ids with `://`, never a user id).
                for u in [s(obj, "userName"), s(obj, "groupPrincipalName")] {
                    if !u.is_empty() {
                        self.grb_by_user
                            .entry(u.to_string())
                            .or_default()
                            .insert(key.to_string());
                    }
                }
            }
            Kind::Token => {
                if let Some(secret) = self
                    .tokens
                    .get(key)
                    .map(|t| t.secret.clone())
                    .or_else(|| self.pending_secret.take())
                {
                    let expires = parse_ms(s(obj, "expiresAt"));
                    self.tokens.insert(
                        key.to_string(),
                        TokenAuth {
                            secret,
                            user_id: s(obj, "userId").to_string(),
                            cluster: Some(s(obj, "clusterName").to_string()).filter(|c| !c.is_empty()),
                            expires_at_ms: expires,
                            enabled: obj.get("enabled").and_then(Value::as_bool).unwrap_or(true),
                            ext: false,
                            provider: s(obj, "authProvider").to_string(),
                            derived: obj.get("isDerived").and_then(Value::as_bool).unwrap_or(true),
                        },
                    );
                }
            }
            Kind::ExtToken => {
                let name = format!("ext/{key}");
                if let Some(secret) = self
                    .tokens
                    .get(&name)
                    .map(|t| t.secret.clone())
                    .or_else(|| self.pending_secret.take())
                {
                    self.tokens.insert(
                        name,
                        TokenAuth {
                            secret,
                            user_id: s(obj, "spec.userID").to_string(),
                            cluster: Some(s(obj, "spec.clusterName").to_string()).filter(|c| !c.is_empty()),
                            expires_at_ms: parse_ms(s(obj, "status.expiresAt")),
                            enabled: get_path(obj, "spec.enabled").and_then(Value::as_bool).unwrap_or(true),
                            ext: true,
                            provider: s(obj, "spec.userPrincipal.provider").to_string(),
                            derived: s(obj, "spec.kind") != "session",
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn unindex(&mut self, kind: Kind, key: &str, old: &Value) {
        match kind {
            Kind::User => {
                self.usernames.remove(s(old, "username"));
            }
            Kind::GlobalRoleBinding => {
                for u in [s(old, "userName"), s(old, "groupPrincipalName")] {
                    if let Some(set) = self.grb_by_user.get_mut(u) {
                        set.remove(key);
                    }
                }
            }
            _ => {}
        }
    }

    /// Registers the secret of a new token before `put` indexes it.
    pub fn set_token_secret(&mut self, secret: &str) {
        self.pending_secret = Some(secret.to_string());
    }

    /// The group principals Rancher's authenticator gives a caller: those every provider reported in the user's
    /// `UserAttribute`, and the token's own `groupPrincipals` only when the attribute has no entry for the token's
    /// provider (rancher/rancher pkg/auth/requests/authenticate.go `Authenticate`, "fallback to legacy
    /// token.GroupPrincipals").
    pub fn groups_of(&self, user_id: &str, token: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut hit = false;
        let token_obj = self.get(Kind::Token, token);
        let provider = token_obj.map(|t| s(t, "authProvider")).unwrap_or("");
        if let Some(gp) = self
            .get(Kind::UserAttribute, user_id)
            .and_then(|a| a.get("GroupPrincipals"))
            .and_then(Value::as_object)
        {
            for (p, list) in gp {
                hit |= p == provider;
                for g in list.get("Items").and_then(Value::as_array).into_iter().flatten() {
                    let name = s(g, "metadata.name");
                    if !name.is_empty() {
                        out.push(name.to_string());
                    }
                }
            }
        }
        if !hit {
            for g in token_obj
                .and_then(|t| t.get("groupPrincipals"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = s(g, "metadata.name");
                if !name.is_empty() {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Global role names bound to `user_id` directly (or to group principal `user_id`).
    pub fn roles_of(&self, user_id: &str) -> Vec<String> {
        self.grb_by_user
            .get(user_id)
            .map(|set| {
                set.iter()
                    .filter_map(|k| self.get(Kind::GlobalRoleBinding, k))
                    .map(|g| s(g, "globalRoleName").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The project object (by `cluster:p-x` id).
    pub fn project(&self, id: &str) -> Option<&Value> {
        self.get(Kind::Project, id)
    }

    /// The namespace PRTBs of project `cluster:p-x` live in.
    pub fn project_namespace(&self, project_id: &str) -> Option<String> {
        let p = self.project(project_id)?;
        let ns = s(p, "status.backingNamespace");
        if ns.is_empty() {
            project_id.split(':').nth(1).map(str::to_string)
        } else {
            Some(ns.to_string())
        }
    }

    /// The local principal id of a user (`local://<id>` unless the user has another first).
    pub fn principal_of(&self, user_id: &str) -> String {
        self.get(Kind::User, user_id)
            .and_then(|u| u.get("principalIds"))
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .find(|p| p.starts_with("local://"))
                    .or_else(|| a.first().and_then(Value::as_str))
            })
            .map(str::to_string)
            .unwrap_or_else(|| format!("local://{user_id}"))
    }
}

/// Parses a label selector (`a=b,c!=d,e,!f,g in (x,y)`) and tests `labels` against it.
pub(crate) fn labels_match(selector: &str, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in selector.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).all(|p| {
        if let Some((k, v)) = p.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            get(k.trim()) == Some(v.trim())
        } else if let Some(k) = p.strip_prefix('!') {
            get(k.trim()).is_none()
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            let vals = rest.trim().trim_start_matches('(').trim_end_matches(')');
            !vals.split(',').any(|v| get(k.trim()) == Some(v.trim()))
        } else if let Some((k, rest)) = p.split_once(" in ") {
            let vals = rest.trim().trim_start_matches('(').trim_end_matches(')');
            vals.split(',').any(|v| get(k.trim()) == Some(v.trim()))
        } else {
            get(p).is_some()
        }
    })
}
